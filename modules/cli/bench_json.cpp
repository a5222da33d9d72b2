// JSON messages over a unix stream socket, as round trips: each side parses what it
// receives and serialises what it sends. The raw ways frame by hand (a 4-byte length,
// big-endian, then the text); the ipckit ways use json_channel over net::conn.
#include "bench_ends.hpp"

#include "command.hpp"

#include <ipckit/message.hpp>
#include <ipckit/net.hpp>

#include <nlohmann/json.hpp>

#include <sys/socket.h>
#include <unistd.h>

namespace ipckit::cli::bench {
namespace {

constexpr int child_fd = 3;

nlohmann::json ping_message() {
  return {{"op", "ping"}, {"seq", 1}, {"payload", "0123456789abcdef0123456789"}};
}

/// json_channel's blocking and async calls in the shape the drivers expect.
struct ipckit_json_end {
  json_channel<net::conn> channel;
  nlohmann::json current;

  void send(const char*, std::size_t) { channel.send(current); }
  void recv(char*, std::size_t, std::size_t) { current = channel.receive(); }
  template <class Handler>
  void async_send(const char*, std::size_t, Handler h) {
    channel.async_send(current, [h = std::move(h)](error_code ec) mutable { h(ec, 0); });
  }
  template <class Handler>
  void async_recv(char*, std::size_t, std::size_t, Handler h) {
    channel.async_receive([this, h = std::move(h)](error_code ec, nlohmann::json message) mutable {
      current = std::move(message);
      h(ec, 0);
    });
  }
};

std::map<std::string, double> json_side(bool parent, const std::string& way, long count, int fd) {
  event_loop loop(1);
  const long warmup = std::max(10L, count / 10);
  if (way == four_ways[2] || way == four_ways[3]) {
    ipckit_json_end end{json_channel<net::conn>(net::conn(loop.get_executor(), "unix", unique_fd(fd))),
                        ping_message()};
    return ping_or_echo(parent, way == four_ways[3], loop, end, count, warmup, 0);
  }
  raw_end socket(fd, fd, framing::stream, way == four_ways[1]);
  nlohmann::json current = ping_message();
  std::string frame, body;
  call_end end{[&] {
                 const std::string text = current.dump();
                 const auto size = static_cast<std::uint32_t>(text.size());
                 frame.assign({static_cast<char>(size >> 24), static_cast<char>(size >> 16),
                               static_cast<char>(size >> 8), static_cast<char>(size)});
                 frame += text;
                 socket.send(frame.data(), frame.size());
               },
               [&] {
                 unsigned char header[4];
                 socket.recv(reinterpret_cast<char*>(header), 4, 4);
                 body.resize(std::size_t(header[0]) << 24 | std::size_t(header[1]) << 16 |
                             std::size_t(header[2]) << 8 | header[3]);
                 socket.recv(body.data(), body.size(), body.size());
                 current = nlohmann::json::parse(body);
               },
               no_async_recv{}};
  return ping_or_echo(parent, false, loop, end, count, warmup, 0);
}

way_result json_way(context& ctx, std::string_view way) {
  int pair[2];
  // Blocking for every way, as ipckit's dial and accept return their sockets (docs/net.md):
  // the async ways set O_NONBLOCK themselves on their first async operation. (Until
  // session 18 the ipckit ways got a non-blocking pair, so each blocking receive was a
  // recv that failed, a poll and a recv: 1.72x raw across CPUs.)
  if (::socketpair(AF_UNIX, SOCK_STREAM | SOCK_CLOEXEC, 0, pair) != 0)
    fail_errno("socketpair");
  way_result result{std::string(way), std::nullopt, {}};
  auto child = ctx.start_child("json", {result.way, std::to_string(ctx.opts().iterations)}, {{pair[1], child_fd}});
  ::close(pair[1]);
  result.figures = json_side(true, result.way, ctx.opts().iterations, pair[0]);
  context::reap(child, "json " + result.way);
  return result;
}

int json_child(std::span<const std::string> args) {
  if (args.size() < 2) return exit_usage;
  json_side(false, args[0], std::stol(args[1]), child_fd);
  return 0;
}

const registration registered{{70, "json", 4,
                               [](context& ctx) {
                                 row_result row{"json", "round_trip", "us", "median", true, std::nullopt, {},
                                                "a 70-byte JSON object parsed and re-serialised on each side, "
                                                "length-prefixed over a unix stream socket",
                                                four_way_ratios()};
                                 measure_ways(ctx, row, four_ways, [&](std::string_view way) { return json_way(ctx, way); });
                                 return std::vector<row_result>{row};
                               },
                               json_child}};

}  // namespace
}  // namespace ipckit::cli::bench
