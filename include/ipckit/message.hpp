// json_channel: JSON messages over any stream or packet transport, on the loop.
//
// A channel wraps an Asio stream (a pipe end, a FIFO, a tcp or unix socket, an
// ipckit::net::conn, a child's stdio): length-prefixed frames (4-byte big-endian length)
// or newline-delimited JSON, or one message per datagram on packet transports. The size
// cap is checked before anything is allocated for a message, and a malformed message is
// an error that names its stream offset; the channel stays usable after it.
#pragma once

#include <ipckit/detail/frame_decoder.hpp>
#include <ipckit/error.hpp>
#include <ipckit/unique_fd.hpp>

#include <boost/asio/async_result.hpp>
#include <boost/asio/buffer.hpp>
#include <boost/asio/compose.hpp>
#include <boost/asio/error.hpp>
#include <boost/asio/post.hpp>
#include <boost/asio/read.hpp>
#include <boost/asio/write.hpp>
#include <nlohmann/json.hpp>

#include <iterator>
#include <memory>
#include <span>
#include <string>
#include <type_traits>
#include <utility>
#include <vector>

namespace ipckit {
namespace message {

enum class errc {
  malformed_json = 1,  ///< "malformed JSON"; the channel's last_error_detail() says where
  unexpected_eof,      ///< "unexpected EOF": the stream ended inside a message
  short_write,         ///< a datagram was sent only in part
};

const boost::system::error_category& category() noexcept;
error_code make_error_code(errc e) noexcept;

}  // namespace message
}  // namespace ipckit

// Before any use in the templates below: clang rejects a specialization that follows
// an instantiation (g++ let it pass).
template <>
struct boost::system::is_error_code_enum<ipckit::message::errc> : std::true_type {};

namespace ipckit {

struct json_channel_options {
  framing mode = framing::length_prefixed;
  /// The largest message accepted or sent, in bytes of JSON text (without the header or
  /// newline). Larger is errc::message_too_large, decided before any allocation.
  std::size_t max_message_size = 1024 * 1024;
};

/// JSON messages over `Stream`, which it owns (or borrows: json_channel<socket&>).
/// `Stream` needs read_some/write_some for the blocking calls and async_read_some/
/// async_write_some for the async ones. One send and one receive may be outstanding at a
/// time, as with Asio streams; the channel must outlive its operations.
template <class Stream>
class json_channel {
 public:
  using stream_type = std::remove_reference_t<Stream>;
  using executor_type = typename stream_type::executor_type;

  explicit json_channel(Stream stream, json_channel_options options = {})
      : stream_(std::forward<Stream>(stream)),
        options_(options),
        decoder_(options.mode, options.max_message_size) {}

  stream_type& next_layer() noexcept { return stream_; }
  executor_type get_executor() noexcept { return stream_.get_executor(); }
  const json_channel_options& options() const noexcept { return options_; }
  /// What the last failed receive found: "invalid JSON at stream offset 12: syntax error …".
  const std::string& last_error_detail() const noexcept { return detail_; }

  void send(const nlohmann::json& message, error_code& ec) {
    const std::string text = detail::encode_message(message, options_.mode, options_.max_message_size, ec);
    if (ec) return;
    if (options_.mode == framing::datagram) {
      const std::size_t sent = stream_.write_some(boost::asio::buffer(text), ec);
      if (!ec && sent != text.size()) ec = message::errc::short_write;
    } else {
      boost::asio::write(stream_, boost::asio::buffer(text), ec);
    }
  }
  void send(const nlohmann::json& message) {
    error_code ec;
    send(message, ec);
    if (ec) throw_error(ec, {"send", "json", "", "", ""});
  }

  nlohmann::json receive(error_code& ec) {
    ec.clear();
    if (options_.mode == framing::datagram) {
      std::vector<char> buffer(options_.max_message_size + 1);
      const std::size_t n = stream_.read_some(boost::asio::buffer(buffer), ec);
      return ec ? nlohmann::json() : take(decode_datagram({buffer.data(), n}), ec);
    }
    for (;;) {
      detail::decoded next = decoder_.next();
      if (next.state != detail::decoded::status::need_more) return take(std::move(next), ec);
      auto space = decoder_.prepare();
      const std::size_t n = stream_.read_some(boost::asio::buffer(space.data(), space.size()), ec);
      if (ec == boost::asio::error::eof) ec = decoder_.at_end();
      if (ec) return {};
      decoder_.commit(n);
    }
  }
  nlohmann::json receive() {
    error_code ec;
    auto message = receive(ec);
    if (ec) throw_error(ec, {"receive", "json", "", "", where_in_stream()});
    return message;
  }

  // File descriptors riding along (unix sockets: a Stream with write_with_fds and
  // read_with_fds, such as ipckit::net::conn). Blocking only, as those calls are. The
  // descriptors go with the first bytes of the message's frame; received ones are
  // close-on-exec and handed out with the next message that completes.
  template <class S = stream_type>
    requires requires(S& s, std::span<const int> fds, error_code& ec) {
      s.write_with_fds(boost::asio::const_buffer(), fds, ec);
    }
  void send(const nlohmann::json& message, std::span<const int> fds, error_code& ec) {
    const std::string text = detail::encode_message(message, options_.mode, options_.max_message_size, ec);
    if (ec) return;
    const std::size_t sent = stream_.write_with_fds(boost::asio::buffer(text), fds, ec);
    if (ec) return;
    if (options_.mode == framing::datagram) {
      if (sent != text.size()) ec = message::errc::short_write;
      return;
    }
    boost::asio::write(stream_, boost::asio::buffer(text.data() + sent, text.size() - sent), ec);
  }

