// What each Go network string makes: the arguments of the socket(2) system call.
//
// Go's net.Dial(network, address) turns `network` into the three ints of
// syscall.Socket(domain, typ, proto). This demo parses every network value the article
// lists with ipckit::net::parse_network, creates the socket the kernel would make, and
// asks the kernel (SO_DOMAIN, SO_TYPE, SO_PROTOCOL) what it really made.
#include <ipckit/net.hpp>
#include <ipckit/unique_fd.hpp>

#include <cstdio>
#include <string>
#include <sys/socket.h>

namespace {

const char* domain_name(int domain) {
  switch (domain) {
    case AF_UNSPEC: return "AF_UNSPEC";
    case AF_INET: return "AF_INET";
    case AF_INET6: return "AF_INET6";
    case AF_UNIX: return "AF_UNIX";
  }
  return "?";
}

const char* type_name(int type) {
  switch (type) {
    case SOCK_STREAM: return "SOCK_STREAM";
    case SOCK_DGRAM: return "SOCK_DGRAM";
    case SOCK_SEQPACKET: return "SOCK_SEQPACKET";
    case SOCK_RAW: return "SOCK_RAW";
  }
  return "?";
}

int socket_option(int fd, int option) {
  int value = -1;
  socklen_t size = sizeof value;
  ::getsockopt(fd, SOL_SOCKET, option, &value, &size);
  return value;
}

}  // namespace

int main() {
  const char* networks[] = {"tcp", "tcp4", "tcp6", "udp", "udp4", "udp6",
                            "unix", "unixgram", "unixpacket", "ip:icmp", "ip4:icmp", "ip6:ipv6-icmp"};
  std::printf("%-14s %-10s %-15s %-6s  %s\n", "network", "domain", "type", "proto", "the kernel made");
  for (const char* text : networks) {
    const ipckit::net::network n = ipckit::net::parse_network(text);
    // Dual-stack networks (AF_UNSPEC) get an AF_INET6 socket that also takes IPv4, as Go's do.
    const int domain = n.family == AF_UNSPEC ? AF_INET6 : n.family;
    ipckit::unique_fd fd(::socket(domain, n.socket_type | SOCK_CLOEXEC, n.protocol));
    std::string made;
    if (!fd) {
      made = "socket: " + ipckit::error_text(ipckit::last_error()) + " (raw sockets need CAP_NET_RAW)";
    } else {
      made = std::string(domain_name(socket_option(fd.get(), SO_DOMAIN))) + ", " +
             type_name(socket_option(fd.get(), SO_TYPE)) + ", " +
             std::to_string(socket_option(fd.get(), SO_PROTOCOL));
    }
    std::printf("%-14s %-10s %-15s %-6d  %s\n", text, domain_name(n.family), type_name(n.socket_type),
                n.protocol, made.c_str());
  }
  // A network Go does not know is refused before any socket exists.
  try {
    ipckit::net::parse_network("tcpx");
  } catch (const ipckit::system_error& e) {
    std::printf("\n\"tcpx\": %s\n", e.what());
  }
  return 0;
}
