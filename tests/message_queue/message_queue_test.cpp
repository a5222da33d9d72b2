// message_queue: POSIX queues in one process and across processes (the ipckit command as
// the other side).
#include <ipckit/message_queue.hpp>

#include "test_support.hpp"

#include <ipckit/event_loop.hpp>

#include <boost/asio/bind_cancellation_slot.hpp>
#include <boost/asio/cancellation_signal.hpp>
#include <boost/asio/post.hpp>
#include <boost/asio/steady_timer.hpp>
#include <gmock/gmock.h>

#include <functional>
#include <mqueue.h>
#include <stdexcept>
#include <sys/stat.h>
#include <thread>
#include <unistd.h>

namespace {

using namespace std::chrono_literals;
using ipckit::error_code;
using ipckit::message_queue;
using ipckit::message_queue_errc;
using ipckit::message_queue_options;
using ipckit::test::cli_path;
using ipckit::test::peer_process;
using ipckit::test::run_process;
using ipckit::test::run_until;
using ipckit::test::unique_ipc_name;
using testing::HasSubstr;

class message_queue_test : public ::testing::Test {
 protected:
  void TearDown() override {
    for (const auto& name : names) {
      error_code ignored;
      message_queue::unlink(name, ignored);
    }
  }
  std::string name(std::string_view tag) { return names.emplace_back(unique_ipc_name(tag)); }
  message_queue_options small(long max_messages = 4, long message_size = 64) {
    message_queue_options options;
    options.attributes.max_messages = max_messages;
    options.attributes.message_size = message_size;
    return options;
  }

