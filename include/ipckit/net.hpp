// Go's net package on Boost.Asio: Dial, Listen and ListenPacket for every Go network
// string ("tcp", "udp6", "unixpacket", "ip4:icmp" …), Go's address rules and error texts.
//
// Thread safety: as Asio's sockets. Distinct objects are independent; one object is used
// by one thread at a time (or through a strand). The parsers are thread safe.
#pragma once

#include <ipckit/detail/deadline_io.hpp>
#include <ipckit/detail/draining_handler.hpp>
#include <ipckit/detail/net_protocol.hpp>
#include <ipckit/error.hpp>
#include <ipckit/unique_fd.hpp>

#include <boost/asio/any_io_executor.hpp>
#include <boost/asio/async_result.hpp>
#include <boost/asio/basic_datagram_socket.hpp>
#include <boost/asio/basic_stream_socket.hpp>
#include <boost/asio/compose.hpp>
#include <boost/asio/steady_timer.hpp>

#include <poll.h>
#include <sys/socket.h>
#include <sys/types.h>

#include <chrono>
#include <functional>
#include <iosfwd>
#include <optional>
#include <span>
#include <string>
#include <string_view>
#include <type_traits>
#include <vector>

namespace ipckit::net {

using executor_type = boost::asio::any_io_executor;
using steady_time = std::chrono::steady_clock::time_point;

/// The module's errors, with Go's texts (net.AddrError, UnknownNetworkError …).
enum class errc {
  unknown_network = 1,         ///< "unknown network" (thrown form: "unknown network tcpx")
  unknown_protocol,            ///< "unknown IP protocol specified"
  missing_address,             ///< "missing address"
  missing_port,                ///< "missing port in address"
  too_many_colons,             ///< "too many colons in address"
  unexpected_bracket,          ///< "unexpected '[' in address"
  unexpected_closing_bracket,  ///< "unexpected ']' in address"
  missing_bracket,             ///< "missing ']' in address"
  invalid_port,                ///< "invalid port"
  unknown_port,                ///< "unknown port"
  no_suitable_address,         ///< "no suitable address found"
  wrong_operation,             ///< "unexpected address type": listen on udp, listen_packet on tcp
  no_such_host,                ///< "no such host"
  invalid_address,             ///< "invalid address": not an IP literal where one is needed
  path_too_long,               ///< a unix path that does not fit sun_path (107 bytes)
  control_truncated,           ///< fds did not fit the control buffer; all received were closed
  insecure_directory,          ///< listen_config::private_directory found a directory others control
};
const boost::system::error_category& category() noexcept;
error_code make_error_code(errc e) noexcept;

// ---- parsers (parse.cpp, port.cpp) ------------------------------------------------------

struct host_port {
  std::string host;
  std::string port;
  friend bool operator==(const host_port&, const host_port&) = default;
};

/// Go's SplitHostPort: "host:port", "[v6%zone]:port"; the port may be empty or a name.
host_port split_host_port(std::string_view hostport, error_code& ec);
host_port split_host_port(std::string_view hostport);
/// Go's JoinHostPort: brackets a host that has a colon.
std::string join_host_port(std::string_view host, std::string_view port);

/// A parsed Go network string.
struct network {
  int family = AF_UNSPEC;  ///< AF_UNSPEC (dual stack tcp, udp, ip), AF_INET, AF_INET6, AF_UNIX
  int socket_type = 0;     ///< SOCK_STREAM, SOCK_DGRAM, SOCK_SEQPACKET, SOCK_RAW
  int protocol = 0;        ///< the IP protocol of ip networks ("ip4:icmp" -> 1), else 0
  std::string name;        ///< Go's afnet: "tcp4", "unixgram", "ip4" (for "ip4:icmp")

