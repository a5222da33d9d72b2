// What each way of waiting for a signal costs the kernel: two processes on CPU 0 send
// SIGUSR1 to and fro, each waiting for it one way, with no library code around the
// system calls. docs/performance-findings.md (finding 5) quotes it. Built with
// -Dbenchmarks=true:
//   build/tests/bench/signal_wait_costs   # every way, 20000 round trips each, medians in µs
#include <sys/epoll.h>
#include <sys/eventfd.h>
#include <sys/signalfd.h>
#include <sys/wait.h>
#include <poll.h>
#include <sched.h>
#include <signal.h>
#include <unistd.h>

#include <algorithm>
#include <chrono>
#include <cstdio>
#include <vector>

namespace {

enum class way { blocking_read, ppoll_one, ppoll_two, epoll_level, epoll_edge_read_first, epoll_rearmed };
const char* const names[] = {
    "blocking read",
    "ppoll(signalfd) + read",
    "ppoll(signalfd, eventfd) + read",
    "epoll_wait (level) + read",
    "read, epoll_wait (edge), read",
    "epoll_wait + read + epoll_ctl(MOD)",
};

struct waiter {
  way how;
  int signal_fd, event_fd, epoll_fd;

  explicit waiter(way w) : how(w) {
    sigset_t usr1;
    sigemptyset(&usr1);
    sigaddset(&usr1, SIGUSR1);
    signal_fd = signalfd(-1, &usr1, SFD_CLOEXEC | (w == way::blocking_read ? 0 : SFD_NONBLOCK));
    event_fd = eventfd(0, EFD_NONBLOCK | EFD_CLOEXEC);
    epoll_fd = epoll_create1(EPOLL_CLOEXEC);
    epoll_event ev{};
    ev.events = w == way::epoll_edge_read_first ? EPOLLIN | EPOLLET
                : w == way::epoll_rearmed       ? EPOLLIN | EPOLLONESHOT
                                                : EPOLLIN;
    epoll_ctl(epoll_fd, EPOLL_CTL_ADD, signal_fd, &ev);
  }

  void wait() {
    signalfd_siginfo info;
    epoll_event got;
    switch (how) {
      case way::blocking_read:
        (void)read(signal_fd, &info, sizeof info);
        break;
      case way::ppoll_one: {
        pollfd fds[1] = {{signal_fd, POLLIN, 0}};
        ppoll(fds, 1, nullptr, nullptr);
        (void)read(signal_fd, &info, sizeof info);
        break;
      }
      case way::ppoll_two: {
        pollfd fds[2] = {{signal_fd, POLLIN, 0}, {event_fd, POLLIN, 0}};
        ppoll(fds, 2, nullptr, nullptr);
        (void)read(signal_fd, &info, sizeof info);
        break;
      }
      case way::epoll_level:
        epoll_wait(epoll_fd, &got, 1, -1);
        (void)read(signal_fd, &info, sizeof info);
        break;
      case way::epoll_edge_read_first:
        while (read(signal_fd, &info, sizeof info) < 0) epoll_wait(epoll_fd, &got, 1, -1);
        break;
      case way::epoll_rearmed: {
        epoll_wait(epoll_fd, &got, 1, -1);
        (void)read(signal_fd, &info, sizeof info);
        epoll_event ev{};
        ev.events = EPOLLIN | EPOLLONESHOT;
        epoll_ctl(epoll_fd, EPOLL_CTL_MOD, signal_fd, &ev);
        break;
      }
    }
  }
};

double median_round_trip(way how, long count) {
  const long warmup = count / 10;
  int ready[2];
  if (pipe(ready) != 0) return -1;
  const pid_t child = fork();
  waiter w(how);
  if (child == 0) {
    (void)write(ready[1], "r", 1);
    const pid_t parent = getppid();
    for (long i = 0; i < count + warmup; ++i) {
      w.wait();
      kill(parent, SIGUSR1);
    }
    _exit(0);
  }
  char byte;
  (void)read(ready[0], &byte, 1);
  std::vector<double> samples;
  for (long i = 0; i < count + warmup; ++i) {
    const auto start = std::chrono::steady_clock::now();
    kill(child, SIGUSR1);
    w.wait();
    if (i >= warmup)
      samples.push_back(std::chrono::duration<double, std::micro>(std::chrono::steady_clock::now() - start).count());
  }
  waitpid(child, nullptr, 0);
  close(ready[0]);
  close(ready[1]);
  std::sort(samples.begin(), samples.end());
  return samples[samples.size() / 2];
}

}  // namespace

int main() {
  cpu_set_t cpu0;
  CPU_ZERO(&cpu0);
  CPU_SET(0, &cpu0);
  sched_setaffinity(0, sizeof cpu0, &cpu0);
  sigset_t usr1;
  sigemptyset(&usr1);
  sigaddset(&usr1, SIGUSR1);
  sigprocmask(SIG_BLOCK, &usr1, nullptr);
  for (int i = 0; i <= static_cast<int>(way::epoll_rearmed); ++i)
    std::printf("%-36s %6.2f us\n", names[i], median_round_trip(static_cast<way>(i), 20000));
}
