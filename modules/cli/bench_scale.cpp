// Scale: many unix-stream connections echoing on one loop (resident memory per
// connection, messages per second), and the rate of starting and reaping children.
#include "bench_ends.hpp"

#include "command.hpp"

#include <ipckit/net.hpp>
#include <ipckit/process.hpp>

#include <array>
#include <cerrno>
#include <fcntl.h>
#include <fstream>
#include <iostream>
#include <memory>
#include <spawn.h>
#include <sys/epoll.h>
#include <sys/resource.h>
#include <sys/socket.h>
#include <sys/un.h>
#include <sys/wait.h>
#include <unistd.h>

extern char** environ;

namespace ipckit::cli::bench {
namespace {

constexpr std::size_t echo_size = 64;

// ---- connections ---------------------------------------------------------------------

/// Raises the soft RLIMIT_NOFILE to hold `needed` descriptors; the reason when it can't.
std::optional<std::string> make_room_for(long needed) {
  rlimit limit{};
  if (::getrlimit(RLIMIT_NOFILE, &limit) != 0) return "getrlimit: " + std::generic_category().message(errno);
  const auto want = static_cast<rlim_t>(needed);
  if (limit.rlim_cur >= want) return std::nullopt;
  rlimit raised = limit;
  raised.rlim_cur = want;
  if (raised.rlim_max < want) raised.rlim_max = want;  // needs CAP_SYS_RESOURCE
  if (::setrlimit(RLIMIT_NOFILE, &raised) == 0) return std::nullopt;
  return "RLIMIT_NOFILE is " + std::to_string(limit.rlim_cur) + " (hard " + std::to_string(limit.rlim_max) +
         ") and " + std::to_string(needed) + " descriptors are needed";
}

std::size_t resident_bytes() {
  std::ifstream statm("/proc/self/statm");
  std::size_t size = 0, resident = 0;
  statm >> size >> resident;
  return resident * static_cast<std::size_t>(::sysconf(_SC_PAGESIZE));
}

long rounds_of(const options& opts) { return opts.quick ? 2 : 10; }

/// The client, in the child: `connections` blocking connections, then `rounds` times a
/// message on each followed by reading every echo.
int connections_child(std::span<const std::string> args) {
  if (args.size() < 3) return exit_usage;
  const std::string path = args[0];
  const long count = std::stol(args[1]), rounds = std::stol(args[2]);
  if (auto why = make_room_for(count + 64)) {
    std::cerr << "ipckit bench connections: " << *why << '\n';
    return 1;
  }
  sockaddr_un address{};
  address.sun_family = AF_UNIX;
  path.copy(address.sun_path, sizeof address.sun_path - 1);
  std::vector<unique_fd> sockets;
  sockets.reserve(static_cast<std::size_t>(count));
  for (long i = 0; i < count; ++i) {
    unique_fd fd(::socket(AF_UNIX, SOCK_STREAM | SOCK_CLOEXEC, 0));
    if (!fd.is_open() || ::connect(fd.get(), reinterpret_cast<sockaddr*>(&address), sizeof address) != 0)
      fail_errno("connect");
    sockets.push_back(std::move(fd));
  }
  std::array<char, echo_size> message{}, echo{};
  message.fill('m');
  for (long r = 0; r < rounds; ++r) {
    for (auto& fd : sockets)
      if (::write(fd.get(), message.data(), message.size()) != static_cast<long>(message.size())) fail_errno("write");
    for (auto& fd : sockets)
      for (std::size_t got = 0; got < echo.size();) {
        const long n = ::read(fd.get(), echo.data() + got, echo.size() - got);
        if (n <= 0) fail_errno("read");
        got += static_cast<std::size_t>(n);
      }
  }
  return 0;
}

/// What the server side counts: echoes, the resident size once every connection has
/// echoed once, and when the echoing started and ended.
struct server_tally {
  long connections;
  long expected_messages;
  long accepted = 0;
  long messages = 0;
  long closed = 0;
  std::size_t baseline = 0;
  std::size_t loaded = 0;
  clock::time_point first{}, last{};

