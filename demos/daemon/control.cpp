#include "control.hpp"

#include <ipckit/message.hpp>

#include <memory>

namespace daemon_demo {
namespace {

using ipckit::error_code;
using json = nlohmann::json;

json failure(std::string why) { return {{"ok", false}, {"error", std::move(why)}}; }

// One client: requests are answered in order, one at a time.
class control_session : public std::enable_shared_from_this<control_session> {
 public:
  control_session(ipckit::net::conn c, control_server::handler& answer)
      : channel_(std::move(c), {ipckit::framing::newline, 64 * 1024}), answer_(answer) {}

  void start() {
    error_code ec;
    const auto peer = channel_.next_layer().peer_credentials(ec);
    if (ec) return;
    if (!peer_allowed(peer))
      return send(failure("permission denied: uid " + std::to_string(peer.uid)), true);
    receive();
  }

 private:
  void receive() {
    channel_.async_receive([self = shared_from_this()](error_code ec, json request) {
      if (ec == ipckit::message::errc::malformed_json)  // the channel skips the bad line
        return self->send(failure("malformed JSON: " + self->channel_.last_error_detail()), false);
      if (ec) return;  // EOF or an error: drop the connection
      json reply;
      try {
        reply = self->answer_(request);
      } catch (const std::exception& e) {
        reply = failure(e.what());
      }
      self->send(reply, false);
    });
  }

  void send(const json& reply, bool then_close) {
    channel_.async_send(reply, [self = shared_from_this(), then_close](error_code ec) {
      if (!ec && !then_close) self->receive();
    });
  }

  ipckit::json_channel<ipckit::net::conn> channel_;
  control_server::handler& answer_;
};

}  // namespace

bool peer_allowed(const ipckit::net::credentials& peer) {
  static const ipckit::net::peer_policy ours_or_root = [] {
    ipckit::net::peer_policy policy;
    policy.same_uid = true;
    policy.uids = {0};
    return policy;
  }();
  return ours_or_root.allows(peer);
}

control_server::control_server(const ipckit::net::executor_type& ex, const std::string& address,
                               unsigned mode, handler answer)
    : listener_([&] {
        ipckit::net::listen_config config;
        config.mode = mode;
        config.recover_stale = true;  // a socket file left by a daemon that was killed
        return ipckit::net::listen(ex, "unix", address, config);
      }()),
      answer_(std::move(answer)) {
  accept_next();
}

void control_server::accept_next() {
  listener_.async_accept([this](error_code ec, ipckit::net::conn c) {
    if (ec == boost::asio::error::operation_aborted || !listener_.is_open()) return;
    if (!ec) std::make_shared<control_session>(std::move(c), answer_)->start();
    accept_next();
  });
}

void control_server::close() {
  error_code ignored;
  listener_.close(ignored);
}

}  // namespace daemon_demo
