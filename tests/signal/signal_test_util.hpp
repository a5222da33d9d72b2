// Waiting for a delivery on a loop, with a deadline.
#pragma once

#include <ipckit/signal.hpp>

#include "test_support.hpp"

#include <boost/asio/bind_cancellation_slot.hpp>
#include <boost/asio/cancellation_signal.hpp>

namespace ipckit::test {

/// The next delivery to `from`, run on `io`; nullopt at the deadline (the wait is
/// cancelled then, and any delivery stays queued for the next wait).
inline std::optional<signal::info> next_delivery(boost::asio::io_context& io, signal::notifier& from,
                                                 std::chrono::milliseconds timeout = 10s) {
  std::optional<signal::info> got;
  bool done = false;
  boost::asio::cancellation_signal give_up;
  from.async_wait(boost::asio::bind_cancellation_slot(
      give_up.slot(), [&](error_code ec, signal::info delivery) {
        done = true;
        if (!ec) got = delivery;
      }));
  if (!run_until(io, [&] { return done; }, timeout)) {
    give_up.emit(boost::asio::cancellation_type::terminal);
    run_until(io, [&] { return done; }, 5s);
  }
  return got;
}

}  // namespace ipckit::test
