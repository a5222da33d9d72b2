// `ipckit sem` as a user runs it.
#include "test_support.hpp"

#include <ipckit/semaphore.hpp>

#include <gmock/gmock.h>
#include <nlohmann/json.hpp>

namespace {

using namespace std::chrono_literals;
using ipckit::test::cli_path;
using ipckit::test::peer_process;
using ipckit::test::run_process;
using ipckit::test::unique_ipc_name;
using testing::HasSubstr;

class sem_cli : public ::testing::Test {
 protected:
  void TearDown() override {
    ipckit::error_code ignored;
    ipckit::named_semaphore::unlink(name, ignored);
  }
  ipckit::test::process_result sem(std::vector<std::string> args) {
    args.insert(args.begin(), {cli_path(), "sem"});
    return run_process(args);
  }
  std::string name = unique_ipc_name("cli");
};

TEST_F(sem_cli, create_post_wait_info_unlink) {
  ASSERT_EQ(sem({"create", name, "--value", "2"}).exit_code, 0);
  EXPECT_EQ(sem({"info", name}).out, "2\n");
  EXPECT_EQ(sem({"post", name}).exit_code, 0);
  EXPECT_EQ(sem({"info", name}).out, "3\n");
  EXPECT_EQ(sem({"wait", name}).exit_code, 0);
  EXPECT_EQ(sem({"wait", name, "--timeout", "1s"}).exit_code, 0);
  EXPECT_EQ(sem({"info", name}).out, "1\n");
  EXPECT_EQ(sem({"unlink", name}).exit_code, 0);
  auto gone = sem({"info", name});
  EXPECT_EQ(gone.exit_code, 1);
  EXPECT_THAT(gone.err, HasSubstr("open " + name + ": sem_open: no such file or directory"));
}

TEST_F(sem_cli, info_json_is_one_object) {
  ASSERT_EQ(sem({"create", name, "--value", "4"}).exit_code, 0);
  auto info = sem({"info", name, "--json"});
  ASSERT_EQ(info.exit_code, 0) << info.err;
  EXPECT_EQ(nlohmann::json::parse(info.out), (nlohmann::json{{"name", name}, {"value", 4}}));
}

TEST_F(sem_cli, wait_times_out_with_exit_1_and_a_message) {
  ASSERT_EQ(sem({"create", name}).exit_code, 0);
  auto waited = sem({"wait", name, "--timeout", "100ms"});
  EXPECT_EQ(waited.exit_code, 1);
  EXPECT_THAT(waited.err, HasSubstr("timed out after 100ms waiting for " + name));
}

TEST_F(sem_cli, a_blocked_wait_returns_when_another_process_posts) {
  ASSERT_EQ(sem({"create", name}).exit_code, 0);
  peer_process waiter({cli_path(), "sem", "wait", name});
  EXPECT_EQ(waiter.wait(100ms), std::nullopt);
  EXPECT_EQ(sem({"post", name}).exit_code, 0);
  EXPECT_EQ(waiter.wait(), 0);
}

TEST_F(sem_cli, errors_are_clear) {
  ASSERT_EQ(sem({"create", name}).exit_code, 0);
  auto again = sem({"create", name});
  EXPECT_EQ(again.exit_code, 1);
  EXPECT_THAT(again.err, HasSubstr("create " + name + ": sem_open: file exists"));
  EXPECT_EQ(sem({"create", unique_ipc_name("neg"), "--value", "-1"}).exit_code, 2);
  auto bad = sem({"post", "nope"});
  EXPECT_EQ(bad.exit_code, 1);
  EXPECT_THAT(bad.err, HasSubstr("invalid name"));
  EXPECT_EQ(sem({"frob"}).exit_code, 2);
}

}  // namespace
