// The daemon demo (demos/daemon) as a black box: the real binary, real processes, real
// sockets. The demo is found at <build>/demos/ipckit-daemon (this test runs from
// <build>/tests/), or at $IPCKIT_DAEMON. Every wait is for an event (a line the daemon
// prints, a reply, a process exit seen through a pidfd) with a deadline.
#include "test_support.hpp"

#include <ipckit/message.hpp>
#include <ipckit/net.hpp>

#include <boost/asio/read_until.hpp>
#include <boost/asio/streambuf.hpp>
#include <boost/asio/write.hpp>

#include <gmock/gmock.h>

#include <csignal>
#include <cstdlib>
#include <filesystem>
#include <memory>
#include <poll.h>
#include <set>
#include <sys/syscall.h>
#include <unistd.h>

namespace {

namespace asio = boost::asio;
namespace fs = std::filesystem;
using namespace std::chrono_literals;
using ipckit::test::peer_process;
using json = nlohmann::json;
using ::testing::HasSubstr;
using ::testing::StartsWith;

std::string daemon_path() {
  if (const char* path = std::getenv("IPCKIT_DAEMON")) return path;
  return (fs::read_symlink("/proc/self/exe").parent_path().parent_path() / "demos" /
          "ipckit-daemon").string();
}

// Waits (pidfd + poll, deadline) until a process that is not our child is gone.
bool gone_within(pid_t pid, std::chrono::milliseconds timeout) {
  const int fd = static_cast<int>(::syscall(SYS_pidfd_open, pid, 0));
  if (fd < 0) return errno == ESRCH;
  pollfd p{fd, POLLIN, 0};
  const bool exited = ::poll(&p, 1, static_cast<int>(timeout.count())) == 1;
  ::close(fd);
  return exited;
}

// One tcp client of the line protocol: "hello\n" -> "1234: hello".
class line_client {
 public:
  line_client(asio::io_context& io, const std::string& address)
      : io_(io), conn_(ipckit::net::dial(io.get_executor(), "tcp", address)) {}

  void send(const std::string& text) { asio::write(conn_, asio::buffer(text)); }

  std::optional<std::string> read_line() {
    std::optional<std::string> line;
    bool done = false;
    asio::async_read_until(conn_, input_, '\n', [&](ipckit::error_code ec, std::size_t n) {
      done = true;
      if (ec) return;
      line.emplace(asio::buffers_begin(input_.data()), asio::buffers_begin(input_.data()) + n - 1);
      input_.consume(n);
    });
    if (!ipckit::test::run_until(io_, [&] { return done; }, 10s)) {
      conn_.cancel();
      ipckit::test::run_until(io_, [&] { return done; }, 1s);
    }
    return line;
  }

  /// Sends a line and returns the pid that answered it (the reply is checked).
  int ask(const std::string& text) {
    send(text + "\n");
    auto reply = read_line();
    if (!reply) {
      ADD_FAILURE() << "no reply to " << text;
      return -1;
    }
    const auto colon = reply->find(": ");
    EXPECT_NE(colon, std::string::npos) << *reply;
    EXPECT_EQ(reply->substr(colon + 2), text);
    return std::stoi(reply->substr(0, colon));
  }

  void close() { conn_.close(); }

 private:
  asio::io_context& io_;
  ipckit::net::conn conn_;
  asio::streambuf input_;
};

class daemon_test : public ipckit::test::temp_dir_test {
 protected:
  void TearDown() override {
    daemon_.reset();  // kills and reaps the supervisor if a test left it running
    // Its workers die with it (parent-death signal): nothing may outlive the test.
    for (int pid : started_) EXPECT_TRUE(gone_within(pid, 10s)) << "worker " << pid << " left behind";
    temp_dir_test::TearDown();
  }

  fs::path pidfile() const { return dir() / "daemon.pid"; }
  fs::path control_path() const { return dir() / "control.sock"; }

  std::vector<std::string> daemon_argv(int workers) const {
    return {daemon_path(), "--workers", std::to_string(workers), "--pidfile", pidfile().string(),
            "--control", control_address_.empty() ? control_path().string() : control_address_,
            "--drain-timeout", "20s", "127.0.0.1:0"};
  }

  /// Starts the daemon and waits until its `workers` workers are ready.
  void start(int workers = 2, std::vector<std::string> extra = {}) {
    if (!fs::exists(daemon_path())) GTEST_SKIP() << daemon_path() << " not built (-Ddemos=false?)";
    auto argv = daemon_argv(workers);
    argv.insert(argv.end() - 1, extra.begin(), extra.end());
    daemon_ = std::make_unique<peer_process>(argv);
    pid_ = std::stoi(expect_line("pid ").substr(4));
    address_ = expect_line("listening on tcp ").substr(17);
    expect_line("control on ");
    for (int i = 0; i < workers; ++i) expect_line("worker ", " ready (generation 1)");
  }

