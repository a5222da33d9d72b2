// Go's Dial on the loop: resolve, then connect to each address in turn, racing the two
// address families after the fallback delay (Happy Eyeballs, RFC 8305), first success wins.
#include "net_internal.hpp"
#include "socket_setup.hpp"

#include <boost/asio/io_context.hpp>
#include <boost/asio/ip/tcp.hpp>
#include <boost/asio/post.hpp>
#include <boost/asio/steady_timer.hpp>

#include <array>

#include <sys/ioctl.h>

namespace ipckit::net::detail {

struct conn_access {
  static void set_dialed(conn& c, const address& a) { c.dialed_ = a; }
  static const address& dialed(const conn& c) { return c.dialed_; }
};

using namespace std::chrono_literals;
using wait_socket = boost::asio::basic_stream_socket<any_protocol>;

struct dial_state : std::enable_shared_from_this<dial_state> {
  struct racer {
    std::vector<address> addresses;
    std::size_t next = 0;
    std::unique_ptr<wait_socket> pending;
    address pending_address;
    bool started = false;
    bool exhausted = false;
  };

  executor_type ex;
  dialer d;
  std::string net_text;
  std::string address_text;
  network net;
  address local;
  callback<error_code, conn> done;
  boost::asio::steady_timer deadline_timer{ex};
  boost::asio::steady_timer fallback_timer{ex};
  std::optional<boost::asio::ip::tcp::resolver> resolver;
  std::array<racer, 2> racers;
  bool finished = false;
  error_code first_error;
  error_context first_where;
  error_context last_where;  // set when the error is thrown by the synchronous dial

  dial_state(const executor_type& e, const dialer& dl, std::string_view n, std::string_view a,
             callback<error_code, conn> cb)
      : ex(e), d(dl), net_text(n), address_text(a), done(std::move(cb)) {}

