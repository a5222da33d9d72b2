// Each teaching demo runs as a reader would run it, and says what its docs say it says.
#include "test_support.hpp"

#include <gmock/gmock.h>

#include <cstdlib>

namespace {

using ipckit::test::run_process;
using testing::ContainsRegex;
using testing::HasSubstr;

ipckit::test::process_result run_demo(const std::string& name) {
  const char* dir = std::getenv("IPCKIT_DEMO_DIR");
  if (!dir) throw std::runtime_error("IPCKIT_DEMO_DIR is not set: run with meson test");
  return run_process({std::string(dir) + "/" + name}, "", std::chrono::seconds(60));
}

TEST(demos, socket_demo_shows_domain_type_protocol_for_each_network) {
  auto r = run_demo("socket_demo");
  ASSERT_EQ(r.exit_code, 0) << r.err;
  EXPECT_THAT(r.out, ContainsRegex("tcp4 +AF_INET +SOCK_STREAM +0 +AF_INET, SOCK_STREAM, 6"));
  EXPECT_THAT(r.out, ContainsRegex("unixgram +AF_UNIX +SOCK_DGRAM"));
  EXPECT_THAT(r.out, ContainsRegex("unixpacket +AF_UNIX +SOCK_SEQPACKET"));
  EXPECT_THAT(r.out, ContainsRegex("ip4:icmp +AF_INET +SOCK_RAW +1"));
  EXPECT_THAT(r.out, HasSubstr("\"tcpx\": parse tcpx: unknown network tcpx"));
}

TEST(demos, dial_demo_round_trips_every_network) {
  auto r = run_demo("dial_demo");
  ASSERT_EQ(r.exit_code, 0) << r.err;
  for (const char* net : {"tcp ", "tcp4", "tcp6", "udp ", "udp4", "udp6", "unix ", "unixgram", "unixpacket"})
    EXPECT_THAT(r.out, ContainsRegex(std::string("(^|\n)") + net + ".*got \"hello\" back")) << net;
  EXPECT_THAT(r.out, HasSubstr("dial tcp 127.0.0.1:1: connect: connection refused"));
}

TEST(demos, signal_demo_names_the_sender_and_queues_realtime_values_in_order) {
  auto r = run_demo("signal_demo");
  ASSERT_EQ(r.exit_code, 0) << r.err;
  EXPECT_THAT(r.out, ContainsRegex("SIGUSR1 +from pid [0-9]+, code user"));
  EXPECT_THAT(r.out, ContainsRegex("value 1\n(.*\n)*.*value 2\n(.*\n)*.*value 3\n"));
  EXPECT_THAT(r.out, HasSubstr("child exited 0"));
}

TEST(demos, pipe_demo_goes_through_a_pipe_and_a_child) {
  auto r = run_demo("pipe_demo");
  ASSERT_EQ(r.exit_code, 0) << r.err;
  EXPECT_THAT(r.out, HasSubstr("os.Pipe:          through a pipe"));
  EXPECT_THAT(r.out, HasSubstr("HELLO FROM THE PARENT"));
  EXPECT_THAT(r.out, HasSubstr("cmd.Output:       Linux"));
}

TEST(demos, fifo_demo_reader_outlives_three_writers) {
  auto r = run_demo("fifo_demo");
  ASSERT_EQ(r.exit_code, 0) << r.err;
  EXPECT_THAT(r.out, HasSubstr("mode 600"));
  EXPECT_THAT(r.out, ContainsRegex("(server reader got: hello from writer [0-9]+\n(.*\n)*){3}"));
}

TEST(demos, file_lock_demo_hands_the_lock_over_when_the_holder_dies) {
  auto r = run_demo("file_lock_demo");
  ASSERT_EQ(r.exit_code, 0) << r.err;
  EXPECT_THAT(r.out, HasSubstr("parent try_lock: busy"));
  EXPECT_THAT(r.out, HasSubstr("the loop ticked 3 times"));
  EXPECT_THAT(r.out, ContainsRegex("parent got the lock after [0-9]+ ms: ok"));
  EXPECT_THAT(r.out, HasSubstr("holder: signal: killed"));
}

TEST(demos, message_queue_demo_receives_highest_priority_first) {
  auto r = run_demo("message_queue_demo");
  ASSERT_EQ(r.exit_code, 0) << r.err;
  EXPECT_THAT(r.out, ContainsRegex("priority 9: stop now\npriority 5: disk almost full\n"
                                   "priority 1: log rotated\npriority 0: routine report\n"));
}

TEST(demos, semaphore_demo_shows_posix_leaking_and_sysv_undoing) {
  auto r = run_demo("semaphore_demo");
  ASSERT_EQ(r.exit_code, 0) << r.err;
  EXPECT_THAT(r.out, HasSubstr("before: posix 2, sysv 2"));
  EXPECT_THAT(r.out, HasSubstr("holder took one unit: posix 1, sysv 1"));
  EXPECT_THAT(r.out, ContainsRegex("holder killed: +posix 1 .*, sysv 2 "));
  EXPECT_THAT(r.out, HasSubstr("event semaphore: a unit arrived on the loop"));
}

}  // namespace
