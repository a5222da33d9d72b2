// The shared read/write machinery of pipe_reader and pipe_writer.
#include <ipckit/pipe.hpp>

#include <ipckit/detail/sigpipe.hpp>

#include <cerrno>
#include <csignal>
#include <fcntl.h>
#include <poll.h>
#include <pthread.h>
#include <unistd.h>

namespace ipckit::detail {
namespace {

// One buffer is a plain read/write: the kernel's readv/writev path copies the iovec in
// first, measurably slower on a 64-byte ping-pong.
long gather_write(int fd, const ::iovec* iov, int count) noexcept {
  return count == 1 ? ::write(fd, iov[0].iov_base, iov[0].iov_len) : ::writev(fd, iov, count);
}

long scatter_read(int fd, const ::iovec* iov, int count) noexcept {
  return count == 1 ? ::read(fd, iov[0].iov_base, iov[0].iov_len) : ::readv(fd, iov, count);
}

}  // namespace

bool readable(int fd) noexcept {
  ::pollfd p{fd, POLLIN, 0};
  while (::poll(&p, 1, 0) < 0) {
    if (errno != EINTR) return true;  // the read that follows reports the error
  }
  return (p.revents & (POLLIN | POLLHUP | POLLERR | POLLNVAL)) != 0;
}

long write_without_sigpipe(int fd, const ::iovec* iov, int count) noexcept {
  if (sigpipe_ignored()) return gather_write(fd, iov, count);  // EPIPE is all a write can get
  sigset_t pipe_only, old;
  sigemptyset(&pipe_only);
  sigaddset(&pipe_only, SIGPIPE);
  pthread_sigmask(SIG_BLOCK, &pipe_only, &old);
  const long n = gather_write(fd, iov, count);
  const int saved = errno;
  if (n < 0 && saved == EPIPE && !sigismember(&old, SIGPIPE)) {
    // The kernel queued SIGPIPE for this thread; take it before unblocking. Any SIGPIPE
    // pending here is ours: one pending earlier would have been delivered while unblocked.
    const timespec zero{0, 0};
    while (sigtimedwait(&pipe_only, nullptr, &zero) < 0 && errno == EINTR) {
    }
  }
  pthread_sigmask(SIG_SETMASK, &old, nullptr);
  errno = saved;
  return n;
}

pipe_end::pipe_end(const executor_type& ex, unique_fd fd) : descriptor_(ex), timer_(ex) {
  assign(std::move(fd));
}

pipe_end& pipe_end::operator=(pipe_end&& other) noexcept {
  if (this != &other) {
    restore_mode();
    descriptor_ = std::move(other.descriptor_);
    timer_ = std::move(other.timer_);
    deadline_ = other.deadline_;
    wait_first_ = other.wait_first_;
    came_non_blocking_ = other.came_non_blocking_;
    non_blocking_ = other.non_blocking_;
    held_ = std::move(other.held_);
  }
  return *this;
}

pipe_end::~pipe_end() { restore_mode(); }

void pipe_end::assign(unique_fd fd, error_code& ec) {
  ec.clear();
  // The mode stays as it came (docs/pipe.md); it is only read, to be put back later.
  const int flags = ::fcntl(fd.get(), F_GETFL);
  if (flags < 0) {
    ec = last_error();
    return;
  }
  if (descriptor_.is_open()) {
    restore_mode();
    descriptor_.close();
  }
  descriptor_.assign(fd.release());
  came_non_blocking_ = non_blocking_ = (flags & O_NONBLOCK) != 0;
}

void pipe_end::assign(unique_fd fd) {
  error_code ec;
  const int raw = fd.get();
  assign(std::move(fd), ec);
  if (ec) throw_error(ec, {"assign", "pipe", "", "fd " + std::to_string(raw), ""});
}

void pipe_end::ensure_non_blocking(error_code& ec) {
  if (non_blocking_) return;
  const int flags = ::fcntl(descriptor_.native_handle(), F_GETFL);
  if (flags < 0 || ::fcntl(descriptor_.native_handle(), F_SETFL, flags | O_NONBLOCK) < 0) {
    ec = last_error();
    return;
  }
  non_blocking_ = true;
}

void pipe_end::restore_mode() noexcept {
  if (!descriptor_.is_open() || came_non_blocking_ || !non_blocking_) return;
  const int flags = ::fcntl(descriptor_.native_handle(), F_GETFL);
  if (flags >= 0 && ::fcntl(descriptor_.native_handle(), F_SETFL, flags & ~O_NONBLOCK) == 0) non_blocking_ = false;
}

unique_fd pipe_end::release() {
  held_.reset();
  if (!descriptor_.is_open()) return unique_fd();
  restore_mode();
  return unique_fd(descriptor_.release());
}

void pipe_end::close(error_code& ec) {
  ec.clear();
  held_.reset();
  restore_mode();
  descriptor_.close();
  timer_.cancel();
}

void pipe_end::close() {
  error_code ec;
  close(ec);
  if (ec) fail("close", ec);
}

void pipe_end::cancel() {
  descriptor_.cancel();
  timer_.cancel();
}

void pipe_end::set_buffer_size(std::size_t size, error_code& ec) {
  ec.clear();
  if (size > static_cast<std::size_t>(INT32_MAX)) {
    ec = ipckit::errc::invalid_argument;
    return;
  }
  if (::fcntl(descriptor_.native_handle(), F_SETPIPE_SZ, static_cast<int>(size)) < 0)
    ec = last_error();
}

void pipe_end::set_buffer_size(std::size_t size) {
  error_code ec;
  set_buffer_size(size, ec);
  if (ec) throw_error(ec, {"set buffer size", "pipe", "", "", "fcntl"});
}

std::size_t pipe_end::buffer_size(error_code& ec) {
  ec.clear();
  const int size = ::fcntl(descriptor_.native_handle(), F_GETPIPE_SZ);
  if (size < 0) {
    ec = last_error();
    return 0;
  }
  return static_cast<std::size_t>(size);
}

std::size_t pipe_end::buffer_size() {
  error_code ec;
  const std::size_t size = buffer_size(ec);
  if (ec) throw_error(ec, {"buffer size", "pipe", "", "", "fcntl"});
  return size;
}

attempt_status pipe_end::try_io(const ::iovec* iov, int count, bool write, std::size_t& n,
                                error_code& ec) noexcept {
  const int fd = descriptor_.native_handle();
  for (;;) {
    const long moved = write ? write_without_sigpipe(fd, iov, count) : scatter_read(fd, iov, count);
    if (moved > 0) {
      // A writer has come: from now on a read that finds none is EOF (docs/pipe.md).
      if (!write) wait_first_ = false;
      n = static_cast<std::size_t>(moved);
      return attempt_status::finished;
    }
    n = 0;
    if (moved == 0) {
      if (!write) {
        ec = boost::asio::error::eof;
        wait_first_ = false;
      }
      return attempt_status::finished;
    }
    if (errno == EINTR) continue;
    if (errno == EAGAIN) return attempt_status::would_block;
    ec = last_error();
    return attempt_status::finished;
  }
}

std::size_t pipe_end::io(const iovec_array& iov, bool write, error_code& ec) {
  const int fd = descriptor_.native_handle();
  if (fd >= 0 && !deadline_ && (write || !wait_first_) && iov.total != 0) {
    // The common case, with no more around the call than a raw read or write has
    // (docs/performance-findings.md, finding 4): what try_io does, inline.
    long n;
    do {
      n = write ? write_without_sigpipe(fd, iov.iov.data(), iov.count)
                : scatter_read(fd, iov.iov.data(), iov.count);
    } while (n < 0 && errno == EINTR);
    if (n >= 0) {
      ec.clear();
      if (n == 0 && !write) ec = boost::asio::error::eof;
      return static_cast<std::size_t>(n);
    }
    if (errno != EAGAIN) {
      ec = last_error();
      return 0;
    }
    // Non-blocking (an async operation set it): wait as below, then try again.
    ec.clear();
    return wait_and_io(iov, write, true, ec);
  }
  ec.clear();
  if (!descriptor_.is_open()) {
    ec = boost::asio::error::bad_descriptor;
    return 0;
  }
  if (iov.total == 0) return 0;
  if (deadline_) {
    // A blocking read or write could outlast the deadline: poll, then try without waiting.
    ensure_non_blocking(ec);
    if (ec) return 0;
  }
  return wait_and_io(iov, write, wait_first_ && !write, ec);
}

std::size_t pipe_end::wait_and_io(const iovec_array& iov, bool write, bool wait, error_code& ec) {
  for (;;) {
    if (!wait) {
      std::size_t n = 0;
      if (try_io(iov.iov.data(), iov.count, write, n, ec) == attempt_status::finished) return n;
    }
    wait = false;
    int timeout_ms = -1;
    if (deadline_) {
      const auto left = *deadline_ - clock::now();
      if (left <= clock::duration::zero()) {
        ec = ipckit::errc::timeout;
        return 0;
      }
      timeout_ms = static_cast<int>(
          std::chrono::ceil<std::chrono::milliseconds>(left).count());
    }
    ::pollfd p{descriptor_.native_handle(), static_cast<short>(write ? POLLOUT : POLLIN), 0};
    const int ready = ::poll(&p, 1, timeout_ms);
    if (ready < 0 && errno != EINTR) {
      ec = last_error();
      return 0;
    }
    // Nothing ready (timeout or EINTR): check the deadline again before trying, since a
    // FIFO reader with no writer yet would read EOF.
    if (ready <= 0) wait = true;
  }
}

void pipe_end::fail(const char* op, const error_code& ec) {
  throw_error(ec, {op, "pipe", "", "fd " + std::to_string(descriptor_.native_handle()), ""});
}

}  // namespace ipckit::detail
