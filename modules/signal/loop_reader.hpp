// The signalfd read on the loop: one per execution context, watching the process-wide
// signalfd exactly while a notifier of that context has a wait pending. See
// docs/signal.md ("How it works").
#pragma once

#include "subscription.hpp"

#include <ipckit/detail/polled_descriptor.hpp>

#include <boost/asio/any_io_executor.hpp>
#include <boost/asio/execution_context.hpp>

#include <atomic>
#include <cstdint>
#include <memory>
#include <mutex>
#include <optional>
#include <vector>

namespace ipckit::signal::detail {

class loop_reader : public boost::asio::execution_context::service {
 public:
  using key_type = loop_reader;
  static inline boost::asio::execution_context::id id;

  explicit loop_reader(boost::asio::execution_context& context);

  /// A notifier of this context: tracked for shutdown; the first one's executor runs
  /// the reads.
  void attach(const std::shared_ptr<subscription>& sub, const boost::asio::any_io_executor& ex);

  /// A wait was queued: the signalfd is watched. Called after the subscription's mutex
  /// is released (arming reads the signalfd at once, which takes the registry's lock).
  void wait_added();
  /// `count` waits left their queue (under the subscription's mutex; takes no lock).
  void wait_removed(std::size_t count);

 private:
  void shutdown() override;
  void arm();  // under mutex_, with armed_ false
  void on_read(const error_code& ec);
  void watch_on_if_waiting();
  void stop_if_idle();

  // Guards tracked_, executor_, watch_ and the arming (arm, cancel). Lock order: mutex_,
  // then the watch's reactor lock, then the registry's (an attempt reads under both),
  // then a subscription's; nothing holding those takes mutex_.
  std::mutex mutex_;
  std::vector<std::weak_ptr<subscription>> tracked_;
  std::optional<boost::asio::any_io_executor> executor_;
  /// A dup of the signalfd on this context's reactor: registered once, edge-triggered,
  /// and read only after an edge (no epoll_ctl per wait, no read that finds nothing).
  std::optional<ipckit::detail::polled_descriptor> watch_;
  /// Pending waits of this context's notifiers, and whether a read attempt is pending:
  /// set by arm(), cleared by the attempt that finishes or by the idle cancel. The
  /// hot path (a handler that waits again) reads them without mutex_; each side of a
  /// race checks the other's after its own write (sequentially consistent).
  std::atomic<long> waits_{0};
  std::atomic<bool> armed_{false};
  std::atomic<bool> idle_check_posted_{false};
  int idle_passes_ = 0;  // under mutex_
  /// The waits an attempt completed, until its completion completes them. A spin lock,
  /// held for a move: the attempt holds the reactor's and the registry's locks.
  std::atomic_flag read_busy_;
  ready_waits read_;
  std::atomic<bool> shut_{false};
};

}  // namespace ipckit::signal::detail