  /// Reads the daemon's stdout up to the first line that starts with `prefix` (and
  /// contains `also`); remembers every worker started on the way.
  std::string expect_line(const std::string& prefix, const std::string& also = "") {
    for (;;) {
      auto line = daemon_->read_line(15s);
      if (!line) {
        ADD_FAILURE() << "no line \"" << prefix << "…" << also << "\" from the daemon";
        return prefix + "0";
      }
      int pid = 0;
      if (std::sscanf(line->c_str(), "worker %d started", &pid) == 1) started_.insert(pid);
      seen_.push_back(*line);
      if (line->starts_with(prefix) && line->find(also) != std::string::npos) return *line;
    }
  }

  int pid_of_worker_line(const std::string& line) { return std::stoi(line.substr(7)); }

  /// The pid of a "worker N exited: exit status 0" line, 0 for any other line.
  int exited_cleanly(const std::string& line) {
    int pid = 0;
    if (line.find(" exited: ") == std::string::npos ||
        std::sscanf(line.c_str(), "worker %d exited", &pid) != 1)
      return 0;
    EXPECT_THAT(line, ::testing::EndsWith("exited: exit status 0"));
    return pid;
  }

  json control(const json& request) {
    auto c = ipckit::net::dial(io_.get_executor(), "unix", control_path().string());
    ipckit::json_channel<ipckit::net::conn> channel(std::move(c), {ipckit::framing::newline});
    channel.send(request);
    json reply;
    bool done = false;
    channel.async_receive([&](ipckit::error_code ec, json r) {
      done = true;
      if (!ec) reply = std::move(r);
      else ADD_FAILURE() << "control " << request << ": " << ec.message();
    });
    EXPECT_TRUE(ipckit::test::run_until(io_, [&] { return done; }, 10s)) << request;
    return reply;
  }

  std::set<int> worker_pids() {
    std::set<int> pids;
    const json reply = control({{"cmd", "workers"}});
  for (auto& w : reply["workers"]) pids.insert(w["pid"].get<int>());
    return pids;
  }

