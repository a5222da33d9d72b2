// The JSON framing state machine behind json_channel, apart from any stream so that it
// can be fed bytes in any chunking (and fuzzed). Internal.
#pragma once

#include <ipckit/error.hpp>

#include <nlohmann/json.hpp>

#include <cstddef>
#include <cstdint>
#include <span>
#include <string>
#include <vector>

namespace ipckit {

/// How messages are delimited on a channel.
enum class framing {
  length_prefixed,  ///< a 4-byte big-endian length, then that many bytes of JSON
  newline,          ///< one JSON text per line (NDJSON); a bad line is skipped
  datagram,         ///< one JSON text per datagram (udp, unixgram, unixpacket, mq)
};

namespace detail {

struct decoded {
  enum class status { need_more, message, error } state = status::need_more;
  nlohmann::json message;
  error_code ec;
  std::string detail;  ///< for errors: what and where, with the stream offset
};

/// Parses one JSON text that started at `stream_offset` of the stream.
decoded parse_json_text(std::string_view text, std::uint64_t stream_offset);

class frame_decoder {
 public:
  frame_decoder(framing mode, std::size_t max_message_size);

  /// Free space to read into (never empty); commit() what was read.
  std::span<char> prepare();
  void commit(std::size_t bytes);

  /// The next message, error, or need_more. An error consumes the bad frame or line,
  /// so the channel stays usable (a too-large length-prefixed frame is skipped).
  decoded next();

  /// What to report when the stream ends: plain EOF between messages, unexpected EOF
  /// inside one.
  error_code at_end() const;

  std::size_t buffered() const { return end_ - begin_; }
  /// Bytes of buffer allocated: at most the cap, a header and one read (tests check it).
  std::size_t allocated() const { return buffer_.capacity(); }

 private:
  decoded next_length_prefixed();
  decoded next_line();
  void consume(std::size_t bytes);

  framing mode_;
  std::size_t max_;
  std::vector<char> buffer_;
  std::size_t begin_ = 0, end_ = 0;
  std::uint64_t offset_ = 0;  // stream offset of buffer_[begin_]
  std::uint64_t skipping_ = 0;  // bytes of a rejected frame still to drop
  bool discarding_line_ = false;
};

/// Encodes one message for `mode`: header or newline added. Throws nothing; a message
/// over `max` is errc::message_too_large, one holding a string that is not UTF-8
/// errc::invalid_argument.
std::string encode_message(const nlohmann::json& message, framing mode, std::size_t max,
                           error_code& ec);

}  // namespace detail
}  // namespace ipckit
