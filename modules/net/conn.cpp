// net::conn and net::packet_conn: thin handles over an Asio socket of any family/type.
#include "net_internal.hpp"

#include <fcntl.h>
#include <poll.h>
#include <sys/socket.h>

#include <cerrno>

namespace ipckit::net {
namespace {

int socket_option(int fd, int option) {
  int value = 0;
  socklen_t size = sizeof value;
  ::getsockopt(fd, SOL_SOCKET, option, &value, &size);
  return value;
}

detail::any_protocol protocol_of(int fd) {
  return {socket_option(fd, SO_DOMAIN), socket_option(fd, SO_TYPE),
          socket_option(fd, SO_PROTOCOL)};
}

// As Go's ZeroReadIsEOF: on a connection, a 0-byte read on seqpacket is EOF as on a
// stream, so Asio is told it is stream-oriented (its 0-byte writes are then no-ops).
detail::any_protocol conn_protocol_of(int fd) {
  auto p = protocol_of(fd);
  if (p.type() == SOCK_SEQPACKET) return {p.family(), SOCK_STREAM, p.protocol()};
  return p;
}

// The network name addresses carry for a network string: "ip4:icmp" -> "ip", "tcp6" -> "tcp".
std::string address_network(std::string_view net) {
  error_code ec;
  network n = parse_network(net, ec);
  return ec ? std::string(net) : detail::address_network_of(n);
}

bool has_non_blocking_flag(int fd) { return (::fcntl(fd, F_GETFL) & O_NONBLOCK) != 0; }

// Puts back blocking mode on a socket that came in blocking, if Asio's first async
// operation switched it (Asio keeps that switch in its internal flag).
template <class Socket>
void restore_mode(Socket& socket, bool came_non_blocking) {
  if (came_non_blocking || !socket.native_non_blocking()) return;
  error_code ignored;
  socket.native_non_blocking(false, ignored);
}

address name_of(int fd, std::string_view net, bool peer) {
  address a(net, nullptr, 0);
  socklen_t size = address::capacity();
  if (fd < 0) return a;
  const int rc = peer ? ::getpeername(fd, a.data(), &size) : ::getsockname(fd, a.data(), &size);
  if (rc == 0) a.resize(size);
  return a;
}

}  // namespace

conn::conn(const executor_type& ex) : socket_(ex) {}

conn::conn(const executor_type& ex, std::string_view net, unique_fd fd, error_code& ec)
    : socket_(ex), network_(net) {
  const int raw = fd.get();
  const auto protocol = conn_protocol_of(raw);
  socket_.assign(protocol, raw, ec);
  if (ec) return;
  fd.release();
  stream_ = protocol.type() == SOCK_STREAM;
  came_non_blocking_ = has_non_blocking_flag(raw);
}

conn::conn(const executor_type& ex, std::string_view net, unique_fd fd) : socket_(ex), network_(net) {
  error_code ec;
  const int raw = fd.get();
  const auto protocol = conn_protocol_of(raw);
  socket_.assign(protocol, raw, ec);
  if (ec) detail::throw_op(ec, {"assign", std::string(net), "", "", ""});
  fd.release();
  stream_ = protocol.type() == SOCK_STREAM;
  came_non_blocking_ = has_non_blocking_flag(raw);
}

address conn::local_address() const {
  return name_of(const_cast<socket_type&>(socket_).native_handle(), address_network(network_), false);
}

address conn::remote_address() const {
  address a = name_of(const_cast<socket_type&>(socket_).native_handle(), address_network(network_), true);
  return a.empty() && is_open() ? dialed_ : a;
}

void conn::fail(const char* op, const error_code& ec) const {
  detail::throw_op(ec, {op, network_, local_address().to_string(),
                        remote_address().to_string(), ""});
}

void conn::shutdown(socket_type::shutdown_type what, error_code& ec) { socket_.shutdown(what, ec); }

void conn::shutdown(socket_type::shutdown_type what) {
  error_code ec;
  shutdown(what, ec);
  if (ec) fail("shutdown", ec);
}

void conn::cancel() {
  error_code ignored;
  socket_.cancel(ignored);
}

void conn::close(error_code& ec) { socket_.close(ec); }

void conn::close() {
  error_code ec;
  socket_.close(ec);
  if (ec) detail::throw_op(ec, {"close", network_, "", "", ""});
}

unique_fd conn::release() {
  if (!socket_.is_open()) return {};
  restore_mode(socket_, came_non_blocking_);
  error_code ec;
  return unique_fd(socket_.release(ec));
}

// ---- packet_conn ------------------------------------------------------------------------

packet_conn::packet_conn(const executor_type& ex) : socket_(ex) {}

packet_conn::packet_conn(const executor_type& ex, std::string_view net, unique_fd fd)
    : socket_(ex), network_(net) {
  error_code ec;
  const int raw = fd.get();
  socket_.assign(protocol_of(raw), raw, ec);
  if (ec) detail::throw_op(ec, {"assign", std::string(net), "", "", ""});
  fd.release();
  came_non_blocking_ = has_non_blocking_flag(raw);
}

std::string packet_conn::address_network() const { return net::address_network(network_); }

address packet_conn::local_address() const {
  return name_of(const_cast<socket_type&>(socket_).native_handle(), address_network(), false);
}

void packet_conn::fail(const char* op, const address* to, const error_code& ec) const {
  detail::throw_op(ec, {op, network_, local_address().to_string(),
                        to != nullptr ? to->to_string() : std::string(), ""});
}

std::size_t packet_conn::send_to(boost::asio::const_buffer data, const address& to,
                                 error_code& ec) {
  if (write_deadline_ != steady_time{}) {
    socklen_t size = to.size();
    return detail::transfer_until(socket_.native_handle(), true, ipckit::detail::iovec_array(data), false,
                                  write_deadline_, ec, const_cast<sockaddr*>(to.data()), &size);
  }
  return detail::retry_interrupted(
      ec, [&] { return socket_.send_to(boost::asio::buffer(data), to_endpoint(to), 0, ec); });
}

std::size_t packet_conn::send_to(boost::asio::const_buffer data, const address& to) {
  error_code ec;
  const std::size_t n = send_to(data, to, ec);
  if (ec) fail("write", &to, ec);
  return n;
}

std::size_t packet_conn::receive_from(boost::asio::mutable_buffer data, address& from,
                                      error_code& ec) {
  endpoint_type sender;
  std::size_t n = 0;
  if (read_deadline_ != steady_time{}) {
    socklen_t size = static_cast<socklen_t>(sender.capacity());
    n = detail::transfer_until(socket_.native_handle(), false, ipckit::detail::iovec_array(data), false,
                               read_deadline_, ec, sender.data(), &size);
    if (!ec) sender.resize(size);
  } else {
    n = detail::retry_interrupted(
        ec, [&] { return socket_.receive_from(boost::asio::buffer(data), sender, 0, ec); });
  }
  from = ec ? address(address_network(), nullptr, 0)
            : address(address_network(), sender.data(), static_cast<socklen_t>(sender.size()));
  return n;
}

std::size_t packet_conn::receive_from(boost::asio::mutable_buffer data, address& from) {
  error_code ec;
  const std::size_t n = receive_from(data, from, ec);
  if (ec) fail("read", nullptr, ec);
  return n;
}

void packet_conn::cancel() {
  error_code ignored;
  socket_.cancel(ignored);
}

void packet_conn::close(error_code& ec) { socket_.close(ec); }

void packet_conn::close() {
  error_code ec;
  socket_.close(ec);
  if (ec) detail::throw_op(ec, {"close", network_, "", "", ""});
}

unique_fd packet_conn::release() {
  if (!socket_.is_open()) return {};
  restore_mode(socket_, came_non_blocking_);
  error_code ec;
  return unique_fd(socket_.release(ec));
}

namespace detail {

bool wait_ready_until(int fd, short events, steady_time deadline, error_code& ec) {
  for (;;) {
    const auto left = deadline - std::chrono::steady_clock::now();
    if (left <= std::chrono::nanoseconds(0)) {
      ec = ipckit::errc::timeout;
      return false;
    }
    // Rounded up, so that a wait never ends before the deadline and spins.
    const auto ms = std::chrono::ceil<std::chrono::milliseconds>(left).count();
    pollfd p{fd, events, 0};
    const int rc = ::poll(&p, 1, ms > 1'000'000 ? 1'000'000 : static_cast<int>(ms));
    if (rc > 0) {
      ec = {};
      return true;
    }
    if (rc < 0 && errno != EINTR) {
      ec = last_error();
      return false;
    }
  }
}

std::size_t transfer_until(int fd, bool write, const ipckit::detail::iovec_array& buffers, bool stream,
                           steady_time deadline, error_code& ec, void* name, socklen_t* name_size) {
  ec.clear();
  if (fd < 0) {
    ec = boost::asio::error::bad_descriptor;
    return 0;
  }
  if (deadline <= std::chrono::steady_clock::now()) {
    ec = ipckit::errc::timeout;  // Go: a call after its deadline fails, data or not
    return 0;
  }
  if (stream && buffers.total == 0) return 0;
  msghdr msg{};
  msg.msg_iov = const_cast<iovec*>(buffers.iov.data());
  msg.msg_iovlen = static_cast<std::size_t>(buffers.count);
  for (;;) {
    msg.msg_name = name;
    msg.msg_namelen = name_size != nullptr ? *name_size : 0;
    const ssize_t n = write ? ::sendmsg(fd, &msg, MSG_DONTWAIT | MSG_NOSIGNAL)
                            : ::recvmsg(fd, &msg, MSG_DONTWAIT);
    if (n >= 0) {
      if (!write && name_size != nullptr) *name_size = msg.msg_namelen;
      if (n == 0 && !write && stream) ec = boost::asio::error::eof;
      return static_cast<std::size_t>(n);
    }
    if (errno == EINTR) continue;
    if (errno != EAGAIN && errno != EWOULDBLOCK) {
      ec = last_error();
      return 0;
    }
    if (!wait_ready_until(fd, write ? POLLOUT : POLLIN, deadline, ec)) return 0;
  }
}

}  // namespace detail

}  // namespace ipckit::net
