// Go's SplitHostPort, JoinHostPort and parseNetwork, case for case (net/ipsock.go, dial.go).
#include "net_internal.hpp"

#include <ipckit/net.hpp>

namespace ipckit::net {

host_port split_host_port(std::string_view hostport, error_code& ec) {
  auto fail = [&ec](errc e) {
    ec = e;
    return host_port{};
  };
  ec.clear();
  std::size_t j = 0, k = 0;
  // The port starts after the last colon.
  const std::size_t i = hostport.rfind(':');
  if (i == std::string_view::npos) return fail(errc::missing_port);
  std::string_view host;
  if (hostport[0] == '[') {
    // Expect the first ']' just before the last ':'.
    const std::size_t end = hostport.find(']');
    if (end == std::string_view::npos) return fail(errc::missing_bracket);
    if (end + 1 == hostport.size()) return fail(errc::missing_port);  // no ':' after ']'
    if (end + 1 != i) {
      // ']' is not followed by the last colon.
      return fail(hostport[end + 1] == ':' ? errc::too_many_colons : errc::missing_port);
    }
    host = hostport.substr(1, end - 1);
    j = 1;
    k = end + 1;  // there can't be a '[' resp. ']' before these positions
  } else {
    host = hostport.substr(0, i);
    if (host.find(':') != std::string_view::npos) return fail(errc::too_many_colons);
  }
  if (hostport.find('[', j) != std::string_view::npos) return fail(errc::unexpected_bracket);
  if (hostport.find(']', k) != std::string_view::npos)
    return fail(errc::unexpected_closing_bracket);
  return {std::string(host), std::string(hostport.substr(i + 1))};
}

host_port split_host_port(std::string_view hostport) {
  error_code ec;
  auto result = split_host_port(hostport, ec);
  if (ec) detail::throw_address_error("split", "", hostport, ec);
  return result;
}

std::string join_host_port(std::string_view host, std::string_view port) {
  // A host with a colon is taken to be an IPv6 literal.
  std::string out;
  if (host.find(':') != std::string_view::npos) {
    out.append("[").append(host).append("]:");
  } else {
    out.append(host).append(":");
  }
  return out.append(port);
}

namespace {

// Go's dtoi: a decimal number below 0xFFFFFF using every character.
std::optional<int> decimal(std::string_view s) {
  if (s.empty()) return std::nullopt;
  int n = 0;
  for (char c : s) {
    if (c < '0' || c > '9') return std::nullopt;
    n = n * 10 + (c - '0');
    if (n >= 0xFFFFFF) return std::nullopt;
  }
  return n;
}

struct known {
  std::string_view name;
  int family;
  int type;
};
constexpr known networks[] = {
    {"tcp", AF_UNSPEC, SOCK_STREAM},      {"tcp4", AF_INET, SOCK_STREAM},
    {"tcp6", AF_INET6, SOCK_STREAM},      {"udp", AF_UNSPEC, SOCK_DGRAM},
    {"udp4", AF_INET, SOCK_DGRAM},        {"udp6", AF_INET6, SOCK_DGRAM},
    {"unix", AF_UNIX, SOCK_STREAM},       {"unixgram", AF_UNIX, SOCK_DGRAM},
    {"unixpacket", AF_UNIX, SOCK_SEQPACKET}, {"ip", AF_UNSPEC, SOCK_RAW},
    {"ip4", AF_INET, SOCK_RAW},           {"ip6", AF_INET6, SOCK_RAW},
};

// Go's parseNetwork.
network parse_network(std::string_view text, bool needs_proto, error_code& ec) {
  ec.clear();
  const std::size_t colon = text.rfind(':');
  const std::string_view afnet = colon == std::string_view::npos ? text : text.substr(0, colon);
  for (const auto& n : networks) {
    if (n.name != afnet) continue;
    const bool ip = n.type == SOCK_RAW;
    if (colon == std::string_view::npos) {
      if (ip && needs_proto) break;
      return {n.family, n.type, 0, std::string(afnet)};
    }
    if (!ip) break;  // only ip networks take ":PROTO"
    const std::string_view proto = text.substr(colon + 1);
    std::optional<int> number = decimal(proto);
    if (!number) {
      const int by_name = lookup_protocol(proto, ec);
      if (ec) return {};
      number = by_name;
    }
    return {n.family, n.type, *number, std::string(afnet)};
  }
  ec = errc::unknown_network;
  return {};
}

}  // namespace

network detail::parse_resolver_network(std::string_view text, error_code& ec) {
  return parse_network(text, false, ec);
}

network parse_network(std::string_view text, error_code& ec) {
  return parse_network(text, true, ec);
}

network parse_network(std::string_view text) {
  error_code ec;
  auto result = parse_network(text, ec);
  if (ec) detail::throw_network_error("parse", text, "", ec);
  return result;
}

}  // namespace ipckit::net
