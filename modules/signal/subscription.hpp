// One notifier's shared state: what the process-wide registry fans deliveries into.
#pragma once

#include <ipckit/signal.hpp>

#include <atomic>
#include <condition_variable>
#include <csignal>
#include <deque>
#include <memory>
#include <mutex>

namespace ipckit::signal::detail {

/// Undelivered realtime signals a notifier keeps before it counts them as dropped.
inline constexpr std::size_t queue_limit = 65536;

struct subscription {
  subscription() { sigemptyset(&signals); }

  // Guarded by the registry's mutex.
  sigset_t signals;
  bool registered = false;

  // Guarded by `mutex`. Lock order: registry, then subscription.
  std::mutex mutex;
  std::condition_variable ready;  // blocking waiters
  std::deque<info> queue;
  std::deque<std::unique_ptr<wait_op>> waiting;
  std::size_t dropped = 0;
  bool shut_down = false;  // the execution context is gone
  std::shared_ptr<std::atomic<bool>> stopped = std::make_shared<std::atomic<bool>>(false);

  /// A delivery for this subscription: to the first pending wait, else to the queue.
  void push(const info& delivery);
};

}  // namespace ipckit::signal::detail
