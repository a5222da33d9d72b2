// Tour rows of the core: the loop itself, the worker pool, and a child of the tour.
#include "tour.hpp"

#include <ipckit/detail/blocking_call.hpp>

#include <boost/asio/bind_cancellation_slot.hpp>
#include <boost/asio/cancellation_signal.hpp>
#include <boost/asio/post.hpp>
#include <boost/asio/steady_timer.hpp>

#include <poll.h>

namespace ipckit::cli {
namespace {

using clock = std::chrono::steady_clock;
constexpr int samples = 200;

tour_result event_loop_row(tour_context& context) {
  auto ex = context.loop().get_executor();
  std::vector<std::chrono::nanoseconds> times;
  for (int i = 0; i < samples; ++i) {
    const auto start = clock::now();
    boost::asio::post(ex, [&times, start] { times.push_back(clock::now() - start); });
    context.loop().context().restart();
    context.loop().run();
  }
  const bool ok = times.size() == samples;
  return {ok, std::nullopt, median_us(times), "post to run on the loop, " + std::to_string(times.size()) + " handlers"};
}

tour_result worker_pool_row(tour_context& context) {
  auto ex = context.loop().get_executor();
  std::vector<std::chrono::nanoseconds> times;
  for (int i = 0; i < samples; ++i) {
    const auto start = clock::now();
    detail::async_run_blocking<int>(
        ex, [](const detail::interrupt_token&, error_code&) { return 1; },
        [&times, start](error_code ec, int) {
          if (!ec) times.push_back(clock::now() - start);
        });
    context.loop().context().restart();
    context.loop().run();
  }
  // A call that would block forever is cancelled: the pool interrupts it.
  boost::asio::cancellation_signal cancel;
  error_code cancelled_with;
  detail::async_run_blocking<void>(
      ex,
      [](const detail::interrupt_token& token, error_code& ec) {
        while (!token.cancelled())
          if (::poll(nullptr, 0, -1) < 0 && errno != EINTR) ec = last_error();
      },
      boost::asio::bind_cancellation_slot(cancel.slot(), [&](error_code ec) { cancelled_with = ec; }));
  boost::asio::steady_timer timer(ex, std::chrono::milliseconds(5));
  timer.async_wait([&](error_code) { cancel.emit(boost::asio::cancellation_type::terminal); });
  context.loop().context().restart();
  context.loop().run_for(std::chrono::seconds(5));
  const bool ok = times.size() == samples && cancelled_with == boost::asio::error::operation_aborted;
  return {ok, std::nullopt, median_us(times),
          "blocking call on a worker, completed on the loop; a forever-blocked call cancelled: " +
              error_text(cancelled_with)};
}

constexpr int child_exit_code = 42;

tour_result child_process_row(tour_context& context) {
  std::vector<std::chrono::nanoseconds> times;
  std::optional<int> status;
  for (int i = 0; i < 5; ++i) {
    const auto start = clock::now();
    auto child = context.start_child("child process", {});
    status = child.wait(std::chrono::seconds(10));
    if (status != child_exit_code) break;
    times.push_back(clock::now() - start);
  }
  const bool ok = times.size() == 5;
  return {ok, std::nullopt, median_us(times),
          ok ? "spawned itself, reaped by pidfd, exit status 42"
             : "child exit status " + (status ? std::to_string(*status) : std::string("timeout"))};
}

const tour_registration rows[] = {
    tour_registration{{10, "event loop", event_loop_row, {}}},
    tour_registration{{20, "worker pool", worker_pool_row, {}}},
    tour_registration{{30, "child process", child_process_row,
                       [](std::span<const std::string>) { return child_exit_code; }}},
};

}  // namespace
}  // namespace ipckit::cli
