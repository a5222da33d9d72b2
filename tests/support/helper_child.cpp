#include "helper_child.hpp"

#include <iostream>
#include <vector>

namespace ipckit::test {
namespace {

std::vector<helper_mode>& modes() {
  static std::vector<helper_mode> registered;
  return registered;
}

}  // namespace

helper_mode_registration::helper_mode_registration(helper_mode mode) {
  modes().push_back(std::move(mode));
}

}  // namespace ipckit::test

int main(int argc, char** argv) {
  using ipckit::test::modes;
  std::vector<std::string> args(argv + 1, argv + argc);
  if (!args.empty()) {
    for (const auto& mode : modes())
      if (mode.name == args[0]) return mode.run(std::span<const std::string>(args).subspan(1));
  }
  std::cerr << "usage: ipckit_helper MODE ARGS…\nmodes:\n";
  for (const auto& mode : modes()) std::cerr << "  " << mode.usage << '\n';
  return 2;
}
