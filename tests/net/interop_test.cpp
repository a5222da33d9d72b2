// Every network both ways against peers not written here: python3's socket module and
// socat. Payloads are checked byte for byte.
#include "net/net_test_paths.hpp"
#include "net_test_util.hpp"

#include <boost/asio/read.hpp>
#include <boost/asio/write.hpp>

namespace {

namespace net = ipckit::net;
namespace asio = boost::asio;
using ipckit::error_code;
using ipckit::test::peer_process;
using namespace std::chrono_literals;

std::string peer_script() { return std::string(IPCKIT_NET_TEST_DIR) + "/peer.py"; }
// The system's python3 when there is one: a version manager's shim costs a second a start.
std::string python() {
  return std::filesystem::exists("/usr/bin/python3") ? "/usr/bin/python3" : "python3";
}

bool is_stream(const std::string& net) { return net.starts_with("tcp") || net == "unix"; }
bool is_datagram(const std::string& net) { return net.starts_with("udp") || net == "unixgram"; }

// The same sizes and bytes as peer.py.
std::vector<std::size_t> sizes(const std::string& net) {
  if (is_stream(net)) return {1, 100, 1000, 100000};
  if (net == "unixpacket") return {1, 100, 1000, 8000};
  return {0, 1, 100, 1000, 8000};
}

std::string payload(std::size_t k, std::size_t n) {
  std::string data(n, '\0');
  for (std::size_t i = 0; i < n; ++i) data[i] = static_cast<char>((i * 7 + k) % 256);
  return data;
}


class interop : public ipckit::test::temp_dir_test,
                public ::testing::WithParamInterface<std::string> {
 protected:
  void SetUp() override {
    temp_dir_test::SetUp();
    if (GetParam().ends_with("6") && !ipckit::test::has_ipv6_loopback())
      GTEST_SKIP() << "no IPv6 loopback on this host";
  }
  std::string local_address() const {
    const std::string& n = GetParam();
    if (n.starts_with("unix")) return (dir() / "ipckit.sock").string();
    return n.ends_with("6") ? "[::1]:0" : "127.0.0.1:0";
  }
  asio::io_context io;
  net::executor_type ex = io.get_executor();
};

TEST_P(interop, ipckit_dials_python) {
  const std::string n = GetParam();
  const std::string where = n.starts_with("unix") ? (dir() / "python.sock").string()
                            : n.ends_with("6")    ? "[::1]:0"
                                                  : "127.0.0.1:0";
  peer_process py({python(), peer_script(), "listen", n, where});
  auto bound = py.read_line();
  ASSERT_TRUE(bound) << "python did not start";
  net::dialer d;
  if (n == "unixgram") d.local_address = (dir() / "client.sock").string();  // for the replies
  net::conn c = d.dial(ex, n, *bound);
  EXPECT_EQ(c.remote_address().to_string(), *bound);
  const auto list = sizes(n);
  for (std::size_t k = 0; k < list.size(); ++k) {
    const std::string data = payload(k, list[k]);
    std::string back(list[k] + (is_stream(n) ? 0 : 16), '\0');
    if (is_stream(n)) {
      asio::write(c, asio::buffer(data));
      asio::read(c, asio::buffer(back));
    } else {
      EXPECT_EQ(c.write_some(asio::buffer(data)), data.size());
      back.resize(c.read_some(asio::buffer(back)));
    }
    EXPECT_EQ(back, data) << "message " << k << " of " << list[k] << " bytes";
  }
  if (is_datagram(n)) c.write_some(asio::buffer(std::string("quit")));
  c.close();
  EXPECT_EQ(py.wait(), 0);
}

TEST_P(interop, python_dials_ipckit) {
  const std::string n = GetParam();
  const std::size_t count = sizes(n).size();
  std::string bound;
  std::optional<net::listener> l;
  std::optional<net::packet_conn> p;
  if (is_datagram(n)) {
    p.emplace(net::listen_packet(ex, n, local_address()));
    bound = p->local_address().to_string();
  } else {
    l.emplace(net::listen(ex, n, local_address()));
    bound = l->addr().to_string();
  }
  std::vector<std::string> argv{python(), peer_script(), "dial", n, bound};
  if (n == "unixgram") argv.push_back((dir() / "python.sock").string());
  peer_process py(argv);
  char buf[1 << 16];
  if (p) {
    for (std::size_t k = 0; k < count; ++k) {
      net::address from;
      const std::size_t got = p->receive_from(asio::buffer(buf), from);
      EXPECT_EQ(got, sizes(n)[k]);
      p->send_to(asio::buffer(buf, got), from);
    }
  } else {
    net::conn c = l->accept();
    EXPECT_EQ(c.local_address().to_string(), bound);
    for (;;) {
      error_code ec;
      const std::size_t got = c.read_some(asio::buffer(buf), ec);
      if (ec == asio::error::eof || (!is_stream(n) && got == 0)) break;
      ASSERT_FALSE(ec) << ec.message();
      asio::write(c, asio::buffer(buf, got));
    }
  }
  EXPECT_EQ(py.read_line(), "ok");
  EXPECT_EQ(py.wait(), 0);
}

INSTANTIATE_TEST_SUITE_P(net, interop,
                         ::testing::Values("tcp", "tcp4", "tcp6", "udp", "udp4", "udp6", "unix",
                                           "unixgram", "unixpacket"));

class socat_interop : public ipckit::test::temp_dir_test {
 protected:
  asio::io_context io;
  net::executor_type ex = io.get_executor();
};

// 64 MiB through a small send buffer, written and read back at the same time.
void stream_64_mib(asio::io_context& io, net::conn& c) {
  std::string data(64u << 20, '\0');
  for (std::size_t i = 0; i < data.size(); ++i) data[i] = static_cast<char>((i * 131 + i / 4096) % 251);
  std::string back(data.size(), '\0');
  bool written = false, read = false;
  error_code write_ec, read_ec;
  asio::async_write(c, asio::buffer(data), [&](error_code ec, std::size_t) {
    write_ec = ec;
    written = true;
  });
  asio::async_read(c, asio::buffer(back), [&](error_code ec, std::size_t) {
    read_ec = ec;
    read = true;
  });
  ASSERT_TRUE(ipckit::test::run_until(io, [&] { return written && read; }, 120s));
  EXPECT_FALSE(write_ec) << write_ec.message();
  EXPECT_FALSE(read_ec) << read_ec.message();
  EXPECT_TRUE(back == data) << "64 MiB echoed byte for byte";
}

net::dialer small_send_buffer() {
  net::dialer d;
  d.control = [](std::string_view, std::string_view, int fd, error_code& ec) {
    int size = 4096;
    if (::setsockopt(fd, SOL_SOCKET, SO_SNDBUF, &size, sizeof size) != 0) ec = ipckit::last_error();
  };
  return d;
}

TEST_F(socat_interop, unix_64_mib_through_socat_echo) {
  const std::string path = (dir() / "socat.sock").string();
  peer_process socat({"socat", "-d", "-d", "-lf", "/dev/stdout", "UNIX-LISTEN:" + path, "PIPE"});
  for (auto line = socat.read_line(); line; line = socat.read_line())
    if (line->find("listening on") != std::string::npos) break;
  net::conn c = small_send_buffer().dial(ex, "unix", path);
  stream_64_mib(io, c);
}

TEST_F(socat_interop, tcp4_64_mib_through_python_echo) {
  peer_process py({python(), peer_script(), "listen", "tcp4", "127.0.0.1:0"});
  auto bound = py.read_line();
  ASSERT_TRUE(bound);
  net::conn c = small_send_buffer().dial(ex, "tcp4", *bound);
  stream_64_mib(io, c);
}

void socat_dials(asio::io_context& io, net::listener& l, const std::string& socat_address) {
  const std::string data = payload(3, 16 << 10);
  peer_process socat({"socat", "-t", "5", "STDIO", socat_address});
  socat.write(data);
  socat.close_stdin();
  net::conn c = l.accept();
  char buf[4096];
  for (;;) {
    error_code ec;
    const std::size_t n = c.read_some(asio::buffer(buf), ec);
    if (ec) break;
    asio::write(c, asio::buffer(buf, n));
  }
  c.close();
  EXPECT_TRUE(socat.read_all() == data) << "socat got the echo back byte for byte";
  EXPECT_EQ(socat.wait(), 0);
  (void)io;
}

TEST_F(socat_interop, socat_dials_ipckit_tcp4) {
  net::listener l = net::listen(ex, "tcp4", "127.0.0.1:0");
  socat_dials(io, l, "TCP4:" + l.addr().to_string());
}

TEST_F(socat_interop, socat_dials_ipckit_unix) {
  const std::string path = (dir() / "ipckit.sock").string();
  net::listener l = net::listen(ex, "unix", path);
  socat_dials(io, l, "UNIX-CONNECT:" + path);
}

TEST_F(socat_interop, socat_sends_a_unixgram_datagram) {
  const std::string path = (dir() / "g.sock").string();
  net::packet_conn p = net::listen_packet(ex, "unixgram", path);
  peer_process socat({"socat", "-u", "STDIN", "UNIX-SENDTO:" + path});
  socat.write("one datagram");
  socat.close_stdin();
  char buf[64];
  net::address from;
  const std::size_t n = p.receive_from(asio::buffer(buf), from);
  EXPECT_EQ(std::string(buf, n), "one datagram");
  EXPECT_EQ(socat.wait(), 0);
}

}  // namespace
