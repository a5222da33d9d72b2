#include <ipckit/semaphore.hpp>

#include <cerrno>
#include <climits>
#include <fcntl.h>
#include <poll.h>
#include <sys/eventfd.h>
#include <sys/uio.h>
#include <unistd.h>

namespace ipckit {
namespace {

using clock = std::chrono::steady_clock;

void fail(const error_code& ec, std::string_view op, std::string_view syscall, int fd) {
  const bool ours = ec.category() != boost::system::system_category();
  throw_error(ec, {std::string(op), "eventfd", "", "fd " + std::to_string(fd), ours ? "" : std::string(syscall)});
}

bool set_non_blocking(int fd) {
  const int flags = ::fcntl(fd, F_GETFL);
  return flags >= 0 && ((flags & O_NONBLOCK) || ::fcntl(fd, F_SETFL, flags | O_NONBLOCK) == 0);
}

// Reads one unit without blocking, whatever the descriptor's O_NONBLOCK: eventfd reads
// honour RWF_NOWAIT. A kernel that refuses the flag gets O_NONBLOCK set instead.
ssize_t read_unit_now(int fd, std::uint64_t& unit) {
  ::iovec iov{&unit, sizeof unit};
  const ssize_t n = ::preadv2(fd, &iov, 1, -1, RWF_NOWAIT);
  if (n >= 0 || errno != EOPNOTSUPP) return n;
  if (!set_non_blocking(fd)) return -1;
  return ::read(fd, &unit, sizeof unit);
}

// Posts of fewer units than this cannot take the count near its limit of 2^64-2 in any
// real program; a larger one is written non-blocking so that it fails instead of waiting.
constexpr std::uint64_t large_post = std::uint64_t{1} << 32;

}  // namespace

event_semaphore::event_semaphore(const executor_type& ex, unsigned value) : descriptor_(ex) { create(value); }

void event_semaphore::create(unsigned value, error_code& ec) {
  ec.clear();
  const int fd = ::eventfd(value, EFD_SEMAPHORE | EFD_CLOEXEC);
  if (fd < 0) {
    ec = last_error();
    return;
  }
  descriptor_.assign(fd);
  non_blocking_ = false;
}

void event_semaphore::use_non_blocking() noexcept {
  if (non_blocking_ || !is_open()) return;
  // On failure the attempts still never block: they use RWF_NOWAIT.
  non_blocking_ = set_non_blocking(native_handle());
}

void event_semaphore::create(unsigned value) {
  error_code ec;
  create(value, ec);
  if (ec) fail(ec, "create", "eventfd", -1);
}

void event_semaphore::assign(unique_fd fd, error_code& ec) {
  ec.clear();
  // Blocking or not, it is used as it is: tries never block (RWF_NOWAIT), and a blocking
  // wait on a non-blocking descriptor polls.
  const int flags = ::fcntl(fd.get(), F_GETFL);
  if (flags < 0) {
    ec = last_error();
    return;
  }
  descriptor_.assign(fd.release());
  non_blocking_ = (flags & O_NONBLOCK) != 0;
}

void event_semaphore::assign(unique_fd fd) {
  error_code ec;
  const int raw = fd.get();
  assign(std::move(fd), ec);
  if (ec) fail(ec, "assign", "fcntl", raw);
}

void event_semaphore::close() noexcept {
  descriptor_.close();
  non_blocking_ = false;
}

void event_semaphore::post(std::uint64_t units, error_code& ec) {
  ec.clear();
  if (!is_open()) {
    ec = errc::closed;
    return;
  }
  if (units >= large_post && !non_blocking_) {
    if (!set_non_blocking(native_handle())) {
      ec = last_error();
      return;
    }
    non_blocking_ = true;
  }
  for (;;) {
    // Would block only at a count of 2^64-2; that is a full semaphore, not a wait.
    if (::write(native_handle(), &units, sizeof units) == sizeof units) return;
    if (errno == EINTR) continue;
    ec = errno == EAGAIN ? error_code(semaphore_errc::value_too_large) : last_error();
    return;
  }
}

void event_semaphore::post(std::uint64_t units) {
  error_code ec;
  post(units, ec);
  if (ec) fail(ec, "post", "write", native_handle());
}

void event_semaphore::try_take(error_code& ec) {
  ec.clear();
  if (!is_open()) {
    ec = errc::closed;
    return;
  }
  std::uint64_t unit = 0;
  for (;;) {
    const ssize_t n = non_blocking_ ? ::read(native_handle(), &unit, sizeof unit) : read_unit_now(native_handle(), unit);
    if (n == sizeof unit) return;
    if (errno == EINTR) continue;
    ec = errno == EAGAIN ? error_code(boost::asio::error::would_block) : last_error();
    return;
  }
}

bool event_semaphore::try_wait(error_code& ec) {
  try_take(ec);
  if (ec == boost::asio::error::would_block) {
    ec.clear();
    return false;
  }
  return !ec;
}

bool event_semaphore::try_wait() {
  error_code ec;
  const bool taken = try_wait(ec);
  if (ec) fail(ec, "wait", "read", native_handle());
  return taken;
}

bool event_semaphore::wait_for(std::chrono::nanoseconds timeout, error_code& ec) {
  const auto deadline = clock::now() + timeout;
  for (;;) {
    try_take(ec);
    if (ec != boost::asio::error::would_block) return !ec;
    ec.clear();
    const auto left = std::chrono::ceil<std::chrono::milliseconds>(deadline - clock::now());
    if (left.count() <= 0) return false;
    pollfd ready{native_handle(), POLLIN, 0};
    if (::poll(&ready, 1, static_cast<int>(std::min<long long>(left.count(), INT_MAX))) < 0 && errno != EINTR) {
      ec = last_error();
      return false;
    }
  }
}

bool event_semaphore::wait_for(std::chrono::nanoseconds timeout) {
  error_code ec;
  const bool taken = wait_for(timeout, ec);
  if (ec) fail(ec, "wait", "read", native_handle());
  return taken;
}

void event_semaphore::wait(error_code& ec) {
  ec.clear();
  if (!is_open()) {
    ec = errc::closed;
    return;
  }
  // One blocking read; EAGAIN only once the descriptor is non-blocking (an async_wait, a
  // large post, or it came so), and then readiness is waited for here.
  std::uint64_t unit = 0;
  for (;;) {
    if (::read(native_handle(), &unit, sizeof unit) == sizeof unit) return;
    if (errno == EINTR) continue;
    if (errno != EAGAIN) {
      ec = last_error();
      return;
    }
    pollfd ready{native_handle(), POLLIN, 0};
    if (::poll(&ready, 1, -1) < 0 && errno != EINTR) {
      ec = last_error();
      return;
    }
  }
}

void event_semaphore::wait() {
  error_code ec;
  wait(ec);
  if (ec) fail(ec, "wait", "read", native_handle());
}

}  // namespace ipckit
