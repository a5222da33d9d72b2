// The fd-based channels: a 64-byte ping-pong and, where it applies, a stream, each
// measured four ways (raw blocking, raw epoll, ipckit blocking, ipckit async) against a
// child of this process that drives its side the same way.
#include "bench_ends.hpp"

#include "command.hpp"

#include <ipckit/message_queue.hpp>
#include <ipckit/net.hpp>
#include <ipckit/pipe.hpp>

#include <arpa/inet.h>
#include <cerrno>
#include <fcntl.h>
#include <netinet/in.h>
#include <sys/socket.h>
#include <sys/stat.h>
#include <system_error>
#include <type_traits>
#include <unistd.h>

namespace ipckit::cli::bench {
namespace {

using namespace std::chrono_literals;

constexpr std::size_t message_size = 64;
constexpr int child_in = 3, child_out = 4;

// In channel_ways' order.
enum class way { raw_blocking, raw_epoll, asio_async, ipckit_blocking, ipckit_async, ipckit_async_spin };
constexpr way all_ways[] = {way::raw_blocking, way::raw_epoll, way::asio_async, way::ipckit_blocking,
                            way::ipckit_async, way::ipckit_async_spin};

way parse_way(const std::string& text) {
  for (way w : all_ways)
    if (channel_ways[static_cast<int>(w)] == text) return w;
  throw std::invalid_argument("unknown way " + text);
}

/// Whether the way's descriptors are made by ipckit (the others make them with plain calls).
bool is_ipckit(way w) { return w != way::raw_blocking && w != way::raw_epoll && w != way::asio_async; }

/// What a channel is made of: fds made by the parent, or names both sides open.
enum class source { fds, fifo_paths, mq_names };

struct channel {
  int order;
  std::string_view name;     ///< the benchmark's name: "pipe", "unix", "tcp4" …
  std::string_view network;  ///< Go network for sockets; "" for pipes, FIFOs and queues
  framing kind;
  source from;
  std::size_t stream_chunk;  ///< write size of the throughput row; 0: no such row
};

// ---- making the two ends -------------------------------------------------------------

/// The descriptors one way's run starts from: the parent keeps `parent`, the child
/// gets `child` as fds 3 (in) and 4 (out); a socket is the same fd both ways.
struct made_fds {
  int parent_in = -1, parent_out = -1, child_in = -1, child_out = -1;
};

int checked(int fd, const char* what) {
  if (fd < 0) fail_errno(what);
  return fd;
}

made_fds make_pipes(way w, event_loop& loop) {
  if (is_ipckit(w)) {  // make_pipe as ipckit users get it: 1 MiB buffers when allowed
    auto down = make_pipe(loop.get_executor());
    auto up = make_pipe(loop.get_executor());
    return {up.reader.release().release(), down.writer.release().release(),
            down.reader.release().release(), up.writer.release().release()};
  }
  int down[2], up[2];
  checked(::pipe2(down, O_CLOEXEC), "pipe2");
  checked(::pipe2(up, O_CLOEXEC), "pipe2");
  return {up[0], down[1], down[0], up[1]};
}

/// The loopback address, port 0 (the kernel picks one at bind); returns its size.
socklen_t loopback(bool v6, sockaddr_storage& address) {
  address = {};
  if (v6) {
    auto* in6 = reinterpret_cast<sockaddr_in6*>(&address);
    in6->sin6_family = AF_INET6;
    in6->sin6_addr = in6addr_loopback;
    return sizeof *in6;
  }
  auto* in4 = reinterpret_cast<sockaddr_in*>(&address);
  in4->sin_family = AF_INET;
  in4->sin_addr.s_addr = htonl(INADDR_LOOPBACK);
  return sizeof *in4;
}

// A connected pair on loopback or a unix socket, for stream networks through ipckit's
// listen/dial/accept (ipckit ways) or plain socket calls (raw ways).
made_fds make_stream_pair(const channel& ch, way w, context& ctx, event_loop& loop) {
  const std::string network(ch.network);
  const bool is_unix = ch.network.starts_with("unix");
  if (is_unix && is_ipckit(w)) {
    const std::string path = (ctx.temp_dir() / (network + ".sock")).string();
    auto listener = net::listen(loop.get_executor(), network, path);
    auto dialed = net::dial(loop.get_executor(), network, path);
    auto accepted = listener.accept();
    const int a = dialed.release().release(), b = accepted.release().release();
    return {a, a, b, b};
  }
  if (is_unix) {
    int pair[2];
    const int type = ch.network == "unix" ? SOCK_STREAM
                     : ch.network == "unixgram" ? SOCK_DGRAM : SOCK_SEQPACKET;
    checked(::socketpair(AF_UNIX, type | SOCK_CLOEXEC, 0, pair), "socketpair");
    return {pair[0], pair[0], pair[1], pair[1]};
  }
  const bool v6 = ch.network.ends_with('6');
  const std::string host = v6 ? "[::1]:0" : "127.0.0.1:0";
  if (is_ipckit(w)) {
    auto listener = net::listen(loop.get_executor(), network, host);
    auto dialed = net::dial(loop.get_executor(), network, listener.addr().to_string());
    auto accepted = listener.accept();
    const int a = dialed.release().release(), b = accepted.release().release();
    return {a, a, b, b};
  }
  const int family = v6 ? AF_INET6 : AF_INET;
  sockaddr_storage address{};
  socklen_t size = loopback(v6, address);
  const int listening = checked(::socket(family, SOCK_STREAM | SOCK_CLOEXEC, 0), "socket");
  if (::bind(listening, reinterpret_cast<sockaddr*>(&address), size) != 0 || ::listen(listening, 1) != 0 ||
      ::getsockname(listening, reinterpret_cast<sockaddr*>(&address), &size) != 0) {
    const int saved = errno;
    ::close(listening);
    errno = saved;
    fail_errno("bind/listen");
  }
  const int dialed = checked(::socket(family, SOCK_STREAM | SOCK_CLOEXEC, 0), "socket");
  if (::connect(dialed, reinterpret_cast<sockaddr*>(&address), size) != 0) fail_errno("connect");
  const int accepted = checked(::accept4(listening, nullptr, nullptr, SOCK_CLOEXEC), "accept4");
  ::close(listening);
  return {dialed, dialed, accepted, accepted};
}

// Two UDP sockets on loopback connected to each other; blocking, as listen_packet makes
// them (ipckit's async way switches its own on).
made_fds make_udp_pair(const channel& ch, way) {
  const bool v6 = ch.network.ends_with('6');
  const int family = v6 ? AF_INET6 : AF_INET;
  const int type = SOCK_DGRAM | SOCK_CLOEXEC;
  int fds[2];
  sockaddr_storage addresses[2]{};
  socklen_t sizes[2]{};
  for (int i = 0; i < 2; ++i) {
    fds[i] = checked(::socket(family, type, 0), "socket");
    sizes[i] = loopback(v6, addresses[i]);
    if (::bind(fds[i], reinterpret_cast<sockaddr*>(&addresses[i]), sizes[i]) != 0 ||
        ::getsockname(fds[i], reinterpret_cast<sockaddr*>(&addresses[i]), &sizes[i]) != 0)
      fail_errno("bind");
  }
  for (int i = 0; i < 2; ++i)
    if (::connect(fds[i], reinterpret_cast<sockaddr*>(&addresses[1 - i]), sizes[1 - i]) != 0)
      fail_errno("connect");
  return {fds[0], fds[0], fds[1], fds[1]};
}

made_fds make_fds(const channel& ch, way w, context& ctx, event_loop& loop) {
  if (ch.network.empty()) return make_pipes(w, loop);
  if (ch.network.starts_with("udp")) return make_udp_pair(ch, w);
  if (ch.network == "unixgram" && is_ipckit(w)) {  // no listen for unixgram: a pair, as ipckit makes sockets
    int pair[2];
    checked(::socketpair(AF_UNIX, SOCK_DGRAM | SOCK_CLOEXEC, 0, pair), "socketpair");
    return {pair[0], pair[0], pair[1], pair[1]};
  }
  return make_stream_pair(ch, w, ctx, loop);
}

/// Named channels: the parent's two names are (in, out); the child's are swapped.
struct names {
  std::string in, out;
};

int open_fifo_raw(const std::string& path, bool reader) {
  // Blocking opens, as a plain program does: each waits for the other end.
  return checked(::open(path.c_str(), (reader ? O_RDONLY : O_WRONLY) | O_CLOEXEC), "open fifo");
}

int open_mq_raw(const std::string& name) {
  return checked(::mq_open(name.c_str(), O_RDWR | O_CLOEXEC), "mq_open");
}

// Runs `body(end, async)` with this side's end of the channel, made for way `w`.
template <class Body>
void with_end(const channel& ch, way w, bool parent, event_loop& loop, int in, int out, const names& named,
              Body&& body) {
  auto ex = loop.get_executor();
  if (!is_ipckit(w)) {
    if (ch.from == source::fifo_paths) {
      // Plain blocking opens pair up: the parent's reader with the child's writer first.
      if (parent) {
        in = open_fifo_raw(named.in, true);
        out = open_fifo_raw(named.out, false);
      } else {
        out = open_fifo_raw(named.out, false);
        in = open_fifo_raw(named.in, true);
      }
    } else if (ch.from == source::mq_names) {
      in = open_mq_raw(named.in);
      out = open_mq_raw(named.out);
    }
    if (w == way::asio_async) {
      if (ch.from == source::mq_names) throw std::logic_error("Asio has no message queue");
      asio_end end(ex, in, out, ch.kind == framing::stream);
      return body(end, true);
    }
    raw_end end(in, out, ch.kind, w == way::raw_epoll);
    return body(end, false);
  }
  const bool async = w == way::ipckit_async || w == way::ipckit_async_spin;
  if (ch.from == source::mq_names) {
    ipckit_mq_end end{message_queue(ex), message_queue(ex)};
    end.in.open(named.in);
    end.out.open(named.out);
    return body(end, async);
  }
  if (ch.from == source::fifo_paths) {
    ipckit_pipe_end end{open_fifo_reader(ex, named.in), open_fifo_writer(ex, named.out, 10s)};
    return body(end, async);
  }
  if (ch.network.empty()) {
    ipckit_pipe_end end{pipe_reader(ex, unique_fd(in)), pipe_writer(ex, unique_fd(out))};
    return body(end, async);
  }
  ipckit_conn_end end{net::conn(ex, ch.network, unique_fd(in)), ch.kind == framing::stream};
  return body(end, async);
}

// ---- the two sides -------------------------------------------------------------------

constexpr long warmup_of(long count) { return std::max(10L, count / 10); }

struct test {
  bool throughput;
  long count;        ///< round trips (latency)
  std::size_t total; ///< bytes (throughput)
  std::size_t chunk;
};

int run_child_side(const channel& ch, std::span<const std::string> args) {
  // WAY rt|tput COUNT-or-BYTES CHUNK SPIN-NS [IN-NAME OUT-NAME]
  if (args.size() < 5) return exit_usage;
  const way w = parse_way(args[0]);
  const bool throughput = args[1] == "tput";
  const long count = std::stol(args[2]);
  const std::size_t chunk = std::stoul(args[3]);
  const std::chrono::nanoseconds spin(w == way::ipckit_async_spin ? std::stoll(args[4]) : 0);
  names named;
  if (args.size() >= 7) named = {args[5], args[6]};
  event_loop loop(1);
  with_end(ch, w, false, loop, child_in, child_out, named, [&](auto& end, bool async) {
    using end_type = std::decay_t<decltype(end)>;
    if constexpr (std::is_same_v<end_type, raw_end>) {
      if (throughput) stream_in_blocking(end, static_cast<std::size_t>(count));
      else echo_blocking(end, count, chunk);
    } else if (async) {
      if (throughput) stream_in_async(loop, end, static_cast<std::size_t>(count), spin);
      else echo_async(loop, end, count, chunk, spin);
    } else {
      if (throughput) stream_in_blocking(end, static_cast<std::size_t>(count));
      else echo_blocking(end, count, chunk);
    }
  });
  return 0;
}

way_result run_parent_side(context& ctx, const channel& ch, way w, const test& t) {
  way_result result{std::string(channel_ways[static_cast<int>(w)]), std::nullopt, {}};
  if (w == way::ipckit_async_spin && ctx.opts().pin == pin_mode::same)
    return {result.way, "spinning needs the peer on another CPU (--pin cross)", {}};
  if (w == way::asio_async && ch.kind == framing::mq) return {result.way, "Asio has no message queue", {}};
  const std::chrono::nanoseconds spin = w == way::ipckit_async_spin ? ctx.opts().spin : std::chrono::nanoseconds{};
  event_loop loop(1);
  made_fds fds;
  names parent_names, child_names;
  std::vector<std::string> cleanup_mq;
  if (ch.from == source::fds) {
    fds = make_fds(ch, w, ctx, loop);
  } else if (ch.from == source::fifo_paths) {
    const auto down = (ctx.temp_dir() / (std::string(ch.name) + "-down")).string();
    const auto up = (ctx.temp_dir() / (std::string(ch.name) + "-up")).string();
    make_fifo(down);
    make_fifo(up);
    parent_names = {up, down};
    child_names = {down, up};
  } else {
    const auto down = ctx.unique_name("mq"), up = ctx.unique_name("mq");
    message_queue_options options;
    options.attributes.message_size = static_cast<long>(std::max(t.chunk, message_size));
    for (const auto& name : {down, up}) {
      message_queue q(loop.get_executor());
      q.create(name, options);
      cleanup_mq.push_back(name);
    }
    parent_names = {up, down};
    child_names = {down, up};
  }
  struct unlink_queues {
    std::vector<std::string>& names;
    ~unlink_queues() {
      for (const auto& name : names) {
        error_code ignored;
        message_queue::unlink(name, ignored);
      }
    }
  } unlinker{cleanup_mq};

  std::vector<std::string> args{result.way, t.throughput ? "tput" : "rt",
                                std::to_string(t.throughput ? static_cast<long>(t.total) : t.count + warmup_of(t.count)),
                                std::to_string(t.throughput ? t.chunk : message_size),
                                std::to_string(spin.count())};
  if (ch.from != source::fds) {
    args.push_back(child_names.in);
    args.push_back(child_names.out);
  }
  std::vector<std::pair<int, int>> mapping;
  if (fds.child_in >= 0) mapping = {{fds.child_in, child_in}, {fds.child_out, child_out}};
  auto child = ctx.start_child(ch.name, args, mapping);
  if (fds.child_in >= 0) ::close(fds.child_in);
  if (fds.child_out >= 0 && fds.child_out != fds.child_in) ::close(fds.child_out);

  with_end(ch, w, true, loop, fds.parent_in, fds.parent_out, parent_names, [&](auto& end, bool async) {
    using end_type = std::decay_t<decltype(end)>;
    const long warmup = warmup_of(t.count);
    if constexpr (std::is_same_v<end_type, raw_end>) {
      if (t.throughput) result.figures["rate"] = stream_out_blocking(end, t.total, t.chunk);
      else result.figures = latency_figures(ping_blocking(end, t.count, warmup, message_size));
    } else if (async) {
      if (t.throughput) result.figures["rate"] = stream_out_async(loop, end, t.total, t.chunk, spin);
      else result.figures = latency_figures(ping_async(loop, end, t.count, warmup, message_size, spin));
    } else {
      if (t.throughput) result.figures["rate"] = stream_out_blocking(end, t.total, t.chunk);
      else result.figures = latency_figures(ping_blocking(end, t.count, warmup, message_size));
    }
  });
  context::reap(child, std::string(ch.name) + " " + result.way);
  return result;
}

// ---- rows ----------------------------------------------------------------------------

std::optional<std::string> unavailable(const channel& ch) {
  if (!ch.network.ends_with('6')) return std::nullopt;
  const int fd = ::socket(AF_INET6, SOCK_DGRAM | SOCK_CLOEXEC, 0);
  if (fd < 0) return "no IPv6 here (socket AF_INET6: " + std::generic_category().message(errno) + ")";
  sockaddr_storage address{};
  const socklen_t size = loopback(true, address);
  const bool ok = ::bind(fd, reinterpret_cast<sockaddr*>(&address), size) == 0;
  const int saved = errno;
  ::close(fd);
  if (!ok) return "no ::1 here (bind: " + std::generic_category().message(saved) + ")";
  return std::nullopt;
}

std::vector<row_result> run_channel(context& ctx, const channel& ch) {
  std::vector<row_result> rows;
  row_result round_trip{std::string(ch.name), "round_trip", "us", "median", true, std::nullopt, {},
                        "64-byte ping-pong", four_way_ratios()};
  round_trip.ratios.push_back({"ipckit_async_spin", "raw_blocking"});
  if (ch.kind != framing::mq) round_trip.ratios.push_back({"ipckit_async", "asio_async"});
  const auto skipped = unavailable(ch);
  if (skipped) round_trip.skipped = skipped;
  std::vector<test> tests{{false, ctx.opts().iterations, 0, message_size}};
  if (ch.stream_chunk) {
    const std::size_t total = ctx.opts().stream_bytes / ch.stream_chunk * ch.stream_chunk;
    tests.push_back({true, 0, std::max(total, ch.stream_chunk), ch.stream_chunk});
  }
  for (const auto& t : tests) {
    row_result row = round_trip;
    if (t.throughput) {
      row.kind = "throughput";
      row.unit = "MB/s";
      row.headline = "rate";
      row.lower_is_better = false;
      row.note = std::to_string(t.total >> 20) + " MiB in " + std::to_string(t.chunk >> 10) + " KiB " +
                 (ch.kind == framing::mq ? "messages" : ch.kind == framing::datagram ? "datagrams" : "writes");
    }
    measure_ways(ctx, row, channel_ways, [&](std::string_view w) { return run_parent_side(ctx, ch, parse_way(std::string(w)), t); });
    rows.push_back(std::move(row));
  }
  return rows;
}

constexpr std::size_t stream_chunk = 64 * 1024;
constexpr std::size_t mq_chunk = 8 * 1024;

constexpr channel channels[] = {
    {10, "pipe", "", framing::stream, source::fds, stream_chunk},
    {11, "fifo", "", framing::stream, source::fifo_paths, 0},
    {20, "unix", "unix", framing::stream, source::fds, stream_chunk},
    {21, "unixgram", "unixgram", framing::datagram, source::fds, stream_chunk},
    {22, "unixpacket", "unixpacket", framing::datagram, source::fds, stream_chunk},
    {30, "tcp4", "tcp4", framing::stream, source::fds, stream_chunk},
    {31, "tcp6", "tcp6", framing::stream, source::fds, 0},
    {32, "udp4", "udp4", framing::datagram, source::fds, 0},
    {33, "udp6", "udp6", framing::datagram, source::fds, 0},
    {40, "mq", "", framing::mq, source::mq_names, mq_chunk},
};

template <std::size_t I>
benchmark channel_benchmark() {
  const channel& ch = channels[I];
  constexpr int steps = std::size(channel_ways);
  return {ch.order, ch.name, ch.stream_chunk ? 2 * steps : steps,
          [&ch](context& ctx) { return run_channel(ctx, ch); },
          [&ch](std::span<const std::string> args) { return run_child_side(ch, args); }};
}

const registration registered[] = {
    registration{channel_benchmark<0>()}, registration{channel_benchmark<1>()},
    registration{channel_benchmark<2>()}, registration{channel_benchmark<3>()},
    registration{channel_benchmark<4>()}, registration{channel_benchmark<5>()},
    registration{channel_benchmark<6>()}, registration{channel_benchmark<7>()},
    registration{channel_benchmark<8>()}, registration{channel_benchmark<9>()},
};

}  // namespace
}  // namespace ipckit::cli::bench
