// Delay and packet loss on the veth, injected with `tc qdisc … netem` on A's side
// (egress of A's veth: every packet A sends). Delay needs netem: that test skips, saying
// why, when the kernel has no sch_netem. Loss falls back to an nftables rule dropping at
// random on B's ingress (the same packets), and skips only when neither is available.
#include "netns_test_util.hpp"

#include <boost/asio/read.hpp>
#include <boost/asio/write.hpp>

#include <algorithm>
#include <iostream>
#include <set>

namespace {

namespace net = ipckit::net;
namespace asio = boost::asio;
using ipckit::error_code;
using ipckit::test::enter_netns;
using ipckit::test::netns_addresses;
using ipckit::test::netns_test;
using ipckit::test::run_until;
using namespace std::chrono_literals;

class netns_netem_test : public netns_test {
 protected:
  /// Adds netem with `args` on A's veth; false (with why_) when netem is unavailable.
  bool netem_on_a(const std::vector<std::string>& args) { return ns().netem(ns().a(), args, why_); }
  /// Random loss of `percent`% of what A sends; false (with why_) when neither netem nor
  /// nftables can do it here.
  bool lose_from_a(int percent) {
    const bool done = ns().lose_from_a(percent, why_);
    if (done) std::cout << "loss: " << why_ << '\n';
    return done;
  }
  std::string why_;
};

TEST_F(netns_netem_test, delay_slows_the_handshake_and_a_short_timeout_fails) {
  std::string listening;
  auto echo = echo_in_b("tcp4", "198.18.0.2:0", listening);
  ASSERT_FALSE(listening.empty());
  if (!netem_on_a({"delay", "200ms"})) GTEST_SKIP() << why_;
  enter_netns in_a(ns().a());
  auto start = std::chrono::steady_clock::now();
  net::conn c = net::dial(ex, "tcp4", listening);
  EXPECT_GE(std::chrono::steady_clock::now() - start, 190ms) << "the SYN waited in netem";
  net::dialer d;
  d.timeout = 50ms;
  error_code ec;
  start = std::chrono::steady_clock::now();
  net::conn late = d.dial(ex, "tcp4", listening, ec);
  EXPECT_EQ(ec, ipckit::errc::timeout) << ec.message();
  EXPECT_LT(std::chrono::steady_clock::now() - start, 190ms) << "the timeout, not the delay, ended it";
}

TEST_F(netns_netem_test, total_loss_times_out_the_dial) {
  std::string listening;
  auto echo = echo_in_b("tcp6", "[fd00:1985::2]:0", listening);
  ASSERT_FALSE(listening.empty());
  if (!lose_from_a(100)) GTEST_SKIP() << why_;
  enter_netns in_a(ns().a());
  net::dialer d;
  d.timeout = 500ms;
  std::optional<error_code> got;
  d.async_dial(ex, "tcp6", listening, [&](error_code ec, net::conn) { got = ec; });
  ASSERT_TRUE(run_until(io, [&] { return got.has_value(); }));
  EXPECT_EQ(*got, ipckit::errc::timeout);
}

TEST_F(netns_netem_test, tcp_delivers_every_byte_through_loss) {
  std::string listening;
  auto echo = echo_in_b("tcp4", "198.18.0.2:0", listening);
  ASSERT_FALSE(listening.empty());
  enter_netns in_a(ns().a());
  // Connected before the loss, so B's address is resolved (ARP) and stays so: a lost
  // ARP request is not retransmitted as TCP retransmits, and three of them in a row made
  // the dial fail with "no route to host" after 3 s (seen once in CI).
  net::conn c = net::dial(ex, "tcp4", listening);
  if (!lose_from_a(5)) GTEST_SKIP() << why_;
  std::string sent(128 * 1024, '\0');
  for (std::size_t i = 0; i < sent.size(); ++i) sent[i] = static_cast<char>(i * 7 + i / 251);
  std::string got(sent.size(), '\0');
  std::optional<error_code> wrote, read;
  // Write and read at once: the echo sends back while we are still sending.
  asio::async_write(c, asio::buffer(sent), [&](error_code ec, std::size_t) { wrote = ec; });
  asio::async_read(c, asio::buffer(got), [&](error_code ec, std::size_t) { read = ec; });
  ASSERT_TRUE(run_until(io, [&] { return wrote && read; }, 60s));
  EXPECT_FALSE(*wrote) << wrote->message();
  EXPECT_FALSE(*read) << read->message();
  EXPECT_TRUE(got == sent) << "the echoed bytes differ";
}

TEST_F(netns_netem_test, udp_loss_is_counted_not_hidden) {
  std::string listening;
  auto echo = echo_in_b("udp4", "198.18.0.2:0", listening);
  ASSERT_FALSE(listening.empty());
  enter_netns in_a(ns().a());
  net::conn c = net::dial(ex, "udp4", listening);
  char buffer[64];
  // One exchange before the loss, so B's address is resolved (ARP) and stays so.
  c.write_some(asio::buffer(std::string("warm-up")));
  std::optional<std::size_t> warm;
  c.async_read_some(asio::buffer(buffer), [&](error_code ec, std::size_t n) {
    if (!ec) warm = n;
  });
  ASSERT_TRUE(run_until(io, [&] { return warm.has_value(); }));
  if (!lose_from_a(30)) GTEST_SKIP() << why_;
  // One datagram at a time; an echo still missing after 200 ms is counted lost (B
  // answers in far less: nothing delays it). A late echo of an earlier one is recognised
  // by its number and counted once.
  constexpr int total = 100;
  std::set<int> echoed;
  for (int i = 0; i < total; ++i) {
    c.write_some(asio::buffer("datagram " + std::to_string(i)));
    const auto deadline = std::chrono::steady_clock::now() + 200ms;
    while (!echoed.contains(i) && std::chrono::steady_clock::now() < deadline) {
      std::optional<error_code> result;
      std::size_t n = 0;
      c.async_read_some(asio::buffer(buffer), [&](error_code ec, std::size_t size) {
        result = ec;
        n = size;
      });
      const auto left = std::chrono::duration_cast<std::chrono::milliseconds>(
          deadline - std::chrono::steady_clock::now());
      if (!run_until(io, [&] { return result.has_value(); }, std::max(left, 1ms))) {
        c.cancel();
        ASSERT_TRUE(run_until(io, [&] { return result.has_value(); }));
      }
      if (*result == asio::error::operation_aborted) break;
      ASSERT_FALSE(*result) << result->message();
      const std::string got(buffer, n);
      ASSERT_TRUE(got.starts_with("datagram ")) << got;
      const int number = std::stoi(got.substr(9));
      ASSERT_LE(number, i) << "an echo of a datagram never sent";
      echoed.insert(number);
    }
  }
  const int received = static_cast<int>(echoed.size());
  RecordProperty("echoed", received);
  std::cout << "udp with 30% loss from A: " << received << " of " << total << " echoed\n";
  EXPECT_GT(received, 0);
  EXPECT_LT(received, total) << "30% loss and not one datagram lost: netem did not apply";
}

}  // namespace
