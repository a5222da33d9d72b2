// Fuzz target: the address parsers, without name lookups or sockets. The input is
// "NETWORK\nADDRESS" (no newline: the network is tcp).
//  - split_host_port then join_host_port gives back what split again splits the same;
//    join then split gives back a host and port that have no brackets;
//  - the address form of the network: unix paths and @abstract names, host:port for
//    tcp/udp, a bare host for ip. A literal accepted prints (to_string, Go's form) as
//    text that parses to the same address; a host left for lookup is no literal.
#include "fuzz_check.hpp"

#include "../../modules/net/net_internal.hpp"

#include <string>

namespace net = ipckit::net;
namespace detail = ipckit::net::detail;
using ipckit::error_code;

namespace {

bool has(std::string_view s, std::string_view chars) {
  return s.find_first_of(chars) != std::string_view::npos;
}

void split_and_join(std::string_view text) {
  error_code ec;
  const net::host_port hp = net::split_host_port(text, ec);
  if (ec) {
    FUZZ_CHECK(ec.category() == net::category());
    FUZZ_CHECK(hp.host.empty() && hp.port.empty());
  } else {
    FUZZ_CHECK(!has(hp.port, ":[]"));
    FUZZ_CHECK(!has(hp.host, "[]"));
    const net::host_port again = net::split_host_port(net::join_host_port(hp.host, hp.port), ec);
    FUZZ_CHECK(!ec);
    FUZZ_CHECK(again == hp);
  }
  // Any bracket-free host joins with a port into text that splits back into both.
  if (!has(text, "[]")) {
    const net::host_port back = net::split_host_port(net::join_host_port(text, "80"), ec);
    FUZZ_CHECK(!ec);
    FUZZ_CHECK(back.host == text && back.port == "80");
  }
}

void unix_form(const net::network& n, std::string_view text) {
  error_code ec;
  const net::address a = detail::unix_address(n.name, text, ec);
  if (ec) {
    FUZZ_CHECK(ec == net::errc::path_too_long || ec == net::errc::invalid_address);
    FUZZ_CHECK(a.empty());
    return;
  }
  FUZZ_CHECK(a.family() == AF_UNIX);
  FUZZ_CHECK(a.size() <= sizeof(sockaddr_un));
  FUZZ_CHECK(a.network() == n.name);
  // It prints as the name it was given (an abstract "\0name" as "@name"): the kernel
  // gets that name, not a shorter one.
  const std::string printed = a.to_string();
  if (text.starts_with('\0')) {
    FUZZ_CHECK(printed == "@" + std::string(text.substr(1)));
  } else {
    FUZZ_CHECK(printed == text);
  }
  const net::address again = detail::unix_address(n.name, printed, ec);
  FUZZ_CHECK(!ec);
  FUZZ_CHECK(again == a);
}

bool is_ip_literal_text(std::string_view host) {
  // What inet_pton may accept before the zone (after the first '%', as in Go's
  // netip.ParseAddr): hex digits, dots and colons.
  const std::string_view address = host.substr(0, host.find('%'));
  return !address.empty() &&
         address.find_first_not_of("0123456789abcdefABCDEF.:") == std::string_view::npos;
}

void ip_form(const net::network& n, std::string_view text, bool for_dial) {
  error_code ec;
  const detail::split_address split = detail::split_ip_address(n, text, for_dial, ec);
  if (ec) {
    FUZZ_CHECK(ec.category() == net::category());
    return;
  }
  FUZZ_CHECK(split.port >= 0 && split.port <= 65535);
  if (split.literal.empty()) {
    // Left for getaddrinfo: a name, never a literal, never with a NUL (which the C call
    // would cut short).
    FUZZ_CHECK(!split.host.empty());
    FUZZ_CHECK(split.host.find('\0') == std::string::npos);
    net::address literal;
    FUZZ_CHECK(!detail::parse_ip(split.host, 0, "tcp", literal));
    return;
  }
  FUZZ_CHECK(split.literal.size() == 1 && split.host.empty());
  const net::address& a = split.literal.front();
  FUZZ_CHECK(a.family() == AF_INET || a.family() == AF_INET6);
  FUZZ_CHECK(detail::family_fits(n.family, a));
  FUZZ_CHECK(a.port() == (n.is_ip() ? 0 : split.port));
  if (!n.is_ip()) {
    // A literal host was made of literal characters.
    const net::host_port hp = net::split_host_port(text, ec);
    FUZZ_CHECK(!ec);
    FUZZ_CHECK(hp.host.empty() || is_ip_literal_text(hp.host));
  } else {
    FUZZ_CHECK(text.empty() || is_ip_literal_text(text));
  }
  // Go's printed form parses back to the same address.
  const std::string printed = a.to_string();
  const detail::split_address again = detail::split_ip_address(n, printed, for_dial, ec);
  FUZZ_CHECK(!ec);
  FUZZ_CHECK(again.literal.size() == 1);
  FUZZ_CHECK(again.literal.front() == a);
  FUZZ_CHECK(again.literal.front().to_string() == printed);
}

}  // namespace

extern "C" int LLVMFuzzerTestOneInput(const std::uint8_t* data, std::size_t size) {
  const std::string_view input(reinterpret_cast<const char*>(data), size);
  const std::size_t newline = input.find('\n');
  const std::string_view network_text =
      newline == std::string_view::npos ? std::string_view("tcp") : input.substr(0, newline);
  const std::string_view text =
      newline == std::string_view::npos ? input : input.substr(newline + 1);

  split_and_join(text);
  error_code ec;
  const net::network n = net::parse_network(network_text, ec);
  if (ec) return 0;
  if (n.is_unix()) {
    unix_form(n, text);
  } else {
    ip_form(n, text, true);
    ip_form(n, text, false);
  }
  return 0;
}
