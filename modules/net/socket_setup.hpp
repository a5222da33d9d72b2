// Socket options set between socket() and connect()/bind(), as Go's sysSocket and
// setDefaultSockopts/setKeepAlive do.
#pragma once

#include "net_internal.hpp"

namespace ipckit::net::detail {

/// Control hook, keep-alive, and bind to the dialer's local address. On failure sets
/// `syscall` to the failing call and returns false.
bool setup_dial_socket(int fd, const network& n, std::string_view net_text,
                       std::string_view target, const dialer& d, const address& local,
                       std::string& syscall, error_code& ec);

/// SO_REUSEADDR on tcp, IPV6_V6ONLY as the network asks (off for dual-stack "tcp"/"udp").
bool setup_listen_socket(int fd, const network& n, int family, std::string& syscall,
                         error_code& ec);

}  // namespace ipckit::net::detail
