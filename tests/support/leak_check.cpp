#include "leak_check.hpp"

#include <algorithm>
#include <cerrno>
#include <climits>
#include <dirent.h>
#include <fstream>
#include <sstream>
#include <thread>
#include <unistd.h>

namespace ipckit::test {
namespace {

std::string link_target(int dir_fd, const char* name) {
  char target[PATH_MAX];
  const ssize_t n = ::readlinkat(dir_fd, name, target, sizeof target - 1);
  return n < 0 ? std::string("?") : std::string(target, static_cast<std::size_t>(n));
}

std::map<int, std::string> open_fds() {
  std::map<int, std::string> fds;
  DIR* dir = ::opendir("/proc/self/fd");
  if (!dir) return fds;
  const int own = ::dirfd(dir);  // the listing's own descriptor is not the test's
  while (const dirent* entry = ::readdir(dir)) {
    if (entry->d_name[0] == '.') continue;
    const int fd = std::atoi(entry->d_name);
    if (fd == own) continue;
    fds.emplace(fd, link_target(own, entry->d_name));
  }
  ::closedir(dir);
  return fds;
}

std::set<int> child_pids() {
  std::set<int> pids;
  DIR* tasks = ::opendir("/proc/self/task");
  if (!tasks) return pids;
  while (const dirent* task = ::readdir(tasks)) {
    if (task->d_name[0] == '.') continue;
    // A thread that exits between readdir and open has no children left to list.
    std::ifstream list(std::string("/proc/self/task/") + task->d_name + "/children");
    for (int pid; list >> pid;) pids.insert(pid);
  }
  ::closedir(tasks);
  return pids;
}

// "ipckit_helper, Z": the child's name and state, to say what was left behind.
std::string describe_child(int pid) {
  std::ifstream stat("/proc/" + std::to_string(pid) + "/stat");
  std::string line;
  std::getline(stat, line);
  const auto open = line.find('('), close = line.rfind(')');
  if (open == std::string::npos || close == std::string::npos || close + 2 >= line.size())
    return "gone";
  return line.substr(open + 1, close - open - 1) + ", " + line.substr(close + 2, 1);
}

bool same(const process_resources& a, const process_resources& b) {
  // An fd number reused for something else is as much a leak as a new number.
  return a.fds == b.fds && a.children == b.children;
}

}  // namespace

process_resources process_resources::now() { return {open_fds(), child_pids()}; }

std::string describe_leaks(const process_resources& before, const process_resources& after) {
  std::ostringstream out;
  for (const auto& [fd, target] : after.fds) {
    auto was = before.fds.find(fd);
    if (was == before.fds.end()) out << "  fd " << fd << " -> " << target << " left open\n";
    else if (was->second != target)
      out << "  fd " << fd << " -> " << target << " (was " << was->second << ")\n";
  }
  for (const auto& [fd, target] : before.fds)
    if (!after.fds.contains(fd)) out << "  fd " << fd << " -> " << target << " closed by the test\n";
  for (int pid : after.children)
    if (!before.children.contains(pid))
      out << "  child " << pid << " (" << describe_child(pid) << ") not reaped\n";
  return out.str();
}

void leak_check::OnTestStart(const ::testing::TestInfo&) { before_ = process_resources::now(); }

void leak_check::OnTestEnd(const ::testing::TestInfo&) {
  // A child reaped by a pidfd completion or a descriptor closed on a worker thread may
  // still be on its way: poll (with a deadline) until the counts settle.
  const auto deadline = std::chrono::steady_clock::now() + settle_;
  auto after = process_resources::now();
  for (auto pause = std::chrono::microseconds(100);
       !same(before_, after) && std::chrono::steady_clock::now() < deadline;
       pause = std::min(pause * 2, std::chrono::microseconds(20000))) {
    std::this_thread::sleep_for(pause);
    after = process_resources::now();
  }
  const std::string leaks = describe_leaks(before_, after);
  EXPECT_TRUE(leaks.empty()) << "the test left resources behind (fds: " << before_.fds.size()
                             << " before, " << after.fds.size() << " after; children: "
                             << before_.children.size() << " before, " << after.children.size()
                             << " after):\n"
                             << leaks;
}

}  // namespace ipckit::test
