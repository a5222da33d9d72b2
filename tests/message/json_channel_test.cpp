// json_channel over real transports: socket pairs, pipes, a python3 peer, datagrams.
#include <ipckit/message.hpp>  // first, alone

#include "test_support.hpp"

#include <ipckit/event_loop.hpp>
#include <ipckit/message_queue.hpp>
#include <ipckit/net.hpp>
#include <ipckit/pipe.hpp>
#include <ipckit/unique_fd.hpp>

#include <boost/asio/co_spawn.hpp>
#include <boost/asio/connect_pipe.hpp>
#include <boost/asio/detached.hpp>
#include <boost/asio/local/connect_pair.hpp>
#include <boost/asio/local/datagram_protocol.hpp>
#include <boost/asio/generic/seq_packet_protocol.hpp>
#include <boost/asio/local/stream_protocol.hpp>
#include <boost/asio/readable_pipe.hpp>
#include <boost/asio/use_awaitable.hpp>
#include <boost/asio/use_future.hpp>
#include <boost/asio/writable_pipe.hpp>

namespace {

using namespace std::chrono_literals;
using ipckit::framing;
using ipckit::json_channel;
using ipckit::test::run_until;
using json = nlohmann::json;
namespace local = boost::asio::local;

template <class Protocol>
std::pair<typename Protocol::socket, typename Protocol::socket> socket_pair(ipckit::event_loop& loop) {
  typename Protocol::socket a(loop.get_executor()), b(loop.get_executor());
  local::connect_pair(a, b);
  return {std::move(a), std::move(b)};
}

class json_channel_over : public ::testing::TestWithParam<framing> {};

TEST_P(json_channel_over, a_unix_stream_pair_carries_messages_both_ways_sync_and_async) {
  ipckit::event_loop loop;
  auto [a, b] = socket_pair<local::stream_protocol>(loop);
  json_channel<local::stream_protocol::socket> left(std::move(a), {GetParam()});
  json_channel<local::stream_protocol::socket> right(std::move(b), {GetParam()});

  const json messages[] = {{{"hello", "world"}}, json::array({1, 2, 3}), "a \"quoted\"\nline", 42,
                           json::object(), {{"nested", {{"deep", {true, false, nullptr}}}}}};
  for (const auto& m : messages) left.send(m);
  for (const auto& m : messages) EXPECT_EQ(right.receive(), m);

  std::vector<json> received;
  for (const auto& m : messages) {
    right.async_send(m, [](ipckit::error_code ec) { EXPECT_FALSE(ec); });
    left.async_receive([&](ipckit::error_code ec, json m2) {
      EXPECT_FALSE(ec) << ec.message();
      received.push_back(std::move(m2));
    });
    ASSERT_TRUE(run_until(loop.context(), [&] { return received.size() == static_cast<std::size_t>(&m - messages) + 1; }));
  }
  EXPECT_TRUE(std::equal(received.begin(), received.end(), std::begin(messages)));
}

INSTANTIATE_TEST_SUITE_P(framings, json_channel_over,
                         ::testing::Values(framing::length_prefixed, framing::newline));

TEST(json_channel, a_pipe_carries_a_megabyte_message_with_coroutines_and_futures) {
  ipckit::event_loop loop;
  boost::asio::readable_pipe reader(loop.get_executor());
  boost::asio::writable_pipe writer(loop.get_executor());
  boost::asio::connect_pipe(reader, writer);
  const ipckit::json_channel_options options{framing::length_prefixed, 2 * 1024 * 1024};
  json_channel<boost::asio::writable_pipe> out(std::move(writer), options);
  json_channel<boost::asio::readable_pipe> in(std::move(reader), options);

  const json big = {{"payload", std::string(1024 * 1024, 'q')}};
  json got;
  boost::asio::co_spawn(loop.get_executor(), [&]() -> boost::asio::awaitable<void> {
    got = co_await in.async_receive(boost::asio::use_awaitable);
  }, boost::asio::detached);
  auto sent = out.async_send(big, boost::asio::use_future);
  ASSERT_TRUE(run_until(loop.context(), [&] { return !got.is_null(); }));
  EXPECT_NO_THROW(sent.get());
  EXPECT_EQ(got, big);
}

TEST(json_channel, interoperates_with_a_python_peer_using_length_prefixed_frames) {
  // The peer is written here only as a few lines of python3's struct and json modules.
  ipckit::test::peer_process peer({"python3", "-c", R"(
import json, struct, sys
i, o = sys.stdin.buffer, sys.stdout.buffer
while True:
    header = i.read(4)
    if len(header) < 4: break
    message = json.loads(i.read(struct.unpack('>I', header)[0]))
    message['seen_by'] = 'python'
    data = json.dumps(message).encode()
    o.write(struct.pack('>I', len(data)) + data); o.flush()
)"});
  ipckit::event_loop loop;
  boost::asio::writable_pipe to_peer(loop.get_executor(), ipckit::duplicate(peer.stdin_fd()).release());
  boost::asio::readable_pipe from_peer(loop.get_executor(), ipckit::duplicate(peer.stdout_fd()).release());
  json_channel<boost::asio::writable_pipe> out(std::move(to_peer));
  json_channel<boost::asio::readable_pipe> in(std::move(from_peer));
  for (int i = 0; i < 20; ++i) {
    out.send({{"n", i}, {"text", "ünïcödé"}});
    const json reply = in.receive();
    EXPECT_EQ(reply["n"], i);
    EXPECT_EQ(reply["text"], "ünïcödé");
    EXPECT_EQ(reply["seen_by"], "python");
  }
  out.next_layer().close();
  peer.close_stdin();
  EXPECT_EQ(peer.wait(10s), 0);
  ipckit::error_code ec;
  in.receive(ec);
  EXPECT_EQ(ec, boost::asio::error::eof);
}

TEST(json_channel, newline_channel_reports_the_offset_and_stays_usable_after_a_bad_line) {
  ipckit::event_loop loop;
  auto [a, b] = socket_pair<local::stream_protocol>(loop);
  boost::asio::write(a, boost::asio::buffer(std::string("{\"ok\":1}\n{oops}\n{\"ok\":2}\n")));
  json_channel<local::stream_protocol::socket> in(std::move(b), {framing::newline});
  EXPECT_EQ(in.receive()["ok"], 1);
  try {
    in.receive();
    FAIL() << "a malformed line was accepted";
  } catch (const ipckit::system_error& e) {
    EXPECT_EQ(e.code(), ipckit::message::errc::malformed_json);
    EXPECT_STREQ(e.what(), "receive json: stream offset 10: malformed JSON");
  }
  EXPECT_NE(in.last_error_detail().find("syntax error"), std::string::npos);
  EXPECT_EQ(in.receive()["ok"], 2);
}

TEST(json_channel, end_inside_a_frame_is_unexpected_eof) {
  ipckit::event_loop loop;
  auto [a, b] = socket_pair<local::stream_protocol>(loop);
  boost::asio::write(a, boost::asio::buffer(std::string("\0\0\0\x10{\"cut", 9)));
  a.close();
  json_channel<local::stream_protocol::socket> in(std::move(b));
  ipckit::error_code got;
  bool done = false;
  in.async_receive([&](ipckit::error_code ec, json) { got = ec, done = true; });
  ASSERT_TRUE(run_until(loop.context(), [&] { return done; }));
  EXPECT_EQ(got, ipckit::message::errc::unexpected_eof);
}

TEST(json_channel, too_large_to_send_fails_before_writing_anything) {
  ipckit::event_loop loop;
  auto [a, b] = socket_pair<local::stream_protocol>(loop);
  json_channel<local::stream_protocol::socket> out(std::move(a), {framing::length_prefixed, 16});
  ipckit::error_code ec;
  out.send(std::string(100, 'x'), ec);
  EXPECT_EQ(ec, ipckit::errc::message_too_large);
  bool done = false;
  out.async_send(std::string(100, 'x'), [&](ipckit::error_code e) { ec = e, done = true; });
  ASSERT_TRUE(run_until(loop.context(), [&] { return done; }));
  EXPECT_EQ(ec, ipckit::errc::message_too_large);
  b.non_blocking(true);
  char byte;
  b.read_some(boost::asio::buffer(&byte, 1), ec);
  EXPECT_EQ(ec, boost::asio::error::would_block);  // nothing was written
}

// Asio's datagram and seqpacket sockets send and receive but are not streams; ipckit's
// net::conn is both. This adapter gives a raw Asio socket the stream calls.
template <class Socket>
struct datagram_stream {
  using executor_type = typename Socket::executor_type;
  static constexpr bool seqpacket =
      std::is_same_v<Socket, boost::asio::generic::seq_packet_protocol::socket>;
  Socket socket;
  boost::asio::socket_base::message_flags out_flags = 0;  // seqpacket receives report flags

  executor_type get_executor() { return socket.get_executor(); }
  template <class B> std::size_t read_some(const B& b, ipckit::error_code& ec) {
    if constexpr (seqpacket) return socket.receive(b, 0, out_flags, ec);
    else return socket.receive(b, 0, ec);
  }
  template <class B> std::size_t write_some(const B& b, ipckit::error_code& ec) { return socket.send(b, 0, ec); }
  template <class B, class T> auto async_read_some(const B& b, T&& t) {
    if constexpr (seqpacket) return socket.async_receive(b, 0, out_flags, std::forward<T>(t));
    else return socket.async_receive(b, 0, std::forward<T>(t));
  }
  template <class B, class T> auto async_write_some(const B& b, T&& t) { return socket.async_send(b, 0, std::forward<T>(t)); }
};

template <class Protocol>
void one_message_per_datagram() {
  ipckit::event_loop loop;
  auto [a, b] = socket_pair<Protocol>(loop);
  using stream = datagram_stream<typename Protocol::socket>;
  json_channel<stream> out(stream{std::move(a)}, {framing::datagram, 256});
  json_channel<stream> in(stream{std::move(b)}, {framing::datagram, 256});
  out.send({{"first", 1}});
  out.send({{"second", 2}});
  EXPECT_EQ(in.receive(), json({{"first", 1}}));
  bool done = false;
  in.async_receive([&](ipckit::error_code ec, json m) {
    EXPECT_FALSE(ec);
    EXPECT_EQ(m, json({{"second", 2}}));
    done = true;
  });
  ASSERT_TRUE(run_until(loop.context(), [&] { return done; }));
  // An oversized datagram from a raw sender is refused; the next one still decodes.
  const std::string huge = "\"" + std::string(300, 'z') + "\"";
  out.next_layer().socket.send(boost::asio::buffer(huge), 0);
  out.send(3);
  ipckit::error_code ec;
  in.receive(ec);
  EXPECT_EQ(ec, ipckit::errc::message_too_large);
  EXPECT_EQ(in.receive(), 3);
}

TEST(json_channel, datagram_framing_over_unixgram) { one_message_per_datagram<local::datagram_protocol>(); }
// Boost 1.81 has no local::seq_packet_protocol: a unix seqpacket pair is a generic one.
struct unix_seqpacket {
  using socket = boost::asio::generic::seq_packet_protocol::socket;
};
template <>
std::pair<unix_seqpacket::socket, unix_seqpacket::socket> socket_pair<unix_seqpacket>(ipckit::event_loop& loop) {
  int fds[2];
  if (::socketpair(AF_UNIX, SOCK_SEQPACKET | SOCK_CLOEXEC, 0, fds) != 0) throw std::runtime_error("socketpair");
  const boost::asio::generic::seq_packet_protocol unix_protocol(AF_UNIX, 0);
  return {unix_seqpacket::socket(loop.get_executor(), unix_protocol, fds[0]),
          unix_seqpacket::socket(loop.get_executor(), unix_protocol, fds[1])};
}

TEST(json_channel, datagram_framing_over_seqpacket) { one_message_per_datagram<unix_seqpacket>(); }

// A POSIX message queue is a packet transport too: one JSON message per queue message,
// sync and async, across processes (the ipckit command on the other side).
TEST(json_channel, datagram_framing_over_a_message_queue) {
  ipckit::event_loop loop;
  const std::string name = ipckit::test::unique_ipc_name("json");
  struct unlink_at_end {
    std::string name;
    ~unlink_at_end() {
      ipckit::error_code ignored;
      ipckit::message_queue::unlink(name, ignored);
    }
  } cleanup{name};
  ipckit::message_queue_options options;
  options.attributes = {4, 256};
  ipckit::message_queue sender(loop), receiver(loop);
  sender.create(name, options);
  receiver.open(name);
  // The channel's receive buffer (cap + 1 bytes) must hold the queue's message size.
  json_channel<ipckit::message_queue&> out(sender, {framing::datagram, 255});
  json_channel<ipckit::message_queue&> in(receiver, {framing::datagram, 255});

  out.send({{"first", 1}});
  out.send({{"second", 2}});
  EXPECT_EQ(sender.attributes().current_messages, 2);  // one queue message each
  EXPECT_EQ(in.receive(), json({{"first", 1}}));
  bool done = false;
  in.async_receive([&](ipckit::error_code ec, json m) {
    EXPECT_FALSE(ec) << ec.message();
    EXPECT_EQ(m, json({{"second", 2}}));
    done = true;
  });
  ASSERT_TRUE(run_until(loop.context(), [&] { return done; }));

  // Another process's message is one JSON message; ours is one line for `mq receive`.
  auto sent = ipckit::test::run_process({ipckit::test::cli_path(), "mq", "send", name, R"({"from":"cli"})"});
  ASSERT_EQ(sent.exit_code, 0) << sent.err;
  EXPECT_EQ(in.receive(), json({{"from", "cli"}}));
  done = false;
  out.async_send({{"to", "cli"}}, [&](ipckit::error_code ec) {
    EXPECT_FALSE(ec) << ec.message();
    done = true;
  });
  ASSERT_TRUE(run_until(loop.context(), [&] { return done; }));
  auto received = ipckit::test::run_process({ipckit::test::cli_path(), "mq", "receive", name});
  EXPECT_EQ(received.out, "{\"to\":\"cli\"}\n") << received.err;

  // Over the channel's cap: refused before sending, and refused on receipt; the next
  // message still decodes.
  ipckit::error_code ec;
  out.send(std::string(300, 'z'), ec);
  EXPECT_EQ(ec, ipckit::errc::message_too_large);
  const std::string big = "\"" + std::string(254, 'z') + "\"";  // 256 bytes: fits the queue
  sender.send(boost::asio::buffer(big));
  out.send(3);
  in.receive(ec);
  EXPECT_EQ(ec, ipckit::errc::message_too_large);
  EXPECT_EQ(in.receive(), 3);
  EXPECT_EQ(receiver.attributes().current_messages, 0);
}

}  // namespace

namespace {

// Sends two messages one way (sync), one back (async), over a pair of ipckit streams.
template <class Left, class Right>
void carries_messages_both_ways(ipckit::event_loop& loop, json_channel<Left>& a, json_channel<Right>& b) {
  a.send({{"n", 1}});
  a.send(json::array({"two", 2}));
  EXPECT_EQ(b.receive(), json({{"n", 1}}));
  EXPECT_EQ(b.receive(), json::array({"two", 2}));
  bool done = false;
  json got;
  b.async_send({{"back", true}}, [](ipckit::error_code ec) { EXPECT_FALSE(ec) << ec.message(); });
  a.async_receive([&](ipckit::error_code ec, json m) {
    EXPECT_FALSE(ec) << ec.message();
    got = std::move(m);
    done = true;
  });
  ASSERT_TRUE(run_until(loop.context(), [&] { return done; }));
  EXPECT_EQ(got, json({{"back", true}}));
}

// json_channel over ipckit's own objects, not only Asio's: a FIFO (newline framing),
// a tcp connection (length-prefixed) and unixpacket (one message per datagram).
class json_channel_ipckit : public ipckit::test::temp_dir_test {
 protected:
  ipckit::event_loop loop;

