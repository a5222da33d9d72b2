// `ipckit lock [--shared] [--timeout D] PATH -- CMD ARGS…`: runs a command holding a
// flock(2) lock on PATH, the lock util-linux flock(1) takes, and exits with its status.
#include "command.hpp"

#include <ipckit/duration.hpp>
#include <ipckit/file_lock.hpp>

#include <boost/asio/io_context.hpp>

#include <cerrno>
#include <csignal>
#include <iostream>
#include <fcntl.h>
#include <sys/syscall.h>
#include <unistd.h>
#include <sys/wait.h>

namespace ipckit::cli {
namespace {

constexpr int exit_not_found = 127;

// The command starts without a shell, with an empty signal mask and default
// dispositions, whatever this process inherited. Not posix_spawn: glibc's leaves its two
// internal signals (32, 33) ignored in the child when this process has handlers for
// them, and ignored dispositions survive exec. The raw system calls reset every signal.
// The lock's descriptor is close-on-exec: the lock is ours, held until the command
// exits, not the command's to pass on.
[[noreturn]] void exec_child(char** argv, int report_fd) {
  struct kernel_sigaction {
    void (*handler)(int);
    unsigned long flags;
    void (*restorer)();
    unsigned long mask;
  } default_action{SIG_DFL, 0, nullptr, 0};
  for (int sig = 1; sig <= 64; ++sig)
    if (sig != SIGKILL && sig != SIGSTOP) ::syscall(SYS_rt_sigaction, sig, &default_action, nullptr, 8);
  unsigned long empty_mask = 0;
  ::syscall(SYS_rt_sigprocmask, SIG_SETMASK, &empty_mask, nullptr, 8);
  ::execvp(argv[0], argv);
  const int error = errno;
  [[maybe_unused]] auto ignored = ::write(report_fd, &error, sizeof error);
  ::_exit(exit_not_found);
}

int run_command(const std::vector<std::string>& command) {
  std::vector<char*> argv;
  for (const auto& arg : command) argv.push_back(const_cast<char*>(arg.c_str()));
  argv.push_back(nullptr);
  // exec's failure comes back on a close-on-exec pipe: nothing read means it ran.
  int report[2];
  if (::pipe2(report, O_CLOEXEC) != 0) throw_error(last_error(), {"exec", "", "", command[0], "pipe2"});
  const pid_t pid = ::fork();
  if (pid == 0) exec_child(argv.data(), report[1]);
  const int fork_error = errno;
  ::close(report[1]);
  if (pid < 0) {
    ::close(report[0]);
    throw_error(error_code(fork_error, boost::system::system_category()), {"exec", "", "", command[0], "fork"});
  }
  int error = 0;
  ssize_t n;
  do n = ::read(report[0], &error, sizeof error);
  while (n < 0 && errno == EINTR);
  ::close(report[0]);
  int status = 0;
  while (::waitpid(pid, &status, 0) < 0) {
    if (errno != EINTR) {
      std::cerr << "ipckit lock: wait: " << error_text(last_error()) << '\n';
      return exit_failure;
    }
  }
  if (n == sizeof error) {
    // As Go's LookPath: a bare name that no PATH entry runs is "not found", whether
    // execvp last saw ENOENT or EACCES (an unreadable PATH directory, a non-executable file).
    const bool bare = command[0].find('/') == std::string::npos;
    if (error == ENOENT || (bare && error == EACCES))
      std::cerr << "ipckit lock: exec: \"" << command[0] << "\": executable file not found in $PATH\n";
    else
      std::cerr << "ipckit lock: exec: \"" << command[0] << "\": "
                << error_text(error_code(error, boost::system::system_category())) << '\n';
    return exit_not_found;
  }
  return WIFEXITED(status) ? WEXITSTATUS(status) : 128 + WTERMSIG(status);
}

int run(std::span<const std::string> args) {
  static constexpr flag_spec flags[] = {{"shared", false}, {"timeout", true}};
  const auto parsed = arguments::parse(args, flags);
  if (parsed.positional().size() != 1) throw usage_error("want exactly one PATH before --");
  if (!parsed.had_dashes() || parsed.after_dashes().empty()) throw usage_error("want -- CMD ARGS… after PATH");
  const auto timeout = parsed.duration("timeout");
  if (timeout && timeout->count() < 0) throw usage_error("invalid value for flag -timeout: negative duration");
  const std::string& path = parsed.positional()[0];
  const lock_mode mode = parsed.has("shared") ? lock_mode::shared : lock_mode::exclusive;

  boost::asio::io_context io;
  file_lock lock(io.get_executor(), path);
  if (timeout) {
    if (!lock.try_lock_for(*timeout, mode)) {
      std::cerr << "ipckit lock: timed out after " << format_duration(*timeout) << " waiting for "
                << (mode == lock_mode::shared ? "a shared" : "an exclusive") << " lock on " << path << '\n';
      return exit_failure;
    }
  } else {
    lock.lock(mode);
  }
  return run_command(parsed.after_dashes());
}

const registration reg{{
    "lock",
    "run a command holding a file lock",
    "Usage: ipckit lock [--shared] [--timeout D] PATH -- CMD ARGS…\n\n"
    "Takes a flock(2) lock on PATH (created 0600 if missing), runs CMD with ARGS (no\n"
    "shell) while holding it, and exits with CMD's exit status (128+N if signal N\n"
    "killed it). The lock is the one util-linux flock(1) takes, so the two exclude\n"
    "each other. A holder that dies releases the lock.\n\n"
    "  --shared      take a shared lock (default: exclusive)\n"
    "  --timeout D   give up after D (200ms, 1.5s, 2m); 0 means try once. On timeout\n"
    "                nothing is run and the exit status is 1.\n",
    run,
}};

}  // namespace
}  // namespace ipckit::cli
