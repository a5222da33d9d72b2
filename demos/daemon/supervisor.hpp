// The supervisor: owns the pidfile, the listening socket and the control socket, and
// keeps N workers running: it restarts a worker that dies, replaces them all on SIGHUP
// (new ones first), and on SIGTERM lets them drain, then cleans up and exits 0.
#pragma once

#include <chrono>
#include <filesystem>
#include <string>

namespace daemon_demo {

struct supervisor_options {
  std::string network = "tcp";
  std::string address;              ///< what to listen on: "127.0.0.1:0", ":8080"
  int workers = 2;
  std::filesystem::path pidfile;
  std::string control;              ///< unix path or "@abstract"; empty: no control socket
  unsigned control_mode = 0600;
  std::chrono::nanoseconds drain_timeout = std::chrono::seconds(30);
  std::string self;                 ///< this program, started as the worker
};

/// Runs the daemon; returns the exit status (0 after a graceful stop).
int supervisor_main(const supervisor_options& options);

}  // namespace daemon_demo
