// Go's Listen and ListenPacket: bind (and listen) a socket for a network and address.
#include "net_internal.hpp"
#include "private_directory.hpp"
#include "socket_setup.hpp"

#include <netinet/in.h>
#include <sys/stat.h>
#include <unistd.h>

#include <algorithm>
#include <thread>

namespace ipckit::net {
namespace {

using detail::any_protocol;

struct bound {
  unique_fd fd;
  address addr;
  network net;
};

bool is_wildcard_v4(const address& a) {
  return a.family() == AF_INET &&
         reinterpret_cast<const sockaddr_in*>(a.data())->sin_addr.s_addr == htonl(INADDR_ANY);
}

// The first address `text` names for binding on `n`.
address local_address_for(const network& n, std::string_view net_text, std::string_view text,
                          error_context& where, error_code& ec) {
  if (n.is_unix()) {
    address a = detail::unix_address(n.name, text, ec);
    if (ec) where.address = text;
    return a;
  }
  auto split = detail::split_ip_address(n, text, false, ec);
  if (!ec && split.literal.empty()) {
    auto found = detail::lookup_host(n, split.host, split.port, ec);
    if (!ec) split.literal.push_back(found.front());
  }
  if (ec) {
    std::string detail_text(text);
    if (ec == errc::no_such_host) detail_text = split.host;
    where = detail::resolve_context(where.op, net_text, text, ec, detail_text);
    return {};
  }
  address a = split.literal.front();
  // Go listens on both families for a wildcard on "tcp"/"udp".
  if (n.family == AF_UNSPEC && is_wildcard_v4(a)) a = detail::any_address(a.network(), AF_INET6, a.port());
  return a;
}

bool stale_unix_socket(const address& a) {
  // A socket file no one accepts on: connecting is refused.
  unique_fd probe(::socket(AF_UNIX, SOCK_STREAM | SOCK_CLOEXEC, 0));
  if (!probe) return false;
  return ::connect(probe.get(), a.data(), a.size()) != 0 && errno == ECONNREFUSED;
}

bound bind_socket(std::string_view net_text, std::string_view text, bool stream,
                  const listen_config& config, error_context& where, error_code& ec) {
  bound out;
  out.net = parse_network(net_text, ec);
  if (ec) {
    where.address = text;
    return out;
  }
  if (out.net.is_stream() != stream) {
    ec = errc::wrong_operation;
    where.address = text;
    where.syscall = "address " + std::string(text);
    return out;
  }
  address local = local_address_for(out.net, net_text, text, where, ec);
  if (ec) return out;
  where.address = local.to_string();
  if (out.net.is_unix() && text.empty()) where.address.clear();
  const bool path = out.net.is_unix() && !text.empty() && !text.starts_with('@');
  if (!config.peers.empty() && !out.net.is_unix()) {
    ec = ipckit::errc::invalid_argument;
    where.syscall = "peer policy (unix networks only)";
    return out;
  }
  if (config.private_directory && !path) {
    ec = ipckit::errc::invalid_argument;
    where.syscall = "private directory (unix socket paths only)";
    return out;
  }
  unique_fd directory;
  if (config.private_directory) {
    directory = detail::open_private_directory(std::string(text), where.syscall, ec);
    if (ec) return out;
  }
  int family = local.family();
  out.fd = detail::open_socket(out.net, family, stream, ec);
  if (ec && family == AF_INET6 && out.net.family == AF_UNSPEC && (ec.value() == EAFNOSUPPORT)) {
    // No IPv6 on this host: the dual-stack wildcard becomes IPv4's.
    local = detail::any_address(local.network(), AF_INET, local.port());
    family = AF_INET;
    out.fd = detail::open_socket(out.net, family, stream, ec);
  }
  if (ec) {
    where.syscall = "socket";
    if (ec.value() == EPERM && out.net.is_ip()) where.syscall = "socket (raw sockets need CAP_NET_RAW)";
    return out;
  }
  if (!detail::setup_listen_socket(out.fd.get(), out.net, family, where.syscall, ec)) return out;
  if (config.control) {
    config.control(net_text, where.address, out.fd.get(), ec);
    if (ec) return out;
  }
  // Narrow the socket inode's mode before bind, so the path never exists wider.
  if (path) ::fchmod(out.fd.get(), config.mode & 0777);
  int rc = ::bind(out.fd.get(), local.data(), local.size());
  if (rc != 0 && errno == EADDRINUSE && path && config.recover_stale && stale_unix_socket(local)) {
    ::unlink(std::string(text).c_str());
    rc = ::bind(out.fd.get(), local.data(), local.size());
  }
  if (rc != 0) {
    ec = last_error();
    where.syscall = "bind";
    return out;
  }
  if (path && ::chmod(std::string(text).c_str(), config.mode & 0777) != 0) {
    ec = last_error();
    where.syscall = "chmod";
    ::unlink(std::string(text).c_str());
    return out;
  }
  if (directory && !detail::bound_in_private_directory(directory.get(), std::string(text),
                                                       where.syscall, ec)) {
    // Our socket may sit in a directory someone swapped in: do not serve from it.
    out.fd.reset();
    return out;
  }
  socklen_t size = address::capacity();
  address actual(local.network(), nullptr, 0);
  if (::getsockname(out.fd.get(), actual.data(), &size) == 0) actual.resize(size);
  out.addr = actual;
  return out;
}

}  // namespace

// ---- listener -----------------------------------------------------------------------------

listener::listener(const executor_type& ex) : socket_(ex), backoff_timer_(ex) {}

listener::listener(listener&& other) noexcept
    : socket_(std::move(other.socket_)),
      network_(std::move(other.network_)),
      path_(std::exchange(other.path_, {})),
      dev_(other.dev_),
      ino_(other.ino_),
      peers_(std::move(other.peers_)),
      refused_(other.refused_),
      backoff_timer_(std::move(other.backoff_timer_)),
      next_pause_(std::exchange(other.next_pause_, {})) {}

listener& listener::operator=(listener&& other) noexcept {
  if (this != &other) {
    error_code ignored;
    close(ignored);
    socket_ = std::move(other.socket_);
    network_ = std::move(other.network_);
    path_ = std::exchange(other.path_, {});
    dev_ = other.dev_;
    ino_ = other.ino_;
    peers_ = std::move(other.peers_);
    refused_ = other.refused_;
    backoff_timer_ = std::move(other.backoff_timer_);
    next_pause_ = std::exchange(other.next_pause_, {});
  }
  return *this;
}

listener::~listener() {
  error_code ignored;
  close(ignored);
}

address listener::addr() const {
  address a(network_.empty() ? "" : detail::address_network_of(parse_network(network_)), nullptr, 0);
  socklen_t size = address::capacity();
  if (socket_.is_open() &&
      ::getsockname(const_cast<socket_type&>(socket_).native_handle(), a.data(), &size) == 0)
    a.resize(size);
  return a;
}

bool listener::try_accept(conn& out, error_code& ec) {
  ec.clear();
  // A flood of refused peers must not hold the loop: after this many, wait for
  // readiness again (which is immediate), so other handlers run in between.
  constexpr int refusals_per_call = 64;
  for (int refused = 0;;) {
    // Blocking, as every conn starts (docs/net.md); the listener itself is non-blocking.
    const int fd = ::accept4(socket_.native_handle(), nullptr, nullptr, SOCK_CLOEXEC);
    if (fd >= 0) {
      if (!admit(fd)) {
        ::close(fd);
        if (++refused == refusals_per_call) return false;
        continue;
      }
      next_pause_ = {};
      out = conn(get_executor(), network_, unique_fd(fd), ec);
      return !ec;
    }
    if (errno == EINTR || errno == ECONNABORTED) continue;  // Go retries these too
    if (errno == EAGAIN || errno == EWOULDBLOCK) return false;
    ec = last_error();
    return false;
  }
}

std::optional<std::chrono::milliseconds> listener::resource_pause(const error_code& ec) {
  // The pending connection stays in the kernel's queue and the socket stays readable:
  // retrying at once would spin. Go's http.Server pauses 5 ms, doubling up to 1 s.
  const bool shortage = ec.category() == boost::system::system_category() &&
                        (ec.value() == EMFILE || ec.value() == ENFILE || ec.value() == ENOBUFS ||
                         ec.value() == ENOMEM);
  if (!shortage) return std::nullopt;
  using std::chrono::milliseconds;
  next_pause_ = next_pause_ == milliseconds::zero() ? milliseconds(5)
                                                    : std::min(next_pause_ * 2, milliseconds(1000));
  return next_pause_;
}

conn listener::accept(error_code& ec) {
  conn c(get_executor());
  while (!try_accept(c, ec) && !ec)
    detail::retry_interrupted(ec, [&] { return socket_.wait(socket_type::wait_read, ec); });
  if (auto pause = resource_pause(ec)) std::this_thread::sleep_for(*pause);
  return c;
}

conn listener::accept() {
  error_code ec;
  conn c = accept(ec);
  if (ec) detail::throw_op(ec, {"accept", network_, "", addr().to_string(), ""});
  return c;
}

void listener::cancel() {
  error_code ignored;
  socket_.cancel(ignored);
  backoff_timer_.cancel();
}

void listener::unlink_if_ours() noexcept {
  if (path_.empty()) return;
  // Remove the path only if it is still the socket we bound, not a successor's.
  struct stat st {};
  if (::lstat(path_.c_str(), &st) == 0 && S_ISSOCK(st.st_mode) && st.st_dev == dev_ &&
      st.st_ino == ino_)
    ::unlink(path_.c_str());
  path_.clear();
}

void listener::close(error_code& ec) {
  ec.clear();
  unlink_if_ours();
  backoff_timer_.cancel();
  if (socket_.is_open()) socket_.close(ec);
}

void listener::close() {
  error_code ec;
  close(ec);
  if (ec) detail::throw_op(ec, {"close", network_, "", "", ""});
}

namespace detail {
struct listener_access {
  static listener listen(const executor_type& ex, std::string_view net, std::string_view address,
                         const listen_config& config, error_context& where, error_code& ec) {
    listener l(ex);
    bound b = bind_socket(net, address, true, config, where, ec);
    if (ec) return l;
    if (::listen(b.fd.get(), config.backlog) != 0) {
      ec = last_error();
      where.syscall = "listen";
      return l;
    }
    const bool path = b.net.is_unix() && !address.empty() && !address.starts_with('@');
    struct stat st {};
    if (path && config.unlink_on_close && ::lstat(std::string(address).c_str(), &st) == 0) {
      l.path_ = address;
      l.dev_ = st.st_dev;
      l.ino_ = st.st_ino;
    }
    l.socket_.assign(any_protocol(b.addr.family(), b.net.socket_type, 0), b.fd.get(), ec);
    if (ec) return l;
    b.fd.release();
    l.network_ = net;
    l.peers_ = config.peers;
    return l;
  }
};
}  // namespace detail

listener listen(const executor_type& ex, std::string_view net, std::string_view address,
                const listen_config& config, error_code& ec) {
  error_context where{"listen", std::string(net), "", "", ""};
  return detail::listener_access::listen(ex, net, address, config, where, ec);
}

listener listen(const executor_type& ex, std::string_view net, std::string_view address,
                const listen_config& config) {
  error_context where{"listen", std::string(net), "", "", ""};
  error_code ec;
  listener l = detail::listener_access::listen(ex, net, address, config, where, ec);
  if (ec) detail::throw_op(ec, where);
  return l;
}

listener listen(const executor_type& ex, std::string_view net, std::string_view address,
                error_code& ec) {
  return listen(ex, net, address, listen_config{}, ec);
}

packet_conn listen_packet(const executor_type& ex, std::string_view net, std::string_view address,
                          error_code& ec) {
  error_context where{"listen", std::string(net), "", "", ""};
  bound b = bind_socket(net, address, false, listen_config{}, where, ec);
  if (ec) return packet_conn(ex);
  return packet_conn(ex, net, std::move(b.fd));
}

packet_conn listen_packet(const executor_type& ex, std::string_view net, std::string_view address) {
  error_context where{"listen", std::string(net), "", "", ""};
  error_code ec;
  bound b = bind_socket(net, address, false, listen_config{}, where, ec);
  if (ec) detail::throw_op(ec, where);
  return packet_conn(ex, net, std::move(b.fd));
}

}  // namespace ipckit::net
