// `ipckit lock [--shared] [--timeout D] PATH -- CMD ARGS…`: runs a command holding a
// flock(2) lock on PATH, the lock util-linux flock(1) takes, and exits with its status.
#include "command.hpp"

#include <ipckit/duration.hpp>
#include <ipckit/file_lock.hpp>

#include <boost/asio/io_context.hpp>

#include <cerrno>
#include <csignal>
#include <iostream>
#include <spawn.h>
#include <sys/wait.h>

extern char** environ;

namespace ipckit::cli {
namespace {

constexpr int exit_not_found = 127;

// The command starts without a shell, with an empty signal mask and default
// dispositions, whatever this process inherited. The lock's descriptor is close-on-exec:
// the lock is ours, held until the command exits, not the command's to pass on.
int run_command(const std::vector<std::string>& command) {
  std::vector<char*> argv;
  for (const auto& arg : command) argv.push_back(const_cast<char*>(arg.c_str()));
  argv.push_back(nullptr);
  posix_spawnattr_t attributes;
  posix_spawnattr_init(&attributes);
  sigset_t empty, all;
  sigemptyset(&empty);
  sigfillset(&all);
  posix_spawnattr_setsigmask(&attributes, &empty);
  posix_spawnattr_setsigdefault(&attributes, &all);
  posix_spawnattr_setflags(&attributes, POSIX_SPAWN_SETSIGMASK | POSIX_SPAWN_SETSIGDEF);
  pid_t pid = -1;
  const int error = ::posix_spawnp(&pid, argv[0], nullptr, &attributes, argv.data(), environ);
  posix_spawnattr_destroy(&attributes);
  if (error == ENOENT) {
    std::cerr << "ipckit lock: exec: \"" << command[0] << "\": executable file not found in $PATH\n";
    return exit_not_found;
  }
  if (error != 0) {
    std::cerr << "ipckit lock: exec: \"" << command[0] << "\": "
              << error_text(error_code(error, boost::system::system_category())) << '\n';
    return exit_not_found;
  }
  int status = 0;
  while (::waitpid(pid, &status, 0) < 0) {
    if (errno != EINTR) {
      std::cerr << "ipckit lock: wait: " << error_text(last_error()) << '\n';
      return exit_failure;
    }
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
