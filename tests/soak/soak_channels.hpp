// The soak test's view of a transport: send one message, receive one message, on the
// loop. One adapter per kind of transport: byte streams (framed with a 4-byte length,
// as the helper's soak-echo mode frames them), datagrams, POSIX message queues and JSON
// messages.
#pragma once

#include <ipckit/message.hpp>
#include <ipckit/message_queue.hpp>
#include <ipckit/net.hpp>
#include <ipckit/pipe.hpp>

#include <boost/asio/read.hpp>
#include <boost/asio/steady_timer.hpp>
#include <boost/asio/write.hpp>

#include <array>
#include <cstdint>
#include <functional>
#include <memory>
#include <string>

namespace ipckit::test {

class soak_channel {
 public:
  using send_handler = std::function<void(error_code)>;
  using receive_handler = std::function<void(error_code, std::string)>;
  virtual ~soak_channel() = default;
  /// `message` stays valid until the handler runs.
  virtual void async_send(const std::string& message, send_handler done) = 0;
  virtual void async_receive(receive_handler done) = 0;
};

/// A pipe or FIFO pair as one stream: writes go to the child, reads come from it.
struct pipe_duplex {
  using executor_type = boost::asio::any_io_executor;
  pipe_writer out;
  pipe_reader in;
  executor_type get_executor() { return in.get_executor(); }
  template <class Buffers, class Token>
  auto async_read_some(const Buffers& b, Token&& t) {
    return in.async_read_some(b, std::forward<Token>(t));
  }
  template <class Buffers, class Token>
  auto async_write_some(const Buffers& b, Token&& t) {
    return out.async_write_some(b, std::forward<Token>(t));
  }
};

template <class Stream>
class framed_channel : public soak_channel {
 public:
  explicit framed_channel(Stream stream) : stream_(std::move(stream)) {}

  void async_send(const std::string& message, send_handler done) override {
    const auto n = static_cast<std::uint32_t>(message.size());
    out_header_ = {static_cast<unsigned char>(n), static_cast<unsigned char>(n >> 8),
                   static_cast<unsigned char>(n >> 16), static_cast<unsigned char>(n >> 24)};
    const std::array<boost::asio::const_buffer, 2> frame{boost::asio::buffer(out_header_),
                                                         boost::asio::buffer(message)};
    boost::asio::async_write(stream_, frame,
                             [done = std::move(done)](error_code ec, std::size_t) { done(ec); });
  }

  void async_receive(receive_handler done) override {
    boost::asio::async_read(stream_, boost::asio::buffer(in_header_),
                            [this, done = std::move(done)](error_code ec, std::size_t) mutable {
      if (ec) return done(ec, {});
      in_.assign(std::size_t(in_header_[0]) | std::size_t(in_header_[1]) << 8 |
                     std::size_t(in_header_[2]) << 16 | std::size_t(in_header_[3]) << 24,
                 '\0');
      boost::asio::async_read(stream_, boost::asio::buffer(in_),
                              [this, done = std::move(done)](error_code ec, std::size_t) {
        done(ec, ec ? std::string() : std::move(in_));
      });
    });
  }

 private:
  Stream stream_;
  std::array<unsigned char, 4> out_header_{}, in_header_{};
  std::string in_;
};

/// One datagram per message over a connected net::conn (unixgram, unixpacket, udp). A
/// receive that waits longer than `timeout` (when set) fails with ipckit::errc::timeout.
class datagram_channel : public soak_channel {
 public:
  explicit datagram_channel(net::conn c, std::chrono::milliseconds timeout = {})
      : conn_(std::move(c)), timer_(conn_.get_executor()), timeout_(timeout), buffer_(65536, '\0') {}

  void async_send(const std::string& message, send_handler done) override {
    conn_.async_write_some(boost::asio::buffer(message),
                           [&message, done = std::move(done)](error_code ec, std::size_t n) {
      done(!ec && n != message.size() ? make_error_code(boost::system::errc::message_size) : ec);
    });
  }

  void async_receive(receive_handler done) override {
    // A timer that expired just as the read completed must not cancel the next read:
    // it acts only while its own read is the one pending.
    const std::uint64_t read = ++reads_;
    auto timed_out = std::make_shared<bool>(false);
    if (timeout_.count() > 0) {
      timer_.expires_after(timeout_);
      timer_.async_wait([this, read, timed_out](error_code ec) {
        if (ec || read != reads_ || completed_ == read) return;
        *timed_out = true;
        conn_.cancel();
      });
    }
    conn_.async_read_some(boost::asio::buffer(buffer_),
                          [this, read, timed_out, done = std::move(done)](error_code ec, std::size_t n) {
      completed_ = read;
      timer_.cancel();
      if (*timed_out) ec = ipckit::errc::timeout;
      done(ec, ec ? std::string() : buffer_.substr(0, n));
    });
  }

 private:
  net::conn conn_;
  boost::asio::steady_timer timer_;
  std::chrono::milliseconds timeout_;
  std::string buffer_;
  std::uint64_t reads_ = 0, completed_ = 0;
};

/// Two POSIX message queues: one to the child, one back.
class queue_channel : public soak_channel {
 public:
  queue_channel(message_queue to_child, message_queue from_child)
      : out_(std::move(to_child)), in_(std::move(from_child)), buffer_(in_.attributes().message_size, '\0') {}

  void async_send(const std::string& message, send_handler done) override {
    out_.async_send(boost::asio::buffer(message), 0, [done = std::move(done)](error_code ec) { done(ec); });
  }
  void async_receive(receive_handler done) override {
    in_.async_receive(boost::asio::buffer(buffer_),
                      [this, done = std::move(done)](error_code ec, received_message m) {
      done(ec, ec ? std::string() : buffer_.substr(0, m.size));
    });
  }

 private:
  message_queue out_, in_;
  std::string buffer_;
};

/// {"data": message} objects on a json_channel over a unix stream.
class json_message_channel : public soak_channel {
 public:
  explicit json_message_channel(net::conn c) : channel_(std::move(c)) {}

  void async_send(const std::string& message, send_handler done) override {
    channel_.async_send({{"data", message}}, [done = std::move(done)](error_code ec) { done(ec); });
  }
  void async_receive(receive_handler done) override {
    channel_.async_receive([done = std::move(done)](error_code ec, nlohmann::json j) {
      if (ec) return done(ec, {});
      if (!j.is_object() || !j.contains("data") || !j["data"].is_string())
        return done(make_error_code(boost::system::errc::bad_message), {});
      done(ec, j["data"].get<std::string>());
    });
  }

 private:
  json_channel<net::conn> channel_;
};

}  // namespace ipckit::test
