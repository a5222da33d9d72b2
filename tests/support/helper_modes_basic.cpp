// General modes of the helper child: exit codes, echo, bulk output, fd listing, signals.
#include "helper_child.hpp"

#include <csignal>
#include <cstdio>
#include <filesystem>
#include <fstream>
#include <iostream>
#include <string>
#include <unistd.h>

namespace ipckit::test {
namespace {

int write_all(int fd, std::size_t count) {
  std::string block(65536, 'x');
  for (std::size_t i = 0; i < block.size(); ++i) block[i] = static_cast<char>('a' + i % 26);
  std::size_t done = 0;
  while (done < count) {
    const std::size_t chunk = std::min(block.size(), count - done);
    const ssize_t n = ::write(fd, block.data(), chunk);
    if (n < 0) return 1;
    done += static_cast<std::size_t>(n);
  }
  return 0;
}

const helper_mode_registration modes[] = {
    helper_mode_registration{{"exit", "exit CODE", [](auto args) {
      return args.empty() ? 0 : std::stoi(args[0]);
    }}},
    helper_mode_registration{{"echo", "echo  (stdin to stdout until EOF)", [](auto) {
      char buffer[65536];
      for (;;) {
        const ssize_t n = ::read(0, buffer, sizeof buffer);
        if (n <= 0) return n == 0 ? 0 : 1;
        for (ssize_t done = 0; done < n;) {
          const ssize_t w = ::write(1, buffer + done, static_cast<std::size_t>(n - done));
          if (w < 0) return 1;
          done += w;
        }
      }
    }}},
    helper_mode_registration{{"write", "write BYTES_STDOUT BYTES_STDERR  (a..z pattern)", [](auto args) {
      if (args.size() != 2) return 2;
      return write_all(1, std::stoull(args[0])) | write_all(2, std::stoull(args[1]));
    }}},
    helper_mode_registration{{"list-fds", "list-fds  (prints each open fd number)", [](auto) {
      for (const auto& entry : std::filesystem::directory_iterator("/proc/self/fd"))
        std::cout << entry.path().filename().string() << '\n';
      return 0;
    }}},
    helper_mode_registration{{"proc-status", "proc-status FIELD…  (prints those /proc/self/status lines)",
                              [](auto args) {
      std::ifstream status("/proc/self/status");
      for (std::string line; std::getline(status, line);)
        for (const auto& field : args)
          if (line.rfind(field + ":", 0) == 0) std::cout << line << '\n';
      return 0;
    }}},
    helper_mode_registration{{"kill-parent", "kill-parent SIGNUM  (sends it to the parent)", [](auto args) {
      return args.size() == 1 && ::kill(::getppid(), std::stoi(args[0])) == 0 ? 0 : 1;
    }}},
    helper_mode_registration{{"wait-stdin", "wait-stdin  (prints 'ready', exits 0 at stdin EOF)", [](auto) {
      std::cout << "ready" << std::endl;
      char c;
      while (::read(0, &c, 1) > 0) {
      }
      return 0;
    }}},
};

}  // namespace
}  // namespace ipckit::test
