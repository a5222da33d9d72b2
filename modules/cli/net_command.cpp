// `ipckit dial` and `ipckit listen`: netcat for every Go network string.
#include "command.hpp"
#include "stdio_relay.hpp"

#include <ipckit/event_loop.hpp>
#include <ipckit/net.hpp>
#include <ipckit/signal.hpp>

#include <csignal>
#include <iostream>
#include <unistd.h>

namespace ipckit::cli {
namespace {

constexpr flag_spec dial_flags[] = {{"timeout", true}, {"linger", true}, {"local", true}};
constexpr flag_spec listen_flags[] = {{"echo", false},       {"keep", false},      {"mode", true},
                                      {"private-dir", false}, {"same-uid", false},  {"allow-uid", true},
                                      {"allow-gid", true}};

// "1000,1001" as ids; a usage error names the flag.
template <class Id>
std::vector<Id> id_list(const arguments& args, std::string_view flag) {
  std::vector<Id> ids;
  const auto text = args.value(flag);
  if (!text) return ids;
  std::size_t start = 0;
  for (;;) {
    const std::size_t comma = text->find(',', start);
    const std::string item = text->substr(start, comma - start);
    std::size_t used = 0;
    unsigned long id = 0;
    try {
      id = std::stoul(item, &used, 10);
    } catch (const std::exception&) {
      used = 0;
    }
    if (item.empty() || used != item.size() || id > 0xFFFFFFFEul)
      throw usage_error("--" + std::string(flag) + ": not a list of numeric ids: " + *text);
    ids.push_back(static_cast<Id>(id));
    if (comma == std::string::npos) return ids;
    start = comma + 1;
  }
}

// The unix-listener extras: --mode, --private-dir and the peer policy, whose refusals
// are logged on stderr (the peer never reaches the relay).
net::listen_config listen_config_from(const arguments& args) {
  net::listen_config config;
  if (auto mode = args.value("mode")) config.mode = static_cast<unsigned>(std::stoul(*mode, nullptr, 8));
  config.private_directory = args.has("private-dir");
  config.peers.same_uid = args.has("same-uid");
  config.peers.uids = id_list<uid_t>(args, "allow-uid");
  config.peers.gids = id_list<gid_t>(args, "allow-gid");
  config.peers.on_refused = [](const net::credentials& peer) {
    std::cerr << "refused peer pid " << peer.pid << " uid " << peer.uid << " gid " << peer.gid
              << std::endl;
  };
  return config;
}

std::pair<std::string, std::string> network_and_address(const arguments& args) {
  if (args.positional().size() != 2) throw usage_error("expected NETWORK ADDRESS");
  return {args.positional()[0], args.positional()[1]};
}

// Runs the loop until the relay ends or SIGINT/SIGTERM arrives (then objects are
// destroyed normally, so a unix listener removes its socket file).
// `failure` is the Go-style text of what ended the relay, empty for a clean end.
int run_relay(event_loop& loop, const std::string& failure) {
  signal::run_until_signal(loop, {SIGINT, SIGTERM});
  if (failure.empty()) return exit_ok;
  std::cerr << failure << '\n';
  return exit_failure;
}

int dial_command(std::span<const std::string> raw) {
  const auto args = arguments::parse(raw, dial_flags);
  const auto [net, address] = network_and_address(args);
  event_loop loop;
  net::dialer dialer;
  if (auto timeout = args.duration("timeout")) dialer.timeout = *timeout;
  if (auto local = args.value("local")) dialer.local_address = *local;
  // An unnamed unixgram socket cannot be answered: name it, as netcat does.
  if (net == "unixgram" && dialer.local_address.empty())
    dialer.local_address = "@ipckit-dial-" + std::to_string(::getpid());
  net::conn conn = dialer.dial(loop.get_executor(), net, address);
  relay_options options;
  if (auto linger = args.duration("linger")) options.linger = *linger;
  conn_relay relay(conn, net, options);
  std::string failure;
  relay.start([&](error_code ec, std::string op) {
    if (ec) failure = format_error({op, net, conn.local_address().to_string(), address, ""}, ec);
    loop.stop();
  });
  return run_relay(loop, failure);
}

int listen_command(std::span<const std::string> raw) {
  const auto args = arguments::parse(raw, listen_flags);
  const auto [net, address] = network_and_address(args);
  event_loop loop;
  relay_options options;
  options.echo = args.has("echo");
  std::string failure;
  auto report = [&](error_code ec, std::string op) {
    if (ec) failure = format_error({op, net, "", address, ""}, ec);
    loop.stop();
  };
  if (!net::parse_network(net).is_stream()) {
    net::packet_conn conn = net::listen_packet(loop.get_executor(), net, address);
    std::cerr << "listening on " << net << " " << conn.local_address().to_string() << std::endl;
    packet_relay relay(conn, options);
    relay.start(report);
    return run_relay(loop, failure);
  }
  net::listener listener = net::listen(loop.get_executor(), net, address, listen_config_from(args));
  std::cerr << "listening on " << net << " " << listener.addr().to_string() << std::endl;
  // One connection at a time; with --keep the next is accepted when one ends. stdin is
  // relayed to the first connection only (it cannot be read twice).
  bool first = true;
  for (;;) {
    net::conn conn(loop.get_executor());
    bool accepted = false;
    listener.async_accept([&](error_code ec, net::conn c) {
      if (ec) return report(ec, "accept");
      conn = std::move(c);
      accepted = true;
      loop.stop();
    });
    if (signal::run_until_signal(loop, {SIGINT, SIGTERM}) || !failure.empty()) break;
    if (!accepted) break;
    loop.restart();
    options.read_stdin = first;
    first = false;
    conn_relay relay(conn, net, options);
    relay.start([&](error_code ec, std::string op) {
      if (ec) std::cerr << format_error({op, net, conn.local_address().to_string(), conn.remote_address().to_string(), ""}, ec) << '\n';
      loop.stop();
    });
    if (signal::run_until_signal(loop, {SIGINT, SIGTERM})) break;
    loop.restart();
    if (!args.has("keep")) break;
  }
  if (failure.empty()) return exit_ok;
  std::cerr << failure << '\n';
  return exit_failure;
}

const registration dial_registration{{
    "dial",
    "connect to NETWORK ADDRESS, stdin to it and it to stdout",
    "Usage: ipckit dial [--timeout D] [--linger D] [--local ADDRESS] NETWORK ADDRESS\n\n"
    "Connects as Go's net.Dial(NETWORK, ADDRESS) does, for every network: tcp, tcp4, tcp6,\n"
    "udp, udp4, udp6, unix, unixgram, unixpacket, ip:PROTO, ip4:PROTO, ip6:PROTO. Copies\n"
    "stdin to the connection and the connection to stdout; at stdin EOF a stream is\n"
    "half-closed and the command exits when the peer closes. On packet networks each\n"
    "stdin line is one datagram and each datagram received is printed as one line.\n\n"
    "  --timeout D   give up dialing after D (Go duration: 500ms, 2s)\n"
    "  --linger D    packet networks: after stdin EOF, wait D for replies (default 1s)\n"
    "  --local ADDR  bind this local address first (Go's Dialer.LocalAddr); unixgram\n"
    "                binds an abstract name by default so that replies can reach it\n\n"
    "Examples:\n"
    "  printf 'GET / HTTP/1.0\\r\\n\\r\\n' | ipckit dial tcp example.org:http\n"
    "  echo ping | ipckit dial unixgram /run/app.sock\n",
    dial_command,
}};

const registration listen_registration{{
    "listen",
    "accept on NETWORK ADDRESS, like dial the other way",
    "Usage: ipckit listen [--echo] [--keep] [--mode OCTAL] [--private-dir] [--same-uid]\n"
    "                     [--allow-uid IDS] [--allow-gid IDS] NETWORK ADDRESS\n\n"
    "Listens as Go's net.Listen (tcp*, unix, unixpacket) or net.ListenPacket (udp*,\n"
    "unixgram, ip*:PROTO) does and prints \"listening on NETWORK ADDRESS\" on stderr\n"
    "(the real port when ADDRESS asked for port 0). A stream connection is relayed as\n"
    "dial relays it; datagrams are printed one a line, and stdin lines go to the last\n"
    "sender. SIGINT or SIGTERM stops it cleanly (a unix socket file is removed).\n\n"
    "  --echo        send everything received back to its sender instead of printing it\n"
    "  --keep        after a connection ends, accept the next (streams)\n"
    "  --mode OCTAL  file mode of a unix socket path (default 0600)\n"
    "  --private-dir bind the unix path inside a private directory (created 0700; an\n"
    "                existing one must be ours and not writable by others)\n"
    "  --same-uid    unix, unixpacket: accept only peers running as our uid, or as a\n"
    "  --allow-uid IDS  uid listed here, or with a gid listed in --allow-gid IDS\n"
    "                (comma-separated ids); any other peer is closed before it is\n"
    "                relayed, with a \"refused peer pid P uid U gid G\" line on stderr\n\n"
    "Examples:\n"
    "  ipckit listen --echo --keep tcp 127.0.0.1:7000\n"
    "  ipckit listen unixgram @demo\n"
    "  ipckit listen --private-dir --same-uid unix /run/user/1000/app/ctl.sock\n",
    listen_command,
}};

}  // namespace
}  // namespace ipckit::cli
