// make_fifo and the FIFO openers: the reader opens at once, the writer waits for a reader.
#include "fifo_open.hpp"

#include <ipckit/pipe.hpp>

#include <cerrno>
#include <fcntl.h>
#include <poll.h>
#include <sys/inotify.h>
#include <sys/ioctl.h>
#include <sys/stat.h>
#include <unistd.h>

namespace ipckit {

namespace pipe_internal {

namespace {

// Opens the path with `flags` and makes sure it is a FIFO. The open itself never waits
// (O_NONBLOCK); the descriptor is then put in blocking mode, as every descriptor ipckit
// makes starts (docs/pipe.md).
unique_fd open_fifo_fd(const std::filesystem::path& path, int flags, error_code& ec) {
  ec.clear();
  unique_fd fd(::open(path.c_str(), flags | O_NONBLOCK | O_CLOEXEC | O_NOCTTY));
  if (!fd) {
    ec = last_error();
    return fd;
  }
  struct stat st {};
  if (::fstat(fd.get(), &st) != 0) {
    ec = last_error();
    return unique_fd();
  }
  if (!S_ISFIFO(st.st_mode)) {
    ec = pipe::errc::not_a_fifo;
    return unique_fd();
  }
  int blocking = 0;
  if (::ioctl(fd.get(), FIONBIO, &blocking) != 0) {
    ec = last_error();
    return unique_fd();
  }
  return fd;
}

}  // namespace

unique_fd try_open_fifo_writer(const std::filesystem::path& path, error_code& ec) {
  return open_fifo_fd(path, O_WRONLY, ec);
}

unique_fd watch_opens(const std::filesystem::path& path) {
  unique_fd fd(::inotify_init1(IN_NONBLOCK | IN_CLOEXEC));
  if (!fd) return fd;
  if (::inotify_add_watch(fd.get(), path.c_str(), IN_OPEN) < 0) return unique_fd();
  return fd;
}

void drain(int fd) {
  alignas(inotify_event) char buffer[4096];
  while (::read(fd, buffer, sizeof buffer) > 0) {
  }
}

}  // namespace pipe_internal

void make_fifo(const std::filesystem::path& path, mode_t mode, error_code& ec) {
  ec.clear();
  if (::mkfifo(path.c_str(), mode) == 0) {
    // mkfifo applies the umask; the caller asked for exactly this mode.
    if (::chmod(path.c_str(), mode) != 0) ec = last_error();
    return;
  }
  if (errno != EEXIST) {
    ec = last_error();
    return;
  }
  struct stat st {};
  if (::lstat(path.c_str(), &st) != 0) {
    ec = last_error();
  } else if (!S_ISFIFO(st.st_mode)) {
    ec = pipe::errc::not_a_fifo;
  }
}

void make_fifo(const std::filesystem::path& path, error_code& ec) { make_fifo(path, 0600, ec); }

void make_fifo(const std::filesystem::path& path, mode_t mode) {
  error_code ec;
  make_fifo(path, mode, ec);
  if (ec) throw_error(ec, {"mkfifo", "", "", path.string(), ""});
}

namespace {

// O_NONBLOCK makes the open itself return at once even with no writer.
unique_fd open_reader_fd(const std::filesystem::path& path, error_code& ec) {
  return pipe_internal::open_fifo_fd(path, O_RDONLY, ec);
}

}  // namespace

pipe_reader open_fifo_reader(const boost::asio::any_io_executor& ex,
                             const std::filesystem::path& path, error_code& ec) {
  pipe_reader reader(ex);
  unique_fd fd = open_reader_fd(path, ec);
  if (ec) return reader;
  reader.assign(std::move(fd), ec);
  reader.set_wait_first(true);
  return reader;
}

pipe_reader open_fifo_reader(const boost::asio::any_io_executor& ex,
                             const std::filesystem::path& path) {
  error_code ec;
  auto reader = open_fifo_reader(ex, path, ec);
  if (ec) throw_error(ec, {"open", "", "", path.string(), ""});
  return reader;
}

pipe_reader open_fifo_server(const boost::asio::any_io_executor& ex,
                             const std::filesystem::path& path, error_code& ec) {
  pipe_reader reader = open_fifo_reader(ex, path, ec);
  if (ec) return reader;
  // Our own writer: the writer count never drops to zero, so no EOF (and no endless
  // readiness) when the last client closes. We never write to it.
  unique_fd keep(::open(path.c_str(), O_WRONLY | O_NONBLOCK | O_CLOEXEC | O_NOCTTY));
  if (!keep) {
    ec = last_error();
    reader.close();
    return reader;
  }
  reader.hold(std::move(keep));
  reader.set_wait_first(false);
  return reader;
}

pipe_reader open_fifo_server(const boost::asio::any_io_executor& ex,
                             const std::filesystem::path& path) {
  error_code ec;
  auto reader = open_fifo_server(ex, path, ec);
  if (ec) throw_error(ec, {"open", "", "", path.string(), ""});
  return reader;
}

pipe_writer open_fifo_writer(const boost::asio::any_io_executor& ex,
                             const std::filesystem::path& path,
                             std::chrono::nanoseconds timeout, error_code& ec) {
  using clock = std::chrono::steady_clock;
  pipe_writer writer(ex);
  const auto deadline = clock::now() + timeout;
  unique_fd watch = pipe_internal::watch_opens(path);
  for (;;) {
    unique_fd fd = pipe_internal::try_open_fifo_writer(path, ec);
    if (!ec) {
      writer.assign(std::move(fd), ec);
      return writer;
    }
    if (ec != boost::system::errc::no_such_device_or_address) return writer;
    int wait_ms = pipe_internal::recheck_ms;
    if (timeout > std::chrono::nanoseconds::zero()) {
      const auto left = std::chrono::ceil<std::chrono::milliseconds>(deadline - clock::now());
      if (left.count() <= 0) {
        ec = ipckit::errc::timeout;
        return writer;
      }
      if (left.count() < wait_ms) wait_ms = static_cast<int>(left.count());
    }
    ::pollfd p{watch.get(), POLLIN, 0};
    if (::poll(&p, watch ? 1 : 0, wait_ms) > 0) pipe_internal::drain(watch.get());
  }
}

pipe_writer open_fifo_writer(const boost::asio::any_io_executor& ex,
                             const std::filesystem::path& path,
                             std::chrono::nanoseconds timeout) {
  error_code ec;
  auto writer = open_fifo_writer(ex, path, timeout, ec);
  if (ec) throw_error(ec, {"open", "", "", path.string(), ""});
  return writer;
}

}  // namespace ipckit
