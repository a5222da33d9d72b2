#include <ipckit/unique_fd.hpp>

#include <fcntl.h>
#include <unistd.h>

namespace ipckit {

void unique_fd::reset(int fd) noexcept {
  // Linux releases the descriptor even when close() fails, so it is never retried.
  if (fd_ >= 0 && fd_ != fd) ::close(fd_);
  fd_ = fd;
}

void unique_fd::close(error_code& ec) noexcept {
  ec.clear();
  if (fd_ < 0) return;
  if (::close(std::exchange(fd_, -1)) != 0 && errno != EINTR) ec = last_error();
}

void unique_fd::close() {
  error_code ec;
  const int fd = fd_;
  close(ec);
  if (ec) throw_error(ec, {"close", "", "", "fd " + std::to_string(fd), "close"});
}

unique_fd duplicate(int fd, error_code& ec) noexcept {
  ec.clear();
  const int copy = ::fcntl(fd, F_DUPFD_CLOEXEC, 0);
  if (copy < 0) ec = last_error();
  return unique_fd(copy);
}

unique_fd duplicate(int fd) {
  error_code ec;
  unique_fd copy = duplicate(fd, ec);
  if (ec) throw_error(ec, {"dup", "", "", "fd " + std::to_string(fd), "fcntl"});
  return copy;
}

}  // namespace ipckit