  bool is_unix() const noexcept { return family == AF_UNIX; }
  bool is_ip() const noexcept { return socket_type == SOCK_RAW; }
  /// Listen (not ListenPacket) networks: tcp*, unix, unixpacket.
  bool is_stream() const noexcept { return socket_type == SOCK_STREAM || socket_type == SOCK_SEQPACKET; }
};

/// Go's parseNetwork as Dial and Listen use it: the exact network set, case-sensitive;
/// ip networks need ":PROTO" (a decimal number or a name from /etc/protocols, any case).
network parse_network(std::string_view text, error_code& ec);
network parse_network(std::string_view text);

/// Go's LookupPort: a decimal port, or a service name from /etc/services (plus Go's
/// built-ins) for tcp*, udp* and ip; "" is port 0.
int lookup_port(std::string_view network, std::string_view service, error_code& ec);
int lookup_port(std::string_view network, std::string_view service);

/// An IP protocol number by name (/etc/protocols plus built-ins), case-insensitive.
int lookup_protocol(std::string_view name, error_code& ec);

// ---- addresses (address.cpp) -------------------------------------------------------------

/// A socket address with its network name: Go's net.Addr (TCPAddr, UDPAddr, IPAddr,
/// UnixAddr). to_string() prints it as Go does: "127.0.0.1:80", "[::1%lo]:80",
/// "127.0.0.1" (ip), "/run/x.sock", "@abstract", "" (an unnamed unix socket).
class address {
 public:
  address() = default;
  address(std::string_view network, const sockaddr* data, socklen_t size);

  const std::string& network() const noexcept { return network_; }
  std::string to_string() const;
  int family() const noexcept;
  int port() const noexcept;  ///< 0 for unix and ip addresses
  bool empty() const noexcept { return size_ == 0; }

  const sockaddr* data() const noexcept { return reinterpret_cast<const sockaddr*>(&storage_); }
  sockaddr* data() noexcept { return reinterpret_cast<sockaddr*>(&storage_); }
  socklen_t size() const noexcept { return size_; }
  void resize(socklen_t size) noexcept { size_ = size; }
  static constexpr socklen_t capacity() noexcept { return sizeof(sockaddr_storage); }

  friend bool operator==(const address& a, const address& b) noexcept;

 private:
  std::string network_;
  sockaddr_storage storage_{};
  socklen_t size_ = 0;
};
std::ostream& operator<<(std::ostream& out, const address& a);

/// Go's ResolveTCPAddr/ResolveUDPAddr/ResolveIPAddr/ResolveUnixAddr in one call: the
/// first address `text` names on `net` (host names resolved by getaddrinfo, blocking).
address resolve_address(std::string_view net, std::string_view text, error_code& ec);
address resolve_address(std::string_view net, std::string_view text);

/// Peer credentials of a connected unix socket (SO_PEERCRED).
struct credentials {
  pid_t pid = 0;
  uid_t uid = 0;
  gid_t gid = 0;
};

// ---- connections (conn.cpp, unix.cpp) ------------------------------------------------------

namespace detail {
struct conn_access;

/// Runs a blocking Asio socket call again while it fails with EINTR. Asio hands EINTR
/// back from its blocking calls (a handler installed without SA_RESTART makes recv,
/// send and poll return it); Go's net, and ipckit, never show it to the caller.
template <class Call>
auto retry_interrupted(error_code& ec, Call call) {
  for (;;) {
    if constexpr (std::is_void_v<decltype(call())>) {
      call();
      if (ec != boost::asio::error::interrupted) return;
    } else {
      auto result = call();
      if (ec != boost::asio::error::interrupted) return result;
    }
  }
}
}  // namespace detail

/// What dial returns for every network and listener::accept returns: Go's net.Conn.
/// Models Asio's Sync/AsyncReadStream and Sync/AsyncWriteStream, so asio::read, write,
/// async_read and async_write work on it. On packet networks (udp, unixgram, unixpacket,
/// ip) each write_some sends one datagram and each read_some receives one; 0-byte
/// datagrams are sent and received on udp, unixgram and ip. On unixpacket, as in Go, a
/// 0-byte read is EOF (and a 0-byte write sends nothing). Writes never raise SIGPIPE
/// (MSG_NOSIGNAL).
class conn {
 public:
  using executor_type = net::executor_type;
  using native_handle_type = int;
  using socket_type = boost::asio::basic_stream_socket<detail::any_protocol>;

  explicit conn(const executor_type& ex);
  /// Adopts a connected socket (Go's FileConn); `net` names its network ("tcp", "unix").
  conn(const executor_type& ex, std::string_view net, unique_fd fd);
  conn(const executor_type& ex, std::string_view net, unique_fd fd, error_code& ec);

  executor_type get_executor() noexcept { return socket_.get_executor(); }
  bool is_open() const noexcept { return socket_.is_open(); }
  native_handle_type native_handle() noexcept { return socket_.native_handle(); }
  /// The Asio socket underneath, for options Asio knows.
  socket_type& socket() noexcept { return socket_; }
  /// The network string this connection was made on ("tcp", "unixpacket", "ip4:icmp").
  const std::string& network() const noexcept { return network_; }

