#include <ipckit/process.hpp>
#include <ipckit/signal.hpp>

#include "process_util.hpp"

#include <boost/asio/bind_cancellation_slot.hpp>
#include <boost/asio/cancellation_signal.hpp>
#include <boost/asio/io_context.hpp>
#include <boost/asio/use_future.hpp>

#include <csignal>
#include <functional>
#include <poll.h>
#include <sstream>
#include <sys/syscall.h>
#include <unistd.h>

namespace {

using namespace std::chrono_literals;
using ipckit::error_code;
using ipckit::test::helper_path;
using ipckit::test::run_until;
using process_test::trim;

std::string read_line(ipckit::pipe_reader& reader) {
  std::string line;
  char c;
  reader.expires_after(10s);
  while (reader.read_some(boost::asio::buffer(&c, 1)) == 1 && c != '\n') line += c;
  return line;
}

TEST(process_lifecycle, async_wait_reports_exit_code_and_signal) {
  boost::asio::io_context io;
  ipckit::command cmd(io.get_executor(), helper_path(), {"exit", "7"});
  cmd.start();
  auto future = cmd.async_wait(boost::asio::use_future);
  io.run();
  const auto state = future.get();
  EXPECT_EQ(state.exit_code(), 7);
  EXPECT_EQ(state.string(), "exit status 7");

  ipckit::command sleeper(io.get_executor(), helper_path(), {"sleep"});
  auto out = sleeper.stdout_pipe();
  sleeper.start();
  EXPECT_EQ(read_line(out), "ready");
  sleeper.signal(SIGUSR1);
  std::optional<ipckit::process_state> result;
  sleeper.async_wait([&](error_code ec, ipckit::process_state s) {
    EXPECT_FALSE(ec);
    result = s;
  });
  io.restart();
  ASSERT_TRUE(run_until(io, [&] { return result.has_value(); }));
  EXPECT_EQ(result->signal(), SIGUSR1);
  EXPECT_EQ(result->exit_code(), -1);
  EXPECT_EQ(result->string(), "signal: user defined signal 1");
  error_code ec;
  sleeper.signal(SIGTERM, ec);
  EXPECT_EQ(ec, boost::system::errc::no_such_process);
}

TEST(process_lifecycle, kill_is_signal_killed) {
  boost::asio::io_context io;
  ipckit::command cmd(io.get_executor(), helper_path(), {"sleep"});
  auto out = cmd.stdout_pipe();
  cmd.start();
  EXPECT_EQ(read_line(out), "ready");
  cmd.kill();
  try {
    cmd.wait();
    FAIL() << "no exit_error";
  } catch (const ipckit::exit_error& e) {
    EXPECT_STREQ(e.what(), "signal: killed");
  }
}

TEST(process_lifecycle, cancel_sends_the_cancel_signal_then_sigkill_after_the_wait_delay) {
  boost::asio::io_context io;
  ipckit::command cmd(io.get_executor(), helper_path(), {"ignore-term"});
  cmd.set_cancel_signal(SIGTERM);
  cmd.set_wait_delay(200ms);
  auto out = cmd.stdout_pipe();
  cmd.start();
  EXPECT_EQ(read_line(out), "ready");
  boost::asio::cancellation_signal cancel;
  error_code result_ec;
  std::optional<ipckit::process_state> result;
  cmd.async_wait(boost::asio::bind_cancellation_slot(
      cancel.slot(), [&](error_code ec, ipckit::process_state s) {
        result_ec = ec;
        result = s;
      }));
  const auto start = std::chrono::steady_clock::now();
  cancel.emit(boost::asio::cancellation_type::terminal);
  ASSERT_TRUE(run_until(io, [&] { return result.has_value(); }));
  EXPECT_GE(std::chrono::steady_clock::now() - start, 190ms);
  EXPECT_EQ(result_ec, boost::asio::error::operation_aborted);
  EXPECT_EQ(result->signal(), SIGKILL);  // SIGTERM was ignored

  // A child that honours the cancel signal ends with it, before the delay.
  ipckit::command polite(io.get_executor(), helper_path(), {"sleep"});
  polite.set_cancel_signal(SIGTERM);
  polite.set_wait_delay(10s);
  auto polite_out = polite.stdout_pipe();
  polite.start();
  EXPECT_EQ(read_line(polite_out), "ready");
  polite.cancel();
  error_code ec;
  const auto state = polite.wait(ec);
  EXPECT_EQ(state.signal(), SIGTERM);
}

TEST(process_lifecycle, sync_wait_applies_the_wait_delay_too) {
  boost::asio::io_context io;
  ipckit::command cmd(io.get_executor(), helper_path(), {"ignore-term"});
  cmd.set_cancel_signal(SIGTERM);
  cmd.set_wait_delay(100ms);
  auto out = cmd.stdout_pipe();
  cmd.start();
  EXPECT_EQ(read_line(out), "ready");
  cmd.cancel();
  error_code ec;
  EXPECT_EQ(cmd.wait(ec).signal(), SIGKILL);
}

TEST(process_lifecycle, children_start_with_an_empty_mask_and_default_dispositions) {
  sigset_t blocked, old;
  sigemptyset(&blocked);
  sigaddset(&blocked, SIGTERM);
  sigaddset(&blocked, SIGUSR1);
  sigaddset(&blocked, SIGRTMIN + 2);
  pthread_sigmask(SIG_BLOCK, &blocked, &old);
  struct sigaction ignore {}, old_int {};
  ignore.sa_handler = SIG_IGN;
  ::sigaction(SIGINT, &ignore, &old_int);
  boost::asio::io_context io;
  ipckit::command cmd(io.get_executor(), helper_path(), {"proc-status", "SigBlk", "SigIgn"});
  const std::string status = cmd.output();
  ::sigaction(SIGINT, &old_int, nullptr);
  pthread_sigmask(SIG_SETMASK, &old, nullptr);
  EXPECT_EQ(status, "SigBlk:\t0000000000000000\nSigIgn:\t0000000000000000\n");
}

TEST(process_lifecycle, new_process_group_and_new_session) {
  boost::asio::io_context io;
  ipckit::command group(io.get_executor(), helper_path(), {"ids"});
  group.set_new_process_group();
  std::istringstream g(group.output());
  int pid, pgid, sid;
  g >> pid >> pgid >> sid;
  EXPECT_EQ(pgid, pid);
  EXPECT_EQ(sid, ::getsid(0));

  ipckit::command session(io.get_executor(), helper_path(), {"ids"});
  session.set_new_session();
  std::istringstream s(session.output());
  s >> pid >> pgid >> sid;
  EXPECT_EQ(sid, pid);
  EXPECT_EQ(pgid, pid);
}

TEST(process_lifecycle, parent_death_signal_kills_an_orphan) {
  boost::asio::io_context io;
  ipckit::command middle(io.get_executor(), helper_path(), {"orphan-with-pdeathsig", helper_path()});
  auto in = middle.stdin_pipe();
  auto out = middle.stdout_pipe();
  middle.set_stderr(ipckit::stdio::inherit());
  middle.start();
  const int grandchild = std::stoi(read_line(out));
  const int pidfd = static_cast<int>(::syscall(SYS_pidfd_open, grandchild, 0));
  ASSERT_GE(pidfd, 0);
  in.close();  // the middle process exits now
  EXPECT_TRUE(middle.wait().success());
  ::pollfd p{pidfd, POLLIN, 0};
  EXPECT_EQ(::poll(&p, 1, 10000), 1) << "the grandchild outlived its parent";
  ::close(pidfd);
}

// Children are reaped through their pidfd: starting and waiting installs no SIGCHLD
// handler, and a program that subscribes to SIGCHLD itself still gets each exit status
// from wait, while its subscription sees the same child's SIGCHLD.
TEST(process_lifecycle, reaping_needs_no_sigchld_handler_and_leaves_sigchld_to_the_program) {
  boost::asio::io_context io;
  ipckit::command plain(io.get_executor(), helper_path(), {"exit", "3"});
  error_code ec;
  plain.run(ec);
  EXPECT_EQ(plain.state()->exit_code(), 3);
  struct sigaction current {};
  ASSERT_EQ(::sigaction(SIGCHLD, nullptr, &current), 0);
  EXPECT_EQ(current.sa_handler, SIG_DFL) << "the process module installed a SIGCHLD handler";

  ipckit::signal::notifier children(io.get_executor(), {SIGCHLD});
  ipckit::command cmd(io.get_executor(), helper_path(), {"exit", "5"});
  cmd.start();
  std::optional<ipckit::process_state> state;
  cmd.async_wait([&](error_code e, ipckit::process_state s) {
    EXPECT_FALSE(e);
    state = s;
  });
  std::optional<ipckit::signal::info> delivery;
  std::function<void()> next = [&] {
    children.async_wait([&](error_code e, ipckit::signal::info info) {
      if (e) return;
      if (info.sender_pid == cmd.pid()) delivery = info;
      else next();  // a SIGCHLD from an earlier child of this test
    });
  };
  next();
  ASSERT_TRUE(run_until(io, [&] { return state && delivery; }));
  EXPECT_EQ(state->exit_code(), 5);
  EXPECT_EQ(delivery->number, SIGCHLD);
  EXPECT_EQ(delivery->status, 5);
  EXPECT_EQ(process_test::child_count(), 0u);
}

TEST(process_lifecycle, destroying_a_started_command_kills_and_reaps_it) {
  boost::asio::io_context io;
  int pid = -1;
  {
    ipckit::command cmd(io.get_executor(), helper_path(), {"sleep"});
    auto out = cmd.stdout_pipe();
    cmd.start();
    EXPECT_EQ(read_line(out), "ready");
    pid = cmd.pid();
  }
  EXPECT_EQ(process_test::child_count(), 0u);
  EXPECT_NE(::kill(pid, 0), 0);
  // With an async_wait pending, the wait reaps it.
  std::optional<ipckit::process_state> state;
  {
    ipckit::command cmd(io.get_executor(), helper_path(), {"sleep"});
    cmd.start();
    cmd.async_wait([&](error_code, ipckit::process_state s) { state = s; });
  }
  ASSERT_TRUE(run_until(io, [&] { return state.has_value(); }));
  EXPECT_EQ(state->signal(), SIGKILL);
  EXPECT_EQ(process_test::child_count(), 0u);
}

TEST(process_lifecycle, a_thousand_children_in_parallel_are_all_reaped) {
  boost::asio::io_context io;
  ipckit::command warm(io.get_executor(), "true");  // the loop's own fds
  warm.run();
  const auto fds = ipckit::test::open_fd_count();
  const std::string true_path = ipckit::look_path("true");
  int reaped = 0, succeeded = 0;
  {
    std::vector<ipckit::command> children;
    children.reserve(1000);
    for (int i = 0; i < 1000; ++i) {
      children.emplace_back(io.get_executor(), true_path);
      children.back().start();
    }
    for (auto& child : children)
      child.async_wait([&](error_code ec, ipckit::process_state s) {
        ++reaped;
        if (!ec && s.success()) ++succeeded;
      });
    ASSERT_TRUE(run_until(io, [&] { return reaped == 1000; }, 60s));
  }
  EXPECT_EQ(succeeded, 1000);
  EXPECT_EQ(process_test::child_count(), 0u);
  EXPECT_EQ(ipckit::test::open_fd_count(), fds);
}

}  // namespace
