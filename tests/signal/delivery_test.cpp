// Real signals from other processes: who sent them, values, coalescing, order, fan-out.
#include <ipckit/signal.hpp>
#include <ipckit/unique_fd.hpp>

#include "signal_test_util.hpp"

#include <gmock/gmock.h>

#include <algorithm>
#include <atomic>
#include <cerrno>
#include <csignal>
#include <fcntl.h>
#include <numeric>
#include <pthread.h>
#include <spawn.h>
#include <sys/wait.h>
#include <thread>
#include <unistd.h>

extern char** environ;

namespace {

namespace signal = ipckit::signal;
using ipckit::error_code;
using ipckit::test::helper_path;
using ipckit::test::next_delivery;
using ipckit::test::peer_process;
using namespace std::chrono_literals;

std::string arg(int number) { return std::to_string(number); }

TEST(signal_delivery, kill_from_a_child_carries_its_pid_and_uid) {
  boost::asio::io_context io;
  signal::notifier usr1(io, {SIGUSR1});
  peer_process child({helper_path(), "signals-to-parent", "kill:USR1"});
  auto got = next_delivery(io, usr1);
  ASSERT_TRUE(got);
  EXPECT_EQ(got->number, SIGUSR1);
  EXPECT_EQ(got->sender_pid, child.pid());
  EXPECT_EQ(got->sender_uid, ::getuid());
  EXPECT_EQ(signal::code_name(*got), "user");
  EXPECT_FALSE(got->value);
  EXPECT_EQ(child.wait(), 0);
}

TEST(signal_delivery, sigqueue_value_arrives_with_the_signal) {
  boost::asio::io_context io;
  signal::notifier rt(io, {SIGRTMIN + 2});
  peer_process child({helper_path(), "signals-to-parent", "queue:RTMIN+2:-12345"});
  auto got = next_delivery(io, rt);
  ASSERT_TRUE(got);
  EXPECT_EQ(got->number, SIGRTMIN + 2);
  EXPECT_EQ(got->sender_pid, child.pid());
  EXPECT_EQ(got->sender_uid, ::getuid());
  EXPECT_EQ(signal::code_name(*got), "queue");
  EXPECT_EQ(got->value, -12345);
  EXPECT_EQ(child.wait(), 0);
}

TEST(signal_delivery, kill_command_as_a_peer) {
  boost::asio::io_context io;
  signal::notifier both(io, {SIGUSR2, SIGRTMIN + 3});
  peer_process plain({"kill", "-s", "USR2", arg(::getpid())});
  auto got = next_delivery(io, both);
  ASSERT_TRUE(got);
  EXPECT_EQ(got->number, SIGUSR2);
  EXPECT_EQ(got->sender_pid, plain.pid());
  EXPECT_EQ(plain.wait(), 0);
  // procps kill -q: sigqueue with a value.
  peer_process queued({"kill", "-q", "77", "-s", "RTMIN+3", arg(::getpid())});
  got = next_delivery(io, both);
  ASSERT_TRUE(got);
  EXPECT_EQ(got->number, SIGRTMIN + 3);
  EXPECT_EQ(got->sender_pid, queued.pid());
  EXPECT_EQ(got->value, 77);
  EXPECT_EQ(queued.wait(), 0);
}

TEST(signal_delivery, five_blocked_sigusr1_coalesce) {
  // The receiver is a child that holds SIGUSR1 blocked while the five arrive, so they
  // are pending together whatever the scheduler does; the queued marker comes after.
  peer_process receiver({helper_path(), "count-pending", "USR1", "RTMIN"});
  ASSERT_EQ(receiver.read_line(), "ready");
  for (int i = 0; i < 5; ++i) signal::send(receiver.pid(), SIGUSR1);
  signal::queue(receiver.pid(), SIGRTMIN, 99);
  receiver.write("go\n");
  EXPECT_EQ(receiver.read_line(), "SIGUSR1 1");
  EXPECT_EQ(receiver.wait(), 0);
}

TEST(signal_delivery, five_queued_sigrtmin_arrive_as_five_in_order) {
  boost::asio::io_context io;
  signal::notifier rt(io, {SIGRTMIN});
  peer_process child({helper_path(), "signals-to-parent", "queue:RTMIN:1", "queue:RTMIN:2",
                      "queue:RTMIN:3", "queue:RTMIN:4", "queue:RTMIN:5"});
  const pid_t sender = child.pid();
  ASSERT_EQ(child.wait(), 0);  // all five pending before the first wait
  for (int expected = 1; expected <= 5; ++expected) {
    auto got = next_delivery(io, rt);
    ASSERT_TRUE(got) << expected;
    EXPECT_EQ(got->value, expected);
    EXPECT_EQ(got->sender_pid, sender);
  }
  EXPECT_EQ(rt.dropped(), 0u);
}

TEST(signal_delivery, two_subscriptions_both_receive) {
  boost::asio::io_context io;
  signal::notifier first(io, {SIGUSR1});
  signal::notifier second(io, {SIGUSR1, SIGUSR2});
  peer_process child({helper_path(), "signals-to-parent", "kill:USR1"});
  auto a = next_delivery(io, first);
  auto b = next_delivery(io, second);
  ASSERT_TRUE(a);
  ASSERT_TRUE(b);
  EXPECT_EQ(a->sender_pid, child.pid());
  EXPECT_EQ(b->sender_pid, child.pid());
  EXPECT_EQ(b->number, SIGUSR1);
}

TEST(signal_delivery, a_subscriber_that_never_waits_does_not_hold_up_another) {
  boost::asio::io_context io;
  signal::notifier idle(io, {SIGRTMIN + 1});
  signal::notifier busy(io, {SIGRTMIN + 1});
  for (int i = 1; i <= 50; ++i) {
    signal::queue(::getpid(), SIGRTMIN + 1, i);
    auto got = next_delivery(io, busy);
    ASSERT_TRUE(got);
    EXPECT_EQ(got->value, i);
  }
  for (int i = 1; i <= 50; ++i) {
    auto queued = idle.wait_for(1s);
    ASSERT_TRUE(queued) << i;
    EXPECT_EQ(queued->value, i);
  }
}

TEST(signal_delivery, stop_while_signals_arrive_loses_none_and_delivers_nothing_after) {
  constexpr int total = 300;
  boost::asio::io_context io;
  signal::notifier keeper(io, {SIGRTMIN + 1});
  signal::notifier quitter(io, {SIGRTMIN + 1});
  std::vector<int> kept, quit;
  bool quitter_stopped = false, delivered_after_stop = false, quitter_done = false;
  std::function<void(error_code, signal::info)> on_quitter = [&](error_code ec, signal::info got) {
    if (ec) {
      quitter_done = true;
      return;
    }
    if (quitter_stopped) delivered_after_stop = true;
    quit.push_back(*got.value);
    quitter.async_wait(on_quitter);
  };
  std::function<void(error_code, signal::info)> on_keeper = [&](error_code ec, signal::info got) {
    if (ec) return;
    kept.push_back(*got.value);
    // Stop the other one mid-stream, from the same loop: its completions already posted
    // must turn into operation_aborted.
    if (kept.size() == 100) {
      quitter.stop();
      quitter_stopped = true;
    }
    if (kept.size() < total) keeper.async_wait(on_keeper);
  };
  keeper.async_wait(on_keeper);
  quitter.async_wait(on_quitter);
  std::vector<std::string> argv{helper_path(), "signals-to-parent"};
  for (int i = 1; i <= total; ++i) argv.push_back("queue:RTMIN+1:" + std::to_string(i));
  peer_process child(argv);
  ASSERT_TRUE(ipckit::test::run_until(io, [&] { return kept.size() == total && quitter_done; }));
  EXPECT_EQ(child.wait(), 0);
  for (int i = 0; i < total; ++i) ASSERT_EQ(kept[i], i + 1);
  EXPECT_EQ(keeper.dropped(), 0u);
  EXPECT_FALSE(delivered_after_stop);
  for (std::size_t i = 0; i < quit.size(); ++i) ASSERT_EQ(quit[i], static_cast<int>(i) + 1);
  EXPECT_LE(quit.size(), 100u);
}

// A thread started before the subscription has the signal unblocked, so the kernel runs
// ipckit's recording handler there (signal context); the delivery still completes on
// the loop's thread, with the sender and value.
TEST(signal_delivery, a_thread_with_the_signal_unblocked_still_delivers_on_the_loop) {
#if defined(__SANITIZE_THREAD__)
  GTEST_SKIP() << "ThreadSanitizer interposes its own signal handler and runs ours late, "
                  "outside the thread the kernel chose; this path is tested without it";
#endif
  const int number = SIGRTMIN + 9;
  // The early thread waits in read(2) for a byte: a blocking call that sanitizers
  // intercept, so ThreadSanitizer runs the handler there at once.
  int wake[2];
  ASSERT_EQ(::pipe2(wake, O_CLOEXEC), 0);
  ipckit::unique_fd wake_read(wake[0]), wake_write(wake[1]);
  std::thread early([fd = wake_read.get()] {
    char byte;
    while (::read(fd, &byte, 1) < 0 && errno == EINTR) {
    }
  });
  boost::asio::io_context io;
  signal::notifier watching(io, {number});
  sigval value{};
  value.sival_int = 31;
  ASSERT_EQ(::pthread_sigqueue(early.native_handle(), number, value), 0);
  std::optional<signal::info> got;
  std::thread::id completed_on;
  bool done = false;
  watching.async_wait([&](error_code ec, signal::info delivery) {
    completed_on = std::this_thread::get_id();
    if (!ec) got = delivery;
    done = true;
  });
  const bool delivered = ipckit::test::run_until(io, [&] { return done; });
  ASSERT_EQ(::write(wake_write.get(), "x", 1), 1);
  early.join();
  ASSERT_TRUE(delivered);
  ASSERT_TRUE(got);
  EXPECT_EQ(got->value, 31);
  EXPECT_EQ(got->sender_pid, ::getpid());
  EXPECT_EQ(signal::code_name(*got), "queue");
  EXPECT_EQ(completed_on, std::this_thread::get_id());
}

// The values a counting handler (the disposition before the notifier) took, in order.
constexpr int most_handled = 4096;
std::atomic<int> handled_count{0};
int handled_values[most_handled];
void count_handler(int, siginfo_t* delivered, void*) {
  const int slot = handled_count.fetch_add(1);
  if (slot < most_handled) handled_values[slot] = delivered->si_value.sival_int;
}

// The last notifier of a signal stops while a child is still queueing it: every signal
// is either delivered to the notifier (before stop) or taken by the previous
// disposition (after), none is lost between the two and none is seen twice.
TEST(signal_delivery, the_last_notifier_stopping_while_signals_arrive_loses_none) {
#if defined(__SANITIZE_THREAD__)
  GTEST_SKIP() << "ThreadSanitizer defers signal handlers and keeps one pending instance per "
                  "signal number, so a handler cannot count queued realtime signals under it";
#endif
  constexpr int total = 1000, stop_after = 50;
  const int number = SIGRTMIN + 8;
  struct sigaction counting {}, saved {};
  counting.sa_sigaction = count_handler;
  counting.sa_flags = SA_SIGINFO;
  sigemptyset(&counting.sa_mask);
  ASSERT_EQ(::sigaction(number, &counting, &saved), 0);
  handled_count = 0;
  boost::asio::io_context io;
  std::vector<int> delivered;
  {
    signal::notifier last(io, {number});
    bool stopped = false;
    std::function<void(error_code, signal::info)> on_delivery = [&](error_code ec, signal::info got) {
      if (ec) return;
      delivered.push_back(*got.value);
      if (delivered.size() == stop_after) {
        last.stop();  // mid-stream: the child is still sending
        stopped = true;
        return;
      }
      last.async_wait(on_delivery);
    };
    last.async_wait(on_delivery);
    std::vector<std::string> argv{helper_path(), "signals-to-parent"};
    for (int i = 1; i <= total; ++i) argv.push_back("queue:RTMIN+8:" + std::to_string(i));
    peer_process child(argv);
    ASSERT_TRUE(ipckit::test::run_until(io, [&] { return stopped; }));
    // The rest reach the counting handler (this thread has the signal unblocked again).
    // Waited for on the loop, which restarts after the handler interrupts it, before
    // waiting for the child (a wait the handler would interrupt).
    ipckit::test::run_until(io, [&] {
      return static_cast<int>(delivered.size()) + handled_count.load() >= total;
    });
    EXPECT_EQ(child.wait(), 0);
  }
  ASSERT_EQ(::sigaction(number, &saved, nullptr), 0);
  const int handled = handled_count.load();
  EXPECT_EQ(static_cast<int>(delivered.size()) + handled, total)
      << delivered.size() << " delivered, " << handled << " handled";
  std::vector<int> all = delivered;
  all.insert(all.end(), handled_values, handled_values + std::min(handled, most_handled));
  std::sort(all.begin(), all.end());
  std::vector<int> expected(total);
  std::iota(expected.begin(), expected.end(), 1);
  EXPECT_EQ(all, expected);
}

TEST(signal_delivery, subscribing_to_sigchld_leaves_reaping_to_waitpid) {
  boost::asio::io_context io;
  signal::notifier children(io, {SIGCHLD});
  posix_spawnattr_t attributes;
  posix_spawnattr_init(&attributes);
  sigset_t empty;
  sigemptyset(&empty);
  posix_spawnattr_setsigmask(&attributes, &empty);
  posix_spawnattr_setflags(&attributes, POSIX_SPAWN_SETSIGMASK);
  std::string helper = helper_path();
  std::vector<char*> argv{helper.data(), const_cast<char*>("exit"), const_cast<char*>("7"), nullptr};
  pid_t pid = -1;
  ASSERT_EQ(::posix_spawn(&pid, helper.c_str(), nullptr, &attributes, argv.data(), environ), 0);
  posix_spawnattr_destroy(&attributes);
  int status = 0;
  ASSERT_EQ(::waitpid(pid, &status, 0), pid);
  EXPECT_TRUE(WIFEXITED(status));
  EXPECT_EQ(WEXITSTATUS(status), 7);
  auto got = next_delivery(io, children);
  ASSERT_TRUE(got);
  EXPECT_EQ(got->number, SIGCHLD);
  EXPECT_EQ(got->sender_pid, pid);
  EXPECT_EQ(signal::code_name(*got), "exited");
  EXPECT_EQ(got->status, 7);
}

}  // namespace

namespace {

TEST(signal_delivery, send_group_reaches_a_process_group) {
  // setsid(1) makes the helper a group leader of its own (same pid, as it is not one yet).
  peer_process child({"setsid", helper_path(), "signal-count-then-stop", "USR1", "1"});
  ASSERT_EQ(child.read_line(), "ready");
  ASSERT_EQ(::getpgid(child.pid()), child.pid());
  signal::send_group(child.pid(), SIGUSR1);
  EXPECT_EQ(child.read_line(), "got 1 from " + std::to_string(::getpid()));
  EXPECT_EQ(child.read_line(), "stopped");
}

}  // namespace