  address local_address() const;
  address remote_address() const;

  /// Blocking: on a descriptor still in blocking mode (docs/net.md) one recv that waits
  /// in the kernel; with a deadline, recv with MSG_DONTWAIT and poll, which leaves the
  /// descriptor's mode alone.
  template <class MutableBuffers>
  std::size_t read_some(const MutableBuffers& buffers, error_code& ec) {
    if (read_deadline_ == steady_time{})
      return detail::retry_interrupted(ec, [&] { return socket_.read_some(buffers, ec); });
    return detail::transfer_until(socket_.native_handle(), false, ipckit::detail::iovec_array(buffers),
                                  stream_, read_deadline_, ec);
  }
  template <class MutableBuffers>
  std::size_t read_some(const MutableBuffers& buffers) {
    error_code ec;
    std::size_t n = read_some(buffers, ec);
    if (ec) fail("read", ec);
    return n;
  }
  template <class ConstBuffers>
  std::size_t write_some(const ConstBuffers& buffers, error_code& ec) {
    if (write_deadline_ == steady_time{})
      return detail::retry_interrupted(ec, [&] { return socket_.write_some(buffers, ec); });
    return detail::transfer_until(socket_.native_handle(), true, ipckit::detail::iovec_array(buffers),
                                  stream_, write_deadline_, ec);
  }
  template <class ConstBuffers>
  std::size_t write_some(const ConstBuffers& buffers) {
    error_code ec;
    std::size_t n = write_some(buffers, ec);
    if (ec) fail("write", ec);
    return n;
  }
  template <class MutableBuffers, class Token>
  auto async_read_some(const MutableBuffers& buffers, Token&& token) {
    return boost::asio::async_initiate<Token, void(error_code, std::size_t)>(
        [this](auto handler, const MutableBuffers& b) {
          if (read_deadline_ == steady_time{})
            return socket_.async_read_some(b, ipckit::detail::draining(std::move(handler)));
          detail::start_with_deadline(socket_.get_executor(), read_deadline_, std::move(handler),
                                      [this, &b](auto timed) { socket_.async_read_some(b, std::move(timed)); });
        },
        token, buffers);
  }
  template <class ConstBuffers, class Token>
  auto async_write_some(const ConstBuffers& buffers, Token&& token) {
    return boost::asio::async_initiate<Token, void(error_code, std::size_t)>(
        [this](auto handler, const ConstBuffers& b) {
          if (write_deadline_ == steady_time{})
            return socket_.async_write_some(b, ipckit::detail::draining(std::move(handler)));
          detail::start_with_deadline(socket_.get_executor(), write_deadline_, std::move(handler),
                                      [this, &b](auto timed) { socket_.async_write_some(b, std::move(timed)); });
        },
        token, buffers);
  }

  /// Go's SetDeadline, SetReadDeadline, SetWriteDeadline: a read (write) that has not
  /// completed by the deadline fails with ipckit::errc::timeout ("i/o timeout"), and one
  /// started after it fails at once, blocking and async_* forms alike; asio::read and
  /// asio::write on the conn stop at the deadline too. The deadline is absolute: it
  /// bounds every later call until it is changed. `steady_time{}` (Go's zero Time) means
  /// none, the default. Unlike Go, a new deadline applies to operations started after it
  /// is set; to stop a pending async operation now, use cancel() or a cancellation slot.
  void set_deadline(steady_time t) noexcept { read_deadline_ = write_deadline_ = t; }
  void set_read_deadline(steady_time t) noexcept { read_deadline_ = t; }
  void set_write_deadline(steady_time t) noexcept { write_deadline_ = t; }
  steady_time read_deadline() const noexcept { return read_deadline_; }
  steady_time write_deadline() const noexcept { return write_deadline_; }

  /// Go's CloseRead/CloseWrite: shutdown(SHUT_RD / SHUT_WR / SHUT_RDWR).
  void shutdown(socket_type::shutdown_type what, error_code& ec);
  void shutdown(socket_type::shutdown_type what);
  /// Cancels pending asynchronous operations (they complete with operation_aborted).
  void cancel();
  void close(error_code& ec);
  void close();
  /// Gives up the descriptor without closing it, in the mode it came in: O_NONBLOCK set
  /// by an async operation is cleared again (docs/net.md).
  unique_fd release();

