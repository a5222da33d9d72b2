// async_lock on an idle loop waits on the loop's own thread (docs/file_lock.md), and
// whatever the loop would have woken for still runs at once: the wait then moves to the
// worker pool. The holder is util-linux flock(1); the loop runs under event_loop::run.
#include <ipckit/file_lock.hpp>

#include "test_support.hpp"

#include <ipckit/event_loop.hpp>
#include <ipckit/pipe.hpp>
#include <ipckit/signal.hpp>

#include <boost/asio/bind_cancellation_slot.hpp>
#include <boost/asio/cancellation_signal.hpp>
#include <boost/asio/post.hpp>
#include <boost/asio/steady_timer.hpp>
#include <gtest/gtest.h>

#include <atomic>
#include <csignal>
#include <fstream>
#include <memory>
#include <optional>
#include <sys/syscall.h>
#include <thread>
#include <unistd.h>

namespace {

using namespace std::chrono_literals;
using ipckit::error_code;
using ipckit::file_lock;
using ipckit::lock_mode;
using ipckit::test::blocked_in_syscall;
using ipckit::test::eventually;
using ipckit::test::helper_path;
using ipckit::test::peer_process;
using clock_type = std::chrono::steady_clock;

class file_lock_idle_loop : public ipckit::test::temp_dir_test {
 protected:
  std::string lock_path(int n = 0) const { return (dir() / ("lock" + std::to_string(n))).string(); }

  // flock(1) holding `path` until its command's stdin closes.
  std::unique_ptr<peer_process> hold(const std::string& path) {
    auto holder = std::make_unique<peer_process>(
        std::vector<std::string>{"flock", path, helper_path(), "wait-stdin"});
    EXPECT_EQ(holder->read_line(), "ready");
    return holder;
  }

  std::size_t workers() {
    return boost::asio::use_service<ipckit::detail::blocking_service>(loop.context()).thread_count();
  }

  // On another thread: once the loop thread blocks in flock, runs `then`. If the loop
  // never gets there, lets every holder go after 10 s, so the test fails but ends.
  void when_the_loop_waits_in_flock(std::function<void()> then) {
    helper = std::thread([this, then = std::move(then)] {
      if (!eventually([&] { return blocked_in_syscall(loop_tid, SYS_flock); })) {
        ADD_FAILURE() << "the loop thread never waited in flock";
        for (auto* holder : holders) holder->close_stdin();
        return;
      }
      then();
    });
  }

  // flock(1) holds lock_path(), and `lock` waits for it with async_lock.
  void start_waiting(boost::asio::cancellation_slot slot = {}) {
    holder = hold(lock_path());
    holders = {holder.get()};
    lock.emplace(loop, lock_path());
    auto record = [this](error_code ec) { result = ec, done = true; };
    lock->async_lock(lock_mode::exclusive, boost::asio::bind_cancellation_slot(slot, record));
  }

  // The thread that acted during the wait is done with the holders.
  void join_helper() {
    if (helper.joinable()) helper.join();
  }

  // The wait ended with the lock taken, once flock(1) let go.
  void expect_taken() {
    join_helper();
    EXPECT_TRUE(done);
    EXPECT_FALSE(result) << result.message();
    EXPECT_TRUE(lock->owns_lock());
    EXPECT_EQ(holder->wait(), 0);
  }

  void TearDown() override { join_helper(); }

