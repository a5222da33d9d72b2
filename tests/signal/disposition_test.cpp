// ignore/reset/ignored, dispositions and masks put back, nohup, children's masks.
#include <ipckit/signal.hpp>

#include "signal_test_util.hpp"

#include <ipckit/detail/blocking_call.hpp>

#include <boost/asio/read.hpp>
#include <boost/asio/readable_pipe.hpp>
#include <boost/process/v2/process.hpp>
#include <boost/process/v2/stdio.hpp>

#include <gmock/gmock.h>

#include <csignal>
#include <fcntl.h>
#include <sys/wait.h>
#include <unistd.h>

namespace {

namespace signal = ipckit::signal;
using ipckit::error_code;
using ipckit::test::helper_path;
using ipckit::test::next_delivery;
using ipckit::test::peer_process;
using ipckit::test::run_process;
using namespace std::chrono_literals;

struct sigaction disposition(int number) {
  struct sigaction current {};
  ::sigaction(number, nullptr, &current);
  return current;
}

bool blocked_here(int number) {
  sigset_t mask;
  pthread_sigmask(SIG_BLOCK, nullptr, &mask);
  return sigismember(&mask, number);
}

TEST(signal_disposition, ignore_then_reset) {
  ASSERT_FALSE(signal::ignored(SIGUSR2));
  signal::ignore({SIGUSR2});
  EXPECT_TRUE(signal::ignored(SIGUSR2));
  signal::send(::getpid(), SIGUSR2);  // ignored: this process lives on
  signal::reset({SIGUSR2});
  EXPECT_FALSE(signal::ignored(SIGUSR2));
  EXPECT_EQ(disposition(SIGUSR2).sa_handler, SIG_DFL);
}

TEST(signal_disposition, ignore_takes_the_signal_from_every_notifier) {
  boost::asio::io_context io;
  signal::notifier watching(io, {SIGUSR2, SIGRTMIN + 3});
  signal::ignore({SIGUSR2});
  EXPECT_THAT(watching.signals(), testing::ElementsAre(SIGRTMIN + 3));
  signal::send(::getpid(), SIGUSR2);
  signal::queue(::getpid(), SIGRTMIN + 3, 1);
  auto got = next_delivery(io, watching);
  ASSERT_TRUE(got);
  EXPECT_EQ(got->number, SIGRTMIN + 3);
  EXPECT_TRUE(signal::ignored(SIGUSR2));
  signal::reset({SIGUSR2});
}

TEST(signal_disposition, notify_overrides_ignore_and_stop_puts_it_back) {
  signal::ignore({SIGUSR2});
  boost::asio::io_context io;
  {
    signal::notifier watching(io, {SIGUSR2});
    EXPECT_FALSE(signal::ignored(SIGUSR2));
    signal::send(::getpid(), SIGUSR2);
    auto got = next_delivery(io, watching);
    ASSERT_TRUE(got);
    EXPECT_EQ(got->sender_pid, ::getpid());
  }
  EXPECT_TRUE(signal::ignored(SIGUSR2));
  signal::reset({SIGUSR2});
  EXPECT_FALSE(signal::ignored(SIGUSR2));
}

void custom_handler(int) {}

TEST(signal_disposition, previous_handler_and_mask_are_back_after_the_last_notifier) {
  struct sigaction custom {};
  custom.sa_handler = custom_handler;
  sigemptyset(&custom.sa_mask);
  struct sigaction saved {};
  ASSERT_EQ(::sigaction(SIGWINCH, &custom, &saved), 0);
  ASSERT_FALSE(blocked_here(SIGWINCH));
  boost::asio::io_context io;
  {
    signal::notifier first(io, {SIGWINCH});
    signal::notifier second(io, {SIGWINCH});
    EXPECT_TRUE(blocked_here(SIGWINCH));
    EXPECT_NE(disposition(SIGWINCH).sa_handler, custom_handler);
    first.stop();
    EXPECT_TRUE(blocked_here(SIGWINCH));  // second is still subscribed
  }
  EXPECT_EQ(disposition(SIGWINCH).sa_handler, custom_handler);
  EXPECT_FALSE(blocked_here(SIGWINCH));
  ::sigaction(SIGWINCH, &saved, nullptr);
}

TEST(signal_disposition, after_the_last_notifier_a_signal_takes_its_default_action) {
  peer_process child({helper_path(), "signal-count-then-stop", "USR1", "3"});
  ASSERT_EQ(child.read_line(), "ready");
  for (int i = 1; i <= 3; ++i) {
    signal::send(child.pid(), SIGUSR1);
    EXPECT_EQ(child.read_line(), "got " + std::to_string(i) + " from " + std::to_string(::getpid()));
  }
  ASSERT_EQ(child.read_line(), "stopped");
  signal::send(child.pid(), SIGUSR1);
  EXPECT_EQ(child.wait(), 128 + SIGUSR1);
}

TEST(signal_disposition, a_child_started_under_nohup_sees_sighup_ignored) {
  auto under_nohup = run_process({"nohup", helper_path(), "signal-ignored", "HUP"});
  EXPECT_EQ(under_nohup.exit_code, 0) << under_nohup.err;
  EXPECT_EQ(under_nohup.out,
            "SIGHUP start ignored\nSIGHUP subscribed not-ignored\nSIGHUP stopped ignored\n");
  auto plain = run_process({helper_path(), "signal-ignored", "HUP"});
  EXPECT_EQ(plain.exit_code, 0) << plain.err;
  EXPECT_EQ(plain.out,
            "SIGHUP start not-ignored\nSIGHUP subscribed not-ignored\nSIGHUP stopped not-ignored\n");
}

// The registry's reader thread starts with the first notifier: a program that only sets
// dispositions keeps one thread. (ThreadSanitizer's runtime starts a thread of its own
// with the first one the program starts: the notifier adds one thread, or two there.)
TEST(signal_disposition, ignore_and_reset_start_no_thread_and_a_notifier_starts_one) {
  auto threads = run_process({helper_path(), "signal-threads"});
  EXPECT_EQ(threads.exit_code, 0) << threads.err;
  EXPECT_THAT(threads.out, ::testing::MatchesRegex("dispositions \\+0\nnotifier \\+[12]\n"));
}

TEST(signal_disposition, reserved_uncatchable_and_unknown_signals_are_refused) {
  boost::asio::io_context io;
  const struct {
    int number;
    signal::errc expected;
  } cases[] = {
      {ipckit::detail::interrupt_signal(), signal::errc::reserved_signal},
      {SIGKILL, signal::errc::uncatchable_signal},
      {SIGSTOP, signal::errc::uncatchable_signal},
      {SIGSEGV, signal::errc::synchronous_signal},
      {0, signal::errc::unknown_signal},
      {NSIG, signal::errc::unknown_signal},
  };
  for (const auto& c : cases) {
    error_code ec;
    signal::notifier refused(io.get_executor(), {SIGUSR1, c.number}, ec);
    EXPECT_EQ(ec, c.expected) << c.number;
    EXPECT_TRUE(refused.signals().empty());
  }
  EXPECT_FALSE(blocked_here(SIGUSR1));  // nothing half-done
  try {
    signal::notifier refused(io, {ipckit::detail::interrupt_signal()});
    ADD_FAILURE() << "no exception";
  } catch (const ipckit::system_error& error) {
    EXPECT_THAT(error.what(), testing::HasSubstr("reserved by ipckit's worker pool"));
  }
  error_code ec;
  signal::ignore({SIGKILL}, ec);
  EXPECT_EQ(ec, signal::errc::uncatchable_signal);
}

// The child's SigBlk and SigIgn lines, forked by hand while this thread blocks SIGUSR1.
std::string forked_child_status(bool restore) {
  int out[2];
  if (::pipe2(out, O_CLOEXEC) != 0) return "pipe2 failed";
  std::string helper = helper_path();
  std::vector<char*> argv{helper.data(), const_cast<char*>("proc-status"), const_cast<char*>("SigBlk"),
                          const_cast<char*>("SigIgn"), nullptr};
  const pid_t pid = ::fork();
  if (pid == 0) {
    if (restore) signal::restore_child_defaults();
    ::dup2(out[1], 1);
    ::execv(argv[0], argv.data());
    ::_exit(127);
  }
  ::close(out[1]);
  std::string text;
  char buffer[512];
  for (ssize_t n; (n = ::read(out[0], buffer, sizeof buffer)) > 0;) text.append(buffer, n);
  ::close(out[0]);
  ::waitpid(pid, nullptr, 0);
  return text;
}

TEST(signal_disposition, a_hand_forked_child_needs_restore_child_defaults_for_an_empty_mask) {
  boost::asio::io_context io;
  signal::notifier watching(io, {SIGUSR1});
  signal::ignore({SIGUSR2});
  // Without it the child inherits the mask (exec keeps it) and the SIG_IGN.
  EXPECT_THAT(forked_child_status(false), testing::Not(testing::HasSubstr("SigBlk:\t0000000000000000")));
  EXPECT_THAT(forked_child_status(true),
              testing::AllOf(testing::HasSubstr("SigBlk:\t0000000000000000"),
                             testing::HasSubstr("SigIgn:\t0000000000000000")));
  signal::reset({SIGUSR2});
}

// The child's SigBlk and SigIgn lines, started with Boost.Process v2 while this thread
// blocks SIGUSR1 and SIGUSR2 is ignored; with or without ipckit's initializer.
std::string process_v2_child_status(bool with_default_child_signals) {
  namespace bp = boost::process::v2;
  boost::asio::io_context io;
  boost::asio::readable_pipe out(io);
  const std::vector<std::string> args{"proc-status", "SigBlk", "SigIgn"};
  std::optional<bp::process> child;
  if (with_default_child_signals)
    child.emplace(io, helper_path(), args, bp::process_stdio{{}, out, {}}, signal::default_child_signals{});
  else
    child.emplace(io, helper_path(), args, bp::process_stdio{{}, out, {}});
  std::string text;
  error_code ec;
  boost::asio::read(out, boost::asio::dynamic_buffer(text), ec);  // to EOF
  child->wait();
  return text;
}

TEST(signal_disposition, a_boost_process_v2_child_gets_an_empty_mask_through_default_child_signals) {
  boost::asio::io_context io;
  signal::notifier watching(io, {SIGUSR1});
  signal::ignore({SIGUSR2});
  EXPECT_THAT(process_v2_child_status(false), testing::Not(testing::HasSubstr("SigBlk:\t0000000000000000")));
  EXPECT_EQ(process_v2_child_status(true), "SigBlk:\t0000000000000000\nSigIgn:\t0000000000000000\n");
  signal::reset({SIGUSR2});
}

}  // namespace
