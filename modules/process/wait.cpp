// Waiting for, signalling and reaping a child through its pidfd.
#include <ipckit/process.hpp>

#include <cerrno>
#include <poll.h>
#include <sys/syscall.h>
#include <sys/wait.h>
#include <unistd.h>

namespace ipckit::detail {
namespace {

int pidfd_send(int pidfd, int signal) {
  return static_cast<int>(::syscall(SYS_pidfd_send_signal, pidfd, signal, nullptr, 0));
}

}  // namespace

bool command_impl::reap(error_code& ec) {
  siginfo_t info{};
  const int fd = pidfd_io.native_handle();
  int result;
  do {
    result = ::waitid(static_cast<idtype_t>(P_PIDFD), static_cast<id_t>(fd), &info, WEXITED | WNOHANG);
  } while (result < 0 && errno == EINTR);
  if (result < 0) {
    ec = last_error();
    return true;
  }
  if (info.si_pid == 0) return false;  // not exited yet
  state = process_state(pid, info.si_code, info.si_status);
  kill_timer.cancel();
  error_code ignored;
  pidfd_io.close(ignored);
  return true;
}

process_state command_impl::wait(error_code& ec) {
  ec.clear();
  if (!started) {
    ec = process::errc::not_started;
    return {};
  }
  if (wait_called) {
    ec = process::errc::already_waited;
    return state.value_or(process_state{});
  }
  wait_called = true;
  for (;;) {
    int timeout_ms = -1;
    if (kill_at) {
      const auto left = std::chrono::ceil<std::chrono::milliseconds>(*kill_at - std::chrono::steady_clock::now());
      if (left.count() <= 0) {
        pidfd_send(pidfd_io.native_handle(), SIGKILL);
        kill_at.reset();
      } else {
        timeout_ms = static_cast<int>(left.count());
      }
    }
    ::pollfd p{pidfd_io.native_handle(), POLLIN, 0};
    const int ready = ::poll(&p, 1, timeout_ms);
    if (ready < 0 && errno != EINTR) {
      ec = last_error();
      return {};
    }
    if (ready > 0 && reap(ec)) break;
  }
  if (ec) return {};
  if (!state->success())
    ec = state->exited() ? process::errc::exit_status : process::errc::signaled;
  return *state;
}

void command_impl::async_wait(std::function<void(error_code, process_state)> done) {
  auto fail_soon = [this, &done](error_code ec) {
    boost::asio::post(ex, [done = std::move(done), ec] { done(ec, process_state{}); });
  };
  if (!started) return fail_soon(process::errc::not_started);
  if (wait_called) return fail_soon(process::errc::already_waited);
  wait_called = true;
  async_pending = true;
  pidfd_io.async_wait(boost::asio::posix::stream_descriptor::wait_read,
                      [self = shared_from_this(), done = std::move(done)](error_code ec) mutable {
                        // A pidfd readiness wait is not cancelled by us except on close.
                        if (!ec && !self->reap(ec)) {
                          // Spurious: wait again (not expected from a pidfd).
                          self->wait_called = false;
                          self->async_wait(std::move(done));
                          return;
                        }
                        self->async_pending = false;
                        if (!ec && self->cancelled) ec = boost::asio::error::operation_aborted;
                        done(ec, self->state.value_or(process_state{}));
                      });
}

void command_impl::send(int signal, error_code& ec) {
  ec.clear();
  if (!started) {
    ec = process::errc::not_started;
    return;
  }
  if (state || !pidfd_io.is_open()) {
    ec = boost::system::errc::make_error_code(boost::system::errc::no_such_process);
    return;
  }
  if (pidfd_send(pidfd_io.native_handle(), signal) != 0) ec = last_error();
}

void command_impl::cancel() {
  if (!started || state) return;
  error_code ignored;
  send(cancel_signal, ignored);
  if (wait_delay <= std::chrono::nanoseconds::zero() || cancel_signal == SIGKILL) return;
  kill_at = std::chrono::steady_clock::now() +
            std::chrono::duration_cast<std::chrono::steady_clock::duration>(wait_delay);
  kill_timer.expires_at(*kill_at);
  kill_timer.async_wait([weak = weak_from_this()](error_code ec) {
    auto self = weak.lock();
    if (ec || !self || self->state || !self->pidfd_io.is_open()) return;
    pidfd_send(self->pidfd_io.native_handle(), SIGKILL);
  });
}

void command_impl::cancel_from_wait() {
  // Cancellation slots may be emitted from another thread: signal on the loop.
  boost::asio::post(ex, [weak = weak_from_this()] {
    if (auto self = weak.lock()) {
      self->cancelled = true;  // the pending async_wait then ends with operation_aborted
      self->cancel();
    }
  });
}

void command_impl::kill_and_reap() noexcept {
  if (!started || state || !pidfd_io.is_open()) return;
  const int fd = pidfd_io.native_handle();
  pidfd_send(fd, SIGKILL);
  if (async_pending) return;  // the pending async_wait reaps it
  siginfo_t info{};
  while (::waitid(static_cast<idtype_t>(P_PIDFD), static_cast<id_t>(fd), &info, WEXITED) < 0 &&
         errno == EINTR) {
  }
  state = process_state(pid, info.si_code, info.si_status);
}

command_impl::~command_impl() = default;

}  // namespace ipckit::detail
