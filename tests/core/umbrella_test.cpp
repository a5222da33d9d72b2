// <ipckit/ipckit.hpp> alone: every module's header together, as a user includes them.
// (Two modules once declared the same name; only this catches that.)
#include <ipckit/ipckit.hpp>

#include <gtest/gtest.h>

TEST(umbrella, every_module_header_compiles_together) {
  ipckit::event_loop loop;
  ipckit::error_code ec = ipckit::net::errc::missing_port;
  EXPECT_EQ(ec, ipckit::net::errc::missing_port);
  EXPECT_EQ(ipckit::error_code(ipckit::message::errc::malformed_json).message(), "malformed JSON");
  ipckit::queue_message from_a_queue{"text", 3};
  EXPECT_EQ(from_a_queue.priority, 3u);
}
