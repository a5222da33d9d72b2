// unique_fd: sole owner of a file descriptor, closed exactly once.
#pragma once

#include <ipckit/error.hpp>

#include <utility>

namespace ipckit {

/// Owns one file descriptor (or none, as -1) and closes it on destruction.
/// Move-only. Not thread safe: one owner, one thread at a time, like std::unique_ptr.
class unique_fd {
 public:
  unique_fd() noexcept = default;
  explicit unique_fd(int fd) noexcept : fd_(fd) {}
  unique_fd(unique_fd&& other) noexcept : fd_(other.release()) {}
  unique_fd& operator=(unique_fd&& other) noexcept {
    if (this != &other) reset(other.release());
    return *this;
  }
  unique_fd(const unique_fd&) = delete;
  unique_fd& operator=(const unique_fd&) = delete;
  ~unique_fd() { reset(); }

  int get() const noexcept { return fd_; }
  bool is_open() const noexcept { return fd_ >= 0; }
  explicit operator bool() const noexcept { return is_open(); }

  /// Gives up ownership without closing.
  int release() noexcept { return std::exchange(fd_, -1); }

  /// Closes the current descriptor (errors ignored, as close() must not be retried
  /// on Linux) and takes ownership of `fd`.
  void reset(int fd = -1) noexcept;

  /// Closes and reports what close(2) said (EIO on some file systems).
  void close(error_code& ec) noexcept;
  void close();

 private:
  int fd_ = -1;
};

/// A close-on-exec duplicate of `fd`.
unique_fd duplicate(int fd, error_code& ec) noexcept;
unique_fd duplicate(int fd);

}  // namespace ipckit
