// Immediate completions run back to back under event_loop's runs: the same scenarios on
// a POSIX message queue (polled_descriptor attempts) and on Asio's own descriptor and
// socket operations (a pipe, unix stream, datagram and seqpacket socket pairs). Each
// channel is a real kernel object.
#include <ipckit/detail/immediate_completions.hpp>
#include <ipckit/event_loop.hpp>
#include <ipckit/message_queue.hpp>
#include <ipckit/net.hpp>
#include <ipckit/pipe.hpp>

#include "test_support.hpp"

#include <boost/asio/append.hpp>
#include <boost/asio/bind_executor.hpp>
#include <boost/asio/defer.hpp>
#include <boost/asio/post.hpp>
#include <boost/asio/steady_timer.hpp>
#include <boost/asio/strand.hpp>

#include <functional>
#include <memory>
#include <optional>
#include <sys/socket.h>
#include <thread>

namespace {

using ipckit::error_code;
using ipckit::event_loop;
using ipckit::unique_fd;
using namespace std::chrono_literals;
namespace asio = boost::asio;
namespace net = ipckit::net;

// One byte channel, a queue, a pipe or a socket pair: write_one finishes at once (there
// is room), read_one at once after a write (the byte is there). Handlers keep their type,
// so that what is associated with them (a strand) reaches the operation; they are called
// with (error_code, ...).
struct channel {
  std::optional<ipckit::message_queue> queue;
  std::string queue_name;
  std::optional<ipckit::pipe_pair> pipe;
  std::optional<net::conn> writer, reader;
  char byte[64]{};

  ~channel() {
    if (queue_name.empty()) return;
    error_code ignored;
    ipckit::message_queue::unlink(queue_name, ignored);
  }
  template <class Handler>
  void write_one(Handler h) {
    if (queue) queue->async_send(asio::buffer("c", 1), 0, asio::append(std::move(h), std::size_t{1}));
    else if (pipe) pipe->writer.async_write_some(asio::buffer("c", 1), std::move(h));
    else writer->async_write_some(asio::buffer("c", 1), std::move(h));
  }
  template <class Handler>
  void read_one(Handler h) {
    if (queue) queue->async_receive(asio::buffer(byte), std::move(h));
    else if (pipe) pipe->reader.async_read_some(asio::buffer(byte, 1), std::move(h));
    else reader->async_read_some(asio::buffer(byte, 1), std::move(h));
  }
};

std::unique_ptr<channel> queue_channel(event_loop& loop) {
  auto ch = std::make_unique<channel>();
  ch->queue_name = ipckit::test::unique_ipc_name("drain");
  ch->queue.emplace(loop);
  ipckit::message_queue_options options;
  options.attributes.max_messages = 4;
  options.attributes.message_size = 64;
  ch->queue->create(ch->queue_name, options);
  return ch;
}

std::unique_ptr<channel> pipe_channel(event_loop& loop) {
  auto ch = std::make_unique<channel>();
  ch->pipe.emplace(ipckit::make_pipe(loop.get_executor()));
  return ch;
}

std::unique_ptr<channel> socket_channel(event_loop& loop, std::string_view network, int type) {
  int fds[2];
  if (::socketpair(AF_UNIX, type | SOCK_CLOEXEC, 0, fds) != 0)
    throw std::system_error(errno, std::generic_category());
  auto ch = std::make_unique<channel>();
  ch->writer.emplace(loop.get_executor(), network, unique_fd(fds[0]));
  ch->reader.emplace(loop.get_executor(), network, unique_fd(fds[1]));
  return ch;
}

struct channel_kind {
  const char* name;
  std::function<std::unique_ptr<channel>(event_loop&)> make;
};

void PrintTo(const channel_kind& kind, std::ostream* os) { *os << kind.name; }

const channel_kind kinds[] = {
    {"mq", queue_channel},
    {"pipe", pipe_channel},
    {"unix", [](event_loop& l) { return socket_channel(l, "unix", SOCK_STREAM); }},
    {"unixgram", [](event_loop& l) { return socket_channel(l, "unixgram", SOCK_DGRAM); }},
    {"unixpacket", [](event_loop& l) { return socket_channel(l, "unixpacket", SOCK_SEQPACKET); }},
};

// A chain of operations that each finish at once: a write, then the read of that byte,
// again and again. The n-th handler (from 1) starts the next operation, then calls
// on_completion(n).
struct immediate_chain {
  channel& ch;
  int total;
  std::function<void(int)> on_completion = [](int) {};
  int completed = 0;
  bool nested = false;  // a handler ran inside the call that started its operation

