// Reading the descriptors out of a received control buffer (SCM_RIGHTS), apart from
// recvmsg so that it can be tested with made-up buffers and fuzzed. Internal.
#pragma once

#include <ipckit/error.hpp>
#include <ipckit/unique_fd.hpp>

#include <cstddef>
#include <span>
#include <vector>

namespace ipckit::net::detail {

/// The descriptors of every SCM_RIGHTS message in `control` (the msg_control bytes
/// recvmsg filled, msg_controllen long), in order. Other messages are skipped. Whatever
/// the bytes say, nothing outside `control` is read: a header whose cmsg_len is shorter
/// than a header or runs past the end ends the walk, and a partial int is ignored.
std::vector<int> scm_rights_fds(std::span<const std::byte> control);

/// Takes ownership of every descriptor in `control` before judging the message: when
/// recvmsg set MSG_CTRUNC in `msg_flags` or more than `max_fds` arrived, all of them are
/// closed and the result is errc::control_truncated; otherwise they are appended to `fds`.
error_code take_received_fds(std::span<const std::byte> control, int msg_flags,
                             std::size_t max_fds, std::vector<unique_fd>& fds);

}  // namespace ipckit::net::detail
