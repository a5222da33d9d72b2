// A thread in wait() that is the only one in a blocking wait reads the signalfd with a
// blocking read, and what must wake it: a stop, a delivery read by someone else, a
// second waiting thread, a new subscription, a loop that could not read meanwhile.
#include <ipckit/signal.hpp>

#include "signal_test_util.hpp"

#include <gmock/gmock.h>

#include <algorithm>
#include <atomic>
#include <csignal>
#include <fstream>
#include <future>
#include <latch>
#include <pthread.h>
#include <sys/syscall.h>
#include <thread>
#include <unistd.h>

namespace {

namespace signal = ipckit::signal;
namespace asio = boost::asio;
using ipckit::error_code;
using ipckit::test::next_delivery;
using namespace std::chrono_literals;

void to_self(int number, int value) { signal::queue(::getpid(), number, value); }

/// Waits until thread `tid` of this process sleeps in system call `number` (read by
/// /proc/self/task/TID/syscall), or the deadline passes.
bool sleeps_in(pid_t tid, long number, std::chrono::milliseconds timeout = 10s) {
  const auto deadline = std::chrono::steady_clock::now() + timeout;
  const std::string path = "/proc/self/task/" + std::to_string(tid) + "/syscall";
  while (std::chrono::steady_clock::now() < deadline) {
    std::ifstream in(path);
    long current = -1;
    if (in >> current && current == number) return true;
    std::this_thread::yield();
  }
  return false;
}

/// A thread taking `count` deliveries from `from` with wait(); stop() on the notifier
/// ends it early (so a failed assertion never leaves it waiting).
class waiting_thread {
 public:
  waiting_thread(signal::notifier& from, int count) : from_(from) {
    thread_ = std::thread([this, count] {
      tid_ = static_cast<pid_t>(::syscall(SYS_gettid));
      for (int i = 0; i < count; ++i) {
        error_code ec;
        auto got = from_.wait(ec);
        if (ec) break;
        values.push_back(got.value.value_or(-1));
      }
      done_.set_value();
    });
  }
  waiting_thread(const waiting_thread&) = delete;
  waiting_thread& operator=(const waiting_thread&) = delete;
  ~waiting_thread() {
    if (thread_.joinable()) finish(0ms);
  }

  pid_t id() {
    while (tid_.load() == 0) std::this_thread::yield();
    return tid_.load();
  }
  pthread_t handle() { return thread_.native_handle(); }
  /// Joins it; if it is still waiting at the deadline, stops the notifier first.
  bool finish(std::chrono::milliseconds timeout = 10s) {
    const bool in_time = finished_.wait_for(timeout) == std::future_status::ready;
    if (!in_time) from_.stop();
    thread_.join();
    return in_time;
  }

  std::vector<int> values;

