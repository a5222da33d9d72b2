// The ipckit command as a user runs it: a real process, its exit status and its output.
#include "test_support.hpp"

#include <gmock/gmock.h>

#include <string>
#include <vector>

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

// --help on every subcommand (and on an action of one) prints its usage on stdout and
// exits 0. bench is issue 8's and says "not built yet" until then.
TEST(cli_command, help_on_every_subcommand_prints_its_usage) {
  const std::vector<std::vector<std::string>> table = {
      {"dial", "--help"},         {"listen", "--help"},  {"signal", "--help"},
      {"fifo", "--help"},         {"lock", "--help"},    {"mq", "--help"},
      {"sem", "--help"},          {"tour", "--help"},    {"mq", "receive", "--help"},
      {"sem", "wait", "-h"},      {"fifo", "read", "--help"}, {"signal", "watch", "--help"},
  };
  for (auto args : table) {
    const std::string name = args[0];
    args.insert(args.begin(), cli_path());
    auto result = run_process(args);
    EXPECT_EQ(result.exit_code, 0) << name;
    EXPECT_THAT(result.out, testing::ContainsRegex("^Usage:\\s+ipckit " + name + " ")) << name;
    EXPECT_EQ(result.err, "") << name;
  }
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
