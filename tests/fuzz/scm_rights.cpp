// Fuzz target: reading SCM_RIGHTS descriptors out of a received control buffer.
// First byte even: the rest is a control buffer as recvmsg could leave it (any bytes);
// the parser must stay inside it and return only ints that lie inside SCM_RIGHTS
// messages. First byte odd: the rest describes messages that are built with real
// descriptors (as the kernel would: any types, the last one possibly cut short with
// MSG_CTRUNC); every descriptor must end up either handed over or closed.
#include "fuzz_check.hpp"

#include "../../modules/net/scm_rights.hpp"

#include <ipckit/net.hpp>

#include <fcntl.h>
#include <sys/socket.h>
#include <unistd.h>

#include <algorithm>
#include <cstring>
#include <vector>

namespace net = ipckit::net;

namespace {

bool is_open(int fd) { return ::fcntl(fd, F_GETFD) != -1; }

void any_bytes(std::string_view bytes) {
  // Copied so that an access past the end is a heap overflow that ASan sees.
  std::vector<std::byte> control(bytes.size());
  if (!bytes.empty()) std::memcpy(control.data(), bytes.data(), bytes.size());
  const std::vector<int> fds = net::detail::scm_rights_fds(control);
  FUZZ_CHECK(fds.size() * sizeof(int) <= control.size());
  // Each fd is an int stored in the buffer after a header.
  for (int fd : fds) {
    bool found = false;
    for (std::size_t at = CMSG_LEN(0); !found && at + sizeof fd <= control.size(); at += sizeof fd)
      found = std::memcmp(control.data() + at, &fd, sizeof fd) == 0;
    FUZZ_CHECK(found);
  }
}

void real_descriptors(ipckit::fuzz::input& in) {
  // Up to 4 messages of up to 7 ints; an SCM_RIGHTS message carries fresh descriptors.
  struct message {
    std::size_t start;
    std::vector<int> fds;  // empty for other types
  };
  std::vector<message> messages;
  std::vector<std::byte> control;
  const int count_of_messages = in.byte() % 5;
  for (int m = 0; m < count_of_messages; ++m) {
    const std::uint8_t kind = in.byte();
    const std::size_t count = kind % 8;
    cmsghdr h{};
    h.cmsg_level = (kind & 0x80) != 0 ? SOL_IP : SOL_SOCKET;
    h.cmsg_type = (kind & 0x40) != 0 ? SCM_CREDENTIALS : SCM_RIGHTS;
    h.cmsg_len = CMSG_LEN(count * sizeof(int));
    message msg{control.size(), {}};
    control.resize(msg.start + CMSG_SPACE(count * sizeof(int)));
    std::memcpy(control.data() + msg.start, &h, sizeof h);
    const bool rights = h.cmsg_level == SOL_SOCKET && h.cmsg_type == SCM_RIGHTS;
    for (std::size_t i = 0; i < count; ++i) {
      int value = static_cast<int>(0x10000 + i);  // not a descriptor
      if (rights) {
        value = ::fcntl(STDERR_FILENO, F_DUPFD_CLOEXEC, 3);
        FUZZ_CHECK(value >= 0);
        msg.fds.push_back(value);
      }
      std::memcpy(control.data() + msg.start + CMSG_LEN(0) + i * sizeof(int), &value,
                  sizeof value);
    }
    messages.push_back(std::move(msg));
  }
  int flags = 0;
  if ((in.byte() & 1) != 0 && !messages.empty()) {
    // Out of room, as the kernel handles it (scm_detach_fds, put_cmsg): the message at
    // the cut keeps the whole ints that fit and its cmsg_len says so; a message whose
    // header does not fit is left out; the descriptors not delivered are closed.
    flags = MSG_CTRUNC;
    const std::size_t cut = in.byte() % (control.size() + 1);
    std::size_t end = cut;
    for (message& msg : messages) {
      if (msg.start + CMSG_LEN(0) > cut) {
        if (msg.start < end) end = msg.start;
        for (int fd : msg.fds) ::close(fd);
        msg.fds.clear();
        continue;
      }
      cmsghdr h;
      std::memcpy(&h, control.data() + msg.start, sizeof h);
      const std::size_t kept = std::min<std::size_t>((h.cmsg_len - CMSG_LEN(0)) / sizeof(int),
                                                      (cut - msg.start - CMSG_LEN(0)) / sizeof(int));
      if (kept * sizeof(int) + CMSG_LEN(0) < h.cmsg_len) {
        h.cmsg_len = CMSG_LEN(kept * sizeof(int));
        std::memcpy(control.data() + msg.start, &h, sizeof h);
        end = std::min(end, msg.start + h.cmsg_len);
      }
      while (msg.fds.size() > kept) {
        ::close(msg.fds.back());
        msg.fds.pop_back();
      }
    }
    control.resize(end);
  }
  std::vector<int> sent;
  for (const message& msg : messages) sent.insert(sent.end(), msg.fds.begin(), msg.fds.end());
  FUZZ_CHECK(net::detail::scm_rights_fds(control) == sent);

  const std::size_t max_fds = in.byte() % 32;
  std::vector<ipckit::unique_fd> fds;
  const ipckit::error_code ec = net::detail::take_received_fds(control, flags, max_fds, fds);
  if ((flags & MSG_CTRUNC) != 0 || sent.size() > max_fds) {
    FUZZ_CHECK(ec == net::errc::control_truncated);
    FUZZ_CHECK(fds.empty());
    for (int fd : sent) FUZZ_CHECK(!is_open(fd));
  } else {
    FUZZ_CHECK(!ec);
    FUZZ_CHECK(fds.size() == sent.size());
    for (std::size_t i = 0; i < sent.size(); ++i) {
      FUZZ_CHECK(fds[i].get() == sent[i]);
      FUZZ_CHECK(is_open(sent[i]));
    }
  }
}

}  // namespace

extern "C" int LLVMFuzzerTestOneInput(const std::uint8_t* data, std::size_t size) {
  ipckit::fuzz::input in(data, size);
  if ((in.byte() & 1) == 0) {
    any_bytes(in.rest());
  } else {
    real_descriptors(in);
  }
  return 0;
}
