// Internals of pipe.hpp that its templates need. Users never include this header.
#pragma once

#include <ipckit/detail/draining_handler.hpp>
#include <ipckit/detail/iovecs.hpp>
#include <ipckit/detail/polled_descriptor.hpp>
#include <ipckit/error.hpp>
#include <ipckit/unique_fd.hpp>

#include <boost/asio/any_io_executor.hpp>
#include <boost/asio/append.hpp>
#include <boost/asio/buffer.hpp>
#include <boost/asio/compose.hpp>
#include <boost/asio/deferred.hpp>
#include <boost/asio/experimental/parallel_group.hpp>
#include <boost/asio/post.hpp>
#include <boost/asio/steady_timer.hpp>

#include <array>
#include <chrono>
#include <filesystem>
#include <functional>
#include <memory>
#include <optional>
#include <type_traits>
#include <utility>
#include <sys/uio.h>

namespace ipckit::detail {

/// writev without SIGPIPE: the calling thread blocks SIGPIPE for the call and, on EPIPE,
/// takes the SIGPIPE the kernel queued for it (only when it was not blocked before, so a
/// signal module subscription to SIGPIPE is left alone). Thread-local and restored at
/// once; no disposition is changed.
long write_without_sigpipe(int fd, const ::iovec* iov, int count) noexcept;

/// The shared part of pipe_reader and pipe_writer.
class pipe_end {
 public:
  using executor_type = boost::asio::any_io_executor;
  using clock = std::chrono::steady_clock;

  explicit pipe_end(const executor_type& ex) : descriptor_(ex), timer_(ex) {}
  pipe_end(const executor_type& ex, unique_fd fd);
  pipe_end(pipe_end&&) noexcept = default;
  pipe_end& operator=(pipe_end&& other) noexcept;
  ~pipe_end();

  executor_type get_executor() const noexcept { return descriptor_.get_executor(); }
  bool is_open() const noexcept { return descriptor_.is_open(); }
  int native_handle() const noexcept { return descriptor_.native_handle(); }

  /// Takes ownership of `fd`, leaving its O_NONBLOCK as it is (docs/pipe.md, "Blocking
  /// and non-blocking mode").
  void assign(unique_fd fd, error_code& ec);
  void assign(unique_fd fd);
  /// Gives the descriptor back in the mode it had when this object got it: O_NONBLOCK
  /// set by an async operation or a deadline is cleared again.
  unique_fd release();
  /// Closes the descriptor, first putting back its mode as release() does (the open file
  /// description may be shared with another process).
  void close(error_code& ec);
  void close();
  /// Cancels pending asynchronous operations (they complete with operation_aborted).
  void cancel();

  /// Deadline for the following reads/writes, sync and async (Go's SetDeadline): a call
  /// still waiting at the deadline fails with ipckit::errc::timeout and moves no data.
  void expires_at(clock::time_point deadline) { deadline_ = deadline; }
  void expires_after(clock::duration d) { deadline_ = clock::now() + d; }
  void expires_never() { deadline_.reset(); }

  /// F_SETPIPE_SZ / F_GETPIPE_SZ; the kernel rounds up to a power-of-two page count.
  void set_buffer_size(std::size_t size, error_code& ec);
  void set_buffer_size(std::size_t size);
  std::size_t buffer_size(error_code& ec);
  std::size_t buffer_size();

  /// Internal: wait for readiness before the first read (FIFO readers), since a FIFO with
  /// no writer yet reads as EOF.
  void set_wait_first(bool on) noexcept { wait_first_ = on; }
  /// Internal: a descriptor kept open with this end (the FIFO server's own writer).
  void hold(unique_fd fd) noexcept { held_ = std::move(fd); }

  /// Internal (the hooks of boost::asio::async_read/async_write in pipe.hpp): starts the
  /// transfer of all of `data` as one attempt when the end's async calls are plain
  /// (plain_async); otherwise returns false and leaves `handler` alone.
  template <class Handler>
  bool start_whole_transfer(void* data, std::size_t size, bool write, Handler& handler);

 protected:
  std::size_t io(const iovec_array& iov, bool write, error_code& ec);
  [[noreturn]] void fail(const char* op, const error_code& ec);

