// What every ipckit test shares: a private temp directory, unique IPC names, waiting for
// an event with a deadline (never sleeping), and running peer programs.
#pragma once

#include <gtest/gtest.h>

#include <boost/asio/io_context.hpp>

#include <chrono>
#include <filesystem>
#include <functional>
#include <optional>
#include <string>
#include <string_view>
#include <vector>

namespace ipckit {
class event_loop;
}

namespace ipckit::test {

using namespace std::chrono_literals;

/// The helper child (tests/support/helper_child.cpp), as meson passes it.
std::string helper_path();
/// The ipckit command built in this tree.
std::string cli_path();

/// Fixture: a fresh directory under $TMPDIR for each test, removed with what it holds.
class temp_dir_test : public ::testing::Test {
 protected:
  void SetUp() override;
  void TearDown() override;
  const std::filesystem::path& dir() const { return dir_; }

 private:
  std::filesystem::path dir_;
};

/// A name no other test (or run) uses: "/ipckit-test-<pid>-<n>-<tag>", valid for mq_open
/// and sem_open. The test unlinks what it creates under it.
std::string unique_ipc_name(std::string_view tag);

/// Runs `io` until `done()` is true or `timeout` passes; returns done().
bool run_until(boost::asio::io_context& io, const std::function<bool()>& done,
               std::chrono::milliseconds timeout = 10s);
/// The same through event_loop::run_for, which (unlike the io_context's own run) runs the
/// immediate completions of queues and eventfds back to back (docs/performance.md).
bool run_until(event_loop& loop, const std::function<bool()>& done, std::chrono::milliseconds timeout = 10s);

/// Spins (yielding) until `done()` is true or `timeout` passes; returns done(). For a
/// thread beside a running loop, watching for something the loop does not report.
bool eventually(const std::function<bool()>& done, std::chrono::milliseconds timeout = 10s);

/// Reaps `child` (a fork of this test) within `timeout`: its exit code, 128+N if signal N
/// ended it, or -1 when it was still running then (it is killed and reaped).
int reap_within(pid_t child, std::chrono::milliseconds timeout = 10s);

/// Whether thread `tid` of this process is blocked in system call `number` (SYS_…), as
/// /proc/self/task/TID/syscall says: how a test sees the loop thread waiting in a call.
bool blocked_in_syscall(pid_t tid, long number);

/// Open descriptors of this process (to check that nothing leaks).
std::size_t open_fd_count();

struct process_result {
  int exit_code = -1;  ///< 128+N for a child killed by signal N; -1 when it timed out
  std::string out;
  std::string err;
};

/// Runs argv (no shell) to completion with `input` on its stdin, collecting stdout and
/// stderr; a child still running at the deadline is killed, and exit_code is -1.
process_result run_process(const std::vector<std::string>& argv, const std::string& input = "",
                           std::chrono::milliseconds timeout = 30s);

/// A peer running beside the test (socat, python3, the helper child): its stdin and
/// stdout are pipes; the destructor kills and reaps it, so none outlives the test.
class peer_process {
 public:
  /// With `fd3` (>= 0), the child also inherits that descriptor as its fd 3, as a
  /// related process inherits an eventfd.
  explicit peer_process(const std::vector<std::string>& argv, int fd3 = -1);
  peer_process(const peer_process&) = delete;
  peer_process& operator=(const peer_process&) = delete;
  ~peer_process();

  int pid() const { return pid_; }
  /// Its stdin (write end) and stdout (read end), still owned by this object.
  int stdin_fd() const { return stdin_; }
  int stdout_fd() const { return stdout_; }
  /// The next line of its stdout (without the newline), or nullopt at EOF or deadline.
  std::optional<std::string> read_line(std::chrono::milliseconds timeout = 10s);
  /// All of stdout up to EOF, or what arrived by the deadline.
  std::string read_all(std::chrono::milliseconds timeout = 10s);
  void write(std::string_view data);
  void close_stdin();
  /// Exit code (128+N for signal N), or nullopt if still running at the deadline.
  std::optional<int> wait(std::chrono::milliseconds timeout = 10s);
  void kill(int signal);

 private:
  int pid_ = -1;
  int pidfd_ = -1;
  int stdin_ = -1;
  int stdout_ = -1;
  std::string buffer_;
  bool eof_ = false;
};

}  // namespace ipckit::test
