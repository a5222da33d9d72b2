// Durations written as Go writes them: "200ms", "1.5s", "2m", "1h30m", "300us".
#pragma once

#include <ipckit/error.hpp>

#include <chrono>
#include <string>
#include <string_view>

namespace ipckit {

/// Go's time.ParseDuration: a signed sequence of decimal numbers, each with an optional
/// fraction and a unit ("ns", "us", "µs", "ms", "s", "m", "h"); "0" alone is allowed.
/// A malformed text is errc::invalid_argument.
std::chrono::nanoseconds parse_duration(std::string_view text, error_code& ec);
std::chrono::nanoseconds parse_duration(std::string_view text);

/// Go's Duration.String(): "1.5s", "2m0s", "200ms", "0s".
std::string format_duration(std::chrono::nanoseconds duration);

}  // namespace ipckit
