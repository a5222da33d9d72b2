// close() while asynchronous operations are pending, on every kind of object that has
// them: each pending operation completes, with operation_aborted, and nothing is left
// behind (the leak check verifies the descriptors; the helpers are reaped).
#include "fault_util.hpp"

#include <ipckit/file_lock.hpp>
#include <ipckit/message_queue.hpp>
#include <ipckit/net.hpp>
#include <ipckit/pipe.hpp>
#include <ipckit/semaphore.hpp>

#include <boost/asio/io_context.hpp>
#include <boost/asio/write.hpp>

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

class close_pending : public ipckit::test::temp_dir_test {
 protected:
  // Records a completion; `done` says whether it came.
  struct outcome {
    std::optional<error_code> ec;
    bool done() const { return ec.has_value(); }
    auto handler() {
      return [this](error_code e, auto&&...) { ec = e; };
    }
  };

  // Runs the loop a little to show the operations really are pending (not completed
  // with some early error), then closes and waits for every completion.
  void expect_aborted_by(const std::function<void()>& close, std::initializer_list<outcome*> ops) {
    io.poll();
    for (auto* op : ops) ASSERT_FALSE(op->done()) << "completed before close: " << op->ec->message();
    close();
    EXPECT_TRUE(run_until(io, [&] {
      for (auto* op : ops)
        if (!op->done()) return false;
      return true;
    })) << "an operation never completed after close()";
    for (auto* op : ops) {
      if (!op->done()) continue;
      EXPECT_EQ(*op->ec, asio::error::operation_aborted) << op->ec->message();
    }
  }

  asio::io_context io;
};

TEST_F(close_pending, close_conn_aborts_pending_read_and_write) {
  const std::string path = (dir() / "s.sock").string();
  auto listener = net::listen(io.get_executor(), "unix", path);
  script_peer peer;
  peer.run("dial-unix " + path);  // a peer that neither sends nor reads
  net::conn conn = listener.accept();
  char byte;
  const std::string data = pattern(8 << 20);  // more than the socket buffers take
  outcome read, write;
  conn.async_read_some(asio::buffer(&byte, 1), read.handler());
  asio::async_write(conn, asio::buffer(data), write.handler());
  expect_aborted_by([&] { conn.close(); }, {&read, &write});
}

TEST_F(close_pending, close_listener_aborts_pending_accept) {
  auto listener = net::listen(io.get_executor(), "unix", (dir() / "s.sock").string());
  outcome accept;
  listener.async_accept(accept.handler());
  expect_aborted_by([&] { listener.close(); }, {&accept});
}

TEST_F(close_pending, close_pipe_aborts_pending_read_and_write) {
  auto empty = ipckit::make_pipe(io.get_executor());
  auto full = ipckit::make_pipe(io.get_executor());
  char byte;
  const std::string data = pattern(8 << 20);  // more than the 1 MiB pipe buffer
  outcome read, write;
  empty.reader.async_read_some(asio::buffer(&byte, 1), read.handler());
  asio::async_write(full.writer, asio::buffer(data), write.handler());
  expect_aborted_by(
      [&] {
        empty.reader.close();
        full.writer.close();
      },
      {&read, &write});
}

TEST_F(close_pending, close_message_queue_aborts_pending_receive_and_send) {
  const std::string name = ipckit::test::unique_ipc_name("close");
  ipckit::message_queue_options options;
  options.attributes.max_messages = 1;
  options.attributes.message_size = 64;
  ipckit::message_queue empty(io), full(io);
  empty.create(name + "-empty", options);
  full.create(name + "-full", options);
  ipckit::message_queue::unlink(name + "-empty");
  ipckit::message_queue::unlink(name + "-full");
  full.send(asio::buffer("first", 5));
  char buffer[64];
  outcome receive, send;
  empty.async_receive(asio::buffer(buffer), receive.handler());
  full.async_send(asio::buffer("second", 6), 0, send.handler());
  expect_aborted_by(
      [&] {
        empty.close();
        full.close();
      },
      {&receive, &send});
}

TEST_F(close_pending, close_named_semaphore_aborts_pending_wait) {
  const std::string name = ipckit::test::unique_ipc_name("close");
  ipckit::named_semaphore semaphore(io), observer(io);
  semaphore.create(name, 0);
  observer.open(name);
  ipckit::named_semaphore::unlink(name);
  outcome first, second;
  semaphore.async_wait(first.handler());
  semaphore.async_wait(second.handler());
  expect_aborted_by([&] { semaphore.close(); }, {&first, &second});
  observer.post();
  EXPECT_EQ(observer.value(), 1) << "an aborted wait took no unit";
}

TEST_F(close_pending, close_sysv_semaphore_aborts_pending_wait) {
  ipckit::sysv_semaphore semaphore(io);
  semaphore.create(IPC_PRIVATE, 0);
  const int id = semaphore.id();
  outcome wait;
  semaphore.async_wait(wait.handler());
  expect_aborted_by([&] { semaphore.close(); }, {&wait});
  EXPECT_FALSE(semaphore.is_open());
  ipckit::sysv_semaphore set(io);
  set.attach(id);
  EXPECT_EQ(set.value(), 0) << "an aborted wait took no unit";
  set.remove();
}

TEST_F(close_pending, close_event_semaphore_aborts_pending_wait) {
  ipckit::event_semaphore semaphore(io, 0);
  outcome wait;
  semaphore.async_wait(wait.handler());
  expect_aborted_by([&] { semaphore.close(); }, {&wait});
}

TEST_F(close_pending, close_file_lock_aborts_pending_lock) {
  const auto path = dir() / "lock";
  script_peer holder;
  holder.run("lock " + path.string());
  ipckit::file_lock lock(io.get_executor(), path);
  outcome wait;
  lock.async_lock(ipckit::lock_mode::exclusive, wait.handler());
  expect_aborted_by([&] { lock.close(); }, {&wait});
  EXPECT_FALSE(lock.owns_lock());
}

}  // namespace
