// The user-space part of ipckit's async message-queue path, in one process on one CPU,
// against the same system calls made by hand (docs/performance-findings.md, finding 7). Built with
// `meson configure build -Dbenchmarks=true`; run `taskset -c 1 build/tests/bench/mq_micro`.
//
//   stream: an async send of 8 KiB and the receive of it, again and again (each finishes
//           at once), on a queue registered with the reactor (as once it had to wait),
//           against mq_send + mq_receive.
//   wake:   one half round trip: a receive that has to wait, the peer's message (sent by a
//           posted handler, where the peer's mq_send would be), the reactor's wake-up and
//           the completion, then an answer that is sent at once; against mq_receive
//           (EAGAIN), mq_send, epoll_wait, mq_receive, mq_send in an edge-triggered loop.
// Under `valgrind --tool=callgrind` with two counts N and 2N, the difference divided by N
// is the instructions per iteration.
#include <ipckit/event_loop.hpp>
#include <ipckit/message_queue.hpp>

#include <boost/asio/post.hpp>

#include <algorithm>
#include <chrono>
#include <cstdio>
#include <cstdlib>
#include <fcntl.h>
#include <mqueue.h>
#include <string>
#include <sys/epoll.h>
#include <unistd.h>
#include <vector>

namespace {

using clk = std::chrono::steady_clock;

double ns_per(clk::time_point start, long n) {
  return std::chrono::duration<double, std::nano>(clk::now() - start).count() / static_cast<double>(n);
}

double median(std::vector<double> v) {
  std::sort(v.begin(), v.end());
  return v.empty() ? 0.0 : v[v.size() / 2];
}

void check(bool ok, const char* what) {
  if (!ok) {
    std::perror(what);
    std::exit(1);
  }
}

void set_non_blocking(int fd) {
  mq_attr attributes{};
  attributes.mq_flags = O_NONBLOCK;
  check(::mq_setattr(fd, &attributes, nullptr) == 0, "mq_setattr");
}

struct queues {
  ipckit::event_loop loop{1};
  ipckit::message_queue in{loop.get_executor()}, out{loop.get_executor()};
  explicit queues(long message_size) {
    ipckit::message_queue_options options;
    options.attributes.message_size = message_size;
    for (auto* q : {&in, &out}) {
      const std::string name = "/ipckit-mq-micro-" + std::to_string(::getpid()) + (q == &in ? "-in" : "-out");
      q->create(name, options);
      ipckit::message_queue::unlink(name);
    }
  }
};

// ---- stream ----

double stream_raw(queues& q, long n, std::vector<char>& out, std::vector<char>& in) {
  const int fd = q.in.native_handle();
  const auto start = clk::now();
  for (long i = 0; i < n; ++i) {
    check(::mq_send(fd, out.data(), out.size(), 0) == 0, "mq_send");
    check(::mq_receive(fd, in.data(), in.size(), nullptr) >= 0, "mq_receive");
  }
  return ns_per(start, n);
}

double stream_ipckit(queues& q, long n, std::vector<char>& out, std::vector<char>& in) {
  struct chain {
    ipckit::message_queue& queue;
    std::vector<char>& out;
    std::vector<char>& in;
    long left;
    void next() {
      if (left-- == 0) return;
      queue.async_send(boost::asio::buffer(out), 0, [this](ipckit::error_code e) {
        check(!e, "async_send");
        queue.async_receive(boost::asio::buffer(in), [this](ipckit::error_code e2, ipckit::received_message) {
          check(!e2, "async_receive");
          next();
        });
      });
    }
  } c{q.in, out, in, n};
  const auto start = clk::now();
  q.loop.restart();
  c.next();
  q.loop.run();
  return ns_per(start, n);
}

// Registers the queue with the reactor: a receive that has to wait, then a message.
void register_with_reactor(queues& q, std::vector<char>& in) {
  bool got = false;
  q.in.async_receive(boost::asio::buffer(in), [&](ipckit::error_code e, ipckit::received_message) { got = !e; });
  boost::asio::post(q.loop.get_executor(), [&] { check(::mq_send(q.in.native_handle(), "x", 1, 0) == 0, "mq_send"); });
  q.loop.run();
  check(got, "register");
}

// ---- wake ----

double wake_raw(queues& q, long n, char* message, char* buffer) {
  const int in = q.in.native_handle(), out = q.out.native_handle();
  const int ep = ::epoll_create1(EPOLL_CLOEXEC);
  epoll_event event{};
  event.events = EPOLLIN | EPOLLET;
  event.data.fd = in;
  check(::epoll_ctl(ep, EPOLL_CTL_ADD, in, &event) == 0, "epoll_ctl");
  epoll_event events[2];
  const auto start = clk::now();
  for (long i = 0; i < n; ++i) {
    check(::mq_receive(in, buffer, 64, nullptr) < 0, "mq_receive should say EAGAIN");
    check(::mq_send(in, message, 64, 0) == 0, "mq_send");  // the peer
    check(::epoll_wait(ep, events, 2, -1) == 1, "epoll_wait");
    check(::mq_receive(in, buffer, 64, nullptr) >= 0, "mq_receive");
    check(::mq_send(out, buffer, 64, 0) == 0, "mq_send");  // the answer
    check(::mq_receive(out, buffer, 64, nullptr) >= 0, "mq_receive");  // the peer takes it
  }
  const double took = ns_per(start, n);
  ::close(ep);
  return took;
}

double wake_ipckit(queues& q, long n, char* message, char* buffer) {
  struct echo {
    queues& q;
    char* message;
    char* buffer;
    long left;
    void next() {
      if (left-- == 0) return;
      q.in.async_receive(boost::asio::buffer(buffer, 64), [this](ipckit::error_code e, ipckit::received_message) {
        check(!e, "async_receive");
        q.out.async_send(boost::asio::buffer(buffer, 64), 0, [this](ipckit::error_code e2) {
          check(!e2, "async_send");
          check(::mq_receive(q.out.native_handle(), buffer, 64, nullptr) >= 0, "mq_receive");  // the peer
          next();
        });
      });
      boost::asio::post(q.loop.get_executor(),
                        [this] { check(::mq_send(q.in.native_handle(), message, 64, 0) == 0, "mq_send"); });
    }
  } e{q, message, buffer, n};
  const auto start = clk::now();
  q.loop.restart();
  e.next();
  q.loop.run();
  return ns_per(start, n);
}

}  // namespace

