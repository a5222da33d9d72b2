// Semaphores: POSIX named (sem_open), System V with SEM_UNDO, and eventfd.
//
// What happens when a holder dies decides which to use (docs/semaphore.md):
//   named_semaphore  a unit taken by a process that is killed stays taken (leaks);
//   sysv_semaphore   every operation uses SEM_UNDO: the kernel gives a dead process's
//                    units back (and takes back what it posted);
//   event_semaphore  an eventfd shared by related processes; a dead holder's unit leaks,
//                    but waiting on it is pollable, so it runs on the loop itself.
// sem_wait and semop cannot be polled: their async waits block the idle loop's own thread
// under event_loop::run, else run on the worker pool, and are cancelled by interrupting
// the blocked call. A named semaphore's async wait that the idle loop cannot make runs on
// the loop itself where io_uring's FUTEX_WAIT can be used (Linux 6.7, glibc; see
// detail/semaphore_ring.hpp), and on the pool where it cannot.
#pragma once

#include <ipckit/detail/blocking_call.hpp>
#include <ipckit/detail/polled_descriptor.hpp>
#include <ipckit/detail/semaphore_ring.hpp>
#include <ipckit/error.hpp>
#include <ipckit/unique_fd.hpp>

#include <boost/asio/any_io_executor.hpp>
#include <boost/asio/append.hpp>
#include <boost/asio/async_result.hpp>
#include <boost/asio/cancellation_type.hpp>
#include <boost/asio/compose.hpp>
#include <boost/asio/post.hpp>
#include <boost/asio/prepend.hpp>

#include <atomic>
#include <chrono>
#include <cstdint>
#include <filesystem>
#include <memory>
#include <string>
#include <string_view>
#include <semaphore.h>
#include <sys/types.h>

namespace ipckit {

enum class semaphore_errc {
  invalid_name = 1,  ///< not "/name" with no other slash, 1–251 characters after it
  value_too_large,   ///< over SEM_VALUE_MAX (or 32767 for System V)
  not_owner,         ///< it exists and belongs to (or was created by) another user
};
const boost::system::error_category& semaphore_category() noexcept;
error_code make_error_code(semaphore_errc e) noexcept;

struct semaphore_options {
  mode_t mode = 0600;
  /// Fail with "file exists" if it exists already (O_EXCL, IPC_EXCL).
  bool exclusive = false;
  /// Refuse a semaphore that exists and is not ours (semaphore_errc::not_owner): a named
  /// one whose file belongs to another uid; a System V set whose owner or creator is
  /// another uid. create() always checks one it finds; open() checks when asked.
  bool require_owner = false;
};

namespace detail {

struct named_semaphore_state {
  sem_t* sem = nullptr;
  std::string name;
  pending_calls pending;            // async_waits on the worker pool, aborted by close()
  pending_ring_waits ring_waits;    // async_waits on the loop's io_uring, aborted by close()
  std::atomic<semaphore_ring_service*> ring{nullptr};  // its context's, once looked up
  named_semaphore_state() = default;
  named_semaphore_state(const named_semaphore_state&) = delete;
  named_semaphore_state& operator=(const named_semaphore_state&) = delete;
  ~named_semaphore_state();
};

bool named_semaphore_take(const named_semaphore_state& state, const interrupt_token* token, error_code& ec);
void named_semaphore_give(const named_semaphore_state& state, error_code& ec);
/// A unit if there is one now (sem_trywait, semop IPC_NOWAIT); false on any error too.
bool named_semaphore_try_take(const named_semaphore_state* state) noexcept;
bool sysv_semaphore_try_take(int id) noexcept;
bool sysv_semaphore_take(int id, const interrupt_token* token, error_code& ec);
void sysv_semaphore_give(int id, error_code& ec);

// Takes a unit: at once if there is one (no trip through the worker pool, which costs
// two thread switches), else on the idle loop's thread or the worker pool. A unit taken
// just as the wait is cancelled is given back, so operation_aborted always means no unit
// was taken.
template <class Take, class TryTake, class GiveBack>
struct async_take_op {
  boost::asio::any_io_executor executor;
  Take take;
  TryTake try_take;
  GiveBack give_back;
  pending_calls* pending;  // where close() finds the call (null: nowhere)

  template <class Self>
  void operator()(Self& self) {
    if (try_take()) {
      // Completed through the executor, never inside the initiating call.
      auto ex = executor;  // `self` owns *this; it is moved below
      boost::asio::post(ex, boost::asio::append(std::move(self), error_code(), true));
      return;
    }
    self.reset_cancellation_state(boost::asio::enable_total_cancellation());
    auto call = take;
    auto ex = executor;  // `self` owns *this; it is moved below
    auto* calls = pending;
    async_run_blocking<bool>(ex, std::move(call), std::move(self), calls,
                             blocking_start::idle_loop_first);
  }

