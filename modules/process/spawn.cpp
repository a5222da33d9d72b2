// Starting a child: vfork, then only async-signal-safe system calls until execve.
//
// Why not posix_spawn or Boost.Process v2 (docs/process.md): we need the parent-death
// signal with Go's race check, descriptors placed at arbitrary numbers with everything
// else closed even when the parent's fds 0-2 are closed, the signal mask emptied and every
// disposition reset, and the failing step (chdir, exec…) told apart. A short vfork/exec
// does all of that with one error pipe.
#include <ipckit/process.hpp>

#include <algorithm>
#include <cerrno>
#include <csignal>
#include <fcntl.h>
#include <linux/close_range.h>
#include <pthread.h>
#include <sys/prctl.h>
#include <sys/syscall.h>
#include <sys/wait.h>
#include <unistd.h>

extern char** environ;

namespace ipckit::detail {
namespace {

enum stage : int { stage_exec = 1, stage_chdir, stage_setsid, stage_setpgid, stage_dup, stage_pdeath };

struct child_failure {
  int stage;
  int error;
};

constexpr int max_fds = 64;

// Everything the child needs, prepared in the parent so that the child allocates nothing.
struct child_plan {
  const char* path = nullptr;
  char* const* argv = nullptr;
  char* const* envp = nullptr;
  const char* dir = nullptr;
  int source[max_fds]{};
  int target[max_fds]{};
  int count = 0;
  int sorted_targets[max_fds]{};
  int floor = 3;  // above every target: temporaries go here
  bool new_session = false;
  bool new_process_group = false;
  int parent_death_signal = 0;
  pid_t parent = 0;
  int error_fd = -1;
};

[[noreturn]] void child_fail(int error_fd, int stage, int error) {
  const child_failure failure{stage, error};
  (void)!::write(error_fd, &failure, sizeof failure);
  ::_exit(127);
}

[[noreturn]] void run_child(const child_plan& plan) {
  // Default dispositions and an empty mask, whatever the parent set up (the signal
  // module blocks signals for signalfd; SIG_IGN would survive execve).
  struct sigaction default_action {};
  default_action.sa_handler = SIG_DFL;
  for (int sig = 1; sig < NSIG; ++sig) ::sigaction(sig, &default_action, nullptr);
  sigset_t empty;
  sigemptyset(&empty);
  ::sigprocmask(SIG_SETMASK, &empty, nullptr);

  // The error pipe may sit on a number the child needs: move it above every target.
  const int error_fd = ::fcntl(plan.error_fd, F_DUPFD_CLOEXEC, plan.floor);
  if (error_fd < 0) ::_exit(127);

  if (plan.new_session && ::setsid() < 0) child_fail(error_fd, stage_setsid, errno);
  if (plan.new_process_group && !plan.new_session && ::setpgid(0, 0) < 0)
    child_fail(error_fd, stage_setpgid, errno);
  if (plan.parent_death_signal != 0) {
    if (::prctl(PR_SET_PDEATHSIG, plan.parent_death_signal) != 0)
      child_fail(error_fd, stage_pdeath, errno);
    // The parent may have died before prctl: then no signal would ever come (Go does this).
    if (::getppid() != plan.parent) ::kill(::getpid(), plan.parent_death_signal);
  }

  // Two passes so that a source sitting on another mapping's target is never clobbered:
  // copy every source above all targets, then put each copy in place.
  int temporary[max_fds];
  for (int i = 0; i < plan.count; ++i) {
    temporary[i] = ::fcntl(plan.source[i], F_DUPFD_CLOEXEC, plan.floor);
    if (temporary[i] < 0) child_fail(error_fd, stage_dup, errno);
  }
  for (int i = 0; i < plan.count; ++i)
    if (::dup3(temporary[i], plan.target[i], 0) < 0) child_fail(error_fd, stage_dup, errno);
  // Everything that is not a target closes at exec, even fds someone opened without
  // O_CLOEXEC; the error pipe stays usable until then.
  unsigned int next = 0;
  for (int i = 0; i < plan.count; ++i) {
    const auto t = static_cast<unsigned int>(plan.sorted_targets[i]);
    if (t > next) ::syscall(SYS_close_range, next, t - 1, CLOSE_RANGE_CLOEXEC);
    next = t + 1;
  }
  ::syscall(SYS_close_range, next, ~0U, CLOSE_RANGE_CLOEXEC);

  if (plan.dir && ::chdir(plan.dir) != 0) child_fail(error_fd, stage_chdir, errno);
  ::execve(plan.path, plan.argv, plan.envp);
  child_fail(error_fd, stage_exec, errno);
}

bool fd_is_open(int fd) { return ::fcntl(fd, F_GETFD) >= 0; }

bool contains_nul(const std::string& text) { return text.find('\0') != std::string::npos; }

unique_fd open_stdio_file(const std::filesystem::path& path, int child_fd, bool append,
                          error_code& ec) {
  const int flags = child_fd == 0 ? O_RDONLY : O_WRONLY | O_CREAT | (append ? O_APPEND : O_TRUNC);
  unique_fd fd(::open(path.c_str(), flags | O_CLOEXEC | O_NOCTTY, 0600));
  if (!fd) ec = last_error();
  return fd;
}

}  // namespace

void command_impl::start(error_code& ec) {
  ec.clear();
  if (started) {
    ec = process::errc::already_started;
    return;
  }
  if (lookup_error) {
    ec = lookup_error;
    return;
  }
  std::vector<std::string> env_entries = environ();
  for (const auto& entry : env_entries)
    if (contains_nul(entry)) {
      ec = process::errc::env_nul;
      return;
    }
  for (const auto& arg : argv)
    if (contains_nul(arg)) {
      ec = boost::system::errc::make_error_code(boost::system::errc::invalid_argument);
      return;
    }
  if (contains_nul(path) || contains_nul(dir.string())) {
    ec = boost::system::errc::make_error_code(boost::system::errc::invalid_argument);
    return;
  }

  // Which parent fd becomes which child fd. Inherited fds 0-2 are decided first, before
  // this call opens anything that could take a closed number.
  child_plan plan;
  std::vector<unique_fd> opened;  // closed in the parent once the child has its copies
  auto add = [&](int source, int target) {
    plan.source[plan.count] = source;
    plan.target[plan.count] = target;
    ++plan.count;
  };
  bool inherit_open[3];
  for (int i = 0; i < 3; ++i) inherit_open[i] = io[i].kind_ == stdio::kind::inherit && fd_is_open(i);
  if (extra.size() + 3 > max_fds) {
    ec = boost::system::errc::make_error_code(boost::system::errc::too_many_files_open);
    return;
  }
  for (int i = 0; i < 3; ++i) {
    switch (io[i].kind_) {
      case stdio::kind::inherit:
        if (inherit_open[i]) add(i, i);
        break;
      case stdio::kind::null: {
        unique_fd fd(::open("/dev/null", (i == 0 ? O_RDONLY : O_WRONLY) | O_CLOEXEC));
        if (!fd) {
          ec = last_error();
          return;
        }
        add(fd.get(), i);
        opened.push_back(std::move(fd));
        break;
      }
      case stdio::kind::file: {
        unique_fd fd = open_stdio_file(io[i].path_, i, io[i].append_, ec);
        if (ec) return;
        add(fd.get(), i);
        opened.push_back(std::move(fd));
        break;
      }
      case stdio::kind::fd:
        add(io[i].fd_->get(), i);
        break;
    }
  }
  for (const auto& [fd, target] : extra) add(fd->get(), target);
  std::copy(plan.target, plan.target + plan.count, plan.sorted_targets);
  std::sort(plan.sorted_targets, plan.sorted_targets + plan.count);
  plan.floor = std::max(3, plan.count ? plan.sorted_targets[plan.count - 1] + 1 : 3);

  std::vector<char*> argv_ptrs, env_ptrs;
  for (auto& arg : argv) argv_ptrs.push_back(arg.data());
  argv_ptrs.push_back(nullptr);
  for (auto& entry : env_entries) env_ptrs.push_back(entry.data());
  env_ptrs.push_back(nullptr);
  const std::string dir_text = dir.string();
  plan.path = path.c_str();
  plan.argv = argv_ptrs.data();
  plan.envp = env_ptrs.data();
  plan.dir = dir_text.empty() ? nullptr : dir_text.c_str();
  plan.new_session = new_session;
  plan.new_process_group = new_process_group;
  plan.parent_death_signal = parent_death_signal;
  plan.parent = ::getpid();

  int error_pipe[2];
  if (::pipe2(error_pipe, O_CLOEXEC) != 0) {
    ec = last_error();
    return;
  }
  unique_fd error_read(error_pipe[0]), error_write(error_pipe[1]);
  plan.error_fd = error_write.get();

  // vfork (as Go and posix_spawn do): the child borrows our memory until execve, so a
  // large parent starts children as fast as a small one. Every signal is blocked around
  // it so that no handler of ours runs in the child on shared memory; the child empties
  // its mask itself before execve.
  sigset_t all, old;
  sigfillset(&all);
  ::pthread_sigmask(SIG_SETMASK, &all, &old);
  const pid_t child = ::vfork();
  if (child == 0) run_child(plan);
  const int fork_errno = errno;
  ::pthread_sigmask(SIG_SETMASK, &old, nullptr);
  if (child < 0) {
    ec = {fork_errno, boost::system::system_category()};
    return;
  }

  error_write.reset();
  // The pidfd is taken before anyone could reap the child: we are its only waiter.
  unique_fd pidfd(static_cast<int>(::syscall(SYS_pidfd_open, child, 0)));
  child_failure failure{};
  ssize_t got;
  do {
    got = ::read(error_read.get(), &failure, sizeof failure);
  } while (got < 0 && errno == EINTR);
  if (!pidfd) {
    ec = last_error();
    ::kill(child, SIGKILL);
    while (::waitpid(child, nullptr, 0) < 0 && errno == EINTR) {
    }
    return;
  }
  if (got == static_cast<ssize_t>(sizeof failure)) {
    siginfo_t info{};
    while (::waitid(static_cast<idtype_t>(P_PIDFD), static_cast<id_t>(pidfd.get()), &info, WEXITED) < 0 &&
           errno == EINTR) {
    }
    ec = {failure.error, boost::system::system_category()};
    failed_stage = failure.stage;
    return;
  }
  started = true;
  pid = child;
  pidfd_io.assign(pidfd.release());
  // The child has its copies; the parent's ends given for stdio are no longer ours.
  for (auto& s : io)
    if (s.kind_ == stdio::kind::fd) s.fd_.reset();
  extra.clear();
}

}  // namespace ipckit::detail

namespace ipckit::detail {

error_context command_impl::start_error_context(const error_code& ec) const {
  if (ec.category() == process::category()) {
    if (ec == process::errc::not_found || ec == process::errc::dot)
      return {"exec: \"" + (argv.empty() ? path : argv[0]) + "\"", "", "", "", ""};
    return {"exec", "", "", "", ""};
  }
  if (failed_stage == stage_chdir) return {"chdir", "", "", dir.string(), ""};
  if (failed_stage == stage_setsid) return {"fork/exec", "", "", path, "setsid"};
  if (failed_stage == stage_setpgid) return {"fork/exec", "", "", path, "setpgid"};
  if (failed_stage == stage_pdeath) return {"fork/exec", "", "", path, "prctl"};
  if (failed_stage == stage_dup) return {"fork/exec", "", "", path, "dup3"};
  return {"fork/exec", "", "", path, ""};
}

}  // namespace ipckit::detail
