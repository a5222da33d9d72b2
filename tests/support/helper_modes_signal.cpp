// Helper child modes for the signal module's tests.
#include "helper_child.hpp"

#include <ipckit/signal.hpp>

#include <csignal>
#include <filesystem>
#include <iostream>
#include <iterator>
#include <string>
#include <unistd.h>

namespace ipckit::test {
namespace {

// "kill:USR1" sends with kill(2), "queue:RTMIN:5" with sigqueue, both to the parent.
int signals_to_parent(std::span<const std::string> steps) {
  const pid_t parent = ::getppid();
  for (const auto& step : steps) {
    const auto first = step.find(':');
    if (first == std::string::npos) return 2;
    const std::string how = step.substr(0, first);
    const std::string rest = step.substr(first + 1);
    if (how == "kill") {
      signal::send(parent, signal::parse(rest));
    } else if (how == "queue") {
      const auto second = rest.find(':');
      if (second == std::string::npos) return 2;
      signal::queue(parent, signal::parse(rest.substr(0, second)), std::stoi(rest.substr(second + 1)));
    } else {
      return 2;
    }
  }
  return 0;
}

void print_ignored(int number, std::string_view when) {
  std::cout << signal::name(number) << ' ' << when << ' '
            << (signal::ignored(number) ? "ignored" : "not-ignored") << std::endl;
}

// Blocks SIG and MARKER, prints "ready", waits for a line on stdin (the parent sends
// while both are blocked, so the kernel holds them pending), then subscribes and prints
// "SIG N" for the N deliveries of SIG that precede MARKER.
int count_pending(std::span<const std::string> args) {
  if (args.size() != 2) return 2;
  const int number = signal::parse(args[0]);
  const int marker = signal::parse(args[1]);
  sigset_t both;
  sigemptyset(&both);
  sigaddset(&both, number);
  sigaddset(&both, marker);
  if (::sigprocmask(SIG_BLOCK, &both, nullptr) != 0) return 3;
  std::cout << "ready" << std::endl;
  std::string go;
  if (!std::getline(std::cin, go)) return 3;
  boost::asio::io_context io;
  signal::notifier watching(io, {number, marker});
  int count = 0;
  for (;;) {
    auto got = watching.wait_for(std::chrono::seconds(20));
    if (!got) return 4;
    if (got->number == marker) break;
    if (got->number == number) ++count;
  }
  std::cout << signal::name(number) << ' ' << count << std::endl;
  return 0;
}

// Threads of this process, as /proc/self/task lists them.
long thread_count() {
  return std::distance(std::filesystem::directory_iterator("/proc/self/task"), std::filesystem::directory_iterator());
}

const helper_mode_registration modes[] = {
    // Prints how many threads it has gained after ignore, reset and ignored, then with a
    // notifier (relative: a sanitizer's runtime may have a thread of its own).
    helper_mode_registration{{"signal-threads", "signal-threads  (threads before and with a notifier)", [](auto) {
      const long before = thread_count();
      signal::ignore({SIGPIPE});
      signal::reset({SIGUSR1});
      (void)signal::ignored(SIGHUP);
      std::cout << "dispositions +" << thread_count() - before << std::endl;
      boost::asio::io_context io;
      signal::notifier watching(io, {SIGUSR1});
      std::cout << "notifier +" << thread_count() - before << std::endl;
      return 0;
    }}},
    helper_mode_registration{{"count-pending", "count-pending SIG MARKER  (deliveries of a blocked SIG)",
                              count_pending}},
    helper_mode_registration{{"signals-to-parent", "signals-to-parent kill:SIG|queue:SIG:VALUE…",
                              signals_to_parent}},
    // Reports SIG's disposition, subscribes, reports again, stops, reports again.
    helper_mode_registration{{"signal-ignored", "signal-ignored SIG  (ignored before/during/after a notifier)",
                              [](auto args) {
      if (args.size() != 1) return 2;
      const int number = signal::parse(args[0]);
      print_ignored(number, "start");
      boost::asio::io_context io;
      {
        signal::notifier watching(io, {number});
        print_ignored(number, "subscribed");
      }
      print_ignored(number, "stopped");
      return 0;
    }}},
    // Prints "ready", then "got N" for each of N deliveries of SIG, stops its notifier,
    // prints "stopped" and waits for stdin EOF: a later SIG takes the default action.
    helper_mode_registration{{"signal-count-then-stop", "signal-count-then-stop SIG N", [](auto args) {
      if (args.size() != 2) return 2;
      const int number = signal::parse(args[0]);
      const int count = std::stoi(args[1]);
      boost::asio::io_context io;
      {
        signal::notifier watching(io, {number});
        std::cout << "ready" << std::endl;
        for (int i = 1; i <= count; ++i) {
          auto got = watching.wait_for(std::chrono::seconds(20));
          if (!got) return 3;
          std::cout << "got " << i << " from " << got->sender_pid.value_or(0) << std::endl;
        }
      }
      std::cout << "stopped" << std::endl;
      char c;
      while (::read(0, &c, 1) > 0) {
      }
      return 0;
    }}},
};

}  // namespace
}  // namespace ipckit::test
