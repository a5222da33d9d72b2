// What the fault tests share: a signal storm aimed at the thread that makes a blocking
// call, and the scripted helper peer (`ipckit_helper script`).
#pragma once

#include "test_support.hpp"

#include <atomic>
#include <csignal>
#include <functional>
#include <mutex>
#include <optional>
#include <pthread.h>
#include <string>
#include <sys/types.h>
#include <thread>

namespace ipckit::test {

/// Installs a no-op handler for `number` WITHOUT SA_RESTART for the guard's lifetime,
/// and unblocks the signal in the calling thread: every blocking system call that the
/// signal lands in returns EINTR, which is the harshest case for the code under test.
///
/// Why a raw sigaction here and not ipckit::signal: the signal module's handler is
/// installed with SA_RESTART (the kernel then restarts most calls itself, hiding a
/// missing EINTR loop) and subscriptions block the signal, so it never interrupts
/// anything. A program that installs its own handler without SA_RESTART (or a library
/// that does) is exactly what ipckit's blocking calls must survive.
class no_restart_handler {
 public:
  explicit no_restart_handler(int number = SIGUSR1);
  ~no_restart_handler();
  no_restart_handler(const no_restart_handler&) = delete;
  no_restart_handler& operator=(const no_restart_handler&) = delete;

  int number() const { return number_; }
  /// Deliveries handled so far (any thread).
  static std::size_t handled();

 private:
  int number_;
  struct sigaction previous_ {};
  sigset_t previous_mask_{};
};

/// A thread that sends the handler's signal to one target thread, again and again, from
/// construction to destruction. It counts the deliveries that found the target asleep
/// in the kernel (state S or D in /proc: inside the blocking call), and once `then_after`
/// of them have landed it runs the action (typically: tell the peer to complete the
/// call). So by the time the call can complete, it has been interrupted that many times.
class signal_storm {
 public:
  signal_storm(const no_restart_handler& handler, std::size_t then_after, std::function<void()> then);
  ~signal_storm();
  signal_storm(const signal_storm&) = delete;
  signal_storm& operator=(const signal_storm&) = delete;

  /// Deliveries that interrupted the target while it slept in the kernel.
  std::size_t interruptions() const { return interruptions_.load(); }
  /// True once the action ran.
  bool fired() const { return fired_.load(); }

 private:
  void run();
  int signal_;
  pthread_t target_;
  pid_t target_tid_;
  std::size_t then_after_;
  std::function<void()> then_;
  std::atomic<bool> stop_{false};
  std::atomic<bool> fired_{false};
  std::atomic<std::size_t> interruptions_{0};
  std::thread thread_;
};

/// The scripted helper child: one command per line, one answer per line (see
/// tests/support/helper_modes_faults.cpp). The destructor kills and reaps it.
class script_peer {
 public:
  /// With `fd3` (>= 0), the peer inherits that descriptor as its fd 3 (`eventfd-post`).
  explicit script_peer(int fd3 = -1);
  /// Runs a command and returns what follows "ok" (fails the test on "error …").
  std::string run(const std::string& command);
  /// Sends a command without waiting for its answer (for calls that block in the peer).
  void start(const std::string& command);
  /// The answer to a command sent with start().
  std::string answer(std::chrono::milliseconds timeout = 10s);
  peer_process& process() { return peer_; }

 private:
  peer_process peer_;
};

/// Sum of the pattern bytes the script peer sends and checks (tests compare data, not
/// only counts): byte i of a pattern stream.
char pattern_byte(std::size_t i);
std::string pattern(std::size_t size);

}  // namespace ipckit::test