  asio::io_context io_;
  std::unique_ptr<peer_process> daemon_;
  int pid_ = 0;
  std::string address_;
  std::string control_address_;
  std::set<int> started_;
  std::vector<std::string> seen_;  // every line the daemon printed so far
};

TEST_F(daemon_test, serves_many_connections_from_its_workers) {
  start(3);
  const auto workers = worker_pids();
  ASSERT_EQ(workers.size(), 3u);
  std::vector<std::unique_ptr<line_client>> clients;
  for (int i = 0; i < 100; ++i) {
    clients.push_back(std::make_unique<line_client>(io_, address_));
    clients.back()->send("hello " + std::to_string(i) + "\n");
  }
  for (auto& c : clients) {
    auto reply = c->read_line();
    ASSERT_TRUE(reply);
    EXPECT_TRUE(workers.contains(std::stoi(*reply))) << *reply;
  }
  // Two lines on one connection, in one write: two replies, in order.
  line_client c(io_, address_);
  c.send("one\ntwo\n");
  EXPECT_THAT(c.read_line().value_or(""), ::testing::EndsWith(": one"));
  EXPECT_THAT(c.read_line().value_or(""), ::testing::EndsWith(": two"));
}

TEST_F(daemon_test, restarts_a_crashed_worker) {
  start(2);
  const auto before = worker_pids();
  const int victim = *before.begin();
  ASSERT_EQ(::kill(victim, SIGKILL), 0);
  expect_line("worker " + std::to_string(victim) + " exited: signal: killed");
  const int fresh = pid_of_worker_line(expect_line("worker ", " ready"));
  const auto after = worker_pids();
  EXPECT_FALSE(after.contains(victim));
  EXPECT_TRUE(after.contains(fresh));
  EXPECT_EQ(after.size(), 2u);
  const auto status = control({{"cmd", "status"}});
  EXPECT_EQ(status["restarts"], 1);
  EXPECT_EQ(status["workers"], 2);
  line_client c(io_, address_);
  EXPECT_TRUE(after.contains(c.ask("still served")));
}

TEST_F(daemon_test, sighup_replaces_workers_without_dropping_a_connection) {
  start(2);
  const auto old_workers = worker_pids();
  std::vector<std::unique_ptr<line_client>> open;
  std::vector<int> served_by;
  for (int i = 0; i < 10; ++i) {
    open.push_back(std::make_unique<line_client>(io_, address_));
    served_by.push_back(open.back()->ask("before " + std::to_string(i)));
  }
  open[0]->send("half a li");  // in flight while the daemon reloads

  ASSERT_EQ(::kill(pid_, SIGHUP), 0);
  expect_line("reloaded: generation 2 ready");
  // Two new workers; the old ones that still hold connections are draining.
  const std::set<int> busy(served_by.begin(), served_by.end());
  int generation_2 = 0;
  const json during = control({{"cmd", "workers"}});
  for (auto& w : during["workers"]) {
    if (w["generation"] == 2) {
      ++generation_2;
    } else if (busy.contains(w["pid"].get<int>())) {
      EXPECT_EQ(w["state"], "draining") << w;
    }
  }
  EXPECT_EQ(generation_2, 2);

  // Every open connection is still served, by the worker that accepted it.
  open[0]->send("ne\n");
  EXPECT_EQ(open[0]->read_line().value_or(""), std::to_string(served_by[0]) + ": half a line");
  for (int i = 0; i < 10; ++i)
    EXPECT_EQ(open[i]->ask("after " + std::to_string(i)), served_by[i]);

  // New connections go to the new generation.
  line_client fresh(io_, address_);
  EXPECT_FALSE(old_workers.contains(fresh.ask("new")));

  // The old workers exit 0 once their last connection closes.
  // (One that held no connection may have gone already: its line was read above.)
  for (auto& c : open) c->close();
  std::set<int> draining = old_workers;
  for (const auto& line : seen_) draining.erase(exited_cleanly(line));
  while (!draining.empty() && !HasFailure()) draining.erase(exited_cleanly(expect_line("worker ", " exited")));
  const json after = control({{"cmd", "workers"}});
  for (auto& w : after["workers"]) EXPECT_EQ(w["generation"], 2) << w;
}

TEST_F(daemon_test, control_socket_answers_status_workers_reload_and_stop) {
  start(2);
  auto status = control({{"cmd", "status"}});
  EXPECT_EQ(status["ok"], true);
  EXPECT_EQ(status["pid"], pid_);
  EXPECT_EQ(status["address"], address_);
  EXPECT_EQ(status["state"], "running");
  EXPECT_EQ(status["generation"], 1);
  EXPECT_EQ(status["workers"], 2);

  auto workers = control({{"cmd", "workers"}});
  ASSERT_EQ(workers["workers"].size(), 2u);
  for (auto& w : workers["workers"]) EXPECT_EQ(w["state"], "ready") << w;

  auto unknown = control({{"cmd", "dance"}});
  EXPECT_EQ(unknown["ok"], false);
  EXPECT_THAT(unknown["error"].get<std::string>(), HasSubstr("unknown cmd \"dance\""));

  // A malformed line gets an error, and the same connection keeps working.
  auto c = ipckit::net::dial(io_.get_executor(), "unix", control_path().string());
  c.write_some(asio::buffer(std::string("{not json\n{\"cmd\":\"status\"}\n")));
  ipckit::json_channel<ipckit::net::conn&> channel(c, {ipckit::framing::newline});
  std::vector<json> replies;
  std::function<void()> next = [&] {
    channel.async_receive([&](ipckit::error_code ec, json r) {
      if (ec) return;
      replies.push_back(r);
      if (replies.size() < 2) next();
    });
  };
  next();
  ASSERT_TRUE(ipckit::test::run_until(io_, [&] { return replies.size() == 2; }));
  EXPECT_EQ(replies[0]["ok"], false);
  EXPECT_THAT(replies[0]["error"].get<std::string>(), StartsWith("malformed JSON"));
  EXPECT_EQ(replies[1]["ok"], true);

  auto reload = control({{"cmd", "reload"}});
  EXPECT_EQ(reload["ok"], true);
  EXPECT_EQ(reload["generation"], 2);
  expect_line("reloaded: generation 2 ready");

  auto stop = control({{"cmd", "stop"}});
  EXPECT_EQ(stop["ok"], true);
  EXPECT_EQ(daemon_->wait(30s), 0);
  EXPECT_FALSE(fs::exists(pidfile()));
  EXPECT_FALSE(fs::exists(control_path()));
}

TEST_F(daemon_test, control_socket_refuses_another_uid) {
  if (::geteuid() != 0) GTEST_SKIP() << "needs root to connect as another uid";
  // An abstract socket has no file mode: the peer-credential check is the only gate.
  control_address_ = "@" + ipckit::test::unique_ipc_name("daemon-control").substr(1);
  start(1);
  // Connect as nobody (SO_PEERCRED is taken at connect) and print what the daemon says:
  // it refuses at once, before any request.
  const std::string as_nobody =
      "import os, socket\n"
      "os.setgid(65534); os.setuid(65534)\n"
      "s = socket.socket(socket.AF_UNIX)\n"
      "s.connect('\\0" + control_address_.substr(1) + "')\n"
      "print(s.makefile().readline().strip())\n";
  auto result = ipckit::test::run_process({"python3", "-c", as_nobody});
  ASSERT_EQ(result.exit_code, 0) << result.err;
  const auto reply = json::parse(result.out);
  EXPECT_EQ(reply["ok"], false);
  EXPECT_EQ(reply["error"], "permission denied: uid 65534");
  // Root (our uid) is answered on the same socket.
  auto ours = ipckit::test::run_process(
      {"python3", "-c",
       "import socket\ns = socket.socket(socket.AF_UNIX)\ns.connect('\\0" +
           control_address_.substr(1) +
           "')\ns.sendall(b'{\"cmd\":\"status\"}\\n')\nprint(s.makefile().readline().strip())\n"});
  EXPECT_EQ(json::parse(ours.out)["ok"], true) << ours.out << ours.err;
}

TEST_F(daemon_test, second_instance_is_refused) {
  start(1);
  auto second = ipckit::test::run_process(daemon_argv(1));
  EXPECT_EQ(second.exit_code, 1);
  EXPECT_THAT(second.err, HasSubstr("already running as pid " + std::to_string(pid_)));
  // The first instance is untouched.
  EXPECT_EQ(control({{"cmd", "status"}})["pid"], pid_);
  EXPECT_TRUE(fs::exists(pidfile()));
}

TEST_F(daemon_test, sigterm_drains_then_exits_0_and_cleans_up) {
  start(2);
  const auto workers = worker_pids();
  line_client c(io_, address_);
  const int server = c.ask("before");
  ASSERT_EQ(::kill(pid_, SIGTERM), 0);
  expect_line("stopping: 2 workers draining");
  // The open connection is still answered while its worker drains.
  EXPECT_EQ(c.ask("during"), server);
  c.close();
  expect_line("stopped");
  EXPECT_EQ(daemon_->wait(30s), 0);
  EXPECT_FALSE(fs::exists(pidfile()));
  EXPECT_FALSE(fs::exists(control_path()));
  for (int pid : workers) EXPECT_TRUE(gone_within(pid, 1s)) << pid;
}

TEST_F(daemon_test, worker_runs_under_socket_activation) {
  if (!fs::exists(daemon_path())) GTEST_SKIP() << daemon_path() << " not built";
  // What systemd does for a .socket unit: listen, put the socket at fd 3, set
  // LISTEN_FDS=1 and LISTEN_PID to the pid that will exec the service.
  const std::string as_systemd =
      "import os, socket, sys\n"
      "s = socket.socket(); s.bind(('127.0.0.1', 0)); s.listen()\n"
      "print('%s:%d' % s.getsockname(), flush=True)\n"
      "fd = s.detach()\n"
      "if fd != 3: os.dup2(fd, 3); os.close(fd)\n"
      "os.set_inheritable(3, True)\n"
      "os.environ['LISTEN_FDS'] = '1'; os.environ['LISTEN_PID'] = str(os.getpid())\n"
      "os.execv(sys.argv[1], [sys.argv[1], 'worker'])\n";
  peer_process worker({"python3", "-c", as_systemd, daemon_path()});
  const auto address = worker.read_line();
  ASSERT_TRUE(address);
  EXPECT_EQ(worker.read_line(), "ready");
  line_client c(io_, *address);
  EXPECT_EQ(c.ask("activated"), worker.pid());
  c.close();
  worker.kill(SIGTERM);
  EXPECT_EQ(worker.wait(10s), 0);
}

TEST_F(daemon_test, worker_ignores_sockets_meant_for_another_pid) {
  if (!fs::exists(daemon_path())) GTEST_SKIP() << daemon_path() << " not built";
  auto result = ipckit::test::run_process(
      {"env", "LISTEN_FDS=1", "LISTEN_PID=1", daemon_path(), "worker"});
  EXPECT_EQ(result.exit_code, 1);
  EXPECT_THAT(result.err, HasSubstr("no listening sockets"));
}

}  // namespace
