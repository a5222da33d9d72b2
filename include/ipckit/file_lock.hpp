// file_lock: advisory file locks that never block the loop; pidfile: one instance only.
//
// Whole-file locks are flock(2) locks, the ones util-linux flock(1) takes, so the two
// interoperate. Byte-range locks are open file description locks (F_OFD_SETLK), not
// classic fcntl locks: a classic lock belongs to the process and is dropped when the
// process closes ANY descriptor of the file, which a library cannot control. Both kinds
// belong to the open file description, are released when its last descriptor closes,
// and so are released by the kernel when a holder dies.
#pragma once

#include <ipckit/detail/blocking_call.hpp>
#include <ipckit/error.hpp>
#include <ipckit/unique_fd.hpp>

#include <boost/asio/any_io_executor.hpp>
#include <boost/asio/append.hpp>
#include <boost/asio/post.hpp>
#include <boost/asio/async_result.hpp>
#include <boost/asio/cancellation_type.hpp>
#include <boost/asio/compose.hpp>

#include <chrono>
#include <filesystem>
#include <memory>
#include <optional>
#include <string>
#include <sys/types.h>

namespace ipckit {

enum class lock_mode { shared, exclusive };

/// A byte range for an OFD lock. length 0 means "from start to the end of the file,
/// however far it grows", as in fcntl(2).
struct byte_range {
  off_t start = 0;
  off_t length = 0;
};

/// Errors of the file_lock module.
enum class file_lock_errc {
  already_running = 1,  ///< a pidfile is held by a live process
  invalid_range,        ///< a byte range with a negative start or length
};
const boost::system::error_category& file_lock_category() noexcept;
error_code make_error_code(file_lock_errc e) noexcept;

namespace detail {

struct file_lock_state {
  unique_fd fd;
  std::optional<byte_range> range;  // nullopt: whole file, flock(2)
  std::string path;                 // for error messages
  bool locked = false;
  lock_mode mode = lock_mode::exclusive;
  pending_calls pending;  // async_lock waits, aborted by close()
};

// Takes the lock; waits when `wait`, looping on EINTR until `token` (may be null) is
// cancelled, then fails with operation_aborted. Returns true when the lock was taken;
// false with no error when it is busy and !wait.
bool file_lock_acquire(const file_lock_state& state, lock_mode mode, bool wait,
                       const interrupt_token* token, error_code& ec);
void file_lock_release(file_lock_state& state, error_code& ec);
error_context file_lock_where(const file_lock_state& state, std::string_view op);

struct async_file_lock_op {
  std::shared_ptr<file_lock_state> state;
  boost::asio::any_io_executor executor;
  lock_mode mode;

  template <class Self>
  void operator()(Self& self) {
    error_code busy_or_failed;
    if (state && file_lock_acquire(*state, mode, false, nullptr, busy_or_failed)) {
      // Free now (LOCK_NB / F_OFD_SETLK): no trip through the worker pool, which costs two
      // thread switches. Completed through the executor, never inside this call.
      auto ex = executor;  // `self` owns *this; it is moved below
      boost::asio::post(ex, boost::asio::append(std::move(self), error_code(), true));
      return;
    }
    // Nothing has happened until the lock is taken, so every kind of cancel is safe.
    self.reset_cancellation_state(boost::asio::enable_total_cancellation());
    auto call = [state = state, mode = mode](const interrupt_token& token, error_code& ec) {
      return file_lock_acquire(*state, mode, true, &token, ec);
    };
    auto ex = executor;  // `self` owns *this; it is moved below
    auto* pending = &state->pending;
    async_run_blocking<bool>(ex, std::move(call), std::move(self), pending,
                             blocking_start::idle_loop_first);
  }

  template <class Self>
  void operator()(Self& self, error_code ec, bool acquired) {
    if (acquired && ec) {
      // Taken just as the wait was cancelled: give it back, so operation_aborted always
      // means the lock is not held.
      error_code ignored;
      file_lock_release(*state, ignored);
    } else if (acquired) {
      state->locked = true;
      state->mode = mode;
    }
    self.complete(ec);
  }
};

}  // namespace detail

/// An advisory lock on one open file description: the whole file (flock) or a byte
/// range (OFD lock), shared or exclusive.
///
/// Meets Lockable, TimedLockable and SharedLockable, so std::unique_lock and
/// std::shared_lock are its RAII guards; destroying or closing it releases the lock.
/// Two file_lock objects on the same path conflict with each other even in one process.
///
/// Thread safety: as an Asio I/O object: one operation at a time per object. Closing
/// or destroying it while an async_lock waits is allowed: the wait is interrupted and
/// completes with operation_aborted (the lock not held), and the descriptor is closed
/// once it has.
class file_lock {
 public:
  using executor_type = boost::asio::any_io_executor;

  explicit file_lock(const executor_type& ex);
  /// Opens (creating it 0600 if missing) `path` and prepares a whole-file lock.
  file_lock(const executor_type& ex, const std::filesystem::path& path);
  /// Opens `path` and prepares a lock on `range` only.
  file_lock(const executor_type& ex, const std::filesystem::path& path, byte_range range);
  /// Locks through `fd`, taking ownership of it. To lock a descriptor you keep, pass
  /// duplicate(fd): a duplicate shares the open file description, hence the lock.
  file_lock(const executor_type& ex, unique_fd fd);
  file_lock(const executor_type& ex, unique_fd fd, byte_range range);

