// Descriptors riding along with JSON messages over unix sockets (net::conn).
#include <ipckit/message.hpp>

#include "test_support.hpp"

#include <ipckit/event_loop.hpp>
#include <ipckit/net.hpp>

#include <fcntl.h>
#include <sys/socket.h>
#include <unistd.h>

namespace {

using ipckit::framing;
using ipckit::json_channel;
using ipckit::unique_fd;
using json = nlohmann::json;

std::pair<ipckit::net::conn, ipckit::net::conn> conn_pair(ipckit::event_loop& loop, int type, const char* net) {
  int fds[2];
  if (::socketpair(AF_UNIX, type | SOCK_CLOEXEC, 0, fds) != 0) throw std::runtime_error("socketpair");
  return {ipckit::net::conn(loop.get_executor(), net, unique_fd(fds[0])),
          ipckit::net::conn(loop.get_executor(), net, unique_fd(fds[1]))};
}

// Sends a pipe's write end with a message; the receiver writes through the descriptor it
// got, and the sender reads that from the pipe it kept.
void pass_a_pipe(json_channel<ipckit::net::conn>& from, json_channel<ipckit::net::conn>& to) {
  int pipe_fds[2];
  ASSERT_EQ(::pipe2(pipe_fds, O_CLOEXEC), 0);
  unique_fd read_end(pipe_fds[0]), write_end(pipe_fds[1]);
  ipckit::error_code ec;
  const int passed[] = {write_end.get()};
  from.send({{"here", "a pipe"}}, passed, ec);
  ASSERT_FALSE(ec) << ec.message();
  write_end.reset();  // only the receiver's copy is left

  std::vector<unique_fd> received;
  const json message = to.receive(received, ec);
  ASSERT_FALSE(ec) << ec.message();
  EXPECT_EQ(message["here"], "a pipe");
  ASSERT_EQ(received.size(), 1u);
  EXPECT_TRUE(::fcntl(received[0].get(), F_GETFD) & FD_CLOEXEC);
  ASSERT_EQ(::write(received[0].get(), "ok", 2), 2);
  received.clear();  // the last write end: the reader sees EOF after "ok"
  char buffer[8];
  EXPECT_EQ(::read(read_end.get(), buffer, sizeof buffer), 2);
  EXPECT_EQ(std::string(buffer, 2), "ok");
  EXPECT_EQ(::read(read_end.get(), buffer, sizeof buffer), 0);
}

TEST(json_channel_fds, a_descriptor_rides_with_a_length_prefixed_message_on_unix_stream) {
  ipckit::event_loop loop;
  auto [a, b] = conn_pair(loop, SOCK_STREAM, "unix");
  json_channel<ipckit::net::conn> left(std::move(a)), right(std::move(b));
  pass_a_pipe(left, right);
  // Messages without descriptors still flow, before and after.
  left.send({{"plain", true}});
  std::vector<unique_fd> none;
  ipckit::error_code ec;
  EXPECT_EQ(right.receive(none, ec)["plain"], true);
  EXPECT_TRUE(none.empty());
  pass_a_pipe(right, left);
}

TEST(json_channel_fds, a_descriptor_rides_with_a_datagram_on_unixpacket) {
  ipckit::event_loop loop;
  auto [a, b] = conn_pair(loop, SOCK_SEQPACKET, "unixpacket");
  json_channel<ipckit::net::conn> left(std::move(a), {framing::datagram}),
      right(std::move(b), {framing::datagram});
  pass_a_pipe(left, right);
}

}  // namespace
