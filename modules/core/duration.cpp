// Go's time.ParseDuration and Duration.String, case for case.
#include <ipckit/duration.hpp>

#include <cstdint>
#include <limits>

namespace ipckit {
namespace {

constexpr std::int64_t nanosecond = 1;
constexpr std::int64_t microsecond = 1000 * nanosecond;
constexpr std::int64_t millisecond = 1000 * microsecond;
constexpr std::int64_t second = 1000 * millisecond;
constexpr std::int64_t minute = 60 * second;
constexpr std::int64_t hour = 60 * minute;

std::int64_t unit_size(std::string_view unit) {
  if (unit == "ns") return nanosecond;
  if (unit == "us" || unit == "\u00b5s" || unit == "\u03bcs") return microsecond;
  if (unit == "ms") return millisecond;
  if (unit == "s") return second;
  if (unit == "m") return minute;
  if (unit == "h") return hour;
  return 0;
}

bool is_digit(char c) { return c >= '0' && c <= '9'; }

// Prints v / 10^precision with the fraction's trailing zeros dropped (Go's fmtFrac+fmtInt).
std::string with_fraction(std::uint64_t v, int precision) {
  std::string fraction;
  bool significant = false;
  for (int i = 0; i < precision; ++i) {
    const auto digit = static_cast<char>('0' + v % 10);
    significant = significant || digit != '0';
    if (significant) fraction.insert(fraction.begin(), digit);
    v /= 10;
  }
  std::string text = std::to_string(v);
  if (!fraction.empty()) text += "." + fraction;
  return text;
}

}  // namespace

std::chrono::nanoseconds parse_duration(std::string_view text, error_code& ec) {
  ec.clear();
  auto fail = [&ec] {
    ec = make_error_code(errc::invalid_argument);
    return std::chrono::nanoseconds{0};
  };
  bool negative = false;
  if (!text.empty() && (text[0] == '-' || text[0] == '+')) {
    negative = text[0] == '-';
    text.remove_prefix(1);
  }
  if (text == "0") return std::chrono::nanoseconds{0};
  if (text.empty()) return fail();

  // Go accumulates magnitudes up to 2^63 so that the most negative duration parses.
  constexpr std::uint64_t limit = std::uint64_t{1} << 63;
  std::uint64_t total = 0;
  while (!text.empty()) {
    std::uint64_t whole = 0;
    std::size_t i = 0;
    for (; i < text.size() && is_digit(text[i]); ++i) {
      if (whole > limit / 10) return fail();
      whole = whole * 10 + static_cast<std::uint64_t>(text[i] - '0');
      if (whole > limit) return fail();
    }
    const bool had_whole = i > 0;
    text.remove_prefix(i);
    std::uint64_t fraction = 0;
    double fraction_scale = 1;
    bool had_fraction = false;
    if (!text.empty() && text[0] == '.') {
      text.remove_prefix(1);
      bool overflowed = false;
      for (i = 0; i < text.size() && is_digit(text[i]); ++i) {
        if (overflowed) continue;  // digits beyond precision are dropped, as in Go
        if (fraction > (limit - 1) / 10) {
          overflowed = true;
          continue;
        }
        fraction = fraction * 10 + static_cast<std::uint64_t>(text[i] - '0');
        fraction_scale *= 10;
      }
      had_fraction = i > 0;
      text.remove_prefix(i);
    }
    if (!had_whole && !had_fraction) return fail();
    std::size_t unit_end = 0;
    while (unit_end < text.size() && text[unit_end] != '.' && !is_digit(text[unit_end])) ++unit_end;
    if (unit_end == 0) return fail();  // Go: missing unit in duration
    const std::int64_t unit = unit_size(text.substr(0, unit_end));
    if (unit == 0) return fail();  // Go: unknown unit in duration
    text.remove_prefix(unit_end);
    const auto unit_u = static_cast<std::uint64_t>(unit);
    if (whole > limit / unit_u) return fail();
    std::uint64_t value = whole * unit_u;
    if (fraction > 0) {
      value += static_cast<std::uint64_t>(static_cast<double>(fraction) *
                                          (static_cast<double>(unit) / fraction_scale));
      if (value > limit) return fail();
    }
    total += value;
    if (total > limit) return fail();
  }
  if (negative) return std::chrono::nanoseconds{static_cast<std::int64_t>(0 - total)};
  if (total > limit - 1) return fail();
  return std::chrono::nanoseconds{static_cast<std::int64_t>(total)};
}

std::chrono::nanoseconds parse_duration(std::string_view text) {
  error_code ec;
  auto duration = parse_duration(text, ec);
  if (ec) throw_error(ec, {"time", "", "", "duration \"" + std::string(text) + "\"", ""});
  return duration;
}

std::string format_duration(std::chrono::nanoseconds duration) {
  const std::int64_t count = duration.count();
  if (count == 0) return "0s";
  const bool negative = count < 0;
  // Unsigned so that the most negative value still has a magnitude.
  std::uint64_t u = negative ? 0 - static_cast<std::uint64_t>(count) : static_cast<std::uint64_t>(count);
  std::string text;
  if (u < static_cast<std::uint64_t>(second)) {
    if (u < static_cast<std::uint64_t>(microsecond)) {
      text = std::to_string(u) + "ns";
    } else if (u < static_cast<std::uint64_t>(millisecond)) {
      text = with_fraction(u, 3) + "\u00b5s";
    } else {
      text = with_fraction(u, 6) + "ms";
    }
  } else {
    const std::uint64_t seconds_part = u % static_cast<std::uint64_t>(minute);
    text = with_fraction(seconds_part, 9) + "s";
    u /= static_cast<std::uint64_t>(minute);
    if (u > 0) {
      text = std::to_string(u % 60) + "m" + text;
      u /= 60;
      if (u > 0) text = std::to_string(u) + "h" + text;
    }
  }
  return negative ? "-" + text : text;
}

}  // namespace ipckit
