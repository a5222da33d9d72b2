// `ipckit signal send SIG PID [--value N]` and `ipckit signal watch SIG... [--count N] [--json]`.
#include "command.hpp"

#include <ipckit/signal.hpp>

#include <nlohmann/json.hpp>

#include <charconv>
#include <iostream>
#include <unistd.h>

namespace ipckit::cli {
namespace {

int signal_argument(const std::string& text) {
  error_code ec;
  const int number = signal::parse(text, ec);
  if (ec) throw usage_error("unknown signal \"" + text + "\"");
  return number;
}

long long integer_argument(const std::string& text, std::string_view what) {
  long long value = 0;
  auto [end, ec] = std::from_chars(text.data(), text.data() + text.size(), value);
  if (ec != std::errc{} || end != text.data() + text.size() || text.empty())
    throw usage_error("invalid " + std::string(what) + " \"" + text + "\"");
  return value;
}

int run_send(std::span<const std::string> args) {
  static constexpr flag_spec flags[] = {{"value", true}};
  const auto parsed = arguments::parse(args, flags);
  if (parsed.positional().size() != 2) throw usage_error("send needs SIG and PID");
  const int number = signal_argument(parsed.positional()[0]);
  const long long pid = integer_argument(parsed.positional()[1], "pid");
  if (pid > INT32_MAX || pid < INT32_MIN) throw usage_error("invalid pid \"" + parsed.positional()[1] + "\"");
  if (auto value = parsed.integer("value")) {
    if (pid <= 0) throw usage_error("--value needs one process (a pid > 0), not a group");
    if (*value > INT32_MAX || *value < INT32_MIN) throw usage_error("--value must fit in an int");
    signal::queue(static_cast<pid_t>(pid), number, static_cast<int>(*value));
  } else if (pid > 0) {
    signal::send(static_cast<pid_t>(pid), number);
  } else {
    signal::send_group(static_cast<pid_t>(-pid), number);  // kill's convention: -PGID, 0 = own group
  }
  return exit_ok;
}

nlohmann::ordered_json optional_json(const auto& value) {
  return value ? nlohmann::ordered_json(*value) : nlohmann::ordered_json();
}

void print_delivery(const signal::info& delivery, bool json) {
  if (json) {
    nlohmann::ordered_json line{
        {"signal", signal::name(delivery.number)}, {"number", delivery.number},
        {"sender_pid", optional_json(delivery.sender_pid)},
        {"sender_uid", optional_json(delivery.sender_uid)},
        {"code", signal::code_name(delivery)},     {"value", optional_json(delivery.value)},
    };
    std::cout << line.dump() << std::endl;
    return;
  }
  std::cout << signal::name(delivery.number);
  if (delivery.sender_pid) std::cout << " from pid " << *delivery.sender_pid;
  if (delivery.sender_uid) std::cout << " uid " << *delivery.sender_uid;
  std::cout << " (" << signal::code_name(delivery) << ")";
  if (delivery.value) std::cout << " value " << *delivery.value;
  std::cout << std::endl;
}

int run_watch(std::span<const std::string> args) {
  static constexpr flag_spec flags[] = {{"count", true}, {"json", false}};
  const auto parsed = arguments::parse(args, flags);
  if (parsed.positional().empty()) throw usage_error("watch needs at least one signal");
  std::vector<int> numbers;
  for (const auto& text : parsed.positional()) numbers.push_back(signal_argument(text));
  const long long count = parsed.integer("count").value_or(0);
  if (count < 0) throw usage_error("--count must be >= 0");
  const bool json = parsed.has("json");

  event_loop loop;
  signal::notifier watcher(loop.get_executor(), numbers);
  if (json) {
    nlohmann::ordered_json watching{{"watching", nlohmann::ordered_json::array()}, {"pid", ::getpid()}};
    for (int number : numbers) watching["watching"].push_back(signal::name(number));
    std::cout << watching.dump() << std::endl;
  } else {
    std::cout << "watching";
    for (int number : numbers) std::cout << ' ' << signal::name(number);
    std::cout << " in pid " << ::getpid() << std::endl;
  }
  long long seen = 0;
  std::function<void(error_code, signal::info)> on_signal = [&](error_code ec, signal::info delivery) {
    if (ec) return;
    print_delivery(delivery, json);
    if (count == 0 || ++seen < count) watcher.async_wait(on_signal);
  };
  watcher.async_wait(on_signal);
  loop.run();
  return exit_ok;
}

int run_signal(std::span<const std::string> args) {
  if (args.empty()) throw usage_error("missing send or watch");
  if (args[0] == "send") return run_send(args.subspan(1));
  if (args[0] == "watch") return run_watch(args.subspan(1));
  throw usage_error("unknown signal command \"" + args[0] + "\"");
}

const registration reg{{
    "signal",
    "send signals and watch deliveries with their sender",
    "Usage: ipckit signal send SIG PID [--value N]\n"
    "       ipckit signal watch SIG... [--count N] [--json]\n\n"
    "SIG is a name with or without SIG (TERM, SIGUSR1, RTMIN+2) or a number.\n\n"
    "send    sends SIG to PID (kill); a negative PID is a process group, 0 this one's.\n"
    "        --value N  sends it with sigqueue and the value N (one process only)\n"
    "watch   subscribes to the signals and prints each delivery with its sender.\n"
    "        --count N  exit after N deliveries (default: never)\n"
    "        --json     one object a line: first {\"watching\": [...], \"pid\": N}, then\n"
    "                   {\"signal\", \"number\", \"sender_pid\", \"sender_uid\", \"code\", \"value\"}\n",
    run_signal,
}};

}  // namespace
}  // namespace ipckit::cli
