// ipckit-daemon: a pre-forking tcp daemon built on ipckit, to read and to copy.
//
//   ipckit-daemon [--workers N] [--pidfile PATH] [--control ADDRESS] [--control-mode MODE]
//                 [--drain-timeout D] [--network NET] ADDRESS      the supervisor
//   ipckit-daemon worker [--drain-timeout D]                        one worker (systemd)
//   ipckit-daemon exec-worker PROGRAM ARGS…                         internal trampoline
//
// See docs/daemon.md for the walk-through.
#include "listen_fds.hpp"
#include "supervisor.hpp"
#include "worker.hpp"

#include <ipckit/duration.hpp>

#include <cstdio>
#include <cstdlib>
#include <filesystem>
#include <string>
#include <string_view>
#include <vector>

namespace {

constexpr const char* usage =
    "usage: ipckit-daemon [options] ADDRESS\n"
    "       ipckit-daemon worker [--drain-timeout D]\n"
    "options:\n"
    "  --network NET        tcp, tcp4, tcp6 or unix (default tcp)\n"
    "  --workers N          worker processes (default 2)\n"
    "  --pidfile PATH       single-instance lock (default ./ipckit-daemon.pid)\n"
    "  --control ADDRESS    JSON control socket: a unix path or @abstract name\n"
    "  --control-mode MODE  file mode of the control socket, octal (default 0600)\n"
    "  --drain-timeout D    how long stopping workers serve open connections (default 30s)\n";

int bad_usage(const std::string& why) {
  std::fprintf(stderr, "ipckit-daemon: %s\n%s", why.c_str(), usage);
  return 2;
}

}  // namespace

int main(int argc, char** argv) {
  std::vector<std::string> args(argv + 1, argv + argc);

  if (!args.empty() && args[0] == "exec-worker") {
    if (args.size() < 2) return bad_usage("exec-worker needs a program");
    std::string error;
    daemon_demo::exec_with_listen_pid({args.begin() + 1, args.end()}, error);
    std::fprintf(stderr, "ipckit-daemon: %s\n", error.c_str());
    return 127;
  }

  daemon_demo::supervisor_options daemon;
  daemon_demo::worker_options worker;
  daemon.pidfile = "ipckit-daemon.pid";
  const bool worker_mode = !args.empty() && args[0] == "worker";
  try {
    for (std::size_t i = worker_mode ? 1 : 0; i < args.size(); ++i) {
      const std::string& a = args[i];
      auto value = [&]() -> const std::string& {
        if (i + 1 == args.size()) throw std::invalid_argument(a + " needs a value");
        return args[++i];
      };
      if (a == "-h" || a == "--help") return std::fputs(usage, stdout), 0;
      else if (a == "--drain-timeout") worker.drain_timeout = ipckit::parse_duration(value());
      else if (worker_mode) return bad_usage("unknown worker option " + a);
      else if (a == "--network") daemon.network = value();
      else if (a == "--workers") daemon.workers = std::stoi(value());
      else if (a == "--pidfile") daemon.pidfile = value();
      else if (a == "--control") daemon.control = value();
      else if (a == "--control-mode") daemon.control_mode = std::stoul(value(), nullptr, 8);
      else if (a.starts_with("-")) return bad_usage("unknown option " + a);
      else if (daemon.address.empty()) daemon.address = a;
      else return bad_usage("one ADDRESS only");
    }
  } catch (const std::exception& e) {
    return bad_usage(e.what());
  }

  if (worker_mode) return daemon_demo::worker_main(worker);

  if (daemon.address.empty()) return bad_usage("missing ADDRESS");
  if (daemon.workers < 1) return bad_usage("--workers must be at least 1");
  daemon.drain_timeout = worker.drain_timeout;
  // The workers are this same program; /proc/self/exe survives a relative argv[0].
  daemon.self = std::filesystem::read_symlink("/proc/self/exe").string();
  return daemon_demo::supervisor_main(daemon);
}
