// The signalfd read on the loop: one per execution context, watching the process-wide
// signalfd exactly while a notifier of that context has a wait pending. See
// docs/signal.md ("How it works").
#pragma once

#include "subscription.hpp"

#include <boost/asio/any_io_executor.hpp>
#include <boost/asio/execution_context.hpp>
#include <boost/asio/posix/stream_descriptor.hpp>

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

  /// A wait was queued (called under the subscription's mutex): the signalfd is watched.
  void wait_added();
  /// `count` waits left their queue (under the subscription's mutex).
  void wait_removed(std::size_t count);

 private:
  void shutdown() override;
  void arm();  // under mutex_
  void on_readable(const error_code& ec, std::uint64_t generation);
  void stop_if_idle();

  std::mutex mutex_;
  std::vector<std::weak_ptr<subscription>> tracked_;
  std::optional<boost::asio::any_io_executor> executor_;
  std::optional<boost::asio::posix::stream_descriptor> watch_;  // a dup of the signalfd
  long waits_ = 0;            // pending waits of this context's notifiers
  bool armed_ = false;        // an async_wait on watch_ is pending
  bool idle_check_posted_ = false;
  int idle_passes_ = 0;
  std::uint64_t generation_ = 0;  // tells a cancelled watch's completion from the current one
  bool shut_ = false;
};

}  // namespace ipckit::signal::detail