  // Unix extras (unix.cpp). Blocking calls: they wait for the socket, not for the loop.
  /// Sends `data` with `fds` attached (SCM_RIGHTS). Returns the bytes sent.
  std::size_t write_with_fds(boost::asio::const_buffer data, std::span<const int> fds,
                             error_code& ec);
  std::size_t write_with_fds(boost::asio::const_buffer data, std::span<const int> fds);
  /// Receives data and up to `max_fds` descriptors, each close-on-exec
  /// (MSG_CMSG_CLOEXEC). If more arrived than fit, every received fd is closed and the
  /// error is errc::control_truncated.
  std::size_t read_with_fds(boost::asio::mutable_buffer data, std::vector<unique_fd>& fds,
                            std::size_t max_fds, error_code& ec);
  std::size_t read_with_fds(boost::asio::mutable_buffer data, std::vector<unique_fd>& fds,
                            std::size_t max_fds = 16);
  /// The peer's pid, uid and gid as of connect (SO_PEERCRED).
  credentials peer_credentials(error_code& ec) const;
  credentials peer_credentials() const;

 private:
  friend struct detail::conn_access;
  [[noreturn]] void fail(const char* op, const error_code& ec) const;
  socket_type socket_;
  std::string network_;
  address dialed_;  ///< the address dialed: raw sockets have no getpeername
  steady_time read_deadline_{};
  steady_time write_deadline_{};
  bool stream_ = false;             ///< Asio's view: 0-byte reads are EOF (stream, seqpacket)
  bool came_non_blocking_ = false;  ///< O_NONBLOCK was set when this conn got the fd
};

/// What listen_packet returns: Go's net.PacketConn (UDPConn, UnixConn on unixgram, IPConn).
class packet_conn {
 public:
  using executor_type = net::executor_type;
  using native_handle_type = int;
  using socket_type = boost::asio::basic_datagram_socket<detail::any_protocol>;
  using endpoint_type = detail::any_protocol::endpoint;

  explicit packet_conn(const executor_type& ex);
  packet_conn(const executor_type& ex, std::string_view net, unique_fd fd);

  executor_type get_executor() noexcept { return socket_.get_executor(); }
  bool is_open() const noexcept { return socket_.is_open(); }
  native_handle_type native_handle() noexcept { return socket_.native_handle(); }
  socket_type& socket() noexcept { return socket_; }
  const std::string& network() const noexcept { return network_; }
  address local_address() const;

  /// Sends one datagram to `to`. Oversize is an error (EMSGSIZE), never a truncation.
  std::size_t send_to(boost::asio::const_buffer data, const address& to, error_code& ec);
  std::size_t send_to(boost::asio::const_buffer data, const address& to);
  /// Receives one datagram; `from` is set to the sender (empty for an unnamed unix peer).
  std::size_t receive_from(boost::asio::mutable_buffer data, address& from, error_code& ec);
  std::size_t receive_from(boost::asio::mutable_buffer data, address& from);

  /// Completes with (error_code, bytes sent).
  template <class Token>
  auto async_send_to(boost::asio::const_buffer data, const address& to, Token&& token) {
    return boost::asio::async_initiate<Token, void(error_code, std::size_t)>(
        [this](auto handler, boost::asio::const_buffer d, endpoint_type peer) {
          if (write_deadline_ == steady_time{})
            return socket_.async_send_to(boost::asio::buffer(d), peer,
                                         ipckit::detail::draining(std::move(handler)));
          detail::start_with_deadline(socket_.get_executor(), write_deadline_, std::move(handler),
                                      [this, d, peer](auto timed) {
                                        socket_.async_send_to(boost::asio::buffer(d), peer, std::move(timed));
                                      });
        },
        token, data, to_endpoint(to));
  }
  /// Completes with (error_code, bytes); `from` must stay valid until then. One
  /// receive at a time per packet_conn.
  template <class Token>
  auto async_receive_from(boost::asio::mutable_buffer data, address& from, Token&& token) {
    return boost::asio::async_compose<Token, void(error_code, std::size_t)>(
        receive_op{this, data, &from}, token, socket_);
  }

