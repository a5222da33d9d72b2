// detail::polled_descriptor: an attempt runs at once, and again at each edge; one that
// finished_and_drained makes the next attempt wait for an edge instead. Its registration
// in the reactor's epoll set is ipckit's own: release() takes it out, and a forked child's
// notify_fork puts it in the child's new set.
#include <ipckit/detail/polled_descriptor.hpp>

#include "test_support.hpp"

#include <boost/asio/io_context.hpp>
#include <gtest/gtest.h>

#include <cerrno>
#include <optional>
#include <cstdint>
#include <fcntl.h>
#include <sys/eventfd.h>
#include <type_traits>
#include <unistd.h>

namespace {

using ipckit::error_code;
using ipckit::detail::attempt_direction;
using ipckit::detail::attempt_status;
using ipckit::test::reap_within;
using ipckit::test::run_until;
using namespace std::chrono_literals;

// An eventfd on the loop and an attempt that reads it, counting its tries.
struct eventfd_on_loop {
  boost::asio::io_context io;
  ipckit::detail::polled_descriptor descriptor{io.get_executor()};
  int fd = ::eventfd(0, EFD_NONBLOCK | EFD_CLOEXEC);
  int tries = 0;

  eventfd_on_loop() { descriptor.assign(fd); }
  void post_one() {
    const std::uint64_t one = 1;
    ASSERT_EQ(::write(fd, &one, sizeof one), static_cast<ssize_t>(sizeof one));
  }
  // Starts an attempt whose outcome, once it reads something, is `when_read`.
  template <class Outcome>
  void start(Outcome when_read, bool& done) {
    descriptor.async_attempt<void>(
        attempt_direction::read,
        [this, when_read](error_code&) {
          ++tries;
          std::uint64_t count;
          const bool read = ::read(fd, &count, sizeof count) == static_cast<ssize_t>(sizeof count);
          if constexpr (std::is_same_v<Outcome, bool>) return read && when_read;
          else return read ? when_read : attempt_status::would_block;
        },
        [&done](error_code ec) { done = !ec; });
  }
};

TEST(polled_descriptor, after_an_attempt_that_drained_the_next_waits_for_an_edge) {
  eventfd_on_loop loop;
  bool first = false, second = false;
  loop.start(attempt_status::finished_and_drained, first);  // tried now: nothing, then registered
  loop.post_one();
  ASSERT_TRUE(run_until(loop.io, [&] { return first; }));
  const int tries = loop.tries;
  loop.start(attempt_status::finished_and_drained, second);
  loop.io.restart();
  loop.io.poll();
  EXPECT_EQ(loop.tries, tries) << "tried again although no edge came since it read the eventfd empty";
  EXPECT_FALSE(second);
  loop.post_one();
  ASSERT_TRUE(run_until(loop.io, [&] { return second; }));
  EXPECT_EQ(loop.tries, tries + 1);
}

TEST(polled_descriptor, after_an_attempt_that_finished_the_next_is_tried_at_once) {
  eventfd_on_loop loop;
  bool first = false, second = false;
  loop.start(true, first);
  loop.post_one();
  ASSERT_TRUE(run_until(loop.io, [&] { return first; }));
  const int tries = loop.tries;
  loop.start(true, second);
  EXPECT_EQ(loop.tries, tries + 1) << "a plain finish keeps the try before waiting";
  loop.post_one();
  ASSERT_TRUE(run_until(loop.io, [&] { return second; }));
}

// An edge that comes while no attempt is pending is not lost: the next attempt is tried.
TEST(polled_descriptor, an_edge_between_two_attempts_is_not_lost_after_a_drained_one) {
  eventfd_on_loop loop;
  bool first = false, second = false;
  loop.start(attempt_status::finished_and_drained, first);
  loop.post_one();
  ASSERT_TRUE(run_until(loop.io, [&] { return first; }));
  loop.post_one();
  loop.io.restart();
  loop.io.poll();  // the reactor sees the edge with no attempt pending
  loop.start(attempt_status::finished_and_drained, second);
  ASSERT_TRUE(run_until(loop.io, [&] { return second; }, 5s));
}

TEST(polled_descriptor, release_aborts_the_waiting_attempt_and_takes_the_descriptor_out_of_the_epoll_set) {
  eventfd_on_loop loop;
  std::optional<error_code> aborted;
  loop.descriptor.async_attempt<void>(
      attempt_direction::read, [](error_code&) { return false; }, [&](error_code ec) { aborted = ec; });
  const int fd = loop.descriptor.release();
  EXPECT_EQ(fd, loop.fd);
  EXPECT_FALSE(loop.descriptor.is_open());
  ASSERT_TRUE(run_until(loop.io, [&] { return aborted.has_value(); }));
  EXPECT_EQ(*aborted, boost::asio::error::operation_aborted);
  ASSERT_GE(::fcntl(fd, F_GETFD), 0) << "release() closed the descriptor";

  // Registered again by a new owner: an epoll set still holding it would refuse (EEXIST).
  ipckit::detail::polled_descriptor again(loop.io.get_executor());
  again.assign(fd);
  std::optional<error_code> read;
  again.async_attempt<void>(
      attempt_direction::read,
      [fd](error_code&) {
        std::uint64_t count;
        return ::read(fd, &count, sizeof count) == static_cast<ssize_t>(sizeof count);
      },
      [&](error_code ec) { read = ec; });
  loop.io.restart();
  loop.io.poll();
  loop.post_one();
  ASSERT_TRUE(run_until(loop.io, [&] { return read.has_value(); }));
  EXPECT_FALSE(*read) << read->message();
}

// The reactor's fork_child makes a new epoll set holding only Asio's own descriptors; the
// registry puts its descriptors in it too, or a child's wait would never end.
TEST(polled_descriptor, a_forked_child_waits_on_its_copy_after_notify_fork) {
  eventfd_on_loop loop;
  bool first = false;
  loop.start(true, first);  // would block: registered
  loop.post_one();
  ASSERT_TRUE(run_until(loop.io, [&] { return first; }));

  const pid_t child = ::fork();
  ASSERT_GE(child, 0);
  if (child == 0) {
    loop.io.notify_fork(boost::asio::execution_context::fork_child);
    bool in_child = false;
    loop.start(true, in_child);
    loop.io.restart();
    loop.io.poll();
    loop.post_one();
    ::_exit(run_until(loop.io, [&] { return in_child; }, 5s) ? 0 : 2);
  }
  EXPECT_EQ(reap_within(child), 0) << "the child's attempt did not complete";
  // The parent's registration is its own still.
  loop.io.notify_fork(boost::asio::execution_context::fork_parent);
  bool in_parent = false;
  loop.start(true, in_parent);
  loop.post_one();
  EXPECT_TRUE(run_until(loop.io, [&] { return in_parent; }));
}

}  // namespace
