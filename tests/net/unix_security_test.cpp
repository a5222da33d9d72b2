// Unix listeners for daemons that face other local users: the socket file's mode, a
// private directory, and the peer-credential policy applied before accept returns.
// Peers of another uid are the helper child dropped to nobody (root only: skipped
// otherwise); the policy's refusal path is also driven by our own uid, as any user.
#include "net_test_util.hpp"

#include <ipckit/net.hpp>

#include <boost/asio/steady_timer.hpp>
#include <boost/asio/write.hpp>
#include <gmock/gmock.h>

#include <sys/stat.h>
#include <unistd.h>

namespace {

namespace fs = std::filesystem;
namespace net = ipckit::net;
namespace asio = boost::asio;
using ipckit::error_code;
using ipckit::test::peer_process;
using ::testing::HasSubstr;

constexpr uid_t nobody = 65534;
constexpr gid_t nogroup = 65534;
#define SKIP_UNLESS_ROOT() \
  if (::geteuid() != 0) GTEST_SKIP() << "needs root to run a peer as another uid (nobody)"

class unix_security : public ipckit::test::temp_dir_test {
 protected:
  asio::io_context io;
  net::executor_type ex = io.get_executor();

  // An abstract address: it has no file mode, so only the policy decides who gets in.
  static std::string abstract_address(std::string_view tag) {
    return "@" + ipckit::test::unique_ipc_name(tag).substr(1);
  }
  static std::vector<std::string> dial_as(uid_t uid, gid_t gid, const std::string& network,
                                          const std::string& address) {
    return {ipckit::test::helper_path(), "as-user", std::to_string(uid), std::to_string(gid),
            "unix-dial", network, address};
  }
  static std::vector<std::string> dial_as_us(const std::string& network, const std::string& address) {
    return {ipckit::test::helper_path(), "unix-dial", network, address};
  }
  static mode_t mode_of(const fs::path& p) {
    struct stat st {};
    EXPECT_EQ(::lstat(p.c_str(), &st), 0) << p;
    return st.st_mode & 07777;
  }
};

// ---- private directory --------------------------------------------------------------------

TEST_F(unix_security, private_directory_is_created_0700) {
  const fs::path path = dir() / "run" / "app.sock";
  net::listen_config config;
  config.private_directory = true;
  net::listener l = net::listen(ex, "unix", path.string(), config);
  EXPECT_TRUE(fs::is_directory(dir() / "run"));
  EXPECT_EQ(mode_of(dir() / "run"), 0700u);
  EXPECT_EQ(mode_of(path), 0600u);
  net::conn c = net::dial(ex, "unix", path.string());
  EXPECT_TRUE(l.accept().is_open());
}

TEST_F(unix_security, private_directory_of_ours_not_writable_by_others_is_used) {
  fs::create_directory(dir() / "run");
  ASSERT_EQ(::chmod((dir() / "run").c_str(), 0755), 0);
  net::listen_config config;
  config.private_directory = true;
  error_code ec;
  net::listener l = net::listen(ex, "unix", (dir() / "run" / "app.sock").string(), config, ec);
  EXPECT_FALSE(ec) << ec.message();
  EXPECT_EQ(mode_of(dir() / "run"), 0755u) << "an existing directory is left as it is";
}

TEST_F(unix_security, private_directory_writable_by_group_or_others_is_refused) {
  for (mode_t mode : {0770, 0720, 0702, 0777, 01777}) {
    SCOPED_TRACE(mode);
    const fs::path run = dir() / ("run" + std::to_string(mode));
    fs::create_directory(run);
    ASSERT_EQ(::chmod(run.c_str(), mode), 0);
    net::listen_config config;
    config.private_directory = true;
    error_code ec;
    net::listen(ex, "unix", (run / "app.sock").string(), config, ec);
    EXPECT_EQ(ec, net::errc::insecure_directory);
    EXPECT_FALSE(fs::exists(run / "app.sock")) << "nothing is bound in a refused directory";
  }
}

TEST_F(unix_security, private_directory_that_is_a_symlink_is_refused) {
  fs::create_directory(dir() / "real");
  ASSERT_EQ(::chmod((dir() / "real").c_str(), 0700), 0);
  fs::create_directory_symlink(dir() / "real", dir() / "link");
  net::listen_config config;
  config.private_directory = true;
  error_code ec;
  net::listen(ex, "unix", (dir() / "link" / "app.sock").string(), config, ec);
  EXPECT_EQ(ec, net::errc::insecure_directory);
  EXPECT_FALSE(fs::exists(dir() / "real" / "app.sock"));
}

TEST_F(unix_security, private_directory_of_another_owner_is_refused) {
  SKIP_UNLESS_ROOT();
  fs::create_directory(dir() / "run");
  ASSERT_EQ(::chmod((dir() / "run").c_str(), 0700), 0);
  ASSERT_EQ(::chown((dir() / "run").c_str(), nobody, nogroup), 0);
  net::listen_config config;
  config.private_directory = true;
  error_code ec;
  net::listen(ex, "unix", (dir() / "run" / "app.sock").string(), config, ec);
  EXPECT_EQ(ec, net::errc::insecure_directory);
}

TEST_F(unix_security, private_directory_error_reads_as_go) {
  fs::create_directory(dir() / "run");
  ASSERT_EQ(::chmod((dir() / "run").c_str(), 0777), 0);
  const std::string path = (dir() / "run" / "app.sock").string();
  net::listen_config config;
  config.private_directory = true;
  try {
    net::listen(ex, "unix", path, config);
    FAIL() << "no error";
  } catch (const ipckit::system_error& e) {
    EXPECT_EQ(std::string(e.what()),
              "listen unix " + path + ": private directory " + (dir() / "run").string() +
                  ": insecure directory: not a directory of ours closed to group and others");
  }
}

TEST_F(unix_security, private_directory_missing_parent_is_an_error) {
  net::listen_config config;
  config.private_directory = true;
  error_code ec;
  net::listen(ex, "unix", (dir() / "no" / "such" / "app.sock").string(), config, ec);
  EXPECT_EQ(ec, boost::system::errc::no_such_file_or_directory);
}

TEST_F(unix_security, private_directory_and_peer_policy_need_the_right_network) {
  net::listen_config private_dir;
  private_dir.private_directory = true;
  net::listen_config policy;
  policy.peers.same_uid = true;
  struct {
    const char* network;
    std::string address;
    const net::listen_config& config;
  } cases[] = {
      {"unix", abstract_address("abstract-private"), private_dir},
      {"unix", "", private_dir},
      {"tcp4", "127.0.0.1:0", private_dir},
      {"tcp4", "127.0.0.1:0", policy},
  };
  for (const auto& c : cases) {
    SCOPED_TRACE(std::string(c.network) + " " + c.address);
    error_code ec;
    net::listen(ex, c.network, c.address, c.config, ec);
    EXPECT_EQ(ec, ipckit::errc::invalid_argument);
  }
}

// ---- socket mode and abstract sockets, across uids ----------------------------------------

TEST_F(unix_security, socket_mode_decides_whether_another_uid_may_connect) {
  SKIP_UNLESS_ROOT();
  ASSERT_EQ(::chmod(dir().c_str(), 0755), 0) << "let nobody reach the socket file";
  struct {
    unsigned mode;
    std::string expected;
  } cases[] = {
      {0600, "dial error: permission denied"},
      {0666, "connected"},
  };
  for (const auto& c : cases) {
    SCOPED_TRACE(c.mode);
    const std::string path = (dir() / ("mode" + std::to_string(c.mode) + ".sock")).string();
    net::listen_config config;
    config.mode = c.mode;
    net::listener l = net::listen(ex, "unix", path, config);
    EXPECT_EQ(mode_of(path), c.mode);
    peer_process peer(dial_as(nobody, nogroup, "unix", path));
    EXPECT_EQ(peer.read_line(), c.expected);
  }
}

TEST_F(unix_security, abstract_socket_is_reachable_by_another_uid) {
  SKIP_UNLESS_ROOT();
  // listen_config::mode has nothing to apply to: any uid in the network namespace connects.
  const std::string address = abstract_address("abstract-reach");
  net::listener l = net::listen(ex, "unix", address);
  peer_process peer(dial_as(nobody, nogroup, "unix", address));
  ASSERT_EQ(peer.read_line(), "connected");
  net::conn c = l.accept();
  EXPECT_EQ(c.peer_credentials().uid, nobody);
  EXPECT_EQ(c.peer_credentials().pid, peer.pid());
}

// ---- peer policy ---------------------------------------------------------------------------

struct refusal_log {
  std::vector<net::credentials> refused;
  net::peer_policy policy() {
    net::peer_policy p;
    p.on_refused = [this](const net::credentials& c) { refused.push_back(c); };
    return p;
  }
};

TEST_F(unix_security, same_uid_policy_refuses_another_uid_before_accept_returns) {
  SKIP_UNLESS_ROOT();
  const std::string address = abstract_address("policy-sync");
  refusal_log log;
  net::listen_config config;
  config.peers = log.policy();
  config.peers.same_uid = true;
  net::listener l = net::listen(ex, "unix", address, config);
  // Both connect before accept runs: the stranger is first in the queue.
  peer_process stranger(dial_as(nobody, nogroup, "unix", address));
  ASSERT_EQ(stranger.read_line(), "connected");
  peer_process friendly(dial_as_us("unix", address));
  ASSERT_EQ(friendly.read_line(), "connected");

  net::conn c = l.accept();
  EXPECT_EQ(c.peer_credentials().pid, friendly.pid()) << "accept skipped the stranger";
  asio::write(c, asio::buffer("hello", 5));
  c.close();
  EXPECT_EQ(friendly.read_line(), "received \"hello\"");
  EXPECT_EQ(stranger.read_line(), "received \"\"") << "the stranger's connection was closed";
  EXPECT_EQ(l.refused_count(), 1u);
  ASSERT_EQ(log.refused.size(), 1u);
  EXPECT_EQ(log.refused[0].uid, nobody);
  EXPECT_EQ(log.refused[0].pid, stranger.pid());
}

TEST_F(unix_security, same_uid_policy_refuses_another_uid_in_async_accept) {
  SKIP_UNLESS_ROOT();
  const std::string address = abstract_address("policy-async");
  net::listen_config config;
  config.peers.same_uid = true;
  net::listener l = net::listen(ex, "unix", address, config);
  std::optional<error_code> result;
  net::conn accepted(ex);
  l.async_accept([&](error_code ec, net::conn c) {
    result = ec;
    accepted = std::move(c);
  });

  peer_process stranger(dial_as(nobody, nogroup, "unix", address));
  ASSERT_EQ(stranger.read_line(), "connected");
  ASSERT_TRUE(ipckit::test::run_until(io, [&] { return l.refused_count() == 1; }));
  EXPECT_FALSE(result) << "a refused peer never completes the accept";
  EXPECT_EQ(stranger.read_line(), "received \"\"");

  peer_process friendly(dial_as_us("unix", address));
  ASSERT_EQ(friendly.read_line(), "connected");
  ASSERT_TRUE(ipckit::test::run_until(io, [&] { return result.has_value(); }));
  EXPECT_FALSE(*result);
  EXPECT_EQ(accepted.peer_credentials().pid, friendly.pid());
  EXPECT_EQ(l.refused_count(), 1u);
}

TEST_F(unix_security, uid_and_gid_lists_decide_who_gets_in) {
  SKIP_UNLESS_ROOT();
  struct {
    const char* name;
    std::vector<uid_t> uids;
    std::vector<gid_t> gids;
    bool admitted;
  } cases[] = {
      {"uid listed", {nobody}, {}, true},
      {"gid listed", {}, {nogroup}, true},
      {"neither listed", {12345}, {12345}, false},
  };
  for (const auto& c : cases) {
    SCOPED_TRACE(c.name);
    const std::string address = abstract_address("policy-list");
    net::listen_config config;
    config.peers.uids = c.uids;
    config.peers.gids = c.gids;
    net::listener l = net::listen(ex, "unixpacket", address, config);
    std::optional<error_code> result;
    l.async_accept([&](error_code ec, net::conn) { result = ec; });
    peer_process peer(dial_as(nobody, nogroup, "unixpacket", address));
    ASSERT_EQ(peer.read_line(), "connected");
    ASSERT_TRUE(ipckit::test::run_until(io, [&] { return result || l.refused_count() == 1; }));
    EXPECT_EQ(result.has_value(), c.admitted);
    EXPECT_EQ(l.refused_count(), c.admitted ? 0u : 1u);
    l.close();
    io.run();  // the pending accept, if any, completes with operation_aborted
    io.restart();
  }
}

TEST_F(unix_security, refused_connection_is_closed_and_accept_keeps_waiting) {
  // Any user: an allow-list without our uid refuses our own dial.
  const std::string path = (dir() / "policy.sock").string();
  refusal_log log;
  net::listen_config config;
  config.peers = log.policy();
  config.peers.uids = {::geteuid() + 1};
  net::listener l = net::listen(ex, "unix", path, config);
  std::optional<error_code> result;
  l.async_accept([&](error_code ec, net::conn) { result = ec; });

  net::conn client = net::dial(ex, "unix", path);
  ASSERT_TRUE(ipckit::test::run_until(io, [&] { return l.refused_count() == 1; }));
  char byte;
  error_code read_ec;
  client.read_some(asio::buffer(&byte, 1), read_ec);
  EXPECT_EQ(read_ec, asio::error::eof) << "the listener closed the refused connection";
  EXPECT_FALSE(result) << "the accept is still waiting";
  ASSERT_EQ(log.refused.size(), 1u);
  EXPECT_EQ(log.refused[0].uid, ::geteuid());
  EXPECT_EQ(log.refused[0].pid, ::getpid());

  l.cancel();
  ASSERT_TRUE(ipckit::test::run_until(io, [&] { return result.has_value(); }));
  EXPECT_EQ(*result, asio::error::operation_aborted);
}

TEST_F(unix_security, flood_of_refused_peers_is_all_closed_and_accept_still_waits) {
  // More refused connections than the listener handles per readiness (64): it yields to
  // the loop in between and still refuses every one.
  const std::string path = (dir() / "flood.sock").string();
  net::listen_config config;
  config.backlog = 256;
  config.peers.uids = {::geteuid() + 1};
  net::listener l = net::listen(ex, "unix", path, config);
  std::optional<error_code> result;
  l.async_accept([&](error_code ec, net::conn) { result = ec; });
  std::vector<net::conn> clients;
  for (int i = 0; i < 150; ++i) clients.push_back(net::dial(ex, "unix", path));
  // A timer that keeps firing notes the count each time it runs: it must see the
  // refusals part done, so the listener did not take them all in one handler.
  std::vector<std::size_t> seen;
  asio::steady_timer timer(ex);
  std::function<void()> tick = [&] {
    timer.expires_after(std::chrono::milliseconds(0));
    timer.async_wait([&](error_code ec) {
      seen.push_back(l.refused_count());
      if (!ec && l.refused_count() < 150) tick();
    });
  };
  tick();
  ASSERT_TRUE(ipckit::test::run_until(io, [&] { return l.refused_count() == 150 && !seen.empty() && seen.back() == 150; }));
  EXPECT_TRUE(std::any_of(seen.begin(), seen.end(), [](std::size_t n) { return n > 0 && n < 150; }))
      << "other handlers ran between batches of refusals";
  EXPECT_FALSE(result);
  for (auto& c : clients) {
    char byte;
    error_code ec;
    c.read_some(asio::buffer(&byte, 1), ec);
    EXPECT_EQ(ec, asio::error::eof);
  }
  l.cancel();
  ASSERT_TRUE(ipckit::test::run_until(io, [&] { return result.has_value(); }));
  EXPECT_EQ(*result, asio::error::operation_aborted);
}

TEST_F(unix_security, same_uid_policy_admits_our_own_peer) {
  for (const char* network : {"unix", "unixpacket"}) {
    SCOPED_TRACE(network);
    const std::string path = (dir() / (std::string(network) + ".sock")).string();
    net::listen_config config;
    config.peers.same_uid = true;
    net::listener l = net::listen(ex, network, path, config);
    peer_process peer(dial_as_us(network, path));
    ASSERT_EQ(peer.read_line(), "connected");
    net::conn c = l.accept();
    EXPECT_EQ(c.peer_credentials().uid, ::geteuid());
    EXPECT_EQ(c.peer_credentials().pid, peer.pid());
    EXPECT_EQ(l.refused_count(), 0u);
  }
}

TEST_F(unix_security, peer_policy_rules_match_any) {
  net::peer_policy empty;
  EXPECT_TRUE(empty.allows({1, 4242, 4242}));
  net::peer_policy same;
  same.same_uid = true;
  EXPECT_TRUE(same.allows({1, ::geteuid(), 4242}));
  EXPECT_FALSE(same.allows({1, ::geteuid() + 1, 4242}));
  net::peer_policy lists;
  lists.uids = {10};
  lists.gids = {20};
  EXPECT_TRUE(lists.allows({1, 10, 99}));
  EXPECT_TRUE(lists.allows({1, 99, 20}));
  EXPECT_FALSE(lists.allows({1, 99, 99}));
  EXPECT_FALSE(lists.allows({1, 0, 0})) << "root is not implied";
}

}  // namespace
