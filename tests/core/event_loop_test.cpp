#include <ipckit/event_loop.hpp>

#include <boost/asio/post.hpp>
#include <boost/asio/steady_timer.hpp>
#include <gtest/gtest.h>

#include <functional>
#include <thread>

namespace {

using namespace std::chrono_literals;

TEST(event_loop, runs_posted_handlers_until_out_of_work) {
  ipckit::event_loop loop;
  int ran = 0;
  for (int i = 0; i < 3; ++i) boost::asio::post(loop.get_executor(), [&] { ++ran; });
  EXPECT_EQ(loop.run(), 3u);
  EXPECT_EQ(ran, 3);
}

TEST(event_loop, stop_from_another_thread_ends_run) {
  ipckit::event_loop loop;
  boost::asio::steady_timer forever(loop.get_executor(), 1h);
  forever.async_wait([](boost::system::error_code) {});
  std::thread stopper([&] { loop.stop(); });
  loop.run();  // returns only because of stop()
  stopper.join();
  EXPECT_TRUE(loop.stopped());
  loop.restart();
  EXPECT_FALSE(loop.stopped());
}

TEST(event_loop, run_spinning_runs_handlers_until_out_of_work) {
  ipckit::event_loop loop;
  int ran = 0;
  // A chain: each handler posts the next, and a timer completes after the spin gave up.
  std::function<void()> next = [&] {
    if (++ran < 5) boost::asio::post(loop.get_executor(), next);
  };
  boost::asio::post(loop.get_executor(), next);
  boost::asio::steady_timer later(loop.get_executor(), 20ms);
  bool fired = false;
  later.async_wait([&](boost::system::error_code ec) { fired = !ec; });
  EXPECT_EQ(loop.run_spinning(1ms), 6u);
  EXPECT_EQ(ran, 5);
  EXPECT_TRUE(fired);
  EXPECT_TRUE(loop.stopped());
}

TEST(event_loop, stop_ends_run_spinning) {
  ipckit::event_loop loop;
  boost::asio::steady_timer forever(loop.get_executor(), 1h);
  forever.async_wait([](boost::system::error_code) {});
  boost::asio::post(loop.get_executor(), [&] { loop.stop(); });
  loop.run_spinning(50us);  // returns only because of stop()
  EXPECT_TRUE(loop.stopped());
}

TEST(event_loop, run_for_returns_at_the_deadline) {
  ipckit::event_loop loop;
  boost::asio::steady_timer forever(loop.get_executor(), 1h);
  bool fired = false;
  forever.async_wait([&](boost::system::error_code) { fired = true; });
  loop.run_for(10ms);
  EXPECT_FALSE(fired);
  forever.cancel();
  loop.run();
  EXPECT_TRUE(fired);
}

TEST(event_loop, an_existing_io_context_works_through_its_executor) {
  ipckit::event_loop loop;
  boost::asio::io_context& io = loop.context();
  bool ran = false;
  boost::asio::post(io, [&] { ran = true; });
  loop.run();
  EXPECT_TRUE(ran);
}

}  // namespace
