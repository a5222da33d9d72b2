#include <ipckit/duration.hpp>

#include <gtest/gtest.h>

namespace {

using namespace std::chrono_literals;
using std::chrono::nanoseconds;

// Cases from Go's time package tests (parseDurationTests, durationTests).
TEST(duration, parses_go_durations) {
  struct row {
    const char* text;
    nanoseconds want;
  } const table[] = {
      // simple
      {"0", 0ns}, {"5s", 5s}, {"30s", 30s}, {"1478s", 1478s},
      // sign
      {"-5s", -5s}, {"+5s", 5s}, {"-0", 0ns}, {"+0", 0ns},
      // decimal
      {"5.0s", 5s}, {"5.6s", 5s + 600ms}, {"5.s", 5s}, {".5s", 500ms}, {"1.0s", 1s},
      {"1.00s", 1s}, {"1.004s", 1s + 4ms}, {"1.0040s", 1s + 4ms}, {"100.00100s", 100s + 1ms},
      // every unit
      {"10ns", 10ns}, {"11us", 11us}, {"12\u00b5s", 12us}, {"12\u03bcs", 12us}, {"13ms", 13ms},
      {"14s", 14s}, {"15m", 15min}, {"16h", 16h},
      // composite
      {"3h30m", 3h + 30min}, {"10.5s4m", 4min + 10s + 500ms}, {"-2m3.4s", -(2min + 3s + 400ms)},
      {"1h2m3s4ms5us6ns", 1h + 2min + 3s + 4ms + 5us + 6ns}, {"39h9m14.425s", 39h + 9min + 14s + 425ms},
      // large
      {"52763797000ns", 52763797000ns}, {"0.3333333333333333333h", 20min},
      {"9223372036854775807ns", nanoseconds::max()},
  };
  for (const auto& r : table) {
    ipckit::error_code ec;
    EXPECT_EQ(ipckit::parse_duration(r.text, ec), r.want) << r.text;
    EXPECT_FALSE(ec) << r.text;
  }
}

TEST(duration, rejects_malformed) {
  for (const char* text : {"", "3", "-", "s", ".", "-.", ".s", "+.s", "1d", "\x85\x85",
                           "9223372036854775810ns", "9223372036854775808ns", "3000000h"}) {
    ipckit::error_code ec;
    ipckit::parse_duration(text, ec);
    EXPECT_EQ(ec, ipckit::errc::invalid_argument) << text;
    EXPECT_THROW(ipckit::parse_duration(text), ipckit::system_error) << text;
  }
}

TEST(duration, formats_like_go) {
  struct row {
    nanoseconds value;
    const char* want;
  } const table[] = {
      {0ns, "0s"}, {1ns, "1ns"}, {1100ns, "1.1\u00b5s"}, {2200us, "2.2ms"}, {3300ms, "3.3s"},
      {4min + 5s, "4m5s"}, {4min + 5001ms, "4m5.001s"}, {5h + 6min + 7001ms, "5h6m7.001s"},
      {8min + 1ns, "8m0.000000001s"}, {2min, "2m0s"}, {200ms, "200ms"}, {1500ms, "1.5s"},
      {-1500ms, "-1.5s"}, {nanoseconds::max(), "2562047h47m16.854775807s"},
      {nanoseconds::min(), "-2562047h47m16.854775808s"},
  };
  for (const auto& r : table) EXPECT_EQ(ipckit::format_duration(r.value), r.want);
}

}  // namespace
