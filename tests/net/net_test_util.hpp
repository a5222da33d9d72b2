// Helpers shared by the net tests: a listener whose accept queue is full (so a connect
// hangs), and running the loop until a flag is set.
#pragma once

#include "test_support.hpp"

#include <ipckit/net.hpp>
#include <ipckit/unique_fd.hpp>

#include <arpa/inet.h>
#include <netinet/in.h>
#include <poll.h>
#include <sys/socket.h>

#include <cerrno>
#include <filesystem>
#include <string>
#include <system_error>
#include <utility>
#include <vector>

namespace ipckit::test {

/// A tcp4 listener on 127.0.0.1 with backlog 0, filled until a further connect hangs.
/// address() is where a dial will stay pending. Nothing ever accepts.
class full_backlog {
 public:
  full_backlog() {
    listener_.reset(::socket(AF_INET, SOCK_STREAM | SOCK_CLOEXEC, 0));
    sockaddr_in in{};
    in.sin_family = AF_INET;
    in.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
    ::bind(listener_.get(), reinterpret_cast<sockaddr*>(&in), sizeof in);
    ::listen(listener_.get(), 0);
    socklen_t size = sizeof in;
    ::getsockname(listener_.get(), reinterpret_cast<sockaddr*>(&in), &size);
    port_ = ntohs(in.sin_port);
    for (int i = 0; i < 16 && !full_; ++i) {
      unique_fd fd(::socket(AF_INET, SOCK_STREAM | SOCK_CLOEXEC | SOCK_NONBLOCK, 0));
      if (::connect(fd.get(), reinterpret_cast<sockaddr*>(&in), sizeof in) != 0) {
        pollfd p{fd.get(), POLLOUT, 0};
        // A connect still pending after 200 ms had its SYN dropped: the queue is full.
        if (::poll(&p, 1, 200) == 0) full_ = true;
      }
      fillers_.push_back(std::move(fd));
    }
  }
  bool full() const { return full_; }
  std::string address() const { return "127.0.0.1:" + std::to_string(port_); }

 private:
  unique_fd listener_;
  std::vector<unique_fd> fillers_;
  int port_ = 0;
  bool full_ = false;
};

/// A connected pair on `network` (tcp4, unix, unixpacket, udp4, unixgram), unix paths in
/// `dir`: the dialed end and the other end (accepted; for datagram networks the
/// listen_packet socket, connected back to the dialed one).
inline std::pair<net::conn, net::conn> connected_pair(const net::executor_type& ex,
                                                      const std::string& network,
                                                      const std::filesystem::path& dir) {
  if (network == "udp4" || network == "unixgram") {
    const bool unix = network == "unixgram";
    net::packet_conn p = net::listen_packet(ex, network, unix ? (dir / "there.sock").string() : "127.0.0.1:0");
    net::dialer d;
    if (unix) d.local_address = (dir / "here.sock").string();
    net::conn c = d.dial(ex, network, p.local_address().to_string());
    unique_fd fd = p.release();
    const net::address back = c.local_address();
    if (::connect(fd.get(), back.data(), back.size()) != 0)
      throw std::system_error(errno, std::generic_category(), "connect back");
    return {std::move(c), net::conn(ex, network, std::move(fd))};
  }
  const std::string where = network.starts_with("unix") ? (dir / "s.sock").string() : "127.0.0.1:0";
  net::listener l = net::listen(ex, network, where);
  net::conn c = net::dial(ex, network, l.addr().to_string());
  return {std::move(c), l.accept()};
}

inline bool has_ipv6_loopback() {
  unique_fd fd(::socket(AF_INET6, SOCK_STREAM | SOCK_CLOEXEC, 0));
  sockaddr_in6 in6{};
  in6.sin6_family = AF_INET6;
  in6.sin6_addr = in6addr_loopback;
  return fd && ::bind(fd.get(), reinterpret_cast<sockaddr*>(&in6), sizeof in6) == 0;
}

}  // namespace ipckit::test
