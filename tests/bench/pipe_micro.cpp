// A 64-byte pipe ping-pong between two processes of this program (fork, no exec, so
// valgrind and perf follow both) on one CPU: each way of ipckit bench's pipe row, and a
// few in between, to find where ipckit's user space goes (docs/performance-findings.md,
// finding 4). Built with `meson configure build -Dbenchmarks=true`:
//   build/tests/bench/pipe_micro WAY [ROUND_TRIPS] [ROUNDS] [raw-peer] [big]
// WAY is one of
//   raw_blocking     read + write
//   raw_epoll        read (EAGAIN), epoll_wait (edge-triggered), read, write
//   asio             posix::stream_descriptor, async_read + async_write, on an event_loop
//                    (ipckit bench's asio_async way)
//   asio_bare        the same descriptors' async_read_some/async_write_some on a bare
//                    io_context's own executor type (the least Asio does)
//   ipckit_async     pipe_reader/pipe_writer, async_read + async_write, on an event_loop
//   ipckit_bare      pipe_reader/pipe_writer, async_read_some + async_write_some
//   ipckit_blocking  pipe_reader/pipe_writer, asio::read + asio::write
//   direct, direct_defer, direct_drain
//                    the floor under ipckit_async: see direct_way below
// and, on a unix stream socketpair instead of two pipes (for comparison):
//   raw_epoll_unix, raw_blocking_unix, asio_unix (local::stream_protocol::socket),
//   ipckit_async_unix and ipckit_blocking_unix (net::conn)
// Both processes run WAY, as in ipckit bench, unless `raw-peer` makes the pinging parent
// raw_blocking (then the child's way is all that differs between runs). `big` asks for
// 1 MiB pipes, as make_pipe does (ipckit bench's ipckit ways get those). Prints the
// median round trip of ROUNDS rounds and both processes' user and system CPU time per
// round trip. With `valgrind --tool=callgrind --trace-children=no`, each process writes
// its own profile: the difference of two runs with N and 2N round trips, divided by N,
// is the instructions per round trip (per echo in the child's profile).
#include <ipckit/event_loop.hpp>
#include <ipckit/detail/immediate_completions.hpp>

#include "asio_private.hpp"
#include <ipckit/net.hpp>
#include <ipckit/pipe.hpp>
#include <ipckit/signal.hpp>

#include <boost/asio/io_context.hpp>
#include <boost/asio/defer.hpp>
#include <boost/asio/detail/epoll_reactor.hpp>
#include <boost/asio/detail/scheduler.hpp>
#include <boost/asio/local/stream_protocol.hpp>
#include <boost/asio/posix/stream_descriptor.hpp>
#include <boost/asio/read.hpp>
#include <boost/asio/write.hpp>

#include <algorithm>
#include <cerrno>
#include <chrono>
#include <csignal>
#include <cstdio>
#include <cstdlib>
#include <fcntl.h>
#include <sched.h>
#include <string>
#include <sys/epoll.h>
#include <sys/resource.h>
#include <sys/socket.h>
#include <sys/wait.h>
#include <unistd.h>
#include <vector>

