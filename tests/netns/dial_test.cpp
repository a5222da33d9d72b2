// tcp and udp between two network namespaces joined by a veth: dial, listen, refusals
// and dial timeouts, with ipckit running inside namespace A (this thread) and the helper
// child inside namespace B.
#include "netns_test_util.hpp"

#include <boost/asio/read.hpp>
#include <boost/asio/write.hpp>

#include <sstream>

namespace {

namespace net = ipckit::net;
namespace asio = boost::asio;
using ipckit::error_code;
using ipckit::test::enter_netns;
using ipckit::test::host_of;
using ipckit::test::netns_pair;
using ipckit::test::netns_test;
using ipckit::test::peer_process;
using ipckit::test::run_until;
using namespace std::chrono_literals;

std::vector<std::string> lines_of(const std::string& text) {
  std::vector<std::string> lines;
  std::istringstream in(text);
  for (std::string line; std::getline(in, line);)
    if (!line.empty()) lines.push_back(line);
  return lines;
}

TEST_F(netns_test, namespaces_route_nothing_but_their_veth) {
  for (const auto& [name, dev] : {std::pair{ns().a(), "va"}, std::pair{ns().b(), "vb"}}) {
    const auto links = lines_of(ns().ip(name, {"-o", "link", "show"}).out);
    ASSERT_EQ(links.size(), 2u) << "only lo and the veth in " << name;
    for (const char* family : {"-4", "-6"}) {
      const auto routes = lines_of(ns().ip(name, {family, "route", "show", "table", "all"}).out);
      EXPECT_FALSE(routes.empty());
      for (const auto& route : routes) {
        EXPECT_EQ(route.find("default"), std::string::npos) << name << ": " << route;
        const bool on_veth = route.find(std::string("dev ") + dev) != std::string::npos;
        const bool on_lo = route.find("dev lo") != std::string::npos;
        EXPECT_TRUE(on_veth || on_lo) << name << ": " << route;
      }
    }
    // A route lookup sends nothing: it only asks where a packet would go.
    for (const auto& [family, outside] : {std::pair{"-4", "192.0.2.1"}, std::pair{"-6", "2001:db8::1"}}) {
      const auto r = ns().ip(name, {family, "route", "get", outside});
      EXPECT_NE(r.exit_code, 0) << name << " routes " << outside << ": " << r.out;
      EXPECT_NE(r.err.find("unreachable"), std::string::npos) << r.err;
    }
  }
}

// One family across the veth: A's and B's addresses, and A's unanswered one.
struct family_case {
  const char* net;
  const char* a;
  const char* b;
  const char* dark;
  std::string b_port(const char* port) const { return net::join_host_port(b, port); }
};
using ipckit::test::netns_addresses;
const family_case v4{"", netns_addresses::a4, netns_addresses::b4, netns_addresses::dark4};
const family_case v6{"", netns_addresses::a6, netns_addresses::b6, netns_addresses::dark6};
family_case on(const char* net, family_case f) {
  f.net = net;
  return f;
}
using stream_case = family_case;

class netns_stream_test : public netns_test, public ::testing::WithParamInterface<stream_case> {};

TEST_P(netns_stream_test, dial_and_echo_across_the_veth) {
  const auto& param = GetParam();
  std::string listening;
  auto echo = echo_in_b(param.net, param.b_port("0"), listening);
  ASSERT_FALSE(listening.empty());
  enter_netns in_a(ns().a());
  net::conn c = net::dial(ex, param.net, listening);
  EXPECT_EQ(c.remote_address().to_string(), listening);
  EXPECT_EQ(host_of(c.local_address()), param.a);
  const std::string sent = "across the veth on " + std::string(param.net);
  asio::write(c, asio::buffer(sent));
  std::string got(sent.size(), '\0');
  asio::read(c, asio::buffer(got));
  EXPECT_EQ(got, sent);
}

TEST_P(netns_stream_test, listen_in_a_and_accept_a_dial_from_b) {
  const auto& param = GetParam();
  enter_netns in_a(ns().a());
  const std::string wildcard = std::string(param.net) == "tcp4" ? "0.0.0.0:0" : "[::]:0";
  net::listener l = net::listen(ex, param.net, wildcard);
  const std::string target = net::join_host_port(param.a, std::to_string(l.addr().port()));
  peer_process dialer(ns().helper_argv(ns().b(), {"net-dial", param.net, target, "hello from b"}));
  std::optional<net::conn> accepted;
  std::string got;
  l.async_accept([&](error_code ec, net::conn c) {
    ASSERT_FALSE(ec) << ec.message();
    accepted.emplace(std::move(c));
  });
  ASSERT_TRUE(run_until(io, [&] { return accepted.has_value(); }));
  // The peer half-closes after its message: read to EOF, answer, close.
  std::optional<error_code> read;
  asio::async_read(*accepted, asio::dynamic_buffer(got), [&](error_code ec, std::size_t) { read = ec; });
  ASSERT_TRUE(run_until(io, [&] { return read.has_value(); }));
  EXPECT_EQ(*read, asio::error::eof);
  EXPECT_EQ(got, "hello from b");
  EXPECT_EQ(host_of(accepted->remote_address()), param.b);
  asio::write(*accepted, asio::buffer(std::string("ack")));
  accepted->close();
  const auto local = dialer.read_line();
  const auto reply = dialer.read_line();
  EXPECT_EQ(reply.value_or("<nothing>"), "reply ack") << local.value_or("");
  EXPECT_EQ(dialer.wait(), 0);
}

TEST_P(netns_stream_test, dial_a_closed_port_is_refused_by_b) {
  const auto& param = GetParam();
  enter_netns in_a(ns().a());
  const std::string target = param.b_port("1");
  error_code ec;
  net::conn c = net::dial(ex, param.net, target, ec);
  EXPECT_EQ(ec, boost::system::errc::connection_refused) << ec.message();
  EXPECT_FALSE(c.is_open());
}

TEST_P(netns_stream_test, dial_timeout_when_the_syn_is_never_answered) {
  const auto& param = GetParam();
  enter_netns in_a(ns().a());
  const std::string target = net::join_host_port(param.dark, "80");
  net::dialer d;
  d.timeout = 300ms;
  const auto start = std::chrono::steady_clock::now();
  try {
    d.dial(ex, param.net, target);
    FAIL() << "a dial to an address that never answers succeeded";
  } catch (const ipckit::system_error& e) {
    EXPECT_EQ(e.code(), ipckit::errc::timeout);
    EXPECT_EQ(std::string(e.what()), "dial " + std::string(param.net) + " " + target + ": i/o timeout");
  }
  const auto took = std::chrono::steady_clock::now() - start;
  EXPECT_GE(took, 290ms);
  EXPECT_LT(took, 5s);
  // The asynchronous dial times out the same way, on the loop.
  std::optional<error_code> got;
  d.async_dial(ex, param.net, target, [&](error_code ec, net::conn c) {
    got = ec;
    EXPECT_FALSE(c.is_open());
  });
  ASSERT_TRUE(run_until(io, [&] { return got.has_value(); }));
  EXPECT_EQ(*got, ipckit::errc::timeout);
}

INSTANTIATE_TEST_SUITE_P(families, netns_stream_test,
                         ::testing::Values(on("tcp4", v4), on("tcp6", v6)),
                         [](const auto& info) { return std::string(info.param.net); });

using packet_case = family_case;

class netns_packet_test : public netns_test, public ::testing::WithParamInterface<packet_case> {};

TEST_P(netns_packet_test, udp_datagrams_cross_the_veth) {
  const auto& param = GetParam();
  std::string listening;
  auto echo = echo_in_b(param.net, param.b_port("0"), listening);
  ASSERT_FALSE(listening.empty());
  enter_netns in_a(ns().a());
  net::conn c = net::dial(ex, param.net, listening);
  EXPECT_EQ(host_of(c.local_address()), param.a);
  for (const std::string& sent : std::vector<std::string>{"one", "", std::string(1200, 'x')}) {
    EXPECT_EQ(c.write_some(asio::buffer(sent)), sent.size());
    std::string got(2048, '\0');
    std::optional<std::size_t> n;
    c.async_read_some(asio::buffer(got), [&](error_code ec, std::size_t size) {
      EXPECT_FALSE(ec) << ec.message();
      n = size;
    });
    ASSERT_TRUE(run_until(io, [&] { return n.has_value(); })) << "no echo of " << sent.size() << " bytes";
    got.resize(*n);
    EXPECT_EQ(got, sent);
  }
}

TEST_P(netns_packet_test, listen_packet_in_a_receives_from_b) {
  const auto& param = GetParam();
  enter_netns in_a(ns().a());
  const std::string wildcard = std::string(param.net) == "udp4" ? "0.0.0.0:0" : "[::]:0";
  net::packet_conn p = net::listen_packet(ex, param.net, wildcard);
  const std::string target = net::join_host_port(param.a, std::to_string(p.local_address().port()));
  peer_process dialer(ns().helper_argv(ns().b(), {"net-dial", param.net, target, "datagram from b"}));
  char buffer[256];
  net::address from;
  std::optional<std::size_t> n;
  p.async_receive_from(asio::buffer(buffer), from, [&](error_code ec, std::size_t size) {
    EXPECT_FALSE(ec) << ec.message();
    n = size;
  });
  ASSERT_TRUE(run_until(io, [&] { return n.has_value(); }));
  EXPECT_EQ(std::string(buffer, *n), "datagram from b");
  EXPECT_EQ(host_of(from), param.b);
  p.send_to(asio::buffer(std::string("ack")), from);
  (void)dialer.read_line();
  EXPECT_EQ(dialer.read_line().value_or("<nothing>"), "reply ack");
  EXPECT_EQ(dialer.wait(), 0);
}

TEST_P(netns_packet_test, udp_to_a_closed_port_reads_connection_refused) {
  const auto& param = GetParam();
  enter_netns in_a(ns().a());
  net::conn c = net::dial(ex, param.net, param.b_port("9"));
  c.write_some(asio::buffer(std::string("anyone?")));
  std::optional<error_code> got;
  char buffer[16];
  c.async_read_some(asio::buffer(buffer), [&](error_code ec, std::size_t) { got = ec; });
  ASSERT_TRUE(run_until(io, [&] { return got.has_value(); }));
  EXPECT_EQ(*got, boost::system::errc::connection_refused) << "B's ICMP port unreachable";
}

INSTANTIATE_TEST_SUITE_P(families, netns_packet_test,
                         ::testing::Values(on("udp4", v4), on("udp6", v6)),
                         [](const auto& info) { return std::string(info.param.net); });

}  // namespace