 private:
  template <class Buffers>
  friend struct pipe_io_op;
  template <class Buffers>
  friend struct pipe_attempt;
  template <bool Write>
  friend struct initiate_pipe_io;
  friend struct pipe_whole_attempt;

  // One read or write: finished with `n` bytes moved or `ec` (EOF is eof), or would_block
  // when it must wait. It waits in the kernel only while the descriptor is still in
  // blocking mode.
  attempt_status try_io(const ::iovec* iov, int count, bool write, std::size_t& n, error_code& ec) noexcept;
  // io() from its first wait (`wait`) or its first try on: the loop of try and poll.
  std::size_t wait_and_io(const iovec_array& iov, bool write, bool wait, error_code& ec);
  // Sets O_NONBLOCK once (an async operation or a deadline needs it); it stays set until
  // release() or close() put back the mode the descriptor came in.
  void ensure_non_blocking(error_code& ec);
  // Clears O_NONBLOCK again if this object set it.
  void restore_mode() noexcept;
  // Whether an async read or write is one attempt on the descriptor, with nothing around
  // it: open, no deadline, no first wait (FIFO readers); sets O_NONBLOCK when it says yes.
  bool plain_async(bool write) noexcept {
    if (!descriptor_.is_open() || deadline_ || (wait_first_ && !write)) return false;
    if (non_blocking_) return true;
    error_code ec;
    ensure_non_blocking(ec);
    return !ec;
  }

  polled_descriptor descriptor_;
  boost::asio::steady_timer timer_;
  std::optional<clock::time_point> deadline_;
  bool wait_first_ = false;
  bool came_non_blocking_ = false;  ///< O_NONBLOCK was already set when assigned
  bool non_blocking_ = false;       ///< O_NONBLOCK is set now
  unique_fd held_;
};

/// Whether poll() says POLLIN or POLLHUP now.
bool readable(int fd) noexcept;

/// One async read or write as a polled_descriptor attempt: a read or write that does not
/// wait, made at once and again at each readiness edge. `poll_first` (a FIFO reader's
/// first read, since a FIFO with no writer yet reads as EOF) makes the first try only
/// ask whether the descriptor is readable.
template <class Buffers>
struct pipe_attempt {
  pipe_end* end;
  Buffers buffers;
  bool write;
  bool poll_first = false;

  attempt_status operator()(error_code& ec, std::size_t& n) {
    if (poll_first) {
      if (!readable(end->native_handle())) return attempt_status::would_block;
      poll_first = false;
    }
    // Asio's convention: an empty buffer is done at once, with 0 bytes.
    if constexpr (std::is_convertible_v<const Buffers&, boost::asio::const_buffer>) {
      // One buffer (the usual case), without the loop over a sequence.
      const boost::asio::const_buffer b(buffers);
      const ::iovec one{const_cast<void*>(b.data()), b.size()};
      return one.iov_len == 0 ? attempt_status::finished : end->try_io(&one, 1, write, n, ec);
    } else {
      const iovec_array iov(buffers);
      return iov.total == 0 ? attempt_status::finished : end->try_io(iov.iov.data(), iov.count, write, n, ec);
    }
  }
};

/// All of one buffer as one attempt: bytes move until the buffer is done, EOF or an error,
/// waiting at each would-block. `n`, the attempt's result, counts what has moved so far,
/// so a cancelled transfer reports it, as Asio's composed operation does.
struct pipe_whole_attempt {
  pipe_end* end;
  char* data;
  std::size_t size;
  bool write;

