// Tour row "signal": parent and child sigqueue SIGRTMIN+1 to each other; each side
// checks who sent what it received.
#include "tour.hpp"

#include <ipckit/signal.hpp>

#include <boost/asio/bind_cancellation_slot.hpp>
#include <boost/asio/cancellation_signal.hpp>
#include <boost/asio/steady_timer.hpp>

#include <unistd.h>

namespace ipckit::cli {
namespace {

using clock = std::chrono::steady_clock;
constexpr int samples = 200;
constexpr int quit_value = -1;

int ping_signal() { return SIGRTMIN + 1; }

// The next delivery, waited for on the loop, or nullopt at the deadline.
std::optional<signal::info> next_on_loop(event_loop& loop, signal::notifier& from,
                                         std::chrono::milliseconds timeout) {
  std::optional<signal::info> got;
  bool done = false;
  boost::asio::cancellation_signal give_up;
  boost::asio::steady_timer timer(loop.get_executor(), timeout);
  from.async_wait(boost::asio::bind_cancellation_slot(
      give_up.slot(), [&](error_code ec, signal::info delivery) {
        done = true;
        if (!ec) got = delivery;
      }));
  timer.async_wait([&](error_code ec) {
    if (!ec) give_up.emit(boost::asio::cancellation_type::terminal);
  });
  loop.restart();
  while (!done && loop.run_one() > 0) {
  }
  timer.cancel();
  loop.restart();
  loop.poll();
  return got;
}

tour_result signal_row(tour_context& context) {
  signal::notifier replies(context.loop().get_executor(), {ping_signal()});
  auto child = context.start_child("signal", {});
  const int child_pid = child.pid();
  auto ready = next_on_loop(context.loop(), replies, std::chrono::seconds(10));
  if (!ready || ready->sender_pid != child.pid())
    return {false, std::nullopt, std::nullopt, "no ready signal from the child"};
  std::vector<std::chrono::nanoseconds> times;
  std::string trouble;
  for (int i = 1; i <= samples && trouble.empty(); ++i) {
    const auto start = clock::now();
    signal::queue(child.pid(), ping_signal(), i);
    auto reply = next_on_loop(context.loop(), replies, std::chrono::seconds(10));
    if (!reply) trouble = "no reply to value " + std::to_string(i);
    else if (reply->sender_pid != child.pid() || reply->value != i)
      trouble = "reply from pid " + std::to_string(reply->sender_pid.value_or(0)) + " value " +
                std::to_string(reply->value.value_or(0)) + ", expected " + std::to_string(i);
    else times.push_back(clock::now() - start);
  }
  signal::queue(child.pid(), ping_signal(), quit_value);
  const auto status = child.wait(std::chrono::seconds(10));
  if (trouble.empty() && status != 0)
    trouble = "child exit status " + (status ? std::to_string(*status) : std::string("timeout"));
  if (!trouble.empty()) return {false, std::nullopt, std::nullopt, trouble};
  return {true, std::nullopt, median_us(times),
          "sigqueue " + signal::name(ping_signal()) + " both ways, " + std::to_string(samples) +
              " values in order; sender pid " + std::to_string(child_pid) + " uid " +
              std::to_string(ready->sender_uid.value_or(0)) + " seen on the loop"};
}

// The child: echoes each value back to the parent until the quit value; exit 1 when a
// signal comes from anyone but the parent.
int signal_child(std::span<const std::string>) {
  event_loop loop;
  signal::notifier pings(loop.get_executor(), {ping_signal()});
  const pid_t parent = ::getppid();
  signal::queue(parent, ping_signal(), 0);
  for (;;) {
    auto ping = next_on_loop(loop, pings, std::chrono::seconds(30));
    if (!ping || ping->sender_pid != parent) return 1;
    if (ping->value == quit_value) return 0;
    signal::queue(parent, ping_signal(), ping->value.value_or(0));
  }
}

const tour_registration rows[] = {
    tour_registration{{100, "signal", signal_row, signal_child}},
};

}  // namespace
}  // namespace ipckit::cli