  /// Go's PacketConn.SetDeadline, SetReadDeadline, SetWriteDeadline, as conn's: a
  /// receive (send) not completed by the deadline fails with ipckit::errc::timeout, one
  /// started after it fails at once; `steady_time{}` means none.
  void set_deadline(steady_time t) noexcept { read_deadline_ = write_deadline_ = t; }
  void set_read_deadline(steady_time t) noexcept { read_deadline_ = t; }
  void set_write_deadline(steady_time t) noexcept { write_deadline_ = t; }
  steady_time read_deadline() const noexcept { return read_deadline_; }
  steady_time write_deadline() const noexcept { return write_deadline_; }

  void cancel();
  void close(error_code& ec);
  void close();
  /// Gives up the descriptor without closing it, in the mode it came in (as conn's).
  unique_fd release();

 private:
  static endpoint_type to_endpoint(const address& a) { return {a.data(), a.size()}; }
  std::string address_network() const;

  struct receive_op {
    packet_conn* conn_;
    boost::asio::mutable_buffer data_;
    address* from_;
    bool started_ = false;
    template <class Self>
    void operator()(Self& self, error_code ec = {}, std::size_t n = 0) {
      if (!started_) {
        started_ = true;
        if (conn_->read_deadline_ == steady_time{})
          return conn_->socket_.async_receive_from(data_, conn_->sender_,
                                                   ipckit::detail::draining(std::move(self)));
        packet_conn* conn = conn_;
        const boost::asio::mutable_buffer data = data_;
        return detail::start_with_deadline(
            conn->socket_.get_executor(), conn->read_deadline_, std::move(self),
            [conn, data](auto timed) { conn->socket_.async_receive_from(data, conn->sender_, std::move(timed)); });
      }
      if (!ec)
        *from_ = address(conn_->address_network(), conn_->sender_.data(),
                         static_cast<socklen_t>(conn_->sender_.size()));
      self.complete(ec, n);
    }
  };

  [[noreturn]] void fail(const char* op, const address* to, const error_code& ec) const;
  socket_type socket_;
  std::string network_;
  endpoint_type sender_;
  steady_time read_deadline_{};
  steady_time write_deadline_{};
  bool came_non_blocking_ = false;
};

// ---- dialing (dial.cpp, happy_eyeballs.cpp) --------------------------------------------------

/// Go's net.Dialer. A default dialer dials as net.Dial does.
struct dialer {
  /// The whole dial (name resolution included) fails with "i/o timeout" after this;
  /// zero means none.
  std::chrono::nanoseconds timeout{0};
  /// An absolute deadline; the earlier of timeout and deadline applies.
  std::optional<steady_time> deadline;
  /// Go's LocalAddr, as text: "127.0.0.1:0", "/tmp/client.sock" (bound before connect).
  std::string local_address;
  /// TCP keep-alive period: zero means Go's default (15 s), negative disables it.
  std::chrono::nanoseconds keep_alive{0};
  /// Happy Eyeballs (RFC 8305): when a name has addresses of both families, the second
  /// family starts this long after the first. Zero means 300 ms; negative dials the
  /// addresses one after the other.
  std::chrono::nanoseconds fallback_delay{0};
  /// Go's Control: called with the network, the address and the native fd after the
  /// socket is created and before bind/connect; an error set in `ec` fails the attempt.
  std::function<void(std::string_view net, std::string_view address, int fd, error_code& ec)>
      control;
  /// Go's Resolver: when set, host names are looked up by this function (on the loop's
  /// thread) instead of getaddrinfo; it returns the addresses with `port` filled in.
  std::function<std::vector<address>(std::string_view host, int port, error_code& ec)> resolver;

  conn dial(const executor_type& ex, std::string_view net, std::string_view address,
            error_code& ec) const;
  conn dial(const executor_type& ex, std::string_view net, std::string_view address) const;

  /// Completes with (error_code, conn); any completion token; a cancellation slot
  /// (terminal) aborts the dial with operation_aborted and closes every socket it opened.
  template <class Token>
  auto async_dial(const executor_type& ex, std::string_view net, std::string_view address,
                  Token&& token) const;
};

namespace detail {
struct dial_state;
/// Starts the dial on `ex`; `done` runs on `ex`, never inside this call. The returned
/// handle cancels it.
std::shared_ptr<dial_state> start_dial(const executor_type& ex, const dialer& d,
                                       std::string_view net, std::string_view address,
                                       callback<error_code, conn> done);
void cancel_dial(const std::shared_ptr<dial_state>& state);

struct dial_op {
  executor_type ex;
  dialer d;
  std::string net;
  std::string address;

