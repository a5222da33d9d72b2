// Go's LookupPort and lookupProtocol: /etc/services and /etc/protocols plus Go's
// built-in tables, read once (net/lookup.go, port_unix.go, lookup_unix.go).
#include "net_internal.hpp"

#include <algorithm>
#include <cctype>
#include <fstream>
#include <map>
#include <sstream>

namespace ipckit::net {
namespace {

std::string lower(std::string_view s) {
  std::string out(s);
  for (char& c : out) c = static_cast<char>(std::tolower(static_cast<unsigned char>(c)));
  return out;
}

using table = std::map<std::string, int, std::less<>>;

struct service_tables {
  table tcp{{"ftp", 21},   {"ftps", 990},  {"gopher", 70}, {"http", 80},   {"https", 443},
            {"imap2", 143}, {"imap3", 220}, {"imaps", 993}, {"pop3", 110},  {"pop3s", 995},
            {"smtp", 25},   {"submissions", 465}, {"ssh", 22}, {"telnet", 23}};
  table udp{{"domain", 53}};

  service_tables() {
    // "name port/proto aliases… # comment", as Go's readServices reads it.
    std::ifstream in("/etc/services");
    std::string line;
    while (std::getline(in, line)) {
      line = line.substr(0, line.find('#'));
      std::istringstream words(line);
      std::string name, portnet;
      if (!(words >> name >> portnet)) continue;
      const auto slash = portnet.find('/');
      if (slash == std::string::npos) continue;
      int port = 0;
      try {
        port = std::stoi(portnet.substr(0, slash));
      } catch (...) {
        continue;
      }
      const std::string proto = portnet.substr(slash + 1);
      table* t = proto == "tcp" ? &tcp : proto == "udp" ? &udp : nullptr;
      if (t == nullptr) continue;
      t->emplace(lower(name), port);
      for (std::string alias; words >> alias;) t->emplace(lower(alias), port);
    }
  }
};

const service_tables& services() {
  static const service_tables instance;
  return instance;
}

struct protocol_table {
  table by_name{{"icmp", 1}, {"igmp", 2}, {"tcp", 6}, {"udp", 17}, {"ipv6-icmp", 58}};

  protocol_table() {
    // "name number aliases…", as Go's readProtocols reads it.
    std::ifstream in("/etc/protocols");
    std::string line;
    while (std::getline(in, line)) {
      line = line.substr(0, line.find('#'));
      std::istringstream words(line);
      std::string name;
      int number = 0;
      if (!(words >> name >> number)) continue;
      by_name.emplace(lower(name), number);
      for (std::string alias; words >> alias;) by_name.emplace(lower(alias), number);
    }
  }
};

// Go's parsePort: a decimal with an optional sign, saturating; "" is 0.
struct parsed_port {
  long long port = 0;
  bool needs_lookup = false;
};
parsed_port parse_port(std::string_view service) {
  if (service.empty()) return {0, false};
  constexpr unsigned long long cutoff = 1ULL << 30;
  bool negative = false;
  if (service[0] == '+') {
    service.remove_prefix(1);
  } else if (service[0] == '-') {
    negative = true;
    service.remove_prefix(1);
  }
  unsigned long long n = 0;
  for (char c : service) {
    if (c < '0' || c > '9') return {0, true};
    if (n >= cutoff) {
      n = cutoff;
      break;
    }
    n = n * 10 + static_cast<unsigned long long>(c - '0');
  }
  long long port = static_cast<long long>(n);
  if (!negative && n >= cutoff) port = static_cast<long long>(cutoff - 1);
  if (negative && n > cutoff) port = static_cast<long long>(cutoff);
  return {negative ? -port : port, false};
}

// Go's maxPortBufSize: longer names are never found.
constexpr std::size_t max_service_name = sizeof("mobility-header") - 1 + 10;

std::optional<int> find(const table& t, std::string_view service) {
  if (service.size() > max_service_name) return std::nullopt;
  auto it = t.find(lower(service));
  if (it == t.end()) return std::nullopt;
  return it->second;
}

}  // namespace

int lookup_port(std::string_view net, std::string_view service, error_code& ec) {
  ec.clear();
  auto [port, needs_lookup] = parse_port(service);
  if (needs_lookup) {
    const auto& s = services();
    std::optional<int> found;
    if (net == "tcp" || net == "tcp4" || net == "tcp6") {
      found = find(s.tcp, service);
    } else if (net == "udp" || net == "udp4" || net == "udp6") {
      found = find(s.udp, service);
    } else if (net == "ip" || net.empty()) {
      found = find(s.tcp, service);
      if (!found) found = find(s.udp, service);
    } else {
      ec = errc::unknown_network;
      return 0;
    }
    if (!found) {
      ec = errc::unknown_port;
      return 0;
    }
    port = *found;
  }
  if (port < 0 || port > 65535) {
    ec = errc::invalid_port;
    return 0;
  }
  return static_cast<int>(port);
}

int lookup_port(std::string_view net, std::string_view service) {
  error_code ec;
  const int port = lookup_port(net, service, ec);
  if (ec == errc::unknown_port)
    detail::throw_op(ec, {"lookup", "", "", std::string(net) + "/" + std::string(service), ""});
  if (ec) detail::throw_address_error("lookup", net, service, ec);
  return port;
}

int lookup_protocol(std::string_view name, error_code& ec) {
  static const protocol_table protocols;
  ec.clear();
  if (auto it = protocols.by_name.find(lower(name)); it != protocols.by_name.end())
    return it->second;
  ec = errc::unknown_protocol;
  return 0;
}

}  // namespace ipckit::net
