// file_lock within one process: two file_lock objects are two open file descriptions,
// so they conflict exactly as two processes would.
#include <ipckit/file_lock.hpp>

#include "test_support.hpp"

#include <ipckit/detail/blocking_call.hpp>

#include <ipckit/event_loop.hpp>

#include <boost/asio/bind_cancellation_slot.hpp>
#include <boost/asio/cancellation_signal.hpp>
#include <boost/asio/co_spawn.hpp>
#include <boost/asio/detached.hpp>
#include <boost/asio/steady_timer.hpp>
#include <boost/asio/use_awaitable.hpp>
#include <gmock/gmock.h>

#include <fcntl.h>
#include <mutex>
#include <shared_mutex>
#include <sys/stat.h>

namespace {

using namespace std::chrono_literals;
using ipckit::byte_range;
using ipckit::error_code;
using ipckit::file_lock;
using ipckit::lock_mode;
using ipckit::test::run_until;
using testing::HasSubstr;

class file_lock_test : public ipckit::test::temp_dir_test {
 protected:
  std::filesystem::path lock_path() const { return dir() / "the.lock"; }
  ipckit::event_loop loop;
};

TEST_F(file_lock_test, creates_the_file_0600) {
  const mode_t old = ::umask(0);
  file_lock lock(loop, lock_path());
  ::umask(old);
  struct stat status {};
  ASSERT_EQ(::stat(lock_path().c_str(), &status), 0);
  EXPECT_EQ(status.st_mode & 0777, 0600u);
}

TEST_F(file_lock_test, exclusive_excludes_another_open_file) {
  file_lock a(loop, lock_path()), b(loop, lock_path());
  ASSERT_TRUE(a.try_lock());
  EXPECT_TRUE(a.owns_lock());
  EXPECT_FALSE(b.try_lock());
  EXPECT_FALSE(b.try_lock_shared());
  a.unlock();
  EXPECT_FALSE(a.owns_lock());
  EXPECT_TRUE(b.try_lock());
}

TEST_F(file_lock_test, shared_locks_coexist_and_exclude_exclusive) {
  file_lock a(loop, lock_path()), b(loop, lock_path()), c(loop, lock_path());
  ASSERT_TRUE(a.try_lock(lock_mode::shared));
  ASSERT_TRUE(b.try_lock(lock_mode::shared));
  EXPECT_EQ(b.mode(), lock_mode::shared);
  EXPECT_FALSE(c.try_lock(lock_mode::exclusive));
  a.unlock();
  EXPECT_FALSE(c.try_lock(lock_mode::exclusive));
  b.unlock();
  EXPECT_TRUE(c.try_lock(lock_mode::exclusive));
}

TEST_F(file_lock_test, closing_releases_the_lock) {
  file_lock a(loop, lock_path()), b(loop, lock_path());
  ASSERT_TRUE(a.try_lock());
  a.close();
  EXPECT_FALSE(a.is_open());
  EXPECT_TRUE(b.try_lock());
}

TEST_F(file_lock_test, byte_ranges_that_do_not_overlap_coexist) {
  file_lock first(loop, lock_path(), byte_range{0, 10});
  file_lock second(loop, lock_path(), byte_range{10, 10});
  file_lock overlapping(loop, lock_path(), byte_range{5, 10});
  file_lock to_end(loop, lock_path(), byte_range{100, 0});
  ASSERT_TRUE(first.try_lock());
  EXPECT_TRUE(second.try_lock());
  EXPECT_FALSE(overlapping.try_lock());
  EXPECT_TRUE(to_end.try_lock());
  first.unlock();
  EXPECT_FALSE(overlapping.try_lock());  // still overlaps the second
  second.unlock();
  EXPECT_TRUE(overlapping.try_lock());
}

// Byte-range (OFD) locks are shared or exclusive too, and wait with a timeout.
TEST_F(file_lock_test, byte_ranges_shared_exclusive_and_timed) {
  file_lock reader_a(loop, lock_path(), byte_range{0, 20});
  file_lock reader_b(loop, lock_path(), byte_range{10, 20});
  file_lock writer(loop, lock_path(), byte_range{15, 1});
  ASSERT_TRUE(reader_a.try_lock(lock_mode::shared));
  EXPECT_TRUE(reader_b.try_lock(lock_mode::shared));  // overlapping shared ranges coexist
  EXPECT_FALSE(writer.try_lock(lock_mode::exclusive));
  const auto start = std::chrono::steady_clock::now();
  EXPECT_FALSE(writer.try_lock_for(30ms, lock_mode::exclusive));
  EXPECT_GE(std::chrono::steady_clock::now() - start, 30ms);
  reader_a.unlock();
  EXPECT_FALSE(writer.try_lock_for(10ms, lock_mode::exclusive));  // reader_b still covers 15
  reader_b.unlock();
  EXPECT_TRUE(writer.try_lock_for(1s, lock_mode::exclusive));
  EXPECT_FALSE(reader_a.try_lock(lock_mode::shared));
}

TEST_F(file_lock_test, ofd_lock_survives_closing_another_descriptor_of_the_file) {
  // The reason OFD locks are used: a classic fcntl lock would be dropped here.
  file_lock held(loop, lock_path(), byte_range{0, 1});
  ASSERT_TRUE(held.try_lock());
  ::close(::open(lock_path().c_str(), O_RDONLY | O_CLOEXEC));
  file_lock other(loop, lock_path(), byte_range{0, 1});
  EXPECT_FALSE(other.try_lock());
}

TEST_F(file_lock_test, locks_through_a_descriptor) {
  const int fd = ::open(lock_path().c_str(), O_RDWR | O_CREAT | O_CLOEXEC, 0600);
  ASSERT_GE(fd, 0);
  file_lock through_fd(loop.get_executor(), ipckit::duplicate(fd));
  file_lock by_path(loop, lock_path());
  ASSERT_TRUE(through_fd.try_lock());
  EXPECT_FALSE(by_path.try_lock());
  ::close(fd);
}

TEST_F(file_lock_test, std_guards_lock_and_unlock) {
  file_lock a(loop, lock_path()), b(loop, lock_path());
  {
    std::unique_lock guard(a);
    EXPECT_TRUE(a.owns_lock());
    EXPECT_FALSE(b.try_lock_shared());
  }
  EXPECT_FALSE(a.owns_lock());
  {
    std::shared_lock guard(a);
    EXPECT_EQ(a.mode(), lock_mode::shared);
    EXPECT_TRUE(b.try_lock_shared());
    b.unlock();
  }
  std::unique_lock timed(b, 10ms);
  EXPECT_TRUE(timed.owns_lock());
}

TEST_F(file_lock_test, try_lock_for_gives_up_after_the_timeout) {
  file_lock a(loop, lock_path()), b(loop, lock_path());
  ASSERT_TRUE(a.try_lock());
  const auto start = std::chrono::steady_clock::now();
  EXPECT_FALSE(b.try_lock_for(50ms));
  const auto waited = std::chrono::steady_clock::now() - start;
  EXPECT_GE(waited, 50ms);
  EXPECT_LT(waited, 2s);
  EXPECT_FALSE(b.owns_lock());
  a.unlock();
  EXPECT_TRUE(b.try_lock_for(50ms));
}

TEST_F(file_lock_test, async_lock_waits_on_the_pool_while_a_timer_keeps_ticking) {
  file_lock holder(loop, lock_path()), waiter(loop, lock_path());
  ASSERT_TRUE(holder.try_lock());
  bool done = false;
  error_code result;
  waiter.async_lock(lock_mode::exclusive, [&](error_code ec) { result = ec, done = true; });
  int ticks = 0;
  boost::asio::steady_timer timer(loop.get_executor());
  std::function<void()> tick = [&] {
    timer.expires_after(2ms);
    timer.async_wait([&](error_code ec) {
      if (ec) return;
      if (++ticks == 10) holder.unlock();
      if (!done) tick();
    });
  };
  tick();
  ASSERT_TRUE(run_until(loop.context(), [&] { return done; }));
  EXPECT_FALSE(result) << result.message();
  EXPECT_GE(ticks, 10);
  EXPECT_TRUE(waiter.owns_lock());
  EXPECT_FALSE(holder.try_lock());
}

// A free lock is taken at once (LOCK_NB), without the worker pool; a busy one waits there.
TEST_F(file_lock_test, async_lock_of_a_free_lock_takes_it_without_the_worker_pool) {
  file_lock lock(loop, lock_path());
  bool done = false;
  lock.async_lock(lock_mode::exclusive, [&](error_code e) {
    EXPECT_FALSE(e);
    done = true;
  });
  EXPECT_FALSE(done) << "completed inside the initiating call";
  ASSERT_TRUE(run_until(loop.context(), [&] { return done; }));
  EXPECT_TRUE(lock.owns_lock());
  auto& pool = boost::asio::use_service<ipckit::detail::blocking_service>(loop.context());
  EXPECT_EQ(pool.thread_count(), 0u);

  file_lock other(loop, lock_path());
  bool waited = false;
  other.async_lock(lock_mode::exclusive, [&](error_code e) {
    EXPECT_FALSE(e);
    waited = true;
  });
  loop.poll();
  EXPECT_FALSE(waited) << "took a lock that is held";
  lock.unlock();
  ASSERT_TRUE(run_until(loop.context(), [&] { return waited; }));
  EXPECT_TRUE(other.owns_lock());
  EXPECT_EQ(pool.thread_count(), 1u);
}

TEST_F(file_lock_test, cancelling_a_waiting_async_lock_leaves_it_unlocked) {
  file_lock holder(loop, lock_path()), waiter(loop, lock_path());
  ASSERT_TRUE(holder.try_lock());
  boost::asio::cancellation_signal cancel;
  bool done = false;
  error_code result;
  waiter.async_lock(lock_mode::shared,
                    boost::asio::bind_cancellation_slot(cancel.slot(), [&](error_code ec) { result = ec, done = true; }));
  boost::asio::steady_timer timer(loop.get_executor(), 20ms);
  timer.async_wait([&](error_code) { cancel.emit(boost::asio::cancellation_type::terminal); });
  ASSERT_TRUE(run_until(loop.context(), [&] { return done; }));
  EXPECT_EQ(result, boost::asio::error::operation_aborted);
  EXPECT_FALSE(waiter.owns_lock());
  holder.unlock();
  file_lock third(loop, lock_path());
  EXPECT_TRUE(third.try_lock());  // the cancelled waiter did not take it later
}

TEST_F(file_lock_test, async_lock_works_with_use_awaitable) {
  file_lock lock(loop, lock_path());
  bool locked = false;
  boost::asio::co_spawn(
      loop.get_executor(),
      [&]() -> boost::asio::awaitable<void> {
        co_await lock.async_lock(lock_mode::exclusive, boost::asio::use_awaitable);
        locked = lock.owns_lock();
      },
      boost::asio::detached);
  ASSERT_TRUE(run_until(loop.context(), [&] { return locked; }));
}

TEST_F(file_lock_test, bad_inputs_are_clear_errors) {
  error_code ec;
  file_lock lock(loop.get_executor());
  lock.open(dir() / "missing" / "x.lock", ec);
  EXPECT_EQ(ec, boost::system::errc::no_such_file_or_directory);
  lock.open(lock_path(), byte_range{-1, 5}, ec);
  EXPECT_EQ(ec, ipckit::file_lock_errc::invalid_range);
  EXPECT_FALSE(lock.try_lock(lock_mode::exclusive, ec));
  EXPECT_EQ(ec, ipckit::errc::closed);
  try {
    file_lock missing(loop, dir() / "missing" / "x.lock");
    FAIL() << "no error";
  } catch (const ipckit::system_error& error) {
    EXPECT_THAT(error.what(), HasSubstr("open " + (dir() / "missing" / "x.lock").string() +
                                        ": open: no such file or directory"));
  }
}

TEST_F(file_lock_test, directories_can_be_locked) {
  file_lock a(loop, dir()), b(loop, dir());
  ASSERT_TRUE(a.try_lock());
  EXPECT_FALSE(b.try_lock());
}

}  // namespace
