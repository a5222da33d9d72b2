#include <ipckit/file_lock.hpp>

#include <cerrno>
#include <charconv>
#include <chrono>
#include <fcntl.h>
#include <string>
#include <sys/file.h>
#include <sys/stat.h>
#include <thread>
#include <unistd.h>

namespace ipckit {
namespace {

std::optional<pid_t> read_pid(int fd) {
  char buffer[32];
  const ssize_t n = ::pread(fd, buffer, sizeof buffer - 1, 0);
  if (n <= 0) return std::nullopt;
  long value = 0;
  auto [end, error] = std::from_chars(buffer, buffer + n, value);
  if (error != std::errc{} || value <= 0 || (end != buffer + n && *end != '\n')) return std::nullopt;
  return static_cast<pid_t>(value);
}

// The holder writes its pid just after taking the lock; a reader that comes in between
// sees an empty file, so it looks again for a little while.
pid_t wait_for_holder_pid(int fd) {
  const auto deadline = std::chrono::steady_clock::now() + std::chrono::milliseconds(200);
  for (;;) {
    if (auto pid = read_pid(fd)) return *pid;
    if (std::chrono::steady_clock::now() > deadline) return 0;
    std::this_thread::sleep_for(std::chrono::milliseconds(1));
  }
}

// The same file as the path names now? A holder that is releasing unlinks the file
// before it unlocks, so a lock taken on the old inode proves nothing.
bool still_linked(int fd, const std::filesystem::path& path) {
  struct stat by_fd {}, by_path {};
  if (::fstat(fd, &by_fd) != 0 || ::stat(path.c_str(), &by_path) != 0) return false;
  return by_fd.st_dev == by_path.st_dev && by_fd.st_ino == by_path.st_ino;
}

}  // namespace

already_running_error::already_running_error(std::string path, pid_t pid)
    : op_error(file_lock_errc::already_running, {"pidfile", "", "", path, ""}),
      pid_(pid),
      message_("pidfile " + path + ": already running as pid " +
               (pid > 0 ? std::to_string(pid) : std::string("unknown"))) {}

pidfile::pidfile(const std::filesystem::path& path, mode_t mode) {
  error_code ec;
  pidfile taken(path, ec, mode);
  if (ec == file_lock_errc::already_running) throw already_running_error(path.string(), holder(path).value_or(0));
  if (ec) throw_error(ec, {"pidfile", "", "", path.string(), ""});
  *this = std::move(taken);
}

pidfile::pidfile(const std::filesystem::path& path, error_code& ec, mode_t mode) {
  ec.clear();
  for (int attempt = 0; attempt < 100; ++attempt) {
    unique_fd fd(::open(path.c_str(), O_RDWR | O_CREAT | O_CLOEXEC | O_NOFOLLOW | O_NOCTTY, mode));
    if (!fd) {
      ec = last_error();
      return;
    }
    int locked;
    do locked = ::flock(fd.get(), LOCK_EX | LOCK_NB);
    while (locked != 0 && errno == EINTR);
    if (locked != 0) {
      if (errno == EWOULDBLOCK) {
        wait_for_holder_pid(fd.get());
        ec = file_lock_errc::already_running;
      } else {
        ec = last_error();
      }
      return;
    }
    if (!still_linked(fd.get(), path)) continue;  // raced with a holder's release
    // Whatever is in the file is a crashed holder's: its lock died with it.
    const std::string text = std::to_string(::getpid()) + "\n";
    if (::ftruncate(fd.get(), 0) != 0 ||
        ::pwrite(fd.get(), text.data(), text.size(), 0) != static_cast<ssize_t>(text.size())) {
      ec = last_error();
      return;
    }
    path_ = path;
    fd_ = std::move(fd);
    return;
  }
  ec = boost::system::errc::make_error_code(boost::system::errc::device_or_resource_busy);
}

pidfile& pidfile::operator=(pidfile&& other) noexcept {
  if (this != &other) {
    release();
    path_ = std::move(other.path_);
    fd_ = std::move(other.fd_);
  }
  return *this;
}

pidfile::~pidfile() { release(); }

void pidfile::release() noexcept {
  if (!fd_) return;
  // Unlink first, then unlock (by closing): see still_linked.
  ::unlink(path_.c_str());
  fd_.reset();
}

std::optional<pid_t> pidfile::holder(const std::filesystem::path& path) {
  unique_fd fd(::open(path.c_str(), O_RDONLY | O_CLOEXEC | O_NOFOLLOW | O_NOCTTY));
  if (!fd) return std::nullopt;
  if (::flock(fd.get(), LOCK_SH | LOCK_NB) == 0) return std::nullopt;  // nobody holds it
  const pid_t pid = wait_for_holder_pid(fd.get());
  return pid > 0 ? std::optional<pid_t>(pid) : std::nullopt;
}

}  // namespace ipckit
