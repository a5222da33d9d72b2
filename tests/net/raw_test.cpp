// Raw IP: an ICMP echo to 127.0.0.1 on ip4:icmp, when this process may open raw sockets.
#include "net_test_util.hpp"

#include <netinet/ip.h>
#include <netinet/ip_icmp.h>
#include <sys/socket.h>
#include <unistd.h>

#include <gmock/gmock.h>

namespace {

namespace net = ipckit::net;
namespace asio = boost::asio;
using ipckit::error_code;

std::uint16_t checksum(const unsigned char* data, std::size_t size) {
  std::uint32_t sum = 0;
  for (std::size_t i = 0; i + 1 < size; i += 2) sum += static_cast<std::uint32_t>(data[i] << 8 | data[i + 1]);
  if (size % 2) sum += static_cast<std::uint32_t>(data[size - 1] << 8);
  while (sum >> 16) sum = (sum & 0xffff) + (sum >> 16);
  return static_cast<std::uint16_t>(~sum);
}

TEST(raw_ip, icmp_echo_to_loopback) {
  asio::io_context io;
  error_code ec;
  net::packet_conn p = net::listen_packet(io.get_executor(), "ip4:icmp", "127.0.0.1", ec);
  if (ec == boost::system::errc::operation_not_permitted || ec == boost::system::errc::permission_denied)
    GTEST_SKIP() << "raw sockets need CAP_NET_RAW: " << ec.message();
  ASSERT_FALSE(ec) << ec.message();
  EXPECT_EQ(p.local_address().to_string(), "127.0.0.1");
  unsigned char echo[16] = {ICMP_ECHO, 0, 0, 0, 0x12, 0x34, 0, 1, 'i', 'p', 'c', 'k', 'i', 't', '!', '!'};
  const std::uint16_t sum = checksum(echo, sizeof echo);
  echo[2] = static_cast<unsigned char>(sum >> 8);
  echo[3] = static_cast<unsigned char>(sum & 0xff);
  p.send_to(asio::buffer(echo), net::resolve_address("ip4:icmp", "127.0.0.1"));
  // The socket sees our request and the kernel's reply; IPv4 raw reads include the IP header.
  bool replied = false;
  for (int i = 0; i < 4 && !replied; ++i) {
    unsigned char packet[256];
    net::address from;
    const std::size_t n = p.receive_from(asio::buffer(packet), from);
    ASSERT_GT(n, 20u);
    EXPECT_EQ(from.to_string(), "127.0.0.1");
    const std::size_t header = (packet[0] & 0x0f) * 4u;
    if (packet[header] == ICMP_ECHOREPLY) {
      replied = true;
      EXPECT_EQ(std::string(reinterpret_cast<char*>(packet + header + 8), 8), "ipckit!!");
    }
  }
  EXPECT_TRUE(replied);
}

TEST(raw_ip, dialed_ip_conn_sends_one_packet_per_write) {
  asio::io_context io;
  error_code ec;
  net::conn c = net::dial(io.get_executor(), "ip4:icmp", "127.0.0.1", ec);
  if (ec == boost::system::errc::operation_not_permitted || ec == boost::system::errc::permission_denied)
    GTEST_SKIP() << "raw sockets need CAP_NET_RAW: " << ec.message();
  ASSERT_FALSE(ec) << ec.message();
  EXPECT_EQ(c.remote_address().to_string(), "127.0.0.1");
  EXPECT_EQ(c.remote_address().network(), "ip");
}

// Without CAP_NET_RAW, dial and listen_packet on an ip network say what is missing. As
// root the ipckit command runs with CAP_NET_RAW dropped (setpriv); as a user, plainly.
TEST(raw_ip, without_cap_net_raw_the_error_says_so) {
  std::vector<std::string> prefix;
  const ipckit::unique_fd probe(::socket(AF_INET, SOCK_RAW | SOCK_CLOEXEC, IPPROTO_ICMP));
  if (probe) {
    if (::geteuid() != 0) GTEST_SKIP() << "this user has CAP_NET_RAW and cannot drop it here";
    prefix = {"setpriv", "--bounding-set", "-net_raw", "--inh-caps", "-net_raw", "--"};
  }
  const struct {
    const char* command;
    const char* expected;
  } cases[] = {
      {"dial", "dial ip4:icmp 127.0.0.1: socket (raw sockets need CAP_NET_RAW): operation not permitted\n"},
      {"listen", "listen ip4:icmp 127.0.0.1: socket (raw sockets need CAP_NET_RAW): operation not permitted\n"},
  };
  for (const auto& c : cases) {
    std::vector<std::string> argv = prefix;
    for (std::string word : {ipckit::test::cli_path(), std::string(c.command), std::string("ip4:icmp"),
                             std::string("127.0.0.1")})
      argv.push_back(word);
    auto result = ipckit::test::run_process(argv);
    EXPECT_EQ(result.exit_code, 1) << c.command << ": " << result.err;
    EXPECT_EQ(result.err, c.expected) << c.command;
  }
}

}  // namespace
