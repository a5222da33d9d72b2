// The two ends of a benchmark channel, one type per way of driving it, and the
// ping-pong and streaming drivers shared by every channel (bench_channels.cpp).
//
// Every end offers the same calls, so one driver measures all four ways:
//   send(data, n)            one whole message (stream: all n bytes)
//   recv(buffer, n, cap)     one whole message (stream: exactly n bytes)
//   recv_some(buffer, cap)   what is there: stream bytes, or one message
// and the ipckit ends also async_send / async_recv / async_recv_some on the loop.
#pragma once

#include "bench.hpp"

#include <ipckit/error.hpp>
#include <ipckit/event_loop.hpp>
#include <ipckit/message_queue.hpp>
#include <ipckit/net.hpp>
#include <ipckit/pipe.hpp>

#include <boost/asio/posix/stream_descriptor.hpp>
#include <boost/asio/read.hpp>
#include <boost/asio/write.hpp>

#include <chrono>
#include <cstddef>
#include <mqueue.h>
#include <optional>
#include <stdexcept>
#include <string>
#include <vector>

namespace ipckit::cli::bench {

/// How an end's bytes are cut: a byte stream, datagrams (one send, one message), POSIX
/// message queue messages, or eventfd counters (8-byte write/read, no socket calls).
enum class framing { stream, datagram, mq, counter };

[[noreturn]] void fail_errno(const char* what);

/// The baselines: plain system calls on plain descriptors, blocking or on an
/// edge-triggered epoll set that is waited on only after a call said EAGAIN.
class raw_end {
 public:
  /// Takes ownership of both descriptors (the same one twice for a socket).
  raw_end(int in, int out, framing kind, bool use_epoll);
  ~raw_end();
  raw_end(const raw_end&) = delete;
  raw_end& operator=(const raw_end&) = delete;

  void send(const char* data, std::size_t n);
  void recv(char* buffer, std::size_t n, std::size_t cap);
  std::size_t recv_some(char* buffer, std::size_t cap);

 private:
  long send_once(const char* data, std::size_t n);
  long recv_once(char* buffer, std::size_t cap);
  void wait();
  void watch_writable();

  int in_;
  int out_;
  framing kind_;
  int epoll_ = -1;
  bool watching_out_ = false;
};

/// One whole message on an Asio stream (all n bytes) or one datagram.
template <class AsyncWriteStream, class Handler>
void async_send_message(AsyncWriteStream& out, bool stream, const char* data, std::size_t n, Handler h) {
  if (stream) boost::asio::async_write(out, boost::asio::buffer(data, n), std::move(h));
  else out.async_write_some(boost::asio::buffer(data, n), std::move(h));
}
/// Exactly n bytes of a stream, or one datagram of at most cap.
template <class AsyncReadStream, class Handler>
void async_recv_message(AsyncReadStream& in, bool stream, char* buffer, std::size_t n, std::size_t cap,
                        Handler h) {
  if (stream) boost::asio::async_read(in, boost::asio::buffer(buffer, n), std::move(h));
  else in.async_read_some(boost::asio::buffer(buffer, cap), std::move(h));
}

/// Plain Asio, the floor under ipckit's async way: posix::stream_descriptor on the raw
/// way's descriptors (one for a socket, one each way for pipes and FIFOs), driven as an
/// Asio program would: async_read/async_write on streams, one read/write per datagram.
/// It has no blocking form here.
class asio_end {
 public:
  asio_end(const boost::asio::any_io_executor& ex, int in, int out, bool stream) : in_(ex, in), stream_(stream) {
    if (out != in) out_.emplace(ex, out);
  }

  void send(const char*, std::size_t) { async_only(); }
  void recv(char*, std::size_t, std::size_t) { async_only(); }
  std::size_t recv_some(char*, std::size_t) { async_only(); }
  template <class Handler>
  void async_send(const char* data, std::size_t n, Handler h) {
    async_send_message(out(), stream_, data, n, std::move(h));
  }
  template <class Handler>
  void async_recv(char* buffer, std::size_t n, std::size_t cap, Handler h) {
    async_recv_message(in_, stream_, buffer, n, cap, std::move(h));
  }
  template <class Handler>
  void async_recv_some(char* buffer, std::size_t cap, Handler h) {
    in_.async_read_some(boost::asio::buffer(buffer, cap), std::move(h));
  }

