// Helper child modes for the soak test: an echo peer for each transport, and a signal
// source paced by the test. Every echo peer counts what it received and, on the message
// "END", answers "COUNT MESSAGES BYTES" and exits 0, so the test can compare both sides.
#include "helper_child.hpp"

#include <ipckit/message.hpp>
#include <ipckit/message_queue.hpp>
#include <ipckit/net.hpp>
#include <ipckit/pipe.hpp>
#include <ipckit/signal.hpp>

#include <boost/asio/io_context.hpp>
#include <boost/asio/read.hpp>
#include <boost/asio/write.hpp>

#include <array>
#include <cstdint>
#include <functional>
#include <iostream>
#include <unistd.h>

namespace ipckit::test {
namespace {

namespace asio = boost::asio;

using receive_fn = std::function<std::string()>;
using send_fn = std::function<void(const std::string&)>;

int serve(const receive_fn& receive, const send_fn& send) {
  std::uint64_t messages = 0, bytes = 0;
  for (;;) {
    const std::string message = receive();
    if (message == "END") {
      send("COUNT " + std::to_string(messages) + " " + std::to_string(bytes));
      return 0;
    }
    ++messages;
    bytes += message.size();
    send(message);
  }
}

// Stream framing: a 4-byte little-endian length, then the message.
template <class Reader>
std::string read_frame(Reader& in) {
  unsigned char header[4];
  asio::read(in, asio::buffer(header));
  const std::size_t size = std::size_t{header[0]} | std::size_t{header[1]} << 8 |
                           std::size_t{header[2]} << 16 | std::size_t{header[3]} << 24;
  std::string message(size, '\0');
  asio::read(in, asio::buffer(message));
  return message;
}

template <class Writer>
void write_frame(Writer& out, const std::string& message) {
  const auto n = static_cast<std::uint32_t>(message.size());
  const unsigned char header[4] = {static_cast<unsigned char>(n), static_cast<unsigned char>(n >> 8),
                                   static_cast<unsigned char>(n >> 16), static_cast<unsigned char>(n >> 24)};
  const std::array<asio::const_buffer, 2> frame{asio::buffer(header), asio::buffer(message)};
  asio::write(out, frame);
}

template <class Reader, class Writer>
int serve_frames(Reader& in, Writer& out) {
  return serve([&] { return read_frame(in); }, [&](const std::string& m) { write_frame(out, m); });
}

int serve_datagrams(net::conn& c) {
  std::string buffer(65536, '\0');
  return serve([&] { return buffer.substr(0, c.read_some(asio::buffer(buffer))); },
               [&](const std::string& m) { c.write_some(asio::buffer(m)); });
}

int soak_echo(std::span<const std::string> args) {
  if (args.empty()) return 2;
  asio::io_context io;
  const auto ex = io.get_executor();
  const std::string& kind = args[0];
  if (kind == "pipe") {
    pipe_reader in(ex, unique_fd(::dup(0)));
    pipe_writer out(ex, unique_fd(::dup(1)));
    return serve_frames(in, out);
  }
  if (kind == "fifo" && args.size() == 3) {
    pipe_reader in = open_fifo_reader(ex, args[1]);
    pipe_writer out = open_fifo_writer(ex, args[2]);
    return serve_frames(in, out);
  }
  if (kind == "stream" && args.size() == 3) {
    net::conn c = net::dial(ex, args[1], args[2]);
    return serve_frames(c, c);
  }
  if (kind == "packet" && args.size() == 3) {
    net::conn c = net::dial(ex, args[1], args[2]);
    return serve_datagrams(c);
  }
  if (kind == "json" && args.size() == 3) {
    json_channel<net::conn> channel(net::dial(ex, args[1], args[2]));
    return serve([&] { return channel.receive().at("data").get<std::string>(); },
                 [&](const std::string& m) { channel.send({{"data", m}}); });
  }
  if ((kind == "unixgram" && args.size() == 2) || (kind == "udp4" && args.size() == 1)) {
    net::packet_conn p = kind == "udp4" ? net::listen_packet(ex, "udp4", "127.0.0.1:0")
                                        : net::listen_packet(ex, "unixgram", args[1]);
    std::cout << "ready " << p.local_address() << std::endl;
    std::string buffer(65536, '\0');
    net::address peer;
    return serve([&] { return buffer.substr(0, p.receive_from(asio::buffer(buffer), peer)); },
                 [&](const std::string& m) { p.send_to(asio::buffer(m), peer); });
  }
  if (kind == "mq" && args.size() == 3) {
    message_queue in(io), out(io);
    in.open(args[1]);
    out.open(args[2]);
    return serve([&] { return in.receive().data; },
                 [&](const std::string& m) { out.send(asio::buffer(m)); });
  }
  return 2;
}

// For each byte read from stdin: sigqueue(parent, RT, i) and kill(parent, STD), i from
// 0. At stdin EOF prints "sent N" and exits: the test acknowledges each realtime signal
// with a byte, so none is sent before the last was received (no queue overflow).
int signal_source(std::span<const std::string> args) {
  if (args.size() != 2) return 2;
  const int realtime = signal::parse(args[0]);
  const int standard = signal::parse(args[1]);
  const pid_t parent = ::getppid();
  int sent = 0;
  char c;
  while (::read(0, &c, 1) == 1) {
    signal::queue(parent, realtime, sent++);
    signal::send(parent, standard);
  }
  std::cout << "sent " << sent << std::endl;
  return 0;
}

int guarded(int (*mode)(std::span<const std::string>), std::span<const std::string> args) {
  try {
    return mode(args);
  } catch (const std::exception& e) {
    std::cerr << "ipckit_helper: " << e.what() << std::endl;
    return 1;
  }
}

const helper_mode_registration modes[] = {
    helper_mode_registration{{"soak-echo",
                              "soak-echo pipe|fifo IN OUT|stream NET ADDR|packet NET ADDR|json NET ADDR|"
                              "unixgram PATH|udp4|mq IN OUT  (echo; END answers COUNT M B)",
                              [](auto args) { return guarded(soak_echo, args); }}},
    helper_mode_registration{{"signal-source", "signal-source RTSIG STDSIG  (one of each per stdin byte)",
                              [](auto args) { return guarded(signal_source, args); }}},
};

}  // namespace
}  // namespace ipckit::test
