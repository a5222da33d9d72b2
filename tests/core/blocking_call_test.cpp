#include <ipckit/detail/blocking_call.hpp>

#include <ipckit/event_loop.hpp>

#include "interruptible_call.hpp"
#include "test_support.hpp"

#include <boost/asio/bind_cancellation_slot.hpp>
#include <boost/asio/cancellation_signal.hpp>
#include <boost/asio/co_spawn.hpp>
#include <boost/asio/detached.hpp>
#include <boost/asio/steady_timer.hpp>
#include <boost/asio/use_awaitable.hpp>
#include <boost/asio/use_future.hpp>
#include <gtest/gtest.h>

#include <algorithm>
#include <cerrno>
#include <csignal>
#include <fcntl.h>
#include <functional>
#include <optional>
#include <stdexcept>
#include <sys/resource.h>
#include <thread>
#include <unistd.h>
#include <vector>

namespace {

using namespace std::chrono_literals;
using ipckit::error_code;
using ipckit::detail::async_run_blocking;
using ipckit::detail::interrupt_token;
using ipckit::test::block_until_cancelled;
using ipckit::test::run_until;

TEST(blocking_call, completes_on_the_loop_thread_with_the_result) {
  ipckit::event_loop loop;
  std::thread::id worker, completion;
  int result = 0;
  async_run_blocking<int>(
      loop.get_executor(),
      [&](const interrupt_token&, error_code&) {
        worker = std::this_thread::get_id();
        return 42;
      },
      [&](error_code ec, int value) {
        EXPECT_FALSE(ec);
        completion = std::this_thread::get_id();
        result = value;
      });
  ASSERT_TRUE(run_until(loop, [&] { return result != 0; }));
  EXPECT_EQ(result, 42);
  EXPECT_EQ(completion, std::this_thread::get_id());
  EXPECT_NE(worker, std::this_thread::get_id());
}

TEST(blocking_call, passes_the_calls_error_through) {
  ipckit::event_loop loop;
  error_code got;
  bool done = false;
  async_run_blocking<void>(
      loop.get_executor(),
      [](const interrupt_token&, error_code& ec) { ec = boost::system::errc::make_error_code(boost::system::errc::resource_deadlock_would_occur); },
      [&](error_code ec) { got = ec, done = true; });
  ASSERT_TRUE(run_until(loop, [&] { return done; }));
  EXPECT_EQ(got, boost::system::errc::resource_deadlock_would_occur);
}

TEST(blocking_call, cancel_interrupts_a_call_blocked_forever_while_timers_tick) {
  ipckit::event_loop loop;
  boost::asio::cancellation_signal cancel;
  error_code got;
  bool done = false;
  async_run_blocking<void>(loop.get_executor(), block_until_cancelled,
                           boost::asio::bind_cancellation_slot(cancel.slot(), [&](error_code ec) {
                             got = ec, done = true;
                           }));
  // The loop is not blocked by the waiting call: a timer fires while it waits.
  int ticks = 0;
  boost::asio::steady_timer timer(loop.get_executor());
  std::function<void(error_code)> tick = [&](error_code) {
    if (++ticks == 3) return cancel.emit(boost::asio::cancellation_type::terminal);
    timer.expires_after(2ms);
    timer.async_wait(tick);
  };
  timer.expires_after(2ms);
  timer.async_wait(tick);
  ASSERT_TRUE(run_until(loop, [&] { return done; }));
  EXPECT_EQ(ticks, 3);
  EXPECT_EQ(got, boost::asio::error::operation_aborted);
}

TEST(blocking_call, blocked_calls_do_not_wait_behind_each_other) {
  ipckit::event_loop loop;
  int fds[2];
  ASSERT_EQ(::pipe2(fds, O_CLOEXEC), 0);
  constexpr int blocked = 12;  // more than any fixed-size pool would have
  boost::asio::cancellation_signal cancels[blocked];
  int aborted = 0;
  for (auto& cancel : cancels)
    async_run_blocking<void>(loop.get_executor(), block_until_cancelled,
                             boost::asio::bind_cancellation_slot(cancel.slot(), [&](error_code ec) {
                               aborted += ec == boost::asio::error::operation_aborted;
                             }));
  char byte = 0;
  bool read_done = false;
  async_run_blocking<ssize_t>(
      loop.get_executor(), [&](const interrupt_token&, error_code&) { return ::read(fds[0], &byte, 1); },
      [&](error_code, ssize_t n) { read_done = n == 1; });
  ASSERT_EQ(::write(fds[1], "x", 1), 1);
  EXPECT_TRUE(run_until(loop, [&] { return read_done; }));
  for (auto& cancel : cancels) cancel.emit(boost::asio::cancellation_type::terminal);
  EXPECT_TRUE(run_until(loop, [&] { return aborted == blocked; }));
  ::close(fds[0]);
  ::close(fds[1]);
}

TEST(blocking_call, works_with_futures_and_coroutines) {
  ipckit::event_loop loop;
  auto future = async_run_blocking<int>(loop.get_executor(),
                                        [](const interrupt_token&, error_code&) { return 7; },
                                        boost::asio::use_future);
  int from_coroutine = 0;
  boost::asio::co_spawn(
      loop.get_executor(),
      [&]() -> boost::asio::awaitable<void> {
        from_coroutine = co_await async_run_blocking<int>(
            loop.get_executor(), [](const interrupt_token&, error_code&) { return 9; },
            boost::asio::use_awaitable);
      },
      boost::asio::detached);
  ASSERT_TRUE(run_until(loop, [&] {
    return from_coroutine != 0 && future.wait_for(0s) == std::future_status::ready;
  }));
  EXPECT_EQ(future.get(), 7);
  EXPECT_EQ(from_coroutine, 9);
}

TEST(blocking_call, workers_take_no_process_signals) {
  ipckit::event_loop loop;
  sigset_t mask;
  bool done = false;
  async_run_blocking<void>(
      loop.get_executor(),
      [&](const interrupt_token&, error_code&) { pthread_sigmask(SIG_BLOCK, nullptr, &mask); },
      [&](error_code) { done = true; });
  ASSERT_TRUE(run_until(loop, [&] { return done; }));
  EXPECT_TRUE(sigismember(&mask, SIGTERM));
  EXPECT_TRUE(sigismember(&mask, SIGCHLD));
  EXPECT_FALSE(sigismember(&mask, ipckit::detail::interrupt_signal()));
}

// A worker that runs before the loop threads on a shared CPU costs two thread switches
// per hand-off (docs/performance-findings.md, finding 6), so workers are 5 nicer than
// their starter.
TEST(blocking_call, workers_run_five_nicer_than_the_thread_that_started_them) {
  errno = 0;
  const int ours = ::getpriority(PRIO_PROCESS, static_cast<id_t>(::gettid()));
  ASSERT_EQ(errno, 0);
  ipckit::event_loop loop;
  int worker_nice = 100;
  bool done = false;
  async_run_blocking<void>(
      loop.get_executor(),
      [&](const interrupt_token&, error_code&) {
        worker_nice = ::getpriority(PRIO_PROCESS, static_cast<id_t>(::gettid()));
      },
      [&](error_code) { done = true; });
  ASSERT_TRUE(run_until(loop, [&] { return done; }));
  EXPECT_EQ(worker_nice, std::min(ours + 5, 19));
  EXPECT_EQ(::getpriority(PRIO_PROCESS, static_cast<id_t>(::gettid())), ours);  // the caller's own is untouched
}

// A loop that already has a reactor (here for the timer) gets finished calls through an
// eventfd on it instead of Asio's post (docs/architecture.md): every call completes, on
// the loop thread, and run() returns once none is in flight.
TEST(blocking_call, calls_complete_on_a_loop_that_already_has_a_reactor) {
  ipckit::event_loop loop;
  boost::asio::steady_timer timer(loop.get_executor());
  const auto loop_thread = std::this_thread::get_id();
  std::vector<int> results;
  bool all_on_loop_thread = true;
  for (int i = 0; i < 8; ++i)
    async_run_blocking<int>(
        loop.get_executor(), [i](const interrupt_token&, error_code&) { return i; },
        [&](error_code ec, int value) {
          EXPECT_FALSE(ec);
          all_on_loop_thread = all_on_loop_thread && std::this_thread::get_id() == loop_thread;
          results.push_back(value);
        });
  const auto start = std::chrono::steady_clock::now();
  loop.run_for(10s);
  EXPECT_LT(std::chrono::steady_clock::now() - start, 5s);  // nothing left armed
  std::sort(results.begin(), results.end());
  EXPECT_EQ(results, (std::vector<int>{0, 1, 2, 3, 4, 5, 6, 7}));
  EXPECT_TRUE(all_on_loop_thread);
}

// Finished calls may reach the loop together through one wake-up (docs/architecture.md);
// an exception from one handler must not lose the others.
TEST(blocking_call, a_throwing_handler_leaves_the_other_finished_calls_for_the_next_run) {
  for (const bool with_reactor : {false, true}) {
    SCOPED_TRACE(with_reactor ? "loop with a reactor (eventfd channel)" : "loop without a reactor (post)");
    ipckit::event_loop loop;
    std::optional<boost::asio::steady_timer> timer;
    if (with_reactor) timer.emplace(loop.get_executor());
    int called = 0;
    for (int i = 0; i < 2; ++i)
      async_run_blocking<void>(
          loop.get_executor(), [](const interrupt_token&, error_code&) {},
          [&](error_code) {
            ++called;
            throw std::runtime_error("handler");
          });
    // Each run() rethrows what the handlers it ran threw: one exception each when the
    // calls arrive apart; Asio's multiple_exceptions when the loop dispatched both
    // handlers in one turn.
    int runs_that_threw = 0;
    for (int run = 0; run < 4 && called < 2; ++run) {
      loop.restart();
      try {
        loop.run_for(10s);
      } catch (const std::exception&) {
        ++runs_that_threw;
      }
    }
    EXPECT_EQ(called, 2);
    EXPECT_GE(runs_that_threw, 1);
    loop.restart();
    EXPECT_EQ(loop.run_for(10s), 0U);  // nothing left pending: run returns at once
  }
}

TEST(blocking_call, destroying_the_loop_interrupts_pending_calls_without_calling_handlers) {
  bool handler_called = false;
  {
    ipckit::event_loop loop;
    async_run_blocking<void>(loop.get_executor(), block_until_cancelled,
                             [&](error_code) { handler_called = true; });
    loop.run_for(5ms);
  }  // must return: shutdown interrupts the worker and joins it
  EXPECT_FALSE(handler_called);
}

}  // namespace
