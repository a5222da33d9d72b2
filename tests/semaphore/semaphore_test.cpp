// Semaphores across real processes: counts, killed holders, async waits that cancel.
#include <ipckit/semaphore.hpp>

#include "test_support.hpp"

#include <ipckit/detail/blocking_call.hpp>

#include <ipckit/event_loop.hpp>
#include <ipckit/process.hpp>

#include <boost/asio/bind_cancellation_slot.hpp>
#include <boost/asio/cancellation_signal.hpp>
#include <boost/asio/read_until.hpp>
#include <boost/asio/steady_timer.hpp>
#include <boost/asio/write.hpp>
#include <gmock/gmock.h>

#include <csignal>
#include <cstdint>
#include <fcntl.h>
#include <sys/eventfd.h>
#include <thread>
#include <sys/ipc.h>
#include <sys/stat.h>
#include <sys/syscall.h>
#include <unistd.h>

namespace {

using namespace std::chrono_literals;
using ipckit::error_code;
using ipckit::event_semaphore;
using ipckit::named_semaphore;
using ipckit::sysv_semaphore;
using ipckit::test::cli_path;
using ipckit::test::helper_path;
using ipckit::test::peer_process;
using ipckit::test::run_process;
using ipckit::test::run_until;
using ipckit::test::unique_ipc_name;
using testing::HasSubstr;

class semaphore_test : public ::testing::Test {
 protected:
  void TearDown() override {
    error_code ignored;
    for (const auto& name : names) named_semaphore::unlink(name, ignored);
    for (auto* set : sets)
      if (set->is_open()) set->remove(ignored);
  }
  std::string name(std::string_view tag) { return names.emplace_back(unique_ipc_name(tag)); }
  sysv_semaphore& private_set(unsigned value) {
    auto& set = owned.emplace_back(std::make_unique<sysv_semaphore>(loop));
    set->create(IPC_PRIVATE, value);
    sets.push_back(set.get());
    return *set;
  }

  // Starts an async wait bound to a cancellation signal, cancels it after a few loop
  // ticks, and checks that it ends with operation_aborted.
  template <class Semaphore>
  void expect_async_wait_cancels(Semaphore& semaphore) {
    boost::asio::cancellation_signal cancel;
    bool done = false;
    error_code result;
    semaphore.async_wait(boost::asio::bind_cancellation_slot(cancel.slot(), [&](error_code e) { result = e, done = true; }));
    boost::asio::steady_timer timer(loop.get_executor(), 20ms);
    timer.async_wait([&](error_code) { cancel.emit(boost::asio::cancellation_type::terminal); });
    ASSERT_TRUE(run_until(loop.context(), [&] { return done; }));
    EXPECT_EQ(result, boost::asio::error::operation_aborted);
  }

