// Semaphores a daemon creates for itself: 0600, exclusive when asked, and one planted
// under its name by another user refused. The planting user is the helper child dropped
// to nobody (root only: skipped otherwise).
#include <ipckit/semaphore.hpp>

#include "test_support.hpp"

#include <ipckit/event_loop.hpp>

#include <gmock/gmock.h>

#include <sys/ipc.h>
#include <sys/sem.h>
#include <sys/stat.h>
#include <unistd.h>

namespace {

using ipckit::error_code;
using ipckit::named_semaphore;
using ipckit::semaphore_errc;
using ipckit::semaphore_options;
using ipckit::sysv_semaphore;
using ipckit::test::helper_path;
using ipckit::test::run_process;
using ipckit::test::unique_ipc_name;
using testing::HasSubstr;

constexpr uid_t nobody = 65534;
#define SKIP_UNLESS_ROOT() \
  if (::geteuid() != 0) GTEST_SKIP() << "needs root to plant a semaphore as another uid (nobody)"

std::vector<std::string> as_nobody(std::vector<std::string> mode) {
  std::vector<std::string> argv{helper_path(), "as-user", "65534", "65534"};
  argv.insert(argv.end(), mode.begin(), mode.end());
  return argv;
}

semaphore_options owner_only() {
  semaphore_options options;
  options.require_owner = true;
  return options;
}

class semaphore_owner_test : public ::testing::Test {
 protected:
  void SetUp() override {
    // A key from a file of our own, so no other run shares it.
    key_file_ = (std::filesystem::temp_directory_path() / "ipckit-sysv-owner-XXXXXX").string();
    const int fd = ::mkstemp(key_file_.data());
    ASSERT_GE(fd, 0);
    ::close(fd);
    key_ = sysv_semaphore::make_key(key_file_, 'o');
  }
  void TearDown() override {
    error_code ignored;
    for (const auto& n : names_) named_semaphore::unlink(n, ignored);
    const int id = ::semget(key_, 1, 0);
    if (id >= 0) ::semctl(id, 0, IPC_RMID);
    std::filesystem::remove(key_file_);
  }
  std::string name(std::string_view tag) { return names_.emplace_back(unique_ipc_name(tag)); }
  key_t key() const { return key_; }

  ipckit::event_loop loop;

 private:
  std::vector<std::string> names_;
  std::string key_file_;
  key_t key_ = -1;
};

// ---- named ---------------------------------------------------------------------------------

TEST_F(semaphore_owner_test, named_exclusive_create_refuses_an_existing_one) {
  const auto sem = name("excl");
  named_semaphore first(loop);
  first.create(sem, 1);
  semaphore_options exclusive;
  exclusive.exclusive = true;
  named_semaphore second(loop);
  error_code ec;
  second.create(sem, 1, exclusive, ec);
  EXPECT_EQ(ec, boost::system::errc::file_exists);
  EXPECT_FALSE(second.is_open());
}

TEST_F(semaphore_owner_test, named_of_ours_passes_the_owner_check) {
  const auto sem = name("ours");
  named_semaphore created(loop);
  created.create(sem, 2);
  named_semaphore opened(loop);
  opened.open(sem, owner_only());
  EXPECT_EQ(opened.value(), 2);
  named_semaphore again(loop);
  again.create(sem, 0);  // create() opens an existing one of ours, value unchanged
  EXPECT_EQ(again.value(), 2);
}

TEST_F(semaphore_owner_test, named_planted_by_another_user_is_refused) {
  SKIP_UNLESS_ROOT();
  const auto sem = name("hostile");
  auto planted = run_process(as_nobody({"sem-create", sem, "666"}));
  ASSERT_EQ(planted.exit_code, 0) << planted.err;
  ASSERT_EQ(planted.out, "created\n");
  struct stat st {};
  ASSERT_EQ(::stat(("/dev/shm/sem." + sem.substr(1)).c_str(), &st), 0);
  ASSERT_EQ(st.st_uid, nobody);

  named_semaphore semaphore(loop);
  error_code ec;
  semaphore.create(sem, 1, {}, ec);
  EXPECT_EQ(ec, semaphore_errc::not_owner) << "create() never adopts another user's semaphore";
  EXPECT_FALSE(semaphore.is_open());
  semaphore.open(sem, owner_only(), ec);
  EXPECT_EQ(ec, semaphore_errc::not_owner);
  EXPECT_FALSE(semaphore.is_open());
  try {
    semaphore.open(sem, owner_only());
    FAIL() << "no error";
  } catch (const ipckit::system_error& e) {
    EXPECT_EQ(std::string(e.what()), "open " + sem + ": semaphore exists and belongs to another user");
  }
  semaphore.open(sem, ec);  // opening another service's semaphore on purpose is allowed
  EXPECT_FALSE(ec);
}

// ---- System V ------------------------------------------------------------------------------

TEST_F(semaphore_owner_test, sysv_is_created_0600_and_exclusive_when_asked) {
  sysv_semaphore created(loop);
  created.create(key(), 1);
  semid_ds status{};
  union {
    int val;
    semid_ds* buf;
  } argument{};
  argument.buf = &status;
  ASSERT_EQ(::semctl(created.id(), 0, IPC_STAT, argument), 0);
  EXPECT_EQ(status.sem_perm.mode & 0777, 0600u);
  semaphore_options exclusive;
  exclusive.exclusive = true;
  sysv_semaphore second(loop);
  error_code ec;
  second.create(key(), 1, exclusive, ec);
  EXPECT_EQ(ec, boost::system::errc::file_exists);
  sysv_semaphore opened(loop);
  opened.open(key(), owner_only());
  EXPECT_EQ(opened.id(), created.id());
}

TEST_F(semaphore_owner_test, sysv_planted_by_another_user_is_refused) {
  SKIP_UNLESS_ROOT();
  auto planted = run_process(as_nobody({"sysv-create", std::to_string(key()), "666"}));
  ASSERT_EQ(planted.exit_code, 0) << planted.err;
  sysv_semaphore set(loop);
  error_code ec;
  set.create(key(), 1, {}, ec);
  EXPECT_EQ(ec, semaphore_errc::not_owner);
  EXPECT_FALSE(set.is_open());
  set.open(key(), owner_only(), ec);
  EXPECT_EQ(ec, semaphore_errc::not_owner);
  set.open(key(), ec);  // on purpose, without the check
  EXPECT_FALSE(ec);
}

TEST_F(semaphore_owner_test, sysv_handed_to_us_by_its_creator_is_refused) {
  SKIP_UNLESS_ROOT();
  // nobody creates the set and makes us its owner with IPC_SET; as creator it still
  // controls the set, so it is still not ours.
  auto planted = run_process(as_nobody({"sysv-create", std::to_string(key()), "600", std::to_string(::geteuid())}));
  ASSERT_EQ(planted.exit_code, 0) << planted.err;
  sysv_semaphore set(loop);
  error_code ec;
  set.open(key(), owner_only(), ec);
  EXPECT_EQ(ec, semaphore_errc::not_owner);
  set.create(key(), 1, {}, ec);
  EXPECT_EQ(ec, semaphore_errc::not_owner);
}

}  // namespace
