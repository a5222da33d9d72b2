// Full resources: a message queue another process filled, and a full disk (/dev/full
// answers every write with ENOSPC) under the pipe/file write path and JSON messages.
// The writer gets a clear error or waits for room; it never spins, hangs or loses what
// was queued.
#include "fault_util.hpp"

#include <ipckit/message.hpp>
#include <ipckit/message_queue.hpp>
#include <ipckit/pipe.hpp>

#include <boost/asio/io_context.hpp>
#include <boost/asio/write.hpp>

#include <fcntl.h>
#include <optional>

namespace {

using namespace std::chrono_literals;
using ipckit::error_code;
using ipckit::test::run_until;
using ipckit::test::script_peer;
namespace asio = boost::asio;

class full : public ipckit::test::temp_dir_test {
 protected:
  asio::io_context io;
};

TEST_F(full, message_queue_filled_by_peer_refuses_try_send_and_async_send_waits_for_room) {
  const std::string name = ipckit::test::unique_ipc_name("full");
  ipckit::message_queue_options options;
  options.attributes.max_messages = 3;
  options.attributes.message_size = 64;
  ipckit::message_queue queue(io);
  queue.create(name, options);
  script_peer peer;
  EXPECT_EQ(peer.run("mq-fill " + name), "3");
  ipckit::message_queue::unlink(name);

  EXPECT_FALSE(queue.try_send(asio::buffer("ours", 4)));
  error_code ec;
  queue.send_for(asio::buffer("ours", 4), 0, 20ms, ec);
  EXPECT_EQ(ec, ipckit::errc::timeout) << ec.message();

  std::optional<error_code> sent;
  queue.async_send(asio::buffer("ours", 4), 0, [&](error_code e) { sent = e; });
  io.poll();
  ASSERT_FALSE(sent) << "sent into a full queue";
  // Room for one: the waiting send goes in, after everything the peer queued.
  EXPECT_EQ(queue.receive().data, "fill 0");
  ASSERT_TRUE(run_until(io, [&] { return sent.has_value(); }));
  EXPECT_FALSE(*sent) << sent->message();
  EXPECT_EQ(queue.receive().data, "fill 1");
  EXPECT_EQ(queue.receive().data, "fill 2");
  EXPECT_EQ(queue.receive().data, "ours");
  EXPECT_EQ(queue.attributes().current_messages, 0);
}

class full_disk : public full {
 protected:
  void SetUp() override {
    full::SetUp();
    ipckit::unique_fd fd(::open("/dev/full", O_WRONLY | O_CLOEXEC));
    if (!fd) GTEST_SKIP() << "no /dev/full on this system";
    writer.assign(std::move(fd));
  }
  ipckit::pipe_writer writer{io.get_executor()};
};

TEST_F(full_disk, blocking_write_is_no_space) {
  error_code ec;
  EXPECT_EQ(writer.write_some(asio::buffer("data", 4), ec), 0u);
  EXPECT_EQ(ec, boost::system::errc::no_space_on_device) << ec.message();
  try {
    writer.write_some(asio::buffer("data", 4));
    ADD_FAILURE() << "no exception";
  } catch (const ipckit::system_error& error) {
    EXPECT_NE(std::string(error.what()).find("no space left on device"), std::string::npos)
        << error.what();
  }
}

TEST_F(full_disk, async_write_is_no_space) {
  std::optional<error_code> written;
  asio::async_write(writer, asio::buffer("data", 4), [&](error_code ec, std::size_t) { written = ec; });
  ASSERT_TRUE(run_until(io, [&] { return written.has_value(); }));
  EXPECT_EQ(*written, boost::system::errc::no_space_on_device) << written->message();
}

TEST_F(full_disk, json_send_is_no_space) {
  ipckit::json_channel<ipckit::pipe_writer&> channel(writer);
  error_code ec;
  channel.send({{"hello", "world"}}, ec);
  EXPECT_EQ(ec, boost::system::errc::no_space_on_device) << ec.message();
  std::optional<error_code> sent;
  channel.async_send({{"hello", "world"}}, [&](error_code e) { sent = e; });
  ASSERT_TRUE(run_until(io, [&] { return sent.has_value(); }));
  EXPECT_EQ(*sent, boost::system::errc::no_space_on_device) << sent->message();
}

}  // namespace
