#include <ipckit/semaphore.hpp>

#include <cerrno>
#include <climits>
#include <fcntl.h>
#include <poll.h>
#include <sys/eventfd.h>
#include <unistd.h>

namespace ipckit {
namespace {

using clock = std::chrono::steady_clock;

void fail(const error_code& ec, std::string_view op, std::string_view syscall, int fd) {
  const bool ours = ec.category() != boost::system::system_category();
  throw_error(ec, {std::string(op), "eventfd", "", "fd " + std::to_string(fd), ours ? "" : std::string(syscall)});
}

}  // namespace

event_semaphore::event_semaphore(const executor_type& ex, unsigned value) : descriptor_(ex) { create(value); }

void event_semaphore::create(unsigned value, error_code& ec) {
  ec.clear();
  const int fd = ::eventfd(value, EFD_SEMAPHORE | EFD_CLOEXEC | EFD_NONBLOCK);
  if (fd < 0) {
    ec = last_error();
    return;
  }
  close();
  descriptor_.assign(fd, ec);
  if (ec) ::close(fd);
}

void event_semaphore::create(unsigned value) {
  error_code ec;
  create(value, ec);
  if (ec) fail(ec, "create", "eventfd", -1);
}

void event_semaphore::assign(unique_fd fd, error_code& ec) {
  ec.clear();
  // An inherited descriptor may be blocking; every read here must not block.
  const int flags = ::fcntl(fd.get(), F_GETFL);
  if (flags < 0 || ::fcntl(fd.get(), F_SETFL, flags | O_NONBLOCK) != 0) {
    ec = last_error();
    return;
  }
  close();
  descriptor_.assign(fd.get(), ec);
  if (!ec) fd.release();
}

void event_semaphore::assign(unique_fd fd) {
  error_code ec;
  const int raw = fd.get();
  assign(std::move(fd), ec);
  if (ec) fail(ec, "assign", "fcntl", raw);
}

void event_semaphore::close() noexcept {
  error_code ignored;
  descriptor_.close(ignored);
}

void event_semaphore::post(std::uint64_t units, error_code& ec) {
  ec.clear();
  if (!is_open()) {
    ec = errc::closed;
    return;
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
    if (::read(native_handle(), &unit, sizeof unit) == sizeof unit) return;
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
  for (;;) {
    try_take(ec);
    if (ec != boost::asio::error::would_block) return;
    ec.clear();
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
