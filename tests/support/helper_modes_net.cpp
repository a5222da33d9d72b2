// Helper child modes for tests that need a network peer in another process (the netns
// tests run them inside a network namespace with `ip netns exec`).
#include "helper_child.hpp"

#include <ipckit/net.hpp>

#include <boost/asio/io_context.hpp>
#include <boost/asio/write.hpp>

#include <iostream>

namespace ipckit::test {
namespace {

namespace asio = boost::asio;

void echo_stream(net::conn& c) {
  char buffer[65536];
  for (;;) {
    error_code ec;
    const std::size_t n = c.read_some(asio::buffer(buffer), ec);
    if (ec) return;
    asio::write(c, asio::buffer(buffer, n), ec);
    if (ec) return;
  }
}

// Prints "listening ADDRESS", then echoes: each accepted connection in turn until its EOF,
// or each datagram back to its sender. Runs until killed.
int net_echo(std::span<const std::string> args) {
  if (args.size() != 2) return 2;
  asio::io_context io;
  const net::network parsed = net::parse_network(args[0]);
  if (parsed.is_stream()) {
    net::listener l = net::listen(io.get_executor(), args[0], args[1]);
    std::cout << "listening " << l.addr() << std::endl;
    for (;;) {
      net::conn c = l.accept();
      echo_stream(c);
    }
  }
  net::packet_conn p = net::listen_packet(io.get_executor(), args[0], args[1]);
  std::cout << "listening " << p.local_address() << std::endl;
  char buffer[65536];
  for (;;) {
    net::address from;
    const std::size_t n = p.receive_from(asio::buffer(buffer), from);
    p.send_to(asio::buffer(buffer, n), from);
  }
}

// Dials, sends TEXT (then closes its write side on streams), and prints "reply R" with
// what came back (to EOF on streams, one datagram otherwise), or "error E" and exits 1.
int net_dial(std::span<const std::string> args) {
  if (args.size() != 3) return 2;
  asio::io_context io;
  try {
    net::conn c = net::dial(io.get_executor(), args[0], args[1]);
    asio::write(c, asio::buffer(args[2]));
    std::string reply;
    char buffer[65536];
    if (net::parse_network(args[0]).is_stream()) {
      c.shutdown(net::conn::socket_type::shutdown_send);
      for (;;) {
        error_code ec;
        const std::size_t n = c.read_some(asio::buffer(buffer), ec);
        if (ec == asio::error::eof) break;
        if (ec) throw system_error(ec, "read");
        reply.append(buffer, n);
      }
    } else {
      reply.assign(buffer, c.read_some(asio::buffer(buffer)));
    }
    std::cout << "local " << c.local_address() << "\nreply " << reply << std::endl;
    return 0;
  } catch (const std::exception& e) {
    std::cout << "error " << e.what() << std::endl;
    return 1;
  }
}

const helper_mode_registration modes[] = {
    helper_mode_registration{{"net-echo", "net-echo NETWORK ADDRESS  (prints 'listening ADDR', echoes until killed)",
                              net_echo}},
    helper_mode_registration{{"net-dial", "net-dial NETWORK ADDRESS TEXT  (prints 'local ADDR' and 'reply R', or 'error E')",
                              net_dial}},
};

}  // namespace
}  // namespace ipckit::test