  void echoed(long n) {
    if (messages == 0) first = clock::now();
    messages += n;
    if (messages >= connections && loaded == 0) loaded = resident_bytes();
    if (messages >= expected_messages && last == clock::time_point{}) last = clock::now();
  }
  std::map<std::string, double> figures() const {
    if (messages < expected_messages) throw std::runtime_error("not every message came back");
    const std::chrono::duration<double> took = last - first;
    const double per_connection =
        loaded > baseline ? static_cast<double>(loaded - baseline) / static_cast<double>(connections) : 0.001;
    return {{"rate", static_cast<double>(messages) / std::max(took.count(), 1e-9)},
            {"bytes_per_connection", per_connection},
            {"resident_mib_beyond_baseline", static_cast<double>(loaded - std::min(loaded, baseline)) / (1 << 20) + 1e-6}};
  }
};

// The ipckit server: async_accept, then per connection async_read_some / async_write.
struct ipckit_server {
  struct session {
    net::conn connection;
    std::array<char, echo_size> buffer{};
  };
  net::listener& listener;
  server_tally& tally;
  std::vector<std::unique_ptr<session>> sessions;

  void accept() {
    listener.async_accept([this](error_code ec, net::conn c) {
      check(ec, "accept");
      sessions.push_back(std::make_unique<session>(session{std::move(c)}));
      read(*sessions.back());
      if (++tally.accepted < tally.connections) accept();
    });
  }
  void read(session& s) {
    s.connection.async_read_some(boost::asio::buffer(s.buffer), [this, &s](error_code ec, std::size_t n) {
      if (ec) {
        ++tally.closed;
        s.connection.close();
        return;
      }
      boost::asio::async_write(s.connection, boost::asio::buffer(s.buffer.data(), n),
                               [this, &s, n](error_code ec, std::size_t) {
                                 check(ec, "write");
                                 tally.echoed(static_cast<long>(n / echo_size));
                                 read(s);
                               });
    });
  }
};

// The baseline: accept4 and read/write on one edge-triggered epoll set, no per-connection
// state beyond the descriptor.
void raw_server(int listening, server_tally& tally) {
  const int ep = ::epoll_create1(EPOLL_CLOEXEC);
  if (ep < 0) fail_errno("epoll_create1");
  unique_fd epoll_fd(ep);
  epoll_event event{};
  event.events = EPOLLIN | EPOLLET;
  event.data.fd = listening;
  if (::epoll_ctl(ep, EPOLL_CTL_ADD, listening, &event) != 0) fail_errno("epoll_ctl");
  std::vector<epoll_event> events(256);
  std::array<char, 4096> buffer{};
  while (tally.closed < tally.connections) {
    const int ready = ::epoll_wait(ep, events.data(), static_cast<int>(events.size()), 10000);
    if (ready < 0 && errno == EINTR) continue;
    if (ready <= 0) throw std::runtime_error("epoll_wait: nothing for 10s");
    for (int i = 0; i < ready; ++i) {
      const int fd = events[static_cast<std::size_t>(i)].data.fd;
      if (fd == listening) {
        for (;;) {
          const int accepted = ::accept4(listening, nullptr, nullptr, SOCK_CLOEXEC | SOCK_NONBLOCK);
          if (accepted < 0) break;
          ++tally.accepted;
          epoll_event e{};
          e.events = EPOLLIN | EPOLLET;
          e.data.fd = accepted;
          if (::epoll_ctl(ep, EPOLL_CTL_ADD, accepted, &e) != 0) fail_errno("epoll_ctl");
        }
        continue;
      }
      for (;;) {
        const long n = ::read(fd, buffer.data(), buffer.size());
        if (n > 0) {
          if (::write(fd, buffer.data(), static_cast<std::size_t>(n)) != n) fail_errno("write");
          tally.echoed(n / static_cast<long>(echo_size));
          continue;
        }
        if (n == 0 || errno != EAGAIN) {
          ++tally.closed;
          ::close(fd);
        }
        break;
      }
    }
  }
}

way_result connections_way(context& ctx, std::string_view way) {
  const long count = ctx.opts().connections, rounds = rounds_of(ctx.opts());
  way_result result{std::string(way), std::nullopt, {}};
  const std::string path = (ctx.temp_dir() / ("echo-" + result.way + ".sock")).string();
  server_tally tally{count, count * rounds};
  event_loop loop(1);
  std::optional<net::listener> listener;
  unique_fd raw_listener;
  if (way == "ipckit_async") {
    listener.emplace(net::listen(loop.get_executor(), "unix", path));
  } else {
    raw_listener.reset(::socket(AF_UNIX, SOCK_STREAM | SOCK_CLOEXEC | SOCK_NONBLOCK, 0));
    sockaddr_un address{};
    address.sun_family = AF_UNIX;
    path.copy(address.sun_path, sizeof address.sun_path - 1);
    if (!raw_listener.is_open() || ::bind(raw_listener.get(), reinterpret_cast<sockaddr*>(&address), sizeof address) != 0 ||
        ::listen(raw_listener.get(), SOMAXCONN) != 0)
      fail_errno("listen");
  }
  tally.baseline = resident_bytes();
  auto child = ctx.start_child("connections", {path, std::to_string(count), std::to_string(rounds)});
  if (listener) {
    ipckit_server server{*listener, tally, {}};
    server.sessions.reserve(static_cast<std::size_t>(count));
    tally.baseline = resident_bytes();
    server.accept();
    loop.run();  // ends when every connection has closed and no accept is pending
  } else {
    raw_server(raw_listener.get(), tally);
    ::unlink(path.c_str());
  }
  context::reap(child, "connections " + result.way);
  result.figures = tally.figures();
  return result;
}

std::vector<row_result> connections_rows(context& ctx) {
  const long count = ctx.opts().connections;
  row_result row{"connections", "scale", "messages/s", "rate", false, std::nullopt, {},
                 std::to_string(count) + " unix-stream connections to one loop, " +
                     std::to_string(rounds_of(ctx.opts())) +
                     " rounds of a 64-byte message on each; resident memory measured once all echoed",
                 {{"ipckit_async", "raw_epoll"}}};
  if (auto why = make_room_for(count + 64)) row.skipped = *why;
  const std::string_view ways[] = {"raw_epoll", "ipckit_async"};
  measure_ways(ctx, row, ways, [&](std::string_view way) { return connections_way(ctx, way); });
  return {row};
}

// ---- spawn ---------------------------------------------------------------------------

long spawns_of(const options& opts) { return opts.quick ? 20 : 500; }

const char* true_program() { return ::access("/bin/true", X_OK) == 0 ? "/bin/true" : "/usr/bin/true"; }

template <class StartAndReap>
std::map<std::string, double> time_spawns(long count, StartAndReap start_and_reap) {
  std::vector<clock::duration> samples;
  const auto start = clock::now();
  for (long i = 0; i < count; ++i) {
    const auto one = clock::now();
    start_and_reap();
    samples.push_back(clock::now() - one);
  }
  const std::chrono::duration<double> took = clock::now() - start;
  auto figures = latency_figures(std::move(samples));
  figures["rate"] = static_cast<double>(count) / took.count();
  return figures;
}

way_result spawn_way(context& ctx, std::string_view way) {
  const long count = spawns_of(ctx.opts());
  const std::string program = true_program();
  way_result result{std::string(way), std::nullopt, {}};
  event_loop loop(1);
  if (way == "raw_blocking") {
    result.figures = time_spawns(count, [&] {
      char* argv[] = {const_cast<char*>(program.c_str()), nullptr};
      pid_t pid = -1;
      const int error = ::posix_spawn(&pid, program.c_str(), nullptr, nullptr, argv, environ);
      if (error != 0) throw std::system_error(error, std::generic_category(), "posix_spawn");
      int status = 0;
      while (::waitpid(pid, &status, 0) < 0)
        if (errno != EINTR) fail_errno("waitpid");
    });
  } else if (way == "ipckit_blocking") {
    result.figures = time_spawns(count, [&] {
      command child(loop.get_executor(), program);
      child.start();
      child.wait();
    });
  } else {
    result.figures = time_spawns(count, [&] {
      command child(loop.get_executor(), program);
      child.start();
      bool reaped = false;
      child.async_wait([&](error_code ec, process_state) {
        check(ec, "wait");
        reaped = true;
      });
      loop.restart();
      loop.run();
      if (!reaped) throw std::runtime_error("the loop stopped before the child was reaped");
    });
  }
  return result;
}

std::vector<row_result> spawn_rows(context& ctx) {
  row_result row{"spawn", "spawn", "spawns/s", "rate", false, std::nullopt, {},
                 std::to_string(spawns_of(ctx.opts())) + " children of " + true_program() +
                     " started and reaped one after another (median/p99: µs per child)",
                 {{"ipckit_blocking", "raw_blocking"}, {"ipckit_async", "raw_blocking"}}};
  const std::string_view ways[] = {"raw_blocking", "ipckit_blocking", "ipckit_async"};
  measure_ways(ctx, row, ways, [&](std::string_view way) { return spawn_way(ctx, way); });
  return {row};
}

const registration registered[] = {
    registration{{80, "connections", 2, connections_rows, connections_child}},
    registration{{90, "spawn", 3, spawn_rows, nullptr}},
};

}  // namespace
}  // namespace ipckit::cli::bench