  attempt_status operator()(error_code& ec, std::size_t& n) {
    // An empty buffer is done at once (Asio's convention); a part is followed by another
    // try, as Asio's composed operation does, since only EAGAIN says the pipe is drained.
    while (n < size) {
      const ::iovec rest{data + n, size - n};
      std::size_t moved = 0;
      if (end->try_io(&rest, 1, write, moved, ec) == attempt_status::would_block) return attempt_status::would_block;
      n += moved;
      if (ec || moved == 0) break;
    }
    return attempt_status::finished;
  }
};

template <class Handler>
bool pipe_end::start_whole_transfer(void* data, std::size_t size, bool write, Handler& handler) {
  if (!plain_async(write)) return false;
  descriptor_.template async_attempt<std::size_t>(write ? attempt_direction::write : attempt_direction::read,
                                                  pipe_whole_attempt{this, static_cast<char*>(data), size, write},
                                                  std::move(handler));
  return true;
}

/// The async read/write with a deadline or a FIFO reader's first wait: the attempt,
/// racing the deadline timer when one is set.
template <class Buffers>
struct pipe_io_op {
  pipe_end* end;
  Buffers buffers;
  bool write;

  template <class Self>
  void operator()(Self& self) {
    // The first attempt must not complete inside the initiating call: the descriptor's
    // attempt posts it when it finishes at once.
    error_code ec;
    if (end->descriptor_.is_open()) end->ensure_non_blocking(ec);  // the loop never waits in a call
    if (!ec && end->deadline_ && pipe_end::clock::now() >= *end->deadline_) ec = ipckit::errc::timeout;
    if (ec) {
      return post_completion(end->descriptor_.get_executor(), boost::asio::append(std::move(self), ec, std::size_t{0}));
    }
    const auto direction = write ? attempt_direction::write : attempt_direction::read;
    pipe_attempt<Buffers> attempt{end, buffers, write, end->wait_first_ && !write};
    if (!end->deadline_) return end->descriptor_.template async_attempt<std::size_t>(direction, attempt, std::move(self));
    end->timer_.expires_at(*end->deadline_);
    boost::asio::experimental::make_parallel_group(
        end->descriptor_.template async_attempt<std::size_t>(direction, attempt, boost::asio::deferred),
        end->timer_.async_wait(boost::asio::deferred))
        .async_wait(boost::asio::experimental::wait_for_one(), std::move(self));
  }

  template <class Self>
  void operator()(Self& self, error_code ec, std::size_t n) {
    self.complete(ec, n);
  }

  template <class Self>
  void operator()(Self& self, std::array<std::size_t, 2> order, error_code io_ec, std::size_t n,
                  error_code timer_ec) {
    // An attempt that moved data (or met EOF or an error) reports it, whichever came first.
    if (io_ec != boost::asio::error::operation_aborted) return self.complete(io_ec, n);
    if (order[0] == 1 && !timer_ec) return self.complete(ipckit::errc::timeout, 0);
    self.complete(io_ec, 0);
  }
};

/// Starts an async read_some (Write false) or write_some. The common case, no deadline and
/// no first wait, is the attempt alone: tried at once, waiting without re-arming epoll and
/// with no composed operation around it (docs/performance-findings.md, findings 3 and 4).
/// The rest goes through pipe_io_op.
template <bool Write>
struct initiate_pipe_io {
  pipe_end* end;

  template <class Handler, class Buffers>
  void operator()(Handler&& handler, const Buffers& buffers) const {
    const auto direction = Write ? attempt_direction::write : attempt_direction::read;
    if (end->plain_async(Write)) {
      end->descriptor_.template async_attempt<std::size_t>(direction, pipe_attempt<Buffers>{end, buffers, Write},
                                                           std::forward<Handler>(handler));
      return;
    }
    boost::asio::async_compose<std::decay_t<Handler>, void(error_code, std::size_t)>(
        pipe_io_op<Buffers>{end, buffers, Write}, handler, end->descriptor_);
  }
};

/// Waits for a FIFO reader on the loop (inotify IN_OPEN plus a slow re-check), then opens
/// the write end. Shared by async_open_fifo_writer's initiation and its cancellation slot.
class fifo_writer_wait {
 public:
  virtual ~fifo_writer_wait() = default;
  /// Completes with operation_aborted (once; later calls do nothing).
  virtual void cancel() = 0;
};

/// Starts the wait; `done` is called exactly once, never from inside this call.
std::shared_ptr<fifo_writer_wait> start_fifo_writer_wait(
    const boost::asio::any_io_executor& ex, std::filesystem::path path,
    std::chrono::nanoseconds timeout, std::function<void(error_code, unique_fd)> done);

}  // namespace ipckit::detail