namespace {

using clk = std::chrono::steady_clock;
constexpr std::size_t message = 64;

void check(bool ok, const char* what) {
  if (!ok) {
    std::perror(what);
    std::exit(1);
  }
}

void set_non_blocking(int fd) {
  const int flags = ::fcntl(fd, F_GETFL);
  check(flags >= 0 && ::fcntl(fd, F_SETFL, flags | O_NONBLOCK) == 0, "fcntl");
}

// One side of the ping-pong: `count` exchanges; the pinger sends first and calls
// `lap()` after each round trip, the echoer receives first.
struct side {
  int in, out;
  bool pinger;
  long count;
  void (*lap)(long done);
};

void exact_read(int fd, char* p, std::size_t n) {
  while (n > 0) {
    const long got = ::read(fd, p, n);
    check(got > 0, "read");
    p += got;
    n -= static_cast<std::size_t>(got);
  }
}

void raw_blocking(const side& s) {
  char buffer[message] = "ping";
  for (long i = 0; i < s.count; ++i) {
    if (s.pinger) check(::write(s.out, buffer, message) == long(message), "write");
    exact_read(s.in, buffer, message);
    if (!s.pinger) check(::write(s.out, buffer, message) == long(message), "write");
    else s.lap(i + 1);
  }
}

void raw_epoll(const side& s) {
  set_non_blocking(s.in);
  set_non_blocking(s.out);
  const int ep = ::epoll_create1(EPOLL_CLOEXEC);
  epoll_event event{};
  event.events = EPOLLIN | EPOLLET;
  event.data.fd = s.in;
  check(::epoll_ctl(ep, EPOLL_CTL_ADD, s.in, &event) == 0, "epoll_ctl");
  char buffer[message] = "ping";
  auto receive = [&] {
    std::size_t got = 0;
    while (got < message) {
      const long n = ::read(s.in, buffer + got, message - got);
      if (n > 0) {
        got += static_cast<std::size_t>(n);
      } else {
        check(n < 0 && errno == EAGAIN, "read");
        epoll_event events[2];
        while (::epoll_wait(ep, events, 2, -1) < 0) check(errno == EINTR, "epoll_wait");
      }
    }
  };
  for (long i = 0; i < s.count; ++i) {
    if (s.pinger) check(::write(s.out, buffer, message) == long(message), "write");
    receive();
    if (!s.pinger) check(::write(s.out, buffer, message) == long(message), "write");
    else s.lap(i + 1);
  }
  ::close(ep);
}

// The order of a ping-pong driven by completions (the async and direct ways): the pinger
// sends first and laps after each echo, the echoer receives first. Derived has send()
// and receive().
template <class Derived>
struct ping_pong {
  const side& s;
  char buffer[message] = "ping";
  long done = 0;

  void start() {
    if (done == s.count) return;
    if (s.pinger) self().send();
    else self().receive();
  }
  void next() {
    ++done;
    if (s.pinger) s.lap(done);
    start();
  }
  Derived& self() { return static_cast<Derived&>(*this); }
};

// The async ways: Reader and Writer are Asio AsyncReadStream/AsyncWriteStream, driven
// with async_read/async_write, or (Bare) with their own async_read_some/async_write_some
// (a pipe moves 64 bytes whole).
template <class Reader, class Writer, bool Bare = false>
struct async_side : ping_pong<async_side<Reader, Writer, Bare>> {
  using ping_pong<async_side>::s;
  using ping_pong<async_side>::buffer;
  using ping_pong<async_side>::next;
  Reader& reader;
  Writer& writer;

  async_side(const side& s, Reader& r, Writer& w) : ping_pong<async_side>{s}, reader(r), writer(w) {}

  void send() {
    auto sent = [this](boost::system::error_code ec, std::size_t n) {
      check(!ec && n == message, "async write");
      if (s.pinger) receive();
      else next();
    };
    if constexpr (Bare) writer.async_write_some(boost::asio::buffer(buffer, message), sent);
    else boost::asio::async_write(writer, boost::asio::buffer(buffer, message), sent);
  }
  void receive() {
    auto received = [this](boost::system::error_code ec, std::size_t n) {
      check(!ec && n == message, "async read");
      if (s.pinger) next();
      else send();
    };
    if constexpr (Bare) reader.async_read_some(boost::asio::buffer(buffer, message), received);
    else boost::asio::async_read(reader, boost::asio::buffer(buffer, message), received);
  }
};

// The "direct" ways: the least a pipe ping-pong on ipckit's event_loop can cost. The read
// end sits in the reactor's epoll set with a scheduler_operation of this program's (what
// detail::polled_descriptor does), and nothing else is between the handler and the
// system calls: no operation object, no type-erased handler or executor, no composed
// read. The reply's completion runs inline (direct), is deferred to the scheduler
// (direct_defer: it then waits behind the reactor's epoll_wait(0) turn), or is deferred
// and taken back by immediate_drain as ipckit's own completions are (direct_drain).
namespace ad = boost::asio::detail;

struct direct_reader : ad::scheduler_operation {
  int fd = -1;
  ad::scheduler* scheduler = nullptr;
  char* buffer = nullptr;
  bool pending = false;
  bool drain = false;
  void (*done)(void*, long) = nullptr;
  void* context = nullptr;

