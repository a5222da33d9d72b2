// main() of every test program: GoogleTest with the leak check (leak_check.hpp) on.
#include "leak_check.hpp"

#include <ipckit/signal.hpp>

#include <boost/asio/io_context.hpp>

#include <gtest/gtest.h>

namespace {

// Process-wide services that, once started, live until exit: start them before the
// first test, so that the test that happens to use them first is not taken for a leak.
void start_process_wide_services() {
  boost::asio::io_context io;
  ipckit::signal::notifier none(io, {});  // the signal module's signalfd, pipe and thread
}

}  // namespace

int main(int argc, char** argv) {
  ::testing::InitGoogleTest(&argc, argv);
  start_process_wide_services();
  // gtest owns and deletes the listener. It is appended after the result printer, and
  // gtest calls OnTestEnd in reverse order, so a leak is reported before "[ OK ]".
  ::testing::UnitTest::GetInstance()->listeners().Append(new ipckit::test::leak_check());
  return RUN_ALL_TESTS();
}
