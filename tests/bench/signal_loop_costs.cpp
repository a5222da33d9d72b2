// The user-space part of a signal round trip: two processes on CPU 0 send SIGUSR1 to
// and fro, both sides waiting one way: plain Asio reading a signalfd with
// stream_descriptor::async_read_some, or ipckit's notifier (async_wait on an event_loop,
// or wait()). docs/performance-findings.md (finding 5) quotes it, with valgrind's instruction
// counts. Built with -Dbenchmarks=true:
//   build/tests/bench/signal_loop_costs asio|ipckit_async|ipckit_blocking [ROUND_TRIPS]   # median, µs
#include <ipckit/event_loop.hpp>
#include <ipckit/signal.hpp>

#include <boost/asio/posix/stream_descriptor.hpp>

#include <sys/signalfd.h>
#include <sys/wait.h>
#include <sched.h>
#include <signal.h>
#include <unistd.h>

#include <algorithm>
#include <chrono>
#include <cstdio>
#include <functional>
#include <string>
#include <vector>

namespace {

using clock_type = std::chrono::steady_clock;

// One side: `on_signal()` is called for each SIGUSR1 until it returns false.
void wait_loop(const std::string& way, const std::function<bool()>& on_signal) {
  if (way == "asio") {
    sigset_t usr1;
    sigemptyset(&usr1);
    sigaddset(&usr1, SIGUSR1);
    boost::asio::io_context io(1);
    boost::asio::posix::stream_descriptor fd(io, signalfd(-1, &usr1, SFD_NONBLOCK | SFD_CLOEXEC));
    signalfd_siginfo info;
    std::function<void(boost::system::error_code, std::size_t)> next = [&](boost::system::error_code, std::size_t) {
      if (on_signal()) fd.async_read_some(boost::asio::buffer(&info, sizeof info), next);
    };
    fd.async_read_some(boost::asio::buffer(&info, sizeof info), next);
    io.run();
    return;
  }
  ipckit::event_loop loop(1);
  ipckit::signal::notifier usr1(loop.get_executor(), {SIGUSR1});
  if (way == "ipckit_blocking") {
    while (true) {
      usr1.wait();
      if (!on_signal()) return;
    }
  }
  std::function<void(ipckit::error_code, ipckit::signal::info)> next = [&](ipckit::error_code, ipckit::signal::info) {
    if (on_signal()) usr1.async_wait(next);
  };
  usr1.async_wait(next);
  loop.run();
}

}  // namespace

int main(int argc, char** argv) {
  const std::string way = argc > 1 ? argv[1] : "ipckit_async";
  const long count = argc > 2 ? std::stol(argv[2]) : 20000, warmup = count / 10;
  cpu_set_t cpu0;
  CPU_ZERO(&cpu0);
  CPU_SET(0, &cpu0);
  sched_setaffinity(0, sizeof cpu0, &cpu0);
  sigset_t usr1;
  sigemptyset(&usr1);
  sigaddset(&usr1, SIGUSR1);
  sigprocmask(SIG_BLOCK, &usr1, nullptr);
  int ready[2];
  if (pipe(ready) != 0) return 1;
  const pid_t child = fork();
  long seen = 0;
  if (child == 0) {
    const pid_t parent = getppid();
    (void)write(ready[1], "r", 1);
    wait_loop(way, [&] {
      kill(parent, SIGUSR1);
      return ++seen < count + warmup;
    });
    _exit(0);
  }
  char byte;
  (void)read(ready[0], &byte, 1);
  std::vector<double> samples;
  auto start = clock_type::now();
  kill(child, SIGUSR1);
  wait_loop(way, [&] {
    if (seen++ >= warmup)
      samples.push_back(std::chrono::duration<double, std::micro>(clock_type::now() - start).count());
    if (seen == count + warmup) return false;
    start = clock_type::now();
    kill(child, SIGUSR1);
    return true;
  });
  waitpid(child, nullptr, 0);
  std::sort(samples.begin(), samples.end());
  std::printf("%-16s %6.2f us\n", way.c_str(), samples[samples.size() / 2]);
}
