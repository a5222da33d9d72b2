#include <ipckit/event_loop.hpp>

#include <boost/asio/post.hpp>
#include <boost/asio/steady_timer.hpp>
#include <gtest/gtest.h>

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
