// The descriptor mode of conns and packet_conns (docs/net.md, "Blocking and non-blocking
// mode"): they start blocking, the first async operation sets O_NONBLOCK and it stays,
// release() puts back the mode the descriptor came in.
#include "net_test_util.hpp"

#include <boost/asio/read.hpp>
#include <boost/asio/write.hpp>

#include <fcntl.h>
#include <sys/socket.h>

#include <optional>

namespace {

namespace net = ipckit::net;
namespace asio = boost::asio;
using ipckit::error_code;
using ipckit::test::run_until;

bool non_blocking(int fd) { return (::fcntl(fd, F_GETFL) & O_NONBLOCK) != 0; }

class blocking_mode : public ipckit::test::temp_dir_test {
 protected:
  std::pair<net::conn, net::conn> pair_on(const std::string& network) {
    return ipckit::test::connected_pair(ex, network, dir());
  }

  asio::io_context io;
  net::executor_type ex = io.get_executor();
};

TEST_F(blocking_mode, dialed_accepted_and_packet_conns_start_blocking_and_stay_so_in_blocking_use) {
  for (std::string network : {"tcp4", "unix", "unixpacket", "udp4", "unixgram"}) {
    auto [c, other] = pair_on(network);
    EXPECT_FALSE(non_blocking(c.native_handle())) << network << ": dialed";
    EXPECT_FALSE(non_blocking(other.native_handle())) << network << ": accepted";
    char buf[8];
    c.write_some(asio::buffer("ping", 4));
    EXPECT_EQ(other.read_some(asio::buffer(buf)), 4u) << network;
    other.write_some(asio::buffer("pong", 4));
    EXPECT_EQ(c.read_some(asio::buffer(buf)), 4u) << network;
    EXPECT_FALSE(non_blocking(c.native_handle())) << network << ": after blocking calls";
    EXPECT_FALSE(non_blocking(other.native_handle())) << network << ": after blocking calls";
  }
}

TEST_F(blocking_mode, async_dial_and_async_accept_give_blocking_conns) {
  net::listener l = net::listen(ex, "unix", (dir() / "s.sock").string());
  std::optional<net::conn> dialed, accepted;
  net::async_dial(ex, "unix", l.addr().to_string(), [&](error_code ec, net::conn c) {
    EXPECT_FALSE(ec) << ec.message();
    dialed.emplace(std::move(c));
  });
  l.async_accept([&](error_code ec, net::conn c) {
    EXPECT_FALSE(ec) << ec.message();
    accepted.emplace(std::move(c));
  });
  ASSERT_TRUE(run_until(io, [&] { return dialed && accepted; }));
  EXPECT_FALSE(non_blocking(dialed->native_handle()));
  EXPECT_FALSE(non_blocking(accepted->native_handle()));
  EXPECT_TRUE(non_blocking(l.native_handle())) << "the listener waits on the loop";
}

TEST_F(blocking_mode, the_first_async_operation_sets_o_nonblock_and_it_stays_for_blocking_calls) {
  auto [c, other] = pair_on("unix");
  char buf[8];
  bool done = false;
  c.async_read_some(asio::buffer(buf), [&](error_code ec, std::size_t n) {
    EXPECT_FALSE(ec);
    EXPECT_EQ(n, 1u);
    done = true;
  });
  other.write_some(asio::buffer("a", 1));
  ASSERT_TRUE(run_until(io, [&] { return done; }));
  EXPECT_TRUE(non_blocking(c.native_handle()));
  EXPECT_FALSE(non_blocking(other.native_handle())) << "the peer's own socket is untouched";
  // Blocking calls keep working on it (read, EAGAIN, poll, read) and leave it so.
  other.write_some(asio::buffer("b", 1));
  EXPECT_EQ(c.read_some(asio::buffer(buf)), 1u);
  EXPECT_EQ(buf[0], 'b');
  EXPECT_TRUE(non_blocking(c.native_handle()));
}

TEST_F(blocking_mode, release_puts_back_the_mode_the_descriptor_came_in) {
  {
    auto [c, other] = pair_on("tcp4");
    char buf[4];
    bool done = false;
    c.async_write_some(asio::buffer("x", 1), [&](error_code, std::size_t) { done = true; });
    ASSERT_TRUE(run_until(io, [&] { return done; }));
    ASSERT_TRUE(non_blocking(c.native_handle()));
    ipckit::unique_fd fd = c.release();
    EXPECT_FALSE(non_blocking(fd.get())) << "dialed blocking, given back blocking";
    EXPECT_EQ(other.read_some(asio::buffer(buf)), 1u);
  }
  {
    // Adopted non-blocking: given back non-blocking.
    int pair[2];
    ASSERT_EQ(::socketpair(AF_UNIX, SOCK_STREAM | SOCK_CLOEXEC | SOCK_NONBLOCK, 0, pair), 0);
    ipckit::unique_fd peer(pair[1]);
    net::conn c(ex, "unix", ipckit::unique_fd(pair[0]));
    bool done = false;
    c.async_write_some(asio::buffer("x", 1), [&](error_code, std::size_t) { done = true; });
    ASSERT_TRUE(run_until(io, [&] { return done; }));
    EXPECT_TRUE(non_blocking(c.release().get()));
  }
  {
    // A packet_conn, the same.
    net::packet_conn p = net::listen_packet(ex, "udp4", "127.0.0.1:0");
    bool done = false;
    p.async_send_to(asio::buffer("x", 1), p.local_address(), [&](error_code, std::size_t) { done = true; });
    ASSERT_TRUE(run_until(io, [&] { return done; }));
    ASSERT_TRUE(non_blocking(p.native_handle()));
    EXPECT_FALSE(non_blocking(p.release().get()));
  }
}

// O_NONBLOCK belongs to the open file description: a descriptor passed with SCM_RIGHTS
// (or inherited, or dup'ed) sees the mode the conn has now, and the mode release() puts
// back.
TEST_F(blocking_mode, a_descriptor_shared_through_scm_rights_sees_the_documented_mode) {
  auto [c, other] = pair_on("unix");
  auto [carrier, receiver] = pair_on("unix");
  auto shared_copy = [&, &carrier = carrier, &receiver = receiver](int fd) {
    const int fds[] = {fd};
    carrier.write_with_fds(asio::buffer("f", 1), fds);
    std::vector<ipckit::unique_fd> got;
    char byte;
    receiver.read_with_fds(asio::buffer(&byte, 1), got, 1);
    EXPECT_EQ(got.size(), 1u);
    return got.empty() ? ipckit::unique_fd() : std::move(got.front());
  };
  EXPECT_FALSE(non_blocking(shared_copy(c.native_handle()).get())) << "fresh: blocking";
  bool done = false;
  c.async_write_some(asio::buffer("x", 1), [&](error_code, std::size_t) { done = true; });
  ASSERT_TRUE(run_until(io, [&] { return done; }));
  ipckit::unique_fd copy = shared_copy(c.native_handle());
  EXPECT_TRUE(non_blocking(copy.get())) << "after an async operation, for every holder";
  ipckit::unique_fd released = c.release();
  EXPECT_FALSE(non_blocking(copy.get())) << "release() puts blocking back for every holder";
}

}  // namespace
