#include <ipckit/pipe.hpp>

#include "test_support.hpp"

#include <boost/asio/bind_cancellation_slot.hpp>
#include <boost/asio/cancellation_signal.hpp>
#include <boost/asio/io_context.hpp>
#include <boost/asio/read.hpp>
#include <boost/asio/write.hpp>

#include <fstream>
#include <sys/stat.h>

namespace {

using namespace std::chrono_literals;
using ipckit::error_code;
using ipckit::test::peer_process;
using ipckit::test::run_until;

class fifo : public ipckit::test::temp_dir_test {
 protected:
  boost::asio::io_context io;
  std::filesystem::path path() const { return dir() / "fifo"; }
};

TEST_F(fifo, make_fifo_is_0600_and_reuses_an_existing_fifo) {
  ipckit::make_fifo(path());
  struct stat st {};
  ASSERT_EQ(::stat(path().c_str(), &st), 0);
  EXPECT_TRUE(S_ISFIFO(st.st_mode));
  EXPECT_EQ(st.st_mode & 0777, 0600u);
  ipckit::make_fifo(path());  // again: reused, no error
  ipckit::make_fifo(dir() / "shared", 0660);
  ASSERT_EQ(::stat((dir() / "shared").c_str(), &st), 0);
  EXPECT_EQ(st.st_mode & 0777, 0660u);
}

TEST_F(fifo, make_fifo_refuses_a_path_that_is_something_else) {
  std::ofstream(dir() / "file") << "x";
  try {
    ipckit::make_fifo(dir() / "file");
    FAIL() << "no error";
  } catch (const ipckit::system_error& e) {
    EXPECT_EQ(e.code(), ipckit::pipe::errc::not_a_fifo);
    EXPECT_EQ(std::string(e.what()),
              "mkfifo " + (dir() / "file").string() + ": file exists and is not a named pipe");
  }
  error_code ec;
  ipckit::open_fifo_reader(io.get_executor(), dir() / "file", ec);
  EXPECT_EQ(ec, ipckit::pipe::errc::not_a_fifo);
  ipckit::open_fifo_writer(io.get_executor(), dir() / "file", 100ms, ec);
  EXPECT_EQ(ec, ipckit::pipe::errc::not_a_fifo);
}

TEST_F(fifo, reader_opens_at_once_and_reads_a_shell_writer) {
  ipckit::make_fifo(path());
  auto reader = ipckit::open_fifo_reader(io.get_executor(), path());
  peer_process writer({"sh", "-c", "echo x > '" + path().string() + "'"});
  std::string got;
  error_code result;
  bool done = false;
  boost::asio::async_read(reader, boost::asio::dynamic_buffer(got), [&](error_code ec, std::size_t) {
    result = ec;
    done = true;
  });
  ASSERT_TRUE(run_until(io, [&] { return done; }));
  EXPECT_EQ(result, boost::asio::error::eof);
  EXPECT_EQ(got, "x\n");
  EXPECT_EQ(writer.wait(), 0);
}

TEST_F(fifo, sync_reader_waits_for_data_rather_than_reading_eof_before_any_writer) {
  ipckit::make_fifo(path());
  auto reader = ipckit::open_fifo_reader(io.get_executor(), path());
  reader.expires_after(100ms);
  char c;
  error_code ec;
  reader.read_some(boost::asio::buffer(&c, 1), ec);
  EXPECT_EQ(ec, ipckit::errc::timeout);  // not EOF: no writer has come yet
}

TEST_F(fifo, writer_waits_for_a_reader_then_cat_reads_it) {
  ipckit::make_fifo(path());
  std::optional<ipckit::pipe_writer> writer;
  error_code result;
  bool opened = false;
  ipckit::async_open_fifo_writer(io.get_executor(), path(), 10s,
                                 [&](error_code ec, ipckit::pipe_writer w) {
                                   result = ec;
                                   writer.emplace(std::move(w));
                                   opened = true;
                                 });
  EXPECT_FALSE(run_until(io, [&] { return opened; }, 100ms)) << "opened with no reader";
  peer_process cat({"cat", path().string()});
  ASSERT_TRUE(run_until(io, [&] { return opened; }));
  ASSERT_FALSE(result) << result.message();
  boost::asio::write(*writer, boost::asio::buffer(std::string("hello\n")));
  writer->close();
  EXPECT_EQ(cat.read_line(), "hello");
  EXPECT_EQ(cat.wait(), 0);
}

TEST_F(fifo, writer_wait_times_out_and_can_be_cancelled) {
  ipckit::make_fifo(path());
  error_code result;
  bool done = false;
  ipckit::async_open_fifo_writer(io.get_executor(), path(), 100ms,
                                 [&](error_code ec, ipckit::pipe_writer) {
                                   result = ec;
                                   done = true;
                                 });
  ASSERT_TRUE(run_until(io, [&] { return done; }));
  EXPECT_EQ(result, ipckit::errc::timeout);

  boost::asio::cancellation_signal cancel;
  done = false;
  ipckit::async_open_fifo_writer(
      io.get_executor(), path(), std::chrono::nanoseconds::zero(),
      boost::asio::bind_cancellation_slot(cancel.slot(), [&](error_code ec, ipckit::pipe_writer) {
        result = ec;
        done = true;
      }));
  EXPECT_FALSE(run_until(io, [&] { return done; }, 50ms));
  cancel.emit(boost::asio::cancellation_type::terminal);
  ASSERT_TRUE(run_until(io, [&] { return done; }));
  EXPECT_EQ(result, boost::asio::error::operation_aborted);
}

TEST_F(fifo, writer_opens_at_once_when_a_reader_is_there) {
  ipckit::make_fifo(path());
  auto reader = ipckit::open_fifo_reader(io.get_executor(), path());
  auto writer = ipckit::open_fifo_writer(io.get_executor(), path(), 1s);
  boost::asio::write(writer, boost::asio::buffer(std::string("ok")));
  char got[2];
  boost::asio::read(reader, boost::asio::buffer(got));
  EXPECT_EQ(std::string(got, 2), "ok");
  reader.close();
  error_code ec;
  writer.write_some(boost::asio::buffer("x", 1), ec);
  EXPECT_EQ(ec, boost::asio::error::broken_pipe);
}

TEST_F(fifo, server_keeps_reading_as_writers_come_and_go) {
  ipckit::make_fifo(path());
  auto server = ipckit::open_fifo_server(io.get_executor(), path());
  std::string got;
  int reads = 0;
  error_code last;
  char buffer[256];
  std::function<void()> read_next = [&] {
    server.async_read_some(boost::asio::buffer(buffer), [&](error_code ec, std::size_t n) {
      ++reads;
      last = ec;
      got.append(buffer, n);
      if (!ec) read_next();
    });
  };
  read_next();
  for (int i = 0; i < 5; ++i) {
    peer_process writer({"sh", "-c", "echo message" + std::to_string(i) + " > '" + path().string() + "'"});
    const std::string expect = "message" + std::to_string(i) + "\n";
    ASSERT_TRUE(run_until(io, [&] { return got.find(expect) != std::string::npos; })) << got;
    EXPECT_EQ(writer.wait(), 0);
  }
  // Every writer is gone: no EOF and no storm of empty reads, just waiting.
  const int reads_now = reads;
  EXPECT_FALSE(run_until(io, [&] { return reads != reads_now; }, 100ms));
  EXPECT_FALSE(last);
  EXPECT_EQ(got, "message0\nmessage1\nmessage2\nmessage3\nmessage4\n");
  EXPECT_LE(reads, 10);
  server.close();
  io.run_for(100ms);
}

TEST_F(fifo, writer_to_cat_readers_that_come_and_go) {
  // A reader that comes and goes: `cat` reads one message, then a second `cat`.
  ipckit::make_fifo(path());
  for (int round = 0; round < 2; ++round) {
    peer_process cat({"cat", path().string()});
    auto writer = ipckit::open_fifo_writer(io.get_executor(), path(), 10s);
    const std::string line = "round" + std::to_string(round);
    boost::asio::write(writer, boost::asio::buffer(line + "\n"));
    writer.close();
    EXPECT_EQ(cat.read_line(), line);
    EXPECT_EQ(cat.wait(), 0);
  }
}

}  // namespace
