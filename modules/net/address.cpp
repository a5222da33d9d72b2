// net::address: socket addresses printed as Go prints its Addr types, and the
// literal forms Go accepts (IP literals with zones, unix paths, "@abstract").
#include "net_internal.hpp"

#include <arpa/inet.h>
#include <net/if.h>
#include <netinet/in.h>

#include <cstring>
#include <ostream>

namespace ipckit::net {

address::address(std::string_view net, const sockaddr* data, socklen_t size) : network_(net) {
  if (data == nullptr || size > sizeof storage_) size = 0;
  if (size > 0) std::memcpy(&storage_, data, size);
  size_ = size;
}

int address::family() const noexcept { return size_ == 0 ? AF_UNSPEC : storage_.ss_family; }

int address::port() const noexcept {
  if (network_ == "ip" || size_ == 0) return 0;
  if (family() == AF_INET) return ntohs(reinterpret_cast<const sockaddr_in*>(&storage_)->sin_port);
  if (family() == AF_INET6)
    return ntohs(reinterpret_cast<const sockaddr_in6*>(&storage_)->sin6_port);
  return 0;
}

std::string address::to_string() const {
  char text[INET6_ADDRSTRLEN] = {};
  std::string host;
  switch (family()) {
    case AF_INET: {
      const auto* in = reinterpret_cast<const sockaddr_in*>(&storage_);
      ::inet_ntop(AF_INET, &in->sin_addr, text, sizeof text);
      host = text;
      break;
    }
    case AF_INET6: {
      const auto* in6 = reinterpret_cast<const sockaddr_in6*>(&storage_);
      ::inet_ntop(AF_INET6, &in6->sin6_addr, text, sizeof text);
      host = text;
      if (in6->sin6_scope_id != 0) {
        char name[IF_NAMESIZE] = {};
        host += '%';
        host += ::if_indextoname(in6->sin6_scope_id, name) ? std::string(name)
                                                            : std::to_string(in6->sin6_scope_id);
      }
      break;
    }
    case AF_UNIX: {
      const auto* un = reinterpret_cast<const sockaddr_un*>(&storage_);
      const std::size_t offset = offsetof(sockaddr_un, sun_path);
      if (size_ <= offset) return "";
      std::string path(un->sun_path, size_ - offset);
      if (path[0] == '\0') {
        path[0] = '@';  // Linux abstract name, written as Go writes it
      } else {
        path.resize(std::strlen(path.c_str()));
      }
      return path;
    }
    default:
      return "";
  }
  if (network_ == "ip") return host;
  return join_host_port(host, std::to_string(port()));
}

bool operator==(const address& a, const address& b) noexcept {
  return a.size_ == b.size_ && std::memcmp(&a.storage_, &b.storage_, a.size_) == 0;
}

std::ostream& operator<<(std::ostream& out, const address& a) { return out << a.to_string(); }

namespace detail {

address unix_address(std::string_view net, std::string_view text, error_code& ec) {
  sockaddr_un un{};
  un.sun_family = AF_UNIX;
  // "@name" is abstract, and so is "\0name" as in Go; a path must leave room for its
  // NUL, an abstract name uses every byte.
  const bool abstract = text.starts_with('@') || text.starts_with('\0');
  const std::size_t room = sizeof un.sun_path - (abstract ? 0 : 1);
  if (text.size() > room) {
    ec = errc::path_too_long;
    return {};
  }
  if (!abstract && text.find('\0') != std::string_view::npos) {
    // The kernel would take the path only up to the NUL: another file than asked for.
    ec = errc::invalid_address;
    return {};
  }
  std::memcpy(un.sun_path, text.data(), text.size());
  socklen_t size = static_cast<socklen_t>(offsetof(sockaddr_un, sun_path) + text.size());
  if (abstract) {
    un.sun_path[0] = '\0';
  } else if (!text.empty()) {
    size += 1;
  }
  ec.clear();
  return address(net, reinterpret_cast<const sockaddr*>(&un), size);
}

bool parse_ip(std::string_view host, int port, std::string_view net, address& out) {
  // inet_pton reads up to a NUL: "127.0.0.1\0junk" is no literal.
  if (host.find('\0') != std::string_view::npos) return false;
  std::string text(host);
  std::string zone;
  if (auto percent = text.find('%'); percent != std::string::npos) {
    zone = text.substr(percent + 1);
    text.resize(percent);
  }
  sockaddr_in in{};
  if (zone.empty() && ::inet_pton(AF_INET, text.c_str(), &in.sin_addr) == 1) {
    in.sin_family = AF_INET;
    in.sin_port = htons(static_cast<uint16_t>(port));
    out = address(net, reinterpret_cast<const sockaddr*>(&in), sizeof in);
    return true;
  }
  sockaddr_in6 in6{};
  if (::inet_pton(AF_INET6, text.c_str(), &in6.sin6_addr) != 1) return false;
  if (IN6_IS_ADDR_V4MAPPED(&in6.sin6_addr)) {
    // An IPv4-mapped address is IPv4, as in Go (To4() != nil), a zone or not: IPv4 has
    // no zone, and keeping it as IPv6 would not survive printing and parsing again.
    in.sin_family = AF_INET;
    in.sin_port = htons(static_cast<uint16_t>(port));
    std::memcpy(&in.sin_addr, &in6.sin6_addr.s6_addr[12], 4);
    out = address(net, reinterpret_cast<const sockaddr*>(&in), sizeof in);
    return true;
  }
  in6.sin6_family = AF_INET6;
  in6.sin6_port = htons(static_cast<uint16_t>(port));
  if (!zone.empty()) {
    in6.sin6_scope_id = ::if_nametoindex(zone.c_str());
    if (in6.sin6_scope_id == 0) {
      auto number = std::strtoul(zone.c_str(), nullptr, 10);
      in6.sin6_scope_id = static_cast<uint32_t>(number);
    }
  }
  out = address(net, reinterpret_cast<const sockaddr*>(&in6), sizeof in6);
  return true;
}

address any_address(std::string_view net, int family, int port) {
  address out;
  parse_ip(family == AF_INET6 ? "::" : "0.0.0.0", port, net, out);
  return out;
}

address loopback_address(std::string_view net, int family, int port) {
  address out;
  parse_ip(family == AF_INET6 ? "::1" : "127.0.0.1", port, net, out);
  return out;
}

bool family_fits(int family, const address& a) {
  return family == AF_UNSPEC || family == a.family();
}

std::string address_network_of(const network& n) {
  if (n.is_unix()) return n.name;
  if (n.is_ip()) return "ip";
  return n.socket_type == SOCK_STREAM ? "tcp" : "udp";
}

unique_fd open_socket(const network& n, int family, bool non_blocking, error_code& ec) {
  ec.clear();
  unique_fd fd(::socket(family, n.socket_type | SOCK_CLOEXEC | (non_blocking ? SOCK_NONBLOCK : 0),
                        n.protocol));
  if (!fd) ec = last_error();
  return fd;
}

split_address split_ip_address(const network& n, std::string_view text, bool for_dial,
                               error_code& ec) {
  split_address out;
  std::string host;
  if (n.is_ip()) {
    host = text;  // ip networks take a host without a port
  } else {
    auto hp = split_host_port(text, ec);
    if (ec) return out;
    out.port = lookup_port(n.name, hp.port, ec);
    if (ec) return out;
    host = std::move(hp.host);
  }
  ec.clear();
  const std::string net = address_network_of(n);
  if (host.empty()) {
    // Go: an empty host is the local system for dial, every interface for listen.
    const int family = n.family == AF_INET6 ? AF_INET6 : AF_INET;
    out.literal.push_back(for_dial ? loopback_address(net, family, out.port)
                                   : any_address(net, n.family == AF_UNSPEC ? AF_INET6 : family,
                                                 out.port));
    return out;
  }
  address literal;
  if (parse_ip(host, out.port, net, literal)) {
    if (!family_fits(n.family, literal)) {
      ec = errc::no_suitable_address;
      return out;
    }
    out.literal.push_back(literal);
    return out;
  }
  if (host.find('\0') != std::string::npos) {
    // getaddrinfo would look up the name only up to the NUL; Go's resolvers refuse it.
    ec = errc::no_such_host;
    return out;
  }
  out.host = std::move(host);
  return out;
}

std::vector<address> lookup_host(const network& n, std::string_view host, int port,
                                  error_code& ec) {
  addrinfo hints{};
  hints.ai_family = n.family;
  hints.ai_socktype = n.is_ip() ? SOCK_RAW : n.socket_type;
  hints.ai_flags = AI_ADDRCONFIG;
  addrinfo* list = nullptr;
  std::string name(host);
  const int rc = ::getaddrinfo(name.c_str(), nullptr, &hints, &list);
  std::vector<address> out;
  if (rc != 0) {
    ec = rc == EAI_SYSTEM ? last_error() : error_code(errc::no_such_host);
    return out;
  }
  const std::string net = address_network_of(n);
  for (addrinfo* ai = list; ai != nullptr; ai = ai->ai_next) {
    address a(net, ai->ai_addr, ai->ai_addrlen);
    if (ai->ai_family == AF_INET)
      reinterpret_cast<sockaddr_in*>(a.data())->sin_port = htons(static_cast<uint16_t>(port));
    else if (ai->ai_family == AF_INET6)
      reinterpret_cast<sockaddr_in6*>(a.data())->sin6_port = htons(static_cast<uint16_t>(port));
    else
      continue;
    if (family_fits(n.family, a) && std::find(out.begin(), out.end(), a) == out.end())
      out.push_back(a);
  }
  ::freeaddrinfo(list);
  ec.clear();
  if (out.empty()) ec = errc::no_suitable_address;
  return out;
}

}  // namespace detail

address resolve_address(std::string_view net, std::string_view text, error_code& ec) {
  network n = detail::parse_resolver_network(net, ec);
  if (ec) return {};
  if (n.is_unix()) return detail::unix_address(n.name, text, ec);
  auto split = detail::split_ip_address(n, text, true, ec);
  if (ec) return {};
  if (!split.literal.empty()) return split.literal.front();
  auto found = detail::lookup_host(n, split.host, split.port, ec);
  return ec ? address() : found.front();
}

address resolve_address(std::string_view net, std::string_view text) {
  error_code ec;
  auto a = resolve_address(net, text, ec);
  if (ec) detail::throw_op(ec, detail::resolve_context("resolve", net, text, ec, text));
  return a;
}

}  // namespace ipckit::net