  template <class Self>
  void operator()(Self& self) {
    auto slot = self.get_cancellation_state().slot();
    // Copy what start_dial needs: moving `self` into the callback moves this op too.
    executor_type io = ex;
    dialer config = d;
    std::string n = net, a = address;
    auto state = start_dial(io, config, n, a,
                            callback<error_code, conn>([self = std::move(self)](
                                                           error_code ec, conn c) mutable {
                              self.complete(ec, std::move(c));
                            }));
    if (slot.is_connected())
      slot.assign([state](boost::asio::cancellation_type_t) { cancel_dial(state); });
  }
};
}  // namespace detail

template <class Token>
auto dialer::async_dial(const executor_type& ex, std::string_view net, std::string_view address,
                        Token&& token) const {
  return boost::asio::async_compose<Token, void(error_code, conn)>(
      detail::dial_op{ex, *this, std::string(net), std::string(address)}, token, ex);
}

/// Go's net.Dial. Errors read as Go's: "dial tcp 127.0.0.1:1: connect: connection refused".
conn dial(const executor_type& ex, std::string_view net, std::string_view address);
conn dial(const executor_type& ex, std::string_view net, std::string_view address, error_code& ec);

template <class Token>
auto async_dial(const executor_type& ex, std::string_view net, std::string_view address,
                Token&& token) {
  return dialer{}.async_dial(ex, net, address, std::forward<Token>(token));
}

// ---- listening (listen.cpp) ------------------------------------------------------------

/// Who may connect to a unix listener (unix, unixpacket). The listener reads each new
/// connection's SO_PEERCRED before accept/async_accept would return it; a peer the policy
/// does not allow is closed there and never reaches the caller, and the accept goes on
/// waiting for the next connection. An empty policy (the default) allows every peer the
/// socket's file mode lets connect. A peer is allowed when any rule matches it.
struct peer_policy {
  /// Peers running as this process's effective uid (as it is at accept time).
  bool same_uid = false;
  /// Peers running as one of these uids (0 is not implied: list it to let root in).
  std::vector<uid_t> uids;
  /// Peers whose gid is one of these. SO_PEERCRED reports only the peer's effective gid
  /// as of connect, not its supplementary groups.
  std::vector<gid_t> gids;
  /// Called with each refused peer's credentials, on the thread that accepts, before
  /// its connection is closed (to log it). Must not throw.
  std::function<void(const credentials&)> on_refused;

  bool empty() const noexcept { return !same_uid && uids.empty() && gids.empty(); }
  /// Whether the rules let `peer` in (an empty policy allows everyone).
  bool allows(const credentials& peer) const noexcept;
};

/// Go's net.ListenConfig plus the unix extras.
struct listen_config {
  int backlog = SOMAXCONN;
  /// File mode of a unix socket path (never wider than asked; default owner only).
  unsigned mode = 0600;
  /// Bind the unix socket path inside a private directory: its parent directory is
  /// created with mode 0700 if it is missing (its own parent must exist); an existing
  /// one must be a real directory (not a symlink), owned by this process's effective
  /// uid and not writable by group or others, or the listen fails with
  /// errc::insecure_directory before anything is bound. Unix paths only.
  bool private_directory = false;
  /// Which peers accept may return (unix and unixpacket only; errc::invalid_argument
  /// from ipckit::errc on other networks).
  peer_policy peers;
  /// On close, remove the socket path, but only if it is still the one we bound.
  bool unlink_on_close = true;
  /// On "address already in use" for a unix path no one accepts on (connect refused),
  /// remove the stale socket file and bind again.
  bool recover_stale = false;
  /// Called with the native fd before bind (setsockopt).
  std::function<void(std::string_view net, std::string_view address, int fd, error_code& ec)>
      control;
};

namespace detail {
struct listener_access;
}

/// Go's net.Listener for tcp, tcp4, tcp6, unix and unixpacket.
class listener {
 public:
  using executor_type = net::executor_type;
  using native_handle_type = int;

  explicit listener(const executor_type& ex);
  listener(listener&&) noexcept;
  listener& operator=(listener&&) noexcept;
  ~listener();

