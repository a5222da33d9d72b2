// Replays one fuzz target's seed corpus and the reproducers of its past findings as an
// ordinary test, so that every build (the sanitizer one too) checks them. The fuzzing
// itself is tests/fuzz/run (clang, libFuzzer). A failed check aborts with its message.
#include "fuzz_check.hpp"

#include <gtest/gtest.h>

#include <algorithm>
#include <filesystem>
#include <fstream>
#include <iterator>
#include <string>
#include <vector>

namespace {

namespace fs = std::filesystem;

std::vector<fs::path> inputs_in(const fs::path& folder) {
  std::vector<fs::path> files;
  if (fs::is_directory(folder))
    for (const auto& entry : fs::directory_iterator(folder))
      if (entry.is_regular_file()) files.push_back(entry.path());
  std::sort(files.begin(), files.end());
  return files;
}

void replay(const fs::path& file) {
  std::ifstream in(file, std::ios::binary);
  ASSERT_TRUE(in) << file;
  const std::vector<char> bytes((std::istreambuf_iterator<char>(in)), std::istreambuf_iterator<char>());
  std::fprintf(stderr, "replay %s (%zu bytes)\n", file.c_str(), bytes.size());
  LLVMFuzzerTestOneInput(reinterpret_cast<const std::uint8_t*>(bytes.data()), bytes.size());
}

const fs::path fuzz_dir = IPCKIT_FUZZ_DIR;

TEST(fuzz_replay, seed_corpus) {
  const auto files = inputs_in(fuzz_dir / "corpus" / IPCKIT_FUZZ_TARGET);
  EXPECT_GE(files.size(), 20u) << "the seed corpus of " << IPCKIT_FUZZ_TARGET << " is missing";
  for (const auto& file : files) replay(file);
}

TEST(fuzz_replay, crash_reproducers) {
  for (const auto& file : inputs_in(fuzz_dir / "crashes" / IPCKIT_FUZZ_TARGET)) replay(file);
}

}  // namespace
