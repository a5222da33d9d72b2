// The fixture of the netns tests: a fresh namespace pair per test (skipped with the
// reason when this host does not allow it), a loop, and peers started inside B.
#pragma once

#include "netns_pair.hpp"

#include <ipckit/net.hpp>

#include <boost/asio/io_context.hpp>

#include <memory>

namespace ipckit::test {

class netns_test : public ::testing::Test {
 protected:
  void SetUp() override {
    std::string why;
    auto made = netns_pair::create(why);
    if (!made) GTEST_SKIP() << why;
    pair_.emplace(std::move(*made));
  }

  netns_pair& ns() { return *pair_; }

  /// `ipckit_helper net-echo NET ADDRESS` inside B; `listening` gets the address it
  /// printed. The peer is killed and reaped when the returned object goes.
  std::unique_ptr<peer_process> echo_in_b(const std::string& net, const std::string& address,
                                          std::string& listening) {
    auto peer = std::make_unique<peer_process>(ns().helper_argv(ns().b(), {"net-echo", net, address}));
    const auto line = peer->read_line();
    EXPECT_TRUE(line && line->starts_with("listening ")) << "net-echo said: " << line.value_or("<nothing>");
    listening = line && line->starts_with("listening ") ? line->substr(10) : std::string();
    return peer;
  }

  boost::asio::io_context io;
  net::executor_type ex = io.get_executor();

 private:
  std::optional<netns_pair> pair_;
};

inline std::string host_of(const net::address& a) { return net::split_host_port(a.to_string()).host; }
inline std::string port_of(const std::string& hostport) { return net::split_host_port(hostport).port; }

}  // namespace ipckit::test