  ipckit::event_loop loop;
  std::vector<std::string> names;
  std::vector<std::unique_ptr<sysv_semaphore>> owned;
  std::vector<sysv_semaphore*> sets;
};

TEST_F(semaphore_test, named_counts_across_processes) {
  const auto sem = name("count");
  named_semaphore semaphore(loop);
  semaphore.create(sem, 0);
  for (int i = 0; i < 3; ++i) ASSERT_EQ(run_process({cli_path(), "sem", "post", sem}).exit_code, 0);
  EXPECT_EQ(semaphore.value(), 3);
  auto info = run_process({cli_path(), "sem", "info", sem});
  EXPECT_EQ(info.out, "3\n");
  for (int i = 0; i < 3; ++i) EXPECT_TRUE(semaphore.try_wait());
  EXPECT_FALSE(semaphore.try_wait());
  EXPECT_FALSE(semaphore.wait_for(20ms));
}

TEST_F(semaphore_test, named_is_created_0600_whatever_the_umask) {
  const auto sem = name("mode");
  const mode_t old = ::umask(0);
  named_semaphore semaphore(loop);
  semaphore.create(sem, 1);
  ::umask(old);
  struct stat status {};
  ASSERT_EQ(::stat(("/dev/shm/sem." + sem.substr(1)).c_str(), &status), 0);
  EXPECT_EQ(status.st_mode & 0777, 0600u);
}

TEST_F(semaphore_test, named_killed_holder_leaks_its_unit) {
  const auto sem = name("leak");
  named_semaphore semaphore(loop);
  semaphore.create(sem, 1);
  peer_process holder({helper_path(), "sem-hold", sem});
  ASSERT_EQ(holder.read_line(), "holding");
  EXPECT_EQ(semaphore.value(), 0);
  holder.kill(SIGKILL);
  EXPECT_EQ(holder.wait(), 128 + SIGKILL);
  // POSIX semaphores have no undo: the unit is gone for good.
  EXPECT_EQ(semaphore.value(), 0);
  EXPECT_FALSE(semaphore.wait_for(50ms));
}

TEST_F(semaphore_test, sysv_killed_holder_gives_its_unit_back) {
  auto& set = private_set(1);
  peer_process holder({helper_path(), "sysv-hold", std::to_string(set.id())});
  ASSERT_EQ(holder.read_line(), "holding");
  EXPECT_EQ(set.value(), 0);
  // A waiter on the loop gets the unit when the kernel undoes the dead holder's wait.
  bool done = false;
  error_code result;
  set.async_wait([&](error_code e) { result = e, done = true; });
  holder.kill(SIGKILL);
  EXPECT_EQ(holder.wait(), 128 + SIGKILL);
  ASSERT_TRUE(run_until(loop.context(), [&] { return done; }));
  EXPECT_FALSE(result);
  EXPECT_EQ(set.value(), 0);  // now ours
  set.post();
  EXPECT_EQ(set.value(), 1);
}

// Under event_loop::run, an idle loop waits in semop itself (docs/semaphore.md): the
// kernel's undo of the killed holder wakes the loop thread, and no worker starts.
TEST_F(semaphore_test, sysv_async_wait_on_an_idle_loop_waits_on_the_loop_thread) {
  auto& set = private_set(1);
  peer_process holder({helper_path(), "sysv-hold", std::to_string(set.id())});
  ASSERT_EQ(holder.read_line(), "holding");
  bool done = false;
  error_code result;
  set.async_wait([&](error_code e) { result = e, done = true; });
  const pid_t loop_tid = ::gettid();
  std::thread killer([&] {
    const bool waiting =
        ipckit::test::eventually([&] { return ipckit::test::blocked_in_syscall(loop_tid, SYS_semtimedop); });
    EXPECT_TRUE(waiting) << "the loop thread never waited in semtimedop";
    holder.kill(SIGKILL);
  });
  loop.run();
  killer.join();
  EXPECT_TRUE(done);
  EXPECT_FALSE(result) << result.message();
  EXPECT_EQ(boost::asio::use_service<ipckit::detail::blocking_service>(loop.context()).thread_count(), 0u);
  EXPECT_EQ(holder.wait(), 128 + SIGKILL);
  set.post();
  EXPECT_EQ(set.value(), 1);
}

TEST_F(semaphore_test, sysv_counts_and_keys) {
  // A key from a file of our own, so no other run shares it.
  std::string path = (std::filesystem::temp_directory_path() / "ipckit-sysv-XXXXXX").string();
  const int fd = ::mkstemp(path.data());
  ASSERT_GE(fd, 0);
  ::close(fd);
  const key_t key = sysv_semaphore::make_key(path, 1);
  auto& created = *owned.emplace_back(std::make_unique<sysv_semaphore>(loop));
  created.create(key, 2, {0600, true});
  sets.push_back(&created);
  std::filesystem::remove(path);
  sysv_semaphore opened(loop);
  opened.open(key);
  EXPECT_EQ(opened.id(), created.id());
  EXPECT_TRUE(opened.try_wait());
  EXPECT_TRUE(opened.wait_for(10ms));
  EXPECT_FALSE(opened.try_wait());
  EXPECT_FALSE(opened.wait_for(20ms));
  EXPECT_EQ(created.value(), 0);
  error_code ec;
  sysv_semaphore again(loop);
  again.create(key, 0, {0600, true}, ec);
  EXPECT_EQ(ec, boost::system::errc::file_exists);
}

TEST_F(semaphore_test, named_async_wait_completes_when_another_process_posts) {
  const auto sem = name("async");
  named_semaphore semaphore(loop);
  semaphore.create(sem, 0);
  bool done = false;
  error_code result;
  semaphore.async_wait([&](error_code e) { result = e, done = true; });
  int ticks = 0;
  boost::asio::steady_timer timer(loop.get_executor());
  std::function<void()> tick = [&] {
    timer.expires_after(2ms);
    timer.async_wait([&](error_code e) {
      if (!e && !done && ++ticks < 1000) tick();
    });
  };
  tick();
  ASSERT_TRUE(run_until(loop.context(), [&] { return ticks >= 3; }));
  peer_process poster({cli_path(), "sem", "post", sem});
  ASSERT_TRUE(run_until(loop.context(), [&] { return done; }));
  EXPECT_FALSE(result);
  EXPECT_GE(ticks, 3);
  EXPECT_EQ(semaphore.value(), 0);
  EXPECT_EQ(poster.wait(), 0);
}

TEST_F(semaphore_test, named_async_wait_cancels_and_takes_nothing) {
  named_semaphore semaphore(loop);
  semaphore.create(name("cancel"), 0);
  expect_async_wait_cancels(semaphore);
  semaphore.post();
  EXPECT_EQ(semaphore.value(), 1);  // the cancelled wait did not take it later
}

TEST_F(semaphore_test, sysv_async_wait_cancels_and_takes_nothing) {
  auto& set = private_set(0);
  expect_async_wait_cancels(set);
  set.post();
  EXPECT_EQ(set.value(), 1);
}

TEST_F(semaphore_test, event_async_wait_cancels_and_takes_nothing) {
  event_semaphore semaphore(loop, 0);
  expect_async_wait_cancels(semaphore);
  semaphore.post();
  EXPECT_TRUE(semaphore.try_wait());
}

// An event_semaphore between related processes: the child inherits the eventfd (as fd
// 3) and is a python3 peer using os.eventfd_read/eventfd_write. Units posted by the child
// count here, a wait on the loop completes when the child posts, and a unit the child
// took before it was killed is not given back (no undo, as for POSIX semaphores).
TEST_F(semaphore_test, event_counts_across_processes_and_a_killed_holder_leaks_its_unit) {
  event_semaphore semaphore(loop, 0);
  auto child = [&](const std::string& script) {
    auto cmd = std::make_unique<ipckit::command>(loop.get_executor(), "python3",
                                                 std::vector<std::string>{"-S", "-c", "import os, sys\n" + script});
    cmd->add_fd(semaphore.native_handle(), 3);
    return cmd;
  };
  // The child posts three units and exits.
  child("os.eventfd_write(3, 3)")->run();
  int taken = 0;
  while (semaphore.try_wait()) ++taken;
  EXPECT_EQ(taken, 3);

  // A wait on the loop completes when the child posts (after it is told to).
  auto poster = child("sys.stdin.readline()\nos.eventfd_write(3, 1)");
  auto go = poster->stdin_pipe();
  poster->start();
  bool done = false;
  error_code result;
  semaphore.async_wait([&](error_code e) { result = e, done = true; });
  EXPECT_FALSE(run_until(loop.context(), [&] { return done; }, 20ms)) << "completed before any post";
  boost::asio::write(go, boost::asio::buffer("go\n", 3));
  ASSERT_TRUE(run_until(loop.context(), [&] { return done; }));
  EXPECT_FALSE(result);
  EXPECT_TRUE(poster->wait().success());
  EXPECT_FALSE(semaphore.try_wait());

  // Two units; the child takes one and is killed holding it: one unit is left, not two.
  semaphore.post(2);
  auto holder = child("os.eventfd_read(3)\nprint('holding', flush=True)\nsys.stdin.readline()");
  auto holder_in = holder->stdin_pipe();
  auto holder_out = holder->stdout_pipe();
  holder->start();
  std::string line;
  boost::asio::read_until(holder_out, boost::asio::dynamic_buffer(line), '\n');
  EXPECT_EQ(line, "holding\n");
  holder->kill();
  error_code ec;
  EXPECT_EQ(holder->wait(ec).signal(), SIGKILL);
  EXPECT_TRUE(semaphore.try_wait());
  EXPECT_FALSE(semaphore.wait_for(50ms)) << "the killed holder's unit came back";
}

TEST_F(semaphore_test, event_semaphore_takes_one_unit_per_wait) {
  event_semaphore semaphore(loop, 2);
  semaphore.post(3);
  int taken = 0;
  while (semaphore.try_wait()) ++taken;
  EXPECT_EQ(taken, 5);
  EXPECT_FALSE(semaphore.wait_for(20ms));
  bool done = false;
  semaphore.async_wait([&](error_code e) {
    EXPECT_FALSE(e);
    done = true;
  });
  boost::asio::steady_timer timer(loop.get_executor(), 10ms);
  timer.async_wait([&](error_code) { semaphore.post(); });
  ASSERT_TRUE(run_until(loop.context(), [&] { return done; }));
}

bool fd_non_blocking(int fd) { return (::fcntl(fd, F_GETFL) & O_NONBLOCK) != 0; }

// The eventfd stays blocking until the first async_wait (a blocking wait is one read):
// tries use RWF_NOWAIT and never wait; after it, blocking waits still block correctly.
TEST_F(semaphore_test, event_semaphore_descriptor_stays_blocking_until_the_first_async_wait) {
  event_semaphore semaphore(loop, 0);
  EXPECT_FALSE(fd_non_blocking(semaphore.native_handle()));
  EXPECT_FALSE(semaphore.try_wait()) << "an empty semaphore must not block a try";
  EXPECT_FALSE(semaphore.wait_for(10ms));
  EXPECT_FALSE(fd_non_blocking(semaphore.native_handle())) << "tries and timed waits changed it";
  bool done = false;
  semaphore.async_wait([&](error_code e) {
    EXPECT_FALSE(e);
    done = true;
  });
  loop.poll();
  EXPECT_FALSE(done);
  semaphore.post();
  ASSERT_TRUE(run_until(loop.context(), [&] { return done; }));
  EXPECT_TRUE(fd_non_blocking(semaphore.native_handle()));
  semaphore.post(2);
  semaphore.wait();
  semaphore.wait();
  EXPECT_FALSE(semaphore.try_wait());
  event_semaphore poster(loop.get_executor());
  poster.assign(ipckit::unique_fd(::fcntl(semaphore.native_handle(), F_DUPFD_CLOEXEC, 0)));
  std::thread post_later([&] { poster.post(); });
  semaphore.wait();
  post_later.join();
  EXPECT_FALSE(semaphore.try_wait());
}

// An inherited descriptor that is non-blocking stays so; a blocking wait on it waits
// for readiness instead of failing with EAGAIN.
TEST_F(semaphore_test, event_semaphore_blocking_wait_on_a_non_blocking_descriptor) {
  event_semaphore semaphore(loop.get_executor());
  semaphore.assign(ipckit::unique_fd(::eventfd(0, EFD_SEMAPHORE | EFD_CLOEXEC | EFD_NONBLOCK)));
  event_semaphore poster(loop.get_executor());
  poster.assign(ipckit::unique_fd(::fcntl(semaphore.native_handle(), F_DUPFD_CLOEXEC, 0)));
  std::thread post_later([&] { poster.post(); });
  error_code ec;
  semaphore.wait(ec);
  post_later.join();
  EXPECT_FALSE(ec) << ec.message();
  EXPECT_TRUE(fd_non_blocking(semaphore.native_handle()));
  EXPECT_FALSE(semaphore.try_wait());
}

// A count past 2^64-2 is value_too_large, not a post that waits for room.
TEST_F(semaphore_test, event_semaphore_post_past_the_limit_is_value_too_large) {
  event_semaphore semaphore(loop, 0);
  semaphore.post(UINT64_MAX - 1);
  error_code ec;
  semaphore.post(1, ec);
  EXPECT_EQ(ec, ipckit::semaphore_errc::value_too_large);
  EXPECT_TRUE(semaphore.try_wait());
  semaphore.post(1, ec);
  EXPECT_FALSE(ec) << "one unit taken leaves room for one";
}

TEST_F(semaphore_test, event_semaphore_async_wait_when_closed_fails_with_closed) {
  event_semaphore semaphore(loop, 1);
  semaphore.close();
  bool done = false;
  semaphore.async_wait([&](error_code e) {
    EXPECT_EQ(e, ipckit::errc::closed);
    done = true;
  });
  EXPECT_FALSE(done);
  ASSERT_TRUE(run_until(loop.context(), [&] { return done; }));
}

std::size_t pool_threads(ipckit::event_loop& loop) {
  return boost::asio::use_service<ipckit::detail::blocking_service>(loop.context()).thread_count();
}

// A unit that is there already is taken at once, without the worker pool (and so
// without its two thread switches); the completion still comes through the loop.
TEST_F(semaphore_test, async_wait_with_a_unit_there_takes_it_without_the_worker_pool) {
  named_semaphore named(loop);
  named.create(name("fast"), 1);
  auto& set = private_set(1);
  int done = 0;
  named.async_wait([&](error_code e) {
    EXPECT_FALSE(e);
    ++done;
  });
  set.async_wait([&](error_code e) {
    EXPECT_FALSE(e);
    ++done;
  });
  EXPECT_EQ(done, 0) << "completed inside the initiating call";
  ASSERT_TRUE(run_until(loop.context(), [&] { return done == 2; }));
  EXPECT_EQ(named.value(), 0);
  EXPECT_EQ(set.value(), 0);
  EXPECT_EQ(pool_threads(loop), 0u);
  // With no unit, the wait goes to the loop's io_uring where it can, else to the pool,
  // and completes when one is posted (tests/semaphore/named_async_wait_test.cpp has both).
  bool waited = false;
  named.async_wait([&](error_code e) {
    EXPECT_FALSE(e);
    waited = true;
  });
  loop.poll();
  EXPECT_FALSE(waited);
  named.post();
  ASSERT_TRUE(run_until(loop.context(), [&] { return waited; }));
  const bool ring = boost::asio::use_service<ipckit::detail::semaphore_ring_service>(loop.context()).usable();
  EXPECT_EQ(pool_threads(loop), ring ? 0u : 1u);
}

TEST_F(semaphore_test, bad_names_and_values_are_clear_errors) {
  named_semaphore semaphore(loop);
  error_code ec;
  semaphore.create("no-slash", 0, {}, ec);
  EXPECT_EQ(ec, ipckit::semaphore_errc::invalid_name);
  semaphore.create("/" + std::string(252, 's'), 0, {}, ec);
  EXPECT_EQ(ec, ipckit::semaphore_errc::invalid_name);
  semaphore.create(name("big"), static_cast<unsigned>(SEM_VALUE_MAX) + 1u, {}, ec);
  EXPECT_EQ(ec, ipckit::semaphore_errc::value_too_large);
  try {
    semaphore.open(unique_ipc_name("absent"));
    FAIL() << "no error";
  } catch (const ipckit::system_error& error) {
    EXPECT_THAT(error.what(), HasSubstr(": sem_open: no such file or directory"));
  }
  sysv_semaphore set(loop);
  set.create(IPC_PRIVATE, 40000, {}, ec);
  EXPECT_EQ(ec, ipckit::semaphore_errc::value_too_large);
}

}  // namespace
