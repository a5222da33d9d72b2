// The leak check itself (tests/support/leak_check.hpp): what it reports, so that a
// check that silently saw nothing would fail here.
#include "leak_check.hpp"
#include "test_support.hpp"

#include <fcntl.h>
#include <poll.h>
#include <sys/syscall.h>
#include <unistd.h>

namespace {

using ipckit::test::describe_leaks;
using ipckit::test::process_resources;

TEST(leak_check, reports_an_fd_left_open) {
  const auto before = process_resources::now();
  const int fd = ::open("/dev/null", O_RDONLY | O_CLOEXEC);
  ASSERT_GE(fd, 0);
  const std::string leaks = describe_leaks(before, process_resources::now());
  ::close(fd);
  EXPECT_NE(leaks.find("fd " + std::to_string(fd) + " -> /dev/null left open"), std::string::npos)
      << leaks;
  EXPECT_EQ(describe_leaks(before, process_resources::now()), "");
}

TEST(leak_check, reports_a_child_not_reaped) {
  const auto before = process_resources::now();
  std::string leaks;
  {
    ipckit::test::peer_process child({ipckit::test::helper_path(), "exit", "0"});
    // Wait for it to exit, without reaping it: a zombie is still a child.
    const int pidfd = static_cast<int>(::syscall(SYS_pidfd_open, child.pid(), 0));
    pollfd exited{pidfd, POLLIN, 0};
    ASSERT_EQ(::poll(&exited, 1, 10000), 1);
    ::close(pidfd);
    auto during = process_resources::now();
    during.fds = before.fds;  // the child's pipes are not the point here
    leaks = describe_leaks(before, during);
    EXPECT_NE(leaks.find("child " + std::to_string(child.pid()) + " (ipckit_helper, Z) not reaped"),
              std::string::npos)
        << leaks;
  }  // reaped here
  EXPECT_EQ(describe_leaks(before, process_resources::now()), "");
}


}  // namespace
