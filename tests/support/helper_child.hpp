// The one helper child every multi-process test starts: `ipckit_helper MODE ARGS…`.
// Modes register themselves from helper_modes_<area>.cpp files, so each module's tests
// add the modes they need in a file of their own.
#pragma once

#include <functional>
#include <span>
#include <string>
#include <string_view>

namespace ipckit::test {

struct helper_mode {
  std::string_view name;
  std::string_view usage;  ///< "exit CODE"
  std::function<int(std::span<const std::string> args)> run;
};

struct helper_mode_registration {
  explicit helper_mode_registration(helper_mode mode);
};

}  // namespace ipckit::test
