// `ipckit lock` as a user runs it, beside util-linux flock(1).
#include "test_support.hpp"

#include <ipckit/event_loop.hpp>
#include <ipckit/file_lock.hpp>

#include <gmock/gmock.h>

namespace {

using namespace std::chrono_literals;
using ipckit::test::cli_path;
using ipckit::test::helper_path;
using ipckit::test::peer_process;
using ipckit::test::run_process;
using testing::HasSubstr;

class lock_cli : public ipckit::test::temp_dir_test {
 protected:
  std::string lock_path() const { return (dir() / "cli.lock").string(); }
  ipckit::event_loop loop;
};

TEST_F(lock_cli, runs_the_command_and_exits_with_its_status) {
  auto result = run_process({cli_path(), "lock", lock_path(), "--", helper_path(), "exit", "7"});
  EXPECT_EQ(result.exit_code, 7);
  EXPECT_EQ(result.err, "");
  EXPECT_TRUE(std::filesystem::exists(lock_path()));
}

TEST_F(lock_cli, command_runs_while_the_lock_is_held) {
  peer_process holder({cli_path(), "lock", lock_path(), "--", helper_path(), "wait-stdin"});
  ASSERT_EQ(holder.read_line(), "ready");
  ipckit::file_lock lock(loop, lock_path());
  EXPECT_FALSE(lock.try_lock());
  EXPECT_EQ(run_process({"flock", "-n", lock_path(), "true"}).exit_code, 1);
  holder.close_stdin();
  EXPECT_EQ(holder.wait(), 0);
  EXPECT_TRUE(lock.try_lock());
}

TEST_F(lock_cli, timeout_exits_1_with_a_clear_message_and_runs_nothing) {
  ipckit::file_lock lock(loop, lock_path());
  lock.lock();
  const auto marker = (dir() / "ran").string();
  auto result = run_process({cli_path(), "lock", "--timeout", "100ms", lock_path(), "--", "touch", marker});
  EXPECT_EQ(result.exit_code, 1);
  EXPECT_THAT(result.err, HasSubstr("timed out after 100ms waiting for an exclusive lock on " + lock_path()));
  EXPECT_FALSE(std::filesystem::exists(marker));
}

TEST_F(lock_cli, waits_for_flock1_and_flock1_waits_for_it) {
  peer_process holder({"flock", lock_path(), helper_path(), "wait-stdin"});
  ASSERT_EQ(holder.read_line(), "ready");
  EXPECT_EQ(run_process({cli_path(), "lock", "--timeout", "50ms", lock_path(), "--", "true"}).exit_code, 1);
  // A waiting ipckit lock gets it when flock(1)'s command ends.
  peer_process waiter({cli_path(), "lock", lock_path(), "--", helper_path(), "wait-stdin"});
  EXPECT_EQ(waiter.read_line(100ms), std::nullopt);
  holder.close_stdin();
  EXPECT_EQ(waiter.read_line(), "ready");
  EXPECT_EQ(run_process({"flock", "-w", "0.05", lock_path(), "true"}).exit_code, 1);
  waiter.close_stdin();
  EXPECT_EQ(waiter.wait(), 0);
}

TEST_F(lock_cli, shared_admits_shared) {
  ipckit::file_lock lock(loop, lock_path());
  lock.lock_shared();
  EXPECT_EQ(run_process({cli_path(), "lock", "--shared", "--timeout", "1s", lock_path(), "--", "true"}).exit_code, 0);
  EXPECT_EQ(run_process({cli_path(), "lock", "--timeout", "0", lock_path(), "--", "true"}).exit_code, 1);
}

TEST_F(lock_cli, command_starts_with_empty_mask_and_default_dispositions) {
  // nohup ignores SIGHUP for ipckit; ipckit must not pass that on.
  auto result = run_process({"nohup", cli_path(), "lock", lock_path(), "--", helper_path(), "proc-status",
                             "SigBlk", "SigIgn"});
  EXPECT_EQ(result.exit_code, 0) << result.err;
  EXPECT_THAT(result.out, HasSubstr("SigBlk:\t0000000000000000"));
  EXPECT_THAT(result.out, HasSubstr("SigIgn:\t0000000000000000"));
}

TEST_F(lock_cli, missing_command_and_bad_usage) {
  auto missing = run_process({cli_path(), "lock", lock_path(), "--", "ipckit-no-such-command"});
  EXPECT_EQ(missing.exit_code, 127);
  EXPECT_THAT(missing.err, HasSubstr("exec: \"ipckit-no-such-command\": executable file not found in $PATH"));
  auto no_command = run_process({cli_path(), "lock", lock_path()});
  EXPECT_EQ(no_command.exit_code, 2);
  EXPECT_THAT(no_command.err, HasSubstr("want -- CMD"));
  auto bad_timeout = run_process({cli_path(), "lock", "--timeout", "soon", lock_path(), "--", "true"});
  EXPECT_EQ(bad_timeout.exit_code, 2);
  auto bad_path = run_process({cli_path(), "lock", (dir() / "no" / "such").string(), "--", "true"});
  EXPECT_EQ(bad_path.exit_code, 1);
  EXPECT_THAT(bad_path.err, HasSubstr("no such file or directory"));
}

}  // namespace