  executor_type get_executor() noexcept { return socket_.get_executor(); }
  bool is_open() const noexcept { return socket_.is_open(); }
  native_handle_type native_handle() noexcept { return socket_.native_handle(); }
  const std::string& network() const noexcept { return network_; }
  /// Go's Addr(): the bound address ("[::]:43210", "/run/x.sock").
  address addr() const;

  /// Accepts one connection (accept4, close-on-exec).
  ///
  /// Out of descriptors or memory (EMFILE, ENFILE, ENOBUFS, ENOMEM; the connection
  /// stays queued in the kernel), accept and async_accept pause before they report the
  /// error: 5 ms, doubling on each failure in a row up to 1 s, and back to none after
  /// an accept succeeds (Go's http.Server does this in its accept loop). So a loop that
  /// simply accepts again after an error does not spin on the still-readable socket,
  /// and it takes the connection once descriptors are free again.
  conn accept(error_code& ec);
  conn accept();

  /// Completes with (error_code, conn); cancellation slots and cancel() abort it (the
  /// pause after a resource error too).
  template <class Token>
  auto async_accept(Token&& token) {
    return boost::asio::async_compose<Token, void(error_code, conn)>(
        accept_op{this}, token, socket_);
  }

  void cancel();
  void close(error_code& ec);
  void close();

  /// How many connections the peer policy has refused and closed so far.
  std::size_t refused_count() const noexcept { return refused_; }

 private:
  friend struct detail::listener_access;
  /// Whether the peer policy lets the connection on `fd` through; counts a refusal.
  bool admit(int fd) noexcept;
  /// One non-blocking accept4: false when nothing is pending.
  bool try_accept(conn& out, error_code& ec);
  /// After try_accept failed with `ec`: is it a shortage that a pause may cure? If so,
  /// returns the pause and lengthens the next one.
  std::optional<std::chrono::milliseconds> resource_pause(const error_code& ec);

  // Waits for readiness, then accept4; loops when another process took the connection.
  // A shortage of descriptors or memory is reported after a pause (see accept()).
  struct accept_op {
    listener* self_;
    enum { starting, waiting, pausing } state_ = starting;
    error_code shortage_{};
    template <class Self>
    void operator()(Self& self, error_code ec = {}) {
      conn c(self_->get_executor());
      if (state_ == pausing) return self.complete(ec ? ec : shortage_, std::move(c));
      if (!ec && state_ == waiting && !self_->try_accept(c, ec)) {
        if (!ec) {
          state_ = starting;  // another process took it: wait again
        } else if (auto pause = self_->resource_pause(ec)) {
          state_ = pausing;
          shortage_ = ec;
          self_->backoff_timer_.expires_after(*pause);
          return self_->backoff_timer_.async_wait(std::move(self));
        }
      }
      if (!ec && state_ == starting) {
        state_ = waiting;
        return self_->socket_.async_wait(socket_type::wait_read, std::move(self));
      }
      self.complete(ec, std::move(c));
    }
  };

  using socket_type = boost::asio::basic_stream_socket<detail::any_protocol>;
  void unlink_if_ours() noexcept;
  socket_type socket_;
  std::string network_;
  std::string path_;  ///< bound unix path to unlink on close
  dev_t dev_ = 0;
  ino_t ino_ = 0;
  peer_policy peers_;
  std::size_t refused_ = 0;
  boost::asio::steady_timer backoff_timer_;
  std::chrono::milliseconds next_pause_{0};  ///< zero: no shortage in a row
};

/// Go's net.Listen (tcp, tcp4, tcp6, unix, unixpacket). "tcp" with an empty or
/// unspecified host listens on both families. An empty unix address autobinds.
listener listen(const executor_type& ex, std::string_view net, std::string_view address,
                const listen_config& config, error_code& ec);
listener listen(const executor_type& ex, std::string_view net, std::string_view address,
                const listen_config& config = {});
listener listen(const executor_type& ex, std::string_view net, std::string_view address,
                error_code& ec);

/// Go's net.ListenPacket (udp, udp4, udp6, unixgram, ip*:PROTO).
packet_conn listen_packet(const executor_type& ex, std::string_view net,
                          std::string_view address, error_code& ec);
packet_conn listen_packet(const executor_type& ex, std::string_view net,
                          std::string_view address);

}  // namespace ipckit::net

template <>
struct boost::system::is_error_code_enum<ipckit::net::errc> : std::true_type {};
