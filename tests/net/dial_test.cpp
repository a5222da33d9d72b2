// Dial, listen and their errors, synchronous forms.
#include "net_test_util.hpp"

#include <boost/asio/read.hpp>
#include <boost/asio/write.hpp>

#include <net/if.h>
#include <netinet/in.h>
#include <netinet/tcp.h>
#include <sys/stat.h>

namespace {

namespace net = ipckit::net;
using ipckit::error_code;
using namespace std::chrono_literals;

class dial_test : public ipckit::test::temp_dir_test {
 protected:
  boost::asio::io_context io;
  net::executor_type ex = io.get_executor();
};

std::string thrown_text(const std::function<void()>& call) {
  try {
    call();
  } catch (const ipckit::system_error& e) {
    return e.what();
  }
  return "(no error)";
}

TEST_F(dial_test, errors_read_as_gos) {
  EXPECT_EQ(thrown_text([&] { net::dial(ex, "tcp", "127.0.0.1:1"); }),
            "dial tcp 127.0.0.1:1: connect: connection refused");
  EXPECT_EQ(thrown_text([&] { net::dial(ex, "tcp", "127.0.0.1"); }),
            "dial tcp: address 127.0.0.1: missing port in address");
  EXPECT_EQ(thrown_text([&] { net::dial(ex, "tcpx", "127.0.0.1:80"); }),
            "dial tcpx 127.0.0.1:80: unknown network tcpx");
  EXPECT_EQ(thrown_text([&] { net::dial(ex, "tcp", "127.0.0.1:--badport--"); }),
            "dial tcp: lookup tcp/--badport--: unknown port");
  EXPECT_EQ(thrown_text([&] { net::dial(ex, "tcp", "127.0.0.1:70000"); }),
            "dial tcp: address 70000: invalid port");
  EXPECT_EQ(thrown_text([&] { net::dial(ex, "ip4:nosuchproto", "127.0.0.1"); }),
            "dial ip4:nosuchproto 127.0.0.1: unknown IP protocol specified");
  EXPECT_EQ(thrown_text([&] { net::dial(ex, "unix", (dir() / "none.sock").string()); }),
            "dial unix " + (dir() / "none.sock").string() + ": connect: no such file or directory");
  EXPECT_EQ(thrown_text([&] { net::dial(ex, "tcp", "nosuchhost.invalid:80"); }),
            "dial tcp: lookup nosuchhost.invalid: no such host");
}

TEST_F(dial_test, error_code_forms_report_the_errc) {
  struct row {
    const char* network;
    const char* address;
    error_code want;
  } const table[] = {
      // the network
      {"tcpx", "127.0.0.1:80", net::errc::unknown_network},
      {"ip", "127.0.0.1", net::errc::unknown_network},
      {"ip4:nosuchproto", "127.0.0.1", net::errc::unknown_protocol},
      // the address
      {"tcp", "127.0.0.1", net::errc::missing_port},
      {"tcp", "::1:80", net::errc::too_many_colons},
      {"tcp", "[::1:80", net::errc::missing_bracket},
      {"tcp", "127.0.0.1:99999", net::errc::invalid_port},
      {"tcp", "127.0.0.1:nosuchservice", net::errc::unknown_port},
      {"unix", "", net::errc::missing_address},
      // the family (an IPv4-mapped address counts as IPv4)
      {"tcp4", "[::1]:80", net::errc::no_suitable_address},
      {"udp4", "[::1]:80", net::errc::no_suitable_address},
      {"tcp6", "127.0.0.1:80", net::errc::no_suitable_address},
      {"tcp6", "[::ffff:127.0.0.1]:80", net::errc::no_suitable_address},
      // the kernel
      {"tcp", "127.0.0.1:1", error_code(ECONNREFUSED, boost::system::system_category())},
  };
  for (const auto& r : table) {
    error_code ec;
    net::conn c = net::dial(ex, r.network, r.address, ec);
    EXPECT_EQ(ec, r.want) << r.network << " " << r.address << ": " << ec.message();
    EXPECT_FALSE(c.is_open());
  }
}

TEST_F(dial_test, wrong_operation_for_the_network) {
  error_code ec;
  net::listen(ex, "udp", "127.0.0.1:0", ec);
  EXPECT_EQ(ec, net::errc::wrong_operation);
  net::listen(ex, "unixgram", (dir() / "g.sock").string(), ec);
  EXPECT_EQ(ec, net::errc::wrong_operation);
  net::listen_packet(ex, "tcp", "127.0.0.1:0", ec);
  EXPECT_EQ(ec, net::errc::wrong_operation);
  net::listen_packet(ex, "unixpacket", (dir() / "p.sock").string(), ec);
  EXPECT_EQ(ec, net::errc::wrong_operation);
  EXPECT_EQ(thrown_text([&] { net::listen(ex, "udp", "127.0.0.1:0"); }),
            "listen udp 127.0.0.1:0: address 127.0.0.1:0: unexpected address type");
}

TEST_F(dial_test, unix_path_too_long_is_a_clear_error) {
  const std::string path = (dir() / std::string(120, 'x')).string();
  error_code ec;
  net::dial(ex, "unix", path, ec);
  EXPECT_EQ(ec, net::errc::path_too_long);
  net::listen(ex, "unix", path, ec);
  EXPECT_EQ(ec, net::errc::path_too_long);
  EXPECT_FALSE(std::filesystem::exists(path.substr(0, 107)));
  EXPECT_EQ(thrown_text([&] { net::listen(ex, "unix", path); }),
            "listen unix " + path + ": unix socket path too long (at most 107 bytes)");
}

TEST_F(dial_test, tcp4_round_trip_with_go_addresses) {
  net::listener l = net::listen(ex, "tcp4", "127.0.0.1:0");
  const std::string where = l.addr().to_string();
  ASSERT_TRUE(where.starts_with("127.0.0.1:")) << where;
  net::conn client = net::dial(ex, "tcp4", where);
  net::conn server = l.accept();
  EXPECT_EQ(client.remote_address().to_string(), where);
  EXPECT_EQ(server.local_address().to_string(), where);
  EXPECT_EQ(server.remote_address().to_string(), client.local_address().to_string());
  EXPECT_EQ(client.remote_address().network(), "tcp");
  boost::asio::write(client, boost::asio::buffer(std::string("ping")));
  std::string got(4, '\0');
  boost::asio::read(server, boost::asio::buffer(got));
  EXPECT_EQ(got, "ping");
  EXPECT_NE(::fcntl(server.native_handle(), F_GETFD) & FD_CLOEXEC, 0);
  EXPECT_NE(::fcntl(client.native_handle(), F_GETFD) & FD_CLOEXEC, 0);
  // EOF after the peer's shutdown of its write side.
  client.shutdown(net::conn::socket_type::shutdown_send);
  error_code ec;
  char byte;
  server.read_some(boost::asio::buffer(&byte, 1), ec);
  EXPECT_EQ(ec, boost::asio::error::eof);
}

// Go's CloseRead and CloseWrite: shutdown of one direction leaves the other working.
TEST_F(dial_test, shutdown_of_either_direction_leaves_the_other) {
  for (std::string network : {"tcp4", "unix"}) {
    const std::string where = network == "unix" ? (dir() / "half.sock").string() : "127.0.0.1:0";
    net::listener l = net::listen(ex, network, where);
    net::conn client = net::dial(ex, network, l.addr().to_string());
    net::conn server = l.accept();
    char byte = 0;
    error_code ec;
    // The client stops reading: its reads see EOF, its writes still arrive.
    client.shutdown(net::conn::socket_type::shutdown_receive);
    EXPECT_EQ(client.read_some(boost::asio::buffer(&byte, 1), ec), 0u) << network;
    EXPECT_EQ(ec, boost::asio::error::eof) << network;
    boost::asio::write(client, boost::asio::buffer(std::string("w")));
    EXPECT_EQ(server.read_some(boost::asio::buffer(&byte, 1)), 1u) << network;
    EXPECT_EQ(byte, 'w') << network;
    // The server stops writing: the client sees EOF, the server still reads.
    server.shutdown(net::conn::socket_type::shutdown_send);
    boost::asio::write(client, boost::asio::buffer(std::string("r")));
    EXPECT_EQ(server.read_some(boost::asio::buffer(&byte, 1)), 1u) << network;
    EXPECT_EQ(byte, 'r') << network;
    error_code write_ec;
    server.write_some(boost::asio::buffer("x", 1), write_ec);
    EXPECT_EQ(write_ec, boost::asio::error::broken_pipe) << network;
  }
}

TEST_F(dial_test, tcp_listens_on_both_families) {
  if (!ipckit::test::has_ipv6_loopback()) GTEST_SKIP() << "no IPv6 loopback on this host";
  net::listener l = net::listen(ex, "tcp", ":0");
  const int port = l.addr().port();
  EXPECT_EQ(l.addr().to_string(), "[::]:" + std::to_string(port));
  net::conn v4 = net::dial(ex, "tcp4", "127.0.0.1:" + std::to_string(port));
  net::conn v6 = net::dial(ex, "tcp6", "[::1]:" + std::to_string(port));
  EXPECT_EQ(v6.remote_address().to_string(), "[::1]:" + std::to_string(port));
  net::conn a = l.accept();
  net::conn b = l.accept();
  EXPECT_TRUE(a.is_open() && b.is_open());
}

TEST_F(dial_test, empty_host_dials_the_local_system) {
  net::listener l = net::listen(ex, "tcp4", ":0");
  EXPECT_EQ(l.addr().to_string(), "0.0.0.0:" + std::to_string(l.addr().port()));
  net::conn c = net::dial(ex, "tcp4", ":" + std::to_string(l.addr().port()));
  EXPECT_EQ(c.remote_address().to_string(), "127.0.0.1:" + std::to_string(l.addr().port()));
}

TEST_F(dial_test, host_names_resolve) {
  net::listener l = net::listen(ex, "tcp4", "127.0.0.1:0");
  net::conn c = net::dial(ex, "tcp4", "localhost:" + std::to_string(l.addr().port()));
  EXPECT_EQ(c.remote_address().to_string(), l.addr().to_string());
}

TEST_F(dial_test, unix_paths_abstract_names_and_autobind) {
  const std::string path = (dir() / "s.sock").string();
  {
    net::listener l = net::listen(ex, "unix", path);
    struct stat st {};
    ASSERT_EQ(::stat(path.c_str(), &st), 0);
    EXPECT_EQ(st.st_mode & 0777, 0600u);
    net::conn c = net::dial(ex, "unix", path);
    net::conn s = l.accept();
    EXPECT_EQ(c.remote_address().to_string(), path);
    EXPECT_EQ(c.local_address().to_string(), "");  // unnamed, as Go prints it
    EXPECT_EQ(l.addr().network(), "unix");
  }
  EXPECT_FALSE(std::filesystem::exists(path)) << "unlinked on close";

  const std::string abstract = "@ipckit-test-" + std::to_string(::getpid()) + "-abstract";
  net::listener al = net::listen(ex, "unixpacket", abstract);
  EXPECT_EQ(al.addr().to_string(), abstract);
  net::conn ac = net::dial(ex, "unixpacket", abstract);
  EXPECT_EQ(ac.remote_address().to_string(), abstract);

  net::listener auto_bound = net::listen(ex, "unix", "");
  const std::string name = auto_bound.addr().to_string();
  EXPECT_TRUE(name.starts_with("@")) << name;
  net::conn to_auto = net::dial(ex, "unix", name);
  EXPECT_TRUE(to_auto.is_open());
}

TEST_F(dial_test, listener_mode_and_unlink_only_if_ours) {
  const std::string path = (dir() / "m.sock").string();
  net::listen_config config;
  config.mode = 0660;
  net::listener l = net::listen(ex, "unix", path, config);
  struct stat st {};
  ASSERT_EQ(::stat(path.c_str(), &st), 0);
  EXPECT_EQ(st.st_mode & 0777, 0660u);
  // Someone else replaced the path: closing must not remove their file.
  std::filesystem::remove(path);
  net::listener successor = net::listen(ex, "unix", path);
  l.close();
  EXPECT_TRUE(std::filesystem::exists(path));
  successor.close();
  EXPECT_FALSE(std::filesystem::exists(path));
}

TEST_F(dial_test, stale_socket_is_recovered_when_asked) {
  const std::string path = (dir() / "stale.sock").string();
  {
    net::listen_config keep;
    keep.unlink_on_close = false;
    net::listener gone = net::listen(ex, "unix", path, keep);
  }
  ASSERT_TRUE(std::filesystem::exists(path));
  error_code ec;
  net::listen(ex, "unix", path, ec);
  EXPECT_EQ(ec, boost::system::errc::address_in_use);
  net::listen_config recover;
  recover.recover_stale = true;
  net::listener l = net::listen(ex, "unix", path, recover, ec);
  ASSERT_FALSE(ec) << ec.message();
  net::conn c = net::dial(ex, "unix", path);
  EXPECT_TRUE(l.accept().is_open());
  // A live socket is never taken over.
  net::listen(ex, "unix", path, recover, ec);
  EXPECT_EQ(ec, boost::system::errc::address_in_use);
}

TEST_F(dial_test, packet_networks_keep_boundaries_and_zero_byte_datagrams) {
  net::packet_conn server = net::listen_packet(ex, "udp4", "127.0.0.1:0");
  EXPECT_EQ(server.local_address().network(), "udp");
  net::conn client = net::dial(ex, "udp4", server.local_address().to_string());
  client.write_some(boost::asio::buffer(std::string("one")));
  client.write_some(boost::asio::buffer(std::string()));
  client.write_some(boost::asio::buffer(std::string("three")));
  char buf[64];
  net::address from;
  EXPECT_EQ(server.receive_from(boost::asio::buffer(buf), from), 3u);
  EXPECT_EQ(from.to_string(), client.local_address().to_string());
  EXPECT_EQ(server.receive_from(boost::asio::buffer(buf), from), 0u);
  EXPECT_EQ(server.receive_from(boost::asio::buffer(buf), from), 5u);
  EXPECT_EQ(std::string(buf, 5), "three");
  server.send_to(boost::asio::buffer(std::string("back")), from);
  EXPECT_EQ(client.read_some(boost::asio::buffer(buf)), 4u);
  // Oversize is an error, never a truncation.
  std::string huge(70000, 'x');
  error_code ec;
  client.write_some(boost::asio::buffer(huge), ec);
  EXPECT_EQ(ec, boost::system::errc::message_size);
}

TEST_F(dial_test, unixgram_autobinds_and_replies) {
  const std::string path = (dir() / "g.sock").string();
  net::packet_conn server = net::listen_packet(ex, "unixgram", path);
  net::packet_conn client = net::listen_packet(ex, "unixgram", "");
  EXPECT_TRUE(client.local_address().to_string().starts_with("@"));
  client.send_to(boost::asio::buffer(std::string("hi")), net::resolve_address("unixgram", path));
  char buf[16];
  net::address from;
  EXPECT_EQ(server.receive_from(boost::asio::buffer(buf), from), 2u);
  EXPECT_EQ(from.to_string(), client.local_address().to_string());
  server.send_to(boost::asio::buffer(std::string("ok")), from);
  EXPECT_EQ(client.receive_from(boost::asio::buffer(buf), from), 2u);
  EXPECT_EQ(from.to_string(), path);
}

TEST_F(dial_test, adopted_fd_is_a_conn) {
  int pair[2];
  ASSERT_EQ(::socketpair(AF_UNIX, SOCK_SEQPACKET | SOCK_CLOEXEC, 0, pair), 0);
  net::conn a(ex, "unixpacket", ipckit::unique_fd(pair[0]));
  net::conn b(ex, "unixpacket", ipckit::unique_fd(pair[1]));
  a.write_some(boost::asio::buffer(std::string("ab")));
  a.write_some(boost::asio::buffer(std::string("c")));
  char buf[8];
  EXPECT_EQ(b.read_some(boost::asio::buffer(buf)), 2u);
  EXPECT_EQ(b.read_some(boost::asio::buffer(buf)), 1u);
}

// Go's FilePacketConn: a datagram socket made elsewhere becomes a packet_conn, which
// exposes the same descriptor.
TEST_F(dial_test, adopted_fd_is_a_packet_conn) {
  ipckit::unique_fd fd(::socket(AF_INET, SOCK_DGRAM | SOCK_CLOEXEC, 0));
  ASSERT_TRUE(fd);
  sockaddr_in in{};
  in.sin_family = AF_INET;
  in.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
  ASSERT_EQ(::bind(fd.get(), reinterpret_cast<sockaddr*>(&in), sizeof in), 0);
  const int raw = fd.get();
  net::packet_conn p(ex, "udp4", std::move(fd));
  EXPECT_EQ(p.native_handle(), raw);
  const std::string bound = p.local_address().to_string();
  EXPECT_TRUE(bound.starts_with("127.0.0.1:")) << bound;
  net::conn c = net::dial(ex, "udp4", bound);
  c.write_some(boost::asio::buffer(std::string("adopted")));
  char buf[16];
  net::address from;
  const std::size_t n = p.receive_from(boost::asio::buffer(buf), from);
  EXPECT_EQ(std::string(buf, n), "adopted");
  EXPECT_EQ(from.to_string(), c.local_address().to_string());
  p.send_to(boost::asio::buffer(buf, n), from);
  EXPECT_EQ(c.read_some(boost::asio::buffer(buf)), n);
}

TEST_F(dial_test, write_to_a_closed_peer_is_broken_pipe_not_sigpipe) {
  net::listener l = net::listen(ex, "unix", (dir() / "p.sock").string());
  net::conn c = net::dial(ex, "unix", (dir() / "p.sock").string());
  l.accept().close();
  error_code ec;
  std::string data(1 << 16, 'x');
  for (int i = 0; i < 64 && !ec; ++i) c.write_some(boost::asio::buffer(data), ec);
  EXPECT_EQ(ec, boost::system::errc::broken_pipe);
}

TEST_F(dial_test, dialer_local_address_and_control_hook) {
  net::listener l = net::listen(ex, "tcp4", "127.0.0.1:0");
  net::dialer d;
  d.local_address = "127.0.0.1:0";
  int seen_fd = -1;
  std::string seen_net;
  d.control = [&](std::string_view n, std::string_view, int fd, error_code&) {
    seen_fd = fd;
    seen_net = n;
  };
  net::conn c = d.dial(ex, "tcp4", l.addr().to_string());
  EXPECT_GE(seen_fd, 0);
  EXPECT_EQ(seen_net, "tcp4");
  int keepalive = 0;
  socklen_t size = sizeof keepalive;
  ::getsockopt(c.native_handle(), SOL_SOCKET, SO_KEEPALIVE, &keepalive, &size);
  EXPECT_EQ(keepalive, 1);
  // A control hook's error fails the dial.
  d.control = [](std::string_view, std::string_view, int, error_code& ec) {
    ec = boost::system::errc::make_error_code(boost::system::errc::permission_denied);
  };
  error_code ec;
  d.dial(ex, "tcp4", l.addr().to_string(), ec);
  EXPECT_EQ(ec, boost::system::errc::permission_denied);
}

TEST_F(dial_test, dial_timeout_against_a_full_backlog) {
  ipckit::test::full_backlog full;
  if (!full.full()) GTEST_SKIP() << "could not fill a listener's accept queue here";
  net::dialer d;
  d.timeout = 200ms;
  const auto start = std::chrono::steady_clock::now();
  error_code ec;
  d.dial(ex, "tcp4", full.address(), ec);
  EXPECT_EQ(ec, ipckit::errc::timeout);
  EXPECT_LT(std::chrono::steady_clock::now() - start, 5s);
  try {
    d.dial(ex, "tcp4", full.address());
    FAIL();
  } catch (const ipckit::system_error& e) {
    EXPECT_EQ(std::string(e.what()), "dial tcp4 " + full.address() + ": i/o timeout");
  }
}

// Go's Dialer.Deadline: an absolute time; the earlier of it and the timeout applies.
TEST_F(dial_test, dialer_deadline_bounds_the_dial_and_the_earlier_bound_wins) {
  ipckit::test::full_backlog full;
  if (!full.full()) GTEST_SKIP() << "could not fill a listener's accept queue here";
  net::dialer d;
  d.timeout = 30s;
  const auto start = std::chrono::steady_clock::now();
  d.deadline = start + 200ms;
  error_code ec;
  d.dial(ex, "tcp4", full.address(), ec);
  const auto took = std::chrono::steady_clock::now() - start;
  EXPECT_EQ(ec, ipckit::errc::timeout);
  EXPECT_GE(took, 190ms);
  EXPECT_LT(took, 5s) << "the deadline, not the 30 s timeout";
  // A deadline already past fails without waiting.
  d.deadline = std::chrono::steady_clock::now() - 1s;
  d.dial(ex, "tcp4", full.address(), ec);
  EXPECT_EQ(ec, ipckit::errc::timeout);
}

int tcp_option(net::conn& c, int level, int option) {
  int value = -1;
  socklen_t size = sizeof value;
  ::getsockopt(c.native_handle(), level, option, &value, &size);
  return value;
}

// Go's KeepAlive: 0 is the default 15 s period (idle time and interval), a positive
// period is used as given, a negative one turns keep-alive off.
TEST_F(dial_test, keep_alive_period_is_gos_default_the_dialers_or_off) {
  net::listener l = net::listen(ex, "tcp4", "127.0.0.1:0");
  const struct {
    std::chrono::nanoseconds asked;
    int enabled, seconds;
  } cases[] = {{0s, 1, 15}, {7s, 1, 7}, {-1s, 0, -1}};
  for (const auto& c : cases) {
    net::dialer d;
    d.keep_alive = c.asked;
    net::conn conn = d.dial(ex, "tcp4", l.addr().to_string());
    l.accept();
    EXPECT_EQ(tcp_option(conn, SOL_SOCKET, SO_KEEPALIVE), c.enabled) << c.asked.count();
    if (c.seconds < 0) continue;
    EXPECT_EQ(tcp_option(conn, IPPROTO_TCP, TCP_KEEPIDLE), c.seconds) << c.asked.count();
    EXPECT_EQ(tcp_option(conn, IPPROTO_TCP, TCP_KEEPINTVL), c.seconds) << c.asked.count();
  }
}

// Go disables Nagle on every TCP connection, dialed or accepted; a control hook may
// turn it back on.
TEST_F(dial_test, tcp_connections_have_nagle_off_as_in_go) {
  for (const char* network : {"tcp4", "tcp"}) {
    net::listener l = net::listen(ex, network, "127.0.0.1:0");
    net::conn dialed = net::dial(ex, network, l.addr().to_string());
    net::conn accepted = l.accept();
    EXPECT_EQ(tcp_option(dialed, IPPROTO_TCP, TCP_NODELAY), 1) << network;
    EXPECT_EQ(tcp_option(accepted, IPPROTO_TCP, TCP_NODELAY), 1) << network;
  }
  net::listener l = net::listen(ex, "tcp4", "127.0.0.1:0");
  net::dialer d;
  d.control = [](std::string_view, std::string_view, int fd, ipckit::error_code&) {
    const int off = 0;
    ::setsockopt(fd, IPPROTO_TCP, TCP_NODELAY, &off, sizeof off);
  };
  net::conn nagle = d.dial(ex, "tcp4", l.addr().to_string());
  EXPECT_EQ(tcp_option(nagle, IPPROTO_TCP, TCP_NODELAY), 0);
}

// An IPv6 zone names an interface: resolved to its index, printed back by name as Go
// prints it; a numeric zone is an index.
TEST_F(dial_test, zones_resolve_to_the_interface_and_print_back) {
  const unsigned lo = ::if_nametoindex("lo");
  if (lo == 0) GTEST_SKIP() << "no interface named lo here";
  net::address named = net::resolve_address("tcp6", "[fe80::1%lo]:80");
  ASSERT_EQ(named.family(), AF_INET6);
  EXPECT_EQ(reinterpret_cast<const sockaddr_in6*>(named.data())->sin6_scope_id, lo);
  EXPECT_EQ(named.to_string(), "[fe80::1%lo]:80");
  EXPECT_EQ(named.port(), 80);
  net::address numbered = net::resolve_address("udp6", "[fe80::2%" + std::to_string(lo) + "]:53");
  EXPECT_EQ(reinterpret_cast<const sockaddr_in6*>(numbered.data())->sin6_scope_id, lo);
  EXPECT_EQ(numbered.to_string(), "[fe80::2%lo]:53");
}

}  // namespace
