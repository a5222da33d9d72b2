// Child processes on the event loop: Go's os/exec.
//
// ipckit::command is Go's exec.Cmd: configure, then start()/wait() or run(), or output()
// and combined_output(). The child is started from an argv (never a shell), looked up on
// PATH as exec.LookPath does, with an empty signal mask and default dispositions, and
// with exactly the descriptors asked for (0–2 and the extra fds). It is reaped through a
// pidfd: no waitpid(-1), no SIGCHLD handler.
//
// Thread safety: a command is used from one thread at a time, like an Asio I/O object;
// its async_wait completes on the executor given to the constructor (or the handler's).
#pragma once

#include <ipckit/detail/process_impl.hpp>
#include <ipckit/error.hpp>
#include <ipckit/pipe.hpp>
#include <ipckit/unique_fd.hpp>

#include <boost/asio/any_io_executor.hpp>
#include <boost/asio/associated_cancellation_slot.hpp>
#include <boost/asio/async_result.hpp>
#include <boost/asio/dispatch.hpp>
#include <boost/asio/executor_work_guard.hpp>

#include <chrono>
#include <csignal>
#include <filesystem>
#include <memory>
#include <string>
#include <string_view>
#include <vector>

namespace ipckit {

namespace process {
/// Errors of the process module; what() of a thrown error reads as Go's.
enum class errc {
  not_found = 1,     ///< "executable file not found in $PATH"
  dot,               ///< "cannot run executable found relative to current directory"
  already_started,   ///< "exec: already started"
  not_started,       ///< "exec: not started"
  already_waited,    ///< "exec: Wait was already called"
  env_nul,           ///< "exec: environment variable contains NUL"
  stdout_set,        ///< output(): "exec: Stdout already set"
  stderr_set,        ///< combined_output(): "exec: Stderr already set"
  exit_status,       ///< the child exited with a non-zero status (see exit_error)
  signaled,          ///< the child was terminated by a signal (see exit_error)
};
const boost::system::error_category& category() noexcept;
error_code make_error_code(errc e) noexcept;
}  // namespace process

/// Go's exec.LookPath: a name with a slash is checked as it is; otherwise each $PATH
/// entry is tried in order. The current directory is never searched implicitly: a
/// match through an empty or relative $PATH entry is process::errc::dot.
std::string look_path(std::string_view file, error_code& ec);
std::string look_path(std::string_view file);

/// Whether `name` is an environment variable that changes how the dynamic loader or
/// glibc behave in a child: every LD_* (LD_PRELOAD, LD_LIBRARY_PATH, LD_AUDIT …), every
/// MALLOC_*, GLIBC_TUNABLES, and the rest of the list glibc removes for set-uid programs
/// (its unsecvars.h: GCONV_PATH, GETCONF_DIR, HOSTALIASES, LOCALDOMAIN, LOCPATH,
/// NIS_PATH, NLSPATH, RESOLV_HOST_CONF, RES_OPTIONS, TMPDIR, TZDIR). Exact names,
/// case-sensitive, as the loader reads them.
bool unsafe_env_name(std::string_view name) noexcept;

/// `env` ("NAME=value" entries) without the entries unsafe_env_name() names.
std::vector<std::string> scrub_env(std::vector<std::string> env);

/// Go's os.ProcessState.
using process_state = detail::process_state;

/// What a child's standard descriptor is connected to. Go's nil (the default) is null().
using stdio = detail::stdio;

/// run()/wait()/output() of a child that did not exit with status 0: Go's *ExitError.
/// what() is "exit status 3" or "signal: killed"; code() is process::errc::exit_status
/// or process::errc::signaled.
class exit_error : public system_error {
 public:
  exit_error(process_state state, std::string stderr_output);
  const char* what() const noexcept override { return message_.c_str(); }
  const process_state& state() const noexcept { return state_; }
  /// What output() captured of the child's stderr (Go's ExitError.Stderr).
  const std::string& stderr_output() const noexcept { return stderr_; }

 private:
  process_state state_;
  std::string stderr_;
  std::string message_;
};

/// Go's exec.Cmd.
///
/// Destroying a started command that was not waited for kills the child (SIGKILL) and
/// reaps it, so it never becomes a zombie; if an async_wait is still pending, the child
/// is killed and that operation reaps it.
class command {
 public:
  /// Go's exec.Command(program, args…). A program without a slash is looked up on PATH
  /// now; a lookup failure is reported by start().
  command(const boost::asio::any_io_executor& ex, std::string program,
          std::vector<std::string> args = {});
  command(command&&) noexcept = default;
  /// The command assigned over is treated as destroyed: a running child is killed and reaped.
  command& operator=(command&& other) noexcept {
    if (this != &other) {
      if (impl_) impl_->kill_and_reap();
      impl_ = std::move(other.impl_);
      last_stderr_ = std::move(other.last_stderr_);
    }
    return *this;
  }
  ~command();

  boost::asio::any_io_executor get_executor() const { return impl_->ex; }
  /// The resolved path (Go's Cmd.Path) and argv (Go's Cmd.Args, program first).
  const std::string& path() const { return impl_->path; }
  const std::vector<std::string>& args() const { return impl_->argv; }