  void start();
  void resolved(std::vector<address> list);
  void start_racer(std::size_t i);
  void try_next(std::size_t i);
  void connected(std::size_t i, error_code ec);
  void racer_failed(std::size_t i);
  void note_error(const error_code& ec, const error_context& where);
  void finish(error_code ec, error_context where, unique_fd fd = {}, const address& to = {});
};

void dial_state::note_error(const error_code& ec, const error_context& where) {
  if (first_error) return;
  first_error = ec;
  first_where = where;
}

void dial_state::finish(error_code ec, error_context where, unique_fd fd, const address& to) {
  if (finished) return;
  finished = true;
  error_code ignored;
  deadline_timer.cancel();
  fallback_timer.cancel();
  if (resolver) resolver->cancel();
  for (auto& r : racers)
    if (r.pending) r.pending->close(ignored);  // the losers are closed
  last_where = std::move(where);
  conn c(ex);
  // The connect was non-blocking; the conn starts blocking, as every conn does (docs/net.md).
  int blocking = 0;
  if (!ec && ::ioctl(fd.get(), FIONBIO, &blocking) != 0) {
    ec = last_error();
    last_where = {"dial", net_text, "", to.to_string(), "ioctl"};
  }
  if (!ec) {
    c = conn(ex, net_text, std::move(fd), ec);
    conn_access::set_dialed(c, to);
  }
  auto cb = std::move(done);
  cb(ec, std::move(c));
}

void dial_state::start() {
  error_code ec;
  net = parse_network(net_text, ec);
  if (ec) return finish(ec, {"dial", net_text, "", address_text, ""});
  const steady_time never = steady_time::max();
  steady_time until = d.deadline.value_or(never);
  if (d.timeout > 0ns) until = std::min(until, std::chrono::steady_clock::now() + d.timeout);
  if (until != never) {
    deadline_timer.expires_at(until);
    deadline_timer.async_wait([self = shared_from_this()](error_code wait_ec) {
      if (wait_ec || self->finished) return;
      error_context where{"dial", self->net_text, "", self->address_text, ""};
      for (auto& r : self->racers)
        if (r.pending) where.address = r.pending_address.to_string();
      self->finish(ipckit::errc::timeout, where);
    });
  }
  if (!d.local_address.empty()) {
    local = resolve_address(net_text, d.local_address, ec);
    if (ec)
      return finish(ec, resolve_context("dial", net_text, d.local_address, ec, d.local_address));
  }
  if (net.is_unix()) {
    if (address_text.empty())
      return finish(errc::missing_address, {"dial", net_text, "", "", ""});
    address target = unix_address(net.name, address_text, ec);
    if (ec) return finish(ec, {"dial", net_text, "", address_text, ""});
    return resolved({target});
  }
  auto split = split_ip_address(net, address_text, true, ec);
  if (ec) {
    std::string detail_text = address_text;
    if (ec == errc::unknown_port) {
      detail_text = net.name + "/" + split_host_port(address_text).port;
    } else if (ec == errc::invalid_port) {
      detail_text = split_host_port(address_text).port;
    }
    return finish(ec, resolve_context("dial", net_text, address_text, ec, detail_text));
  }
  if (!split.literal.empty()) return resolved(std::move(split.literal));
  if (d.resolver) {
    std::vector<address> list;
    for (auto& a : d.resolver(split.host, split.port, ec))
      if (family_fits(net.family, a)) list.push_back(a);
    if (!ec && list.empty()) ec = errc::no_suitable_address;
    if (ec) return finish(ec, {"dial", net_text, "", "", "lookup " + split.host});
    return resolved(std::move(list));
  }
  // A host name: getaddrinfo on Asio's resolver thread, so the loop never blocks.
  resolver.emplace(ex);
  auto flags = boost::asio::ip::resolver_base::address_configured;
  resolver->async_resolve(
      split.host, "", flags,
      [self = shared_from_this(), host = split.host, port = split.port](
          error_code rec, boost::asio::ip::tcp::resolver::results_type results) {
        if (self->finished) return;
        if (rec) {
          const error_code ec2 = rec == boost::asio::error::operation_aborted
                                     ? rec
                                     : error_code(errc::no_such_host);
          return self->finish(ec2, {"dial", self->net_text, "", "", "lookup " + host});
        }
        std::vector<address> list;
        const std::string anet = address_network_of(self->net);
        for (const auto& entry : results) {
          auto ep = entry.endpoint();
          ep.port(static_cast<unsigned short>(port));
          address a(anet, ep.data(), static_cast<socklen_t>(ep.size()));
          if (family_fits(self->net.family, a) &&
              std::find(list.begin(), list.end(), a) == list.end())
            list.push_back(a);
        }
        if (list.empty())
          return self->finish(errc::no_suitable_address,
                              {"dial", self->net_text, "", "", "address " + host});
        self->resolved(std::move(list));
      });
}

void dial_state::resolved(std::vector<address> list) {
  // Primaries: the first address's family; fallbacks: the other family (dialParallel).
  const int first_family = list.front().family();
  for (auto& a : list) racers[a.family() == first_family ? 0 : 1].addresses.push_back(a);
  if (d.fallback_delay < 0ns) {
    // One after the other: the fallbacks join the primaries' queue.
    for (auto& a : racers[1].addresses) racers[0].addresses.push_back(a);
    racers[1].addresses.clear();
  }
  start_racer(0);
  if (finished || racers[1].addresses.empty() || racers[1].started) return;
  fallback_timer.expires_after(d.fallback_delay > 0ns ? d.fallback_delay
                                                      : std::chrono::nanoseconds(300ms));
  fallback_timer.async_wait([self = shared_from_this()](error_code ec) {
    if (!ec && !self->finished && !self->racers[1].started) self->start_racer(1);
  });
}

void dial_state::start_racer(std::size_t i) {
  racers[i].started = true;
  try_next(i);
}

void dial_state::try_next(std::size_t i) {
  racer& r = racers[i];
  while (!finished && r.next < r.addresses.size()) {
    const address target = r.addresses[r.next++];
    const std::string target_text = target.to_string();
    error_context where{"dial", net_text, local.empty() ? "" : local.to_string(), target_text,
                        ""};
    error_code ec;
    unique_fd fd = open_socket(net, target.family(), true, ec);
    if (ec) {
      where.syscall = "socket";
      if (ec.value() == EPERM && net.is_ip()) where.syscall = "socket (raw sockets need CAP_NET_RAW)";
      note_error(ec, where);
      continue;
    }
    if (!setup_dial_socket(fd.get(), net, net_text, target_text, d, local, where.syscall, ec)) {
      note_error(ec, where);
      continue;
    }
    if (::connect(fd.get(), target.data(), target.size()) == 0)
      return finish({}, {}, std::move(fd), target);
    if (errno != EINPROGRESS) {
      where.syscall = "connect";
      note_error(last_error(), where);
      continue;
    }
    // Wait for the connect to finish; the fd stays ours until it wins.
    const any_protocol proto(target.family(), net.socket_type, net.protocol);
    r.pending = std::make_unique<wait_socket>(ex);
    r.pending->assign(proto, fd.release(), ec);
    r.pending_address = target;
    r.pending->async_wait(wait_socket::wait_write,
                          [self = shared_from_this(), i](error_code wait_ec) {
                            self->connected(i, wait_ec);
                          });
    return;
  }
  if (!finished) racer_failed(i);
}

void dial_state::connected(std::size_t i, error_code ec) {
  racer& r = racers[i];
  if (finished) return;
  int error = 0;
  socklen_t size = sizeof error;
  if (!ec && ::getsockopt(r.pending->native_handle(), SOL_SOCKET, SO_ERROR, &error, &size) != 0)
    error = errno;
  if (!ec && error == 0) {
    error_code ignored;
    unique_fd fd(r.pending->release(ignored));
    r.pending.reset();
    return finish({}, {}, std::move(fd), r.pending_address);
  }
  if (!ec) ec = error_code(error, boost::system::system_category());
  note_error(ec, {"dial", net_text, local.empty() ? "" : local.to_string(),
                  r.pending_address.to_string(), "connect"});
  r.pending.reset();
  try_next(i);
}

void dial_state::racer_failed(std::size_t i) {
  racer& r = racers[i];
  r.exhausted = true;
  racer& other = racers[1 - i];
  if (!other.addresses.empty() && !other.started) {
    // The primaries failed before the fallback delay: start the fallbacks now.
    fallback_timer.cancel();
    return start_racer(1 - i);
  }
  if (other.started && !other.exhausted) return;
  finish(first_error, first_where);
}

std::shared_ptr<dial_state> start_dial(const executor_type& ex, const dialer& d,
                                       std::string_view net, std::string_view address,
                                       callback<error_code, conn> done) {
  auto state = std::make_shared<dial_state>(ex, d, net, address, std::move(done));
  boost::asio::post(ex, [state] { state->start(); });
  return state;
}

void cancel_dial(const std::shared_ptr<dial_state>& state) {
  // Cancellation may be emitted from another thread: act on the dial's executor.
  boost::asio::post(state->ex, [state] {
    state->finish(boost::asio::error::operation_aborted,
                  {"dial", state->net_text, "", state->address_text, ""});
  });
}

}  // namespace ipckit::net::detail

