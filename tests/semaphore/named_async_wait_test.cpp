// named_semaphore::async_wait on both of its paths: the loop's io_uring (a FUTEX_WAIT on
// glibc's sem_t) and the worker pool (IPCKIT_NO_IO_URING=1 forces it). Each scenario
// runs on both, against real peers: the ipckit command, python3 calling glibc's
// sem_open/sem_post/sem_wait through ctypes, blocked sem_waits of another process.
#include <ipckit/semaphore.hpp>

#include "test_support.hpp"

#include <ipckit/detail/blocking_call.hpp>
#include <ipckit/detail/semaphore_ring.hpp>
#include <ipckit/event_loop.hpp>

#include <boost/asio/bind_cancellation_slot.hpp>
#include <boost/asio/cancellation_signal.hpp>
#include <boost/asio/steady_timer.hpp>

#include <atomic>
#include <cstdint>
#include <cstdlib>
#include <fcntl.h>
#include <memory>
#include <optional>
#include <semaphore.h>
#include <sys/syscall.h>
#include <thread>

namespace {

using ipckit::error_code;
using ipckit::named_semaphore;
using ipckit::test::cli_path;
using ipckit::test::peer_process;
using ipckit::test::run_process;
using ipckit::test::run_until;
using ipckit::test::unique_ipc_name;
namespace asio = boost::asio;

// A foreign peer: python3 calling glibc's semaphore functions itself. "ACTION NAME N":
// post N units, or wait for N, saying "took" after each; "done" at the end.
const std::string glibc_peer = R"(
import ctypes, errno, os, sys
libc = ctypes.CDLL('libc.so.6', use_errno=True)
libc.sem_open.restype = ctypes.c_void_p
libc.sem_open.argtypes = [ctypes.c_char_p, ctypes.c_int]
action, name, count = sys.argv[1], sys.argv[2], int(sys.argv[3])
sem = libc.sem_open(name.encode(), 0)
if not sem:
    sys.exit('sem_open: ' + os.strerror(ctypes.get_errno()))
call = libc.sem_post if action == 'post' else libc.sem_wait
call.argtypes = [ctypes.c_void_p]
for _ in range(count):
    while call(sem) != 0:
        if ctypes.get_errno() != errno.EINTR:
            sys.exit(action + ': ' + os.strerror(ctypes.get_errno()))
    if action == 'wait':
        print('took', flush=True)
print('done', flush=True)
)";

std::vector<std::string> glibc_peer_argv(const std::string& action, const std::string& name, int count) {
  return {"python3", "-S", "-c", glibc_peer, action, name, std::to_string(count)};
}

// glibc's count of waiters that may sleep on a named semaphore: the high half of the
// sem_t's first word (nptl/sem_waitcommon.c). Both paths must keep it as sem_wait does.
std::uint32_t waiters_counted(const std::string& name) {
  sem_t* sem = ::sem_open(name.c_str(), 0);
  if (sem == SEM_FAILED) return UINT32_MAX;
  const auto data = __atomic_load_n(reinterpret_cast<std::uint64_t*>(sem), __ATOMIC_RELAXED);
  ::sem_close(sem);
  return static_cast<std::uint32_t>(data >> 32);
}

enum class path { io_uring, worker_pool };

std::string path_name(const testing::TestParamInfo<path>& info) {
  return info.param == path::io_uring ? "io_uring" : "worker_pool";
}

class named_async_wait : public ::testing::TestWithParam<path> {
 protected:
  void SetUp() override {
    // Read when the loop's ring service is made: at its first wait that has to wait.
    if (GetParam() == path::worker_pool) ::setenv("IPCKIT_NO_IO_URING", "1", 1);
    else ::unsetenv("IPCKIT_NO_IO_URING");
    loop.emplace();
    if (GetParam() == path::io_uring && !ring().usable())
      GTEST_SKIP() << "io_uring's FUTEX_WAIT is not available here (Linux < 6.7, io_uring disabled "
                      "or refused by seccomp, or not glibc): only the worker pool is tested";
  }
  void TearDown() override {
    loop.reset();
    ::unsetenv("IPCKIT_NO_IO_URING");
    error_code ignored;
    for (const auto& name : names) named_semaphore::unlink(name, ignored);
  }

