// Dialing each network: net.Listen / net.ListenPacket, then net.Dial, one message each way.
//
// For every network string the article lists, a listener is opened on this machine, a
// connection is dialed to it, and "hello" goes there and back. The addresses are printed
// as Go prints them.
#include <ipckit/event_loop.hpp>
#include <ipckit/net.hpp>

#include <boost/asio/read.hpp>
#include <boost/asio/write.hpp>

#include <cstdio>
#include <cstdlib>
#include <filesystem>
#include <string>
#include <unistd.h>

namespace net = ipckit::net;

namespace {

// Stream networks: Listen, Dial, Accept, then a byte stream both ways.
void stream_round_trip(ipckit::event_loop& loop, const char* network, const std::string& where) {
  net::listener listener = net::listen(loop.get_executor(), network, where);
  net::conn client = net::dial(loop.get_executor(), network, listener.addr().to_string());
  net::conn server = listener.accept();
  boost::asio::write(client, boost::asio::buffer(std::string("hello")));
  char buffer[5];
  boost::asio::read(server, boost::asio::buffer(buffer));
  boost::asio::write(server, boost::asio::buffer(buffer));
  boost::asio::read(client, boost::asio::buffer(buffer));
  std::printf("%-10s dial %-22s local %-22s -> got \"%.5s\" back\n", network,
              client.remote_address().to_string().c_str(), client.local_address().to_string().c_str(),
              buffer);
}

// Packet networks: ListenPacket, Dial; each write is one datagram. A unixgram socket
// dialed without a local address is unnamed (as in Go) and could not get the reply, so it
// binds an abstract name first (Go's DialUnix with a laddr).
void packet_round_trip(ipckit::event_loop& loop, const char* network, const std::string& where) {
  net::packet_conn server = net::listen_packet(loop.get_executor(), network, where);
  net::dialer dialer;
  if (std::string(network) == "unixgram") dialer.local_address = "@ipckit-dial-demo-" + std::to_string(::getpid());
  net::conn client = dialer.dial(loop.get_executor(), network, server.local_address().to_string());
  client.write_some(boost::asio::buffer(std::string("hello")));
  char buffer[64];
  net::address sender;
  const std::size_t n = server.receive_from(boost::asio::buffer(buffer), sender);
  server.send_to(boost::asio::buffer(buffer, n), sender);
  const std::size_t back = client.read_some(boost::asio::buffer(buffer));
  std::printf("%-10s dial %-22s local %-22s -> got \"%.*s\" back (one datagram)\n", network,
              client.remote_address().to_string().c_str(), sender.to_string().c_str(),
              static_cast<int>(back), buffer);
}

}  // namespace

int main() {
  ipckit::event_loop loop;
  char pattern[] = "/tmp/ipckit-dial-demo-XXXXXX";
  const std::filesystem::path dir = ::mkdtemp(pattern);
  try {
    stream_round_trip(loop, "tcp", "127.0.0.1:0");
    stream_round_trip(loop, "tcp4", "127.0.0.1:0");
    stream_round_trip(loop, "tcp6", "[::1]:0");
    packet_round_trip(loop, "udp", "127.0.0.1:0");
    packet_round_trip(loop, "udp4", "127.0.0.1:0");
    packet_round_trip(loop, "udp6", "[::1]:0");
    stream_round_trip(loop, "unix", (dir / "stream.sock").string());
    packet_round_trip(loop, "unixgram", (dir / "gram.sock").string());
    stream_round_trip(loop, "unixpacket", (dir / "packet.sock").string());
  } catch (const ipckit::system_error& e) {
    std::fprintf(stderr, "%s\n", e.what());
    std::filesystem::remove_all(dir);
    return 1;
  }
  std::filesystem::remove_all(dir);
  // And what a failed dial says, word for word as Go says it:
  try {
    net::dial(loop.get_executor(), "tcp", "127.0.0.1:1");
  } catch (const ipckit::system_error& e) {
    std::printf("\n%s\n", e.what());
  }
  return 0;
}
