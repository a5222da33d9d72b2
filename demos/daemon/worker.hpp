// The worker: serves a line protocol on the listening sockets it inherited (from the
// supervisor, or from systemd's socket activation: the same code path, see listen_fds.hpp).
#pragma once

#include <chrono>

namespace daemon_demo {

struct worker_options {
  /// How long a stopping worker lets its open connections run before closing them.
  std::chrono::nanoseconds drain_timeout = std::chrono::seconds(30);
};

/// Runs the worker until it is told to stop (SIGTERM or SIGINT) and has drained.
/// Returns the exit status: 0 after a clean drain, 1 when it had nothing to listen on.
int worker_main(const worker_options& options);

}  // namespace daemon_demo
