// Private helpers shared by the net module's files.
#pragma once

#include <ipckit/net.hpp>

#include <sys/un.h>

#include <string>
#include <string_view>

namespace ipckit::net::detail {

/// Throws an op_error whose what() reads like Go's; an unknown network gets its name
/// appended as Go's UnknownNetworkError prints it ("unknown network tcpx").
[[noreturn]] void throw_op(const error_code& ec, error_context where);
/// "op net: address ADDR: text" (Go's AddrError inside an OpError).
[[noreturn]] void throw_address_error(std::string_view op, std::string_view net,
                                      std::string_view addr, const error_code& ec);
/// "op net addr: unknown network net".
[[noreturn]] void throw_network_error(std::string_view op, std::string_view net,
                                      std::string_view addr, const error_code& ec);

/// The context Go's OpError would carry for an error found while resolving `addr`:
/// address errors name the address, lookups name what was looked up.
error_context resolve_context(std::string_view op, std::string_view net, std::string_view addr,
                              const error_code& ec, std::string_view detail_text);

/// parse_network as Go's resolvers call it (needsProto false): "ip4" alone is protocol 0,
/// "ip4:icmp" is read as well; Dial, Listen and ListenPacket need the protocol.
network parse_resolver_network(std::string_view text, error_code& ec);

/// A unix address: a path, "@abstract", or "" (unnamed: autobind when bound).
address unix_address(std::string_view net, std::string_view text, error_code& ec);

/// Parses an IP literal (with %zone for IPv6); IPv4-mapped IPv6 becomes IPv4.
bool parse_ip(std::string_view host, int port, std::string_view net, address& out);

/// The wildcard or loopback address of `family` with `port`.
address any_address(std::string_view net, int family, int port);
address loopback_address(std::string_view net, int family, int port);

/// Whether `a` suits network family `family` (AF_UNSPEC takes both).
bool family_fits(int family, const address& a);

/// The network name addresses of `n` carry: "tcp", "udp", "ip", "unix", "unixgram" …
std::string address_network_of(const network& n);

/// A socket for `n` in `family`, close-on-exec; non-blocking only when asked (a dial's
/// connect, a listener): the sockets handed to users start blocking (docs/net.md).
unique_fd open_socket(const network& n, int family, bool non_blocking, error_code& ec);

/// getaddrinfo, blocking: the addresses of `host` for network `n`, filtered by family.
std::vector<address> lookup_host(const network& n, std::string_view host, int port,
                                 error_code& ec);

/// Splits and resolves "host:port" (or "host" for ip networks) without name lookups:
/// literal hosts give `out`, a name gives `name_to_lookup` and the port.
struct split_address {
  std::string host;  ///< non-empty when a name lookup is needed
  int port = 0;
  std::vector<address> literal;  ///< the address when host was a literal or empty
};
split_address split_ip_address(const network& n, std::string_view text, bool for_dial,
                               error_code& ec);

}  // namespace ipckit::net::detail
