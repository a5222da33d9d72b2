// Helper child modes for the pipe and process tests.
#include "helper_child.hpp"

#include <ipckit/process.hpp>

#include <boost/asio/io_context.hpp>

#include <algorithm>
#include <csignal>
#include <cstdlib>
#include <dirent.h>
#include <fcntl.h>
#include <iostream>
#include <string>
#include <unistd.h>
#include <vector>

namespace ipckit::test {
namespace {

bool write_fully(int fd, const char* data, std::size_t size) {
  while (size > 0) {
    const ssize_t n = ::write(fd, data, size);
    if (n < 0) return false;
    data += n;
    size -= static_cast<std::size_t>(n);
  }
  return true;
}

// Open fds, without the descriptor used to list them.
std::vector<int> open_fds() {
  std::vector<int> fds;
  DIR* dir = ::opendir("/proc/self/fd");
  if (!dir) return fds;
  const int own = ::dirfd(dir);
  while (dirent* entry = ::readdir(dir)) {
    if (entry->d_name[0] == '.') continue;
    const int fd = std::atoi(entry->d_name);
    if (fd != own) fds.push_back(fd);
  }
  ::closedir(dir);
  std::sort(fds.begin(), fds.end());
  return fds;
}

const helper_mode_registration modes[] = {
    helper_mode_registration{{"write-both", "write-both BYTES  (BYTES to stdout and to stderr, interleaved)",
                              [](auto args) {
      if (args.size() != 1) return 2;
      const std::size_t total = std::stoull(args[0]);
      std::string block(65536, 'o'), other(65536, 'e');
      for (std::size_t done = 0; done < total;) {
        const std::size_t chunk = std::min(block.size(), total - done);
        if (!write_fully(1, block.data(), chunk) || !write_fully(2, other.data(), chunk)) return 1;
        done += chunk;
      }
      return 0;
    }}},
    helper_mode_registration{{"fds", "fds [FD…]  (writes 'fdN' to each FD, then prints the open fds)",
                              [](auto args) {
      for (const auto& arg : args) {
        const std::string text = "fd" + arg + "\n";
        if (!write_fully(std::stoi(arg), text.data(), text.size())) return 1;
      }
      std::string line;
      for (int fd : open_fds()) line += (line.empty() ? "" : " ") + std::to_string(fd);
      std::cout << line << std::endl;
      return 0;
    }}},
    helper_mode_registration{{"pwd", "pwd  (prints the working directory)", [](auto) {
      char buffer[4096];
      if (!::getcwd(buffer, sizeof buffer)) return 1;
      std::cout << buffer << std::endl;
      return 0;
    }}},
    helper_mode_registration{{"getenv", "getenv NAME…  (prints NAME=value or NAME unset)", [](auto args) {
      for (const auto& name : args) {
        const char* value = std::getenv(name.c_str());
        std::cout << name << (value ? "=" + std::string(value) : std::string(" unset")) << '\n';
      }
      return 0;
    }}},
    helper_mode_registration{{"ids", "ids  (prints pid pgid sid)", [](auto) {
      std::cout << ::getpid() << ' ' << ::getpgrp() << ' ' << ::getsid(0) << std::endl;
      return 0;
    }}},
    helper_mode_registration{{"ignore-term", "ignore-term  (ignores SIGTERM, prints 'ready', sleeps)", [](auto) -> int {
      std::signal(SIGTERM, SIG_IGN);
      std::cout << "ready" << std::endl;
      for (;;) ::pause();
    }}},
    helper_mode_registration{{"sleep", "sleep  (prints 'ready', then sleeps until killed)", [](auto) -> int {
      std::cout << "ready" << std::endl;
      for (;;) ::pause();
    }}},
    helper_mode_registration{{"orphan-with-pdeathsig",
                              "orphan-with-pdeathsig HELPER  (starts 'HELPER sleep' with Pdeathsig SIGKILL, "
                              "prints its pid, exits at stdin EOF)",
                              [](auto args) {
      if (args.size() != 1) return 2;
      boost::asio::io_context io;
      ipckit::command child(io.get_executor(), args[0], {"sleep"});
      child.set_parent_death_signal(SIGKILL);
      auto out = child.stdout_pipe();
      child.start();
      std::string ready;
      char c;
      while (out.read_some(boost::asio::buffer(&c, 1)) == 1 && c != '\n') ready += c;
      std::cout << child.pid() << std::endl;
      while (::read(0, &c, 1) > 0) {
      }
      // Exit without killing or reaping: the kernel's parent-death signal must do it.
      std::_Exit(0);
    }}},
};

}  // namespace
}  // namespace ipckit::test
