// The framing state machine alone: chunking independence, size caps, recovery.
#include <ipckit/detail/frame_decoder.hpp>
#include <ipckit/message.hpp>

#include <gtest/gtest.h>

#include <random>

namespace {

using ipckit::framing;
using ipckit::detail::decoded;
using ipckit::detail::frame_decoder;

struct outcome {
  bool is_message;
  std::string text;  // message dump, or the error's message
  bool operator==(const outcome&) const = default;
};

// Feeds `stream` in pieces whose sizes come from `rng` (0 = everything at once).
std::vector<outcome> decode_all(framing mode, std::size_t max, const std::string& stream, unsigned seed) {
  frame_decoder decoder(mode, max);
  std::mt19937 rng(seed);
  std::vector<outcome> out;
  std::size_t at = 0;
  for (;;) {
    decoded next = decoder.next();
    if (next.state == decoded::status::message) {
      out.push_back({true, next.message.dump()});
      continue;
    }
    if (next.state == decoded::status::error) {
      out.push_back({false, next.ec.message()});
      continue;
    }
    if (at == stream.size()) break;
    auto space = decoder.prepare();
    std::size_t n = std::min(space.size(), stream.size() - at);
    if (seed != 0) n = std::min<std::size_t>(n, 1 + rng() % 7);
    std::copy_n(stream.data() + at, n, space.data());
    decoder.commit(n);
    at += n;
  }
  return out;
}

std::string frame(std::string_view json) {
  std::string header(4, '\0');
  for (int i = 0; i < 4; ++i) header[static_cast<std::size_t>(i)] = static_cast<char>((json.size() >> (24 - 8 * i)) & 0xff);
  return header + std::string(json);
}

TEST(frame_decoder, length_prefixed_result_does_not_depend_on_chunking) {
  const std::string stream = frame(R"({"a":1})") + frame("[1,2") + frame(R"("text")") +
                             frame(std::string(40, ' ') + "7") + frame(R"({"b":[true,null]})");
  auto whole = decode_all(framing::length_prefixed, 1024, stream, 0);
  ASSERT_EQ(whole.size(), 5u);
  EXPECT_EQ(whole[0], (outcome{true, R"({"a":1})"}));
  EXPECT_EQ(whole[1], (outcome{false, "malformed JSON"}));
  EXPECT_EQ(whole[3], (outcome{true, "7"}));
  for (unsigned seed = 1; seed < 50; ++seed)
    EXPECT_EQ(decode_all(framing::length_prefixed, 1024, stream, seed), whole) << "seed " << seed;
}

TEST(frame_decoder, newline_result_does_not_depend_on_chunking_and_survives_bad_lines) {
  const std::string stream = "{\"a\":1}\n\nnot json\r\n[1,2,3]\n   \n{\"z\":\"\\n\"}\n";
  auto whole = decode_all(framing::newline, 1024, stream, 0);
  ASSERT_EQ(whole.size(), 4u);
  EXPECT_FALSE(whole[1].is_message);
  EXPECT_EQ(whole[2], (outcome{true, "[1,2,3]"}));
  EXPECT_EQ(whole[3], (outcome{true, R"({"z":"\n"})"}));
  for (unsigned seed = 1; seed < 50; ++seed)
    EXPECT_EQ(decode_all(framing::newline, 1024, stream, seed), whole) << "seed " << seed;
}

TEST(frame_decoder, announced_length_over_the_cap_is_refused_before_allocation_and_skipped) {
  frame_decoder decoder(framing::length_prefixed, 1024);
  // The peer announces 4 GiB - 1 bytes; only 10 follow before a good frame.
  std::string stream = "\xff\xff\xff\xff" + std::string(10, 'x');
  auto space = decoder.prepare();
  std::copy(stream.begin(), stream.end(), space.data());
  decoder.commit(stream.size());
  decoded first = decoder.next();
  ASSERT_EQ(first.state, decoded::status::error);
  EXPECT_EQ(first.ec, ipckit::errc::message_too_large);
  EXPECT_NE(first.detail.find("4294967295 bytes"), std::string::npos) << first.detail;
  EXPECT_LE(decoder.buffered(), 10u);
  EXPECT_EQ(decoder.next().state, decoded::status::need_more);
  EXPECT_EQ(decoder.at_end(), ipckit::message::errc::unexpected_eof);  // inside the skipped frame
}

TEST(frame_decoder, a_long_line_is_refused_and_the_next_line_decodes) {
  const std::string stream = std::string(5000, 'x') + "\n{\"ok\":true}\n";
  auto whole = decode_all(framing::newline, 100, stream, 0);
  ASSERT_EQ(whole.size(), 2u);
  EXPECT_EQ(whole[0], (outcome{false, "message too large"}));
  EXPECT_EQ(whole[1], (outcome{true, R"({"ok":true})"}));
}

// Found by the fuzzer (tests/fuzz/crashes/frame_decoder/): nlohmann throws out_of_range,
// not parse_error, for a number past double's range, and it escaped next().
TEST(frame_decoder, a_number_out_of_range_is_malformed_json_and_the_stream_goes_on) {
  for (const framing mode : {framing::newline, framing::length_prefixed}) {
    const std::string stream = mode == framing::newline ? "1e400\n[-1e999]\n2\n"
                                                        : frame("1e400") + frame("[-1e999]") + frame("2");
    frame_decoder decoder(mode, 1024);
    auto space = decoder.prepare();
    std::copy(stream.begin(), stream.end(), space.data());
    decoder.commit(stream.size());
    for (int i = 0; i < 2; ++i) {
      decoded bad = decoder.next();
      ASSERT_EQ(bad.state, decoded::status::error);
      EXPECT_EQ(bad.ec, ipckit::message::errc::malformed_json);
      EXPECT_NE(bad.detail.find("number overflow"), std::string::npos) << bad.detail;
    }
    decoded good = decoder.next();
    ASSERT_EQ(good.state, decoded::status::message);
    EXPECT_EQ(good.message, 2);
  }
}

TEST(frame_decoder, a_line_over_the_cap_is_refused_in_any_chunking_even_when_blank) {
  // Blank and over the cap: skipped when it came whole, refused when it came in pieces.
  const std::string stream = std::string(20, ' ') + "\n" + std::string(30, 'x') + "\n1\n";
  auto whole = decode_all(framing::newline, 8, stream, 0);
  ASSERT_EQ(whole.size(), 3u);
  EXPECT_EQ(whole[0], (outcome{false, "message too large"}));
  EXPECT_EQ(whole[1], (outcome{false, "message too large"}));
  EXPECT_EQ(whole[2], (outcome{true, "1"}));
  for (unsigned seed = 1; seed < 50; ++seed)
    EXPECT_EQ(decode_all(framing::newline, 8, stream, seed), whole) << "seed " << seed;
}

TEST(frame_decoder, allocates_at_most_the_cap_a_header_and_one_read) {
  // A frame of exactly the cap, arriving in small reads: the vector's own doubling
  // allocated up to twice this bound before.
  constexpr std::size_t cap = 150000, read_chunk = 64 * 1024;
  const std::string stream = frame("\"" + std::string(cap - 2, 'a') + "\"");
  frame_decoder decoder(framing::length_prefixed, cap);
  for (std::size_t at = 0; at < stream.size();) {
    ASSERT_EQ(decoder.next().state, decoded::status::need_more);
    auto space = decoder.prepare();
    EXPECT_LE(decoder.allocated(), cap + 4 + read_chunk) << "after " << at << " bytes";
    const std::size_t n = std::min<std::size_t>({space.size(), stream.size() - at, 1000});
    std::copy_n(stream.data() + at, n, space.data());
    decoder.commit(n);
    at += n;
  }
  decoded last = decoder.next();
  ASSERT_EQ(last.state, decoded::status::message);
  EXPECT_EQ(last.message.get<std::string>().size(), cap - 2);
}

TEST(frame_decoder, errors_name_the_stream_offset) {
  frame_decoder decoder(framing::newline, 1024);
  const std::string stream = "{\"a\":1}\n{\"b\":x}\n";
  auto space = decoder.prepare();
  std::copy(stream.begin(), stream.end(), space.data());
  decoder.commit(stream.size());
  EXPECT_EQ(decoder.next().state, decoded::status::message);
  decoded bad = decoder.next();
  ASSERT_EQ(bad.state, decoded::status::error);
  EXPECT_EQ(bad.ec, ipckit::message::errc::malformed_json);
  // "x" is byte 13 of the stream (0-based): the second line starts at 8, x is its 6th byte.
  EXPECT_NE(bad.detail.find("stream offset 13"), std::string::npos) << bad.detail;
}

TEST(frame_decoder, end_of_stream_between_and_inside_messages) {
  frame_decoder between(framing::length_prefixed, 64);
  EXPECT_EQ(between.at_end(), boost::asio::error::eof);
  frame_decoder inside(framing::length_prefixed, 64);
  auto space = inside.prepare();
  space[0] = 0;
  inside.commit(1);
  EXPECT_EQ(inside.at_end(), ipckit::message::errc::unexpected_eof);
}

TEST(frame_decoder, encode_refuses_messages_over_the_cap) {
  ipckit::error_code ec;
  auto text = ipckit::detail::encode_message(std::string(100, 'a'), framing::newline, 50, ec);
  EXPECT_EQ(ec, ipckit::errc::message_too_large);
  EXPECT_TRUE(text.empty());
  text = ipckit::detail::encode_message(std::string("\xff"), framing::newline, 50, ec);
  EXPECT_EQ(ec, ipckit::errc::invalid_argument) << "not UTF-8, and no exception";
  EXPECT_TRUE(text.empty());
  text = ipckit::detail::encode_message({{"k", 1}}, framing::length_prefixed, 50, ec);
  EXPECT_FALSE(ec);
  EXPECT_EQ(text, frame(R"({"k":1})"));
}

}  // namespace