namespace ipckit::net {

conn dialer::dial(const executor_type& ex, std::string_view net, std::string_view address,
                  error_code& ec) const {
  // The blocking dial runs the same state machine on a private loop, then hands the
  // connected socket to `ex`.
  boost::asio::io_context private_loop(1);
  std::optional<conn> result;
  auto state = detail::start_dial(
      private_loop.get_executor(), *this, net, address,
      detail::callback<error_code, conn>([&](error_code e, conn c) {
        ec = e;
        result.emplace(std::move(c));
      }));
  private_loop.run();
  if (ec) return conn(ex);
  conn c(ex, net, result->release(), ec);
  detail::conn_access::set_dialed(c, detail::conn_access::dialed(*result));
  return c;
}

conn dialer::dial(const executor_type& ex, std::string_view net, std::string_view address) const {
  boost::asio::io_context private_loop(1);
  error_code ec;
  std::optional<conn> result;
  auto state = detail::start_dial(
      private_loop.get_executor(), *this, net, address,
      detail::callback<error_code, conn>([&](error_code e, conn c) {
        ec = e;
        result.emplace(std::move(c));
      }));
  private_loop.run();
  if (ec) detail::throw_op(ec, state->last_where);
  conn c(ex, net, result->release());
  detail::conn_access::set_dialed(c, detail::conn_access::dialed(*result));
  return c;
}

conn dial(const executor_type& ex, std::string_view net, std::string_view address) {
  return dialer{}.dial(ex, net, address);
}

conn dial(const executor_type& ex, std::string_view net, std::string_view address,
          error_code& ec) {
  return dialer{}.dial(ex, net, address, ec);
}

}  // namespace ipckit::net