  // A listener on `net`, a dialed conn and the accepted one.
  std::pair<ipckit::net::conn, ipckit::net::conn> connected(const std::string& net, const std::string& address) {
    auto listener = ipckit::net::listen(loop.get_executor(), net, address);
    auto dialed = ipckit::net::dial(loop.get_executor(), net, listener.addr().to_string());
    return {std::move(dialed), listener.accept()};
  }
};

TEST_F(json_channel_ipckit, over_a_fifo_one_way_with_newline_framing) {
  const auto path = dir() / "json.fifo";
  ipckit::make_fifo(path);
  json_channel<ipckit::pipe_reader> in(ipckit::open_fifo_reader(loop.get_executor(), path),
                                       {framing::newline});
  json_channel<ipckit::pipe_writer> out(ipckit::open_fifo_writer(loop.get_executor(), path, 5s),
                                        {framing::newline});
  out.send({{"line", 1}});
  bool done = false;
  ipckit::error_code sent;
  out.async_send({{"line", 2}}, [&](ipckit::error_code ec) { sent = ec, done = true; });
  ASSERT_TRUE(run_until(loop.context(), [&] { return done; }));
  EXPECT_FALSE(sent) << sent.message();
  EXPECT_EQ(in.receive(), json({{"line", 1}}));
  EXPECT_EQ(in.receive(), json({{"line", 2}}));
  out.next_layer().close();
  ipckit::error_code ec;
  in.receive(ec);
  EXPECT_EQ(ec, boost::asio::error::eof);
}

TEST_F(json_channel_ipckit, over_a_tcp_conn_length_prefixed) {
  auto [dialed, accepted] = connected("tcp4", "127.0.0.1:0");
  json_channel<ipckit::net::conn> a(std::move(dialed)), b(std::move(accepted));
  carries_messages_both_ways(loop, a, b);
}

TEST_F(json_channel_ipckit, over_a_unixpacket_conn_one_message_per_datagram) {
  auto [dialed, accepted] = connected("unixpacket", (dir() / "json.sock").string());
  json_channel<ipckit::net::conn> a(std::move(dialed), {framing::datagram});
  json_channel<ipckit::net::conn> b(std::move(accepted), {framing::datagram});
  carries_messages_both_ways(loop, a, b);
}

}  // namespace
