// Unix extras on net::conn: descriptors passed with data (SCM_RIGHTS) and peer
// credentials (SO_PEERCRED).
#include "net_internal.hpp"
#include "scm_rights.hpp"

#include <sys/socket.h>

#include <cstring>

namespace ipckit::net {

std::size_t conn::write_with_fds(boost::asio::const_buffer data, std::span<const int> fds,
                                 error_code& ec) {
  ec.clear();
  iovec iov{const_cast<void*>(data.data()), data.size()};
  std::vector<char> control(CMSG_SPACE(sizeof(int) * fds.size()));
  msghdr msg{};
  msg.msg_iov = &iov;
  msg.msg_iovlen = 1;
  if (!fds.empty()) {
    msg.msg_control = control.data();
    msg.msg_controllen = control.size();
    cmsghdr* cmsg = CMSG_FIRSTHDR(&msg);
    cmsg->cmsg_level = SOL_SOCKET;
    cmsg->cmsg_type = SCM_RIGHTS;
    cmsg->cmsg_len = CMSG_LEN(sizeof(int) * fds.size());
    std::memcpy(CMSG_DATA(cmsg), fds.data(), sizeof(int) * fds.size());
  }
  for (;;) {
    const ssize_t n = ::sendmsg(native_handle(), &msg, MSG_NOSIGNAL | MSG_DONTWAIT);
    if (n >= 0) return static_cast<std::size_t>(n);
    if (errno == EINTR) continue;
    if (errno != EAGAIN) break;
    detail::retry_interrupted(ec, [&] { return socket_.wait(socket_type::wait_write, ec); });
    if (ec) return 0;
  }
  ec = last_error();
  return 0;
}

std::size_t conn::write_with_fds(boost::asio::const_buffer data, std::span<const int> fds) {
  error_code ec;
  const std::size_t n = write_with_fds(data, fds, ec);
  if (ec) fail("write", ec);
  return n;
}

std::size_t conn::read_with_fds(boost::asio::mutable_buffer data, std::vector<unique_fd>& fds,
                                std::size_t max_fds, error_code& ec) {
  ec.clear();
  iovec iov{data.data(), data.size()};
  std::vector<char> control(CMSG_SPACE(sizeof(int) * std::max<std::size_t>(max_fds, 1)));
  msghdr msg{};
  ssize_t n = 0;
  for (;;) {
    msg = {};
    msg.msg_iov = &iov;
    msg.msg_iovlen = 1;
    msg.msg_control = control.data();
    msg.msg_controllen = control.size();
    n = ::recvmsg(native_handle(), &msg, MSG_CMSG_CLOEXEC | MSG_DONTWAIT);
    if (n >= 0) break;
    if (errno == EINTR) continue;
    if (errno != EAGAIN) {
      ec = last_error();
      return 0;
    }
    detail::retry_interrupted(ec, [&] { return socket_.wait(socket_type::wait_read, ec); });
    if (ec) return 0;
  }
  // Every descriptor that arrived is owned (and closed on truncation) before judging.
  std::vector<unique_fd> received;
  ec = detail::take_received_fds(
      {reinterpret_cast<const std::byte*>(control.data()), msg.msg_controllen}, msg.msg_flags,
      max_fds, received);
  if (ec) return static_cast<std::size_t>(n);
  int type = 0;
  socklen_t type_size = sizeof type;
  ::getsockopt(native_handle(), SOL_SOCKET, SO_TYPE, &type, &type_size);
  if (n == 0 && data.size() != 0 && type != SOCK_DGRAM && received.empty())
    ec = boost::asio::error::eof;  // as read_some reports a closed stream
  for (auto& fd : received) fds.push_back(std::move(fd));
  return static_cast<std::size_t>(n);
}

std::size_t conn::read_with_fds(boost::asio::mutable_buffer data, std::vector<unique_fd>& fds,
                                std::size_t max_fds) {
  error_code ec;
  const std::size_t n = read_with_fds(data, fds, max_fds, ec);
  if (ec) fail("read", ec);
  return n;
}

credentials conn::peer_credentials(error_code& ec) const {
  ucred cred{};
  socklen_t size = sizeof cred;
  ec.clear();
  if (::getsockopt(const_cast<socket_type&>(socket_).native_handle(), SOL_SOCKET, SO_PEERCRED,
                   &cred, &size) != 0) {
    ec = last_error();
    return {};
  }
  return {cred.pid, cred.uid, cred.gid};
}

credentials conn::peer_credentials() const {
  error_code ec;
  auto c = peer_credentials(ec);
  if (ec) fail("getsockopt", ec);
  return c;
}

}  // namespace ipckit::net
