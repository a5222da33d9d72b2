// Unix extras between two processes: fd passing (SCM_RIGHTS) and peer credentials,
// with python3's socket module as the other process.
#include "net_test_util.hpp"

#include <boost/asio/read.hpp>

#include <fcntl.h>
#include <unistd.h>

namespace {

namespace net = ipckit::net;
namespace asio = boost::asio;
using ipckit::error_code;
using ipckit::test::peer_process;

std::string python() {
  return std::filesystem::exists("/usr/bin/python3") ? "/usr/bin/python3" : "python3";
}

class unix_extras : public ipckit::test::temp_dir_test {
 protected:
  asio::io_context io;
  net::executor_type ex = io.get_executor();
};

// python connects, reports its pid, and sends a pipe's read end with one byte of data;
// then writes a message into the pipe's write end.
constexpr const char* send_fd_script = R"(
import os, socket, sys
s = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM)
s.connect(sys.argv[1])
r, w = os.pipe()
socket.send_fds(s, [b"f"], [r])
os.write(w, b"through the passed fd")
print(os.getpid(), flush=True)
s.recv(1)
)";

TEST_F(unix_extras, receives_an_fd_from_another_process) {
  const std::string path = (dir() / "fd.sock").string();
  net::listener l = net::listen(ex, "unix", path);
  peer_process py({python(), "-c", send_fd_script, path});
  net::conn c = l.accept();
  char byte = 0;
  std::vector<ipckit::unique_fd> fds;
  ASSERT_EQ(c.read_with_fds(asio::buffer(&byte, 1), fds), 1u);
  EXPECT_EQ(byte, 'f');
  ASSERT_EQ(fds.size(), 1u);
  EXPECT_NE(::fcntl(fds[0].get(), F_GETFD) & FD_CLOEXEC, 0) << "MSG_CMSG_CLOEXEC";
  char text[21];
  ASSERT_EQ(::read(fds[0].get(), text, sizeof text), 21);
  EXPECT_EQ(std::string(text, 21), "through the passed fd");
  // Peer credentials of the same connection.
  auto pid = py.read_line();
  ASSERT_TRUE(pid);
  auto cred = c.peer_credentials();
  EXPECT_EQ(cred.pid, std::stoi(*pid));
  EXPECT_EQ(cred.uid, ::getuid());
  EXPECT_EQ(cred.gid, ::getgid());
  c.write_some(asio::buffer("x", 1));
  EXPECT_EQ(py.wait(), 0);
}

constexpr const char* receive_fd_script = R"(
import os, socket, sys
s = socket.socket(socket.AF_UNIX, socket.SOCK_SEQPACKET)
s.connect(sys.argv[1])
msg, fds, flags, addr = socket.recv_fds(s, 16, 4)
os.write(fds[0], b"written by python")
print(msg.decode(), len(fds), flush=True)
)";

TEST_F(unix_extras, sends_an_fd_to_another_process) {
  const std::string path = (dir() / "fd.sock").string();
  net::listener l = net::listen(ex, "unixpacket", path);
  peer_process py({python(), "-c", receive_fd_script, path});
  net::conn c = l.accept();
  int pipe_fds[2];
  ASSERT_EQ(::pipe2(pipe_fds, O_CLOEXEC), 0);
  ipckit::unique_fd r(pipe_fds[0]), w(pipe_fds[1]);
  const int to_send[] = {w.get()};
  EXPECT_EQ(c.write_with_fds(asio::buffer("hello", 5), to_send), 5u);
  w.reset();
  EXPECT_EQ(py.read_line(), "hello 1");
  char text[17];
  ASSERT_EQ(::read(r.get(), text, sizeof text), 17);
  EXPECT_EQ(std::string(text, 17), "written by python");
  EXPECT_EQ(py.wait(), 0);
}

TEST_F(unix_extras, too_many_fds_are_all_closed_and_reported) {
  int pair[2];
  ASSERT_EQ(::socketpair(AF_UNIX, SOCK_STREAM | SOCK_CLOEXEC, 0, pair), 0);
  net::conn a(ex, "unix", ipckit::unique_fd(pair[0]));
  net::conn b(ex, "unix", ipckit::unique_fd(pair[1]));
  const std::size_t before = ipckit::test::open_fd_count();
  const int four[] = {0, 1, 2, 0};
  a.write_with_fds(asio::buffer("m", 1), four);
  char byte;
  std::vector<ipckit::unique_fd> fds;
  error_code ec;
  b.read_with_fds(asio::buffer(&byte, 1), fds, 2, ec);
  EXPECT_EQ(ec, net::errc::control_truncated);
  EXPECT_TRUE(fds.empty());
  EXPECT_EQ(ipckit::test::open_fd_count(), before) << "no received fd leaked";
}

}  // namespace
