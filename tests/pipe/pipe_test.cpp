#include <ipckit/pipe.hpp>

#include "test_support.hpp"

#include <ipckit/event_loop.hpp>
#include <ipckit/signal.hpp>
#include <ipckit/detail/sigpipe.hpp>

#include <boost/asio/bind_cancellation_slot.hpp>
#include <boost/asio/cancellation_signal.hpp>
#include <boost/asio/co_spawn.hpp>
#include <boost/asio/detached.hpp>
#include <boost/asio/read.hpp>
#include <boost/asio/use_awaitable.hpp>
#include <boost/asio/use_future.hpp>
#include <boost/asio/write.hpp>

#include <csignal>
#include <fcntl.h>
#include <optional>
#include <string>
#include <thread>
#include <unistd.h>

namespace {

using namespace std::chrono_literals;
using ipckit::error_code;
using ipckit::test::run_until;

std::string pattern(std::size_t size) {
  std::string data(size, '\0');
  for (std::size_t i = 0; i < size; ++i) data[i] = static_cast<char>('a' + i % 26);
  return data;
}

TEST(pipe, both_ends_are_close_on_exec_and_start_blocking) {
  boost::asio::io_context io;
  auto [reader, writer] = ipckit::make_pipe(io.get_executor());
  for (int fd : {reader.native_handle(), writer.native_handle()}) {
    EXPECT_TRUE(::fcntl(fd, F_GETFD) & FD_CLOEXEC);
    EXPECT_FALSE(::fcntl(fd, F_GETFL) & O_NONBLOCK);  // until an async call (blocking_mode_test)
  }
}

TEST(pipe, sync_write_then_read) {
  boost::asio::io_context io;
  auto [reader, writer] = ipckit::make_pipe(io.get_executor());
  EXPECT_EQ(boost::asio::write(writer, boost::asio::buffer(std::string("hello"))), 5u);
  std::string got(5, '\0');
  EXPECT_EQ(boost::asio::read(reader, boost::asio::buffer(got)), 5u);
  EXPECT_EQ(got, "hello");
}

TEST(pipe, default_buffer_is_larger_and_can_be_set) {
  boost::asio::io_context io;
  int raw[2];
  ASSERT_EQ(::pipe2(raw, O_CLOEXEC), 0);
  const auto kernel_default = static_cast<std::size_t>(::fcntl(raw[0], F_GETPIPE_SZ));
  ::close(raw[0]);
  ::close(raw[1]);
  ASSERT_GT(ipckit::default_pipe_buffer_size, kernel_default);
  auto [reader, writer] = ipckit::make_pipe(io.get_executor());
  if (::geteuid() == 0) {
    // Root is never refused (CAP_SYS_RESOURCE): the larger default must be there.
    EXPECT_EQ(writer.buffer_size(), ipckit::default_pipe_buffer_size);
  } else {
    // A user over pipe-user-pages-soft is refused, and the pipe keeps the kernel's size.
    EXPECT_TRUE(writer.buffer_size() == ipckit::default_pipe_buffer_size ||
                writer.buffer_size() == kernel_default)
        << writer.buffer_size();
  }
  EXPECT_EQ(reader.buffer_size(), writer.buffer_size());  // one pipe, one buffer
  writer.set_buffer_size(4096);
  EXPECT_EQ(writer.buffer_size(), 4096u);
  auto small = ipckit::make_pipe(io.get_executor(), 8192);
  EXPECT_EQ(small.reader.buffer_size(), 8192u);
  error_code ec;
  auto huge = ipckit::make_pipe(io.get_executor(), std::size_t(1) << 40, ec);
  EXPECT_EQ(ec, ipckit::errc::invalid_argument);
}

TEST(pipe, write_to_a_closed_reader_is_broken_pipe_not_sigpipe) {
  boost::asio::io_context io;
  auto [reader, writer] = ipckit::make_pipe(io.get_executor());
  reader.close();
  error_code ec;
  writer.write_some(boost::asio::buffer("x", 1), ec);
  EXPECT_EQ(ec, boost::asio::error::broken_pipe);
  // The async form too.
  error_code async_ec;
  bool done = false;
  writer.async_write_some(boost::asio::buffer("x", 1), [&](error_code e, std::size_t) {
    async_ec = e;
    done = true;
  });
  ASSERT_TRUE(run_until(io, [&] { return done; }));
  EXPECT_EQ(async_ec, boost::asio::error::broken_pipe);
  sigset_t pending;
  sigpending(&pending);
  EXPECT_FALSE(sigismember(&pending, SIGPIPE));
  try {
    writer.write_some(boost::asio::buffer("x", 1));
    FAIL() << "no exception";
  } catch (const ipckit::system_error& e) {
    EXPECT_NE(std::string(e.what()).find("broken pipe"), std::string::npos) << e.what();
  }
}

// With SIGPIPE ignored through the signal module a write skips its SIGPIPE mask (one
// system call); a notifier of SIGPIPE brings the mask back, so the notifier still sees it.
TEST(pipe, sigpipe_ignored_through_the_signal_module_drops_the_mask_and_still_gives_epipe) {
  boost::asio::io_context io;
  auto [reader, writer] = ipckit::make_pipe(io.get_executor());
  reader.close();
  ipckit::signal::ignore({SIGPIPE});
  EXPECT_TRUE(ipckit::detail::sigpipe_ignored());
  error_code ec;
  writer.write_some(boost::asio::buffer("x", 1), ec);
  EXPECT_EQ(ec, boost::asio::error::broken_pipe);
  {
    ipckit::signal::notifier wants_sigpipe(io.get_executor(), {SIGPIPE});
    EXPECT_FALSE(ipckit::detail::sigpipe_ignored()) << "a notifier's SIGPIPE would be discarded";
    writer.write_some(boost::asio::buffer("x", 1), ec);
    EXPECT_EQ(ec, boost::asio::error::broken_pipe);
  }
  EXPECT_TRUE(ipckit::detail::sigpipe_ignored()) << "the last notifier put SIG_IGN back";
  sigset_t pending;
  sigpending(&pending);
  EXPECT_FALSE(sigismember(&pending, SIGPIPE));
  ipckit::signal::reset({SIGPIPE});
}

// async_write of `data` on one end and async_read of as many bytes on the other.
void expect_async_stream_intact(boost::asio::io_context& io, ipckit::pipe_reader& reader,
                                ipckit::pipe_writer& writer, const std::string& data) {
  std::string got(data.size(), '\0');
  bool wrote = false, read = false;
  boost::asio::async_write(writer, boost::asio::buffer(data), [&](error_code ec, std::size_t n) {
    EXPECT_FALSE(ec);
    EXPECT_EQ(n, data.size());
    wrote = true;
  });
  boost::asio::async_read(reader, boost::asio::buffer(got), [&](error_code ec, std::size_t n) {
    EXPECT_FALSE(ec);
    EXPECT_EQ(n, data.size());
    read = true;
  });
  ASSERT_TRUE(run_until(io, [&] { return wrote && read; }));
  EXPECT_TRUE(got == data);
}

// With SIGPIPE ignored through ipckit, async reads and writes without a deadline are
// Asio's own descriptor operations (docs/pipe.md): the same results as the general path.
TEST(pipe, async_io_with_sigpipe_ignored_streams_intact_and_gives_broken_pipe) {
  ipckit::signal::ignore({SIGPIPE});
  boost::asio::io_context io;
  auto [reader, writer] = ipckit::make_pipe(io.get_executor());
  const std::string data = pattern(4 << 20);
  expect_async_stream_intact(io, reader, writer, data);

  std::optional<error_code> empty_write;
  writer.async_write_some(boost::asio::buffer(data.data(), 0),
                          [&](error_code ec, std::size_t n) { empty_write = ec; EXPECT_EQ(n, 0u); });
  ASSERT_TRUE(run_until(io, [&] { return empty_write.has_value(); }));
  EXPECT_FALSE(*empty_write);

  reader.close();
  std::optional<error_code> gone_reader;
  writer.async_write_some(boost::asio::buffer("x", 1),
                          [&](error_code ec, std::size_t) { gone_reader = ec; });
  ASSERT_TRUE(run_until(io, [&] { return gone_reader.has_value(); }));
  EXPECT_EQ(*gone_reader, boost::asio::error::broken_pipe);
  sigset_t pending;
  sigpending(&pending);
  EXPECT_FALSE(sigismember(&pending, SIGPIPE));
  ipckit::signal::reset({SIGPIPE});
}

TEST(pipe, async_streaming_of_ten_mebibytes_arrives_intact) {
  boost::asio::io_context io;
  auto [reader, writer] = ipckit::make_pipe(io.get_executor());
  const std::string data = pattern(10 << 20);
  expect_async_stream_intact(io, reader, writer, data);
}

TEST(pipe, eof_after_writer_closes_and_all_bytes_read) {
  boost::asio::io_context io;
  auto [reader, writer] = ipckit::make_pipe(io.get_executor());
  boost::asio::write(writer, boost::asio::buffer(std::string("abc")));
  writer.close();
  std::string got;
  error_code ec;
  boost::asio::read(reader, boost::asio::dynamic_buffer(got), ec);
  EXPECT_EQ(ec, boost::asio::error::eof);
  EXPECT_EQ(got, "abc");
}

TEST(pipe, sync_read_deadline_is_timeout) {
  boost::asio::io_context io;
  auto [reader, writer] = ipckit::make_pipe(io.get_executor());
  reader.expires_after(50ms);
  char c;
  error_code ec;
  const auto start = std::chrono::steady_clock::now();
  reader.read_some(boost::asio::buffer(&c, 1), ec);
  EXPECT_EQ(ec, ipckit::errc::timeout);
  EXPECT_GE(std::chrono::steady_clock::now() - start, 45ms);
}

TEST(pipe, async_read_deadline_is_timeout_and_data_before_it_arrives) {
  boost::asio::io_context io;
  auto [reader, writer] = ipckit::make_pipe(io.get_executor());
  reader.expires_after(50ms);
  char c = 0;
  error_code result;
  bool done = false;
  reader.async_read_some(boost::asio::buffer(&c, 1), [&](error_code ec, std::size_t) {
    result = ec;
    done = true;
  });
  ASSERT_TRUE(run_until(io, [&] { return done; }));
  EXPECT_EQ(result, ipckit::errc::timeout);

  reader.expires_after(5s);
  done = false;
  reader.async_read_some(boost::asio::buffer(&c, 1), [&](error_code ec, std::size_t n) {
    result = ec;
    EXPECT_EQ(n, 1u);
    done = true;
  });
  writer.write_some(boost::asio::buffer("z", 1));
  ASSERT_TRUE(run_until(io, [&] { return done; }));
  EXPECT_FALSE(result);
  EXPECT_EQ(c, 'z');
}

TEST(pipe, async_write_deadline_when_full) {
  boost::asio::io_context io;
  auto [reader, writer] = ipckit::make_pipe(io.get_executor(), 4096);
  const std::string data = pattern(1 << 20);
  writer.expires_after(50ms);
  error_code result;
  std::size_t moved = 0;
  bool done = false;
  boost::asio::async_write(writer, boost::asio::buffer(data), [&](error_code ec, std::size_t n) {
    result = ec;
    moved = n;
    done = true;
  });
  ASSERT_TRUE(run_until(io, [&] { return done; }));
  EXPECT_EQ(result, ipckit::errc::timeout);
  EXPECT_EQ(moved, 4096u);
}

TEST(pipe, sync_write_deadline_when_full) {
  boost::asio::io_context io;
  auto [reader, writer] = ipckit::make_pipe(io.get_executor(), 4096);
  const std::string data = pattern(1 << 20);
  writer.expires_after(50ms);
  error_code ec;
  const auto start = std::chrono::steady_clock::now();
  const std::size_t moved = boost::asio::write(writer, boost::asio::buffer(data), ec);
  EXPECT_EQ(ec, ipckit::errc::timeout);
  EXPECT_EQ(moved, 4096u);  // what fit before the reader stopped reading
  EXPECT_GE(std::chrono::steady_clock::now() - start, 45ms);
}

TEST(pipe, cancellation_slot_aborts_a_read) {
  boost::asio::io_context io;
  auto [reader, writer] = ipckit::make_pipe(io.get_executor());
  boost::asio::cancellation_signal cancel;
  char c;
  error_code result;
  bool done = false;
  reader.async_read_some(boost::asio::buffer(&c, 1),
                         boost::asio::bind_cancellation_slot(cancel.slot(), [&](error_code ec, std::size_t) {
                           result = ec;
                           done = true;
                         }));
  io.poll();
  cancel.emit(boost::asio::cancellation_type::terminal);
  ASSERT_TRUE(run_until(io, [&] { return done; }));
  EXPECT_EQ(result, boost::asio::error::operation_aborted);
}

TEST(pipe, works_with_use_future_and_use_awaitable) {
  boost::asio::io_context io;
  auto [reader, writer] = ipckit::make_pipe(io.get_executor());
  auto written = writer.async_write_some(boost::asio::buffer("hi", 2), boost::asio::use_future);
  std::string got;
  boost::asio::co_spawn(
      io,
      [&]() -> boost::asio::awaitable<void> {
        char buffer[2];
        std::size_t n = co_await reader.async_read_some(boost::asio::buffer(buffer), boost::asio::use_awaitable);
        got.assign(buffer, n);
      },
      boost::asio::detached);
  ASSERT_TRUE(run_until(io, [&] { return got.size() == 2; }));
  EXPECT_EQ(written.get(), 2u);
  EXPECT_EQ(got, "hi");
}

TEST(pipe, nothing_leaks) {
  const auto before = ipckit::test::open_fd_count();
  {
    boost::asio::io_context io;
    for (int i = 0; i < 50; ++i) auto pair = ipckit::make_pipe(io.get_executor());
  }
  EXPECT_EQ(ipckit::test::open_fd_count(), before);
}

}  // namespace
