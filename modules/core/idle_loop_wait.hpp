// A blocking call made on the loop's own thread while the loop has nothing else to do.
//
// A call the kernel cannot make pollable (a flock wait) costs, on the worker pool, two
// wake-ups a hand-off: the kernel wakes the worker, the worker wakes the loop. When the
// loop is idle, its own thread can make the call instead, as a raw blocking program
// would, and the kernel wakes it directly (docs/performance-findings.md, finding 6).
// Idle means: the thread runs the loop under event_loop::run, and Asio's scheduler has
// nothing queued but its reactor task. Anything the loop would have woken for meanwhile
// wakes a watcher thread instead, which interrupts the call with interrupt_signal():
//   - a descriptor, timer or eventfd of the reactor: the reactor's epoll descriptor sits,
//     one-shot, in the watcher's own epoll set;
//   - a post or a stop() from another thread: the scheduler is told its reactor task runs
//     (task_interrupted_ false), so it interrupts the reactor, which the watcher sees.
// The interrupted call then moves to the worker pool: the loop thread blocks at most once
// a call, and never while it has work.
//
// Tied to Asio 1.81's scheduler and epoll reactor, whose private members it reads.
#pragma once

#include <ipckit/detail/blocking_call.hpp>

#include <boost/asio/execution_context.hpp>

#include <condition_variable>
#include <mutex>
#include <pthread.h>
#include <thread>

namespace ipckit::detail {

class idle_loop_waiter {
 public:
  idle_loop_waiter() = default;
  ~idle_loop_waiter() { stop(); }
  idle_loop_waiter(const idle_loop_waiter&) = delete;
  idle_loop_waiter& operator=(const idle_loop_waiter&) = delete;

  /// Before any call is queued for begin(): gives the scheduler its reactor task, which
  /// a post from another thread interrupts.
  static void prepare(boost::asio::execution_context& context);
  /// On a thread running `context`'s loop, in one of its handlers: true when the loop is
  /// idle and is now watched, so that the caller may block until `token` says
  /// cancelled(); then it must call end(). False (nothing to undo) otherwise.
  bool begin(boost::asio::execution_context& context, interrupt_token& token);
  /// Ends the watch; true when the call was interrupted because the loop has work.
  bool end();
  /// Stops the watcher thread (no call may be between begin() and end()).
  void stop();

 private:
  bool start_watcher(boost::asio::execution_context& context);
  void watch();
  // In a child made by fork() without exec: the watcher is the parent's.
  bool inherited() const;
  void forget_inherited_watcher();

  std::mutex mutex_;
  std::condition_variable disarmed_;
  void* scheduler_ = nullptr;        // whose task_interrupted_ begin() cleared
  interrupt_token* token_ = nullptr;  // while armed
  pthread_t thread_{};               // while armed: the loop thread to interrupt
  unsigned long generation_ = 0;     // of the armed period
  bool taken_ = false;  // a thread is between begin() and end()
  bool armed_ = false;  // and past the scheduler's check: the watcher may interrupt it
  bool fired_ = false;  // the one-shot watch has fired since it was last armed
  bool failed_ = false;  // no watcher here: every call goes to the pool
  bool reblock_ = false;  // the thread between begin() and end() had the signal blocked
  bool stopping_ = false;
  int watch_fd_ = -1;    // the watcher's epoll set
  int stop_fd_ = -1;     // an eventfd that ends the watcher
  int reactor_fd_ = -1;  // the reactor's epoll descriptor (not ours)
  std::thread watcher_;
  unsigned watcher_forks_ = 0;  // the process's fork count when the watcher started
};

}  // namespace ipckit::detail
