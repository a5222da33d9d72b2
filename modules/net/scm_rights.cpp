#include "scm_rights.hpp"

#include <ipckit/net.hpp>

#include <sys/socket.h>

#include <cstring>

namespace ipckit::net::detail {

std::vector<int> scm_rights_fds(std::span<const std::byte> control) {
  // CMSG_FIRSTHDR/CMSG_NXTHDR trust the first header's cmsg_len, and cmsghdr needs an
  // alignment that the bytes may not have: walk with offsets and memcpy instead.
  std::vector<int> fds;
  constexpr std::size_t header = CMSG_LEN(0);
  std::size_t at = 0;
  while (control.size() - at >= header) {
    cmsghdr h;
    std::memcpy(&h, control.data() + at, sizeof h);
    const std::size_t left = control.size() - at;
    if (h.cmsg_len < header || h.cmsg_len > left) break;
    if (h.cmsg_level == SOL_SOCKET && h.cmsg_type == SCM_RIGHTS) {
      const std::size_t count = (h.cmsg_len - header) / sizeof(int);
      for (std::size_t i = 0; i < count; ++i) {
        int fd = -1;
        std::memcpy(&fd, control.data() + at + header + i * sizeof(int), sizeof fd);
        fds.push_back(fd);
      }
    }
    const std::size_t step = CMSG_ALIGN(h.cmsg_len);
    if (step >= left) break;
    at += step;
  }
  return fds;
}

error_code take_received_fds(std::span<const std::byte> control, int msg_flags,
                             std::size_t max_fds, std::vector<unique_fd>& fds) {
  std::vector<unique_fd> received;
  for (int fd : scm_rights_fds(control)) received.emplace_back(fd);
  if ((msg_flags & MSG_CTRUNC) != 0 || received.size() > max_fds)
    return errc::control_truncated;  // `received` closes what did arrive
  for (auto& fd : received) fds.push_back(std::move(fd));
  return {};
}

}  // namespace ipckit::net::detail
