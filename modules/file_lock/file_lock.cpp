#include <ipckit/file_lock.hpp>

#include <boost/asio/bind_cancellation_slot.hpp>
#include <boost/asio/cancellation_signal.hpp>
#include <boost/asio/io_context.hpp>
#include <boost/asio/steady_timer.hpp>

#include <cerrno>
#include <fcntl.h>
#include <sys/file.h>
#include <unistd.h>

namespace ipckit {
namespace detail {
namespace {

bool busy(int error) { return error == EWOULDBLOCK || error == EAGAIN || error == EACCES; }

int lock_once(const file_lock_state& state, lock_mode mode, bool wait) {
  if (!state.range) {
    const int operation = (mode == lock_mode::shared ? LOCK_SH : LOCK_EX) | (wait ? 0 : LOCK_NB);
    return ::flock(state.fd.get(), operation);
  }
  struct flock request {};
  request.l_type = mode == lock_mode::shared ? F_RDLCK : F_WRLCK;
  request.l_whence = SEEK_SET;
  request.l_start = state.range->start;
  request.l_len = state.range->length;
  request.l_pid = 0;  // required by OFD locks
  return ::fcntl(state.fd.get(), wait ? F_OFD_SETLKW : F_OFD_SETLK, &request);
}

}  // namespace

error_context file_lock_where(const file_lock_state& state, std::string_view op) {
  return {std::string(op), "", "", state.path, state.range ? "fcntl" : "flock"};
}

bool file_lock_acquire(const file_lock_state& state, lock_mode mode, bool wait,
                       const interrupt_token* token, error_code& ec) {
  ec.clear();
  if (!state.fd) {
    ec = errc::closed;
    return false;
  }
  for (;;) {
    if (lock_once(state, mode, wait) == 0) return true;
    const int error = errno;
    if (error == EINTR) {
      if (token && token->cancelled()) {
        ec = boost::asio::error::operation_aborted;
        return false;
      }
      continue;
    }
    if (!wait && busy(error)) return false;
    ec = error_code(error, boost::system::system_category());
    return false;
  }
}

void file_lock_release(file_lock_state& state, error_code& ec) {
  ec.clear();
  if (!state.fd) return;
  int result;
  if (!state.range) {
    result = ::flock(state.fd.get(), LOCK_UN);
  } else {
    struct flock request {};
    request.l_type = F_UNLCK;
    request.l_whence = SEEK_SET;
    request.l_start = state.range->start;
    request.l_len = state.range->length;
    result = ::fcntl(state.fd.get(), F_OFD_SETLK, &request);
  }
  if (result != 0) ec = last_error();
  else state.locked = false;
}

}  // namespace detail

namespace {

unique_fd open_for_lock(const std::filesystem::path& path, error_code& ec) {
  ec.clear();
  const int flags = O_CLOEXEC | O_NOCTTY;
  int fd = ::open(path.c_str(), flags | O_RDWR | O_CREAT, 0600);
  // flock(1) locks files it may only read, and directories; so do we.
  if (fd < 0 && (errno == EACCES || errno == EISDIR || errno == EROFS || errno == ETXTBSY))
    fd = ::open(path.c_str(), flags | O_RDONLY);
  if (fd < 0) ec = last_error();
  return unique_fd(fd);
}

bool valid(const std::optional<byte_range>& range) {
  return !range || (range->start >= 0 && range->length >= 0);
}

}  // namespace

file_lock::file_lock(const executor_type& ex) : executor_(ex) {}

file_lock::file_lock(const executor_type& ex, const std::filesystem::path& path) : executor_(ex) {
  open(path);
}

file_lock::file_lock(const executor_type& ex, const std::filesystem::path& path, byte_range range)
    : executor_(ex) {
  open(path, range);
}

file_lock::file_lock(const executor_type& ex, unique_fd fd) : executor_(ex) {
  assign(std::move(fd));
}

file_lock::file_lock(const executor_type& ex, unique_fd fd, byte_range range) : executor_(ex) {
  assign(std::move(fd), range);
}

file_lock::~file_lock() { close(); }

void file_lock::open(const std::filesystem::path& path, error_code& ec) { open(path, std::nullopt, ec); }

void file_lock::open(const std::filesystem::path& path, std::optional<byte_range> range, error_code& ec) {
  if (!valid(range)) {
    ec = file_lock_errc::invalid_range;
    return;
  }
  unique_fd fd = open_for_lock(path, ec);
  if (ec) return;
  close();
  state_ = std::make_shared<detail::file_lock_state>();
  state_->fd = std::move(fd);
  state_->range = range;
  state_->path = path.string();
}

void file_lock::open(const std::filesystem::path& path, std::optional<byte_range> range) {
  error_code ec;
  open(path, range, ec);
  if (ec) throw_error(ec, {"open", "", "", path.string(), ec.category() == file_lock_category() ? "" : "open"});
}

void file_lock::assign(unique_fd fd, std::optional<byte_range> range, error_code& ec) {
  ec.clear();
  if (!valid(range)) {
    ec = file_lock_errc::invalid_range;
    return;
  }
  close();
  state_ = std::make_shared<detail::file_lock_state>();
  state_->path = "fd " + std::to_string(fd.get());
  state_->fd = std::move(fd);
  state_->range = range;
}

void file_lock::assign(unique_fd fd, std::optional<byte_range> range) {
  error_code ec;
  const int raw = fd.get();
  assign(std::move(fd), range, ec);
  if (ec) throw_error(ec, {"lock", "", "", "fd " + std::to_string(raw), ""});
}

void file_lock::close() noexcept {
  // Dropping our share closes the descriptor, and so releases the lock, once no pending
  // async_lock's worker uses it any more; aborting those makes that prompt.
  if (state_) state_->pending.cancel_all();
  state_.reset();
}

void file_lock::lock(lock_mode mode, error_code& ec) {
  if (!state_) {
    ec = errc::closed;
    return;
  }
  if (detail::file_lock_acquire(*state_, mode, true, nullptr, ec)) {
    state_->locked = true;
    state_->mode = mode;
  }
}

void file_lock::lock(lock_mode mode) {
  error_code ec;
  lock(mode, ec);
  if (ec) throw_error(ec, state_ ? detail::file_lock_where(*state_, "lock") : error_context{"lock", "", "", "", ""});
}

bool file_lock::try_lock(lock_mode mode, error_code& ec) {
  if (!state_) {
    ec = errc::closed;
    return false;
  }
  if (!detail::file_lock_acquire(*state_, mode, false, nullptr, ec)) return false;
  state_->locked = true;
  state_->mode = mode;
  return true;
}

bool file_lock::try_lock(lock_mode mode) {
  error_code ec;
  const bool taken = try_lock(mode, ec);
  if (ec) throw_error(ec, state_ ? detail::file_lock_where(*state_, "lock") : error_context{"lock", "", "", "", ""});
  return taken;
}

bool file_lock::try_lock_for(std::chrono::nanoseconds timeout, lock_mode mode, error_code& ec) {
  if (timeout <= std::chrono::nanoseconds::zero()) return try_lock(mode, ec);
  if (try_lock(mode, ec) || ec) return !ec;
  // The kernel has no timed flock: the wait runs on the worker pool of a private
  // context and a timer interrupts it, as async_lock with a deadline would.
  boost::asio::io_context io;
  boost::asio::cancellation_signal cancel;
  boost::asio::steady_timer timer(io, timeout);
  bool done = false;
  bool acquired = false;
  error_code result;
  detail::async_run_blocking<bool>(
      io.get_executor(),
      [state = state_, mode](const detail::interrupt_token& token, error_code& call_ec) {
        return detail::file_lock_acquire(*state, mode, true, &token, call_ec);
      },
      boost::asio::bind_cancellation_slot(cancel.slot(), [&](error_code call_ec, bool taken) {
        result = call_ec;
        acquired = taken;
        done = true;
        timer.cancel();
      }));
  timer.async_wait([&](error_code timer_ec) {
    if (!timer_ec && !done) cancel.emit(boost::asio::cancellation_type::terminal);
  });
  io.run();
  ec.clear();
  if (acquired && result) {
    error_code ignored;
    detail::file_lock_release(*state_, ignored);
    return false;
  }
  if (acquired) {
    state_->locked = true;
    state_->mode = mode;
    return true;
  }
  if (result != boost::asio::error::operation_aborted) ec = result;
  return false;
}

bool file_lock::try_lock_for(std::chrono::nanoseconds timeout, lock_mode mode) {
  error_code ec;
  const bool taken = try_lock_for(timeout, mode, ec);
  if (ec) throw_error(ec, state_ ? detail::file_lock_where(*state_, "lock") : error_context{"lock", "", "", "", ""});
  return taken;
}

void file_lock::unlock(error_code& ec) {
  ec.clear();
  if (state_) detail::file_lock_release(*state_, ec);
}

void file_lock::unlock() {
  error_code ec;
  unlock(ec);
  if (ec) throw_error(ec, detail::file_lock_where(*state_, "unlock"));
}

}  // namespace ipckit
