#include <ipckit/unique_fd.hpp>

#include <gtest/gtest.h>

#include <fcntl.h>
#include <unistd.h>

namespace {

bool is_open(int fd) { return ::fcntl(fd, F_GETFD) >= 0; }

int make_fd() {
  int fds[2];
  EXPECT_EQ(::pipe2(fds, O_CLOEXEC), 0);
  ::close(fds[1]);
  return fds[0];
}

TEST(unique_fd, closes_on_destruction) {
  int raw = make_fd();
  { ipckit::unique_fd fd(raw); EXPECT_TRUE(fd); }
  EXPECT_FALSE(is_open(raw));
}

TEST(unique_fd, move_transfers_ownership_once) {
  int raw = make_fd();
  ipckit::unique_fd a(raw);
  ipckit::unique_fd b(std::move(a));
  EXPECT_FALSE(a.is_open());
  EXPECT_EQ(b.get(), raw);
  ipckit::unique_fd c;
  c = std::move(b);
  EXPECT_EQ(c.get(), raw);
  c.reset();
  EXPECT_FALSE(is_open(raw));
}

TEST(unique_fd, release_does_not_close) {
  int raw = make_fd();
  { ipckit::unique_fd fd(raw); EXPECT_EQ(fd.release(), raw); }
  EXPECT_TRUE(is_open(raw));
  ::close(raw);
}

TEST(unique_fd, close_reports_a_bad_descriptor) {
  int raw = make_fd();
  ::close(raw);  // someone else closed it: close() must say so, not hide it
  ipckit::unique_fd fd(raw);
  ipckit::error_code ec;
  fd.close(ec);
  EXPECT_EQ(ec, boost::system::errc::bad_file_descriptor);
  EXPECT_FALSE(fd.is_open());
}

TEST(unique_fd, duplicate_is_close_on_exec) {
  ipckit::unique_fd original(make_fd());
  auto copy = ipckit::duplicate(original.get());
  EXPECT_NE(copy.get(), original.get());
  EXPECT_TRUE(::fcntl(copy.get(), F_GETFD) & FD_CLOEXEC);
  ipckit::error_code ec;
  ipckit::duplicate(-1, ec);
  EXPECT_EQ(ec, boost::system::errc::bad_file_descriptor);
  EXPECT_THROW(ipckit::duplicate(-1), ipckit::system_error);
}

}  // namespace
