// Shared by the process tests.
#pragma once

#include "test_support.hpp"

#include <ipckit/process.hpp>

#include <filesystem>
#include <fstream>
#include <string>

namespace process_test {

// Children of this process that are still around (zombies included), from every thread.
inline std::size_t child_count() {
  std::size_t count = 0;
  for (const auto& task : std::filesystem::directory_iterator("/proc/self/task")) {
    std::ifstream children(task.path() / "children");
    for (std::string pid; children >> pid;) ++count;
  }
  return count;
}

inline std::string trim(std::string text) {
  while (!text.empty() && (text.back() == '\n' || text.back() == ' ')) text.pop_back();
  return text;
}

}  // namespace process_test
