#include "socket_setup.hpp"

#include <netinet/in.h>
#include <netinet/tcp.h>

namespace ipckit::net::detail {
namespace {

bool set_int(int fd, int level, int option, int value, error_code& ec) {
  if (::setsockopt(fd, level, option, &value, sizeof value) == 0) return true;
  ec = last_error();
  return false;
}

}  // namespace

bool setup_dial_socket(int fd, const network& n, std::string_view net_text,
                       std::string_view target, const dialer& d, const address& local,
                       std::string& syscall, error_code& ec) {
  ec.clear();
  // Go disables Nagle on every TCP connection; set before the control hook, so the hook
  // may turn it back on.
  if (n.socket_type == SOCK_STREAM && !n.is_unix() && !set_int(fd, IPPROTO_TCP, TCP_NODELAY, 1, ec)) {
    syscall = "setsockopt";
    return false;
  }
  if (d.control) {
    d.control(net_text, target, fd, ec);
    if (ec) return false;
  }
  if (n.socket_type == SOCK_STREAM && !n.is_unix() && d.keep_alive >= std::chrono::nanoseconds(0)) {
    // Go's default keep-alive period is 15 s; it sets both idle time and interval.
    const auto period = d.keep_alive > std::chrono::nanoseconds(0)
                            ? std::chrono::duration_cast<std::chrono::seconds>(d.keep_alive)
                            : std::chrono::seconds(15);
    const int seconds = std::max<int>(1, static_cast<int>(period.count()));
    syscall = "setsockopt";
    if (!set_int(fd, SOL_SOCKET, SO_KEEPALIVE, 1, ec) ||
        !set_int(fd, IPPROTO_TCP, TCP_KEEPIDLE, seconds, ec) ||
        !set_int(fd, IPPROTO_TCP, TCP_KEEPINTVL, seconds, ec))
      return false;
  }
  if (!local.empty()) {
    syscall = "bind";
    if (::bind(fd, local.data(), local.size()) != 0) {
      ec = last_error();
      return false;
    }
  }
  syscall.clear();
  return true;
}

bool setup_listen_socket(int fd, const network& n, int family, std::string& syscall,
                         error_code& ec) {
  ec.clear();
  syscall = "setsockopt";
  // Accepted connections inherit TCP_NODELAY from the listener (Go sets it on each).
  if (n.socket_type == SOCK_STREAM && !n.is_unix() &&
      (!set_int(fd, SOL_SOCKET, SO_REUSEADDR, 1, ec) || !set_int(fd, IPPROTO_TCP, TCP_NODELAY, 1, ec)))
    return false;
  if (family == AF_INET6 && !set_int(fd, IPPROTO_IPV6, IPV6_V6ONLY, n.family == AF_INET6 ? 1 : 0, ec))
    return false;
  syscall.clear();
  return true;
}

}  // namespace ipckit::net::detail
