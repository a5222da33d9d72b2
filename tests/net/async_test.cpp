// async_dial, async_accept and reads with every completion style, cancellation, and
// Happy Eyeballs.
#include "net_test_util.hpp"

#include <boost/asio/bind_cancellation_slot.hpp>
#include <boost/asio/cancellation_signal.hpp>
#include <boost/asio/co_spawn.hpp>
#include <boost/asio/deferred.hpp>
#include <boost/asio/detached.hpp>
#include <boost/asio/read.hpp>
#include <boost/asio/steady_timer.hpp>
#include <boost/asio/use_awaitable.hpp>
#include <boost/asio/use_future.hpp>
#include <boost/asio/write.hpp>

#include <thread>

namespace {

namespace net = ipckit::net;
namespace asio = boost::asio;
using ipckit::error_code;
using ipckit::test::run_until;
using namespace std::chrono_literals;

class async_test : public ipckit::test::temp_dir_test {
 protected:
  asio::io_context io;
  net::executor_type ex = io.get_executor();
};

TEST_F(async_test, dial_and_accept_with_callbacks) {
  net::listener l = net::listen(ex, "tcp4", "127.0.0.1:0");
  std::optional<net::conn> client, server;
  error_code dial_ec, accept_ec;
  l.async_accept([&](error_code ec, net::conn c) {
    accept_ec = ec;
    server.emplace(std::move(c));
  });
  net::async_dial(ex, "tcp4", l.addr().to_string(), [&](error_code ec, net::conn c) {
    dial_ec = ec;
    client.emplace(std::move(c));
  });
  ASSERT_TRUE(run_until(io, [&] { return client && server; }));
  EXPECT_FALSE(dial_ec);
  EXPECT_FALSE(accept_ec);
  EXPECT_EQ(client->remote_address().to_string(), server->local_address().to_string());
}

TEST_F(async_test, dial_errors_complete_asynchronously) {
  bool called = false;
  error_code got;
  net::async_dial(ex, "tcpx", "127.0.0.1:80", [&](error_code ec, net::conn) {
    called = true;
    got = ec;
  });
  EXPECT_FALSE(called) << "never inside the initiating call";
  ASSERT_TRUE(run_until(io, [&] { return called; }));
  EXPECT_EQ(got, net::errc::unknown_network);
  called = false;
  net::async_dial(ex, "tcp", "127.0.0.1:1", [&](error_code ec, net::conn) {
    called = true;
    got = ec;
  });
  ASSERT_TRUE(run_until(io, [&] { return called; }));
  EXPECT_EQ(got, boost::system::errc::connection_refused);
}

TEST_F(async_test, use_future_from_another_thread) {
  net::listener l = net::listen(ex, "unix", (dir() / "f.sock").string());
  auto work = asio::make_work_guard(io);
  std::thread runner([this] { io.run(); });
  auto accepted = l.async_accept(asio::use_future);
  auto dialed = net::async_dial(ex, "unix", (dir() / "f.sock").string(), asio::use_future);
  ASSERT_EQ(dialed.wait_for(10s), std::future_status::ready);
  ASSERT_EQ(accepted.wait_for(10s), std::future_status::ready);
  net::conn c = dialed.get();
  net::conn s = accepted.get();
  EXPECT_TRUE(c.is_open() && s.is_open());
  work.reset();
  io.stop();
  runner.join();
  auto failed = net::async_dial(ex, "tcpx", "x:1", asio::use_future);
  io.restart();
  ASSERT_TRUE(run_until(io, [&] { return failed.wait_for(0s) == std::future_status::ready; }));
  EXPECT_THROW(failed.get(), ipckit::system_error);
}

TEST_F(async_test, deferred_and_awaitable) {
  net::listener l = net::listen(ex, "unixpacket", (dir() / "d.sock").string());
  auto op = net::async_dial(ex, "unixpacket", (dir() / "d.sock").string(), asio::deferred);
  std::optional<net::conn> client;
  std::move(op)([&](error_code ec, net::conn c) {
    EXPECT_FALSE(ec);
    client.emplace(std::move(c));
  });
  std::string got;
  asio::co_spawn(
      ex,
      [&]() -> asio::awaitable<void> {
        net::conn s = co_await l.async_accept(asio::use_awaitable);
        char buf[16];
        std::size_t n = co_await s.async_read_some(asio::buffer(buf), asio::use_awaitable);
        got.assign(buf, n);
      },
      asio::detached);
  ASSERT_TRUE(run_until(io, [&] { return client.has_value(); }));
  asio::write(*client, asio::buffer(std::string("packet")));
  ASSERT_TRUE(run_until(io, [&] { return !got.empty(); }));
  EXPECT_EQ(got, "packet");
}

TEST_F(async_test, cancel_a_pending_dial) {
  ipckit::test::full_backlog full;
  if (!full.full()) GTEST_SKIP() << "could not fill a listener's accept queue here";
  asio::steady_timer timer(ex, 50ms);  // the loop's reactor fds exist from here on
  const std::size_t fds_before = ipckit::test::open_fd_count();
  asio::cancellation_signal cancel;
  std::optional<error_code> got;
  net::async_dial(ex, "tcp4", full.address(),
                  asio::bind_cancellation_slot(cancel.slot(), [&](error_code ec, net::conn c) {
                    got = ec;
                    EXPECT_FALSE(c.is_open());
                  }));
  timer.async_wait([&](error_code) { cancel.emit(asio::cancellation_type::terminal); });
  ASSERT_TRUE(run_until(io, [&] { return got.has_value(); }));
  EXPECT_EQ(*got, asio::error::operation_aborted);
  io.restart();
  io.poll();
  EXPECT_EQ(ipckit::test::open_fd_count(), fds_before) << "the pending socket was closed";
}

TEST_F(async_test, cancel_a_pending_accept_and_read) {
  net::listener l = net::listen(ex, "tcp4", "127.0.0.1:0");
  asio::cancellation_signal cancel_accept, cancel_read;
  std::optional<error_code> accept_result, read_result;
  l.async_accept(asio::bind_cancellation_slot(cancel_accept.slot(), [&](error_code ec, net::conn) {
    accept_result = ec;
  }));
  net::conn c = net::dial(ex, "tcp4", l.addr().to_string());
  char buf[8];
  c.async_read_some(asio::buffer(buf), asio::bind_cancellation_slot(
                                           cancel_read.slot(), [&](error_code ec, std::size_t) {
                                             read_result = ec;
                                           }));
  asio::post(ex, [&] {
    cancel_read.emit(asio::cancellation_type::terminal);
  });
  ASSERT_TRUE(run_until(io, [&] { return read_result.has_value(); }));
  EXPECT_EQ(*read_result, asio::error::operation_aborted);
  // The dial above was accepted already; a second accept stays pending until cancelled.
  ASSERT_TRUE(run_until(io, [&] { return accept_result.has_value(); }));
  std::optional<error_code> second;
  l.async_accept(asio::bind_cancellation_slot(cancel_accept.slot(), [&](error_code ec, net::conn) {
    second = ec;
  }));
  asio::post(ex, [&] { cancel_accept.emit(asio::cancellation_type::terminal); });
  ASSERT_TRUE(run_until(io, [&] { return second.has_value(); }));
  EXPECT_EQ(*second, asio::error::operation_aborted);
}

TEST_F(async_test, async_dial_timeout) {
  ipckit::test::full_backlog full;
  if (!full.full()) GTEST_SKIP() << "could not fill a listener's accept queue here";
  net::dialer d;
  d.timeout = 100ms;
  std::optional<error_code> got;
  d.async_dial(ex, "tcp4", full.address(), [&](error_code ec, net::conn) { got = ec; });
  ASSERT_TRUE(run_until(io, [&] { return got.has_value(); }));
  EXPECT_EQ(*got, ipckit::errc::timeout);
}

net::dialer racing_dialer(std::vector<net::address> answer) {
  net::dialer d;
  d.resolver = [answer](std::string_view, int, error_code&) { return answer; };
  return d;
}

TEST_F(async_test, happy_eyeballs_falls_back_when_the_first_family_hangs) {
  if (!ipckit::test::has_ipv6_loopback()) GTEST_SKIP() << "no IPv6 loopback on this host";
  ipckit::test::full_backlog full;
  if (!full.full()) GTEST_SKIP() << "could not fill a listener's accept queue here";
  net::listener good = net::listen(ex, "tcp6", "[::1]:0");
  net::dialer d = racing_dialer({net::resolve_address("tcp", full.address()), good.addr()});
  asio::steady_timer reactor_up(ex, 1ms);  // the loop's reactor fds exist from here on
  const std::size_t fds_before = ipckit::test::open_fd_count();
  const auto start = std::chrono::steady_clock::now();
  std::optional<error_code> got;
  std::optional<net::conn> winner;
  d.async_dial(ex, "tcp", "both.test:1", [&](error_code ec, net::conn c) {
    got = ec;
    winner.emplace(std::move(c));
  });
  ASSERT_TRUE(run_until(io, [&] { return got.has_value(); }));
  const auto took = std::chrono::steady_clock::now() - start;
  ASSERT_FALSE(*got) << got->message();
  EXPECT_EQ(winner->remote_address().to_string(), good.addr().to_string());
  EXPECT_GE(took, 290ms) << "the fallback waits for the fallback delay";
  EXPECT_LT(took, 3s);
  // The loser, still connecting to the full backlog, was closed: only the winner is new.
  io.restart();
  io.poll();
  EXPECT_EQ(ipckit::test::open_fd_count(), fds_before + 1) << "the losing socket was closed";
}

TEST_F(async_test, happy_eyeballs_starts_fallback_at_once_when_the_first_family_fails) {
  if (!ipckit::test::has_ipv6_loopback()) GTEST_SKIP() << "no IPv6 loopback on this host";
  net::listener good = net::listen(ex, "tcp4", "127.0.0.1:0");
  net::dialer d = racing_dialer({net::resolve_address("tcp", "[::1]:1"), good.addr()});
  d.fallback_delay = 5s;
  const auto start = std::chrono::steady_clock::now();
  net::conn c = d.dial(ex, "tcp", "both.test:1");
  EXPECT_LT(std::chrono::steady_clock::now() - start, 2s);
  EXPECT_EQ(c.remote_address().to_string(), good.addr().to_string());
}

TEST_F(async_test, dial_over_several_addresses_reports_the_first_error) {
  net::dialer d = racing_dialer({net::resolve_address("tcp", "127.0.0.1:1"),
                                 net::resolve_address("tcp", "127.0.0.2:1")});
  try {
    d.dial(ex, "tcp4", "two.test:1");
    FAIL();
  } catch (const ipckit::system_error& e) {
    EXPECT_STREQ(e.what(), "dial tcp4 127.0.0.1:1: connect: connection refused");
  }
}

}  // namespace