int main(int argc, char** argv) {
  const std::string mode = argc > 1 ? argv[1] : "all";
  const long n = argc > 2 ? std::atol(argv[2]) : 100000;
  const std::string only = argc > 3 ? argv[3] : "";  // raw | ipckit, for callgrind
  constexpr int rounds = 7;
  if (mode == "stream" || mode == "all") {
    queues q(8192);
    std::vector<char> out(8192, 's'), in(8192);
    register_with_reactor(q, in);
    set_non_blocking(q.in.native_handle());
    std::vector<double> raw, ipc;
    for (int r = 0; r < rounds; ++r) {
      if (only != "ipckit") raw.push_back(stream_raw(q, n, out, in));
      if (only != "raw") ipc.push_back(stream_ipckit(q, n, out, in));
    }
    std::printf("stream, 8 KiB send + receive: raw %.0f ns, ipckit %.0f ns (+%.0f)\n", median(raw), median(ipc),
                median(ipc) - median(raw));
  }
  if (mode == "wake" || mode == "all") {
    queues q(64);
    char message[64] = "ping", buffer[64];
    set_non_blocking(q.in.native_handle());
    set_non_blocking(q.out.native_handle());
    std::vector<double> raw, ipc;
    for (int r = 0; r < rounds; ++r) {
      if (only != "ipckit") raw.push_back(wake_raw(q, n, message, buffer));
      if (only != "raw") ipc.push_back(wake_ipckit(q, n, message, buffer));
    }
    std::printf("half round trip, 64 bytes:    raw %.0f ns, ipckit %.0f ns (+%.0f)\n", median(raw), median(ipc),
                median(ipc) - median(raw));
  }
  std::printf("(medians of %d rounds of %ld)\n", rounds, n);
}