 private:
  signal::notifier& from_;
  std::atomic<pid_t> tid_{0};
  std::promise<void> done_;
  std::future<void> finished_ = done_.get_future();
  std::thread thread_;
};

std::vector<int> one_to(int n) {
  std::vector<int> out;
  for (int v = 1; v <= n; ++v) out.push_back(v);
  return out;
}

TEST(signal_blocking, stop_wakes_a_thread_reading_alone) {
  asio::io_context io;
  signal::notifier rt(io, {SIGRTMIN + 3});
  waiting_thread waiter(rt, 1);
  ASSERT_TRUE(sleeps_in(waiter.id(), SYS_read)) << "the only waiting thread reads the signalfd";
  rt.stop();
  EXPECT_TRUE(waiter.finish());
  EXPECT_TRUE(waiter.values.empty());
}

// The thread reads and fans out to the loop's notifier; the loop reads nothing meanwhile
// (that would break the order), and a burst arrives in order on both sides.
TEST(signal_blocking, a_thread_reading_alone_and_a_loop_both_get_every_delivery_in_order) {
  constexpr int values = 50;
  asio::io_context io;
  signal::notifier on_loop(io, {SIGRTMIN + 3});
  signal::notifier blocking(io, {SIGRTMIN + 3});
  waiting_thread waiter(blocking, values);
  ASSERT_TRUE(sleeps_in(waiter.id(), SYS_read));
  for (int v = 1; v <= values; ++v) to_self(SIGRTMIN + 3, v);
  std::vector<int> on_the_loop;
  for (int i = 0; i < values; ++i) {
    auto got = next_delivery(io, on_loop);
    ASSERT_TRUE(got) << "delivery " << i;
    on_the_loop.push_back(*got->value);
  }
  EXPECT_TRUE(waiter.finish());
  EXPECT_EQ(on_the_loop, one_to(values));
  EXPECT_EQ(waiter.values, one_to(values));
}

// A second thread in wait() makes the first poll, so that each reads what is there for
// it: here a signal sent to the second thread alone, which the first cannot read.
TEST(signal_blocking, a_second_waiting_thread_takes_turns_with_the_one_reading_alone) {
  asio::io_context io;
  signal::notifier first(io, {SIGRTMIN + 3});
  signal::notifier second(io, {SIGRTMIN + 3});
  waiting_thread one(first, 3);
  ASSERT_TRUE(sleeps_in(one.id(), SYS_read));
  waiting_thread two(second, 3);
  ASSERT_TRUE(sleeps_in(two.id(), SYS_ppoll));
  ASSERT_TRUE(sleeps_in(one.id(), SYS_ppoll)) << "the first thread polls once the second waits";
  sigval value{};
  value.sival_int = 1;
  ASSERT_EQ(pthread_sigqueue(two.handle(), SIGRTMIN + 3, value), 0);
  to_self(SIGRTMIN + 3, 2);
  to_self(SIGRTMIN + 3, 3);
  EXPECT_TRUE(one.finish());
  EXPECT_TRUE(two.finish());
  // The kernel keeps the thread's pending signals apart from the process's: 1 may come
  // before or after the other two, which keep their order.
  for (const auto* values : {&one.values, &two.values}) {
    EXPECT_THAT(*values, testing::UnorderedElementsAre(1, 2, 3));
    EXPECT_LT(std::find(values->begin(), values->end(), 2), std::find(values->begin(), values->end(), 3));
  }
}

// A loop's thread has a signal of its own pending (raise, pthread_kill) that the reading
// thread cannot read: the loop wakes it, reads once it has stepped aside, and fans out.
TEST(signal_blocking, a_signal_sent_to_a_loops_thread_arrives_while_another_thread_reads_alone) {
  asio::io_context io;
  signal::notifier on_loop(io, {SIGRTMIN + 3});
  signal::notifier blocking(io, {SIGRTMIN + 3});
  waiting_thread waiter(blocking, 1);
  ASSERT_TRUE(sleeps_in(waiter.id(), SYS_read));
  sigval value{};
  value.sival_int = 7;
  ASSERT_EQ(pthread_sigqueue(pthread_self(), SIGRTMIN + 3, value), 0);
  auto got = next_delivery(io, on_loop);
  ASSERT_TRUE(got) << "the loop never read the signal sent to its own thread";
  EXPECT_EQ(got->value, 7);
  EXPECT_TRUE(waiter.finish());
  EXPECT_THAT(waiter.values, testing::ElementsAre(7));
}

// A signal first subscribed while the thread reads: its read would not see it, so the
// new mask wakes it, and the loop's notifier gets the signal.
TEST(signal_blocking, a_signal_subscribed_while_a_thread_reads_alone_reaches_the_loop) {
  asio::io_context io;
  signal::notifier blocking(io, {SIGRTMIN + 3});
  waiting_thread waiter(blocking, 1);
  ASSERT_TRUE(sleeps_in(waiter.id(), SYS_read));
  signal::notifier later(io, {SIGRTMIN + 5});
  to_self(SIGRTMIN + 5, 9);
  auto got = next_delivery(io, later);
  ASSERT_TRUE(got);
  EXPECT_EQ(got->value, 9);
  to_self(SIGRTMIN + 3, 1);
  EXPECT_TRUE(waiter.finish());
  EXPECT_THAT(waiter.values, testing::ElementsAre(1));
}

// A thread with the signal unblocked takes it in ipckit's handler; the service's thread
// fans it out from the handler's pipe, which must wake the reading thread.
TEST(signal_blocking, a_delivery_through_the_handler_wakes_a_thread_reading_alone) {
#if defined(__SANITIZE_THREAD__)
  GTEST_SKIP() << "ThreadSanitizer interposes its own signal handler and runs ours late, "
                  "outside the thread the kernel chose; this path is tested without it";
#endif
  int quit[2];
  ASSERT_EQ(::pipe(quit), 0);
  std::latch unblocked(1);
  std::thread taker([&] {
    sigset_t one;
    sigemptyset(&one);
    sigaddset(&one, SIGRTMIN + 3);
    pthread_sigmask(SIG_UNBLOCK, &one, nullptr);
    unblocked.count_down();
    char byte;
    while (::read(quit[0], &byte, 1) < 0 && errno == EINTR) {
    }
  });
  unblocked.wait();
  {
    asio::io_context io;
    // Subscribed after the taker unblocked the signal: it is the only thread that takes it.
    signal::notifier blocking(io, {SIGRTMIN + 3});
    waiting_thread waiter(blocking, 1);
    EXPECT_TRUE(sleeps_in(waiter.id(), SYS_read));
    to_self(SIGRTMIN + 3, 5);
    EXPECT_TRUE(waiter.finish());
    EXPECT_THAT(waiter.values, testing::ElementsAre(5));
  }
  EXPECT_EQ(::write(quit[1], "q", 1), 1);
  taker.join();
  ::close(quit[0]);
  ::close(quit[1]);
}

}  // namespace