  void step() {
    if (completed == total) return;
    const int before = completed;
    auto done = [this](error_code e, auto&&...) { finished(e); };
    if (completed % 2 == 0) ch.write_one(done);
    else ch.read_one(done);
    if (completed != before) nested = true;
  }
  void finished(error_code e) {
    EXPECT_FALSE(e) << e.message();
    ++completed;
    step();
    on_completion(completed);
  }
};

class immediate_completions : public ::testing::TestWithParam<channel_kind> {
 protected:
  event_loop loop;
  std::unique_ptr<channel> ch = GetParam().make(loop);
};

// poll() runs what a handler started and finished at once as soon as that handler returns,
// before the reactor's turn, but never inside the initiating call and at most
// immediate_budget in a row: a handler posted before the chain started runs after the
// first run of them. Every handler is counted (with the reactor's readiness events,
// which Asio counts as handlers too).
TEST_P(immediate_completions, run_back_to_back_a_bounded_number_of_times) {
  immediate_chain chain{*ch, 100};
  chain.step();
  int seen_by_posted = -1;
  asio::post(loop.get_executor(), [&] { seen_by_posted = chain.completed; });
  std::size_t ran = 0;
  for (int i = 0; i < 100 && chain.completed < 100; ++i) ran += loop.poll();
  EXPECT_GE(ran, 101u);
  EXPECT_EQ(chain.completed, 100);
  EXPECT_FALSE(chain.nested) << "a handler ran inside its initiating call";
  EXPECT_GT(seen_by_posted, 1) << "the completions went through the reactor's turn one by one";
  EXPECT_LE(seen_by_posted, 1 + ipckit::detail::immediate_budget);
  loop.poll();
  EXPECT_TRUE(loop.stopped()) << "outstanding work left after the last handler";
}

TEST_P(immediate_completions, run_one_runs_at_most_one_handler_even_when_the_next_completes_at_once) {
  immediate_chain chain{*ch, 10};
  chain.step();
  // Asio counts the reactor's readiness events as handlers too: a run_one may run none
  // of the chain's.
  for (int i = 0; i < 1000 && chain.completed < 10; ++i) {
    const int before = chain.completed;
    ASSERT_EQ(loop.run_one(), 1u);
    ASSERT_LE(chain.completed, before + 1);
  }
  EXPECT_EQ(chain.completed, 10);
  EXPECT_FALSE(chain.nested);
}

TEST_P(immediate_completions, stop_in_a_handler_holds_back_the_completion_it_started) {
  immediate_chain chain{*ch, 40};
  chain.on_completion = [&](int n) {
    if (n == 3) loop.stop();
  };
  chain.step();
  loop.run();  // returns at stop(): the chain never ends on its own before 40
  EXPECT_EQ(chain.completed, 3);
  loop.restart();
  ASSERT_TRUE(ipckit::test::run_until(loop, [&] { return chain.completed == 40; }));
}

// A handler that throws after starting an operation: the exception leaves poll(), and
// the operation it started completes later (not lost, not run twice).
TEST_P(immediate_completions, exception_from_a_handler_keeps_the_completion_it_started) {
  immediate_chain chain{*ch, 40};
  chain.on_completion = [&](int n) {
    if (n == 3) throw std::runtime_error("from a handler");
  };
  chain.step();
  EXPECT_THROW(loop.run(), std::runtime_error);
  EXPECT_EQ(chain.completed, 3);
  ASSERT_TRUE(ipckit::test::run_until(loop, [&] { return chain.completed == 40; }));
  loop.poll();
  EXPECT_TRUE(loop.stopped()) << "outstanding work left after the last handler";
}

// A handler bound to a strand keeps running in it: the drain completes through the
// handler's own executor.
TEST_P(immediate_completions, a_chain_bound_to_a_strand_runs_in_the_strand) {
  auto strand = asio::make_strand(loop.get_executor());
  int completed = 0, outside = 0;
  std::function<void()> step = [&] {
    auto done = asio::bind_executor(strand, [&](error_code e, auto&&...) {
      EXPECT_FALSE(e);
      if (!strand.running_in_this_thread()) ++outside;
      if (++completed < 20) step();
    });
    if (completed % 2 == 0) ch->write_one(done);
    else ch->read_one(done);
  };
  asio::post(strand, step);
  ASSERT_TRUE(ipckit::test::run_until(loop, [&] { return completed == 20; }));
  EXPECT_EQ(outside, 0);
}

// A handler that starts an operation which finishes at once and then waits for it in a
// nested run_one() (the loop has Asio's default, multi-thread, concurrency hint): the
// completion is where the nested run finds it, not held for after the handler.
TEST_P(immediate_completions, nested_run_one_finds_the_completion_its_handler_started) {
  bool second = false, gave_up = false;
  asio::steady_timer guard(loop.get_executor(), 5s);
  guard.async_wait([&](error_code e) { gave_up = !e; });
  ch->write_one([&](error_code e, auto&&...) {
    ASSERT_FALSE(e);
    ch->read_one([&](error_code, auto&&...) { second = true; });
    while (!second && !gave_up) loop.run_one();
    guard.cancel();
  });
  ASSERT_TRUE(ipckit::test::run_until(loop, [&] { return second || gave_up; }));
  EXPECT_TRUE(second) << "the nested run never saw the completion";
}

// A continuation the handler defers (Asio's defer) also runs right after it.
TEST_P(immediate_completions, a_deferred_continuation_runs_before_the_reactor_turn) {
  int order = 0, deferred_at = -1, posted_at = -1;
  ch->write_one([&](error_code, auto&&...) {
    asio::defer(loop.get_executor(), [&] { deferred_at = ++order; });
  });
  // Posted once the write's handler is queued: it runs after that handler, and after its
  // deferred continuation only if the drain took it.
  asio::post(loop.get_executor(), [&] { posted_at = ++order; });
  ASSERT_TRUE(ipckit::test::run_until(loop, [&] { return deferred_at > 0 && posted_at > 0; }));
  EXPECT_LT(deferred_at, posted_at);
}

// Two threads run the loop; chains on separate channels never lose or double a handler.
TEST_P(immediate_completions, two_threads_running_the_loop_complete_every_chain) {
  auto other = GetParam().make(loop);
  immediate_chain first{*ch, 200}, second{*other, 200};
  first.step();
  second.step();
  std::thread helper([&] { loop.run_for(10s); });
  loop.run_for(10s);
  helper.join();
  EXPECT_EQ(first.completed, 200);
  EXPECT_EQ(second.completed, 200);
}

INSTANTIATE_TEST_SUITE_P(channels, immediate_completions, ::testing::ValuesIn(kinds),
                         [](const auto& info) { return std::string(info.param.name); });

}  // namespace
