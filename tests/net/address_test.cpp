// Address literals as resolve_address reads them without a lookup: the cases the fuzzer
// found (tests/fuzz/crashes/address/) and their neighbours.
#include <ipckit/net.hpp>

#include <gtest/gtest.h>

#include <string>

namespace {

namespace net = ipckit::net;
using ipckit::error_code;
using namespace std::string_literals;

TEST(resolve_address, a_nul_in_a_host_is_neither_a_literal_nor_a_name) {
  // inet_pton and getaddrinfo stop at the NUL: these were 127.0.0.1, ::1 and ::1%lo.
  for (const auto& [network, text] : {std::pair{"tcp", "127.0.0.1\0junk:80"s},
                                      std::pair{"udp", "[::1\0]:80"s},
                                      std::pair{"tcp", "[::1%lo\0x]:80"s},
                                      std::pair{"ip:icmp", "::1\0"s},
                                      std::pair{"tcp", "localhost\0.example:80"s}}) {
    error_code ec;
    const net::address a = net::resolve_address(network, text, ec);
    EXPECT_EQ(ec, net::errc::no_such_host) << text;
    EXPECT_TRUE(a.empty()) << text;
  }
}

TEST(resolve_address, a_nul_in_a_unix_path_is_refused) {
  // The kernel would bind or connect to "/tmp/a", another file than the one named.
  error_code ec;
  const net::address a = net::resolve_address("unix", "/tmp/a\0b"s, ec);
  EXPECT_EQ(ec, net::errc::invalid_address);
  EXPECT_TRUE(a.empty());
}

TEST(resolve_address, a_leading_nul_names_an_abstract_socket_as_in_go) {
  const net::address nul = net::resolve_address("unixgram", "\0name"s);
  const net::address at = net::resolve_address("unixgram", "@name");
  EXPECT_EQ(nul, at);
  EXPECT_EQ(nul.to_string(), "@name");
  // An abstract name may hold NULs anywhere else.
  EXPECT_EQ(net::resolve_address("unix", "@a\0b"s).to_string(), "@a\0b"s);
}

TEST(resolve_address, ipv4_mapped_is_ipv4_with_or_without_a_zone) {
  for (const char* text : {"[::ffff:1.2.3.4]:80", "[::ffff:1.2.3.4%1]:80", "[::ffff:1.2.3.4%x]:80"}) {
    const net::address a = net::resolve_address("tcp", text);
    EXPECT_EQ(a.family(), AF_INET) << text;
    EXPECT_EQ(a.to_string(), "1.2.3.4:80") << text;
  }
}

TEST(resolve_address, literals_print_as_text_that_resolves_to_them) {
  for (const auto& [network, text] :
       {std::pair{"tcp", "127.0.0.1:80"}, std::pair{"tcp6", "[::1]:0"}, std::pair{"udp", ":53"},
        std::pair{"tcp", "[fe80::1%1]:7"}, std::pair{"ip6:58", "fe80::2%99"},
        std::pair{"ip4:icmp", "10.0.0.1"}, std::pair{"unix", "/run/x.sock"},
        std::pair{"unixpacket", "@x"}}) {
    const net::address a = net::resolve_address(network, text);
    EXPECT_EQ(net::resolve_address(network, a.to_string()), a) << network << " " << text;
  }
}

TEST(resolve_address, ip_networks_need_no_protocol_as_in_go_resolve_ip_addr) {
  EXPECT_EQ(net::resolve_address("ip6", "::1").to_string(), "::1");
  EXPECT_EQ(net::resolve_address("ip4", "10.0.0.1").to_string(), "10.0.0.1");
  EXPECT_EQ(net::resolve_address("ip", "127.0.0.1"), net::resolve_address("ip:icmp", "127.0.0.1"));
  error_code ec;
  net::parse_network("ip6", ec);  // Dial and Listen still need the protocol
  EXPECT_EQ(ec, net::errc::unknown_network);
  net::resolve_address("ip4", "::1", ec);
  EXPECT_EQ(ec, net::errc::no_suitable_address);
}

}  // namespace