  template <class Self>
  void operator()(Self& self, error_code ec, bool taken) {
    if (taken && ec) give_back();
    self.complete(ec);
  }
};

// A named semaphore's async_wait: at once if a unit is there; else in sem_wait on the
// loop's own thread if the loop is idle (as a raw blocking program waits); else, or once
// the loop has work, on the loop's io_uring if it can be used here (one thread switch
// per hand-off), else, or if the ring gives up, on the worker pool (two).
// operation_aborted always means that no unit was taken.
struct async_named_take_op {
  struct on_idle_loop {};  // tags the outcome of the wait on the idle loop

  boost::asio::any_io_executor executor;
  std::shared_ptr<named_semaphore_state> state;  // null: closed

  template <class Self>
  void operator()(Self& self) {
    if (!state || named_semaphore_try_take(state.get())) {
      // Completed through the executor, never inside the initiating call.
      const error_code ec = state ? error_code() : error_code(errc::closed);
      auto ex = executor;  // `self` owns *this; it is moved below
      boost::asio::post(ex, boost::asio::append(std::move(self), ec));
      return;
    }
    self.reset_cancellation_state(boost::asio::enable_total_cancellation());
    auto ex = executor;  // `self` owns *this; it is moved below
    auto take = blocking_take();
    auto* calls = &state->pending;
    auto tagged = boost::asio::prepend(std::move(self), on_idle_loop{});
    async_run_blocking<bool>(ex, std::move(take), std::move(tagged), calls, blocking_start::idle_loop_only);
  }

  // The idle loop's outcome: would_block when the loop was busy or got work.
  template <class Self>
  void operator()(Self& self, on_idle_loop, error_code ec, bool taken) {
    if (ec != boost::asio::error::would_block) return (*this)(self, ec, taken);
    if (self.cancelled() != boost::asio::cancellation_type::none)
      return self.complete(boost::asio::error::operation_aborted);
    wait_on_ring_or_pool(self);
  }

  template <class Self>
  void wait_on_ring_or_pool(Self& self) {
    auto* known = state->ring.load(std::memory_order_acquire);
    if (!known) {
      // Looked up once: use_service takes the context's registry lock each time.
      known = &boost::asio::use_service<semaphore_ring_service>(
          boost::asio::query(executor, boost::asio::execution::context));
      state->ring.store(known, std::memory_order_release);
    }
    auto& ring = *known;
    if (ring.can_wait(state->sem)) {
      auto ex = executor;
      std::shared_ptr<const void> keep = state;
      sem_t* sem = state->sem;
      auto* waits = &state->ring_waits;
      async_ring_take(ring, ex, sem, std::move(keep), waits, std::move(self));
      return;
    }
    wait_on_pool(self);
  }

  // The ring's outcome.
  template <class Self>
  void operator()(Self& self, error_code ec) {
    if (ec != ring_unavailable()) return self.complete(ec);
    if (self.cancelled() != boost::asio::cancellation_type::none)
      return self.complete(boost::asio::error::operation_aborted);
    wait_on_pool(self);
  }

  // The pool's outcome: a unit taken just as the wait was cancelled is given back.
  template <class Self>
  void operator()(Self& self, error_code ec, bool taken) {
    if (taken && ec) {
      error_code ignored;
      named_semaphore_give(*state, ignored);
    }
    self.complete(ec);
  }

  auto blocking_take() const {
    return [state = state](const interrupt_token& t, error_code& ec) {
      return named_semaphore_take(*state, &t, ec);
    };
  }

  template <class Self>
  void wait_on_pool(Self& self) {
    auto ex = executor;  // `self` owns *this; it is moved below
    auto take = blocking_take();
    auto* calls = &state->pending;
    async_run_blocking<bool>(ex, std::move(take), std::move(self), calls);
  }
};

}  // namespace detail

/// A POSIX named semaphore ("/name", in /dev/shm). Kernel-persistent until unlinked.
///
/// Thread safety: post, wait and value may be called from any thread at once.
/// close() while async_waits are pending aborts them (operation_aborted, no unit taken).
/// Destroying the object while an async_wait is pending is allowed: the wait keeps the
/// semaphore mapped until it completes.
///
/// async_wait blocks in sem_wait on the loop's own thread while the loop is idle under
/// event_loop::run (docs/core.md). Otherwise it waits on the loop itself, through io_uring
/// (IORING_OP_FUTEX_WAIT on the sem_t, taking part in glibc's waiter protocol), where that
/// works: Linux 6.7 or later, io_uring allowed, glibc's 64-bit sem_t, and
/// IPCKIT_NO_IO_URING not set. Elsewhere it waits on the worker pool. All behave the same;
/// the idle loop is fastest, the pool slowest (docs/semaphore.md).
class named_semaphore {
 public:
  using executor_type = boost::asio::any_io_executor;

