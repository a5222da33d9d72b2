#include "test_support.hpp"

#include <ipckit/event_loop.hpp>

#include <atomic>
#include <cerrno>
#include <csignal>
#include <cstdlib>
#include <cstring>
#include <fstream>
#include <system_error>
#include <thread>
#include <fcntl.h>
#include <poll.h>
#include <spawn.h>
#include <sys/syscall.h>
#include <sys/wait.h>
#include <unistd.h>

extern char** environ;

namespace ipckit::test {
namespace {

std::string required_env(const char* name) {
  const char* value = std::getenv(name);
  if (!value) throw std::runtime_error(std::string(name) + " is not set: run the tests with meson test");
  return value;
}

using clock = std::chrono::steady_clock;

int remaining_ms(clock::time_point deadline) {
  auto left = std::chrono::duration_cast<std::chrono::milliseconds>(deadline - clock::now());
  return left.count() < 0 ? 0 : static_cast<int>(left.count());
}

// Starts argv with its stdin and stdout on new pipes (close-on-exec in the parent), an
// empty signal mask and default dispositions, and `fd3` (if >= 0) as its fd 3. Returns
// pid, pidfd, stdin, stdout.
struct started {
  int pid, pidfd, in, out;
};

started start(const std::vector<std::string>& argv, bool capture_stderr, int* err_fd, int fd3 = -1) {
  int in[2], out[2], err[2] = {-1, -1};
  if (::pipe2(in, O_CLOEXEC) != 0 || ::pipe2(out, O_CLOEXEC) != 0 ||
      (capture_stderr && ::pipe2(err, O_CLOEXEC) != 0))
    throw std::system_error(errno, std::generic_category(), "pipe2");
  posix_spawn_file_actions_t actions;
  posix_spawn_file_actions_init(&actions);
  posix_spawn_file_actions_adddup2(&actions, in[0], 0);
  posix_spawn_file_actions_adddup2(&actions, out[1], 1);
  if (capture_stderr) posix_spawn_file_actions_adddup2(&actions, err[1], 2);
  if (fd3 >= 0) posix_spawn_file_actions_adddup2(&actions, fd3, 3);  // clears FD_CLOEXEC
  posix_spawnattr_t attributes;
  posix_spawnattr_init(&attributes);
  sigset_t empty, all;
  sigemptyset(&empty);
  sigfillset(&all);
  posix_spawnattr_setsigmask(&attributes, &empty);
  posix_spawnattr_setsigdefault(&attributes, &all);
  posix_spawnattr_setflags(&attributes, POSIX_SPAWN_SETSIGMASK | POSIX_SPAWN_SETSIGDEF);
  std::vector<char*> args;
  for (const auto& arg : argv) args.push_back(const_cast<char*>(arg.c_str()));
  args.push_back(nullptr);
  pid_t pid = -1;
  const int error = ::posix_spawnp(&pid, args[0], &actions, &attributes, args.data(), environ);
  posix_spawn_file_actions_destroy(&actions);
  posix_spawnattr_destroy(&attributes);
  ::close(in[0]);
  ::close(out[1]);
  if (capture_stderr) ::close(err[1]);
  if (error != 0) {
    ::close(in[1]);
    ::close(out[0]);
    if (capture_stderr) ::close(err[0]);
    throw std::system_error(error, std::generic_category(), "posix_spawn " + argv[0]);
  }
  if (err_fd) *err_fd = err[0];
  // The test writes to a peer that may have exited; that must be EPIPE, not SIGPIPE.
  ::signal(SIGPIPE, SIG_IGN);
  return {pid, static_cast<int>(::syscall(SYS_pidfd_open, pid, 0)), in[1], out[0]};
}

int decode(int status) { return WIFEXITED(status) ? WEXITSTATUS(status) : 128 + WTERMSIG(status); }

}  // namespace

std::string helper_path() { return required_env("IPCKIT_HELPER"); }
std::string cli_path() { return required_env("IPCKIT_CLI"); }

void temp_dir_test::SetUp() {
  std::string pattern = (std::filesystem::temp_directory_path() / "ipckit-test-XXXXXX").string();
  ASSERT_NE(::mkdtemp(pattern.data()), nullptr) << "mkdtemp: " << std::strerror(errno);
  dir_ = pattern;
}

void temp_dir_test::TearDown() {
  std::error_code ignored;
  std::filesystem::remove_all(dir_, ignored);
}

std::string unique_ipc_name(std::string_view tag) {
  static std::atomic<int> counter{0};
  return "/ipckit-test-" + std::to_string(::getpid()) + "-" + std::to_string(++counter) + "-" +
         std::string(tag.substr(0, 100));
}

bool run_until(boost::asio::io_context& io, const std::function<bool()>& done,
               std::chrono::milliseconds timeout) {
  const auto deadline = clock::now() + timeout;
  while (!done() && clock::now() < deadline) {
    if (io.stopped()) io.restart();
    io.run_for(std::chrono::milliseconds(5));
  }
  return done();
}

bool run_until(event_loop& loop, const std::function<bool()>& done, std::chrono::milliseconds timeout) {
  const auto deadline = clock::now() + timeout;
  while (!done() && clock::now() < deadline) {
    if (loop.stopped()) loop.restart();
    loop.run_for(std::chrono::milliseconds(5));
  }
  return done();
}

bool eventually(const std::function<bool()>& done, std::chrono::milliseconds timeout) {
  const auto deadline = clock::now() + timeout;
  while (!done()) {
    if (clock::now() > deadline) return false;
    std::this_thread::yield();
  }
  return true;
}

int reap_within(pid_t child, std::chrono::milliseconds timeout) {
  int status = 0;
  if (!eventually([&] { return ::waitpid(child, &status, WNOHANG) == child; }, timeout)) {
    ::kill(child, SIGKILL);
    ::waitpid(child, &status, 0);
    return -1;
  }
  return WIFEXITED(status) ? WEXITSTATUS(status) : 128 + WTERMSIG(status);
}

bool blocked_in_syscall(pid_t tid, long number) {
  std::ifstream in("/proc/self/task/" + std::to_string(tid) + "/syscall");
  long current = -1;
  return in >> current && current == number;
}

std::size_t open_fd_count() {
  std::size_t count = 0;
  for ([[maybe_unused]] const auto& entry : std::filesystem::directory_iterator("/proc/self/fd")) ++count;
  return count - 1;  // the iterator's own descriptor
}

process_result run_process(const std::vector<std::string>& argv, const std::string& input,
                           std::chrono::milliseconds timeout) {
  int err_fd = -1;
  auto child = start(argv, true, &err_fd);
  process_result result;
  const auto deadline = clock::now() + timeout;
  std::size_t written = 0;
  if (input.empty()) {
    ::close(child.in);
    child.in = -1;
  }
  int open_outputs = 2;
  while (open_outputs > 0 && clock::now() < deadline) {
    pollfd fds[3] = {{child.out, POLLIN, 0}, {err_fd, POLLIN, 0}, {child.in, POLLOUT, 0}};
    if (::poll(fds, child.in >= 0 ? 3 : 2, remaining_ms(deadline)) < 0 && errno != EINTR) break;
    char buffer[65536];
    for (int i = 0; i < 2; ++i) {
      if (fds[i].fd < 0 || !(fds[i].revents & (POLLIN | POLLHUP | POLLERR))) continue;
      const ssize_t n = ::read(fds[i].fd, buffer, sizeof buffer);
      if (n > 0) {
        (i == 0 ? result.out : result.err).append(buffer, static_cast<std::size_t>(n));
      } else if (n == 0 || errno != EINTR) {
        ::close(fds[i].fd);
        (i == 0 ? child.out : err_fd) = -1;
        --open_outputs;
      }
    }
    if (child.in >= 0 && (fds[2].revents & (POLLOUT | POLLERR | POLLHUP))) {
      const ssize_t n = ::write(child.in, input.data() + written, input.size() - written);
      if (n > 0) written += static_cast<std::size_t>(n);
      if (n < 0 && errno != EINTR) written = input.size();
      if (written == input.size()) {
        ::close(child.in);
        child.in = -1;
      }
    }
  }
  for (int fd : {child.in, child.out, err_fd})
    if (fd >= 0) ::close(fd);
  pollfd exited{child.pidfd, POLLIN, 0};
  if (::poll(&exited, 1, remaining_ms(deadline)) <= 0) {
    ::kill(child.pid, SIGKILL);
    ::waitpid(child.pid, nullptr, 0);
  } else {
    int status = 0;
    ::waitpid(child.pid, &status, 0);
    result.exit_code = decode(status);
  }
  ::close(child.pidfd);
  return result;
}

peer_process::peer_process(const std::vector<std::string>& argv, int fd3) {
  auto child = start(argv, false, nullptr, fd3);
  pid_ = child.pid;
  pidfd_ = child.pidfd;
  stdin_ = child.in;
  stdout_ = child.out;
}

peer_process::~peer_process() {
  if (pid_ > 0) {
    ::kill(pid_, SIGKILL);
    ::waitpid(pid_, nullptr, 0);
  }
  for (int fd : {pidfd_, stdin_, stdout_})
    if (fd >= 0) ::close(fd);
}

std::optional<std::string> peer_process::read_line(std::chrono::milliseconds timeout) {
  const auto deadline = clock::now() + timeout;
  for (;;) {
    if (auto newline = buffer_.find('\n'); newline != std::string::npos) {
      std::string line = buffer_.substr(0, newline);
      buffer_.erase(0, newline + 1);
      return line;
    }
    if (eof_) return std::nullopt;
    pollfd ready{stdout_, POLLIN, 0};
    const int polled = ::poll(&ready, 1, remaining_ms(deadline));
    if (polled == 0) return std::nullopt;
    if (polled < 0) {
      if (errno == EINTR) continue;
      return std::nullopt;
    }
    char chunk[4096];
    const ssize_t n = ::read(stdout_, chunk, sizeof chunk);
    if (n > 0) buffer_.append(chunk, static_cast<std::size_t>(n));
    else if (n == 0 || errno != EINTR) eof_ = true;
  }
}

std::string peer_process::read_all(std::chrono::milliseconds timeout) {
  const auto deadline = clock::now() + timeout;
  while (!eof_ && clock::now() < deadline) {
    pollfd ready{stdout_, POLLIN, 0};
    if (::poll(&ready, 1, remaining_ms(deadline)) <= 0) continue;
    char chunk[65536];
    const ssize_t n = ::read(stdout_, chunk, sizeof chunk);
    if (n > 0) buffer_.append(chunk, static_cast<std::size_t>(n));
    else if (n == 0 || errno != EINTR) eof_ = true;
  }
  return std::exchange(buffer_, {});
}

void peer_process::write(std::string_view data) {
  while (!data.empty()) {
    const ssize_t n = ::write(stdin_, data.data(), data.size());
    if (n < 0 && errno == EINTR) continue;
    if (n < 0) throw std::system_error(errno, std::generic_category(), "write to peer");
    data.remove_prefix(static_cast<std::size_t>(n));
  }
}

void peer_process::close_stdin() {
  if (stdin_ >= 0) ::close(std::exchange(stdin_, -1));
}

std::optional<int> peer_process::wait(std::chrono::milliseconds timeout) {
  if (pid_ < 0) return std::nullopt;
  pollfd exited{pidfd_, POLLIN, 0};
  if (::poll(&exited, 1, static_cast<int>(timeout.count())) <= 0) return std::nullopt;
  int status = 0;
  ::waitpid(pid_, &status, 0);
  pid_ = -1;
  return decode(status);
}

void peer_process::kill(int signal) {
  if (pid_ > 0) ::kill(pid_, signal);
}

}  // namespace ipckit::test