  ipckit::event_loop loop;
  pid_t loop_tid = ::gettid();
  std::vector<peer_process*> holders;
  std::unique_ptr<peer_process> holder;
  std::optional<file_lock> lock;
  std::thread helper;
  bool done = false;
  error_code result;
};

TEST_F(file_lock_idle_loop, waits_on_the_loop_thread_and_takes_the_lock_flock1_lets_go) {
  start_waiting();
  when_the_loop_waits_in_flock([&] { holder->close_stdin(); });
  loop.run();
  expect_taken();
  EXPECT_EQ(workers(), 0u) << "the wait went to the worker pool";
}

TEST_F(file_lock_idle_loop, a_timer_due_during_the_wait_runs_on_time_and_the_wait_moves_to_a_worker) {
  start_waiting();
  boost::asio::steady_timer timer(loop.get_executor(), 100ms);
  const auto start = clock_type::now();
  clock_type::duration fired_after{};
  std::size_t workers_when_fired = 0;
  timer.async_wait([&](error_code) {
    fired_after = clock_type::now() - start;
    workers_when_fired = workers();
    holder->close_stdin();
  });
  loop.run();
  EXPECT_GE(fired_after, 100ms);
  EXPECT_LT(fired_after, 1s) << "the timer waited for the lock";
  EXPECT_EQ(workers_when_fired, 1u);
  expect_taken();
}

TEST_F(file_lock_idle_loop, a_post_from_another_thread_runs_during_the_wait) {
  start_waiting();
  std::atomic<bool> posted_ran{false};
  bool lock_done_when_posted_ran = true;
  when_the_loop_waits_in_flock([&] {
    boost::asio::post(loop.get_executor(), [&] {
      lock_done_when_posted_ran = done;
      posted_ran = true;
      holder->close_stdin();
    });
  });
  loop.run();
  EXPECT_TRUE(posted_ran);
  EXPECT_FALSE(lock_done_when_posted_ran) << "the post waited for the lock";
  expect_taken();
}

TEST_F(file_lock_idle_loop, stop_from_another_thread_ends_run_during_the_wait) {
  start_waiting();
  when_the_loop_waits_in_flock([&] { loop.stop(); });
  loop.run();
  EXPECT_FALSE(done);
  EXPECT_EQ(workers(), 1u);
  // The wait goes on on the worker; it ends when flock(1) lets go.
  join_helper();
  holder->close_stdin();
  loop.restart();
  loop.run();
  expect_taken();
}

TEST_F(file_lock_idle_loop, data_on_a_pipe_during_the_wait_is_read_at_once) {
  start_waiting();
  auto [reader, writer] = ipckit::make_pipe(loop.get_executor());
  char byte = 0;
  bool lock_done_when_read = true;
  reader.async_read_some(boost::asio::buffer(&byte, 1), [&](error_code ec, std::size_t) {
    EXPECT_FALSE(ec);
    lock_done_when_read = done;
    holder->close_stdin();
  });
  when_the_loop_waits_in_flock([&] { ASSERT_EQ(::write(writer.native_handle(), "x", 1), 1); });
  loop.run();
  EXPECT_EQ(byte, 'x');
  EXPECT_FALSE(lock_done_when_read) << "the read waited for the lock";
  expect_taken();
}

// A daemon waiting for a lock still hears its signals: one sent by the shell's kill
// during the wait reaches its subscriber on the loop at once.
TEST_F(file_lock_idle_loop, a_signal_sent_during_the_wait_reaches_its_subscriber_at_once) {
  ipckit::signal::notifier usr1(loop.get_executor(), {SIGUSR1});
  start_waiting();
  int signal_number = 0;
  bool lock_done_when_signalled = true;
  usr1.async_wait([&](error_code ec, ipckit::signal::info delivery) {
    EXPECT_FALSE(ec);
    signal_number = delivery.number;
    lock_done_when_signalled = done;
    holder->close_stdin();
  });
  int kill_exit = -1;
  when_the_loop_waits_in_flock([&] {
    kill_exit = ipckit::test::run_process({"sh", "-c", "kill -USR1 " + std::to_string(::getpid())}).exit_code;
  });
  loop.run();
  join_helper();
  EXPECT_EQ(kill_exit, 0);
  EXPECT_EQ(signal_number, SIGUSR1);
  EXPECT_FALSE(lock_done_when_signalled) << "the signal waited for the lock";
  expect_taken();
}

TEST_F(file_lock_idle_loop, a_cancel_posted_during_the_wait_aborts_it_and_the_lock_is_not_held) {
  boost::asio::cancellation_signal cancel;
  start_waiting(cancel.slot());
  when_the_loop_waits_in_flock([&] {
    boost::asio::post(loop.get_executor(), [&] { cancel.emit(boost::asio::cancellation_type::terminal); });
  });
  loop.run();
  EXPECT_TRUE(done);
  EXPECT_EQ(result, boost::asio::error::operation_aborted);
  EXPECT_FALSE(lock->owns_lock());
  join_helper();
  holder->close_stdin();
  EXPECT_EQ(holder->wait(), 0);
}

TEST_F(file_lock_idle_loop, two_waits_on_one_loop_end_in_either_order) {
  auto first_holder = hold(lock_path(0));
  auto second_holder = hold(lock_path(1));
  holders = {first_holder.get(), second_holder.get()};
  file_lock first(loop, lock_path(0)), second(loop, lock_path(1));
  bool first_done = false, second_done = false;
  first.async_lock(lock_mode::exclusive, [&](error_code ec) {
    EXPECT_FALSE(ec);
    EXPECT_TRUE(second_done);
    first_done = true;
  });
  second.async_lock(lock_mode::exclusive, [&](error_code ec) {
    EXPECT_FALSE(ec);
    second_done = true;
    first_holder->close_stdin();
  });
  // One of the two waits on the loop thread, the other on a worker; the second lock goes
  // first.
  when_the_loop_waits_in_flock([&] { second_holder->close_stdin(); });
  loop.run();
  join_helper();
  EXPECT_TRUE(first_done);
  EXPECT_TRUE(second_done);
  EXPECT_TRUE(first.owns_lock());
  EXPECT_TRUE(second.owns_lock());
  EXPECT_EQ(first_holder->wait(), 0);
  EXPECT_EQ(second_holder->wait(), 0);
}

// With two threads running the loop, one may wait in flock while the other runs the
// loop (or waits in the reactor); either way the lock is taken when flock(1) lets go.
TEST_F(file_lock_idle_loop, two_threads_running_the_loop_take_the_lock) {
  start_waiting();
  std::atomic<pid_t> second_tid{0};
  std::thread second([&] {
    second_tid = ::gettid();
    loop.run();
  });
  helper = std::thread([&] {
    const bool waiting = eventually([&] {
      const pid_t other = second_tid;
      return blocked_in_syscall(loop_tid, SYS_flock) || (other && blocked_in_syscall(other, SYS_flock)) ||
             workers() == 1;
    });
    EXPECT_TRUE(waiting) << "nobody waited for the lock";
    holder->close_stdin();
  });
  loop.run();
  second.join();
  expect_taken();
}

// A child made by fork() without exec that goes (destroying its copy of the loop, after
// notify_fork as Asio asks) must leave the parent's watcher alone: the two share its
// descriptors, and the child does not have its thread.
TEST_F(file_lock_idle_loop, a_forked_child_that_destroys_its_loop_leaves_the_parent_watching) {
  start_waiting();
  when_the_loop_waits_in_flock([&] { holder->close_stdin(); });
  loop.run();
  expect_taken();  // the watcher runs now
  lock->unlock();
  const pid_t child = ::fork();
  ASSERT_GE(child, 0);
  if (child == 0) {
    loop.context().notify_fork(boost::asio::execution_context::fork_child);
    std::destroy_at(&loop);
    ::_exit(0);
  }
  ASSERT_EQ(ipckit::test::reap_within(child), 0) << "the child hung destroying its loop (-1)";
  // The parent's next wait is still interrupted by its timer.
  done = false;
  start_waiting();
  loop.restart();
  boost::asio::steady_timer timer(loop.get_executor(), 50ms);
  std::atomic<bool> fired{false};
  std::size_t workers_when_fired = 0;
  timer.async_wait([&](error_code) {
    workers_when_fired = workers();
    fired = true;
    holder->close_stdin();
  });
  helper = std::thread([&] {
    if (!eventually([&] { return fired.load(); }, 5s)) holder->close_stdin();
  });
  loop.run();
  join_helper();
  EXPECT_EQ(workers_when_fired, 1u) << "the timer waited for the lock";
  expect_taken();
}

// A wait cancelled (by close) before the loop ever ran its turn, then the loop destroyed
// unrun: the call never runs, and the destruction must not wait for it.
TEST_F(file_lock_idle_loop, a_wait_closed_before_the_loop_runs_lets_the_loop_be_destroyed) {
  auto own_loop = std::make_unique<ipckit::event_loop>();
  auto holder_of_this = hold(lock_path());
  holders = {holder_of_this.get()};
  file_lock waiting(*own_loop, lock_path());
  bool called = false;
  waiting.async_lock(lock_mode::exclusive, [&](error_code) { called = true; });
  waiting.close();
  std::atomic<bool> destroyed{false};
  std::thread destroyer([&] {
    own_loop.reset();
    destroyed = true;
  });
  const bool ended = eventually([&] { return destroyed.load(); }, 10s);
  EXPECT_TRUE(ended) << "destroying the loop hung";
  if (ended) destroyer.join();
  else destroyer.detach();  // the process will hang at exit: the test has failed already
  EXPECT_FALSE(called) << "a handler ran when the loop was destroyed";
  holder_of_this->close_stdin();
  EXPECT_EQ(holder_of_this->wait(), 0);
}

// The loop thread waits only under run(): run_for must return at its time, poll at once.
TEST_F(file_lock_idle_loop, run_for_and_poll_never_wait_on_the_loop_thread) {
  start_waiting();
  loop.poll();
  const auto start = clock_type::now();
  loop.run_for(50ms);
  EXPECT_LT(clock_type::now() - start, 1s);
  EXPECT_FALSE(done);
  EXPECT_EQ(workers(), 1u);
  holder->close_stdin();
  loop.run();
  expect_taken();
}

// The watcher interrupts the loop thread with the pool's interrupt signal, which the
// signal module keeps blocked on a thread that has made a blocking signal wait: it is
// unblocked for the wait only.
TEST_F(file_lock_idle_loop, a_loop_thread_that_blocks_the_interrupt_signal_waits_and_is_interrupted) {
  sigset_t interrupt, previous;
  sigemptyset(&interrupt);
  sigaddset(&interrupt, ipckit::detail::interrupt_signal());
  ASSERT_EQ(pthread_sigmask(SIG_BLOCK, &interrupt, &previous), 0);
  start_waiting();
  bool lock_done_when_posted_ran = true;
  when_the_loop_waits_in_flock([&] {
    boost::asio::post(loop.get_executor(), [&] {
      lock_done_when_posted_ran = done;
      holder->close_stdin();
    });
  });
  loop.run();
  sigset_t after;
  pthread_sigmask(SIG_SETMASK, &previous, &after);
  EXPECT_TRUE(sigismember(&after, ipckit::detail::interrupt_signal())) << "left unblocked";
  EXPECT_FALSE(lock_done_when_posted_ran) << "the post waited for the lock";
  expect_taken();
}

}  // namespace