  direct_reader() : ad::scheduler_operation(&direct_reader::ready) {}

  // Run by the scheduler for each readiness event the reactor hands back.
  static void ready(void* owner, ad::scheduler_operation* base, const boost::system::error_code&, std::size_t) {
    if (!owner) return;
    auto* self = static_cast<direct_reader*>(base);
    const long n = self->pending ? ::read(self->fd, self->buffer, message) : -1;
    if (n < 0) {
      // Not a completion: make up for the unit of work the scheduler takes for this run.
      self->scheduler->compensating_work_started();
      return;
    }
    self->pending = false;
    ipckit::detail::immediate_drain drain(self->drain ? owner : nullptr);
    self->done(self->context, n);
    drain.run();
  }

  void wait(char* into) {
    buffer = into;
    pending = true;
    scheduler->work_started();
  }
};

template <bool Defer>
struct direct_side : ping_pong<direct_side<Defer>> {
  using ping_pong<direct_side>::s;
  using ping_pong<direct_side>::buffer;
  using ping_pong<direct_side>::next;
  boost::asio::io_context& io;
  direct_reader reader;

  direct_side(const side& s, boost::asio::io_context& context) : ping_pong<direct_side>{s}, io(context) {}

  template <class F>
  void complete(F f) {
    if constexpr (Defer) boost::asio::defer(io.get_executor(), f);
    else f();
  }
  void send() {
    check(::write(s.out, buffer, message) == long(message), "write");
    complete([this] {
      if (s.pinger) receive();
      else next();
    });
  }
  void receive() {
    const long n = ::read(s.in, buffer, message);
    if (n > 0) return complete([this, n] { received(n); });
    check(errno == EAGAIN, "read");
    reader.wait(buffer);
  }
  static void on_read(void* self, long n) { static_cast<direct_side*>(self)->received(n); }
  void received(long n) {
    check(n == long(message), "direct read");
    if (s.pinger) next();
    else send();
  }
};

template <bool Defer>
void direct_way(const side& s, bool drain) {
  set_non_blocking(s.in);
  set_non_blocking(s.out);
  ipckit::event_loop loop(1);
  auto& reactor = boost::asio::use_service<ad::epoll_reactor>(loop.context());
  reactor.init_task();
  direct_side<Defer> d{s, loop.context()};
  d.reader.fd = s.in;
  d.reader.scheduler = &boost::asio::use_service<ad::scheduler>(loop.context());
  d.reader.drain = drain;
  d.reader.done = &direct_side<Defer>::on_read;
  d.reader.context = &d;
  epoll_event event{};
  event.events = EPOLLIN | EPOLLET;
  event.data.ptr = &d.reader;
  const int epoll_fd = ipckit::detail::reactor_epoll_descriptor(reactor);
  check(::epoll_ctl(epoll_fd, EPOLL_CTL_ADD, s.in, &event) == 0, "epoll_ctl");
  d.start();
  loop.run();
  check(d.done == s.count, "direct ended early");
}

// The bare way's descriptors, on io_context's own executor type.
using bare_descriptor = boost::asio::posix::basic_stream_descriptor<boost::asio::io_context::executor_type>;

void run_way(const std::string& way, const side& s) {
  if (way == "raw_blocking" || way == "raw_blocking_unix") return raw_blocking(s);
  if (way == "raw_epoll" || way == "raw_epoll_unix") return raw_epoll(s);
  if (way.ends_with("_unix")) {
    ipckit::event_loop loop(1);
    if (way == "asio_unix") {
      boost::asio::local::stream_protocol::socket socket(loop.get_executor(), boost::asio::local::stream_protocol(),
                                                         s.in);
      async_side<decltype(socket), decltype(socket)> a{s, socket, socket};
      a.start();
      loop.run();
      check(a.done == s.count, "asio_unix ended early");
      return;
    }
    ipckit::net::conn connection(loop.get_executor(), "unix", ipckit::unique_fd(s.in));
    if (way == "ipckit_blocking_unix") {
      char buffer[message] = "ping";
      for (long i = 0; i < s.count; ++i) {
        if (s.pinger) boost::asio::write(connection, boost::asio::buffer(buffer, message));
        boost::asio::read(connection, boost::asio::buffer(buffer, message));
        if (!s.pinger) boost::asio::write(connection, boost::asio::buffer(buffer, message));
        else s.lap(i + 1);
      }
      return;
    }
    check(way == "ipckit_async_unix", "unknown way");
    async_side<ipckit::net::conn, ipckit::net::conn> a{s, connection, connection};
    a.start();
    loop.run();
    check(a.done == s.count, "ipckit_async_unix ended early");
    return;
  }
  if (way == "direct") return direct_way<false>(s, false);
  if (way == "direct_defer") return direct_way<true>(s, false);
  if (way == "direct_drain") return direct_way<true>(s, true);
  if (way == "asio_bare") {
    boost::asio::io_context io(1);
    bare_descriptor reader(io.get_executor(), s.in), writer(io.get_executor(), s.out);
    async_side<bare_descriptor, bare_descriptor, true> b{s, reader, writer};
    b.start();
    io.run();
    check(b.done == s.count, "asio_bare ended early");
    return;
  }
  ipckit::event_loop loop(1);
  if (way == "asio") {
    boost::asio::posix::stream_descriptor reader(loop.get_executor(), s.in), writer(loop.get_executor(), s.out);
    async_side<decltype(reader), decltype(writer)> a{s, reader, writer};
    a.start();
    loop.run();
    check(a.done == s.count, "asio ended early");
    return;
  }
  ipckit::pipe_reader reader(loop.get_executor(), ipckit::unique_fd(s.in));
  ipckit::pipe_writer writer(loop.get_executor(), ipckit::unique_fd(s.out));
  if (way == "ipckit_blocking") {
    char buffer[message] = "ping";
    for (long i = 0; i < s.count; ++i) {
      if (s.pinger) boost::asio::write(writer, boost::asio::buffer(buffer, message));
      boost::asio::read(reader, boost::asio::buffer(buffer, message));
      if (!s.pinger) boost::asio::write(writer, boost::asio::buffer(buffer, message));
      else s.lap(i + 1);
    }
    return;
  }
  if (way == "ipckit_bare") {
    async_side<ipckit::pipe_reader, ipckit::pipe_writer, true> b{s, reader, writer};
    b.start();
    loop.run();
    check(b.done == s.count, "ipckit_bare ended early");
    return;
  }
  check(way == "ipckit_async", "unknown way");
  async_side<ipckit::pipe_reader, ipckit::pipe_writer> a{s, reader, writer};
  a.start();
  loop.run();
  check(a.done == s.count, "ipckit_async ended early");
}

// The pinger's laps: a round's time every `per_round` round trips after the warm-up.
long warmup = 0, per_round = 0;
clk::time_point round_start;
std::vector<double> rounds_ns;

void lap(long done) {
  if (done < warmup) return;
  if (done == warmup) {
    round_start = clk::now();
    return;
  }
  if ((done - warmup) % per_round == 0) {
    const auto now = clk::now();
    rounds_ns.push_back(std::chrono::duration<double, std::nano>(now - round_start).count() /
                        static_cast<double>(per_round));
    round_start = now;
  }
}

double ns(const timeval& t) { return static_cast<double>(t.tv_sec) * 1e9 + static_cast<double>(t.tv_usec) * 1e3; }

int report(const std::string& way, pid_t child, long count);

}  // namespace

