// The ipckit command as a user runs it: a real process, its exit status and its output.
#include "test_support.hpp"

#include <gmock/gmock.h>

namespace {

using ipckit::test::cli_path;
using ipckit::test::run_process;
using testing::HasSubstr;

TEST(cli_command, help_lists_every_subcommand) {
  auto result = run_process({cli_path(), "--help"});
  EXPECT_EQ(result.exit_code, 0);
  for (const char* name : {"dial", "listen", "signal", "fifo", "lock", "mq", "sem", "tour", "bench"})
    EXPECT_THAT(result.out, HasSubstr(std::string("  ") + name)) << name;
}

TEST(cli_command, no_arguments_is_a_usage_error) {
  auto result = run_process({cli_path()});
  EXPECT_EQ(result.exit_code, 2);
  EXPECT_THAT(result.err, HasSubstr("Usage: ipckit COMMAND"));
}

TEST(cli_command, unknown_subcommand_says_so_on_stderr) {
  auto result = run_process({cli_path(), "frobnicate"});
  EXPECT_EQ(result.exit_code, 2);
  EXPECT_THAT(result.err, HasSubstr("unknown command \"frobnicate\""));
  EXPECT_TRUE(result.out.empty());
}

TEST(cli_command, subcommand_help_and_bad_flag) {
  auto help = run_process({cli_path(), "tour", "--help"});
  EXPECT_EQ(help.exit_code, 0);
  EXPECT_THAT(help.out, HasSubstr("Usage: ipckit tour"));
  auto bad = run_process({cli_path(), "tour", "--nosuch"});
  EXPECT_EQ(bad.exit_code, 2);
  EXPECT_THAT(bad.err, HasSubstr("flag provided but not defined: -nosuch"));
}

}  // namespace
