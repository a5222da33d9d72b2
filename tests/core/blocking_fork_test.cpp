// The worker pool across fork() without exec: after io_context::notify_fork(fork_child),
// as Asio asks, the child's blocking calls run on threads of its own (the parent's did
// not come along), and neither process takes the other's completions.
#include <ipckit/detail/blocking_call.hpp>

#include <ipckit/event_loop.hpp>

#include "interruptible_call.hpp"
#include "test_support.hpp"

#include <boost/asio/bind_cancellation_slot.hpp>
#include <boost/asio/cancellation_signal.hpp>
#include <gtest/gtest.h>

#include <atomic>
#include <functional>
#include <memory>
#include <optional>
#include <unistd.h>

namespace {

using namespace std::chrono_literals;
using ipckit::error_code;
using ipckit::detail::async_run_blocking;
using ipckit::detail::blocking_service;
using ipckit::detail::interrupt_token;
using ipckit::test::block_until_cancelled;
using ipckit::test::eventually;
using ipckit::test::run_until;

constexpr auto fork_child = boost::asio::execution_context::fork_child;

// Exit codes of a child: what it found, since its assertions would not reach gtest.
enum child_verdict { passed = 0, failed = 1, timed_out = 2 };

class blocking_fork : public ::testing::Test {
 protected:
  std::size_t workers() { return boost::asio::use_service<blocking_service>(loop->context()).thread_count(); }

  // Runs `calls` quick calls one after the other, each started by the last one's
  // completion; true when all completed with their value within the deadline.
  bool run_calls(int calls) {
    int done = 0;
    bool all_right = true;
    std::function<void()> next = [&] {
      async_run_blocking<int>(
          loop->get_executor(), [n = done](const interrupt_token&, error_code&) { return n; },
          [&, expected = done](error_code ec, int value) {
            all_right = all_right && !ec && value == expected;
            if (++done < calls) next();
          });
    };
    next();
    return run_until(*loop, [&] { return done == calls; }) && all_right;
  }

  // Forks; the child runs `body` (its verdict is its exit code) and then destroys its
  // loop, which must not hang either. Returns the child's verdict, or -1 when it did not
  // end within the deadline (it is killed then).
  int in_child(const std::function<child_verdict()>& body, const std::function<void()>& meanwhile = {}) {
    const pid_t child = ::fork();
    if (child < 0) return -1;
    if (child == 0) {
      loop->context().notify_fork(fork_child);
      const child_verdict verdict = body();
      loop.reset();
      ::_exit(verdict);
    }
    if (meanwhile) meanwhile();
    return ipckit::test::reap_within(child, 15s);
  }

  std::unique_ptr<ipckit::event_loop> loop = std::make_unique<ipckit::event_loop>();
};

TEST_F(blocking_fork, a_child_runs_its_calls_on_workers_of_its_own) {
  ASSERT_TRUE(run_calls(1));
  ASSERT_EQ(workers(), 1u);  // idle in the parent: the child must not count on it
  const int verdict = in_child([&] {
    if (workers() != 0) return failed;
    if (!run_calls(3)) return timed_out;
    return workers() == 1 ? passed : failed;
  });
  EXPECT_EQ(verdict, passed);
  EXPECT_TRUE(run_calls(3)) << "the parent's pool after the fork";
}

// The child's copy of a call that a parent's thread was making is made again in the
// child, on a worker of its own; the parent's goes on.
TEST_F(blocking_fork, a_call_running_at_the_fork_is_made_again_in_the_child) {
  std::atomic<int> entries{0};
  boost::asio::cancellation_signal cancel;
  std::optional<error_code> result;
  async_run_blocking<void>(
      loop->get_executor(),
      [&](const interrupt_token& token, error_code& ec) {
        ++entries;
        block_until_cancelled(token, ec);
      },
      boost::asio::bind_cancellation_slot(cancel.slot(), [&](error_code ec) { result = ec; }));
  ASSERT_TRUE(eventually([&] { return entries.load() == 1; }));
  const int verdict = in_child([&] {
    if (!eventually([&] { return entries.load() == 2; }, 5s)) return timed_out;
    if (result || workers() != 1) return failed;
    cancel.emit(boost::asio::cancellation_type::terminal);
    if (!run_until(*loop, [&] { return result.has_value(); }, 5s)) return timed_out;
    return *result == boost::asio::error::operation_aborted ? passed : failed;
  });
  EXPECT_EQ(verdict, passed);
  EXPECT_FALSE(result.has_value()) << "the parent's call ended with the child's";
  EXPECT_EQ(entries.load(), 1);
  cancel.emit(boost::asio::cancellation_type::terminal);
  ASSERT_TRUE(run_until(*loop, [&] { return result.has_value(); }));
  EXPECT_EQ(*result, boost::asio::error::operation_aborted);
}

// The two processes' loops each wait on their own completion eventfd: one shared would
// let a process read, and lose, the wake-up that the other's worker wrote.
TEST_F(blocking_fork, parent_and_child_run_calls_at_the_same_time) {
  ASSERT_TRUE(run_calls(1));
  bool parent_done = false;
  const int verdict = in_child([&] { return run_calls(300) ? passed : timed_out; },
                               [&] { parent_done = run_calls(300); });
  EXPECT_EQ(verdict, passed);
  EXPECT_TRUE(parent_done);
}

// fork_prepare holds the pool's locks across the fork, so that no worker is inside one
// of its critical sections then; fork_parent gives them back.
TEST_F(blocking_fork, fork_prepare_and_fork_parent_leave_both_pools_working) {
  ASSERT_TRUE(run_calls(1));
  loop->context().notify_fork(boost::asio::execution_context::fork_prepare);
  const int verdict = in_child([&] { return run_calls(3) ? passed : timed_out; },
                               [&] { loop->context().notify_fork(boost::asio::execution_context::fork_parent); });
  EXPECT_EQ(verdict, passed);
  EXPECT_TRUE(run_calls(3));
}

}  // namespace
