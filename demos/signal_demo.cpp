// Signal handling, and what Go cannot tell you: who sent each signal.
//
// The demo subscribes to SIGUSR1 and SIGRTMIN on its event loop (Go's signal.Notify),
// starts a copy of itself as a child, and the child signals its parent: kill(SIGUSR1)
// three times at once (standard signals may coalesce) and sigqueue(SIGRTMIN, value) three
// times (realtime signals are queued, in order, with their value). Every delivery is
// printed with the sender's pid and the kernel's code. The loop runs under
// run_until_signal, the daemon's main: Ctrl-C would end it cleanly too.
#include <ipckit/event_loop.hpp>
#include <ipckit/process.hpp>
#include <ipckit/signal.hpp>

#include <csignal>
#include <cstdio>
#include <string>
#include <unistd.h>

namespace sig = ipckit::signal;

int child() {
  const pid_t parent = ::getppid();
  for (int i = 0; i < 3; ++i) sig::send(parent, SIGUSR1);
  for (int value = 1; value <= 3; ++value) sig::queue(parent, SIGRTMIN, value);
  return 0;
}

int main(int argc, char** argv) {
  if (argc > 1 && std::string(argv[1]) == "child") return child();

  ipckit::event_loop loop;
  sig::notifier notifier(loop.get_executor(), {SIGUSR1, SIGRTMIN});
  int deliveries = 0, queued = 0;
  notifier.on_signal([&](const sig::info& delivery) {
    ++deliveries;
    if (delivery.number == SIGRTMIN && ++queued == 3) loop.stop();  // the last one
    std::printf("%-8s from pid %d, code %-5s value %s\n", sig::name(delivery.number).c_str(),
                delivery.sender_pid.value_or(-1), sig::code_name(delivery).c_str(),
                delivery.value ? std::to_string(*delivery.value).c_str() : "-");
  });

  ipckit::command signaller(loop.get_executor(), "/proc/self/exe", {"child"});
  signaller.start();
  std::printf("parent %d started child %d\n", ::getpid(), signaller.pid());
  if (auto interrupted = sig::run_until_signal(loop, {SIGINT, SIGTERM})) {
    std::printf("stopped by %s\n", sig::name(interrupted->number).c_str());
    return 1;
  }
  const auto status = signaller.wait();
  std::printf("%d deliveries (SIGUSR1 may have coalesced; 3 queued SIGRTMIN, in order); child exited %d\n",
              deliveries, status.exit_code());
  return 0;
}