  std::string name(std::string_view tag) { return names.emplace_back(unique_ipc_name(tag)); }
  ipckit::detail::semaphore_ring_service& ring() {
    return asio::use_service<ipckit::detail::semaphore_ring_service>(loop->context());
  }
  std::size_t pool_threads() {
    return asio::use_service<ipckit::detail::blocking_service>(loop->context()).thread_count();
  }
  // The path the waits took: the ring and no pool thread, or the pool.
  void expect_path_taken() {
    if (GetParam() == path::io_uring) {
      EXPECT_EQ(pool_threads(), 0u) << "a wait went to the worker pool";
    } else {
      EXPECT_FALSE(ring().usable()) << "IPCKIT_NO_IO_URING=1 did not turn the ring off";
      EXPECT_GE(pool_threads(), 1u);
    }
  }
  // Runs the loop until `count` waits of `name` are counted (each really waits).
  bool until_waiters(const std::string& sem, std::uint32_t count) {
    return run_until(*loop, [&] { return waiters_counted(sem) == count; });
  }

  std::optional<ipckit::event_loop> loop;
  std::vector<std::string> names;
};

TEST_P(named_async_wait, is_woken_by_a_post_from_the_ipckit_command) {
  const auto sem = name("cli");
  named_semaphore semaphore(*loop);
  semaphore.create(sem, 0);
  std::optional<error_code> result;
  semaphore.async_wait([&](error_code e) { result = e; });
  ASSERT_TRUE(until_waiters(sem, 1));
  EXPECT_FALSE(result) << "completed before any post";
  EXPECT_EQ(run_process({cli_path(), "sem", "post", sem}).exit_code, 0);
  ASSERT_TRUE(run_until(*loop, [&] { return result.has_value(); }));
  EXPECT_FALSE(*result) << result->message();
  EXPECT_EQ(semaphore.value(), 0);
  EXPECT_EQ(waiters_counted(sem), 0u);
  expect_path_taken();
}

// Under event_loop::run, an idle loop waits in sem_wait itself (either path): the post
// from the ipckit command wakes the loop thread, and no worker starts.
TEST_P(named_async_wait, on_an_idle_loop_waits_in_sem_wait_on_the_loop_thread) {
  const auto sem = name("idle");
  named_semaphore semaphore(*loop);
  semaphore.create(sem, 0);
  std::optional<error_code> result;
  semaphore.async_wait([&](error_code e) { result = e; });
  const pid_t loop_tid = ::gettid();
  int post_exit = -1;
  std::thread poster([&] {
    const bool waiting = ipckit::test::eventually(
        [&] { return ipckit::test::blocked_in_syscall(loop_tid, SYS_futex) && waiters_counted(sem) == 1; });
    EXPECT_TRUE(waiting) << "the loop thread never waited in sem_wait";
    post_exit = run_process({cli_path(), "sem", "post", sem}).exit_code;
  });
  loop->run();
  poster.join();
  EXPECT_EQ(post_exit, 0);
  ASSERT_TRUE(result.has_value());
  EXPECT_FALSE(*result) << result->message();
  EXPECT_EQ(semaphore.value(), 0);
  EXPECT_EQ(waiters_counted(sem), 0u);
  EXPECT_EQ(pool_threads(), 0u) << "the wait went to the worker pool";
}

// The idle loop's sem_wait, interrupted by a timer due, goes on on the ring (or the
// pool), where the post from the ipckit command in the timer's handler wakes it.
TEST_P(named_async_wait, interrupted_on_the_idle_loop_by_a_timer_goes_on_on_the_ring_or_pool) {
  const auto sem = name("interrupted");
  named_semaphore semaphore(*loop);
  semaphore.create(sem, 0);
  std::optional<error_code> result;
  semaphore.async_wait([&](error_code e) { result = e; });
  asio::steady_timer timer(loop->get_executor(), std::chrono::milliseconds(50));
  bool result_when_fired = true;
  int post_exit = -1;
  timer.async_wait([&](error_code) {
    result_when_fired = result.has_value();
    post_exit = run_process({cli_path(), "sem", "post", sem}).exit_code;
  });
  loop->run();
  EXPECT_FALSE(result_when_fired) << "the wait ended before the timer";
  EXPECT_EQ(post_exit, 0);
  ASSERT_TRUE(result.has_value());
  EXPECT_FALSE(*result) << result->message();
  EXPECT_EQ(semaphore.value(), 0);
  EXPECT_EQ(waiters_counted(sem), 0u);
  expect_path_taken();
}

