// The public header alone first: it must compile by itself.
#include <ipckit/signal.hpp>

#include "test_support.hpp"

#include <gmock/gmock.h>

#include <csignal>
#include <unistd.h>

namespace {

namespace signal = ipckit::signal;

TEST(signal_names, parse_accepts_names_and_numbers) {
  const struct {
    std::string_view text;
    int number;
  } cases[] = {
      // Standard names, with and without SIG, any case.
      {"SIGTERM", SIGTERM}, {"TERM", SIGTERM}, {"term", SIGTERM}, {"SigUsr1", SIGUSR1},
      {"HUP", SIGHUP}, {"sigchld", SIGCHLD}, {"CLD", SIGCHLD}, {"IOT", SIGABRT}, {"POLL", SIGIO},
      // Numbers.
      {"15", SIGTERM}, {"9", SIGKILL}, {"0", 0},
      // Realtime, both ends.
      {"SIGRTMIN", SIGRTMIN}, {"RTMIN", SIGRTMIN}, {"SIGRTMIN+3", SIGRTMIN + 3},
      {"RTMIN+2", SIGRTMIN + 2}, {"rtmin+0", SIGRTMIN}, {"RTMAX", SIGRTMAX}, {"SIGRTMAX-1", SIGRTMAX - 1},
  };
  for (const auto& c : cases) {
    ipckit::error_code ec;
    EXPECT_EQ(signal::parse(c.text, ec), c.number) << c.text;
    EXPECT_FALSE(ec) << c.text;
  }
}

TEST(signal_names, parse_refuses_what_is_no_signal) {
  for (std::string_view text : {"", "SIG", "FOO", "SIGFOO", "65", "-1", "32", "RTMIN+", "RTMIN-1",
                                "RTMAX+1", "RTMIN+99", "RTMIN++1", "TERM ", "1.5"}) {
    ipckit::error_code ec;
    signal::parse(text, ec);
    EXPECT_EQ(ec, signal::errc::unknown_signal) << '"' << text << '"';
  }
  try {
    signal::parse("FOO");
    ADD_FAILURE() << "no exception";
  } catch (const ipckit::system_error& error) {
    EXPECT_STREQ(error.what(), "parse signal \"FOO\": unknown signal");
  }
}

TEST(signal_names, name_is_what_kill_l_prints_and_parse_inverts_it) {
  EXPECT_EQ(signal::name(SIGTERM), "SIGTERM");
  EXPECT_EQ(signal::name(SIGCHLD), "SIGCHLD");
  EXPECT_EQ(signal::name(SIGABRT), "SIGABRT");
  EXPECT_EQ(signal::name(SIGRTMIN), "SIGRTMIN");
  EXPECT_EQ(signal::name(SIGRTMIN + 3), "SIGRTMIN+3");
  EXPECT_EQ(signal::name(SIGRTMAX), "SIGRTMAX");
  EXPECT_EQ(signal::name(SIGRTMAX - 2), "SIGRTMAX-2");
  EXPECT_EQ(signal::name(99), "signal 99");
  for (int number = 1; number < NSIG; ++number) {
    if (number >= 32 && number < SIGRTMIN) continue;
    EXPECT_EQ(signal::parse(signal::name(number)), number) << signal::name(number);
  }
}

TEST(signal_names, code_name_says_where_a_signal_came_from) {
  const struct {
    int number, code;
    std::string_view word;
  } cases[] = {
      {SIGUSR1, SI_USER, "user"},        {SIGUSR1, SI_QUEUE, "queue"},
      {SIGUSR1, SI_TKILL, "tkill"},      {SIGUSR1, SI_KERNEL, "kernel"},
      {SIGALRM, SI_TIMER, "timer"},      {SIGCHLD, CLD_EXITED, "exited"},
      {SIGCHLD, CLD_KILLED, "killed"},   {SIGCHLD, CLD_STOPPED, "stopped"},
      {SIGSEGV, SEGV_MAPERR, "kernel"},
  };
  for (const auto& c : cases) {
    signal::info delivery;
    delivery.number = c.number;
    delivery.code = c.code;
    EXPECT_EQ(signal::code_name(delivery), c.word);
  }
}

TEST(signal_names, send_errors_read_like_go) {
  ipckit::error_code ec;
  signal::send(0, SIGTERM, ec);
  EXPECT_EQ(ec, signal::errc::invalid_pid);
  signal::queue(-5, SIGUSR1, 1, ec);
  EXPECT_EQ(ec, signal::errc::invalid_pid);
  signal::send(1, 1000, ec);
  EXPECT_EQ(ec, signal::errc::unknown_signal);
  // pid_max is at most 2^22, so this pid does not exist.
  signal::send(2147483647, 0, ec);
  EXPECT_EQ(ec, boost::system::errc::no_such_process);
  try {
    signal::send(2147483647, SIGTERM);
    ADD_FAILURE() << "no exception";
  } catch (const ipckit::system_error& error) {
    EXPECT_STREQ(error.what(), "send SIGTERM to pid 2147483647: kill: no such process");
  }
  signal::send(::getpid(), 0, ec);  // signal 0: does this process exist?
  EXPECT_FALSE(ec);
}

}  // namespace