  template <class Context>
    requires requires(Context& c) { executor_type(c.get_executor()); }
  file_lock(Context& context, const std::filesystem::path& path)
      : file_lock(executor_type(context.get_executor()), path) {}
  template <class Context>
    requires requires(Context& c) { executor_type(c.get_executor()); }
  file_lock(Context& context, const std::filesystem::path& path, byte_range range)
      : file_lock(executor_type(context.get_executor()), path, range) {}

  file_lock(file_lock&&) noexcept = default;
  file_lock& operator=(file_lock&&) noexcept = default;
  ~file_lock();

  executor_type get_executor() const noexcept { return executor_; }

  /// Opens a path (read-write, created 0600; read-only when that is all it allows,
  /// as flock(1) does, so directories and read-only files can be locked).
  void open(const std::filesystem::path& path, error_code& ec);
  void open(const std::filesystem::path& path, std::optional<byte_range> range, error_code& ec);
  void open(const std::filesystem::path& path, std::optional<byte_range> range = std::nullopt);
  void assign(unique_fd fd, std::optional<byte_range> range, error_code& ec);
  void assign(unique_fd fd, std::optional<byte_range> range = std::nullopt);
  bool is_open() const noexcept { return state_ && state_->fd.is_open(); }
  /// Closes the file, which releases the lock; a pending async_lock completes with
  /// operation_aborted.
  void close() noexcept;
  int native_handle() const noexcept { return state_ ? state_->fd.get() : -1; }

  /// Blocks the calling thread until the lock is taken (never call it on the loop
  /// thread; use async_lock there).
  void lock(lock_mode mode, error_code& ec);
  void lock(lock_mode mode = lock_mode::exclusive);
  void lock_shared() { lock(lock_mode::shared); }

  /// Takes the lock if it is free now; false when another holder has it.
  bool try_lock(lock_mode mode, error_code& ec);
  bool try_lock(lock_mode mode = lock_mode::exclusive);
  bool try_lock_shared() { return try_lock(lock_mode::shared); }

  /// Waits at most `timeout` (on a worker thread, the caller blocked); false when it
  /// passed. A timeout of zero or less is try_lock.
  bool try_lock_for(std::chrono::nanoseconds timeout, lock_mode mode, error_code& ec);
  bool try_lock_for(std::chrono::nanoseconds timeout, lock_mode mode = lock_mode::exclusive);
  bool try_lock_shared_for(std::chrono::nanoseconds timeout) {
    return try_lock_for(timeout, lock_mode::shared);
  }
  template <class Clock, class Duration>
  bool try_lock_until(std::chrono::time_point<Clock, Duration> deadline) {
    return try_lock_for(std::chrono::duration_cast<std::chrono::nanoseconds>(deadline - Clock::now()));
  }

  void unlock(error_code& ec);
  void unlock();
  void unlock_shared() { unlock(); }

  bool owns_lock() const noexcept { return state_ && state_->locked; }
  lock_mode mode() const noexcept { return state_ ? state_->mode : lock_mode::exclusive; }

  /// Waits for the lock without holding up the loop's work: on the loop's own thread
  /// while the loop is idle under event_loop::run, on the worker pool once it is not
  /// (docs/file_lock.md). Completes with void(error_code). Cancellation (any type) ends
  /// the wait with operation_aborted, and then the lock is not held.
  template <class CompletionToken = boost::asio::default_completion_token_t<executor_type>>
  auto async_lock(lock_mode mode,
                  CompletionToken&& token = boost::asio::default_completion_token_t<executor_type>()) {
    return boost::asio::async_compose<CompletionToken, void(error_code)>(
        detail::async_file_lock_op{state_, executor_, mode}, token, executor_);
  }

 private:
  executor_type executor_;
  std::shared_ptr<detail::file_lock_state> state_;
};

/// Thrown by pidfile when another live process holds it: "pidfile PATH: already
/// running as pid N". code() is file_lock_errc::already_running.
class already_running_error : public op_error {
 public:
  already_running_error(std::string path, pid_t pid);
  const char* what() const noexcept override { return message_.c_str(); }
  pid_t pid() const noexcept { return pid_; }

 private:
  pid_t pid_;
  std::string message_;
};

/// A single-instance guard for daemons: an exclusively flock'ed file holding our pid.
/// A second instance fails with already_running_error; a file left by a holder that
/// crashed is not locked any more and is taken over. The destructor removes the file.
class pidfile {
 public:
  pidfile() = default;
  explicit pidfile(const std::filesystem::path& path, mode_t mode = 0600);
  /// On failure `ec` is set (file_lock_errc::already_running when held) and the
  /// object is empty; holder(path) tells who holds it.
  pidfile(const std::filesystem::path& path, error_code& ec, mode_t mode = 0600);
  pidfile(pidfile&& other) noexcept = default;
  pidfile& operator=(pidfile&& other) noexcept;
  ~pidfile();

  bool owns() const noexcept { return fd_.is_open(); }
  const std::filesystem::path& path() const noexcept { return path_; }
  /// Removes the file and drops the lock.
  void release() noexcept;

  /// The pid written in a pidfile, if it holds a valid one.
  static std::optional<pid_t> holder(const std::filesystem::path& path);

 private:
  std::filesystem::path path_;
  unique_fd fd_;
};

}  // namespace ipckit

template <>
struct boost::system::is_error_code_enum<ipckit::file_lock_errc> : std::true_type {};