TEST_P(named_async_wait, is_woken_by_glibc_sem_post_from_python) {
  const auto sem = name("python");
  named_semaphore semaphore(*loop);
  semaphore.create(sem, 0);
  int completed = 0;
  for (int i = 0; i < 2; ++i)
    semaphore.async_wait([&](error_code e) {
      EXPECT_FALSE(e) << e.message();
      ++completed;
    });
  ASSERT_TRUE(until_waiters(sem, 2));
  peer_process poster(glibc_peer_argv("post", sem, 2));
  EXPECT_EQ(poster.read_line(), "done");
  ASSERT_TRUE(run_until(*loop, [&] { return completed == 2; }));
  EXPECT_EQ(poster.wait(), 0);
  EXPECT_EQ(semaphore.value(), 0);
  EXPECT_EQ(waiters_counted(sem), 0u);
  expect_path_taken();
}

// A wait started by a handler on the loop's thread (begun at once, not queued) waits as
// one started from outside.
TEST_P(named_async_wait, a_wait_started_by_a_handler_waits_too) {
  const auto sem = name("chain");
  named_semaphore semaphore(*loop);
  semaphore.create(sem, 0);
  std::vector<error_code> results;
  semaphore.async_wait([&](error_code e) {
    results.push_back(e);
    semaphore.async_wait([&](error_code again) { results.push_back(again); });
  });
  ASSERT_TRUE(until_waiters(sem, 1));
  EXPECT_EQ(run_process({cli_path(), "sem", "post", sem}).exit_code, 0);
  ASSERT_TRUE(run_until(*loop, [&] { return results.size() == 1; }));
  ASSERT_TRUE(until_waiters(sem, 1)) << "the second wait is not waiting";
  EXPECT_EQ(results.size(), 1u);
  EXPECT_EQ(run_process({cli_path(), "sem", "post", sem}).exit_code, 0);
  ASSERT_TRUE(run_until(*loop, [&] { return results.size() == 2; }));
  for (const auto& e : results) EXPECT_FALSE(e) << e.message();
  EXPECT_EQ(semaphore.value(), 0);
  expect_path_taken();
}

// Two threads run the loop; waits started from a third; every post is taken once.
TEST_P(named_async_wait, works_on_a_loop_run_by_two_threads) {
  const auto sem = name("threads");
  named_semaphore semaphore(*loop);
  semaphore.create(sem, 0);
  constexpr int waits = 8;
  std::atomic<int> completed{0}, failed{0};
  for (int i = 0; i < waits; ++i)
    semaphore.async_wait([&](error_code e) {
      if (e) ++failed;
      ++completed;
    });
  ASSERT_TRUE(until_waiters(sem, waits));
  std::vector<std::thread> runners;
  // run_for: a lost wake ends the test at the deadline instead of hanging it.
  for (int i = 0; i < 2; ++i) runners.emplace_back([&] { loop->context().run_for(std::chrono::seconds(10)); });
  peer_process poster(glibc_peer_argv("post", sem, waits));
  for (auto& runner : runners) runner.join();  // run() returns when every wait is done
  EXPECT_EQ(completed.load(), waits);
  EXPECT_EQ(failed.load(), 0);
  EXPECT_EQ(poster.wait(), 0);
  EXPECT_EQ(semaphore.value(), 0);
  EXPECT_EQ(waiters_counted(sem), 0u);
}

