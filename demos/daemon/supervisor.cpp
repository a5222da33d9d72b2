#include "supervisor.hpp"

#include "control.hpp"

#include <ipckit/duration.hpp>
#include <ipckit/file_lock.hpp>
#include <ipckit/net.hpp>
#include <ipckit/process.hpp>
#include <ipckit/signal.hpp>

#include <boost/asio/post.hpp>
#include <boost/asio/read_until.hpp>
#include <boost/asio/steady_timer.hpp>
#include <boost/asio/streambuf.hpp>

#include <csignal>
#include <cstdarg>
#include <cstdio>
#include <map>
#include <memory>
#include <optional>
#include <unistd.h>

namespace daemon_demo {
namespace {

namespace asio = boost::asio;
using ipckit::error_code;
using json = nlohmann::json;

// Every event goes to stdout, one line each, flushed: the log and the tests' hook.
__attribute__((format(printf, 1, 2))) void say(const char* format, ...) {
  va_list args;
  va_start(args, format);
  std::vprintf(format, args);
  va_end(args);
  std::putchar('\n');
  std::fflush(stdout);
}

struct worker_process {
  enum class state { starting, ready, draining };
  std::unique_ptr<ipckit::command> cmd;
  std::optional<ipckit::pipe_reader> out;  // the worker's stdout: it says "ready" there
  asio::streambuf line;
  int generation = 0;
  state current = state::starting;

  static const char* name(state s) {
    return s == state::starting ? "starting" : s == state::ready ? "ready" : "draining";
  }
};

class supervisor {
 public:
  supervisor(asio::io_context& io, supervisor_options options)
      : io_(io),
        options_(std::move(options)),
        pidfile_(options_.pidfile),  // throws already_running_error for a second instance
        listener_(ipckit::net::listen(io.get_executor(), options_.network, options_.address)),
        signals_(io, {SIGHUP, SIGTERM, SIGINT}),
        stop_timer_(io) {
    say("pid %d", ::getpid());
    say("listening on %s %s", options_.network.c_str(), listener_.addr().to_string().c_str());
    if (!options_.control.empty()) {
      control_.emplace(io.get_executor(), options_.control, options_.control_mode,
                       [this](const json& request) { return answer(request); });
      say("control on %s", control_->address().c_str());
    }
    signals_.on_signal([this](const ipckit::signal::info& sig) {
      say("got %s from pid %d", ipckit::signal::name(sig.number).c_str(), int(sig.sender_pid.value_or(0)));
      if (sig.number == SIGHUP) reload();
      else stop();
    });
    for (int i = 0; i < options_.workers; ++i) start_worker();
  }

  int exit_status() const { return exit_status_; }

 private:
  // ---- workers ----

  void start_worker() {
    auto w = std::make_shared<worker_process>();
    w->generation = generation_;
    // Through the trampoline, so that LISTEN_PID is the worker's own pid (listen_fds.hpp).
    w->cmd = std::make_unique<ipckit::command>(
        io_.get_executor(), options_.self,
        std::vector<std::string>{"exec-worker", options_.self, "worker", "--drain-timeout",
                                 ipckit::format_duration(options_.drain_timeout)});
    w->cmd->add_fd(listener_.native_handle(), 3);
    w->cmd->setenv("LISTEN_FDS", "1");
    w->cmd->setenv("LISTEN_FDNAMES", "echo");
    w->cmd->unsetenv("LISTEN_PID");
    w->out.emplace(w->cmd->stdout_pipe());
    w->cmd->set_stderr(ipckit::stdio::inherit());
    // If the supervisor is killed outright, its workers drain and go too.
    w->cmd->set_parent_death_signal(SIGTERM);
    error_code ec;
    w->cmd->start(ec);
    if (ec) {
      say("cannot start a worker: %s", ec.message().c_str());
      return;
    }
    const int pid = w->cmd->pid();
    workers_[pid] = w;
    say("worker %d started (generation %d)", pid, w->generation);
    read_status(w);
    w->cmd->async_wait([this, w](error_code, ipckit::process_state state) { exited(w, state); });
  }

  void read_status(const std::shared_ptr<worker_process>& w) {
    asio::async_read_until(*w->out, w->line, '\n', [this, w](error_code ec, std::size_t n) {
      if (ec) return;  // EOF: the worker is gone, exited() handles that
      std::string text(asio::buffers_begin(w->line.data()),
                       asio::buffers_begin(w->line.data()) + n - 1);
      w->line.consume(n);
      if (text == "ready" && w->current == worker_process::state::starting) {
        w->current = worker_process::state::ready;
        say("worker %d ready (generation %d)", w->cmd->pid(), w->generation);
        if (reloading_) finish_reload_if_ready();
      }
      read_status(w);
    });
  }

