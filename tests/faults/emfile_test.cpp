// EMFILE: an accept loop while the process has no descriptor left. The pending
// connection keeps the listening socket readable, so a loop that retries at once spins
// at full CPU; the listener must pause between attempts, and take the connection once
// descriptors are free again.
#include "fault_util.hpp"
#include "leak_check.hpp"

#include <ipckit/net.hpp>

#include <boost/asio/io_context.hpp>
#include <boost/asio/read.hpp>

#include <cerrno>
#include <fcntl.h>
#include <functional>
#include <iostream>
#include <optional>
#include <sys/resource.h>
#include <unistd.h>
#include <vector>

namespace {

using namespace std::chrono_literals;
using ipckit::error_code;
using ipckit::test::run_until;
using ipckit::test::script_peer;
namespace asio = boost::asio;
namespace net = ipckit::net;
using clock_type = std::chrono::steady_clock;

// Lowers RLIMIT_NOFILE to just above the highest descriptor open now and fills every
// free number below it, so the next descriptor anyone asks for is EMFILE. Undone by
// free() and the destructor.
class fd_exhaustion {
 public:
  fd_exhaustion() {
    ::getrlimit(RLIMIT_NOFILE, &saved_);
    int highest = 0;
    for (const auto& [fd, target] : ipckit::test::process_resources::now().fds) highest = std::max(highest, fd);
    rlimit lowered = saved_;
    lowered.rlim_cur = static_cast<rlim_t>(highest + 1);
    ::setrlimit(RLIMIT_NOFILE, &lowered);
    for (int fd; (fd = ::open("/dev/null", O_RDONLY | O_CLOEXEC)) >= 0;) fillers_.push_back(fd);
    error_ = errno;
  }
  ~fd_exhaustion() { free(); }
  fd_exhaustion(const fd_exhaustion&) = delete;
  fd_exhaustion& operator=(const fd_exhaustion&) = delete;

  int error() const { return error_; }
  void free() {
    for (int fd : fillers_) ::close(fd);
    fillers_.clear();
    ::setrlimit(RLIMIT_NOFILE, &saved_);
  }

 private:
  rlimit saved_{};
  std::vector<int> fillers_;
  int error_ = 0;
};

// While descriptors are exhausted the test prints nothing and runs only code that has
// run before: UBSan's vptr check, on a type it has not seen yet, probes memory with a
// pipe(2), and without a free fd it would report a false "runtime error".

// Between the "attempts" of a correct accept loop lie 5, 10, 20, 40 … ms pauses: about
// 8 fit in this window. A loop that spins makes thousands.
constexpr auto window = 500ms;
constexpr std::size_t max_attempts_in_window = 20;

class emfile : public ipckit::test::temp_dir_test {
 protected:
  std::string socket_path() const { return (dir() / "s.sock").string(); }
  asio::io_context io;
};

TEST_F(emfile, async_accept_loop_backs_off_while_fds_run_out_and_recovers) {
  auto listener = net::listen(io.get_executor(), "unix", socket_path());
  script_peer peer;  // started while it can still get its pipes
  std::size_t attempts = 0;
  std::optional<net::conn> accepted;
  error_code last_error;
  std::function<void()> accept_next = [&] {
    listener.async_accept([&](error_code ec, net::conn c) {
      ++attempts;
      if (!ec) return accepted.emplace(std::move(c)), void();
      last_error = ec;
      if (ec != asio::error::operation_aborted) accept_next();  // the loop a daemon writes
    });
  };
  accept_next();
  io.poll();  // runs the loop's machinery once while the sanitizers can still get fds
  {
    fd_exhaustion exhausted;
    ASSERT_EQ(exhausted.error(), EMFILE);
    peer.run("dial-unix " + socket_path());  // waits in the listener's queue
    io.run_for(window);
    EXPECT_EQ(last_error.value(), EMFILE) << last_error.message();
    EXPECT_GE(attempts, 1u);
    EXPECT_LE(attempts, max_attempts_in_window) << "the accept loop spins";
    EXPECT_FALSE(accepted);
  }
  std::cout << "async accept attempts in " << window.count() << " ms: " << attempts << '\n';
  // Descriptors are free again: the next attempt (at most a pause away) takes it.
  ASSERT_TRUE(run_until(io, [&] { return accepted.has_value(); }, 5s));
  peer.run("send hi");
  std::string got(2, '\0');
  asio::read(*accepted, asio::buffer(got));
  EXPECT_EQ(got, "hi");
}

TEST_F(emfile, blocking_accept_loop_backs_off_while_fds_run_out_and_recovers) {
  auto listener = net::listen(io.get_executor(), "unix", socket_path());
  script_peer peer;
  std::size_t attempts = 0;
  error_code ec;
  {
    fd_exhaustion exhausted;
    ASSERT_EQ(exhausted.error(), EMFILE);
    peer.run("dial-unix " + socket_path());
    for (const auto end = clock_type::now() + window; clock_type::now() < end; ++attempts) {
      net::conn refused = listener.accept(ec);
      ASSERT_EQ(ec.value(), EMFILE) << ec.message();
    }
    EXPECT_LE(attempts, max_attempts_in_window) << "the accept loop spins";
  }
  std::cout << "blocking accept attempts in " << window.count() << " ms: " << attempts << '\n';
  net::conn accepted = listener.accept(ec);
  ASSERT_FALSE(ec) << ec.message();
  peer.run("send hi");
  std::string got(2, '\0');
  asio::read(accepted, asio::buffer(got));
  EXPECT_EQ(got, "hi");
}

}  // namespace
