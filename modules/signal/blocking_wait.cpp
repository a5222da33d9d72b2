// A blocking wait reads the signalfd itself. The only thread of the process in a
// blocking wait reads it with a blocking read: one system call a delivery, as a thread
// that read a signalfd of its own would make. With a deadline, or when several threads
// wait, each polls the signalfd and the notifier's eventfd and drains the signalfd when
// it is readable: one ppoll and one read a delivery.
#include "blocking_wait.hpp"

#include "registry.hpp"

#include <cerrno>
#include <cstdint>
#include <poll.h>
#include <sys/eventfd.h>
#include <unistd.h>

namespace ipckit::signal::detail {
namespace {

// The registry counts the threads in a blocking wait (only one may read alone).
class blocking_thread {
 public:
  explicit blocking_thread(registry& service) : service_(service) { service_.enter_blocking(); }
  ~blocking_thread() { service_.leave_blocking(); }
  blocking_thread(const blocking_thread&) = delete;
  blocking_thread& operator=(const blocking_thread&) = delete;

 private:
  registry& service_;
};

}  // namespace

std::optional<info> wait_blocking(subscription* sub,
                                  std::optional<std::chrono::steady_clock::time_point> deadline,
                                  bool& aborted, error_code& ec) {
  ec = {};
  aborted = false;
  if (!sub) {
    aborted = true;
    return std::nullopt;
  }
  auto& service = registry::get();
  // A blocking read has no deadline; and a thread whose wake-up signal cannot be
  // blocked could miss a stop() that comes just before its read.
  bool may_read_alone = !deadline && block_wake_signal_here();
  blocking_thread counted(service);
  std::unique_lock lock(sub->mutex);
  for (;;) {
    if (!sub->queue.empty()) {
      info delivery = sub->queue.front();
      sub->queue.pop_front();
      return delivery;
    }
    if (sub->stopped->load()) {
      aborted = true;
      return std::nullopt;
    }
    if (may_read_alone && !sub->has_reading_thread) {
      // Known as the reading thread before the queue is let go: a push or a stop from
      // now on sends it the wake signal, which, blocked here, ends the read at once
      // even if it comes before the read starts.
      sub->has_reading_thread = true;
      sub->reading_thread = pthread_self();
      lock.unlock();
      const auto outcome = service.read_alone(sub);
      lock.lock();
      sub->has_reading_thread = false;
      // Polls from now on when another thread waits too, or when something woke the
      // read (registry.hpp says what), for this wait.
      if (outcome != registry::alone::read) may_read_alone = false;
      continue;
    }
    timespec left{};
    if (deadline) {
      const auto now = std::chrono::steady_clock::now();
      if (now >= *deadline) return std::nullopt;
      const auto ns = std::chrono::duration_cast<std::chrono::nanoseconds>(*deadline - now).count();
      left.tv_sec = static_cast<time_t>(ns / 1'000'000'000);
      left.tv_nsec = static_cast<long>(ns % 1'000'000'000);
    }
    if (sub->wake_fd < 0) {
      sub->wake_fd = ::eventfd(0, EFD_CLOEXEC | EFD_NONBLOCK);
      if (sub->wake_fd < 0) {
        ec = last_error();
        return std::nullopt;
      }
    }
    const int wake_fd = sub->wake_fd;
    ++sub->blocking_waiters;
    lock.unlock();
    // Level-triggered: a signal pending before the poll, or a push made after the queue
    // was looked at (it writes the eventfd while a waiter is counted), ends it at once.
    pollfd fds[2] = {{service.watch_fd(), POLLIN, 0}, {wake_fd, POLLIN, 0}};
    if (::ppoll(fds, 2, deadline ? &left : nullptr, nullptr) > 0) {
      if (fds[1].revents & POLLIN) {
        std::uint64_t count;
        [[maybe_unused]] const ssize_t got = ::read(wake_fd, &count, sizeof count);
      }
      if (fds[0].revents & POLLIN) {
        draining_for = sub;
        service.drain();
        draining_for = nullptr;
      }
    }
    lock.lock();
    --sub->blocking_waiters;
  }
}

}  // namespace ipckit::signal::detail
