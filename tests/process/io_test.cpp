#include <ipckit/process.hpp>

#include "process_util.hpp"

#include <boost/asio/read.hpp>
#include <boost/asio/write.hpp>
#include <boost/asio/io_context.hpp>

#include <csignal>
#include <fcntl.h>
#include <fstream>
#include <sstream>
#include <sys/socket.h>
#include <unistd.h>

namespace {

using namespace std::chrono_literals;
using ipckit::error_code;
using ipckit::test::helper_path;
using ipckit::test::run_until;
using process_test::trim;

class process_io : public ipckit::test::temp_dir_test {
 protected:
  boost::asio::io_context io;
};

constexpr std::size_t ten_mib = 10 << 20;

TEST_F(process_io, output_reads_ten_mib_on_stdout_and_stderr_at_once) {
  ipckit::command cmd(io.get_executor(), helper_path(), {"write-both", std::to_string(ten_mib)});
  const std::string out = cmd.output();
  EXPECT_EQ(out.size(), ten_mib);
  EXPECT_EQ(out.find_first_not_of('o'), std::string::npos);
}

TEST_F(process_io, combined_output_has_both_streams) {
  ipckit::command cmd(io.get_executor(), helper_path(), {"write-both", std::to_string(ten_mib)});
  const std::string all = cmd.combined_output();
  EXPECT_EQ(all.size(), 2 * ten_mib);
  EXPECT_EQ(std::count(all.begin(), all.end(), 'e'), static_cast<std::ptrdiff_t>(ten_mib));
}

TEST_F(process_io, async_pipes_read_ten_mib_on_stdout_and_stderr_at_once) {
  ipckit::command cmd(io.get_executor(), helper_path(), {"write-both", std::to_string(ten_mib)});
  auto out = cmd.stdout_pipe();
  auto err = cmd.stderr_pipe();
  cmd.start();
  std::string out_text, err_text;
  int eofs = 0;
  std::optional<ipckit::process_state> state;
  auto drain = [&](ipckit::pipe_reader& r, std::string& text) {
    boost::asio::async_read(r, boost::asio::dynamic_buffer(text), [&](error_code ec, std::size_t) {
      EXPECT_EQ(ec, boost::asio::error::eof);
      ++eofs;
    });
  };
  drain(out, out_text);
  drain(err, err_text);
  cmd.async_wait([&](error_code ec, ipckit::process_state s) {
    EXPECT_FALSE(ec);
    state = s;
  });
  ASSERT_TRUE(run_until(io, [&] { return eofs == 2 && state; }, 30s));
  EXPECT_EQ(out_text.size(), ten_mib);
  EXPECT_EQ(err_text.size(), ten_mib);
  EXPECT_TRUE(state->success());
}

TEST_F(process_io, a_child_that_exits_before_the_parent_reads) {
  ipckit::command cmd(io.get_executor(), helper_path(), {"write", "60000", "0"});
  auto out = cmd.stdout_pipe();
  cmd.start();
  EXPECT_TRUE(cmd.wait().success());
  std::string text;
  error_code ec;
  boost::asio::read(out, boost::asio::dynamic_buffer(text), ec);
  EXPECT_EQ(ec, boost::asio::error::eof);
  ASSERT_EQ(text.size(), 60000u);
  EXPECT_EQ(text.substr(0, 3), "abc");
}

TEST_F(process_io, a_child_that_never_reads_its_stdin) {
  ipckit::command cmd(io.get_executor(), helper_path(), {"exit", "0"});
  auto in = cmd.stdin_pipe();
  cmd.start();
  const std::string data(1 << 20, 'x');
  error_code write_ec;
  bool written = false;
  std::optional<ipckit::process_state> state;
  boost::asio::async_write(in, boost::asio::buffer(data), [&](error_code ec, std::size_t) {
    write_ec = ec;
    written = true;
  });
  cmd.async_wait([&](error_code, ipckit::process_state s) { state = s; });
  ASSERT_TRUE(run_until(io, [&] { return written && state; }));
  EXPECT_EQ(write_ec, boost::asio::error::broken_pipe);
  EXPECT_TRUE(state->success());
  sigset_t pending;
  sigpending(&pending);
  EXPECT_FALSE(sigismember(&pending, SIGPIPE));
}

TEST_F(process_io, stdio_to_files_and_dev_null) {
  const auto in_path = dir() / "in.txt";
  std::ofstream(in_path) << "from a file\n";
  ipckit::command cmd(io.get_executor(), helper_path(), {"echo"});
  cmd.set_stdin(ipckit::stdio::file(in_path));
  cmd.set_stdout(ipckit::stdio::file(dir() / "out.txt"));
  cmd.run();
  std::ifstream result(dir() / "out.txt");
  std::stringstream text;
  text << result.rdbuf();
  EXPECT_EQ(text.str(), "from a file\n");
  EXPECT_EQ(std::filesystem::status(dir() / "out.txt").permissions() & std::filesystem::perms::all,
            std::filesystem::perms::owner_read | std::filesystem::perms::owner_write);
  // Go's default: /dev/null on all three.
  ipckit::command quiet(io.get_executor(), helper_path(), {"echo"});
  quiet.run();
}

TEST_F(process_io, stdio_from_an_ipckit_pipe_and_inherited) {
  auto [reader, writer] = ipckit::make_pipe(io.get_executor());
  ipckit::command cmd(io.get_executor(), helper_path(), {"write", "5", "0"});
  cmd.set_stdout(ipckit::stdio::fd(writer.release()));
  cmd.run();
  char text[5];
  EXPECT_EQ(boost::asio::read(reader, boost::asio::buffer(text)), 5u);
  EXPECT_EQ(std::string(text, 5), "abcde");

  // Inherited: the parent's fd 1, here pointed at a pipe for the duration of the test.
  auto second = ipckit::make_pipe(io.get_executor());
  const int saved = ::dup(1);
  ::dup2(second.writer.native_handle(), 1);
  ipckit::command inherit(io.get_executor(), helper_path(), {"write", "3", "0"});
  inherit.set_stdout(ipckit::stdio::inherit());
  inherit.run();
  ::dup2(saved, 1);
  ::close(saved);
  EXPECT_EQ(boost::asio::read(second.reader, boost::asio::buffer(text, 3)), 3u);
  EXPECT_EQ(std::string(text, 3), "abc");
}

TEST_F(process_io, stdio_from_a_socket) {
  int pair[2];
  ASSERT_EQ(::socketpair(AF_UNIX, SOCK_STREAM | SOCK_CLOEXEC, 0, pair), 0);
  ipckit::unique_fd ours(pair[0]);
  ipckit::command cmd(io.get_executor(), helper_path(), {"echo"});
  cmd.set_stdin(ipckit::stdio::fd(pair[1]));  // duplicated: the same socket on 0 and 1
  cmd.set_stdout(ipckit::stdio::fd(ipckit::unique_fd(pair[1])));
  cmd.start();
  ASSERT_EQ(::write(ours.get(), "ping", 4), 4);
  ::shutdown(ours.get(), SHUT_WR);
  char got[8];
  ssize_t n = 0, r;
  while ((r = ::read(ours.get(), got + n, sizeof got - static_cast<std::size_t>(n))) > 0) n += r;
  EXPECT_EQ(std::string(got, static_cast<std::size_t>(n)), "ping");
  EXPECT_TRUE(cmd.wait().success());
}

// Where fd `fd` of this process leads, as /proc shows it: "/dev/null", "pipe:[123]" …
std::string fd_target(int fd) {
  return std::filesystem::read_symlink("/proc/self/fd/" + std::to_string(fd)).string();
}

// Each of the child's stdin, stdout and stderr can be each kind of stdio. The child (sh,
// started directly) reports on fd 3 where its own fds 0, 1 and 2 lead; the other two
// streams keep Go's default, /dev/null.
TEST_F(process_io, each_standard_stream_can_be_null_inherited_a_file_a_pipe_or_a_socket) {
  // (Through a command substitution: sh applies a redirection to its own fds while the
  // redirected command runs, so `readlink … >&3` would see fd 3's target on fd 1.)
  const std::string report = "t=$(readlink /proc/$$/fd/0 /proc/$$/fd/1 /proc/$$/fd/2) && echo $t >&3";
  const std::string names[] = {"stdin", "stdout", "stderr"};
  for (int stream = 0; stream < 3; ++stream) {
    const std::string kinds[] = {"null", "inherit", "file", "ipckit pipe", "socket", "async pipe"};
    for (const std::string& kind : kinds) {
      SCOPED_TRACE(names[stream] + " as " + kind);
      ipckit::command cmd(io.get_executor(), "sh", {"-c", report});
      auto reply = ipckit::make_pipe(io.get_executor());
      cmd.add_fd(reply.writer.native_handle(), 3);
      reply.writer.close();
      auto set = [&](ipckit::stdio s) {
        if (stream == 0) cmd.set_stdin(std::move(s));
        else if (stream == 1) cmd.set_stdout(std::move(s));
        else cmd.set_stderr(std::move(s));
      };
      std::string expected;
      std::optional<ipckit::pipe_pair> keep;                   // ends the parent holds
      std::optional<ipckit::pipe_writer> async_in;             // stdin_pipe()
      std::optional<ipckit::pipe_reader> async_out;            // stdout_pipe()/stderr_pipe()
      ipckit::unique_fd socket_ours, saved_parent_fd;
      if (kind == "null") {
        set(ipckit::stdio::null());
        expected = "/dev/null";
      } else if (kind == "inherit") {
        // This process's own fd `stream`, pointed at a fresh pipe while the child starts.
        keep = ipckit::make_pipe(io.get_executor());
        const int end = stream == 0 ? keep->reader.native_handle() : keep->writer.native_handle();
        saved_parent_fd.reset(::fcntl(stream, F_DUPFD_CLOEXEC, 10));
        ASSERT_EQ(::dup2(end, stream), stream);
        expected = fd_target(stream);
        set(ipckit::stdio::inherit());
      } else if (kind == "file") {
        const auto path = dir() / (names[stream] + ".txt");
        std::ofstream(path) << "x";
        expected = std::filesystem::canonical(path).string();
        set(ipckit::stdio::file(path));
      } else if (kind == "ipckit pipe") {
        keep = ipckit::make_pipe(io.get_executor());
        const int end = stream == 0 ? keep->reader.native_handle() : keep->writer.native_handle();
        expected = fd_target(end);
        set(ipckit::stdio::fd(end));
      } else if (kind == "socket") {
        int pair[2];
        ASSERT_EQ(::socketpair(AF_UNIX, SOCK_STREAM | SOCK_CLOEXEC, 0, pair), 0);
        socket_ours.reset(pair[0]);
        expected = fd_target(pair[1]);
        set(ipckit::stdio::fd(ipckit::unique_fd(pair[1])));
      } else {
        if (stream == 0) {
          async_in = cmd.stdin_pipe();
          expected = fd_target(async_in->native_handle());
        } else {
          async_out = stream == 1 ? cmd.stdout_pipe() : cmd.stderr_pipe();
          expected = fd_target(async_out->native_handle());
        }
      }
      error_code ec;
      cmd.start(ec);
      if (saved_parent_fd) ::dup2(saved_parent_fd.get(), stream);
      ASSERT_FALSE(ec) << ec.message();
      EXPECT_TRUE(cmd.wait().success());
      std::string text;
      boost::asio::read(reply.reader, boost::asio::dynamic_buffer(text), ec);
      std::vector<std::string> targets;
      std::istringstream words(text);
      for (std::string word; words >> word;) targets.push_back(word);
      ASSERT_EQ(targets.size(), 3u) << text;
      for (int other = 0; other < 3; ++other)
        EXPECT_EQ(targets[other], other == stream ? expected : "/dev/null") << names[other];
    }
  }
}

// Arguments reach the program as given: no shell expands, splits or runs anything.
TEST_F(process_io, arguments_arrive_verbatim_without_a_shell) {
  const std::vector<std::string> args = {"%s|", "two words", "$HOME", "*", "; echo injected",
                                         "", "'quoted'", "`id`", "a\nb"};
  ipckit::command cmd(io.get_executor(), "printf", args);
  std::string expected;
  for (std::size_t i = 1; i < args.size(); ++i) expected += args[i] + "|";
  EXPECT_EQ(cmd.output(), expected);
  EXPECT_EQ(cmd.args().front(), "printf");
  EXPECT_EQ(cmd.path(), ipckit::look_path("printf"));
}

TEST_F(process_io, extra_fds_arrive_at_their_numbers_and_nothing_else_leaks) {
  auto five = ipckit::make_pipe(io.get_executor());
  auto nine = ipckit::make_pipe(io.get_executor());
  // An fd opened without O_CLOEXEC must not reach the child either.
  const int leaky = ::open("/dev/null", O_RDONLY);
  ASSERT_GE(leaky, 0);
  ipckit::command cmd(io.get_executor(), helper_path(), {"fds", "5", "9"});
  cmd.add_fd(five.writer.native_handle(), 5);
  cmd.add_fd(nine.writer.native_handle(), 9);
  five.writer.close();
  nine.writer.close();
  EXPECT_EQ(cmd.output(), "0 1 2 5 9\n");
  ::close(leaky);
  std::string got;
  error_code ec;
  boost::asio::read(five.reader, boost::asio::dynamic_buffer(got), ec);
  EXPECT_EQ(got, "fd5\n");
  got.clear();
  boost::asio::read(nine.reader, boost::asio::dynamic_buffer(got), ec);
  EXPECT_EQ(got, "fd9\n");
  EXPECT_THROW(cmd.add_fd(0, 2), ipckit::system_error);
}

TEST_F(process_io, closed_fds_0_to_2_in_the_parent) {
  auto warm = ipckit::make_pipe(io.get_executor());  // the loop's own fds exist already
  std::ofstream(dir() / "in.txt") << "hello\n";
  int saved[3];
  for (int i = 0; i < 3; ++i) saved[i] = ::fcntl(i, F_DUPFD_CLOEXEC, 10);
  for (int i = 0; i < 3; ++i) ::close(i);
  std::string listed, echoed, with_extra, big;
  {
    // fds 0–2 closed: the pipes, files and /dev/null start() opens land on those numbers,
    // and must still reach the child at the right places.
    ipckit::command a(io.get_executor(), helper_path(), {"fds"});
    listed = a.output();
    ipckit::command b(io.get_executor(), helper_path(), {"echo"});
    b.set_stdin(ipckit::stdio::file(dir() / "in.txt"));
    echoed = b.output();
    auto p = ipckit::make_pipe(io.get_executor());
    ipckit::command c(io.get_executor(), helper_path(), {"fds", "4"});
    c.add_fd(p.writer.native_handle(), 4);
    p.writer.close();
    with_extra = c.output();
    ipckit::command d(io.get_executor(), helper_path(), {"write-both", "1048576"});
    big = d.combined_output();
  }
  for (int i = 0; i < 3; ++i) ::dup2(saved[i], i), ::close(saved[i]);
  EXPECT_EQ(listed, "0 1 2\n");
  EXPECT_EQ(echoed, "hello\n");
  EXPECT_EQ(with_extra, "0 1 2 4\n");
  EXPECT_EQ(big.size(), 2u << 20);
}

}  // namespace
