// event_loop: the one Boost.Asio io_context every ipckit module runs on.
#pragma once

#include <ipckit/detail/immediate_completions.hpp>

#include <boost/asio/io_context.hpp>

#include <chrono>
#include <cstddef>

namespace ipckit {

/// Owns a boost::asio::io_context. Every ipckit I/O object takes an executor, so a
/// program that already has an io_context passes its own executor instead; event_loop
/// is a convenience, not a requirement.
///
/// Thread safety: as io_context. run() may be called from several threads at once;
/// stop() may be called from any thread, and from a signal subscription's handler.
///
/// One difference from running context() yourself: in run(), run_for(), poll() and
/// run_spinning(), a message-queue or eventfd operation that finishes at once, started
/// by the handler of another such operation, completes as soon as that handler returns
/// (up to 16 in a row) instead of after the reactor's next turn; never inside the call
/// that started it (docs/performance-findings.md, finding 7). run_one() runs one handler.
class event_loop {
 public:
  using executor_type = boost::asio::io_context::executor_type;

  event_loop() = default;
  /// Asio's concurrency hint. 1 promises that one thread runs the loop, so that Asio
  /// queues the completions a handler starts on that thread's private queue; it does not
  /// turn Asio's locks off (BOOST_ASIO_CONCURRENCY_HINT_UNSAFE_IO does; measured, it saves
  /// about 10% of a pipe round trip's user-space instructions and no time that shows:
  /// docs/performance-findings.md, finding 4).
  explicit event_loop(int concurrency_hint) : context_(concurrency_hint) {}
  event_loop(const event_loop&) = delete;
  event_loop& operator=(const event_loop&) = delete;

  executor_type get_executor() noexcept { return context_.get_executor(); }
  boost::asio::io_context& context() noexcept { return context_; }

  /// Runs handlers until there is no work left or stop() is called. While it has nothing
  /// else to do, a file lock's or semaphore's async wait blocks this thread itself (the
  /// kernel then wakes it directly); anything the loop has to do interrupts that wait,
  /// which goes on elsewhere (docs/core.md).
  std::size_t run() {
    detail::immediate_scope scope(scheduler_, true);
    const std::size_t ran = context_.run();
    return ran + scope.drained();
  }
  /// Runs handlers for at most `duration`.
  template <class Rep, class Period>
  std::size_t run_for(std::chrono::duration<Rep, Period> duration) {
    detail::immediate_scope scope(scheduler_);
    const std::size_t ran = context_.run_for(duration);
    return ran + scope.drained();
  }
  std::size_t run_one() {
    detail::immediate_scope scope(nullptr);
    return context_.run_one();
  }

  /// The opt-in low-latency mode: as run(), but when no handler is ready it keeps
  /// polling (non-blocking) for up to `spin` before it sleeps in the kernel. A reply
  /// that arrives within `spin` is then handled without a sleep and a wake-up, which
  /// costs tens of µs between CPUs on a VM. It burns its CPU while it spins: use it with
  /// the peer on another CPU (ipckit bench --pin cross), never on a shared one.
  /// Returns the handlers run; stops as run() does (out of work, or stop()).
  template <class Rep, class Period>
  std::size_t run_spinning(std::chrono::duration<Rep, Period> spin) {
    using clock = std::chrono::steady_clock;
    detail::immediate_scope scope(scheduler_);
    std::size_t handled = 0;
    while (!context_.stopped()) {
      const auto until = clock::now() + spin;
      std::size_t ran = 0;
      // poll() stops the context when it is out of work: the loop ends then too.
      while ((ran = context_.poll()) == 0 && !context_.stopped() && clock::now() < until) {
      }
      if (ran == 0 && !context_.stopped()) ran = context_.run_one();
      if (ran == 0) break;
      handled += ran;
    }
    return handled + scope.drained();
  }
  std::size_t poll() {
    detail::immediate_scope scope(scheduler_);
    const std::size_t ran = context_.poll();
    return ran + scope.drained();
  }

  void stop() { context_.stop(); }
  bool stopped() const { return context_.stopped(); }
  /// Makes a stopped loop runnable again.
  void restart() { context_.restart(); }

 private:
  boost::asio::io_context context_;
  void* scheduler_ = detail::scheduler_of(context_);
};

}  // namespace ipckit
