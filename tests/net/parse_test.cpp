#include <ipckit/net.hpp>  // first, alone: the header stands by itself

#include <gtest/gtest.h>

namespace {

namespace net = ipckit::net;
using ipckit::error_code;

// Go's TestSplitHostPort (net/ip_test.go), successes grouped as Go groups them.
TEST(split_host_port, splits_as_go_does) {
  struct row {
    const char* hostport;
    const char* host;
    const char* port;
  } const table[] = {
      // Host name
      {"localhost:http", "localhost", "http"},
      {"localhost:80", "localhost", "80"},
      // Go-specific host name with zone identifier
      {"localhost%lo0:http", "localhost%lo0", "http"},
      {"localhost%lo0:80", "localhost%lo0", "80"},
      {"[localhost%lo0]:http", "localhost%lo0", "http"},
      {"[localhost%lo0]:80", "localhost%lo0", "80"},
      // IP literal
      {"127.0.0.1:http", "127.0.0.1", "http"},
      {"127.0.0.1:80", "127.0.0.1", "80"},
      {"[::1]:http", "::1", "http"},
      {"[::1]:80", "::1", "80"},
      // IP literal with zone identifier
      {"[::1%lo0]:http", "::1%lo0", "http"},
      {"[::1%lo0]:80", "::1%lo0", "80"},
      // Go-specific wildcard for host name
      {":http", "", "http"},
      {":80", "", "80"},
      // Go-specific wildcard for service name or transport port number
      {"golang.org:", "golang.org", ""},
      {"127.0.0.1:", "127.0.0.1", ""},
      {"[::1]:", "::1", ""},
      // Opaque service name
      {"golang.org:https%foo", "golang.org", "https%foo"},
  };
  for (const auto& r : table) {
    error_code ec;
    auto hp = net::split_host_port(r.hostport, ec);
    EXPECT_FALSE(ec) << r.hostport << ": " << ec.message();
    EXPECT_EQ(hp, (net::host_port{r.host, r.port})) << r.hostport;
  }
}

TEST(split_host_port, fails_as_go_does) {
  struct row {
    const char* hostport;
    net::errc want;
    const char* text;
  } const table[] = {
      {"golang.org", net::errc::missing_port, "missing port in address"},
      {"127.0.0.1", net::errc::missing_port, "missing port in address"},
      {"[::1]", net::errc::missing_port, "missing port in address"},
      {"[fe80::1%lo0]", net::errc::missing_port, "missing port in address"},
      {"[localhost%lo0]", net::errc::missing_port, "missing port in address"},
      {"localhost%lo0", net::errc::missing_port, "missing port in address"},
      {"", net::errc::missing_port, "missing port in address"},

      {"::1", net::errc::too_many_colons, "too many colons in address"},
      {"fe80::1%lo0", net::errc::too_many_colons, "too many colons in address"},
      {"fe80::1%lo0:80", net::errc::too_many_colons, "too many colons in address"},

      // Cases that did not fail in Go 1
      {"[foo:bar]", net::errc::missing_port, "missing port in address"},
      {"[foo:bar]baz", net::errc::missing_port, "missing port in address"},
      {"[foo]bar:baz", net::errc::missing_port, "missing port in address"},
      {"[foo]:[bar]:baz", net::errc::too_many_colons, "too many colons in address"},
      {"[foo]:[bar]baz", net::errc::unexpected_bracket, "unexpected '[' in address"},
      {"foo[bar]:baz", net::errc::unexpected_bracket, "unexpected '[' in address"},
      {"foo]bar:baz", net::errc::unexpected_closing_bracket, "unexpected ']' in address"},
      {"[foo:bar", net::errc::missing_bracket, "missing ']' in address"},
  };
  for (const auto& r : table) {
    error_code ec;
    auto hp = net::split_host_port(r.hostport, ec);
    EXPECT_EQ(ec, r.want) << r.hostport;
    EXPECT_EQ(ec.message(), r.text) << r.hostport;
    EXPECT_EQ(hp, net::host_port{}) << r.hostport;
  }
}

TEST(split_host_port, throwing_form_names_the_address) {
  try {
    net::split_host_port("127.0.0.1");
    FAIL() << "no error";
  } catch (const ipckit::system_error& e) {
    EXPECT_EQ(e.code(), net::errc::missing_port);
    EXPECT_STREQ(e.what(), "split: address 127.0.0.1: missing port in address");
  }
}

// Go's TestJoinHostPort.
TEST(join_host_port, joins_as_go_does) {
  struct row {
    const char* host;
    const char* port;
    const char* want;
  } const table[] = {
      // Host name
      {"localhost", "http", "localhost:http"},
      {"localhost", "80", "localhost:80"},
      // Go-specific host name with zone identifier
      {"localhost%lo0", "http", "localhost%lo0:http"},
      {"localhost%lo0", "80", "localhost%lo0:80"},
      // IP literal
      {"127.0.0.1", "http", "127.0.0.1:http"},
      {"127.0.0.1", "80", "127.0.0.1:80"},
      {"::1", "http", "[::1]:http"},
      {"::1", "80", "[::1]:80"},
      // IP literal with zone identifier
      {"::1%lo0", "http", "[::1%lo0]:http"},
      {"::1%lo0", "80", "[::1%lo0]:80"},
      // Go-specific wildcard for host name
      {"", "http", ":http"},
      {"", "80", ":80"},
      // Go-specific wildcard for service name or transport port number
      {"golang.org", "", "golang.org:"},
      {"127.0.0.1", "", "127.0.0.1:"},
      {"::1", "", "[::1]:"},
      // Opaque service name
      {"golang.org", "https%foo", "golang.org:https%foo"},
  };
  for (const auto& r : table) EXPECT_EQ(net::join_host_port(r.host, r.port), r.want);
}

TEST(parse_network, accepts_the_exact_go_set) {
  struct row {
    const char* text;
    int family;
    int type;
    int protocol;
    const char* name;
  } const table[] = {
      // stream
      {"tcp", AF_UNSPEC, SOCK_STREAM, 0, "tcp"},
      {"tcp4", AF_INET, SOCK_STREAM, 0, "tcp4"},
      {"tcp6", AF_INET6, SOCK_STREAM, 0, "tcp6"},
      {"unix", AF_UNIX, SOCK_STREAM, 0, "unix"},
      // packet
      {"udp", AF_UNSPEC, SOCK_DGRAM, 0, "udp"},
      {"udp4", AF_INET, SOCK_DGRAM, 0, "udp4"},
      {"udp6", AF_INET6, SOCK_DGRAM, 0, "udp6"},
      {"unixgram", AF_UNIX, SOCK_DGRAM, 0, "unixgram"},
      {"unixpacket", AF_UNIX, SOCK_SEQPACKET, 0, "unixpacket"},
      // ip with a protocol number
      {"ip:1", AF_UNSPEC, SOCK_RAW, 1, "ip"},
      {"ip4:1", AF_INET, SOCK_RAW, 1, "ip4"},
      {"ip6:58", AF_INET6, SOCK_RAW, 58, "ip6"},
      {"ip4:0", AF_INET, SOCK_RAW, 0, "ip4"},
      // ip with a protocol name, any case
      {"ip4:icmp", AF_INET, SOCK_RAW, 1, "ip4"},
      {"ip4:ICMP", AF_INET, SOCK_RAW, 1, "ip4"},
      {"ip:igmp", AF_UNSPEC, SOCK_RAW, 2, "ip"},
      {"ip4:tcp", AF_INET, SOCK_RAW, 6, "ip4"},
      {"ip4:udp", AF_INET, SOCK_RAW, 17, "ip4"},
      {"ip6:ipv6-icmp", AF_INET6, SOCK_RAW, 58, "ip6"},
      {"ip6:IPv6-ICMP", AF_INET6, SOCK_RAW, 58, "ip6"},
  };
  for (const auto& r : table) {
    error_code ec;
    net::network n = net::parse_network(r.text, ec);
    ASSERT_FALSE(ec) << r.text << ": " << ec.message();
    EXPECT_EQ(n.family, r.family) << r.text;
    EXPECT_EQ(n.socket_type, r.type) << r.text;
    EXPECT_EQ(n.protocol, r.protocol) << r.text;
    EXPECT_EQ(n.name, r.name) << r.text;
  }
}

TEST(parse_network, rejects_everything_else) {
  struct row {
    const char* text;
    net::errc want;
  } const table[] = {
      // not a network; names are case-sensitive
      {"", net::errc::unknown_network},
      {"tcpx", net::errc::unknown_network},
      {"TCP", net::errc::unknown_network},
      {"Unix", net::errc::unknown_network},
      {"sctp", net::errc::unknown_network},
      // a protocol only after ip networks; ip networks need one
      {"tcp:80", net::errc::unknown_network},
      {"udp:17", net::errc::unknown_network},
      {"ip", net::errc::unknown_network},
      {"ip4", net::errc::unknown_network},
      {"ip6", net::errc::unknown_network},
      {"ipx:1", net::errc::unknown_network},
      // unknown protocols
      {"ip4:", net::errc::unknown_protocol},
      {"ip4:nosuchproto", net::errc::unknown_protocol},
      {"ip4:-1", net::errc::unknown_protocol},
      {"ip4:99999999", net::errc::unknown_protocol},
      {"ip4:1x", net::errc::unknown_protocol},
  };
  for (const auto& r : table) {
    error_code ec;
    net::parse_network(r.text, ec);
    EXPECT_EQ(ec, r.want) << r.text;
  }
}

TEST(parse_network, error_texts_are_gos) {
  EXPECT_EQ(error_code(net::errc::unknown_network).message(), "unknown network");
  EXPECT_EQ(error_code(net::errc::unknown_protocol).message(), "unknown IP protocol specified");
  EXPECT_STREQ(error_code(net::errc::unknown_network).category().name(), "ipckit.net");
  try {
    net::parse_network("tcpx");
    FAIL() << "no error";
  } catch (const ipckit::system_error& e) {
    EXPECT_EQ(e.code(), net::errc::unknown_network);
    EXPECT_STREQ(e.what(), "parse tcpx: unknown network tcpx");
  }
}

// Go's lookupPortTests and TestLookupPort_Minimal.
TEST(lookup_port, finds_numbers_and_services) {
  struct row {
    const char* network;
    const char* service;
    int want;
  } const table[] = {
      // numbers
      {"tcp", "0", 0},
      {"udp", "0", 0},
      {"tcp", "65535", 65535},
      {"tcp", "+80", 80},
      // an empty service is port 0 (Go issue 13610)
      {"tcp", "", 0},
      {"tcp4", "", 0},
      {"tcp6", "", 0},
      {"udp", "", 0},
      {"udp4", "", 0},
      {"udp6", "", 0},
      // Go's built-in names, any case
      {"udp", "domain", 53},
      {"tcp", "http", 80},
      {"tcp", "HTTP", 80},
      {"tcp", "https", 443},
      {"tcp", "ssh", 22},
      {"tcp", "gopher", 70},
      {"tcp4", "http", 80},
      {"tcp6", "http", 80},
      {"ip", "http", 80},
  };
  for (const auto& r : table) {
    error_code ec;
    EXPECT_EQ(net::lookup_port(r.network, r.service, ec), r.want) << r.network << "/" << r.service;
    EXPECT_FALSE(ec) << r.network << "/" << r.service << ": " << ec.message();
  }
}

TEST(lookup_port, fails_as_go_does) {
  struct row {
    const char* network;
    const char* service;
    net::errc want;
  } const table[] = {
      {"--badnet--", "zzz", net::errc::unknown_network},
      {"unix", "http", net::errc::unknown_network},
      {"tcp", "--badport--", net::errc::unknown_port},
      {"udp", "http-is-tcp-only-in-go-builtins-and-far-too-long", net::errc::unknown_port},
      {"tcp", "-1", net::errc::invalid_port},
      {"tcp", "65536", net::errc::invalid_port},
      {"udp", "-1", net::errc::invalid_port},
      {"udp", "65536", net::errc::invalid_port},
      {"tcp", "123456789", net::errc::invalid_port},
      {"tcp", "99999999999999999999", net::errc::invalid_port},
  };
  for (const auto& r : table) {
    error_code ec;
    EXPECT_EQ(net::lookup_port(r.network, r.service, ec), 0);
    EXPECT_EQ(ec, r.want) << r.network << "/" << r.service;
  }
  EXPECT_EQ(error_code(net::errc::unknown_port).message(), "unknown port");
  EXPECT_EQ(error_code(net::errc::invalid_port).message(), "invalid port");
}

TEST(lookup_port, throwing_form_reads_like_go) {
  try {
    net::lookup_port("tcp", "--badport--");
    FAIL() << "no error";
  } catch (const ipckit::system_error& e) {
    EXPECT_STREQ(e.what(), "lookup tcp/--badport--: unknown port");
  }
}

TEST(lookup_protocol, knows_builtins_and_etc_protocols) {
  error_code ec;
  EXPECT_EQ(net::lookup_protocol("icmp", ec), 1);
  EXPECT_EQ(net::lookup_protocol("IGMP", ec), 2);
  EXPECT_EQ(net::lookup_protocol("ipv6-icmp", ec), 58);
  EXPECT_FALSE(ec);
  net::lookup_protocol("no-such-protocol", ec);
  EXPECT_EQ(ec, net::errc::unknown_protocol);
}

TEST(errc, fixed_names_have_go_texts) {
  struct row {
    net::errc e;
    const char* text;
  } const table[] = {
      {net::errc::missing_address, "missing address"},
      {net::errc::missing_port, "missing port in address"},
      {net::errc::too_many_colons, "too many colons in address"},
      {net::errc::unexpected_bracket, "unexpected '[' in address"},
      {net::errc::missing_bracket, "missing ']' in address"},
      {net::errc::no_suitable_address, "no suitable address found"},
      {net::errc::wrong_operation, "unexpected address type"},
  };
  for (const auto& r : table) {
    error_code ec = r.e;
    EXPECT_EQ(ec, r.e);
    EXPECT_EQ(ec.message(), r.text);
  }
}

}  // namespace