  explicit named_semaphore(const executor_type& ex) : executor_(ex) {}
  template <class Context>
    requires requires(Context& c) { executor_type(c.get_executor()); }
  explicit named_semaphore(Context& context) : executor_(context.get_executor()) {}

  executor_type get_executor() const noexcept { return executor_; }

  /// Creates it with `value` units (opens it, value unchanged, if it exists, is ours
  /// and not exclusive; another user's is refused with not_owner). The mode is applied
  /// exactly, whatever the umask.
  void create(std::string_view name, unsigned value, const semaphore_options& options, error_code& ec);
  void create(std::string_view name, unsigned value = 0, const semaphore_options& options = {});
  void open(std::string_view name, error_code& ec);
  void open(std::string_view name);
  /// Opens an existing one; with options.require_owner, one that is not ours is refused
  /// (mode and exclusive are not used here).
  void open(std::string_view name, const semaphore_options& options, error_code& ec);
  void open(std::string_view name, const semaphore_options& options);
  bool is_open() const noexcept { return state_ != nullptr; }
  /// Closes the handle; pending async_waits complete with operation_aborted.
  void close() noexcept {
    if (state_) {
      state_->pending.cancel_all();
      state_->ring_waits.cancel_all();
    }
    state_.reset();
  }
  const std::string& name() const noexcept;

  void post(error_code& ec);
  void post();
  /// Blocks the calling thread until a unit is taken.
  void wait(error_code& ec);
  void wait();
  bool try_wait(error_code& ec);
  bool try_wait();
  /// False when `timeout` passed first (measured on the monotonic clock).
  bool wait_for(std::chrono::nanoseconds timeout, error_code& ec);
  bool wait_for(std::chrono::nanoseconds timeout);
  int value(error_code& ec);
  int value();

  /// Takes a unit: at once if there is one, else on the loop (io_uring) or the worker
  /// pool; completes with void(error_code) through the executor, never inside this call.
  /// Every cancellation type aborts it (operation_aborted: no unit taken).
  template <class CompletionToken = boost::asio::default_completion_token_t<executor_type>>
  auto async_wait(CompletionToken&& token = boost::asio::default_completion_token_t<executor_type>()) {
    return boost::asio::async_compose<CompletionToken, void(error_code)>(
        detail::async_named_take_op{executor_, state_}, token, executor_);
  }

  static void unlink(std::string_view name, error_code& ec);
  static void unlink(std::string_view name);

 private:
  [[noreturn]] void fail(const error_code& ec, std::string_view op, std::string_view syscall) const;
  executor_type executor_;
  std::shared_ptr<detail::named_semaphore_state> state_;
};

/// A System V semaphore (a set of one). Every wait and post uses SEM_UNDO: when a
/// process exits, however it exits, the kernel reverts what it did, so a killed holder's
/// units come back. The flip side: a process that posts without having waited and then
/// exits has its post taken back too; for producer/consumer counting use
/// named_semaphore or event_semaphore. The initial value is set without undo.
///
/// Thread safety: post, wait and value may be called from any thread at once.
class sysv_semaphore {
 public:
  using executor_type = boost::asio::any_io_executor;

  explicit sysv_semaphore(const executor_type& ex) : executor_(ex) {}
  template <class Context>
    requires requires(Context& c) { executor_type(c.get_executor()); }
  explicit sysv_semaphore(Context& context) : executor_(context.get_executor()) {}

  executor_type get_executor() const noexcept { return executor_; }

  /// A key for `path` (which must exist) and a project id, as ftok(3).
  static key_t make_key(const std::filesystem::path& path, int project_id, error_code& ec);
  static key_t make_key(const std::filesystem::path& path, int project_id);

  /// Creates a set under `key` (IPC_PRIVATE: a new set only its id reaches) with
  /// `value` units; opens it unchanged if it exists, is ours and not exclusive. A set
  /// owned or created by another uid is refused with not_owner.
  void create(key_t key, unsigned value, const semaphore_options& options, error_code& ec);
  void create(key_t key, unsigned value = 0, const semaphore_options& options = {});
  void open(key_t key, error_code& ec);
  void open(key_t key);
  /// Opens an existing set; with options.require_owner, a set whose owner or creator
  /// is another uid is refused (IPC_SET can give a set away, so both are checked).
  void open(key_t key, const semaphore_options& options, error_code& ec);
  void open(key_t key, const semaphore_options& options);
  /// Uses the set whose id another process passed us.
  void attach(int id, error_code& ec);
  void attach(int id);
  int id() const noexcept { return id_; }
  bool is_open() const noexcept { return id_ >= 0; }

