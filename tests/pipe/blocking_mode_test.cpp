// The descriptor mode of pipe ends (docs/pipe.md, "Blocking and non-blocking mode"):
// ends ipckit makes start blocking, adopted ones keep their mode, the first async
// operation or deadline sets O_NONBLOCK and it stays, release() and close() put back
// the mode the descriptor came in; a child sharing the description sees that mode.
#include <ipckit/pipe.hpp>

#include "test_support.hpp"

#include <ipckit/process.hpp>

#include <boost/asio/io_context.hpp>
#include <boost/asio/read.hpp>
#include <boost/asio/write.hpp>

#include <atomic>
#include <fcntl.h>
#include <fstream>
#include <iterator>
#include <string>
#include <sys/syscall.h>
#include <thread>
#include <unistd.h>

namespace {

using namespace std::chrono_literals;
using ipckit::error_code;
using ipckit::test::run_until;

bool non_blocking(int fd) { return (::fcntl(fd, F_GETFL) & O_NONBLOCK) != 0; }

class blocking_mode : public ipckit::test::temp_dir_test {
 protected:
  boost::asio::io_context io;
  ipckit::pipe_pair pipe = ipckit::make_pipe(io.get_executor());

  void async_write_one(ipckit::pipe_writer& w) {
    bool done = false;
    w.async_write_some(boost::asio::buffer("x", 1), [&](error_code ec, std::size_t) {
      EXPECT_FALSE(ec);
      done = true;
    });
    ASSERT_TRUE(run_until(io, [&] { return done; }));
  }

  // One byte through an async read, which leaves the read end non-blocking.
  void async_read_one() {
    char c = 0;
    bool done = false;
    pipe.reader.async_read_some(boost::asio::buffer(&c, 1), [&](error_code ec, std::size_t) {
      EXPECT_FALSE(ec);
      done = true;
    });
    pipe.writer.write_some(boost::asio::buffer("a", 1));
    ASSERT_TRUE(run_until(io, [&] { return done; }));
  }