  ipckit::event_loop loop;
  std::vector<std::string> names;
};

TEST(message_queue_names, are_validated) {
  struct {
    std::string name;
    bool valid;
  } cases[] = {
      {"/q", true},
      {"/" + std::string(255, 'a'), true},
      {"/" + std::string(256, 'a'), false},
      {"", false},
      {"/", false},
      {"q", false},
      {"/a/b", false},
      {std::string("/a\0b", 4), false},
  };
  for (const auto& c : cases) EXPECT_EQ(ipckit::valid_ipc_name(c.name), c.valid) << c.name;
  ipckit::event_loop loop;
  message_queue queue(loop);
  error_code ec;
  queue.create("no-slash", {}, ec);
  EXPECT_EQ(ec, message_queue_errc::invalid_name);
  try {
    queue.open("/a/b");
    FAIL() << "no error";
  } catch (const ipckit::system_error& error) {
    EXPECT_THAT(error.what(), HasSubstr("open /a/b: invalid name"));
  }
}

TEST_F(message_queue_test, created_queue_is_0600_whatever_the_umask) {
  const auto q = name("mode");
  const mode_t old = ::umask(0);
  message_queue queue(loop);
  queue.create(q, small());
  ::umask(old);
  error_code ec;
  EXPECT_EQ(queue.mode(ec), 0600u);
  EXPECT_EQ(queue.owner(ec), ::geteuid());
  auto info = run_process({cli_path(), "mq", "info", q});
  EXPECT_THAT(info.out, HasSubstr("mode 0600"));
}

TEST_F(message_queue_test, exclusive_create_fails_if_it_exists) {
  const auto q = name("excl");
  message_queue first(loop), second(loop), third(loop);
  first.create(q, small());
  auto options = small();
  options.exclusive = true;
  error_code ec;
  second.create(q, options, ec);
  EXPECT_EQ(ec, boost::system::errc::file_exists);
  third.create(q, small(), ec);  // not exclusive, and ours: opened
  EXPECT_FALSE(ec);
}

TEST_F(message_queue_test, receives_in_priority_order_then_fifo) {
  message_queue queue(loop);
  queue.create(name("prio"), small(8));
  const std::pair<std::string, unsigned> sent[] = {{"low", 1}, {"high", 9}, {"mid", 5}, {"high2", 9}, {"zero", 0}};
  for (const auto& [text, priority] : sent) queue.send(boost::asio::buffer(text), priority);
  EXPECT_EQ(queue.attributes().current_messages, 5);
  std::vector<std::pair<std::string, unsigned>> got;
  for (int i = 0; i < 5; ++i) {
    auto m = queue.receive();
    got.emplace_back(m.data, m.priority);
  }
  const std::vector<std::pair<std::string, unsigned>> want = {
      {"high", 9}, {"high2", 9}, {"mid", 5}, {"low", 1}, {"zero", 0}};
  EXPECT_EQ(got, want);
}

TEST_F(message_queue_test, full_queue_would_block_then_async_send_completes_when_a_reader_drains) {
  const auto q = name("full");
  message_queue queue(loop);
  queue.create(q, small(2));
  EXPECT_TRUE(queue.try_send(boost::asio::buffer("one", 3)));
  EXPECT_TRUE(queue.try_send(boost::asio::buffer("two", 3)));
  error_code ec;
  queue.try_send(boost::asio::buffer("three", 5), 0, ec);
  EXPECT_EQ(ec, boost::asio::error::would_block);
  EXPECT_FALSE(queue.try_send(boost::asio::buffer("three", 5)));

  bool sent = false;
  error_code result;
  queue.async_send(boost::asio::buffer("three", 5), 0, [&](error_code e) { result = e, sent = true; });
  loop.poll();
  EXPECT_FALSE(sent);  // still full
  // Another process drains one message.
  auto reader = run_process({cli_path(), "mq", "receive", q});
  EXPECT_EQ(reader.exit_code, 0) << reader.err;
  EXPECT_EQ(reader.out, "one\n");
  ASSERT_TRUE(run_until(loop.context(), [&] { return sent; }));
  EXPECT_FALSE(result);
  EXPECT_EQ(queue.attributes().current_messages, 2);
  EXPECT_EQ(queue.receive().data, "two");
  EXPECT_EQ(queue.receive().data, "three");
}

TEST_F(message_queue_test, timeouts_on_full_and_empty_queues) {
  message_queue queue(loop);
  queue.create(name("timeout"), small(1));
  char buffer[64];
  error_code ec;
  auto start = std::chrono::steady_clock::now();
  queue.receive_for(boost::asio::buffer(buffer), 50ms, ec);
  EXPECT_EQ(ec, ipckit::errc::timeout);
  EXPECT_GE(std::chrono::steady_clock::now() - start, 50ms);
  EXPECT_EQ(queue.receive_for(20ms), std::nullopt);
  queue.send(boost::asio::buffer("x", 1));
  start = std::chrono::steady_clock::now();
  queue.send_for(boost::asio::buffer("y", 1), 0, 50ms, ec);
  EXPECT_EQ(ec, ipckit::errc::timeout);
  EXPECT_GE(std::chrono::steady_clock::now() - start, 50ms);
  try {
    queue.send_for(boost::asio::buffer("y", 1), 0, 1ms);
    FAIL() << "no timeout";
  } catch (const ipckit::system_error& error) {
    EXPECT_THAT(error.what(), HasSubstr("send " + queue.name() + ": i/o timeout"));
  }
}

TEST_F(message_queue_test, too_large_messages_and_too_small_buffers_are_clear_errors) {
  message_queue queue(loop);
  queue.create(name("sizes"), small(4, 16));
  error_code ec;
  const std::string big(17, 'b');
  queue.send(boost::asio::buffer(big), 0, ec);
  EXPECT_EQ(ec, ipckit::errc::message_too_large);
  queue.send(boost::asio::buffer(big.data(), 16));
  char tiny[8];
  queue.receive(boost::asio::buffer(tiny), ec);
  EXPECT_EQ(ec, message_queue_errc::buffer_too_small);
  try {
    queue.receive(boost::asio::buffer(tiny));
    FAIL() << "no error";
  } catch (const ipckit::system_error& error) {
    EXPECT_THAT(error.what(), HasSubstr("receive buffer smaller than the queue's message size"));
  }
  EXPECT_EQ(queue.receive().data.size(), 16u);  // the message was not lost
}

TEST_F(message_queue_test, hostile_queue_of_another_owner_is_refused) {
  if (::geteuid() != 0) GTEST_SKIP() << "needs root to chown a queue to another user";
  const auto q = name("hostile");
  {
    message_queue attacker(loop);
    auto options = small();
    options.mode = 0666;
    attacker.create(q, options);
    ASSERT_EQ(::fchown(attacker.native_handle(), 65534, 65534), 0) << "chown the queue";
  }
  message_queue queue(loop);
  error_code ec;
  queue.create(q, small(), ec);
  EXPECT_EQ(ec, message_queue_errc::not_owner);
  EXPECT_FALSE(queue.is_open());
  auto strict = small();
  strict.require_owner = true;
  queue.open(q, strict, ec);
  EXPECT_EQ(ec, message_queue_errc::not_owner);
  queue.open(q, {}, ec);  // opening a service's queue on purpose is allowed
  EXPECT_FALSE(ec);
}

TEST_F(message_queue_test, async_receive_from_another_process_while_a_timer_ticks) {
  const auto q = name("async");
  message_queue queue(loop);
  queue.create(q, small());
  char buffer[64];
  bool received = false;
  error_code result;
  ipckit::received_message got;
  queue.async_receive(boost::asio::buffer(buffer), [&](error_code e, ipckit::received_message m) {
    result = e, got = m, received = true;
  });
  int ticks = 0;
  boost::asio::steady_timer timer(loop.get_executor());
  std::function<void()> tick = [&] {
    timer.expires_after(2ms);
    timer.async_wait([&](error_code e) {
      if (!e && !received && ++ticks < 1000) tick();
    });
  };
  tick();
  // The loop keeps ticking while the receive waits on an empty queue...
  ASSERT_TRUE(run_until(loop.context(), [&] { return ticks >= 3; }));
  EXPECT_FALSE(received);
  // ...and the receive completes when another process sends.
  peer_process sender({cli_path(), "mq", "send", q, "hello", "--priority", "7"});
  ASSERT_TRUE(run_until(loop.context(), [&] { return received; }));
  EXPECT_FALSE(result);
  EXPECT_EQ(std::string(buffer, got.size), "hello");
  EXPECT_EQ(got.priority, 7u);
  EXPECT_EQ(sender.wait(), 0);
}

TEST_F(message_queue_test, async_receive_is_cancellable) {
  message_queue queue(loop);
  queue.create(name("cancel"), small());
  char buffer[64];
  boost::asio::cancellation_signal cancel;
  bool done = false;
  error_code result;
  queue.async_receive(boost::asio::buffer(buffer),
                      boost::asio::bind_cancellation_slot(cancel.slot(), [&](error_code e, ipckit::received_message) {
                        result = e, done = true;
                      }));
  loop.poll();
  cancel.emit(boost::asio::cancellation_type::terminal);
  ASSERT_TRUE(run_until(loop.context(), [&] { return done; }));
  EXPECT_EQ(result, boost::asio::error::operation_aborted);
  // A message sent afterwards is still there: the cancelled receive took nothing.
  queue.send(boost::asio::buffer("kept", 4));
  EXPECT_EQ(queue.receive().data, "kept");
}

TEST_F(message_queue_test, async_receive_completes_at_once_when_a_message_waits) {
  message_queue queue(loop);
  queue.create(name("ready"), small());
  queue.send(boost::asio::buffer("ready", 5), 3);
  char buffer[64];
  bool done = false;
  queue.async_receive(boost::asio::buffer(buffer), [&](error_code e, ipckit::received_message m) {
    EXPECT_FALSE(e);
    EXPECT_EQ(m.size, 5u);
    done = true;
  });
  EXPECT_FALSE(done);  // never inside the initiating call
  ASSERT_TRUE(run_until(loop.context(), [&] { return done; }));
}

// O_NONBLOCK of the queue's description, as mq_getattr reports it.
bool non_blocking(message_queue& queue) {
  mq_attr attributes{};
  EXPECT_EQ(::mq_getattr(queue.native_handle(), &attributes), 0);
  return (attributes.mq_flags & O_NONBLOCK) != 0;
}

// The description stays blocking while only blocking calls and tries are made (a
// blocking receive is one mq_receive, a try uses a zero timeout and never waits); the
// first async operation makes it non-blocking, and the blocking calls still block
// correctly after that (EAGAIN, then a wait for readiness).
TEST_F(message_queue_test, description_stays_blocking_until_the_first_async_operation) {
  const auto q = name("lazy");
  message_queue queue(loop);
  queue.create(q, small(2));
  EXPECT_FALSE(non_blocking(queue));
  char buffer[64];
  EXPECT_EQ(queue.try_receive(boost::asio::buffer(buffer)), std::nullopt);
  EXPECT_TRUE(queue.try_send(boost::asio::buffer("a", 1)));
  EXPECT_TRUE(queue.try_send(boost::asio::buffer("b", 1)));
  EXPECT_FALSE(queue.try_send(boost::asio::buffer("c", 1))) << "a full queue must not block a try";
  EXPECT_EQ(queue.receive().data, "a");
  queue.send(boost::asio::buffer("c", 1));
  EXPECT_FALSE(non_blocking(queue)) << "blocking calls and tries changed the description";

  bool done = false;
  queue.async_receive(boost::asio::buffer(buffer), [&](error_code e, ipckit::received_message m) {
    EXPECT_FALSE(e);
    EXPECT_EQ(std::string(buffer, m.size), "b");
    done = true;
  });
  ASSERT_TRUE(run_until(loop.context(), [&] { return done; }));
  EXPECT_TRUE(non_blocking(queue));

  // Blocking calls on the now non-blocking description: the receive waits for a message
  // that another thread sends, and the send waits for room that another thread makes.
  EXPECT_EQ(queue.receive().data, "c");
  message_queue other(loop);
  other.open(q);
  std::thread sender([&] { other.send(boost::asio::buffer("late", 4)); });
  EXPECT_EQ(queue.receive().data, "late");
  sender.join();
  queue.send(boost::asio::buffer("x", 1));
  queue.send(boost::asio::buffer("y", 1));
  std::thread drainer([&] { EXPECT_EQ(other.receive().data, "x"); });
  queue.send(boost::asio::buffer("z", 1));
  drainer.join();
  EXPECT_EQ(queue.receive().data, "y");
  EXPECT_EQ(queue.receive().data, "z");
}

// Async sends to a queue with room complete without the queue ever waiting on the loop,
// and a receive that has to wait is woken by each message in turn (edge-triggered, one
// registration): many round trips through two queues lose and reorder nothing.
TEST_F(message_queue_test, async_ping_pong_through_two_queues_keeps_every_message_in_order) {
  message_queue ping(loop), pong(loop);
  ping.create(name("ping"), small(1));
  pong.create(name("pong"), small(1));
  constexpr int rounds = 200;
  char ping_buffer[64], pong_buffer[64];
  int echoed = 0, returned = 0;
  std::function<void()> echo = [&] {
    ping.async_receive(boost::asio::buffer(ping_buffer), [&](error_code e, ipckit::received_message m) {
      ASSERT_FALSE(e);
      pong.async_send(boost::asio::buffer(ping_buffer, m.size), 0, [&](error_code e2) {
        ASSERT_FALSE(e2);
        if (++echoed < rounds) echo();
      });
    });
  };
  std::string sent;  // the bytes of the pending send
  std::function<void()> send_next = [&] {
    sent = std::to_string(returned);
    ping.async_send(boost::asio::buffer(sent), 0, [&](error_code e) {
      ASSERT_FALSE(e);
      pong.async_receive(boost::asio::buffer(pong_buffer), [&](error_code e2, ipckit::received_message m) {
        ASSERT_FALSE(e2);
        EXPECT_EQ(std::string(pong_buffer, m.size), sent);
        if (++returned < rounds) send_next();
      });
    });
  };
  echo();
  send_next();
  // Through the event_loop: each echo's send finishes at once and completes right after
  // the receive handler that started it (immediate completions: tests/core).
  ASSERT_TRUE(run_until(loop, [&] { return returned == rounds; }));
  EXPECT_EQ(echoed, rounds);
}

// The scenarios of immediate completions (run back to back, run_one, stop, an exception,
// a nested run_one) are in tests/core/immediate_completions_test.cpp, with a queue among
// their channels.

TEST_F(message_queue_test, async_operations_on_a_closed_queue_fail_with_closed) {
  message_queue queue(loop);
  queue.create(name("closed"), small());
  queue.close();
  char buffer[64];
  int done = 0;
  queue.async_send(boost::asio::buffer("x", 1), 0, [&](error_code e) {
    EXPECT_EQ(e, ipckit::errc::closed);
    ++done;
  });
  queue.async_receive(boost::asio::buffer(buffer), [&](error_code e, ipckit::received_message) {
    EXPECT_EQ(e, ipckit::errc::closed);
    ++done;
  });
  EXPECT_EQ(done, 0);
  ASSERT_TRUE(run_until(loop.context(), [&] { return done == 2; }));
}

TEST_F(message_queue_test, unlink_removes_the_name_and_reports_a_missing_one) {
  const auto q = name("unlink");
  message_queue queue(loop);
  queue.create(q, small());
  message_queue::unlink(q);
  message_queue again(loop);
  error_code ec;
  again.open(q, {}, ec);
  EXPECT_EQ(ec, boost::system::errc::no_such_file_or_directory);
  try {
    message_queue::unlink(q);
    FAIL() << "no error";
  } catch (const ipckit::system_error& error) {
    EXPECT_EQ(std::string(error.what()), "unlink " + q + ": mq_unlink: no such file or directory");
  }
  queue.send(boost::asio::buffer("still", 5));  // an open queue outlives its name
  EXPECT_EQ(queue.receive().data, "still");
}

}  // namespace