int main(int argc, char** argv) {
  if (argc < 2) {
    std::fprintf(stderr, "usage: pipe_micro WAY [ROUND_TRIPS] [ROUNDS] [raw-peer] [big]\n");
    return 2;
  }
  const std::string way = argv[1];
  per_round = argc > 2 ? std::atol(argv[2]) : 20000;
  const long rounds = argc > 3 ? std::atol(argv[3]) : 7;
  bool raw_peer = false, big = false;
  for (int i = 4; i < argc; ++i) {
    raw_peer |= std::string(argv[i]) == "raw-peer";
    big |= std::string(argv[i]) == "big";
  }
  warmup = std::max(10L, per_round / 10);
  const long count = warmup + per_round * rounds;

  // Both processes on the CPU this one may run on first (taskset picks it).
  cpu_set_t cpus;
  check(::sched_getaffinity(0, sizeof cpus, &cpus) == 0, "sched_getaffinity");
  int cpu = 0;
  while (!CPU_ISSET(cpu, &cpus)) ++cpu;
  CPU_ZERO(&cpus);
  CPU_SET(cpu, &cpus);
  check(::sched_setaffinity(0, sizeof cpus, &cpus) == 0, "sched_setaffinity");
  // As ipckit bench runs: pipe writes then need no SIGPIPE mask (docs/pipe.md).
  ipckit::signal::ignore({SIGPIPE});

  int down[2], up[2];
  if (way.ends_with("_unix")) {
    // One socket each side, as both `in` and `out`.
    int pair[2];
    check(::socketpair(AF_UNIX, SOCK_STREAM | SOCK_CLOEXEC, 0, pair) == 0, "socketpair");
    const pid_t peer = ::fork();
    check(peer >= 0, "fork");
    if (peer == 0) {
      ::close(pair[0]);
      run_way(way, side{pair[1], pair[1], false, count, nullptr});
      return 0;
    }
    ::close(pair[1]);
    run_way(raw_peer ? "raw_blocking" : way, side{pair[0], pair[0], true, count, lap});
    return report(way, peer, count);
  }
  check(::pipe2(down, O_CLOEXEC) == 0 && ::pipe2(up, O_CLOEXEC) == 0, "pipe2");
  if (big)
    for (int fd : {down[1], up[1]}) check(::fcntl(fd, F_SETPIPE_SZ, 1 << 20) >= 0, "F_SETPIPE_SZ");
  const pid_t child = ::fork();
  check(child >= 0, "fork");
  if (child == 0) {
    ::close(down[1]);
    ::close(up[0]);
    run_way(way, side{down[0], up[1], false, count, nullptr});
    return 0;
  }
  ::close(down[0]);
  ::close(up[1]);
  run_way(raw_peer ? "raw_blocking" : way, side{up[0], down[1], true, count, lap});
  return report(way, child, count);
}

namespace {

// Reaps the echoing child and prints the figures.
int report(const std::string& way, pid_t child, long count) {
  int status = 0;
  check(::waitpid(child, &status, 0) == child, "waitpid");
  check(WIFEXITED(status) && WEXITSTATUS(status) == 0, "the echoing child failed");

  rusage self{}, children{};
  ::getrusage(RUSAGE_SELF, &self);
  ::getrusage(RUSAGE_CHILDREN, &children);
  std::vector<double> sorted = rounds_ns;
  std::sort(sorted.begin(), sorted.end());
  const double n = static_cast<double>(count);
  std::printf("%-16s round trip %.0f ns (rounds %.0f-%.0f); per round trip: pinger user %.0f sys %.0f, "
              "echoer user %.0f sys %.0f ns\n",
              way.c_str(), sorted[sorted.size() / 2], sorted.front(), sorted.back(), ns(self.ru_utime) / n,
              ns(self.ru_stime) / n, ns(children.ru_utime) / n, ns(children.ru_stime) / n);
  return 0;
}

}  // namespace
