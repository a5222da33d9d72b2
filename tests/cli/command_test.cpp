// The ipckit command as a user runs it: a real process, its exit status and its output.
#include "test_support.hpp"

#include <gmock/gmock.h>

#include <sstream>
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

// --help on an action of a subcommand prints the subcommand's usage on stdout and exits 0
// (every subcommand itself: every_listed_subcommand_answers_help).
TEST(cli_command, help_on_an_action_prints_the_subcommands_usage) {
  const std::vector<std::vector<std::string>> table = {
      {"mq", "receive", "--help"}, {"sem", "wait", "-h"},
      {"fifo", "read", "--help"},  {"signal", "watch", "--help"},
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

// Every subcommand that `ipckit --help` lists answers `--help` with its usage on stdout
// (exit 0); one still marked "not built yet" says so on stderr (exit 1), never pretends.
TEST(cli_command, every_listed_subcommand_answers_help) {
  auto listing = run_process({cli_path(), "--help"});
  ASSERT_EQ(listing.exit_code, 0);
  std::istringstream lines(listing.out);
  std::string line;
  int listed = 0;
  while (std::getline(lines, line) && line != "Commands:") {
  }
  while (std::getline(lines, line) && line.starts_with("  ")) {
    std::istringstream words(line);
    std::string name;
    words >> name;
    ++listed;
    auto help = run_process({cli_path(), name, "--help"});
    if (line.find("(not built yet") != std::string::npos) {
      EXPECT_EQ(help.exit_code, 1) << name;
      EXPECT_THAT(help.err, HasSubstr("ipckit " + name + ": not built yet")) << name;
      continue;
    }
    EXPECT_EQ(help.exit_code, 0) << name << ": " << help.err;
    EXPECT_TRUE(help.out.starts_with("Usage:")) << name << ":\n" << help.out;
    EXPECT_THAT(help.out, HasSubstr("ipckit " + name + " ")) << name;
    EXPECT_TRUE(help.err.empty()) << name << ": " << help.err;
  }
  EXPECT_EQ(listed, 9) << "dial listen signal fifo lock mq sem tour bench";
}

}  // namespace
