#include <ipckit/error.hpp>  // first, alone: the header stands by itself

#include <boost/asio/error.hpp>
#include <gtest/gtest.h>

#include <cerrno>

namespace {

using ipckit::error_code;

error_code sys(int value) { return {value, boost::system::system_category()}; }

TEST(error, formats_like_go_op_error) {
  struct row {
    ipckit::error_context where;
    error_code ec;
    const char* want;
  } const table[] = {
      // op net address: syscall: text
      {{"dial", "tcp", "", "127.0.0.1:1", "connect"}, sys(ECONNREFUSED),
       "dial tcp 127.0.0.1:1: connect: connection refused"},
      {{"listen", "unix", "", "/run/x.sock", "bind"}, sys(EADDRINUSE),
       "listen unix /run/x.sock: bind: address already in use"},
      // source->address
      {{"read", "tcp", "127.0.0.1:5000", "127.0.0.1:80", ""}, boost::asio::error::eof,
       "read tcp 127.0.0.1:5000->127.0.0.1:80: EOF"},
      // empty parts are left out
      {{"open", "", "", "/tmp/f", ""}, sys(ENOENT), "open /tmp/f: no such file or directory"},
      {{"lock", "", "", "", "flock"}, sys(EINTR), "lock: flock: interrupted system call"},
      {{}, ipckit::errc::timeout, "i/o timeout"},
  };
  for (const auto& r : table) EXPECT_EQ(ipckit::format_error(r.where, r.ec), r.want);
}

TEST(error, text_keeps_acronyms_and_lowers_words) {
  EXPECT_EQ(ipckit::error_text(sys(EPIPE)), "broken pipe");
  EXPECT_EQ(ipckit::error_text(sys(EIO)), "input/output error");
  EXPECT_EQ(ipckit::error_text(boost::asio::error::eof), "EOF");
  EXPECT_EQ(ipckit::error_text(boost::asio::error::operation_aborted), "operation was canceled");
}

TEST(error, thrown_error_is_a_system_error_with_go_text) {
  try {
    ipckit::throw_error(sys(ECONNREFUSED), {"dial", "tcp", "", "127.0.0.1:1", "connect"});
    FAIL() << "throw_error returned";
  } catch (const ipckit::system_error& e) {
    EXPECT_EQ(e.code(), boost::system::errc::connection_refused);
    EXPECT_STREQ(e.what(), "dial tcp 127.0.0.1:1: connect: connection refused");
    auto* op = dynamic_cast<const ipckit::op_error*>(&e);
    ASSERT_NE(op, nullptr);
    EXPECT_EQ(op->where().syscall, "connect");
  }
}

TEST(error, core_errc_is_registered_with_boost_system) {
  error_code ec = ipckit::errc::timeout;
  EXPECT_EQ(ec, ipckit::errc::timeout);
  EXPECT_NE(ec, ipckit::errc::closed);
  EXPECT_STREQ(ec.category().name(), "ipckit");
  EXPECT_EQ(ec.message(), "i/o timeout");
}

TEST(error, last_error_reads_errno) {
  errno = EAGAIN;
  EXPECT_EQ(ipckit::last_error(), boost::system::errc::resource_unavailable_try_again);
}

}  // namespace
