// Peers that fail: a connection reset in the middle of our write, and a peer killed
// (SIGKILL) while it holds a lock, a semaphore unit or half of a message. Each time the
// side that survives gets a clear result (the resource, an error, EOF) and no signal
// kills it; nothing waits forever.
#include "fault_util.hpp"

#include <ipckit/file_lock.hpp>
#include <ipckit/message.hpp>
#include <ipckit/net.hpp>
#include <ipckit/pipe.hpp>
#include <ipckit/semaphore.hpp>

#include <boost/asio/io_context.hpp>
#include <boost/asio/write.hpp>

#include <csignal>
#include <optional>
#include <sys/ipc.h>

namespace {

using namespace std::chrono_literals;
using ipckit::error_code;
using ipckit::test::pattern;
using ipckit::test::run_until;
using ipckit::test::script_peer;
namespace asio = boost::asio;
namespace net = ipckit::net;

// SIGPIPE back at its default (terminate) while the test writes: a write that raised it
// would kill the test program instead of returning an error. (The test support ignores
// SIGPIPE for its own pipes to peers.)
class default_sigpipe {
 public:
  default_sigpipe() { previous_ = std::signal(SIGPIPE, SIG_DFL); }
  ~default_sigpipe() { std::signal(SIGPIPE, previous_); }