// Async waits here and blocked sem_waits in another process share the posts of a third:
// every unit is taken exactly once, and no waiter sleeps while a unit is there (a wake
// lost between the two kinds of waiter would leave the python waiter blocked).
TEST_P(named_async_wait, shares_posts_with_blocked_sem_waits_of_another_process_losing_none) {
  const auto sem = name("share");
  named_semaphore semaphore(*loop);
  semaphore.create(sem, 0);
  constexpr int ours = 6, theirs = 3, rounds = 3;
  for (int round = 0; round < rounds; ++round) {
    int completed = 0;
    for (int i = 0; i < ours; ++i)
      semaphore.async_wait([&](error_code e) {
        EXPECT_FALSE(e) << e.message();
        ++completed;
      });
    peer_process waiter(glibc_peer_argv("wait", sem, theirs));
    // Ours, and the python waiter's first sem_wait.
    ASSERT_TRUE(until_waiters(sem, ours + 1)) << "round " << round;
    peer_process poster(glibc_peer_argv("post", sem, ours + theirs));
    ASSERT_TRUE(run_until(*loop, [&] { return completed == ours; })) << "round " << round << ": " << completed;
    for (int i = 0; i < theirs; ++i) EXPECT_EQ(waiter.read_line(), "took") << "round " << round;
    EXPECT_EQ(waiter.read_line(), "done");
    EXPECT_EQ(waiter.wait(), 0);
    EXPECT_EQ(poster.wait(), 0);
    EXPECT_EQ(semaphore.value(), 0) << "a unit was left over (taken by no one)";
    EXPECT_EQ(waiters_counted(sem), 0u);
  }
  semaphore.post();
  EXPECT_TRUE(semaphore.try_wait());
  EXPECT_FALSE(semaphore.try_wait());
  expect_path_taken();
}

TEST_P(named_async_wait, cancelled_through_its_slot_takes_nothing_and_a_later_post_stays) {
  const auto sem = name("cancel");
  named_semaphore semaphore(*loop);
  semaphore.create(sem, 0);
  asio::cancellation_signal cancel;
  std::optional<error_code> result;
  semaphore.async_wait(asio::bind_cancellation_slot(cancel.slot(), [&](error_code e) { result = e; }));
  ASSERT_TRUE(until_waiters(sem, 1));
  cancel.emit(asio::cancellation_type::terminal);
  ASSERT_TRUE(run_until(*loop, [&] { return result.has_value(); }));
  EXPECT_EQ(*result, asio::error::operation_aborted);
  EXPECT_EQ(waiters_counted(sem), 0u);
  EXPECT_EQ(run_process({cli_path(), "sem", "post", sem}).exit_code, 0);
  loop->poll();
  EXPECT_TRUE(semaphore.try_wait()) << "the post went to the cancelled wait";
  EXPECT_FALSE(semaphore.try_wait());
}

// A post wakes our wait (queued first) rather than another process's blocked sem_wait,
// and our wait is cancelled before it sees the wake: it must take nothing and pass the
// wake on, or the other waiter sleeps beside a unit.
TEST_P(named_async_wait, cancelled_after_a_post_woke_it_passes_the_wake_on) {
  const auto sem = name("pass");
  named_semaphore semaphore(*loop), poster(*loop);
  semaphore.create(sem, 0);
  poster.open(sem);
  asio::cancellation_signal cancel;
  std::optional<error_code> result;
  semaphore.async_wait(asio::bind_cancellation_slot(cancel.slot(), [&](error_code e) { result = e; }));
  ASSERT_TRUE(until_waiters(sem, 1));
  peer_process waiter(glibc_peer_argv("wait", sem, 1));
  ASSERT_TRUE(until_waiters(sem, 2));
  poster.post();
  cancel.emit(asio::cancellation_type::terminal);
  ASSERT_TRUE(run_until(*loop, [&] { return result.has_value(); }));
  if (GetParam() == path::io_uring) {
    // The ring saw the cancel before the wake: deterministic.
    EXPECT_EQ(*result, asio::error::operation_aborted);
  } else if (!*result) {
    // The pool's sem_wait may have returned with the unit before the cancel came.
    poster.post();
  }
  EXPECT_EQ(waiter.read_line(), "took") << "the other process's sem_wait was never woken";
  EXPECT_EQ(waiter.wait(), 0);
  EXPECT_EQ(semaphore.value(), 0);
  EXPECT_EQ(waiters_counted(sem), 0u);
}