  template <class S = stream_type>
    requires requires(S& s, std::vector<unique_fd>& fds, error_code& ec) {
      s.read_with_fds(boost::asio::mutable_buffer(), fds, std::size_t{}, ec);
    }
  nlohmann::json receive(std::vector<unique_fd>& fds, error_code& ec) {
    ec.clear();
    if (options_.mode == framing::datagram) {
      std::vector<char> buffer(options_.max_message_size + 1);
      const std::size_t n = stream_.read_with_fds(boost::asio::buffer(buffer), fds, max_fds_per_read, ec);
      return ec ? nlohmann::json() : take(decode_datagram({buffer.data(), n}), ec);
    }
    for (;;) {
      detail::decoded next = decoder_.next();
      if (next.state != detail::decoded::status::need_more) {
        std::move(received_fds_.begin(), received_fds_.end(), std::back_inserter(fds));
        received_fds_.clear();
        return take(std::move(next), ec);
      }
      auto space = decoder_.prepare();
      const std::size_t n = stream_.read_with_fds(boost::asio::buffer(space.data(), space.size()),
                                                  received_fds_, max_fds_per_read, ec);
      if (ec == boost::asio::error::eof) ec = decoder_.at_end();
      if (ec) return {};
      decoder_.commit(n);
    }
  }

  /// Completes with void(error_code).
  template <class CompletionToken>
  auto async_send(const nlohmann::json& message, CompletionToken&& token) {
    error_code ec;
    auto text = std::make_unique<std::string>(
        detail::encode_message(message, options_.mode, options_.max_message_size, ec));
    return boost::asio::async_compose<CompletionToken, void(error_code)>(
        send_op{this, std::move(text), ec, false}, token, stream_);
  }

  /// Completes with void(error_code, nlohmann::json).
  template <class CompletionToken>
  auto async_receive(CompletionToken&& token) {
    return boost::asio::async_compose<CompletionToken, void(error_code, nlohmann::json)>(
        receive_op{this, nullptr, {}, false}, token, stream_);
  }

 private:
  nlohmann::json take(detail::decoded next, error_code& ec) {
    detail_ = std::move(next.detail);
    if (next.state == detail::decoded::status::error) {
      ec = next.ec;
      return {};
    }
    return std::move(next.message);
  }

  detail::decoded decode_datagram(std::string_view datagram) {
    if (datagram.size() > options_.max_message_size) {
      detail::decoded result;
      result.state = detail::decoded::status::error;
      result.ec = ipckit::errc::message_too_large;
      result.detail = "datagram larger than the limit of " + std::to_string(options_.max_message_size);
      return result;
    }
    return detail::parse_json_text(datagram, 0);
  }

  // "stream offset 12" for the thrown message, from the detail of the last error.
  std::string where_in_stream() const {
    const auto at = detail_.find("stream offset ");
    if (at == std::string::npos) return "";
    const auto end = detail_.find(':', at);
    return detail_.substr(at, end == std::string::npos ? std::string::npos : end - at);
  }

  struct send_op {
    json_channel* channel;
    std::unique_ptr<std::string> text;  // on the heap: its address must survive moves of the op
    error_code encode_error;
    bool started;

    template <class Self>
    void operator()(Self& self, error_code ec = {}, std::size_t sent = 0) {
      if (!started) {
        started = true;
        if (encode_error) {  // completes through the executor, never inside async_send
          return boost::asio::post(channel->stream_.get_executor(),
                                   [s = std::move(self), e = encode_error]() mutable { s.complete(e); });
        }
        if (channel->options_.mode == framing::datagram)
          return channel->stream_.async_write_some(boost::asio::buffer(*text), std::move(self));
        return boost::asio::async_write(channel->stream_, boost::asio::buffer(*text), std::move(self));
      }
      if (!ec && sent != text->size()) ec = message::errc::short_write;
      self.complete(ec);
    }
  };

  struct receive_op {
    json_channel* channel;
    std::unique_ptr<std::vector<char>> datagram;
    detail::decoded ready;
    bool started;

    template <class Self>
    void operator()(Self& self, error_code ec = {}, std::size_t bytes = 0) {
      auto& ch = *channel;
      if (ready.state != detail::decoded::status::need_more) return finish(self);
      if (ch.options_.mode == framing::datagram) {
        if (!started) {
          started = true;
          datagram = std::make_unique<std::vector<char>>(ch.options_.max_message_size + 1);
          return ch.stream_.async_read_some(boost::asio::buffer(*datagram), std::move(self));
        }
        if (ec) return self.complete(ec, nlohmann::json());
        ready = ch.decode_datagram({datagram->data(), bytes});
        return finish(self);
      }
      if (started) {
        if (ec == boost::asio::error::eof) ec = ch.decoder_.at_end();
        if (ec) return self.complete(ec, nlohmann::json());
        ch.decoder_.commit(bytes);
      }
      ready = ch.decoder_.next();
      if (ready.state != detail::decoded::status::need_more) {
        if (started) return finish(self);
        started = true;  // a message already buffered: complete through the executor
        return boost::asio::post(ch.stream_.get_executor(), std::move(self));
      }
      started = true;
      auto space = ch.decoder_.prepare();
      ch.stream_.async_read_some(boost::asio::buffer(space.data(), space.size()), std::move(self));
    }

    template <class Self>
    void finish(Self& self) {
      error_code ec;
      auto message = channel->take(std::move(ready), ec);
      self.complete(ec, std::move(message));
    }
  };

  static constexpr std::size_t max_fds_per_read = 64;

  Stream stream_;
  std::vector<unique_fd> received_fds_;  // arrived with bytes of a message not yet complete
  json_channel_options options_;
  detail::frame_decoder decoder_;
  std::string detail_;
};

}  // namespace ipckit
