// One notifier's shared state: what the process-wide registry fans deliveries into.
#pragma once

#include <ipckit/signal.hpp>

#include <atomic>
#include <csignal>
#include <deque>
#include <memory>
#include <mutex>
#include <pthread.h>

namespace ipckit::signal::detail {

/// Undelivered realtime signals a notifier keeps before it counts them as dropped.
inline constexpr std::size_t queue_limit = 65536;

class loop_reader;

/// Waits that deliveries completed, each with its delivery, in order, taken from their
/// queues under the locks and completed once the reader holds none. An intrusive list:
/// a fan-out allocates and moves nothing. The waits left when it is destroyed are
/// destroyed uncalled.
class ready_waits {
 public:
  ready_waits() = default;
  ready_waits(const ready_waits&) = delete;
  ready_waits& operator=(const ready_waits&) = delete;
  ~ready_waits() {
    while (pop()) {
    }
  }

  bool empty() const noexcept { return head_ == nullptr; }
  void push(wait_op_ptr op, const info& delivery) noexcept {
    wait_op* added = op.release();
    added->delivery_ = delivery;
    added->next_ = nullptr;
    if (tail_) tail_->next_ = added;
    else head_ = added;
    tail_ = added;
  }
  /// Moves the waits of `other` to the end of this list.
  void splice(ready_waits& other) noexcept {
    if (!other.head_) return;
    if (tail_) tail_->next_ = other.head_;
    else head_ = other.head_;
    tail_ = other.tail_;
    other.head_ = other.tail_ = nullptr;
  }
  /// The first wait (null when none); its delivery is delivery_of(it).
  wait_op_ptr pop() noexcept {
    wait_op* first = head_;
    if (!first) return nullptr;
    head_ = first->next_;
    if (!head_) tail_ = nullptr;
    first->next_ = nullptr;
    return wait_op_ptr(first);
  }
  static const info& delivery_of(const wait_op& op) noexcept { return op.delivery_; }

 private:
  wait_op* head_ = nullptr;
  wait_op* tail_ = nullptr;
};
/// Completes them (complete_here) in order; the caller holds no lock and is a thread
/// running `running_loop` (null for a thread that runs none). If a handler throws, the
/// rest are posted and the exception goes on.
void complete_all(ready_waits& ready, const boost::asio::execution_context* running_loop);

struct subscription {
  subscription() { sigemptyset(&signals); }
  ~subscription();
  subscription(const subscription&) = delete;
  subscription& operator=(const subscription&) = delete;

  // Guarded by the registry's mutex.
  sigset_t signals;
  bool registered = false;

  // Guarded by `mutex`. Lock order: the registry's, then this (loop_reader.hpp has the
  // whole order).
  std::mutex mutex;
  std::deque<info> queue;
  std::deque<wait_op_ptr> waiting;
  std::size_t dropped = 0;
  bool shut_down = false;  // the execution context is gone
  std::shared_ptr<std::atomic<bool>> stopped = std::make_shared<std::atomic<bool>>(false);
  /// The reader of the notifier's execution context: told of every wait that starts and
  /// ends, so that the context watches the signalfd exactly while a wait is pending.
  loop_reader* reader = nullptr;
  /// Threads in wait()/wait_for() that poll, and the eventfd a push or a stop wakes
  /// them with (made on the first blocking wait).
  int blocking_waiters = 0;
  int wake_fd = -1;
  /// The thread in a blocking read of the signalfd for this subscription (registry::
  /// read_alone), which a push or a stop wakes with the interrupt signal.
  bool has_reading_thread = false;
  pthread_t reading_thread{};

  /// A delivery for this subscription: to the first pending wait, else to the queue.
  /// With `ready`, a wait it completes is handed there (the caller completes it once it
  /// holds no lock, with complete_here); without, its completion is posted here.
  void push(const info& delivery, ready_waits* ready = nullptr);
  /// Removes the pending waits (the caller completes or destroys them outside no lock).
  std::deque<wait_op_ptr> take_waiting();
  /// Wakes the threads in a blocking wait (under `mutex`).
  void wake_blocking();
};

/// The subscription whose blocking wait this thread is in while it drains the signalfd:
/// a push to it needs no wake-up, the thread looks at its queue next.
inline thread_local const subscription* draining_for = nullptr;

}  // namespace ipckit::signal::detail