 private:
  [[noreturn]] static void async_only() { throw std::logic_error("the asio way is async only"); }
  boost::asio::posix::stream_descriptor& out() { return out_ ? *out_ : in_; }

  boost::asio::posix::stream_descriptor in_;
  std::optional<boost::asio::posix::stream_descriptor> out_;
  bool stream_;
};

/// ipckit pipes and FIFOs: a pipe_reader and a pipe_writer.
struct ipckit_pipe_end {
  pipe_reader reader;
  pipe_writer writer;

  void send(const char* data, std::size_t n) { boost::asio::write(writer, boost::asio::buffer(data, n)); }
  void recv(char* buffer, std::size_t n, std::size_t) { boost::asio::read(reader, boost::asio::buffer(buffer, n)); }
  std::size_t recv_some(char* buffer, std::size_t cap) { return reader.read_some(boost::asio::buffer(buffer, cap)); }
  template <class Handler>
  void async_send(const char* data, std::size_t n, Handler h) {
    boost::asio::async_write(writer, boost::asio::buffer(data, n),
                             [h = std::move(h)](error_code ec, std::size_t) mutable { h(ec, 0); });
  }
  template <class Handler>
  void async_recv(char* buffer, std::size_t n, std::size_t, Handler h) {
    boost::asio::async_read(reader, boost::asio::buffer(buffer, n), std::move(h));
  }
  template <class Handler>
  void async_recv_some(char* buffer, std::size_t cap, Handler h) {
    reader.async_read_some(boost::asio::buffer(buffer, cap), std::move(h));
  }
};

/// ipckit sockets: one net::conn; streams read and write whole buffers, packet
/// networks one datagram per call.
struct ipckit_conn_end {
  net::conn connection;
  bool stream;

  void send(const char* data, std::size_t n) {
    if (stream) boost::asio::write(connection, boost::asio::buffer(data, n));
    else connection.write_some(boost::asio::buffer(data, n));
  }
  void recv(char* buffer, std::size_t n, std::size_t cap) {
    if (stream) boost::asio::read(connection, boost::asio::buffer(buffer, n));
    else connection.read_some(boost::asio::buffer(buffer, cap));
  }
  std::size_t recv_some(char* buffer, std::size_t cap) {
    return connection.read_some(boost::asio::buffer(buffer, cap));
  }
  template <class Handler>
  void async_send(const char* data, std::size_t n, Handler h) {
    async_send_message(connection, stream, data, n, std::move(h));
  }
  template <class Handler>
  void async_recv(char* buffer, std::size_t n, std::size_t cap, Handler h) {
    async_recv_message(connection, stream, buffer, n, cap, std::move(h));
  }
  template <class Handler>
  void async_recv_some(char* buffer, std::size_t cap, Handler h) {
    connection.async_read_some(boost::asio::buffer(buffer, cap), std::move(h));
  }
};

/// ipckit message queues: one queue each way.
struct ipckit_mq_end {
  message_queue in;
  message_queue out;

  void send(const char* data, std::size_t n) { out.send(boost::asio::buffer(data, n)); }
  void recv(char* buffer, std::size_t, std::size_t cap) { in.receive(boost::asio::buffer(buffer, cap)); }
  std::size_t recv_some(char* buffer, std::size_t cap) { return in.receive(boost::asio::buffer(buffer, cap)).size; }
  template <class Handler>
  void async_send(const char* data, std::size_t n, Handler h) {
    out.async_send(boost::asio::buffer(data, n), 0, [h = std::move(h)](error_code ec) mutable { h(ec, 0); });
  }
  template <class Handler>
  void async_recv(char* buffer, std::size_t, std::size_t cap, Handler h) {
    in.async_receive(boost::asio::buffer(buffer, cap),
                     [h = std::move(h)](error_code ec, received_message m) mutable { h(ec, m.size); });
  }
  template <class Handler>
  void async_recv_some(char* buffer, std::size_t cap, Handler h) {
    async_recv(buffer, cap, cap, std::move(h));
  }
};

/// An end made of calls, for mechanisms that carry no bytes (a signal, a semaphore
/// post, a lock hand-off) or frame them themselves (JSON): `on_send()` sends one ping,
/// `on_recv()` waits for one, `on_async_recv(handler)` waits on the loop and calls
/// handler(error_code, std::size_t).
template <class Send, class Recv, class AsyncRecv>
struct call_end {
  Send on_send;
  Recv on_recv;
  AsyncRecv on_async_recv;

