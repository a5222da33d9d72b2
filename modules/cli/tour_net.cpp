// Tour rows of the net module: each network between the tour and a child of itself.
// The parent waits on the loop with a deadline, so a failed child never hangs the tour.
#include "tour.hpp"

#include <ipckit/net.hpp>

#include <boost/asio/read.hpp>
#include <boost/asio/write.hpp>

#include <cerrno>
#include <fcntl.h>
#include <netinet/ip_icmp.h>
#include <poll.h>
#include <unistd.h>

namespace ipckit::cli {
namespace {

namespace asio = boost::asio;
using clock = std::chrono::steady_clock;
constexpr int samples = 200;
constexpr std::size_t message_size = 64;

// Runs the loop until `done` or 10 s.
bool wait(tour_context& context, const bool& done) {
  auto& io = context.loop().context();
  io.restart();
  const auto deadline = clock::now() + std::chrono::seconds(10);
  while (!done && clock::now() < deadline) io.run_one_until(deadline);
  return done;
}

// One asynchronous step: `start(handler)` begins an operation completing with
// (error_code[, …]); returns its error, or timeout when the deadline passed.
template <class Start>
error_code step(tour_context& context, Start start) {
  bool done = false;
  error_code result;
  start([&](error_code ec, auto&&...) {
    result = ec;
    done = true;
  });
  if (!wait(context, done)) return ipckit::errc::timeout;
  return result;
}

// Reads one byte from a blocking pipe, giving up after 10 s: a child that hangs fails
// the row instead of hanging the tour. False on timeout, EOF or error.
bool read_byte_within_deadline(int fd, char& byte) {
  pollfd ready{fd, POLLIN, 0};
  int polled;
  do polled = ::poll(&ready, 1, 10000);
  while (polled < 0 && errno == EINTR);
  return polled == 1 && ::read(fd, &byte, 1) == 1;
}

// A row is skipped only when this machine cannot run it (no IPv6, no CAP_NET_RAW);
// any other failure to set it up (too many open files …) fails the row.
bool unavailable_here(const error_code& ec) {
  namespace errc = boost::system::errc;
  return ec == errc::address_family_not_supported || ec == errc::address_not_available ||
         ec == errc::protocol_not_supported || ec == errc::operation_not_permitted ||
         ec == errc::permission_denied;
}

tour_result set_up_failed(const std::string& what, const error_code& ec) {
  if (unavailable_here(ec)) return tour_result::skip(what + ": " + error_text(ec));
  return {false, std::nullopt, std::nullopt, what + ": " + error_text(ec)};
}

tour_result finish(tour_child& child, std::vector<std::chrono::nanoseconds> times,
                   const std::string& what, const error_code& ec) {
  const auto status = child.wait(std::chrono::seconds(10));
  const bool ok = !ec && status == 0 && times.size() == samples;
  std::string detail = what;
  if (ec) detail = "failed: " + error_text(ec);
  else if (status != 0) detail = "child exit status " + (status ? std::to_string(*status) : std::string("timeout"));
  else if (times.size() != samples)
    detail = std::to_string(times.size()) + " of " + std::to_string(samples) + " round trips completed";
  return {ok, std::nullopt, ok ? std::optional<double>(median_us(times)) : std::nullopt, detail};
}

// ---- stream and seqpacket: the child dials, the parent accepts and times echoes ----------

tour_result connection_row(tour_context& context, const std::string& method,
                           const std::string& net, const std::string& address) {
  auto ex = context.loop().get_executor();
  error_code ec;
  net::listener l = net::listen(ex, net, address, ec);
  if (ec) return set_up_failed("listen " + net, ec);
  const std::string where = l.addr().to_string();
  auto child = context.start_child(method, {net, where});
  std::vector<std::chrono::nanoseconds> times;
  net::conn c(ex);
  ec = step(context, [&](auto handler) {
    l.async_accept([&c, handler](error_code e, net::conn accepted) mutable {
      c = std::move(accepted);
      handler(e);
    });
  });
  std::string out(message_size, 'x'), in(message_size, '\0');
  for (int i = 0; i < samples && !ec; ++i) {
    const auto start = clock::now();
    ec = step(context, [&](auto handler) { asio::async_write(c, asio::buffer(out), handler); });
    if (!ec) ec = step(context, [&](auto handler) { asio::async_read(c, asio::buffer(in), handler); });
    if (!ec && in == out) times.push_back(clock::now() - start);
  }
  c.close();
  return finish(child, times, "child dialed " + net + " " + where + ", 64-byte echoes", ec);
}

int connection_child(std::span<const std::string> args) {
  if (args.size() < 2) return 2;
  event_loop loop;
  error_code ec;
  net::conn c = net::dial(loop.get_executor(), args[0], args[1], ec);
  if (ec) return 3;
  char buf[message_size];
  for (;;) {
    asio::read(c, asio::buffer(buf), ec);
    if (ec == asio::error::eof) return 0;
    if (ec) return 4;
    asio::write(c, asio::buffer(buf), ec);
    if (ec) return 5;
  }
}

// ---- datagrams: the parent listens, the child dials and says hello --------------------------

tour_result packet_row(tour_context& context, const std::string& method, const std::string& net,
                       const std::string& address, const std::string& child_local) {
  auto ex = context.loop().get_executor();
  error_code ec;
  net::packet_conn p = net::listen_packet(ex, net, address, ec);
  if (ec) return set_up_failed("listen " + net, ec);
  const std::string where = p.local_address().to_string();
  auto child = context.start_child(method, {net, where, child_local});
  std::vector<std::chrono::nanoseconds> times;
  net::address from;
  std::string out(message_size, 'x'), in(message_size + 1, '\0');
  ec = step(context, [&](auto handler) { p.async_receive_from(asio::buffer(in), from, handler); });
  for (int i = 0; i < samples && !ec; ++i) {
    const auto start = clock::now();
    ec = step(context, [&](auto handler) { p.async_send_to(asio::buffer(out), from, handler); });
    std::size_t got = 0;
    if (!ec)
      ec = step(context, [&](auto handler) {
        p.async_receive_from(asio::buffer(in), from, [&got, handler](error_code e, std::size_t n) mutable {
          got = n;
          handler(e);
        });
      });
    if (!ec && got == message_size) times.push_back(clock::now() - start);
  }
  p.send_to(asio::buffer(out, 0), from, ec);  // a 0-byte datagram ends the child
  return finish(child, times, "child dialed " + net + " " + where + ", 64-byte datagrams", ec);
}

int packet_child(std::span<const std::string> args) {
  if (args.size() < 3) return 2;
  event_loop loop;
  net::dialer d;
  d.local_address = args[2];
  error_code ec;
  net::conn c = d.dial(loop.get_executor(), args[0], args[1], ec);
  if (ec) return 3;
  c.write_some(asio::buffer("hello", 5), ec);
  char buf[message_size + 1];
  for (;;) {
    const std::size_t n = c.read_some(asio::buffer(buf), ec);
    if (ec) return 4;
    if (n == 0) return 0;
    c.write_some(asio::buffer(buf, n), ec);
    if (ec) return 5;
  }
}

// ---- ip4:icmp: the parent pings 127.0.0.1, the child sees the requests on its raw socket ---

std::uint16_t icmp_checksum(const unsigned char* data, std::size_t size) {
  std::uint32_t sum = 0;
  for (std::size_t i = 0; i + 1 < size; i += 2) sum += static_cast<std::uint32_t>(data[i] << 8 | data[i + 1]);
  while (sum >> 16) sum = (sum & 0xffff) + (sum >> 16);
  return static_cast<std::uint16_t>(~sum);
}

tour_result icmp_row(tour_context& context) {
  auto ex = context.loop().get_executor();
  error_code ec;
  net::conn c = net::dial(ex, "ip4:icmp", "127.0.0.1", ec);
  if (ec == boost::system::errc::operation_not_permitted || ec == boost::system::errc::permission_denied)
    return tour_result::skip("raw sockets need CAP_NET_RAW (" + error_text(ec) + ")");
  if (ec) return set_up_failed("dial ip4:icmp 127.0.0.1", ec);
  int ready[2];
  if (::pipe2(ready, O_CLOEXEC) != 0) return {false, std::nullopt, std::nullopt, "pipe2: " + error_text(last_error())};
  unique_fd ready_r(ready[0]), ready_w(ready[1]);
  const std::string id = std::to_string(::getpid() & 0xffff);
  auto child = context.start_child("ip4:icmp", {id}, {{ready_w.get(), 3}});
  ready_w.reset();
  char byte = 0;
  if (!read_byte_within_deadline(ready_r.get(), byte)) return finish(child, {}, "", ipckit::errc::timeout);
  std::vector<std::chrono::nanoseconds> times;
  unsigned char echo[16] = {ICMP_ECHO, 0, 0, 0, 0, 0, 0, 0, 'i', 'p', 'c', 'k', 'i', 't', '!', '!'};
  const int ident = std::stoi(id);
  echo[4] = static_cast<unsigned char>(ident >> 8);
  echo[5] = static_cast<unsigned char>(ident & 0xff);
  unsigned char packet[256];
  // Then five with sequence 0xffff, which end the child (a raw socket may drop copies).
  for (int i = 0; i < samples + 5 && !ec; ++i) {
    const int sequence = i < samples ? i : 0xffff;
    echo[2] = echo[3] = 0;
    echo[6] = static_cast<unsigned char>(sequence >> 8);
    echo[7] = static_cast<unsigned char>(sequence & 0xff);
    const std::uint16_t sum = icmp_checksum(echo, sizeof echo);
    echo[2] = static_cast<unsigned char>(sum >> 8);
    echo[3] = static_cast<unsigned char>(sum & 0xff);
    const auto start = clock::now();
    ec = step(context, [&](auto handler) { c.async_write_some(asio::buffer(echo), handler); });
    // Our own request comes back too; wait for the kernel's reply.
    for (bool replied = false; !ec && !replied;) {
      std::size_t n = 0;
      ec = step(context, [&](auto handler) {
        c.async_read_some(asio::buffer(packet), [&n, handler](error_code e, std::size_t got) mutable {
          n = got;
          handler(e);
        });
      });
      const std::size_t header = (packet[0] & 0x0f) * 4u;
      replied = !ec && n >= header + 8 && packet[header] == ICMP_ECHOREPLY;
    }
    if (!ec && i < samples) times.push_back(clock::now() - start);
  }
  return finish(child, times, "echo requests to 127.0.0.1, seen by the child's raw socket", ec);
}

int icmp_child(std::span<const std::string> args) {
  if (args.empty()) return 2;
  event_loop loop;
  error_code ec;
  net::packet_conn p = net::listen_packet(loop.get_executor(), "ip4:icmp", "127.0.0.1", ec);
  if (ec) return 3;
  // The socket sees every request and reply of the run: room for all of them.
  const int room = 4 << 20;
  ::setsockopt(p.native_handle(), SOL_SOCKET, SO_RCVBUFFORCE, &room, sizeof room);
  ::setsockopt(p.native_handle(), SOL_SOCKET, SO_RCVBUF, &room, sizeof room);
  const int ident = std::stoi(args[0]);
  if (::write(3, "r", 1) != 1) return 4;
  ::close(3);
  int seen = 0;
  unsigned char packet[256];
  for (;;) {
    net::address from;
    const std::size_t n = p.receive_from(asio::buffer(packet), from, ec);
    if (ec) return 5;
    const std::size_t header = (packet[0] & 0x0f) * 4u;
    if (n < header + 8 || packet[header] != ICMP_ECHO ||
        (packet[header + 4] << 8 | packet[header + 5]) != ident)
      continue;
    if (packet[header + 6] == 0xff && packet[header + 7] == 0xff) return seen > 0 ? 0 : 6;
    ++seen;
  }
}

// ---- fd passing: the parent sends a pipe's write end, the child writes into it -------------

tour_result fd_passing_row(tour_context& context) {
  auto ex = context.loop().get_executor();
  const std::string path = (context.temp_dir() / "fd.sock").string();
  net::listener l = net::listen(ex, "unix", path);
  auto child = context.start_child("fd passing", {path});
  net::conn c(ex);
  error_code ec = step(context, [&](auto handler) {
    l.async_accept([&c, handler](error_code e, net::conn accepted) mutable {
      c = std::move(accepted);
      handler(e);
    });
  });
  std::vector<std::chrono::nanoseconds> times;
  for (int i = 0; i < samples && !ec; ++i) {
    int fds[2];
    if (::pipe2(fds, O_CLOEXEC) != 0) break;
    unique_fd r(fds[0]), w(fds[1]);
    const auto start = clock::now();
    const int pass[] = {w.get()};
    c.write_with_fds(asio::buffer("f", 1), pass, ec);
    w.reset();
    char byte = 0;
    // The child writes one byte into the passed fd and closes it.
    if (ec || !read_byte_within_deadline(r.get(), byte) || byte != 'k') break;
    times.push_back(clock::now() - start);
  }
  c.close();
  return finish(child, times, "pipe write ends sent over unix with SCM_RIGHTS, written by the child", ec);
}

int fd_passing_child(std::span<const std::string> args) {
  if (args.empty()) return 2;
  event_loop loop;
  error_code ec;
  net::conn c = net::dial(loop.get_executor(), "unix", args[0], ec);
  if (ec) return 3;
  for (;;) {
    char byte = 0;
    std::vector<unique_fd> fds;
    const std::size_t n = c.read_with_fds(asio::buffer(&byte, 1), fds, 4, ec);
    if (ec == asio::error::eof || (!ec && n == 0)) return 0;
    if (ec || fds.size() != 1) return 4;
    if (::write(fds[0].get(), "k", 1) != 1) return 5;
  }
}

std::string sock(tour_context& context, const char* name) { return (context.temp_dir() / name).string(); }

const tour_registration rows[] = {
    // "tcp" and "udp" are Go's either-family networks; with an IPv4 literal they pick
    // IPv4, as Go does (the rows show the network strings work end to end).
    tour_registration{{300, "tcp", [](tour_context& c) { return connection_row(c, "tcp", "tcp", "127.0.0.1:0"); }, connection_child}},
    tour_registration{{301, "tcp4", [](tour_context& c) { return connection_row(c, "tcp4", "tcp4", "127.0.0.1:0"); }, connection_child}},
    tour_registration{{302, "tcp6", [](tour_context& c) { return connection_row(c, "tcp6", "tcp6", "[::1]:0"); }, connection_child}},
    tour_registration{{303, "udp", [](tour_context& c) { return packet_row(c, "udp", "udp", "127.0.0.1:0", "127.0.0.1:0"); }, packet_child}},
    tour_registration{{304, "udp4", [](tour_context& c) { return packet_row(c, "udp4", "udp4", "127.0.0.1:0", "127.0.0.1:0"); }, packet_child}},
    tour_registration{{305, "udp6", [](tour_context& c) { return packet_row(c, "udp6", "udp6", "[::1]:0", "[::1]:0"); }, packet_child}},
    tour_registration{{306, "unix", [](tour_context& c) { return connection_row(c, "unix", "unix", sock(c, "unix.sock")); }, connection_child}},
    tour_registration{{307, "unixgram", [](tour_context& c) { return packet_row(c, "unixgram", "unixgram", sock(c, "gram.sock"), sock(c, "gram-child.sock")); }, packet_child}},
    tour_registration{{308, "unixpacket", [](tour_context& c) { return connection_row(c, "unixpacket", "unixpacket", sock(c, "packet.sock")); }, connection_child}},
    tour_registration{{309, "ip4:icmp", icmp_row, icmp_child}},
    tour_registration{{310, "fd passing", fd_passing_row, fd_passing_child}},
};

}  // namespace
}  // namespace ipckit::cli
