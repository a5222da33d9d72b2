#include <ipckit/process.hpp>

#include "process_util.hpp"

#include <boost/asio/io_context.hpp>

#include <cstdlib>
#include <fstream>
#include <sys/stat.h>
#include <unistd.h>

namespace {

using ipckit::error_code;
using ipckit::test::helper_path;
using process_test::trim;

class process_start : public ipckit::test::temp_dir_test {
 protected:
  boost::asio::io_context io;

  std::string write_file(const std::string& name, const std::string& content, mode_t mode) {
    const auto path = (dir() / name).string();
    std::ofstream(path) << content;
    ::chmod(path.c_str(), mode);
    return path;
  }
  std::string start_error(ipckit::command& cmd) {
    try {
      cmd.start();
    } catch (const ipckit::system_error& e) {
      return e.what();
    }
    return "started";
  }
};

TEST_F(process_start, run_reports_the_exit_status_as_go_does) {
  ipckit::command ok(io.get_executor(), helper_path(), {"exit", "0"});
  ok.run();
  EXPECT_TRUE(ok.state()->success());

  ipckit::command cmd(io.get_executor(), helper_path(), {"exit", "3"});
  try {
    cmd.run();
    FAIL() << "no exit_error";
  } catch (const ipckit::exit_error& e) {
    EXPECT_STREQ(e.what(), "exit status 3");
    EXPECT_EQ(e.code(), ipckit::process::errc::exit_status);
    EXPECT_EQ(e.state().exit_code(), 3);
  }
  error_code ec;
  ipckit::command again(io.get_executor(), helper_path(), {"exit", "4"});
  again.run(ec);
  EXPECT_EQ(ec, ipckit::process::errc::exit_status);
  EXPECT_EQ(again.state()->exit_code(), 4);
}

TEST_F(process_start, missing_program_is_not_found_in_path) {
  ipckit::command cmd(io.get_executor(), "ipckit-nosuch-program");
  EXPECT_EQ(start_error(cmd), "exec: \"ipckit-nosuch-program\": executable file not found in $PATH");
  error_code ec;
  cmd.start(ec);
  EXPECT_EQ(ec, ipckit::process::errc::not_found);
}

TEST_F(process_start, missing_path_permission_and_format_errors_are_told_apart) {
  const std::string missing = (dir() / "nosuch").string();
  const std::string not_executable = write_file("data", "#!/bin/sh\nexit 0\n", 0644);
  const std::string garbage = write_file("garbage", "\x01\x02\x03 not a program\n", 0755);
  ipckit::command a(io.get_executor(), missing);
  EXPECT_EQ(start_error(a), "fork/exec " + missing + ": no such file or directory");
  ipckit::command b(io.get_executor(), not_executable);
  EXPECT_EQ(start_error(b), "fork/exec " + not_executable + ": permission denied");
  ipckit::command c(io.get_executor(), garbage);
  EXPECT_EQ(start_error(c), "fork/exec " + garbage + ": exec format error");
}

TEST_F(process_start, look_path_finds_programs_on_path_only) {
  EXPECT_EQ(ipckit::look_path("sh").front(), '/');
  error_code ec;
  ipckit::look_path("ipckit-nosuch-program", ec);
  EXPECT_EQ(ec, ipckit::process::errc::not_found);
  // A directory is not an executable.
  ipckit::look_path(dir().string() + "/", ec);
  EXPECT_TRUE(ec);
}

TEST_F(process_start, look_path_never_uses_the_current_directory_implicitly) {
  write_file("ipckit-dot-prog", "#!/bin/sh\nexit 0\n", 0755);
  const std::string old_path = std::getenv("PATH");
  char old_cwd[4096];
  ASSERT_TRUE(::getcwd(old_cwd, sizeof old_cwd));
  ASSERT_EQ(::chdir(dir().c_str()), 0);
  for (const char* path : {"", ".", "/nonexistent:", "/nonexistent::/usr/bin"}) {
    ::setenv("PATH", path, 1);
    error_code ec;
    ipckit::look_path("ipckit-dot-prog", ec);
    EXPECT_EQ(ec, ipckit::process::errc::dot) << "PATH=" << path;
    ipckit::command cmd(io.get_executor(), "ipckit-dot-prog");
    EXPECT_EQ(start_error(cmd),
              "exec: \"ipckit-dot-prog\": cannot run executable found relative to current directory");
  }
  ::setenv("PATH", old_path.c_str(), 1);
  // Said explicitly, the current directory is fine.
  ipckit::command explicit_dot(io.get_executor(), "./ipckit-dot-prog");
  explicit_dot.run();
  ASSERT_EQ(::chdir(old_cwd), 0);
}

TEST_F(process_start, environment_inherit_replace_add_remove) {
  ::setenv("IPCKIT_INHERITED", "yes", 1);
  ipckit::command inherit(io.get_executor(), helper_path(), {"getenv", "IPCKIT_INHERITED"});
  EXPECT_EQ(inherit.output(), "IPCKIT_INHERITED=yes\n");

  ipckit::command replaced(io.get_executor(), helper_path(), {"getenv", "IPCKIT_INHERITED", "A"});
  replaced.set_env({"A=1", "A=2"});
  EXPECT_EQ(replaced.output(), "IPCKIT_INHERITED unset\nA=2\n");

  ipckit::command edited(io.get_executor(), helper_path(), {"getenv", "IPCKIT_INHERITED", "B"});
  edited.unsetenv("IPCKIT_INHERITED");
  edited.setenv("B", "two words");
  EXPECT_EQ(edited.output(), "IPCKIT_INHERITED unset\nB=two words\n");
  ::unsetenv("IPCKIT_INHERITED");
}

TEST_F(process_start, nul_in_the_environment_or_arguments_is_an_error) {
  ipckit::command cmd(io.get_executor(), helper_path(), {"exit", "0"});
  cmd.setenv("BAD", std::string("a\0b", 3));
  EXPECT_EQ(start_error(cmd), "exec: environment variable contains NUL");
  ipckit::command name(io.get_executor(), helper_path(), {"exit", "0"});
  name.setenv(std::string("N\0M", 3), "v");
  EXPECT_EQ(start_error(name), "exec: environment variable contains NUL");
  ipckit::command arg(io.get_executor(), helper_path(), {std::string("ex\0it", 5)});
  error_code ec;
  arg.start(ec);
  EXPECT_EQ(ec, boost::system::errc::invalid_argument);
  EXPECT_EQ(process_test::child_count(), 0u);
}

TEST_F(process_start, working_directory) {
  ipckit::command cmd(io.get_executor(), helper_path(), {"pwd"});
  cmd.set_dir(dir());
  EXPECT_EQ(trim(cmd.output()), std::filesystem::canonical(dir()).string());
  ipckit::command missing(io.get_executor(), helper_path(), {"pwd"});
  missing.set_dir(dir() / "nosuch");
  EXPECT_EQ(start_error(missing), "chdir " + (dir() / "nosuch").string() + ": no such file or directory");
}

TEST_F(process_start, start_twice_and_wait_twice_are_errors) {
  ipckit::command cmd(io.get_executor(), helper_path(), {"exit", "0"});
  error_code ec;
  cmd.wait(ec);
  EXPECT_EQ(ec, ipckit::process::errc::not_started);
  cmd.start();
  EXPECT_EQ(start_error(cmd), "exec: already started");
  cmd.wait();
  cmd.wait(ec);
  EXPECT_EQ(ec, ipckit::process::errc::already_waited);
}

TEST_F(process_start, a_missing_program_a_hundred_times_leaves_no_zombie_and_no_fd) {
  ipckit::command warm(io.get_executor(), helper_path(), {"exit", "0"});  // the loop's fds
  warm.run();
  const auto fds = ipckit::test::open_fd_count();
  const std::string missing = (dir() / "nosuch").string();
  for (int i = 0; i < 100; ++i) {
    ipckit::command by_name(io.get_executor(), "ipckit-nosuch-program");
    error_code ec;
    by_name.start(ec);
    EXPECT_EQ(ec, ipckit::process::errc::not_found);
    ipckit::command by_path(io.get_executor(), missing);  // forks, exec fails
    by_path.start(ec);
    EXPECT_EQ(ec, boost::system::errc::no_such_file_or_directory);
  }
  EXPECT_EQ(process_test::child_count(), 0u);
  EXPECT_EQ(ipckit::test::open_fd_count(), fds);
}

}  // namespace
