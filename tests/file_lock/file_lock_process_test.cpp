// file_lock and pidfile across real processes: the helper child, util-linux flock(1).
#include <ipckit/file_lock.hpp>

#include "test_support.hpp"

#include <ipckit/event_loop.hpp>

#include <gmock/gmock.h>

#include <csignal>
#include <fstream>
#include <unistd.h>

namespace {

using namespace std::chrono_literals;
using ipckit::byte_range;
using ipckit::error_code;
using ipckit::file_lock;
using ipckit::lock_mode;
using ipckit::test::helper_path;
using ipckit::test::peer_process;
using ipckit::test::run_process;
using ipckit::test::run_until;
using testing::HasSubstr;
using clock_type = std::chrono::steady_clock;

class file_lock_process : public ipckit::test::temp_dir_test {
 protected:
  std::string lock_path() const { return (dir() / "the.lock").string(); }
  ipckit::event_loop loop;

  // The waiter must have the lock within 100 ms of the holder's SIGKILL.
  void expect_taken_when_holder_is_killed(std::vector<std::string> holder_args, file_lock& waiter) {
    peer_process holder(holder_args);
    ASSERT_EQ(holder.read_line(), "locked");
    ASSERT_FALSE(waiter.try_lock());
    bool done = false;
    error_code result;
    clock_type::time_point taken;
    waiter.async_lock(lock_mode::exclusive, [&](error_code ec) {
      taken = clock_type::now();
      result = ec, done = true;
    });
    loop.poll();  // the wait is on a worker now
    const auto killed = clock_type::now();
    holder.kill(SIGKILL);
    ASSERT_TRUE(run_until(loop.context(), [&] { return done; }, 5s));
    EXPECT_FALSE(result) << result.message();
    EXPECT_TRUE(waiter.owns_lock());
    EXPECT_LT(taken - killed, 100ms);
    EXPECT_EQ(holder.wait(), 128 + SIGKILL);
  }
};

TEST_F(file_lock_process, killed_flock_holder_releases_within_100ms) {
  file_lock waiter(loop, lock_path());
  expect_taken_when_holder_is_killed({helper_path(), "lock-hold", lock_path(), "exclusive"}, waiter);
}

TEST_F(file_lock_process, killed_ofd_range_holder_releases_within_100ms) {
  file_lock waiter(loop, lock_path(), byte_range{0, 100});
  expect_taken_when_holder_is_killed({helper_path(), "lock-hold", lock_path(), "exclusive", "50", "10"}, waiter);
}

TEST_F(file_lock_process, shared_holder_admits_shared_and_excludes_exclusive) {
  peer_process holder({helper_path(), "lock-hold", lock_path(), "shared"});
  ASSERT_EQ(holder.read_line(), "locked");
  file_lock lock(loop, lock_path());
  EXPECT_FALSE(lock.try_lock(lock_mode::exclusive));
  EXPECT_TRUE(lock.try_lock(lock_mode::shared));
}

TEST_F(file_lock_process, flock1_holds_and_ipckit_waits) {
  peer_process holder({"flock", lock_path(), helper_path(), "wait-stdin"});
  ASSERT_EQ(holder.read_line(), "ready");  // flock(1) runs the command with the lock held
  file_lock lock(loop, lock_path());
  EXPECT_FALSE(lock.try_lock());
  EXPECT_FALSE(lock.try_lock_for(30ms, lock_mode::shared));
  bool done = false;
  error_code result;
  lock.async_lock(lock_mode::exclusive, [&](error_code ec) { result = ec, done = true; });
  loop.poll();
  EXPECT_FALSE(done);
  holder.close_stdin();  // the command exits, flock(1) exits, the lock goes
  ASSERT_TRUE(run_until(loop.context(), [&] { return done; }));
  EXPECT_FALSE(result);
  EXPECT_EQ(holder.wait(), 0);
}

TEST_F(file_lock_process, ipckit_holds_and_flock1_waits) {
  file_lock lock(loop, lock_path());
  lock.lock();
  EXPECT_EQ(run_process({"flock", "-n", lock_path(), "true"}).exit_code, 1);
  EXPECT_EQ(run_process({"flock", "-s", "-n", lock_path(), "true"}).exit_code, 1);
  EXPECT_EQ(run_process({"flock", "-w", "0.05", lock_path(), "true"}).exit_code, 1);
  // flock(1) waiting without a timeout gets it as soon as we let go.
  peer_process waiter({"flock", lock_path(), helper_path(), "wait-stdin"});
  EXPECT_EQ(waiter.read_line(100ms), std::nullopt);
  lock.unlock();
  EXPECT_EQ(waiter.read_line(), "ready");
  waiter.close_stdin();
  EXPECT_EQ(waiter.wait(), 0);
}

TEST_F(file_lock_process, ipckit_shared_admits_flock1_shared_only) {
  file_lock lock(loop, lock_path());
  lock.lock_shared();
  EXPECT_EQ(run_process({"flock", "-s", "-n", lock_path(), "true"}).exit_code, 0);
  EXPECT_EQ(run_process({"flock", "-x", "-n", lock_path(), "true"}).exit_code, 1);
}

TEST_F(file_lock_process, pidfile_second_instance_gets_already_running_as_pid) {
  const auto path = (dir() / "daemon.pid").string();
  peer_process first({helper_path(), "pidfile", path});
  const auto line = first.read_line();
  ASSERT_EQ(line, "ok " + std::to_string(first.pid()));
  // Another process, and this one, are refused with the holder's pid.
  peer_process second({helper_path(), "pidfile", path});
  EXPECT_EQ(second.read_line(), "pidfile " + path + ": already running as pid " + std::to_string(first.pid()));
  EXPECT_EQ(second.wait(), 3);
  try {
    ipckit::pidfile mine(path);
    FAIL() << "took a held pidfile";
  } catch (const ipckit::already_running_error& error) {
    EXPECT_EQ(error.pid(), first.pid());
    EXPECT_EQ(error.code(), ipckit::file_lock_errc::already_running);
  }
  error_code ec;
  ipckit::pidfile quiet(path, ec);
  EXPECT_EQ(ec, ipckit::file_lock_errc::already_running);
  EXPECT_FALSE(quiet.owns());
  EXPECT_EQ(ipckit::pidfile::holder(path), first.pid());
}

TEST_F(file_lock_process, pidfile_of_a_killed_holder_is_taken_over) {
  const auto path = (dir() / "daemon.pid").string();
  {
    peer_process crashed({helper_path(), "pidfile", path});
    ASSERT_EQ(crashed.read_line(), "ok " + std::to_string(crashed.pid()));
    crashed.kill(SIGKILL);
    EXPECT_EQ(crashed.wait(), 128 + SIGKILL);
  }
  ASSERT_TRUE(std::filesystem::exists(path));  // left behind by the crash
  EXPECT_EQ(ipckit::pidfile::holder(path), std::nullopt);
  {
    ipckit::pidfile mine(path);
    EXPECT_TRUE(mine.owns());
    std::ifstream in(path);
    std::string text;
    std::getline(in, text);
    EXPECT_EQ(text, std::to_string(::getpid()));
  }
  EXPECT_FALSE(std::filesystem::exists(path));  // released: removed
}

TEST_F(file_lock_process, pidfile_with_garbage_and_no_holder_is_taken_over) {
  const auto path = (dir() / "daemon.pid").string();
  std::ofstream(path) << "not a pid at all, and long enough to be truncated\n";
  ipckit::pidfile mine(path);
  std::ifstream in(path);
  std::string text;
  std::getline(in, text);
  EXPECT_EQ(text, std::to_string(::getpid()));
}

}  // namespace