  // ---- configuration, before start() ----
  /// Go's Cmd.Dir; empty: the parent's working directory.
  void set_dir(std::filesystem::path dir) { impl_->dir = std::move(dir); }
  /// Go's Cmd.Env: replaces the inherited environment with "NAME=value" entries.
  void set_env(std::vector<std::string> env);
  /// Adds or overrides one variable (Go: append(cmd.Environ(), "NAME=value")).
  void setenv(std::string name, std::string value);
  /// Removes one variable from what the child gets.
  void unsetenv(std::string name);
  /// Scrubs the child's environment: the unsafe_env_name() variables are removed from
  /// what it would inherit (or from set_env's list), so LD_PRELOAD and friends in this
  /// process's environment never reach it. setenv() calls still apply on top: a
  /// variable the program sets on purpose (TMPDIR, say) is passed.
  void set_scrub_env(bool on = true) { impl_->scrub_env = on; }
  /// The environment the child will get (Go's Cmd.Environ()); empty entries are errors
  /// reported by start().
  std::vector<std::string> environ() const;

  void set_stdin(stdio s) { impl_->io[0] = std::move(s); }
  void set_stdout(stdio s) { impl_->io[1] = std::move(s); }
  void set_stderr(stdio s) { impl_->io[2] = std::move(s); }
  /// Go's StdinPipe/StdoutPipe/StderrPipe: the parent's end, on this command's executor.
  /// Unlike Go, wait() does not close it: read to EOF, then drop it.
  pipe_writer stdin_pipe();
  pipe_reader stdout_pipe();
  pipe_reader stderr_pipe();
  /// Go's ExtraFiles, generalised: the child gets a copy of `parent_fd` as `child_fd`
  /// (>= 3). Duplicated now, so the caller may close its own fd.
  void add_fd(int parent_fd, int child_fd);
  void add_fd(int parent_fd, int child_fd, error_code& ec);

  /// SysProcAttr.Setpgid: the child leads a new process group.
  void set_new_process_group(bool on = true) { impl_->new_process_group = on; }
  /// SysProcAttr.Setsid: the child leads a new session (and process group).
  void set_new_session(bool on = true) { impl_->new_session = on; }
  /// SysProcAttr.Pdeathsig: the signal the child gets when the parent dies. As in Go,
  /// Linux sends it when the *thread* that started the child exits: start children
  /// from a thread that lives as long as they should.
  void set_parent_death_signal(int signal) { impl_->parent_death_signal = signal; }
  /// Go's Cmd.Cancel (here: which signal cancel() sends; SIGKILL unless set) and
  /// Cmd.WaitDelay (how long after it SIGKILL follows; zero: never).
  void set_cancel_signal(int signal) { impl_->cancel_signal = signal; }
  void set_wait_delay(std::chrono::nanoseconds delay) { impl_->wait_delay = delay; }

  // ---- running ----
  void start(error_code& ec);
  void start();
  /// Waits for the exit (blocking this thread, not the loop: it polls the pidfd).
  /// A non-zero exit is an exit_error / process::errc::exit_status or signaled.
  process_state wait(error_code& ec);
  process_state wait();
  /// Completes with (error_code, process_state) when the child exits. Cancellation
  /// (any type) runs cancel(): the child is signalled, then still waited for, and the
  /// operation completes with operation_aborted once it is reaped. Exit codes are not
  /// errors here: inspect the state.
  template <class CompletionToken>
  auto async_wait(CompletionToken&& token) {
    return boost::asio::async_initiate<CompletionToken, void(error_code, process_state)>(
        [](auto handler, std::shared_ptr<detail::command_impl> impl) {
          using handler_type = std::decay_t<decltype(handler)>;
          auto work = boost::asio::make_work_guard(
              boost::asio::get_associated_executor(handler, impl->ex));
          auto slot = boost::asio::get_associated_cancellation_slot(handler);
          if (slot.is_connected()) {
            std::weak_ptr<detail::command_impl> weak = impl;
            slot.assign([weak](boost::asio::cancellation_type_t) {
              if (auto alive = weak.lock()) alive->cancel_from_wait();
            });
          }
          auto held = std::make_shared<std::pair<handler_type, decltype(work)>>(
              std::move(handler), std::move(work));
          impl->async_wait([held](error_code ec, process_state state) {
            auto s = boost::asio::get_associated_cancellation_slot(held->first);
            if (s.is_connected()) s.clear();
            auto ex = held->second.get_executor();
            boost::asio::dispatch(ex, [held, ec, state]() mutable {
              auto h = std::move(held->first);
              held->second.reset();
              std::move(h)(ec, state);
            });
          });
        },
        token, impl_);
  }
  /// start() then wait().
  void run(error_code& ec);
  void run();
  /// Go's Output: runs the child with stdout captured (and stderr captured for the
  /// exit_error unless set), reading both at once so that no pipe fills up.
  std::string output(error_code& ec);
  std::string output();
  /// Go's CombinedOutput: stdout and stderr into one pipe, in the order written.
  std::string combined_output(error_code& ec);
  std::string combined_output();

  int pid() const noexcept { return impl_->pid; }
  /// Sends `signal` through the pidfd (never to a recycled pid). ESRCH once reaped.
  void signal(int signal, error_code& ec);
  void signal(int signal);
  void kill() { signal(SIGKILL); }
  /// Go's context cancellation: the cancel signal now, SIGKILL after the wait delay if
  /// the child is still running (timed on the loop for async_wait, in wait() otherwise).
  void cancel();
  /// The exit status, once waited for.
  const std::optional<process_state>& state() const noexcept { return impl_->state; }

 private:
  std::shared_ptr<detail::command_impl> impl_;
  std::string last_stderr_;
};

}  // namespace ipckit

template <>
struct boost::system::is_error_code_enum<ipckit::process::errc> : std::true_type {};
