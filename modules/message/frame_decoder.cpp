#include <ipckit/detail/frame_decoder.hpp>

#include <ipckit/message.hpp>

#include <algorithm>
#include <cstdint>
#include <cstring>

namespace ipckit::detail {
namespace {

constexpr std::size_t header_size = 4;
constexpr std::size_t read_chunk = 64 * 1024;

std::uint32_t read_be32(const char* p) {
  const auto* u = reinterpret_cast<const unsigned char*>(p);
  return (std::uint32_t{u[0]} << 24) | (std::uint32_t{u[1]} << 16) | (std::uint32_t{u[2]} << 8) | u[3];
}

decoded failure(error_code ec, std::string detail) {
  decoded result;
  result.state = decoded::status::error;
  result.ec = ec;
  result.detail = std::move(detail);
  return result;
}

decoded too_large(std::uint64_t size, std::size_t max, std::uint64_t offset) {
  return failure(make_error_code(ipckit::errc::message_too_large),
                 "message of " + std::to_string(size) + " bytes at stream offset " +
                     std::to_string(offset) + " exceeds the limit of " + std::to_string(max));
}

decoded line_too_long(std::size_t max, std::uint64_t offset) {
  return failure(make_error_code(ipckit::errc::message_too_large),
                 "line at stream offset " + std::to_string(offset) + " exceeds the limit of " +
                     std::to_string(max) + " bytes");
}

}  // namespace

decoded parse_json_text(std::string_view text, std::uint64_t stream_offset) {
  decoded result;
  try {
    result.message = nlohmann::json::parse(text.begin(), text.end());
    result.state = decoded::status::message;
  } catch (const nlohmann::json::parse_error& error) {
    // nlohmann counts bytes from 1; the offset reported is 0-based within the stream.
    const std::uint64_t at = stream_offset + (error.byte > 0 ? error.byte - 1 : 0);
    std::string why = error.what();
    if (auto colon = why.find("syntax error"); colon != std::string::npos) why = why.substr(colon);
    result = failure(message::errc::malformed_json,
                     "invalid JSON at stream offset " + std::to_string(at) + ": " + why);
  } catch (const nlohmann::json::exception& error) {
    // Not a syntax error but as much the peer's fault: a number out of range ("1e400"
    // is out_of_range.406). It must not escape into the caller's event loop.
    std::string why = error.what();
    if (auto bracket = why.find("] "); bracket != std::string::npos) why = why.substr(bracket + 2);
    result = failure(message::errc::malformed_json, "invalid JSON at stream offset " +
                                                        std::to_string(stream_offset) + ": " + why);
  }
  return result;
}

frame_decoder::frame_decoder(framing mode, std::size_t max_message_size)
    : mode_(mode), max_(max_message_size) {}

std::span<char> frame_decoder::prepare() {
  if (begin_ > 0) {  // move what is left to the front before growing
    std::memmove(buffer_.data(), buffer_.data() + begin_, end_ - begin_);
    end_ -= begin_;
    begin_ = 0;
  }
  // Never more than one frame (or one line) plus one read chunk: the size cap holds
  // before anything is allocated, whatever length a peer announces. The buffer grows
  // geometrically (a large frame is not copied once a read), but not past that bound,
  // which the vector's own doubling would overshoot.
  const std::size_t want = end_ + read_chunk;
  if (buffer_.size() < want) {
    if (buffer_.capacity() < want) {
      const std::size_t bound = max_ > SIZE_MAX - header_size - read_chunk
                                    ? SIZE_MAX
                                    : max_ + header_size + read_chunk;
      const std::size_t doubled = buffer_.capacity() > SIZE_MAX / 2 ? SIZE_MAX : 2 * buffer_.capacity();
      buffer_.reserve(std::max(want, std::min(doubled, bound)));
    }
    buffer_.resize(want);
  }
  return {buffer_.data() + end_, buffer_.size() - end_};
}

void frame_decoder::commit(std::size_t bytes) { end_ += bytes; }

void frame_decoder::consume(std::size_t bytes) {
  begin_ += bytes;
  offset_ += bytes;
  if (begin_ == end_) begin_ = end_ = 0;
}

decoded frame_decoder::next() {
  return mode_ == framing::newline ? next_line() : next_length_prefixed();
}

decoded frame_decoder::next_length_prefixed() {
  if (skipping_ > 0) {
    const auto dropped = static_cast<std::size_t>(std::min<std::uint64_t>(skipping_, buffered()));
    consume(dropped);
    skipping_ -= dropped;
    if (skipping_ > 0) return {};
  }
  if (buffered() < header_size) return {};
  const std::uint32_t length = read_be32(buffer_.data() + begin_);
  if (length > max_) {
    const std::uint64_t at = offset_;
    consume(header_size);
    skipping_ = length;
    return too_large(length, max_, at);
  }
  if (buffered() < header_size + length) return {};
  const std::uint64_t at = offset_ + header_size;
  auto result = parse_json_text({buffer_.data() + begin_ + header_size, length}, at);
  consume(header_size + length);
  return result;
}

decoded frame_decoder::next_line() {
  for (;;) {
    const char* start = buffer_.data() + begin_;
    // memchr on an empty buffer: start may be null (a vector not yet allocated), which
    // memchr does not allow even for a length of 0.
    const char* newline =
        buffered() == 0 ? nullptr : static_cast<const char*>(std::memchr(start, '\n', buffered()));
    if (discarding_line_) {
      if (!newline) {
        consume(buffered());
        return {};
      }
      consume(static_cast<std::size_t>(newline - start) + 1);
      discarding_line_ = false;
      continue;
    }
    // A line over the cap is refused whatever it holds, blank or not, and its length is
    // not reported: the verdict must be the same whether its end has arrived or not.
    if (!newline) {
      if (buffered() <= max_) return {};
      const std::uint64_t at = offset_;
      consume(buffered());
      discarding_line_ = true;  // the rest of the line is dropped as it arrives
      return line_too_long(max_, at);
    }
    const auto length = static_cast<std::size_t>(newline - start);
    const std::uint64_t at = offset_;
    if (length > max_) {
      consume(length + 1);
      return line_too_long(max_, at);
    }
    std::string_view line(start, length);
    if (!line.empty() && line.back() == '\r') line.remove_suffix(1);
    if (line.find_first_not_of(" \t\r") == std::string_view::npos) {  // blank lines are no message
      consume(length + 1);
      continue;
    }
    decoded result = parse_json_text(line, at);
    consume(length + 1);
    return result;
  }
}

error_code frame_decoder::at_end() const {
  const bool inside_message = skipping_ > 0 || discarding_line_ ||
                              (mode_ == framing::newline
                                   ? std::string_view(buffer_.data() + begin_, buffered())
                                             .find_first_not_of(" \t\r\n") != std::string_view::npos
                                   : buffered() > 0);
  if (inside_message) return message::errc::unexpected_eof;
  return boost::asio::error::eof;
}

std::string encode_message(const nlohmann::json& message, framing mode, std::size_t max,
                           error_code& ec) {
  ec.clear();
  std::string text = mode == framing::length_prefixed ? std::string(header_size, '\0') : std::string();
  try {
    text += message.dump();
  } catch (const nlohmann::json::type_error&) {
    // A string that is not UTF-8 (type_error.316): the caller's value, refused as such
    // instead of an exception the error_code form promises not to throw.
    ec = ipckit::errc::invalid_argument;
    return {};
  }
  const std::size_t length = text.size() - (mode == framing::length_prefixed ? header_size : 0);
  if (length > max) {
    ec = ipckit::errc::message_too_large;
    return {};
  }
  if (mode == framing::length_prefixed) {
    for (int i = 0; i < 4; ++i) text[static_cast<std::size_t>(i)] = static_cast<char>((length >> (24 - 8 * i)) & 0xff);
  } else if (mode == framing::newline) {
    text += '\n';  // dump() escapes control characters, so the text holds no newline
  }
  return text;
}

}  // namespace ipckit::detail
