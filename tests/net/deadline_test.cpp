// Read and write deadlines on a conn (Go's SetDeadline, SetReadDeadline,
// SetWriteDeadline): blocking and async forms, every dialable network, asio::read/write.
#include "net_test_util.hpp"

#include <boost/asio/bind_cancellation_slot.hpp>
#include <boost/asio/bind_executor.hpp>
#include <boost/asio/cancellation_signal.hpp>
#include <boost/asio/post.hpp>
#include <boost/asio/read.hpp>
#include <boost/asio/strand.hpp>
#include <boost/asio/write.hpp>

#include <fcntl.h>
#include <sys/socket.h>

namespace {

namespace net = ipckit::net;
namespace asio = boost::asio;
using ipckit::error_code;
using clock_type = std::chrono::steady_clock;
using namespace std::chrono_literals;

class deadline_test : public ipckit::test::temp_dir_test {
 protected:
  std::pair<net::conn, net::conn> pair_on(const std::string& network) {
    return ipckit::test::connected_pair(ex, network, dir());
  }

  asio::io_context io;
  net::executor_type ex = io.get_executor();
};

TEST_F(deadline_test, a_blocking_read_past_its_deadline_is_i_o_timeout_on_every_network) {
  for (std::string network : {"tcp4", "unix", "unixpacket", "udp4", "unixgram"}) {
    auto [c, other] = pair_on(network);
    c.set_read_deadline(clock_type::now() + 100ms);
    const auto start = clock_type::now();
    char buf[16];
    error_code ec;
    EXPECT_EQ(c.read_some(asio::buffer(buf), ec), 0u) << network;
    EXPECT_EQ(ec, ipckit::errc::timeout) << network;
    EXPECT_GE(clock_type::now() - start, 100ms) << network;
    EXPECT_LT(clock_type::now() - start, 5s) << network;
    // Cleared, the conn reads again.
    c.set_read_deadline({});
    other.write_some(asio::buffer("x", 1));
    EXPECT_EQ(c.read_some(asio::buffer(buf), ec), 1u) << network;
    EXPECT_FALSE(ec) << network << ": " << ec.message();
  }
}

// A deadline needs no O_NONBLOCK on a socket (MSG_DONTWAIT and poll): the descriptor's
// mode is left as it was, blocking (a dialed conn, an adopted blocking fd) or not.
TEST_F(deadline_test, a_deadline_leaves_the_descriptor_flags_as_they_were) {
  auto [c, other] = pair_on("unix");
  int pair[2];
  ASSERT_EQ(::socketpair(AF_UNIX, SOCK_STREAM | SOCK_CLOEXEC, 0, pair), 0);
  net::conn blocking(ex, "unix", ipckit::unique_fd(pair[0]));
  ipckit::unique_fd blocking_peer(pair[1]);
  ASSERT_EQ(::socketpair(AF_UNIX, SOCK_STREAM | SOCK_CLOEXEC | SOCK_NONBLOCK, 0, pair), 0);
  net::conn non_blocking(ex, "unix", ipckit::unique_fd(pair[0]));
  ipckit::unique_fd non_blocking_peer(pair[1]);
  for (net::conn* conn : {&c, &blocking, &non_blocking}) {
    const int before = ::fcntl(conn->native_handle(), F_GETFL);
    conn->set_read_deadline(clock_type::now() + 20ms);
    char buf[4];
    error_code ec;
    conn->read_some(asio::buffer(buf), ec);
    EXPECT_EQ(ec, ipckit::errc::timeout);
    EXPECT_EQ(::fcntl(conn->native_handle(), F_GETFL), before);
  }
  EXPECT_EQ(::fcntl(c.native_handle(), F_GETFL) & O_NONBLOCK, 0) << "a dialed conn starts blocking";
  EXPECT_EQ(::fcntl(blocking.native_handle(), F_GETFL) & O_NONBLOCK, 0) << "adopted as blocking";
  EXPECT_NE(::fcntl(non_blocking.native_handle(), F_GETFL) & O_NONBLOCK, 0) << "adopted as non-blocking";
}

TEST_F(deadline_test, the_thrown_form_reads_as_gos) {
  auto [c, other] = pair_on("tcp4");
  c.set_deadline(clock_type::now() + 20ms);
  const std::string expected = "read tcp4 " + c.local_address().to_string() + "->" +
                               c.remote_address().to_string() + ": i/o timeout";
  char buf[4];
  try {
    c.read_some(asio::buffer(buf));
    ADD_FAILURE() << "no exception";
  } catch (const ipckit::system_error& e) {
    EXPECT_EQ(std::string(e.what()), expected);
    EXPECT_EQ(e.code(), ipckit::errc::timeout);
  }
}

TEST_F(deadline_test, a_deadline_already_past_fails_at_once_even_with_data_waiting) {
  auto [c, other] = pair_on("unix");
  asio::write(other, asio::buffer(std::string("waiting")));
  c.set_read_deadline(clock_type::now() - 1s);
  char buf[16];
  error_code ec;
  EXPECT_EQ(c.read_some(asio::buffer(buf), ec), 0u);
  EXPECT_EQ(ec, ipckit::errc::timeout);
  std::optional<error_code> async_result;
  c.async_read_some(asio::buffer(buf), [&](error_code e, std::size_t) { async_result = e; });
  EXPECT_FALSE(async_result) << "completed inside the initiating call";
  ASSERT_TRUE(ipckit::test::run_until(io, [&] { return async_result.has_value(); }));
  EXPECT_EQ(*async_result, ipckit::errc::timeout);
  c.set_read_deadline({});
  EXPECT_EQ(c.read_some(asio::buffer(buf), ec), 7u) << "the data is still there";
}

TEST_F(deadline_test, an_async_read_past_its_deadline_completes_with_timeout_and_the_conn_lives_on) {
  auto [c, other] = pair_on("tcp4");
  c.set_read_deadline(clock_type::now() + 100ms);
  const auto start = clock_type::now();
  char buf[16];
  std::optional<error_code> first;
  c.async_read_some(asio::buffer(buf), [&](error_code ec, std::size_t) { first = ec; });
  ASSERT_TRUE(ipckit::test::run_until(io, [&] { return first.has_value(); }));
  EXPECT_EQ(*first, ipckit::errc::timeout);
  EXPECT_GE(clock_type::now() - start, 100ms);
  // A later deadline, and data before it: the read succeeds.
  c.set_read_deadline(clock_type::now() + 10s);
  std::optional<std::size_t> second;
  c.async_read_some(asio::buffer(buf), [&](error_code ec, std::size_t n) {
    EXPECT_FALSE(ec) << ec.message();
    second = n;
  });
  asio::write(other, asio::buffer(std::string("late")));
  ASSERT_TRUE(ipckit::test::run_until(io, [&] { return second.has_value(); }));
  EXPECT_EQ(std::string(buf, *second), "late");
}

// A peer that never reads: the send buffer fills and the write waits.
void shrink_send_buffer(net::conn& c) {
  const int size = 4096;
  ::setsockopt(c.native_handle(), SOL_SOCKET, SO_SNDBUF, &size, sizeof size);
}

TEST_F(deadline_test, a_write_deadline_stops_asio_write_to_a_peer_that_does_not_read) {
  auto [c, silent] = pair_on("unix");
  shrink_send_buffer(c);
  const std::string big(8 << 20, 'w');
  c.set_write_deadline(clock_type::now() + 200ms);
  error_code ec;
  const std::size_t sent = asio::write(c, asio::buffer(big), ec);
  EXPECT_EQ(ec, ipckit::errc::timeout);
  EXPECT_LT(sent, big.size());
  // Async: the same, from a fresh deadline.
  c.set_write_deadline(clock_type::now() + 200ms);
  std::optional<error_code> async_result;
  asio::async_write(c, asio::buffer(big), [&](error_code e, std::size_t) { async_result = e; });
  ASSERT_TRUE(ipckit::test::run_until(io, [&] { return async_result.has_value(); }));
  EXPECT_EQ(*async_result, ipckit::errc::timeout);
}

TEST_F(deadline_test, asio_read_stops_at_the_deadline_with_what_arrived) {
  auto [c, other] = pair_on("tcp4");
  asio::write(other, asio::buffer(std::string("part")));
  c.set_read_deadline(clock_type::now() + 100ms);
  char buf[64];
  std::optional<error_code> result;
  std::size_t got = 0;
  asio::async_read(c, asio::buffer(buf), [&](error_code ec, std::size_t n) {
    result = ec;
    got = n;
  });
  ASSERT_TRUE(ipckit::test::run_until(io, [&] { return result.has_value(); }));
  EXPECT_EQ(*result, ipckit::errc::timeout);
  EXPECT_EQ(std::string(buf, got), "part");
}

TEST_F(deadline_test, a_cancellation_slot_still_cancels_a_read_that_has_a_deadline) {
  auto [c, other] = pair_on("tcp4");
  c.set_read_deadline(clock_type::now() + 10s);
  char buf[8];
  asio::cancellation_signal stop;
  std::optional<error_code> result;
  c.async_read_some(asio::buffer(buf), asio::bind_cancellation_slot(stop.slot(), [&](error_code ec, std::size_t) {
                      result = ec;
                    }));
  asio::post(ex, [&] { stop.emit(asio::cancellation_type::terminal); });
  ASSERT_TRUE(ipckit::test::run_until(io, [&] { return result.has_value(); }));
  EXPECT_EQ(*result, asio::error::operation_aborted) << "a cancel is not a timeout";
}

TEST_F(deadline_test, the_handler_runs_on_its_own_executor) {
  auto [c, other] = pair_on("tcp4");
  auto strand = asio::make_strand(io);
  c.set_read_deadline(clock_type::now() + 50ms);
  char buf[8];
  bool on_strand = false, done = false;
  c.async_read_some(asio::buffer(buf), asio::bind_executor(strand, [&](error_code ec, std::size_t) {
                      on_strand = strand.running_in_this_thread();
                      done = ec == ipckit::errc::timeout;
                    }));
  ASSERT_TRUE(ipckit::test::run_until(io, [&] { return done; }));
  EXPECT_TRUE(on_strand);
}

// Go's PacketConn deadlines: receive_from and send_to, blocking and async, with the
// peer's address carried through the MSG_DONTWAIT path.
TEST_F(deadline_test, packet_conn_deadlines_bound_receive_from_and_send_to_blocking_and_async) {
  for (std::string network : {"udp4", "unixgram"}) {
    const bool unix_net = network == "unixgram";
    net::packet_conn a = net::listen_packet(ex, network, unix_net ? (dir() / "a.sock").string() : "127.0.0.1:0");
    net::packet_conn b = net::listen_packet(ex, network, unix_net ? (dir() / "b.sock").string() : "127.0.0.1:0");
    char buf[16];
    net::address from;
    error_code ec;

    a.set_read_deadline(clock_type::now() + 100ms);
    const auto start = clock_type::now();
    EXPECT_EQ(a.receive_from(asio::buffer(buf), from, ec), 0u) << network;
    EXPECT_EQ(ec, ipckit::errc::timeout) << network;
    EXPECT_GE(clock_type::now() - start, 100ms) << network;

    std::optional<error_code> async_ec;
    a.set_read_deadline(clock_type::now() + 100ms);
    a.async_receive_from(asio::buffer(buf), from, [&](error_code e, std::size_t) { async_ec = e; });
    ASSERT_TRUE(ipckit::test::run_until(io, [&] { return async_ec.has_value(); })) << network;
    EXPECT_EQ(*async_ec, ipckit::errc::timeout) << network;

    // Before the deadline, a datagram and its sender arrive, both ways.
    a.set_read_deadline(clock_type::now() + 10s);
    b.set_write_deadline(clock_type::now() + 10s);
    EXPECT_EQ(b.send_to(asio::buffer("one", 3), a.local_address()), 3u) << network;
    EXPECT_EQ(a.receive_from(asio::buffer(buf), from, ec), 3u) << network;
    EXPECT_FALSE(ec) << network << ": " << ec.message();
    EXPECT_EQ(from, b.local_address()) << network;
    std::optional<std::size_t> sent, got;
    b.async_send_to(asio::buffer("two!", 4), a.local_address(), [&](error_code e, std::size_t n) {
      EXPECT_FALSE(e) << e.message();
      sent = n;
    });
    a.async_receive_from(asio::buffer(buf), from, [&](error_code e, std::size_t n) {
      EXPECT_FALSE(e) << e.message();
      got = n;
    });
    ASSERT_TRUE(ipckit::test::run_until(io, [&] { return sent && got; })) << network;
    EXPECT_EQ(std::string(buf, *got), "two!") << network;
    EXPECT_EQ(from, b.local_address()) << network;

    // A write deadline already past fails at once, sending nothing.
    b.set_write_deadline(clock_type::now() - 1ms);
    EXPECT_EQ(b.send_to(asio::buffer("x", 1), a.local_address(), ec), 0u) << network;
    EXPECT_EQ(ec, ipckit::errc::timeout) << network;
    std::optional<error_code> send_ec;
    b.async_send_to(asio::buffer("x", 1), a.local_address(), [&](error_code e, std::size_t) { send_ec = e; });
    ASSERT_TRUE(ipckit::test::run_until(io, [&] { return send_ec.has_value(); })) << network;
    EXPECT_EQ(*send_ec, ipckit::errc::timeout) << network;
    a.set_read_deadline(clock_type::now() + 20ms);
    EXPECT_EQ(a.receive_from(asio::buffer(buf), from, ec), 0u) << network;
    EXPECT_EQ(ec, ipckit::errc::timeout) << network << ": a datagram was sent after the deadline";
  }
}

}  // namespace
