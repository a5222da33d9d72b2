// `ipckit signal` as a user runs it: watch as a peer process, send and kill to it.
#include "test_support.hpp"

#include <gmock/gmock.h>
#include <nlohmann/json.hpp>

#include <unistd.h>

namespace {

using ipckit::test::cli_path;
using ipckit::test::peer_process;
using ipckit::test::run_process;
using nlohmann::json;
using testing::HasSubstr;

json next_json(peer_process& peer) {
  auto line = peer.read_line();
  if (!line) return json();
  return json::parse(*line);
}

TEST(signal_cli, watch_json_reports_the_sender_of_kill_and_send) {
  peer_process watch({cli_path(), "signal", "watch", "USR1", "SIGRTMIN+1", "--count", "3", "--json"});
  const std::string pid = std::to_string(watch.pid());
  auto line = watch.read_line();
  ASSERT_TRUE(line);
  EXPECT_EQ(*line, "{\"watching\":[\"SIGUSR1\",\"SIGRTMIN+1\"],\"pid\":" + pid + "}");

  peer_process kill({"kill", "-s", "USR1", pid});
  auto delivery = next_json(watch);
  EXPECT_EQ(delivery["signal"], "SIGUSR1");
  EXPECT_EQ(delivery["number"], 10);
  EXPECT_EQ(delivery["sender_pid"], kill.pid());
  EXPECT_EQ(delivery["sender_uid"], ::getuid());
  EXPECT_EQ(delivery["code"], "user");
  EXPECT_TRUE(delivery["value"].is_null());
  EXPECT_EQ(kill.wait(), 0);

  peer_process send({cli_path(), "signal", "send", "RTMIN+1", pid, "--value", "42"});
  delivery = next_json(watch);
  EXPECT_EQ(delivery["signal"], "SIGRTMIN+1");
  EXPECT_EQ(delivery["sender_pid"], send.pid());
  EXPECT_EQ(delivery["code"], "queue");
  EXPECT_EQ(delivery["value"], 42);
  EXPECT_EQ(send.wait(), 0);

  peer_process plain_send({cli_path(), "signal", "send", "usr1", pid});
  delivery = next_json(watch);
  EXPECT_EQ(delivery["sender_pid"], plain_send.pid());
  EXPECT_EQ(delivery["code"], "user");
  EXPECT_EQ(watch.wait(), 0);  // --count 3 reached
}

TEST(signal_cli, watch_text_names_the_sender) {
  peer_process watch({cli_path(), "signal", "watch", "SIGUSR2", "--count", "1"});
  auto line = watch.read_line();
  ASSERT_TRUE(line);
  EXPECT_EQ(*line, "watching SIGUSR2 in pid " + std::to_string(watch.pid()));
  peer_process kill({"kill", "-USR2", std::to_string(watch.pid())});
  line = watch.read_line();
  ASSERT_TRUE(line);
  EXPECT_EQ(*line, "SIGUSR2 from pid " + std::to_string(kill.pid()) + " uid " +
                       std::to_string(::getuid()) + " (user)");
  EXPECT_EQ(watch.wait(), 0);
}

// `ipckit signal send SIG -PGID` signals a process group, as kill(1) does.
TEST(signal_cli, send_to_a_negative_pid_reaches_the_process_group) {
  // setsid(1) makes the helper the leader of a group of its own (its pid).
  peer_process group({"setsid", ipckit::test::helper_path(), "signal-count-then-stop", "USR1", "1"});
  ASSERT_EQ(group.read_line(), "ready");
  ASSERT_EQ(::getpgid(group.pid()), group.pid());
  peer_process send({cli_path(), "signal", "send", "USR1", "-" + std::to_string(group.pid())});
  const int sender = send.pid();
  EXPECT_EQ(send.wait(), 0);
  EXPECT_EQ(group.read_line(), "got 1 from " + std::to_string(sender));
  EXPECT_EQ(group.read_line(), "stopped");
}

TEST(signal_cli, bad_arguments_and_failed_sends) {
  auto unknown = run_process({cli_path(), "signal", "send", "FOO", "1"});
  EXPECT_EQ(unknown.exit_code, 2);
  EXPECT_THAT(unknown.err, HasSubstr("unknown signal \"FOO\""));
  auto missing = run_process({cli_path(), "signal", "send", "TERM", "2147483647"});
  EXPECT_EQ(missing.exit_code, 1);
  EXPECT_EQ(missing.err, "send SIGTERM to pid 2147483647: kill: no such process\n");
  auto reserved = run_process({cli_path(), "signal", "watch", "RTMAX"});
  EXPECT_EQ(reserved.exit_code, 1);
  EXPECT_THAT(reserved.err, HasSubstr("reserved by ipckit's worker pool"));
  auto group_value = run_process({cli_path(), "signal", "send", "USR1", "-5", "--value", "1"});
  EXPECT_EQ(group_value.exit_code, 2);
  auto help = run_process({cli_path(), "signal", "--help"});
  EXPECT_EQ(help.exit_code, 0);
  EXPECT_THAT(help.out, HasSubstr("ipckit signal watch SIG... [--count N] [--json]"));
}

}  // namespace