  // What a child started with `fd` as its fd 3 sees: "True" when blocking (python's
  // os.get_blocking), the description being shared (command::add_fd duplicates).
  std::string child_sees_blocking(int fd) {
    ipckit::command child(io.get_executor(), "python3",
                          {"-c", "import os; print(os.get_blocking(3))"});
    child.add_fd(fd, 3);
    std::string out = child.output();
    while (!out.empty() && out.back() == '\n') out.pop_back();
    return out;
  }
};

TEST_F(blocking_mode, pipe_and_fifo_ends_start_blocking) {
  EXPECT_FALSE(non_blocking(pipe.reader.native_handle()));
  EXPECT_FALSE(non_blocking(pipe.writer.native_handle()));
  const auto path = dir() / "fifo";
  ipckit::make_fifo(path);
  auto reader = ipckit::open_fifo_reader(io.get_executor(), path);
  auto writer = ipckit::open_fifo_writer(io.get_executor(), path, 5s);
  EXPECT_FALSE(non_blocking(reader.native_handle()));
  EXPECT_FALSE(non_blocking(writer.native_handle()));
  std::optional<ipckit::pipe_writer> async_writer;
  ipckit::async_open_fifo_writer(io.get_executor(), path, 5s, [&](error_code ec, ipckit::pipe_writer w) {
    EXPECT_FALSE(ec);
    async_writer.emplace(std::move(w));
  });
  ASSERT_TRUE(run_until(io, [&] { return async_writer.has_value(); }));
  EXPECT_FALSE(non_blocking(async_writer->native_handle()));
}

TEST_F(blocking_mode, blocking_reads_and_writes_leave_the_ends_blocking) {
  boost::asio::write(pipe.writer, boost::asio::buffer(std::string("hello")));
  std::string got(5, '\0');
  boost::asio::read(pipe.reader, boost::asio::buffer(got));
  EXPECT_EQ(got, "hello");
  EXPECT_FALSE(non_blocking(pipe.reader.native_handle()));
  EXPECT_FALSE(non_blocking(pipe.writer.native_handle()));
}

TEST_F(blocking_mode, an_async_operation_sets_o_nonblock_on_its_end_and_it_stays) {
  char c = 0;
  async_read_one();
  EXPECT_TRUE(non_blocking(pipe.reader.native_handle()));
  EXPECT_FALSE(non_blocking(pipe.writer.native_handle())) << "the other end is another description";
  // Blocking reads still wait for data on it (read, EAGAIN, poll, read), leaving it so.
  pipe.writer.write_some(boost::asio::buffer("b", 1));
  EXPECT_EQ(pipe.reader.read_some(boost::asio::buffer(&c, 1)), 1u);
  EXPECT_EQ(c, 'b');
  EXPECT_TRUE(non_blocking(pipe.reader.native_handle()));
}

TEST_F(blocking_mode, a_blocking_read_on_an_end_an_async_operation_made_non_blocking_waits_for_data) {
  char c = 0;
  async_read_one();
  ASSERT_TRUE(non_blocking(pipe.reader.native_handle()));
  // The read finds the pipe empty (EAGAIN) and must wait: the byte is written only once
  // the reading thread sleeps, which on a non-blocking end it can only do in its poll.
  std::atomic<pid_t> reader_tid{0};
  std::size_t got = 0;
  error_code read_ec;
  std::thread reading([&] {
    reader_tid = static_cast<pid_t>(::syscall(SYS_gettid));
    got = pipe.reader.read_some(boost::asio::buffer(&c, 1), read_ec);
  });
  const auto deadline = std::chrono::steady_clock::now() + 10s;
  bool sleeping = false;
  while (!sleeping && std::chrono::steady_clock::now() < deadline) {
    const pid_t tid = reader_tid.load();
    if (tid == 0) continue;
    std::ifstream stat("/proc/self/task/" + std::to_string(tid) + "/stat");
    std::string text((std::istreambuf_iterator<char>(stat)), std::istreambuf_iterator<char>());
    const auto close_paren = text.rfind(')');
    sleeping = close_paren != std::string::npos && close_paren + 2 < text.size() &&
               text[close_paren + 2] == 'S';
  }
  EXPECT_TRUE(sleeping) << "the reading thread never waited";
  pipe.writer.write_some(boost::asio::buffer("b", 1));
  reading.join();
  EXPECT_FALSE(read_ec);
  EXPECT_EQ(got, 1u);
  EXPECT_EQ(c, 'b');
}

TEST_F(blocking_mode, a_deadline_sets_o_nonblock) {
  pipe.reader.expires_after(10ms);
  char c;
  error_code ec;
  pipe.reader.read_some(boost::asio::buffer(&c, 1), ec);
  EXPECT_EQ(ec, ipckit::errc::timeout);
  EXPECT_TRUE(non_blocking(pipe.reader.native_handle()));
}

TEST_F(blocking_mode, release_and_close_put_back_the_mode_the_descriptor_came_in) {
  async_write_one(pipe.writer);
  ASSERT_TRUE(non_blocking(pipe.writer.native_handle()));
  ipckit::unique_fd released = pipe.writer.release();
  EXPECT_FALSE(non_blocking(released.get())) << "made blocking, given back blocking";

  // close(): seen through a duplicate, which shares the open file description.
  auto other = ipckit::make_pipe(io.get_executor());
  ipckit::unique_fd dup(::fcntl(other.writer.native_handle(), F_DUPFD_CLOEXEC, 0));
  async_write_one(other.writer);
  EXPECT_TRUE(non_blocking(dup.get()));
  other.writer.close();
  EXPECT_FALSE(non_blocking(dup.get()));

  // Adopted non-blocking: it stays non-blocking, given back so.
  int fds[2];
  ASSERT_EQ(::pipe2(fds, O_CLOEXEC | O_NONBLOCK), 0);
  ipckit::unique_fd read_end(fds[0]);
  ipckit::pipe_writer adopted(io.get_executor(), ipckit::unique_fd(fds[1]));
  boost::asio::write(adopted, boost::asio::buffer(std::string("abc")));
  async_write_one(adopted);
  EXPECT_TRUE(non_blocking(adopted.release().get()));
}

TEST_F(blocking_mode, a_child_sharing_the_description_sees_the_documented_mode) {
  EXPECT_EQ(child_sees_blocking(pipe.writer.native_handle()), "True") << "fresh from make_pipe";
  async_write_one(pipe.writer);
  EXPECT_EQ(child_sees_blocking(pipe.writer.native_handle()), "False")
      << "shared while the parent's end is in use on the loop";
  ipckit::unique_fd released = pipe.writer.release();
  EXPECT_EQ(child_sees_blocking(released.get()), "True") << "released: blocking again";
}

TEST_F(blocking_mode, a_command_stdout_pipe_read_on_the_loop_leaves_the_childs_end_blocking) {
  ipckit::command child(io.get_executor(), "python3", {"-c", "import os; print(os.get_blocking(1))"});
  ipckit::pipe_reader out = child.stdout_pipe();
  std::string text;
  bool done = false;
  boost::asio::async_read(out, boost::asio::dynamic_buffer(text), [&](error_code ec, std::size_t) {
    EXPECT_EQ(ec, boost::asio::error::eof);
    done = true;
  });
  child.start();
  ASSERT_TRUE(run_until(io, [&] { return done; }));
  child.wait();
  EXPECT_EQ(text, "True\n");
  EXPECT_TRUE(non_blocking(out.native_handle()));
}

}  // namespace