 private:
  void (*previous_)(int) = nullptr;
};

bool is_peer_gone(const error_code& ec) {
  return ec == asio::error::connection_reset || ec == asio::error::broken_pipe;
}

class peer_crash : public ipckit::test::temp_dir_test {
 protected:
  // Kills the peer and reaps it, so that what follows sees a dead process.
  static void kill(script_peer& peer) {
    peer.process().kill(SIGKILL);
    EXPECT_EQ(peer.process().wait(), 128 + SIGKILL);
  }
  asio::io_context io;
  default_sigpipe sigpipe;
};

TEST_F(peer_crash, tcp_peer_reset_mid_write_is_connection_reset_not_sigpipe) {
  auto listener = net::listen(io.get_executor(), "tcp", "127.0.0.1:0");
  script_peer peer;
  peer.run("dial-tcp " + std::to_string(listener.addr().port()));
  net::conn conn = listener.accept();
  const std::string data = pattern(32 << 20);  // far more than the socket buffers hold
  std::optional<error_code> written;
  std::size_t sent = 0;
  asio::async_write(conn, asio::buffer(data), [&](error_code ec, std::size_t n) {
    written = ec;
    sent = n;
  });
  io.poll();
  ASSERT_FALSE(written) << "the write finished before the peer read anything";
  peer.run("reset");  // SO_LINGER 0 then close: RST
  ASSERT_TRUE(run_until(io, [&] { return written.has_value(); }));
  EXPECT_TRUE(is_peer_gone(*written)) << written->message();
  EXPECT_LT(sent, data.size());
  // The blocking form too, on the reset connection.
  error_code ec;
  conn.write_some(asio::buffer(data), ec);
  EXPECT_TRUE(is_peer_gone(ec)) << ec.message();
}

TEST_F(peer_crash, unix_peer_killed_mid_write_is_broken_pipe_not_sigpipe) {
  const std::string path = (dir() / "s.sock").string();
  auto listener = net::listen(io.get_executor(), "unix", path);
  script_peer peer;
  peer.run("dial-unix " + path);
  net::conn conn = listener.accept();
  const std::string data = pattern(32 << 20);
  std::optional<error_code> written;
  asio::async_write(conn, asio::buffer(data), [&](error_code ec, std::size_t) { written = ec; });
  io.poll();
  ASSERT_FALSE(written);
  kill(peer);
  ASSERT_TRUE(run_until(io, [&] { return written.has_value(); }));
  EXPECT_TRUE(is_peer_gone(*written)) << written->message();
  error_code ec;
  conn.write_some(asio::buffer(data), ec);
  EXPECT_TRUE(is_peer_gone(ec)) << ec.message();
}

TEST_F(peer_crash, fifo_reader_killed_mid_write_is_broken_pipe_not_sigpipe) {
  const auto path = dir() / "fifo";
  ipckit::make_fifo(path);
  const std::string data = pattern(32 << 20);
  script_peer peer;
  // The peer opens the FIFO for reading and never reads: our write fills it and waits.
  peer.start("fifo-hold " + path.string());
  auto writer = ipckit::open_fifo_writer(io.get_executor(), path);
  peer.answer();
  std::optional<error_code> written;
  asio::async_write(writer, asio::buffer(data), [&](error_code ec, std::size_t) { written = ec; });
  io.poll();
  ASSERT_FALSE(written);
  kill(peer);
  ASSERT_TRUE(run_until(io, [&] { return written.has_value(); }));
  EXPECT_EQ(*written, asio::error::broken_pipe) << written->message();
  error_code ec;
  writer.write_some(asio::buffer(data), ec);
  EXPECT_EQ(ec, asio::error::broken_pipe) << ec.message();
}

TEST_F(peer_crash, peer_killed_holding_file_lock_releases_it) {
  const auto path = dir() / "lock";
  script_peer holder;
  holder.run("lock " + path.string());
  ipckit::file_lock lock(io.get_executor(), path);
  std::optional<error_code> locked;
  lock.async_lock(ipckit::lock_mode::exclusive, [&](error_code ec) { locked = ec; });
  io.poll();
  ASSERT_FALSE(locked) << "got the lock while the peer held it";
  kill(holder);
  ASSERT_TRUE(run_until(io, [&] { return locked.has_value(); }));
  EXPECT_FALSE(*locked) << locked->message();
  EXPECT_TRUE(lock.owns_lock());
}

TEST_F(peer_crash, peer_killed_holding_sysv_semaphore_unit_gives_it_back) {
  ipckit::sysv_semaphore semaphore(io);
  semaphore.create(IPC_PRIVATE, 1);
  script_peer holder;
  holder.run("sysv-take " + std::to_string(semaphore.id()));
  ASSERT_EQ(semaphore.value(), 0);
  std::optional<error_code> taken;
  semaphore.async_wait([&](error_code ec) { taken = ec; });
  io.poll();
  ASSERT_FALSE(taken);
  kill(holder);  // SEM_UNDO: the kernel gives the unit back
  ASSERT_TRUE(run_until(io, [&] { return taken.has_value(); }));
  EXPECT_FALSE(*taken) << taken->message();
  EXPECT_EQ(semaphore.value(), 0) << "the unit came back, and we hold it now";
  semaphore.remove();
}

TEST_F(peer_crash, peer_killed_holding_named_semaphore_unit_leaks_it) {
  // Documented (docs/semaphore.md): POSIX named semaphores have no undo. The waiter is
  // not stuck for good: a timed wait says the unit did not come.
  const std::string name = ipckit::test::unique_ipc_name("crash");
  ipckit::named_semaphore semaphore(io);
  semaphore.create(name, 1);
  script_peer holder;
  holder.run("sem-take " + name);
  kill(holder);
  ipckit::named_semaphore::unlink(name);
  EXPECT_EQ(semaphore.value(), 0);
  EXPECT_FALSE(semaphore.wait_for(50ms));
}

class peer_crash_mid_message : public peer_crash {
 protected:
  void SetUp() override {
    peer_crash::SetUp();
    const std::string path = (dir() / "s.sock").string();
    auto listener = net::listen(io.get_executor(), "unix", path);
    peer.run("dial-unix " + path);
    channel.emplace(listener.accept());
    // 4 bytes of length, then half the JSON text: the peer dies inside the frame.
    EXPECT_EQ(peer.run(R"(frame-half {"greeting":"hello, world"})"), "17");
  }
  script_peer peer;
  std::optional<ipckit::json_channel<net::conn>> channel;
};

TEST_F(peer_crash_mid_message, async_receive_gets_unexpected_eof) {
  std::optional<error_code> received;
  channel->async_receive([&](error_code ec, nlohmann::json) { received = ec; });
  io.poll();
  ASSERT_FALSE(received) << "a half message completed";
  kill(peer);
  ASSERT_TRUE(run_until(io, [&] { return received.has_value(); }));
  EXPECT_EQ(*received, ipckit::message::errc::unexpected_eof) << received->message();
}

TEST_F(peer_crash_mid_message, blocking_receive_gets_unexpected_eof) {
  kill(peer);
  error_code ec;
  channel->receive(ec);
  EXPECT_EQ(ec, ipckit::message::errc::unexpected_eof) << ec.message();
}

}  // namespace
