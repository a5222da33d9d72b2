// Tour rows of the pipe module: an anonymous pipe pair to a child started with
// ipckit::command, and two FIFOs that the child opens by path.
#include "tour.hpp"

#include <ipckit/pipe.hpp>
#include <ipckit/process.hpp>

#include <boost/asio/read.hpp>
#include <boost/asio/steady_timer.hpp>
#include <boost/asio/write.hpp>

#include <csignal>
#include <optional>
#include <unistd.h>

namespace ipckit::cli {
namespace {

using clock = std::chrono::steady_clock;
using namespace std::chrono_literals;
constexpr int samples = 200;
constexpr std::size_t message_size = 64;

// Waits for the child on the loop; one still running after 10 s is killed, so a child
// that hangs fails the row instead of hanging the tour.
process_state wait_within_deadline(tour_context& context, command& child, error_code& ec) {
  std::optional<process_state> state;
  child.async_wait([&](error_code e, process_state s) { ec = e, state = s; });
  boost::asio::steady_timer timer(context.loop().get_executor(), 10s);
  timer.async_wait([&](error_code e) {
    error_code ignored;
    if (!e) child.signal(SIGKILL, ignored);
  });
  context.loop().restart();
  while (!state && context.loop().run_one() > 0) {
  }
  timer.cancel();
  context.loop().poll();
  return state.value_or(process_state{});
}

// The parent's side: `samples` round trips of 64 bytes; true when every echo matched.
bool ping(pipe_writer& out, pipe_reader& in, std::vector<std::chrono::nanoseconds>& times) {
  std::string message(message_size, 'p'), echo(message_size, '\0');
  in.expires_after(10s);
  for (int i = 0; i < samples; ++i) {
    message[0] = static_cast<char>('a' + i % 26);
    const auto start = clock::now();
    boost::asio::write(out, boost::asio::buffer(message));
    boost::asio::read(in, boost::asio::buffer(echo));
    times.push_back(clock::now() - start);
    if (echo != message) return false;
  }
  return true;
}

// The child's side: echo 64-byte messages until EOF.
int echo(pipe_reader& in, pipe_writer& out) {
  std::string message(message_size, '\0');
  for (;;) {
    error_code ec;
    boost::asio::read(in, boost::asio::buffer(message), ec);
    if (ec == boost::asio::error::eof) return 0;
    if (ec) return 1;
    boost::asio::write(out, boost::asio::buffer(message), ec);
    if (ec) return 1;
  }
}

tour_result anonymous_pipe_row(tour_context& context) {
  auto ex = context.loop().get_executor();
  command child(ex, "/proc/self/exe", {"tour", "--child", "anonymous pipe"});
  // Two make_pipe pairs; the child's ends become its stdin and stdout.
  auto down = make_pipe(ex);
  auto up = make_pipe(ex);
  child.set_stdin(stdio::fd(down.reader.release()));
  child.set_stdout(stdio::fd(up.writer.release()));
  pipe_writer& to_child = down.writer;
  pipe_reader& from_child = up.reader;
  child.set_stderr(stdio::inherit());
  child.start();
  std::vector<std::chrono::nanoseconds> times;
  const bool echoed = ping(to_child, from_child, times);
  to_child.close();
  error_code ec;
  const auto state = wait_within_deadline(context, child, ec);
  const bool ok = echoed && !ec && state.success();
  return {ok, std::nullopt, median_us(times),
          ok ? "make_pipe pairs as a command's stdin/stdout, " + std::to_string(times.size()) +
                   " echoes of 64 bytes, child " + state.string()
             : "echo mismatch or child " + state.string()};
}

int anonymous_pipe_child(std::span<const std::string>) {
  boost::asio::io_context io;
  pipe_reader in(io.get_executor(), duplicate(0));
  pipe_writer out(io.get_executor(), duplicate(1));
  return echo(in, out);
}

tour_result fifo_row(tour_context& context) {
  auto ex = context.loop().get_executor();
  const auto down = context.temp_dir() / "down.fifo";
  const auto up = context.temp_dir() / "up.fifo";
  make_fifo(down);
  make_fifo(up);
  pipe_reader from_child = open_fifo_reader(ex, up);  // opens at once, no writer yet
  command child(ex, "/proc/self/exe", {"tour", "--child", "fifo", down.string(), up.string()});
  child.set_stderr(stdio::inherit());
  child.start();
  // Our writer's open completes when the child opens its reader: no ENXIO, no thread.
  std::optional<pipe_writer> to_child;
  error_code open_ec;
  async_open_fifo_writer(ex, down, 10s, [&](error_code e, pipe_writer w) {
    open_ec = e;
    to_child.emplace(std::move(w));
  });
  context.loop().context().restart();
  context.loop().run();
  if (open_ec) return {false, std::nullopt, std::nullopt, "open writer: " + error_text(open_ec)};
  std::vector<std::chrono::nanoseconds> times;
  const bool echoed = ping(*to_child, from_child, times);
  to_child->close();
  error_code ec;
  const auto state = wait_within_deadline(context, child, ec);
  const bool ok = echoed && !ec && state.success();
  return {ok, std::nullopt, median_us(times),
          ok ? "two FIFOs (0600), writer waited for the child's reader, " +
                   std::to_string(times.size()) + " echoes, child " + state.string()
             : "echo mismatch or child " + state.string()};
}

int fifo_child(std::span<const std::string> args) {
  if (args.size() != 2) return 2;
  boost::asio::io_context io;
  pipe_reader in = open_fifo_reader(io.get_executor(), args[0]);
  pipe_writer out = open_fifo_writer(io.get_executor(), args[1], 10s);
  return echo(in, out);
}

const tour_registration rows[] = {
    tour_registration{{200, "anonymous pipe", anonymous_pipe_row, anonymous_pipe_child}},
    tour_registration{{210, "fifo", fifo_row, fifo_child}},
};

}  // namespace
}  // namespace ipckit::cli
