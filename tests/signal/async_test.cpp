// Every completion style, cancellation, notify_context, run_until_signal, threads.
#include <ipckit/signal.hpp>

#include "signal_test_util.hpp"

#include <boost/asio/co_spawn.hpp>
#include <boost/asio/deferred.hpp>
#include <boost/asio/detached.hpp>
#include <boost/asio/executor_work_guard.hpp>
#include <boost/asio/post.hpp>
#include <boost/asio/steady_timer.hpp>
#include <boost/asio/strand.hpp>
#include <boost/asio/use_awaitable.hpp>
#include <boost/asio/use_future.hpp>
#include <gmock/gmock.h>

#include <csignal>
#include <future>
#include <latch>
#include <thread>
#include <unistd.h>

namespace {

namespace signal = ipckit::signal;
namespace asio = boost::asio;
using ipckit::error_code;
using ipckit::test::helper_path;
using ipckit::test::next_delivery;
using ipckit::test::peer_process;
using ipckit::test::run_until;
using namespace std::chrono_literals;

void to_self(int number, int value) { signal::queue(::getpid(), number, value); }

TEST(signal_async, use_future) {
  asio::io_context io;
  auto work = asio::make_work_guard(io);
  signal::notifier rt(io, {SIGRTMIN + 1});
  std::thread runner([&] { io.run(); });
  auto delivery = rt.async_wait(asio::use_future);
  to_self(SIGRTMIN + 1, 5);
  ASSERT_EQ(delivery.wait_for(10s), std::future_status::ready);
  EXPECT_EQ(delivery.get().value, 5);
  rt.stop();
  auto after_stop = rt.async_wait(asio::use_future);
  ASSERT_EQ(after_stop.wait_for(10s), std::future_status::ready);
  EXPECT_THROW(after_stop.get(), boost::system::system_error);
  work.reset();
  runner.join();
}

TEST(signal_async, use_awaitable_in_a_coroutine) {
  asio::io_context io;
  std::vector<int> values;
  bool finished = false;
  asio::co_spawn(
      io,
      [&]() -> asio::awaitable<void> {
        // (A named vector: GCC 12 cannot put a braced list in a coroutine frame.)
        std::vector<int> signals(1, SIGRTMIN + 2);
        signal::notifier rt(co_await asio::this_coro::executor, signals);
        to_self(SIGRTMIN + 2, 1);
        to_self(SIGRTMIN + 2, 2);
        for (int i = 0; i < 2; ++i) values.push_back(*(co_await rt.async_wait(asio::use_awaitable)).value);
        finished = true;
      },
      asio::detached);
  ASSERT_TRUE(run_until(io, [&] { return finished; }));
  EXPECT_THAT(values, testing::ElementsAre(1, 2));
}

TEST(signal_async, a_coroutine_waiting_when_its_context_is_destroyed_is_freed) {
  // Under ASan this leaks if the pending wait is not destroyed at shutdown.
  auto io = std::make_unique<asio::io_context>();
  bool started = false;
  asio::co_spawn(
      *io,
      [&]() -> asio::awaitable<void> {
        std::vector<int> signals(1, SIGRTMIN + 7);
        signal::notifier never(co_await asio::this_coro::executor, signals);
        started = true;
        co_await never.async_wait(asio::use_awaitable);
      },
      asio::detached);
  ASSERT_TRUE(run_until(*io, [&] { return started; }));
  io.reset();
  EXPECT_FALSE(signal::ignored(SIGRTMIN + 7));
  sigset_t mask;
  pthread_sigmask(SIG_BLOCK, nullptr, &mask);
  EXPECT_FALSE(sigismember(&mask, SIGRTMIN + 7));  // the frame's notifier was stopped
}

TEST(signal_async, on_signal_calls_the_handler_for_every_delivery_until_stop) {
  asio::io_context io;
  signal::notifier keep(io, {SIGRTMIN + 1});  // keeps it caught after `each` stops
  signal::notifier each(io, {SIGRTMIN + 1});
  std::vector<int> values;
  each.on_signal([&](const signal::info& got) {
    values.push_back(*got.value);
    if (values.size() == 3) each.stop();
  });
  for (int v = 1; v <= 5; ++v) to_self(SIGRTMIN + 1, v);
  for (int v = 1; v <= 5; ++v) ASSERT_TRUE(next_delivery(io, keep));
  io.poll();
  EXPECT_THAT(values, testing::ElementsAre(1, 2, 3));
}

TEST(signal_async, deferred_starts_when_invoked) {
  asio::io_context io;
  signal::notifier rt(io, {SIGRTMIN + 1});
  auto op = rt.async_wait(asio::deferred);
  to_self(SIGRTMIN + 1, 9);
  std::optional<int> value;
  std::move(op)([&](error_code ec, signal::info got) {
    if (!ec) value = got.value;
  });
  ASSERT_TRUE(run_until(io, [&] { return value.has_value(); }));
  EXPECT_EQ(value, 9);
}

TEST(signal_async, cancellation_slot_aborts_the_wait_and_keeps_the_next_delivery) {
  asio::io_context io;
  signal::notifier rt(io, {SIGRTMIN + 1});
  asio::cancellation_signal cancel;
  error_code result;
  bool done = false;
  rt.async_wait(asio::bind_cancellation_slot(cancel.slot(), [&](error_code ec, signal::info) {
    result = ec;
    done = true;
  }));
  io.poll();
  cancel.emit(asio::cancellation_type::terminal);
  ASSERT_TRUE(run_until(io, [&] { return done; }));
  EXPECT_EQ(result, asio::error::operation_aborted);
  to_self(SIGRTMIN + 1, 3);
  auto got = next_delivery(io, rt);
  ASSERT_TRUE(got);
  EXPECT_EQ(got->value, 3);
}

TEST(signal_async, cancel_and_stop_complete_pending_waits_with_operation_aborted) {
  asio::io_context io;
  signal::notifier other(io, {SIGRTMIN + 1});  // keeps the signal caught after rt stops
  signal::notifier rt(io, {SIGRTMIN + 1});
  std::vector<error_code> results;
  rt.async_wait([&](error_code ec, signal::info) { results.push_back(ec); });
  rt.cancel();
  rt.async_wait([&](error_code ec, signal::info) { results.push_back(ec); });
  rt.stop();
  to_self(SIGRTMIN + 1, 1);  // for `other` only
  ASSERT_TRUE(next_delivery(io, other));
  ASSERT_TRUE(run_until(io, [&] { return results.size() == 2; }));
  EXPECT_EQ(results[0], asio::error::operation_aborted);
  EXPECT_EQ(results[1], asio::error::operation_aborted);
  error_code ec;
  rt.wait(ec);
  EXPECT_EQ(ec, asio::error::operation_aborted);
}

TEST(signal_async, blocking_wait_and_wait_for) {
  asio::io_context io;
  signal::notifier rt(io, {SIGRTMIN + 1});
  EXPECT_FALSE(rt.wait_for(20ms));
  to_self(SIGRTMIN + 1, 4);
  EXPECT_EQ(rt.wait().value, 4);
}

// The loop watches the signalfd only while a wait is pending: once none is, run()
// runs out of work as it does without notifiers.
TEST(signal_async, the_loop_runs_out_of_work_once_no_wait_is_pending) {
  asio::io_context io;
  signal::notifier rt(io, {SIGRTMIN + 3});
  int delivered = 0;
  bool aborted = false;
  rt.async_wait([&](error_code ec, signal::info) {
    if (!ec) ++delivered;
  });
  to_self(SIGRTMIN + 3, 1);
  ASSERT_TRUE(run_until(io, [&] { return delivered == 1; }));
  rt.async_wait([&](error_code ec, signal::info) { aborted = ec == asio::error::operation_aborted; });
  asio::post(io, [&] { rt.cancel(); });
  io.restart();
  auto running = std::async(std::launch::async, [&] { return io.run(); });
  if (running.wait_for(10s) != std::future_status::ready) {
    io.stop();
    running.wait();
    FAIL() << "run() did not return: the signalfd watch stayed armed with no wait pending";
  }
  EXPECT_TRUE(aborted);
}

// A loop reads the signalfd only after an edge once a read found it empty: a signal that
// a handler sends before it waits again must still be read (its edge came while no read
// was pending).
TEST(signal_async, a_signal_a_handler_sends_before_it_waits_again_is_delivered) {
  constexpr int rounds = 200;
  asio::io_context io;
  signal::notifier rt(io, {SIGRTMIN + 3});
  std::vector<int> got;
  std::function<void(error_code, signal::info)> on_delivery = [&](error_code ec, signal::info delivery) {
    if (ec) return;
    got.push_back(*delivery.value);
    if (got.size() == rounds) return;
    to_self(SIGRTMIN + 3, static_cast<int>(got.size()) + 1);
    rt.async_wait(on_delivery);
  };
  rt.async_wait(on_delivery);
  to_self(SIGRTMIN + 3, 1);
  ASSERT_TRUE(run_until(io, [&] { return got.size() == rounds; })) << got.size() << " of " << rounds;
  std::vector<int> expected;
  for (int v = 1; v <= rounds; ++v) expected.push_back(v);
  EXPECT_EQ(got, expected);
}

// A handler that names no executor runs on the notifier's, even when the loop that read
// the delivery could run it at once: through the strand when that executor is a strand.
TEST(signal_async, the_handlers_of_a_notifier_on_a_strand_run_on_the_strand) {
  asio::io_context io;
  auto strand = asio::make_strand(io);
  signal::notifier rt(asio::any_io_executor(strand), {SIGRTMIN + 3});
  int delivered = 0;
  bool on_strand = true;
  std::function<void(error_code, signal::info)> on_delivery = [&](error_code ec, signal::info) {
    if (ec) return;
    on_strand = on_strand && strand.running_in_this_thread();
    if (++delivered < 3) rt.async_wait(on_delivery);
  };
  rt.async_wait(on_delivery);
  for (int v = 1; v <= 3; ++v) to_self(SIGRTMIN + 3, v);
  ASSERT_TRUE(run_until(io, [&] { return delivered == 3; }));
  EXPECT_TRUE(on_strand);
}

// Whoever reads the signalfd fans out: a thread in wait() gets the delivery a loop read
// (through its eventfd), or the loop gets the one the thread read.
TEST(signal_async, a_blocking_wait_and_a_loop_both_get_every_delivery) {
  asio::io_context io;
  signal::notifier on_loop(io, {SIGRTMIN + 3});
  signal::notifier blocking(io, {SIGRTMIN + 3});
  std::vector<int> in_thread;
  std::thread waiter([&] {
    for (int i = 0; i < 3; ++i) {
      auto got = blocking.wait_for(10s);
      if (!got) return;
      in_thread.push_back(*got->value);
    }
  });
  std::vector<int> on_the_loop;
  for (int v = 1; v <= 3; ++v) {
    to_self(SIGRTMIN + 3, v);
    auto got = next_delivery(io, on_loop);
    ASSERT_TRUE(got) << v;
    on_the_loop.push_back(*got->value);
  }
  waiter.join();
  EXPECT_THAT(on_the_loop, testing::ElementsAre(1, 2, 3));
  EXPECT_THAT(in_thread, testing::ElementsAre(1, 2, 3));
}

TEST(signal_async, stop_ends_a_blocking_wait_in_another_thread) {
  asio::io_context io;
  signal::notifier rt(io, {SIGRTMIN + 3});
  std::latch waiting(1);
  error_code result;
  std::thread waiter([&] {
    waiting.count_down();
    rt.wait(result);
  });
  waiting.wait();
  rt.stop();
  waiter.join();
  EXPECT_EQ(result, asio::error::operation_aborted);
}

TEST(signal_async, notify_context_fires_on_the_first_signal_and_says_which) {
  asio::io_context io;
  signal::notify_context stopping(io.get_executor(), {SIGUSR1, SIGUSR2});
  asio::steady_timer long_job(io, 1h);
  error_code job_result;
  bool job_done = false;
  long_job.async_wait(asio::bind_cancellation_slot(stopping.slot(), [&](error_code ec) {
    job_result = ec;
    job_done = true;
  }));
  EXPECT_FALSE(stopping.done());
  peer_process child({helper_path(), "signals-to-parent", "kill:USR2"});
  ASSERT_TRUE(run_until(io, [&] { return job_done; }));
  EXPECT_EQ(job_result, asio::error::operation_aborted);
  EXPECT_TRUE(stopping.done());
  EXPECT_TRUE(stopping.stop_token().stop_requested());
  ASSERT_TRUE(stopping.cause());
  EXPECT_EQ(stopping.cause()->number, SIGUSR2);
  EXPECT_EQ(stopping.cause()->sender_pid, child.pid());
}

TEST(signal_async, notify_context_cancel_fires_without_a_cause) {
  asio::io_context io;
  signal::notify_context stopping(io.get_executor(), {SIGUSR1});
  asio::steady_timer long_job(io, 1h);
  bool job_done = false;
  long_job.async_wait(asio::bind_cancellation_slot(stopping.slot(), [&](error_code) { job_done = true; }));
  stopping.cancel();
  ASSERT_TRUE(run_until(io, [&] { return job_done; }));
  EXPECT_TRUE(stopping.done());
  EXPECT_FALSE(stopping.cause());
}

TEST(signal_async, run_until_signal_is_the_daemon_main) {
  ipckit::event_loop loop;
  std::unique_ptr<peer_process> child;
  // Started from the loop, so run_until_signal is already subscribed.
  asio::post(loop.get_executor(), [&] {
    child = std::make_unique<peer_process>(
        std::vector<std::string>{helper_path(), "signals-to-parent", "queue:RTMIN+5:9"});
  });
  auto got = signal::run_until_signal(loop, {SIGRTMIN + 5, SIGTERM});
  ASSERT_TRUE(got);
  EXPECT_EQ(got->number, SIGRTMIN + 5);
  EXPECT_EQ(got->value, 9);
  EXPECT_EQ(got->sender_pid, child->pid());
  EXPECT_TRUE(loop.stopped());
}

TEST(signal_async, notifiers_in_several_threads_each_get_every_delivery_in_order) {
  constexpr int threads = 4, values = 20;
  // Subscribed here first, so the threads start with the signal blocked and every
  // delivery goes through the signalfd.
  asio::io_context main_io;
  signal::notifier main_watch(main_io, {SIGRTMIN + 4});
  std::latch subscribed(threads);
  std::vector<std::vector<int>> received(threads);
  std::vector<std::thread> workers;
  std::atomic<bool> churning{true};
  // Meanwhile other threads subscribe and unsubscribe again and again.
  std::thread churn([&] {
    asio::io_context io;
    while (churning.load()) signal::notifier passing(io, {SIGRTMIN + 4, SIGRTMIN + 6});
  });
  for (int t = 0; t < threads; ++t) {
    workers.emplace_back([&, t] {
      asio::io_context io;
      signal::notifier rt(io, {SIGRTMIN + 4});
      subscribed.count_down();
      while (received[t].size() < values) {
        auto got = next_delivery(io, rt);
        if (!got) break;
        received[t].push_back(*got->value);
      }
    });
  }
  subscribed.wait();
  for (int v = 1; v <= values; ++v) to_self(SIGRTMIN + 4, v);
  for (auto& worker : workers) worker.join();
  churning = false;
  churn.join();
  std::vector<int> expected;
  for (int v = 1; v <= values; ++v) expected.push_back(v);
  for (int t = 0; t < threads; ++t) EXPECT_EQ(received[t], expected) << "thread " << t;
  for (int v = 1; v <= values; ++v) {
    auto got = next_delivery(main_io, main_watch);
    ASSERT_TRUE(got);
    EXPECT_EQ(got->value, v);
  }
}

}  // namespace
