// Internals of process.hpp that its templates need. Users never include this header.
#pragma once

#include <ipckit/error.hpp>
#include <ipckit/unique_fd.hpp>

#include <boost/asio/any_io_executor.hpp>
#include <boost/asio/posix/stream_descriptor.hpp>
#include <boost/asio/steady_timer.hpp>

#include <chrono>
#include <csignal>
#include <filesystem>
#include <functional>
#include <memory>
#include <optional>
#include <string>
#include <sys/types.h>
#include <utility>
#include <vector>

namespace ipckit::detail {

/// Go's os.ProcessState.
class process_state {
 public:
  process_state() = default;
  /// From waitid's si_code (CLD_EXITED, CLD_KILLED, CLD_DUMPED) and si_status.
  process_state(int pid, int code, int status) : pid_(pid), code_(code), status_(status) {}

  int pid() const noexcept { return pid_; }
  bool exited() const noexcept;
  /// The exit status, or -1 when a signal ended the child (as Go's ExitCode()).
  int exit_code() const noexcept;
  /// The terminating signal, or 0.
  int signal() const noexcept;
  bool core_dumped() const noexcept;
  bool success() const noexcept { return exited() && status_ == 0; }
  /// "exit status 3", "signal: killed", "signal: aborted (core dumped)".
  std::string string() const;

 private:
  int pid_ = -1;
  int code_ = 0;
  int status_ = 0;
};

/// What a child's fd 0, 1 or 2 is: Go's nil (/dev/null), os.Stdin (inherit), an
/// *os.File (a file or any descriptor: an ipckit pipe end, a socket).
class stdio {
 public:
  enum class kind { null, inherit, file, fd };

  stdio() = default;
  static stdio null() { return {}; }
  static stdio inherit() { return stdio(kind::inherit); }
  /// A file opened for the child: stdin reads it; stdout/stderr truncate or create it
  /// (0600) unless `append`.
  static stdio file(std::filesystem::path path, bool append = false);
  /// A descriptor, duplicated now (the caller keeps its own).
  static stdio fd(int fd);
  /// A descriptor handed over (an ipckit pipe end: `stdio::fd(std::move(w).release())`).
  static stdio fd(unique_fd fd);

  kind what() const noexcept { return kind_; }

 private:
  friend struct command_impl;
  explicit stdio(kind k) : kind_(k) {}
  kind kind_ = kind::null;
  std::filesystem::path path_;
  bool append_ = false;
  std::shared_ptr<unique_fd> fd_;
};

/// The state of one command, shared with its pending async_wait.
struct command_impl : std::enable_shared_from_this<command_impl> {
  explicit command_impl(const boost::asio::any_io_executor& e) : ex(e), pidfd_io(e), kill_timer(e) {}
  ~command_impl();

  boost::asio::any_io_executor ex;
  std::string path;
  std::vector<std::string> argv;
  error_code lookup_error;
  std::filesystem::path dir;
  std::optional<std::vector<std::string>> env;  // nullopt: inherit
  std::vector<std::pair<std::string, std::optional<std::string>>> env_edits;
  bool scrub_env = false;  // drop loader/glibc variables from the base environment
  stdio io[3];
  std::vector<std::pair<std::shared_ptr<unique_fd>, int>> extra;
  bool new_process_group = false;
  bool new_session = false;
  int parent_death_signal = 0;
  int cancel_signal = SIGKILL;
  std::chrono::nanoseconds wait_delay{};

  int pid = -1;
  bool started = false;
  bool wait_called = false;
  bool async_pending = false;
  bool cancelled = false;
  std::optional<std::chrono::steady_clock::time_point> kill_at;  // cancel() + wait delay
  boost::asio::posix::stream_descriptor pidfd_io;
  boost::asio::steady_timer kill_timer;
  std::optional<process_state> state;
  int failed_stage = 0;  // which step failed in the child (spawn.cpp)

  /// Where start() failed, for the Go-style message ("fork/exec /bin/x", "chdir /d").
  error_context start_error_context(const error_code& ec) const;

  std::vector<std::string> environ() const;
  void start(error_code& ec);
  process_state wait(error_code& ec);
  void async_wait(std::function<void(error_code, process_state)> done);
  void send(int signal, error_code& ec);
  void cancel();
  void cancel_from_wait();
  // Reaps a child that has exited (pidfd readable); false if it has not.
  bool reap(error_code& ec);
  void kill_and_reap() noexcept;
};

}  // namespace ipckit::detail
