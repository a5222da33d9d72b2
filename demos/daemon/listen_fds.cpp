#include "listen_fds.hpp"

#include <cerrno>
#include <charconv>
#include <cstdlib>
#include <cstring>
#include <fcntl.h>
#include <string_view>
#include <unistd.h>

namespace daemon_demo {

namespace {

int parse_positive(const char* text) {
  if (text == nullptr) return -1;
  const std::string_view s(text);
  int value = -1;
  auto [end, ec] = std::from_chars(s.data(), s.data() + s.size(), value);
  return ec == std::errc() && end == s.data() + s.size() && value > 0 ? value : -1;
}

}  // namespace

std::vector<ipckit::unique_fd> listen_fds() {
  const int pid = parse_positive(std::getenv("LISTEN_PID"));
  const int count = parse_positive(std::getenv("LISTEN_FDS"));
  ::unsetenv("LISTEN_PID");
  ::unsetenv("LISTEN_FDS");
  ::unsetenv("LISTEN_FDNAMES");

  std::vector<ipckit::unique_fd> fds;
  if (pid != ::getpid() || count <= 0) return fds;
  for (int fd = listen_fds_start; fd < listen_fds_start + count; ++fd) {
    // Inherited fds cannot be close-on-exec (exec would have closed them): set it now.
    if (::fcntl(fd, F_SETFD, FD_CLOEXEC) != 0) continue;
    fds.emplace_back(fd);
  }
  return fds;
}

void exec_with_listen_pid(const std::vector<std::string>& argv, std::string& error) {
  const std::string pid = std::to_string(::getpid());
  ::setenv("LISTEN_PID", pid.c_str(), 1);
  std::vector<char*> args;
  for (const auto& a : argv) args.push_back(const_cast<char*>(a.c_str()));
  args.push_back(nullptr);
  ::execv(args[0], args.data());
  error = "exec " + argv[0] + ": " + std::strerror(errno);
}

}  // namespace daemon_demo
