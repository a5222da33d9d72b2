// The control socket: newline-delimited JSON requests and replies on a unix socket
// ({"cmd":"status"} -> {"ok":true,…}), open only to our own uid and root.
#pragma once

#include <ipckit/net.hpp>

#include <nlohmann/json.hpp>

#include <functional>
#include <string>

namespace daemon_demo {

class control_server {
 public:
  /// Answers one request; runs on the loop.
  using handler = std::function<nlohmann::json(const nlohmann::json& request)>;

  /// Listens on `address`: a path (created with `mode`, removed on close) or "@name" in
  /// the abstract namespace (no file, no mode: the uid check is the only gate there).
  control_server(const ipckit::net::executor_type& ex, const std::string& address,
                 unsigned mode, handler answer);

  std::string address() const { return listener_.addr().to_string(); }
  /// Stops accepting and removes the socket file. Open sessions end with the loop.
  void close();

 private:
  void accept_next();

  ipckit::net::listener listener_;
  handler answer_;
};

/// A peer we answer: the daemon's own uid, or root (the library's peer_policy, applied by
/// the session rather than by the listener, so that a refused peer is told why).
bool peer_allowed(const ipckit::net::credentials& peer);

}  // namespace daemon_demo
