// `ipckit mq` as a user runs it.
#include "test_support.hpp"

#include <ipckit/message_queue.hpp>

#include <gmock/gmock.h>
#include <nlohmann/json.hpp>

#include <unistd.h>

namespace {

using ipckit::test::cli_path;
using ipckit::test::run_process;
using ipckit::test::unique_ipc_name;
using testing::HasSubstr;

class mq_cli : public ::testing::Test {
 protected:
  void TearDown() override {
    ipckit::error_code ignored;
    ipckit::message_queue::unlink(name, ignored);
  }
  ipckit::test::process_result mq(std::vector<std::string> args) {
    args.insert(args.begin(), {cli_path(), "mq"});
    return run_process(args);
  }
  std::string name = unique_ipc_name("cli");
};

TEST_F(mq_cli, create_send_receive_info_unlink) {
  auto created = mq({"create", name, "--max-messages", "5", "--message-size", "128"});
  ASSERT_EQ(created.exit_code, 0) << created.err;
  EXPECT_EQ(mq({"send", name, "first"}).exit_code, 0);
  EXPECT_EQ(mq({"send", name, "urgent", "--priority", "9"}).exit_code, 0);
  auto info = mq({"info", name});
  EXPECT_EQ(info.exit_code, 0);
  EXPECT_THAT(info.out, HasSubstr("max-messages 5\nmessage-size 128\nmessages 2\nmode 0600\n"));
  auto received = mq({"receive", name, "--count", "2"});
  EXPECT_EQ(received.exit_code, 0) << received.err;
  EXPECT_EQ(received.out, "urgent\nfirst\n");
  EXPECT_EQ(mq({"unlink", name}).exit_code, 0);
  auto gone = mq({"info", name});
  EXPECT_EQ(gone.exit_code, 1);
  EXPECT_THAT(gone.err, HasSubstr("open " + name + ": mq_open: no such file or directory"));
}

TEST_F(mq_cli, receive_json_lines) {
  ASSERT_EQ(mq({"create", name}).exit_code, 0);
  EXPECT_EQ(mq({"send", name, "say \"hi\"", "--priority", "3"}).exit_code, 0);
  EXPECT_EQ(mq({"send", name, "plain"}).exit_code, 0);
  auto received = mq({"receive", name, "--count", "2", "--json"});
  EXPECT_EQ(received.exit_code, 0);
  EXPECT_EQ(received.out, "{\"message\":\"say \\\"hi\\\"\",\"priority\":3}\n{\"message\":\"plain\",\"priority\":0}\n");
}

TEST_F(mq_cli, info_json_is_one_object) {
  ASSERT_EQ(mq({"create", name, "--max-messages", "3", "--message-size", "64"}).exit_code, 0);
  EXPECT_EQ(mq({"send", name, "x"}).exit_code, 0);
  auto info = mq({"info", name, "--json"});
  ASSERT_EQ(info.exit_code, 0) << info.err;
  const auto document = nlohmann::json::parse(info.out);
  EXPECT_EQ(document, (nlohmann::json{{"name", name}, {"max_messages", 3}, {"message_size", 64},
                                      {"messages", 1}, {"mode", "0600"}, {"owner", ::geteuid()}}));
}

TEST_F(mq_cli, receive_timeout_exits_1_with_a_message) {
  ASSERT_EQ(mq({"create", name}).exit_code, 0);
  EXPECT_EQ(mq({"send", name, "only"}).exit_code, 0);
  auto received = mq({"receive", name, "--count", "2", "--timeout", "100ms"});
  EXPECT_EQ(received.exit_code, 1);
  EXPECT_EQ(received.out, "only\n");
  EXPECT_THAT(received.err, HasSubstr("timed out after 100ms waiting for a message on " + name + " (1 of 2 received)"));
}

TEST_F(mq_cli, errors_are_clear) {
  ASSERT_EQ(mq({"create", name}).exit_code, 0);
  auto again = mq({"create", name});
  EXPECT_EQ(again.exit_code, 1);
  EXPECT_THAT(again.err, HasSubstr("create " + name + ": mq_open: file exists"));
  auto big = mq({"create", unique_ipc_name("big"), "--message-size", "0"});
  EXPECT_EQ(big.exit_code, 2);
  auto too_long = mq({"send", name, std::string(8193, 'x')});
  EXPECT_EQ(too_long.exit_code, 1);
  EXPECT_THAT(too_long.err, HasSubstr("send " + name + ": message too large"));
  auto bad_name = mq({"send", "nope", "x"});
  EXPECT_EQ(bad_name.exit_code, 1);
  EXPECT_THAT(bad_name.err, HasSubstr("invalid name"));
  EXPECT_EQ(mq({"frob", name}).exit_code, 2);
  EXPECT_EQ(mq({"send", name, "x", "--priority", "-1"}).exit_code, 2);
}

}  // namespace
