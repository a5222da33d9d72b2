// The leak check every test runs under: after each test, this process's open file
// descriptors and its children must be what they were before it, so a leak fails the
// test that caused it (not a later one, and not silently).
#pragma once

#include <gtest/gtest.h>

#include <chrono>
#include <map>
#include <set>
#include <string>

namespace ipckit::test {

/// What the check compares: open fds (number -> what /proc says it is) and child pids
/// (of every thread of this process, zombies included).
struct process_resources {
  std::map<int, std::string> fds;
  std::set<int> children;
  static process_resources now();
};

/// Describes what `after` holds that `before` did not ("fd 7 -> socket:[123]",
/// "child 42 (ipckit_helper, Z)"); empty when nothing leaked.
std::string describe_leaks(const process_resources& before, const process_resources& after);

/// The gtest listener: snapshot at OnTestStart, compare at OnTestEnd (after the fixture
/// is destroyed). Work that finishes asynchronously (a child reaped on another thread, a
/// descriptor closed by a completion) gets up to `settle` to finish; the check polls
/// until then and fails the test with the list of what is still left.
class leak_check : public ::testing::EmptyTestEventListener {
 public:
  explicit leak_check(std::chrono::milliseconds settle = std::chrono::seconds(2)) : settle_(settle) {}
  void OnTestStart(const ::testing::TestInfo& test) override;
  void OnTestEnd(const ::testing::TestInfo& test) override;

 private:
  std::chrono::milliseconds settle_;
  process_resources before_;
};

}  // namespace ipckit::test
