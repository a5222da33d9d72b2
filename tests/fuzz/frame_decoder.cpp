// Fuzz target: the JSON frame decoder. The same stream is decoded whole and in the
// chunking the input describes; the messages, errors and end-of-stream verdict must be
// the same, and the decoder may hold no more than one frame (or line) and one read, nor
// allocate more than that. Each message decoded encodes to text that decodes to it. Input: MODE_AND_CAP, COUNT, COUNT chunk sizes, then the stream.
#include "fuzz_check.hpp"

#include <ipckit/detail/frame_decoder.hpp>
#include <ipckit/error.hpp>

#include <boost/asio/error.hpp>

#include <algorithm>
#include <string>
#include <vector>

using ipckit::framing;
using ipckit::detail::decoded;
using ipckit::detail::frame_decoder;

namespace {

constexpr std::size_t caps[] = {0, 1, 2, 3, 5, 8, 16, 31, 100, 1000};
constexpr std::size_t header_size = 4;
constexpr std::size_t read_chunk = 64 * 1024;  // what prepare() offers at least

struct outcome {
  decoded::status state;
  std::string text;  // the message as JSON, or the error and its detail
  bool operator==(const outcome&) const = default;
};

struct result {
  std::vector<outcome> outcomes;
  ipckit::error_code at_end;
};

// What encode_message makes of a decoded message decodes back to it (unless re-encoding
// made it longer than the cap: "1E2" prints as "100.0").
void check_round_trip(framing mode, std::size_t cap, const nlohmann::json& message) {
  ipckit::error_code ec;
  const std::string text = ipckit::detail::encode_message(message, mode, cap, ec);
  if (ec) {
    FUZZ_CHECK(ec == ipckit::errc::message_too_large);
    return;
  }
  frame_decoder decoder(mode, cap);
  const std::span<char> space = decoder.prepare();
  FUZZ_CHECK(space.size() >= text.size());
  std::copy(text.begin(), text.end(), space.data());
  decoder.commit(text.size());
  const decoded again = decoder.next();
  FUZZ_CHECK(again.state == decoded::status::message);
  FUZZ_CHECK(again.message == message);
  FUZZ_CHECK(decoder.next().state == decoded::status::need_more);
  FUZZ_CHECK(decoder.at_end() == boost::asio::error::eof);
}

// Feeds `stream` in pieces of the sizes in `chunks` (cycled; 0 = all that fits), taking
// every message after each piece, as json_channel does.
result decode(framing mode, std::size_t cap, std::string_view stream,
              std::string_view chunks) {
  frame_decoder decoder(mode, cap);
  result out;
  std::size_t at = 0, piece = 0;
  for (;;) {
    for (decoded next = decoder.next(); next.state != decoded::status::need_more;
         next = decoder.next()) {
      if (next.state == decoded::status::message) {
        out.outcomes.push_back({next.state, next.message.dump()});
        check_round_trip(mode, cap, next.message);
      } else {
        FUZZ_CHECK(next.ec);
        out.outcomes.push_back({next.state, next.ec.message() + ": " + next.detail});
      }
    }
    // Between reads it keeps at most an incomplete frame (or line) within the cap.
    const std::size_t most = mode == framing::newline ? cap : cap + header_size - 1;
    FUZZ_CHECK(decoder.buffered() <= most);
    if (at == stream.size()) break;
    const std::span<char> space = decoder.prepare();
    FUZZ_CHECK(!space.empty());
    FUZZ_CHECK(decoder.allocated() <= cap + header_size + read_chunk);
    std::size_t n = std::min(space.size(), stream.size() - at);
    if (!chunks.empty()) {
      const auto want = static_cast<unsigned char>(chunks[piece++ % chunks.size()]);
      if (want != 0) n = std::min<std::size_t>(n, want);
    }
    std::copy_n(stream.data() + at, n, space.data());
    decoder.commit(n);
    at += n;
  }
  out.at_end = decoder.at_end();
  return out;
}

}  // namespace

extern "C" int LLVMFuzzerTestOneInput(const std::uint8_t* data, std::size_t size) {
  ipckit::fuzz::input in(data, size);
  const std::uint8_t mode_and_cap = in.byte();
  const framing mode = (mode_and_cap & 1) != 0 ? framing::newline : framing::length_prefixed;
  const std::size_t cap = caps[(mode_and_cap >> 1) % std::size(caps)];
  const std::string_view chunks = in.bytes(in.byte() % 16);
  const std::string_view stream = in.rest();

  const result whole = decode(mode, cap, stream, {});
  const result pieces = decode(mode, cap, stream, chunks);
  const result bytes = decode(mode, cap, stream, std::string_view("\1", 1));
  FUZZ_CHECK(pieces.outcomes == whole.outcomes);
  FUZZ_CHECK(bytes.outcomes == whole.outcomes);
  FUZZ_CHECK(pieces.at_end == whole.at_end && bytes.at_end == whole.at_end);
  return 0;
}
