// Reading descriptors out of a received control buffer (modules/net/scm_rights.cpp):
// buffers built as the kernel fills them, with real descriptors, and broken ones.
#include "../../modules/net/scm_rights.hpp"

#include <ipckit/net.hpp>

#include <gtest/gtest.h>

#include <fcntl.h>
#include <sys/socket.h>
#include <unistd.h>

#include <cstring>
#include <vector>

namespace {

namespace net = ipckit::net;

bool is_open(int fd) { return ::fcntl(fd, F_GETFD) != -1; }

int fresh_fd() {
  const int fd = ::fcntl(STDERR_FILENO, F_DUPFD_CLOEXEC, 3);
  EXPECT_GE(fd, 0);
  return fd;
}

// Appends one control message, padded as CMSG_SPACE pads it.
void add_message(std::vector<std::byte>& control, int level, int type,
                 const std::vector<int>& ints, std::size_t claimed_length = 0) {
  cmsghdr h{};
  h.cmsg_level = level;
  h.cmsg_type = type;
  h.cmsg_len = claimed_length != 0 ? claimed_length : CMSG_LEN(ints.size() * sizeof(int));
  const std::size_t start = control.size();
  control.resize(start + CMSG_SPACE(ints.size() * sizeof(int)));
  std::memcpy(control.data() + start, &h, sizeof h);
  if (!ints.empty())
    std::memcpy(control.data() + start + CMSG_LEN(0), ints.data(), ints.size() * sizeof(int));
}

TEST(scm_rights, descriptors_are_handed_over_in_order_past_other_messages) {
  const std::vector<int> sent{fresh_fd(), fresh_fd(), fresh_fd()};
  std::vector<std::byte> control;
  add_message(control, SOL_SOCKET, SCM_CREDENTIALS, {1, 2, 3});
  add_message(control, SOL_SOCKET, SCM_RIGHTS, {sent[0], sent[1]});
  add_message(control, SOL_SOCKET, SCM_RIGHTS, {sent[2]});
  std::vector<ipckit::unique_fd> fds;
  EXPECT_FALSE(net::detail::take_received_fds(control, 0, 16, fds));
  ASSERT_EQ(fds.size(), 3u);
  for (std::size_t i = 0; i < 3; ++i) {
    EXPECT_EQ(fds[i].get(), sent[i]);
    EXPECT_TRUE(is_open(sent[i]));
  }
}

TEST(scm_rights, a_truncated_control_message_closes_every_descriptor_that_arrived) {
  const std::vector<int> sent{fresh_fd(), fresh_fd()};
  std::vector<std::byte> control;
  add_message(control, SOL_SOCKET, SCM_RIGHTS, sent);
  std::vector<ipckit::unique_fd> fds;
  EXPECT_EQ(net::detail::take_received_fds(control, MSG_CTRUNC, 16, fds),
            net::errc::control_truncated);
  EXPECT_TRUE(fds.empty());
  for (int fd : sent) EXPECT_FALSE(is_open(fd)) << fd;
}

TEST(scm_rights, more_descriptors_than_asked_for_are_all_closed) {
  const std::vector<int> sent{fresh_fd(), fresh_fd(), fresh_fd()};
  std::vector<std::byte> control;
  add_message(control, SOL_SOCKET, SCM_RIGHTS, sent);
  std::vector<ipckit::unique_fd> fds;
  EXPECT_EQ(net::detail::take_received_fds(control, 0, 2, fds), net::errc::control_truncated);
  EXPECT_TRUE(fds.empty());
  for (int fd : sent) EXPECT_FALSE(is_open(fd)) << fd;
}

TEST(scm_rights, a_header_claiming_more_than_the_buffer_ends_the_walk) {
  // CMSG_FIRSTHDR trusts the first cmsg_len: these read past the buffer before.
  for (const std::size_t claimed : {std::size_t{1} << 40, std::size_t{100}, std::size_t{8}}) {
    std::vector<std::byte> control;
    add_message(control, SOL_SOCKET, SCM_RIGHTS, {7}, claimed);
    EXPECT_TRUE(net::detail::scm_rights_fds(control).empty()) << claimed;
  }
  std::vector<std::byte> control;
  add_message(control, SOL_SOCKET, SCM_RIGHTS, {7, 8});
  add_message(control, SOL_SOCKET, SCM_RIGHTS, {9}, 1000);
  EXPECT_EQ(net::detail::scm_rights_fds(control), (std::vector<int>{7, 8}));
  control.resize(CMSG_LEN(0) + 6);  // cut inside the second int: only whole ints count
  EXPECT_TRUE(net::detail::scm_rights_fds(control).empty());
}

TEST(scm_rights, an_empty_or_short_buffer_has_no_descriptors) {
  EXPECT_TRUE(net::detail::scm_rights_fds({}).empty());
  std::vector<std::byte> control(CMSG_LEN(0) - 1, std::byte{0xff});
  EXPECT_TRUE(net::detail::scm_rights_fds(control).empty());
}

}  // namespace
