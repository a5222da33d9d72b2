// EINTR on every blocking call: a signal storm (a handler installed without SA_RESTART,
// see fault_util.hpp) hits the thread while it blocks in read, write, accept, connect,
// process wait, mq receive and send, semaphore wait and lock wait. Each call must complete as if
// no signal had come: no spurious EINTR error, no lost or doubled data.
#include "fault_util.hpp"

#include <ipckit/file_lock.hpp>
#include <ipckit/message_queue.hpp>
#include <ipckit/net.hpp>
#include <ipckit/pipe.hpp>
#include <ipckit/process.hpp>
#include <ipckit/semaphore.hpp>

#include <boost/asio/io_context.hpp>
#include <boost/asio/read.hpp>
#include <boost/asio/write.hpp>

#include <sys/ipc.h>

namespace {

using namespace std::chrono_literals;
using ipckit::error_code;
using ipckit::test::no_restart_handler;
using ipckit::test::pattern;
using ipckit::test::script_peer;
using ipckit::test::signal_storm;
namespace asio = boost::asio;
namespace net = ipckit::net;

// ThreadSanitizer runs a signal handler late, at the next call it intercepts. It does
// not intercept mq_send, mq_receive, semtimedop or flock: while the library retries such
// a call after EINTR (as it must), the storm's handler never runs, the storm never sees
// an interruption and never lets the peer complete the call, and the test would hang.
// Those tests run in every other build (docs/testing.md, "ThreadSanitizer").
#if defined(__SANITIZE_THREAD__)
#define SKIP_UNDER_TSAN(call)                                                                 \
  GTEST_SKIP() << "ThreadSanitizer defers signal handlers to the calls it intercepts, and " \
               << (call) << " is not one: the storm could not count the interruptions"
#else
#define SKIP_UNDER_TSAN(call) static_cast<void>(0)
#endif

// Deliveries that must land inside the blocked call before the peer lets it complete.
constexpr std::size_t storm_size = 20;

class eintr : public ipckit::test::temp_dir_test {
 protected:
  std::string socket_path() const { return (dir() / "s.sock").string(); }
  asio::io_context io;
  no_restart_handler handler;
};

// Checks the storm did its job: the call did not return before it was interrupted
// storm_size times (a call that failed on the first EINTR returns long before).
void expect_stormed(const signal_storm& storm) {
  EXPECT_TRUE(storm.fired()) << "the call returned after only " << storm.interruptions()
                             << " interruptions";
  EXPECT_GE(storm.interruptions(), storm_size);
}

TEST_F(eintr, conn_read_survives_signal_storm) {
  auto listener = net::listen(io.get_executor(), "unix", socket_path());
  script_peer peer;
  peer.run("dial-unix " + socket_path());
  net::conn conn = listener.accept();
  std::string got(11, '\0');
  error_code ec;
  std::size_t n = 0;
  {
    signal_storm storm(handler, storm_size, [&] { peer.start("send hello world"); });
    n = asio::read(conn, asio::buffer(got), ec);
    expect_stormed(storm);
  }
  EXPECT_FALSE(ec) << ec.message();
  EXPECT_EQ(n, got.size());
  EXPECT_EQ(got, "hello world");
}

TEST_F(eintr, conn_write_survives_signal_storm) {
  auto listener = net::listen(io.get_executor(), "unix", socket_path());
  script_peer peer;
  peer.run("dial-unix " + socket_path());
  net::conn conn = listener.accept();
  // Far more than the socket buffers hold: the write blocks until the peer reads.
  const std::string data = pattern(8 << 20);
  const std::string expected = std::to_string(data.size()) + " " + std::to_string(data.size());
  error_code ec;
  std::size_t n = 0;
  {
    signal_storm storm(handler, storm_size,
                       [&] { peer.start("recv-pattern " + std::to_string(data.size())); });
    n = asio::write(conn, asio::buffer(data), ec);
    expect_stormed(storm);
  }
  EXPECT_FALSE(ec) << ec.message();
  EXPECT_EQ(n, data.size());
  EXPECT_EQ(peer.answer(), expected) << "bytes received, bytes matching the pattern";
}

TEST_F(eintr, listener_accept_survives_signal_storm) {
  auto listener = net::listen(io.get_executor(), "unix", socket_path());
  script_peer peer;
  error_code ec;
  net::conn conn(io.get_executor());
  {
    signal_storm storm(handler, storm_size, [&] { peer.start("dial-unix " + socket_path()); });
    conn = listener.accept(ec);
    expect_stormed(storm);
  }
  EXPECT_FALSE(ec) << ec.message();
  EXPECT_TRUE(conn.is_open());
  peer.answer();
}

TEST_F(eintr, dial_survives_signal_storm) {
  // A tcp listener with a backlog of 0 that does not accept: once one connection waits
  // in its queue, the kernel drops the next SYN and the dial stays in connect until the
  // peer accepts and the SYN is sent again (after about a second).
  script_peer peer;
  const std::string address = "127.0.0.1:" + peer.run("listen-tcp 0");
  net::conn first = net::dial(io.get_executor(), "tcp", address);
  error_code ec;
  net::conn second(io.get_executor());
  {
    signal_storm storm(handler, storm_size, [&] { peer.start("accept"); });
    second = net::dial(io.get_executor(), "tcp", address, ec);
    expect_stormed(storm);
  }
  EXPECT_FALSE(ec) << ec.message();
  EXPECT_TRUE(second.is_open());
  peer.answer();
}

TEST_F(eintr, fifo_read_survives_signal_storm) {
  const auto path = dir() / "fifo";
  ipckit::make_fifo(path);
  auto reader = ipckit::open_fifo_reader(io.get_executor(), path);
  script_peer peer;
  std::string got(5, '\0');
  error_code ec;
  {
    signal_storm storm(handler, storm_size,
                       [&] { peer.start("fifo-write " + path.string() + " hello"); });
    asio::read(reader, asio::buffer(got), ec);
    expect_stormed(storm);
  }
  EXPECT_FALSE(ec) << ec.message();
  EXPECT_EQ(got, "hello");
  peer.answer();
}

TEST_F(eintr, fifo_write_survives_signal_storm) {
  const auto path = dir() / "fifo";
  ipckit::make_fifo(path);
  // A reader of our own that never reads lets the writer open and fills the FIFO; the
  // peer opens a second reader only after the storm, and reads everything.
  auto idle_reader = ipckit::open_fifo_reader(io.get_executor(), path);
  auto writer = ipckit::open_fifo_writer(io.get_executor(), path);
  const std::string data = pattern(4 << 20);
  const std::string expected = std::to_string(data.size()) + " " + std::to_string(data.size());
  script_peer peer;
  error_code ec;
  std::size_t n = 0;
  {
    signal_storm storm(handler, storm_size, [&] {
      peer.start("fifo-read-pattern " + path.string() + " " + std::to_string(data.size()));
    });
    n = asio::write(writer, asio::buffer(data), ec);
    expect_stormed(storm);
  }
  EXPECT_FALSE(ec) << ec.message();
  EXPECT_EQ(n, data.size());
  EXPECT_EQ(peer.answer(), expected) << "bytes received, bytes matching the pattern";
}

TEST_F(eintr, process_wait_survives_signal_storm) {
  ipckit::command child(io.get_executor(), ipckit::test::helper_path(), {"wait-stdin"});
  auto child_stdin = child.stdin_pipe();
  child.start();
  ipckit::process_state state;
  error_code ec;
  {
    // The child exits at EOF on its stdin.
    signal_storm storm(handler, storm_size, [&] { child_stdin.close(); });
    state = child.wait(ec);
    expect_stormed(storm);
  }
  EXPECT_FALSE(ec) << ec.message();
  EXPECT_TRUE(state.success());
}

TEST_F(eintr, mq_receive_survives_signal_storm) {
  SKIP_UNDER_TSAN("mq_receive");
  const std::string name = ipckit::test::unique_ipc_name("eintr");
  ipckit::message_queue queue(io);
  queue.create(name);
  script_peer peer;
  std::string got(8192, '\0');
  error_code ec;
  ipckit::received_message message;
  {
    signal_storm storm(handler, storm_size, [&] { peer.start("mq-send " + name + " hello"); });
    message = queue.receive(asio::buffer(got), ec);
    expect_stormed(storm);
  }
  ipckit::message_queue::unlink(name);
  EXPECT_FALSE(ec) << ec.message();
  EXPECT_EQ(got.substr(0, message.size), "hello");
  peer.answer();
}

TEST_F(eintr, mq_send_to_full_queue_survives_signal_storm) {
  SKIP_UNDER_TSAN("mq_send");
  const std::string name = ipckit::test::unique_ipc_name("eintr");
  ipckit::message_queue_options options;
  options.attributes.max_messages = 3;
  options.attributes.message_size = 64;
  ipckit::message_queue queue(io);
  queue.create(name, options);
  script_peer peer;
  ASSERT_EQ(peer.run("mq-fill " + name), "3");
  error_code ec;
  {
    // The send waits for room until the peer takes the oldest message.
    signal_storm storm(handler, storm_size, [&] { peer.start("mq-receive " + name); });
    queue.send(asio::buffer("ours", 4), 0, ec);
    expect_stormed(storm);
  }
  EXPECT_EQ(peer.answer(), "fill 0");
  ipckit::message_queue::unlink(name);
  EXPECT_FALSE(ec) << ec.message();
  // Sent once, after what the peer queued: no message lost or doubled.
  EXPECT_EQ(queue.receive().data, "fill 1");
  EXPECT_EQ(queue.receive().data, "fill 2");
  EXPECT_EQ(queue.receive().data, "ours");
  EXPECT_EQ(queue.attributes().current_messages, 0);
}

TEST_F(eintr, named_semaphore_wait_survives_signal_storm) {
  const std::string name = ipckit::test::unique_ipc_name("eintr");
  ipckit::named_semaphore semaphore(io);
  semaphore.create(name, 0);
  script_peer peer;
  error_code ec;
  {
    signal_storm storm(handler, storm_size, [&] { peer.start("sem-post " + name); });
    semaphore.wait(ec);
    expect_stormed(storm);
  }
  peer.answer();
  ipckit::named_semaphore::unlink(name);
  EXPECT_FALSE(ec) << ec.message();
  EXPECT_EQ(semaphore.value(), 0) << "the one unit posted was taken once";
}

TEST_F(eintr, sysv_semaphore_wait_survives_signal_storm) {
  SKIP_UNDER_TSAN("semtimedop");
  ipckit::sysv_semaphore semaphore(io);
  semaphore.create(IPC_PRIVATE, 0);
  script_peer peer;
  error_code ec;
  {
    signal_storm storm(handler, storm_size,
                       [&] { peer.start("sysv-post " + std::to_string(semaphore.id())); });
    semaphore.wait(ec);
    expect_stormed(storm);
  }
  peer.answer();
  EXPECT_FALSE(ec) << ec.message();
  EXPECT_EQ(semaphore.value(), 0) << "the one unit posted was taken once";
  semaphore.remove();
}

TEST_F(eintr, event_semaphore_wait_survives_signal_storm) {
  ipckit::event_semaphore semaphore(io, 0);
  // A related process: the peer inherits the eventfd, as a child would.
  script_peer peer(semaphore.native_handle());
  error_code ec;
  {
    signal_storm storm(handler, storm_size, [&] { peer.start("eventfd-post"); });
    semaphore.wait(ec);
    expect_stormed(storm);
  }
  peer.answer();
  EXPECT_FALSE(ec) << ec.message();
  EXPECT_FALSE(semaphore.try_wait()) << "the one unit posted was taken once";
}

TEST_F(eintr, file_lock_wait_survives_signal_storm) {
  SKIP_UNDER_TSAN("flock");
  const auto path = dir() / "lock";
  script_peer peer;
  peer.run("lock " + path.string());
  ipckit::file_lock lock(io.get_executor(), path);
  error_code ec;
  {
    signal_storm storm(handler, storm_size, [&] { peer.start("unlock"); });
    lock.lock(ipckit::lock_mode::exclusive, ec);
    expect_stormed(storm);
  }
  peer.answer();
  EXPECT_FALSE(ec) << ec.message();
  EXPECT_TRUE(lock.owns_lock());
}

}  // namespace