  void send(const char*, std::size_t) { on_send(); }
  void recv(char*, std::size_t, std::size_t) { on_recv(); }
  // Sends never wait here (kill, sem_post, a JSON write that fits the socket buffer).
  template <class Handler>
  void async_send(const char*, std::size_t, Handler h) {
    on_send();
    h(error_code{}, 0);
  }
  template <class Handler>
  void async_recv(char*, std::size_t, std::size_t, Handler h) {
    on_async_recv(std::move(h));
  }
};
template <class Send, class Recv, class AsyncRecv>
call_end(Send, Recv, AsyncRecv) -> call_end<Send, Recv, AsyncRecv>;

/// The async receive of a call_end that has none (blocking-only ways).
struct no_async_recv {
  template <class Handler>
  void operator()(Handler&&) const {
    throw std::logic_error("no async receive on this end");
  }
};

using clock = std::chrono::steady_clock;
/// Receive buffers are this big: a message queue's receive needs its whole message size.
inline constexpr std::size_t receive_capacity = 64 * 1024;

inline void check(const error_code& ec, const char* what) {
  if (ec) throw std::runtime_error(std::string(what) + ": " + ec.message());
}

// ---- blocking drivers (raw_end and the ipckit ends' blocking API) --------------------

/// The parent: `count` round trips of `size` bytes; the first `warmup` are not kept.
template <class End>
std::vector<clock::duration> ping_blocking(End& end, long count, long warmup, std::size_t size) {
  std::vector<char> out(size, 'p'), in(receive_capacity);
  std::vector<clock::duration> samples;
  samples.reserve(static_cast<std::size_t>(count));
  for (long i = 0; i < count + warmup; ++i) {
    const auto start = clock::now();
    end.send(out.data(), size);
    end.recv(in.data(), size, in.size());
    if (i >= warmup) samples.push_back(clock::now() - start);
  }
  return samples;
}

/// The child: echoes `count` messages of `size` bytes.
template <class End>
void echo_blocking(End& end, long count, std::size_t size) {
  std::vector<char> buffer(receive_capacity);
  for (long i = 0; i < count; ++i) {
    end.recv(buffer.data(), size, buffer.size());
    end.send(buffer.data(), size);
  }
}

/// The parent: sends `total` bytes in `chunk`-sized writes, then waits for the child's
/// one-byte acknowledgement. Returns MB/s (10^6 bytes per second).
template <class End>
double stream_out_blocking(End& end, std::size_t total, std::size_t chunk) {
  std::vector<char> out(chunk, 's'), ack(receive_capacity);
  const auto start = clock::now();
  for (std::size_t sent = 0; sent < total; sent += chunk) end.send(out.data(), chunk);
  end.recv(ack.data(), 1, ack.size());
  const std::chrono::duration<double> took = clock::now() - start;
  return static_cast<double>(total) / 1e6 / took.count();
}

/// The child: reads `total` bytes, then acknowledges with one byte.
template <class End>
void stream_in_blocking(End& end, std::size_t total) {
  std::vector<char> buffer(receive_capacity);
  for (std::size_t got = 0; got < total;) got += end.recv_some(buffer.data(), buffer.size());
  end.send("k", 1);
}

/// Runs `end` one way: the parent pings and returns the round-trip figures, the child
/// echoes; `async` picks the loop drivers.
template <class End>
std::map<std::string, double> ping_or_echo(bool parent, bool async, event_loop& loop, End& end,
                                           long count, long warmup, std::size_t size);

// ---- async drivers (the ipckit ends on the loop) -------------------------------------

/// Runs the loop until the driver is done: run(), or the low-latency run_spinning(spin).
inline void run_loop(event_loop& loop, std::chrono::nanoseconds spin) {
  loop.restart();
  if (spin.count() > 0) loop.run_spinning(spin);
  else loop.run();
}

template <class End>
std::vector<clock::duration> ping_async(event_loop& loop, End& end, long count, long warmup,
                                        std::size_t size, std::chrono::nanoseconds spin = {}) {
  struct pinger {
    End& end;
    long total;
    long warmup;
    std::size_t size;
    std::vector<char> out, in;
    std::vector<clock::duration> samples;
    long done = 0;
    clock::time_point start;

    void next() {
      if (done == total) return;
      start = clock::now();
      end.async_send(out.data(), size, [this](error_code ec, std::size_t) {
        check(ec, "send");
        end.async_recv(in.data(), size, in.size(), [this](error_code ec, std::size_t) {
          check(ec, "receive");
          if (done++ >= warmup) samples.push_back(clock::now() - start);
          next();
        });
      });
    }
  } p{end, count + warmup, warmup, size, std::vector<char>(size, 'p'),
      std::vector<char>(receive_capacity), {}, 0, {}};
  p.samples.reserve(static_cast<std::size_t>(count));
  p.next();
  run_loop(loop, spin);
  if (p.done != p.total) throw std::runtime_error("the loop stopped before the last round trip");
  return std::move(p.samples);
}

template <class End>
void echo_async(event_loop& loop, End& end, long count, std::size_t size,
                std::chrono::nanoseconds spin = {}) {
  struct echoer {
    End& end;
    long left;
    std::size_t size;
    std::vector<char> buffer;
    void next() {
      if (left-- == 0) return;
      end.async_recv(buffer.data(), size, buffer.size(), [this](error_code ec, std::size_t) {
        check(ec, "receive");
        end.async_send(buffer.data(), size, [this](error_code ec, std::size_t) {
          check(ec, "send");
          next();
        });
      });
    }
  } e{end, count, size, std::vector<char>(receive_capacity)};
  e.next();
  run_loop(loop, spin);
}

template <class End>
double stream_out_async(event_loop& loop, End& end, std::size_t total, std::size_t chunk,
                        std::chrono::nanoseconds spin = {}) {
  struct streamer {
    End& end;
    std::size_t left;
    std::size_t chunk;
    std::vector<char> out, ack;
    bool acked = false;
    void next() {
      if (left == 0) {
        end.async_recv(ack.data(), 1, ack.size(), [this](error_code ec, std::size_t) {
          check(ec, "receive");
          acked = true;
        });
        return;
      }
      end.async_send(out.data(), chunk, [this](error_code ec, std::size_t) {
        check(ec, "send");
        left -= std::min(left, chunk);
        next();
      });
    }
  } s{end, total, chunk, std::vector<char>(chunk, 's'), std::vector<char>(receive_capacity)};
  const auto start = clock::now();
  s.next();
  run_loop(loop, spin);
  const std::chrono::duration<double> took = clock::now() - start;
  if (!s.acked) throw std::runtime_error("the loop stopped before the acknowledgement");
  return static_cast<double>(total) / 1e6 / took.count();
}

template <class End>
void stream_in_async(event_loop& loop, End& end, std::size_t total, std::chrono::nanoseconds spin = {}) {
  struct drain {
    End& end;
    std::size_t left;
    std::vector<char> buffer;
    void next() {
      if (left == 0) {
        end.async_send("k", 1, [](error_code ec, std::size_t) { check(ec, "send"); });
        return;
      }
      end.async_recv_some(buffer.data(), buffer.size(), [this](error_code ec, std::size_t n) {
        check(ec, "receive");
        left -= std::min(left, n);
        next();
      });
    }
  } d{end, total, std::vector<char>(receive_capacity)};
  d.next();
  run_loop(loop, spin);
}

template <class End>
std::map<std::string, double> ping_or_echo(bool parent, bool async, event_loop& loop, End& end,
                                           long count, long warmup, std::size_t size) {
  if (parent)
    return latency_figures(async ? ping_async(loop, end, count, warmup, size)
                                 : ping_blocking(end, count, warmup, size));
  if (async) echo_async(loop, end, count + warmup, size);
  else echo_blocking(end, count + warmup, size);
  return {};
}

}  // namespace ipckit::cli::bench