  void exited(const std::shared_ptr<worker_process>& w, const ipckit::process_state& state) {
    const int pid = state.pid();
    workers_.erase(pid);
    say("worker %d exited: %s", pid, state.success() ? "exit status 0" : state.string().c_str());
    if (stopping_) {
      if (workers_.empty()) finish();
      return;
    }
    if (w->current == worker_process::state::draining || w->generation != generation_) return;
    // A crash: replace it. One that died before it was ready is restarted after a pause,
    // so that a worker that cannot start does not make us fork in a tight loop.
    ++restarts_;
    if (w->current == worker_process::state::ready) return start_worker();
    auto timer = std::make_shared<asio::steady_timer>(io_, std::chrono::seconds(1));
    timer->async_wait([this, timer](error_code ec) {
      if (!ec && !stopping_) start_worker();
    });
  }

  // ---- reload: new workers first; the old ones drain once all the new ones are ready ----

  bool reload() {
    if (stopping_ || reloading_) return false;
    reloading_ = true;
    ++generation_;
    say("reloading: starting generation %d", generation_);
    for (int i = 0; i < options_.workers; ++i) start_worker();
    return true;
  }

  void finish_reload_if_ready() {
    int ready = 0;
    for (auto& [pid, w] : workers_)
      if (w->generation == generation_ && w->current == worker_process::state::ready) ++ready;
    if (ready < options_.workers) return;
    reloading_ = false;
    int old = 0;
    for (auto& [pid, w] : workers_) {
      if (w->generation == generation_) continue;
      w->current = worker_process::state::draining;
      error_code ignored;  // it may have exited already: exited() will see it
      w->cmd->signal(SIGTERM, ignored);
      ++old;
    }
    say("reloaded: generation %d ready, %d old workers draining", generation_, old);
  }

  // ---- stop: every worker drains; then the files go and the loop ends ----

  void stop() {
    if (stopping_) return;
    stopping_ = true;
    say("stopping: %zu workers draining", workers_.size());
    for (auto& [pid, w] : workers_) {
      w->current = worker_process::state::draining;
      error_code ignored;
      w->cmd->signal(SIGTERM, ignored);
    }
    if (workers_.empty()) return finish();
    // A worker that does not finish its drain in time is killed.
    stop_timer_.expires_after(options_.drain_timeout + std::chrono::seconds(5));
    stop_timer_.async_wait([this](error_code ec) {
      if (ec) return;
      for (auto& [pid, w] : workers_) w->cmd->kill();
      exit_status_ = 1;
    });
  }

  void finish() {
    stop_timer_.cancel();
    if (control_) control_->close();  // removes the socket file
    listener_.close();
    pidfile_.release();  // removes the pidfile
    signals_.stop();
    say("stopped");
    io_.stop();
  }

  // ---- the control socket ----

  json answer(const json& request) {
    const std::string cmd = request.is_object() ? request.value("cmd", "") : "";
    if (cmd == "status")
      return {{"ok", true},
              {"pid", ::getpid()},
              {"address", listener_.addr().to_string()},
              {"state", stopping_ ? "stopping" : reloading_ ? "reloading" : "running"},
              {"generation", generation_},
              {"workers", workers_.size()},
              {"restarts", restarts_}};
    if (cmd == "workers") {
      json list = json::array();
      for (auto& [pid, w] : workers_)
        list.push_back({{"pid", pid},
                        {"generation", w->generation},
                        {"state", worker_process::name(w->current)}});
      return {{"ok", true}, {"workers", list}};
    }
    if (cmd == "reload") {
      if (!reload()) return {{"ok", false}, {"error", stopping_ ? "stopping" : "already reloading"}};
      return {{"ok", true}, {"generation", generation_}};
    }
    if (cmd == "stop") {
      asio::post(io_, [this] { stop(); });  // after this reply is on its way
      return {{"ok", true}, {"state", "stopping"}};
    }
    return {{"ok", false}, {"error", "unknown cmd \"" + cmd + "\" (status, workers, reload, stop)"}};
  }

  asio::io_context& io_;
  supervisor_options options_;
  ipckit::pidfile pidfile_;
  ipckit::net::listener listener_;
  std::optional<control_server> control_;
  ipckit::signal::notifier signals_;
  asio::steady_timer stop_timer_;
  std::map<int, std::shared_ptr<worker_process>> workers_;
  int generation_ = 1;
  int restarts_ = 0;
  bool reloading_ = false;
  bool stopping_ = false;
  int exit_status_ = 0;
};

}  // namespace

int supervisor_main(const supervisor_options& options) {
  asio::io_context io(1);
  std::optional<supervisor> daemon;
  try {
    daemon.emplace(io, options);
  } catch (const std::exception& e) {
    std::fprintf(stderr, "ipckit-daemon: %s\n", e.what());
    return 1;
  }
  io.run();
  return daemon->exit_status();
}

}  // namespace daemon_demo
