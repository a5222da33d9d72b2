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

#include <string>
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

inline bool has_ipv6_loopback() {
  unique_fd fd(::socket(AF_INET6, SOCK_STREAM | SOCK_CLOEXEC, 0));
  sockaddr_in6 in6{};
  in6.sin6_family = AF_INET6;
  in6.sin6_addr = in6addr_loopback;
  return fd && ::bind(fd.get(), reinterpret_cast<sockaddr*>(&in6), sizeof in6) == 0;
}

}  // namespace ipckit::test