  void post(error_code& ec);
  void post();
  void wait(error_code& ec);
  void wait();
  bool try_wait(error_code& ec);
  bool try_wait();
  bool wait_for(std::chrono::nanoseconds timeout, error_code& ec);
  bool wait_for(std::chrono::nanoseconds timeout);
  int value(error_code& ec);
  int value();
  /// IPC_RMID: removes the set now; waiters fail with EIDRM.
  void remove(error_code& ec);
  void remove();

  template <class CompletionToken = boost::asio::default_completion_token_t<executor_type>>
  auto async_wait(CompletionToken&& token = boost::asio::default_completion_token_t<executor_type>()) {
    const int id = id_;
    auto take = [id](const detail::interrupt_token& t, error_code& ec) {
      return detail::sysv_semaphore_take(id, &t, ec);
    };
    auto try_take = [id] { return detail::sysv_semaphore_try_take(id); };
    auto give_back = [id] {
      error_code ignored;
      detail::sysv_semaphore_give(id, ignored);
    };
    return boost::asio::async_compose<CompletionToken, void(error_code)>(
        detail::async_take_op<decltype(take), decltype(try_take), decltype(give_back)>{
            executor_, take, try_take, give_back, pending_.get()},
        token, executor_);
  }

  /// Forgets the set (it stays in the kernel: remove() deletes it); pending async_waits
  /// complete with operation_aborted, no unit taken.
  void close() noexcept {
    pending_->cancel_all();
    pending_ = std::make_shared<detail::pending_calls>();
    id_ = -1;
  }

 private:
  [[noreturn]] void fail(const error_code& ec, std::string_view op, std::string_view syscall) const;
  executor_type executor_;
  int id_ = -1;
  std::shared_ptr<detail::pending_calls> pending_ = std::make_shared<detail::pending_calls>();
};

/// An eventfd in semaphore mode: each wait takes one unit. For related processes (pass
/// native_handle() to a child); pollable, so async_wait runs on the loop itself. The
/// descriptor stays blocking until the first async_wait sets O_NONBLOCK (so a blocking
/// wait is one read(2); tries before that use preadv2 with RWF_NOWAIT).
///
/// Thread safety: as an Asio I/O object; not moved or destroyed while async_wait is
/// pending.
class event_semaphore {
 public:
  using executor_type = boost::asio::any_io_executor;

  explicit event_semaphore(const executor_type& ex) : descriptor_(ex) {}
  /// Creates a new eventfd with `value` units (throws on failure).
  event_semaphore(const executor_type& ex, unsigned value);
  template <class Context>
    requires requires(Context& c) { executor_type(c.get_executor()); }
  event_semaphore(Context& context, unsigned value)
      : event_semaphore(executor_type(context.get_executor()), value) {}

  executor_type get_executor() noexcept { return descriptor_.get_executor(); }

  void create(unsigned value, error_code& ec);
  void create(unsigned value);
  /// Adopts an eventfd, such as one inherited from the parent.
  void assign(unique_fd fd, error_code& ec);
  void assign(unique_fd fd);
  int native_handle() noexcept { return descriptor_.native_handle(); }
  bool is_open() const noexcept { return descriptor_.is_open(); }
  void close() noexcept;

  void post(std::uint64_t units, error_code& ec);
  void post(std::uint64_t units = 1);
  void wait(error_code& ec);
  void wait();
  bool try_wait(error_code& ec);
  bool try_wait();
  bool wait_for(std::chrono::nanoseconds timeout, error_code& ec);
  bool wait_for(std::chrono::nanoseconds timeout);
  void cancel() { descriptor_.cancel(); }

  /// Waits on the loop; completes with void(error_code).
  template <class CompletionToken = boost::asio::default_completion_token_t<executor_type>>
  auto async_wait(CompletionToken&& token = boost::asio::default_completion_token_t<executor_type>()) {
    use_non_blocking();
    return descriptor_.async_attempt<void>(detail::attempt_direction::read, take_attempt{this},
                                           std::forward<CompletionToken>(token));
  }

 private:
  // The attempt of async_wait: false while there is no unit.
  struct take_attempt {
    event_semaphore* semaphore;
    bool operator()(error_code& ec) const {
      semaphore->try_take(ec);
      return ec != boost::asio::error::would_block;
    }
  };

  // try_wait with the "nothing there" case as would_block.
  void try_take(error_code& ec);
  // Sets O_NONBLOCK once, for the loop's attempts: a plain read is cheaper than
  // preadv2(RWF_NOWAIT) (about 0.35 against 0.5 us here).
  void use_non_blocking() noexcept;

  detail::polled_descriptor descriptor_;
  bool non_blocking_ = false;
};

}  // namespace ipckit

template <>
struct boost::system::is_error_code_enum<ipckit::semaphore_errc> : std::true_type {};