TEST_P(named_async_wait, close_while_waiting_aborts_and_takes_nothing) {
  const auto sem = name("close");
  named_semaphore semaphore(*loop), observer(*loop);
  semaphore.create(sem, 0);
  observer.open(sem);
  std::vector<error_code> results;
  for (int i = 0; i < 2; ++i) semaphore.async_wait([&](error_code e) { results.push_back(e); });
  ASSERT_TRUE(until_waiters(sem, 2));
  semaphore.close();
  ASSERT_TRUE(run_until(*loop, [&] { return results.size() == 2; }));
  for (const auto& e : results) EXPECT_EQ(e, asio::error::operation_aborted);
  EXPECT_EQ(waiters_counted(sem), 0u);
  observer.post();
  loop->poll();
  EXPECT_EQ(observer.value(), 1) << "an aborted wait took the unit";
  // Waits started after close() fail at once.
  std::optional<error_code> late;
  semaphore.async_wait([&](error_code e) { late = e; });
  ASSERT_TRUE(run_until(*loop, [&] { return late.has_value(); }));
  EXPECT_EQ(*late, ipckit::errc::closed);
}

TEST_P(named_async_wait, outlives_the_semaphore_object) {
  const auto sem = name("outlive");
  auto semaphore = std::make_unique<named_semaphore>(*loop);
  semaphore->create(sem, 0);
  std::optional<error_code> result;
  semaphore->async_wait([&](error_code e) { result = e; });
  ASSERT_TRUE(until_waiters(sem, 1));
  semaphore.reset();
  EXPECT_EQ(run_process({cli_path(), "sem", "post", sem}).exit_code, 0);
  ASSERT_TRUE(run_until(*loop, [&] { return result.has_value(); }));
  EXPECT_FALSE(*result) << result->message();
  named_semaphore observer(*loop);
  observer.open(sem);
  EXPECT_EQ(observer.value(), 0);
}

// Destroying the loop destroys the pending handler uncalled, and the wait stops being a
// waiter: no unit taken, nothing left counted (a count left behind would make every
// later sem_post of any process call FUTEX_WAKE for nobody).
TEST_P(named_async_wait, destroying_the_loop_while_waiting_leaves_nothing_behind) {
  const auto sem = name("destroy");
  bool called = false;
  {
    named_semaphore semaphore(*loop);
    semaphore.create(sem, 0);
    semaphore.async_wait([&](error_code) { called = true; });
    ASSERT_TRUE(until_waiters(sem, 1));
    expect_path_taken();
  }
  loop.reset();
  EXPECT_FALSE(called);
  EXPECT_EQ(waiters_counted(sem), 0u);
  EXPECT_EQ(run_process({cli_path(), "sem", "post", sem}).exit_code, 0);
  EXPECT_EQ(run_process({cli_path(), "sem", "info", sem}).out, "1\n");
}

// A child made by fork() without exec, after notify_fork(fork_child), leaves the parent's
// wait alone (on the ring, whose memory the two share, a child reaping it would starve
// one of them): the parent's wait takes a unit, the child's copy of it takes one in the
// child, and so does a wait the child starts itself. Three posts, no unit left over,
// nothing left counted.
TEST_P(named_async_wait, a_forked_child_leaves_the_parents_waits_alone) {
  const auto sem = name("fork");
  named_semaphore semaphore(*loop);
  semaphore.create(sem, 0);
  std::optional<error_code> result;
  semaphore.async_wait([&](error_code e) { result = e; });
  ASSERT_TRUE(until_waiters(sem, 1));
  const pid_t child = ::fork();
  ASSERT_GE(child, 0);
  if (child == 0) {
    loop->context().notify_fork(asio::execution_context::fork_child);
    bool all_right = run_until(*loop, [&] { return result.has_value(); }) && !*result;
    std::optional<error_code> own;
    semaphore.async_wait([&](error_code e) { own = e; });
    all_right = all_right && run_until(*loop, [&] { return own.has_value(); }) && !*own;
    semaphore.close();
    loop.reset();
    ::_exit(all_right ? 0 : 1);
  }
  peer_process poster(glibc_peer_argv("post", sem, 3));
  ASSERT_TRUE(run_until(*loop, [&] { return result.has_value(); }));
  EXPECT_FALSE(*result) << result->message();
  EXPECT_EQ(ipckit::test::reap_within(child, std::chrono::seconds(15)), 0)
      << "the child's waits did not complete (-1), or took no unit (1)";
  EXPECT_EQ(poster.wait(), 0);
  EXPECT_EQ(semaphore.value(), 0) << "a unit was left over";
  EXPECT_EQ(waiters_counted(sem), 0u);
}

INSTANTIATE_TEST_SUITE_P(paths, named_async_wait, ::testing::Values(path::io_uring, path::worker_pool), path_name);

}  // namespace
