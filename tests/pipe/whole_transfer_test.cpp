// boost::asio::async_read/async_write of one buffer on a pipe end: one attempt for the
// whole transfer (the hooks in pipe.hpp), with the results of Asio's composed operation.
#include <ipckit/pipe.hpp>

#include "test_support.hpp"

#include <boost/asio/bind_allocator.hpp>
#include <boost/asio/bind_cancellation_slot.hpp>
#include <boost/asio/cancellation_signal.hpp>
#include <boost/asio/io_context.hpp>
#include <boost/asio/read.hpp>
#include <boost/asio/write.hpp>

#include <array>
#include <memory>
#include <string>
#include <sys/ioctl.h>
#include <unistd.h>

namespace {

using namespace std::chrono_literals;
using ipckit::error_code;
using ipckit::test::run_until;

// Counts the operations Asio allocates for a handler: the composed operation allocates
// one per async_read_some, the whole transfer one in all.
template <class T>
struct counting_allocator {
  using value_type = T;
  int* count;
  explicit counting_allocator(int* c) : count(c) {}
  template <class U>
  counting_allocator(const counting_allocator<U>& other) : count(other.count) {}
  T* allocate(std::size_t n) {
    ++*count;
    return std::allocator<T>().allocate(n);
  }
  void deallocate(T* p, std::size_t n) { std::allocator<T>().deallocate(p, n); }
  bool operator==(const counting_allocator& other) const { return count == other.count; }
};

struct outcome {
  bool done = false;
  error_code ec;
  std::size_t n = 0;
  auto handler() {
    return [this](error_code e, std::size_t moved) {
      done = true;
      ec = e;
      n = moved;
    };
  }
};

int bytes_waiting(int fd) {
  int n = -1;
  ::ioctl(fd, FIONREAD, &n);
  return n;
}

// Writes `part` and runs the loop until the reader has taken it out of the pipe.
void feed(boost::asio::io_context& io, ipckit::pipe_writer& writer, const ipckit::pipe_reader& reader,
          const std::string& part) {
  boost::asio::write(writer, boost::asio::buffer(part));
  ASSERT_TRUE(run_until(io, [&] { return bytes_waiting(reader.native_handle()) == 0; }));
}

TEST(pipe_whole_transfer, async_read_waits_for_every_part_in_one_operation) {
  boost::asio::io_context io;
  auto [reader, writer] = ipckit::make_pipe(io.get_executor());
  std::string got(30, '\0');
  outcome read;
  int allocations = 0;
  boost::asio::async_read(reader, boost::asio::buffer(got),
                          boost::asio::bind_allocator(counting_allocator<void>(&allocations), read.handler()));
  feed(io, writer, reader, "abcdefghij");
  EXPECT_FALSE(read.done) << "completed after a third of the buffer";
  feed(io, writer, reader, "klmnopqrst");
  EXPECT_FALSE(read.done) << "completed after two thirds of the buffer";
  boost::asio::write(writer, boost::asio::buffer(std::string("uvwxyz0123")));
  ASSERT_TRUE(run_until(io, [&] { return read.done; }));
  EXPECT_FALSE(read.ec);
  EXPECT_EQ(read.n, 30u);
  EXPECT_EQ(got, "abcdefghijklmnopqrstuvwxyz0123");
  EXPECT_EQ(allocations, 1) << "one operation for the whole read, not one per part";
}

TEST(pipe_whole_transfer, async_read_reports_the_part_before_eof) {
  boost::asio::io_context io;
  auto [reader, writer] = ipckit::make_pipe(io.get_executor());
  std::string got(30, '\0');
  outcome read;
  boost::asio::async_read(reader, boost::asio::buffer(got), read.handler());
  feed(io, writer, reader, "abcdefghij");
  writer.close();
  ASSERT_TRUE(run_until(io, [&] { return read.done; }));
  EXPECT_EQ(read.ec, boost::asio::error::eof);
  EXPECT_EQ(read.n, 10u);
  EXPECT_EQ(got.substr(0, 10), "abcdefghij");
}

TEST(pipe_whole_transfer, cancelled_async_read_reports_the_part_it_read) {
  boost::asio::io_context io;
  auto [reader, writer] = ipckit::make_pipe(io.get_executor());
  std::string got(30, '\0');
  boost::asio::cancellation_signal cancel;
  outcome by_slot;
  boost::asio::async_read(reader, boost::asio::buffer(got),
                          boost::asio::bind_cancellation_slot(cancel.slot(), by_slot.handler()));
  feed(io, writer, reader, "abcdefghij");
  cancel.emit(boost::asio::cancellation_type::terminal);
  ASSERT_TRUE(run_until(io, [&] { return by_slot.done; }));
  EXPECT_EQ(by_slot.ec, boost::asio::error::operation_aborted);
  EXPECT_EQ(by_slot.n, 10u);

  outcome by_cancel;
  boost::asio::async_read(reader, boost::asio::buffer(got), by_cancel.handler());
  feed(io, writer, reader, "klmno");
  reader.cancel();
  ASSERT_TRUE(run_until(io, [&] { return by_cancel.done; }));
  EXPECT_EQ(by_cancel.ec, boost::asio::error::operation_aborted);
  EXPECT_EQ(by_cancel.n, 5u);
  EXPECT_EQ(got.substr(0, 5), "klmno");
}

TEST(pipe_whole_transfer, async_read_of_an_empty_buffer_completes_with_nothing_and_not_inline) {
  boost::asio::io_context io;
  auto [reader, writer] = ipckit::make_pipe(io.get_executor());
  outcome read;
  boost::asio::async_read(reader, boost::asio::mutable_buffer(), read.handler());
  EXPECT_FALSE(read.done) << "completed inside the initiating call";
  ASSERT_TRUE(run_until(io, [&] { return read.done; }));
  EXPECT_FALSE(read.ec);
  EXPECT_EQ(read.n, 0u);
}

// A real peer that writes in parts: dd writes each 1000-byte block with its own write().
TEST(pipe_whole_transfer, async_read_takes_a_peers_many_writes_whole) {
  boost::asio::io_context io;
  ipckit::test::peer_process dd({"dd", "if=/dev/zero", "bs=1000", "count=300", "status=none"});
  ipckit::pipe_reader reader(io.get_executor(), ipckit::unique_fd(::dup(dd.stdout_fd())));
  std::string got(300'000, 'x');
  outcome read;
  int allocations = 0;
  boost::asio::async_read(reader, boost::asio::buffer(got),
                          boost::asio::bind_allocator(counting_allocator<void>(&allocations), read.handler()));
  ASSERT_TRUE(run_until(io, [&] { return read.done; }));
  EXPECT_FALSE(read.ec);
  EXPECT_EQ(read.n, got.size());
  EXPECT_EQ(got.find_first_not_of('\0'), std::string::npos);
  EXPECT_EQ(allocations, 1);
  EXPECT_EQ(dd.wait(), 0);
}

// A real peer reading through a 4 KiB pipe: the write waits for room about 256 times.
TEST(pipe_whole_transfer, async_write_larger_than_the_pipe_completes_as_a_peer_reads) {
  boost::asio::io_context io;
  ipckit::test::peer_process wc({"wc", "-c"});
  ipckit::pipe_writer writer(io.get_executor(), ipckit::unique_fd(::dup(wc.stdin_fd())));
  wc.close_stdin();
  writer.set_buffer_size(4096);
  const std::string data(1 << 20, 'w');
  outcome write;
  int allocations = 0;
  boost::asio::async_write(writer, boost::asio::buffer(data),
                           boost::asio::bind_allocator(counting_allocator<void>(&allocations), write.handler()));
  ASSERT_TRUE(run_until(io, [&] { return write.done; }));
  EXPECT_FALSE(write.ec);
  EXPECT_EQ(write.n, data.size());
  EXPECT_EQ(allocations, 1);
  writer.close();
  EXPECT_EQ(wc.read_line(), std::to_string(data.size()));
  EXPECT_EQ(wc.wait(), 0);
}

TEST(pipe_whole_transfer, async_write_to_a_gone_reader_reports_what_it_wrote) {
  boost::asio::io_context io;
  auto [reader, writer] = ipckit::make_pipe(io.get_executor(), 4096);
  const std::string data(64 << 10, 'w');
  outcome write;
  boost::asio::async_write(writer, boost::asio::buffer(data), write.handler());
  ASSERT_TRUE(run_until(io, [&] { return bytes_waiting(reader.native_handle()) == 4096; }));
  reader.close();
  ASSERT_TRUE(run_until(io, [&] { return write.done; }));
  EXPECT_EQ(write.ec, boost::asio::error::broken_pipe);
  EXPECT_EQ(write.n, 4096u);
}

// What the hooks leave to Asio's composed operation: a sequence of buffers, a
// completion condition, an end with a deadline.
TEST(pipe_whole_transfer, other_reads_are_asios_composed_operation_with_the_same_results) {
  boost::asio::io_context io;
  auto [reader, writer] = ipckit::make_pipe(io.get_executor());
  boost::asio::write(writer, boost::asio::buffer(std::string("abcdefghijklmnop")));
  std::array<char, 4> first{}, second{};
  const std::array<boost::asio::mutable_buffer, 2> both{boost::asio::buffer(first), boost::asio::buffer(second)};
  outcome sequence, at_least, with_deadline;
  boost::asio::async_read(reader, both, sequence.handler());
  ASSERT_TRUE(run_until(io, [&] { return sequence.done; }));
  EXPECT_EQ(sequence.n, 8u);
  EXPECT_EQ(std::string(first.data(), 4) + std::string(second.data(), 4), "abcdefgh");

  std::string got(8, '\0');
  boost::asio::async_read(reader, boost::asio::buffer(got), boost::asio::transfer_at_least(2), at_least.handler());
  ASSERT_TRUE(run_until(io, [&] { return at_least.done; }));
  EXPECT_FALSE(at_least.ec);
  EXPECT_EQ(got.substr(0, at_least.n), std::string("ijklmnop").substr(0, at_least.n));

  reader.expires_after(50ms);
  boost::asio::async_read(reader, boost::asio::buffer(got), with_deadline.handler());
  ASSERT_TRUE(run_until(io, [&] { return with_deadline.done; }));
  EXPECT_EQ(with_deadline.ec, ipckit::errc::timeout);
}

}  // namespace
