// One notifier's shared state: what the process-wide registry fans deliveries into.
#pragma once

#include <ipckit/signal.hpp>

#include <boost/container/small_vector.hpp>

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

/// A wait that a delivery completes, taken from its queue under the locks.
struct ready_wait {
  wait_op_ptr op;
  info delivery;
};
/// Kept on the reader's stack: a delivery costs no allocation for it.
using ready_waits = boost::container::small_vector<ready_wait, 4>;
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
