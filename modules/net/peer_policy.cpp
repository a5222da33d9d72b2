// The peer-credential policy of unix listeners: checked in the listener, so a refused
// peer's connection is closed before accept could hand it to the caller.
#include "net_internal.hpp"

#include <algorithm>
#include <unistd.h>

namespace ipckit::net {

bool peer_policy::allows(const credentials& peer) const noexcept {
  if (empty()) return true;
  if (same_uid && peer.uid == ::geteuid()) return true;
  return std::find(uids.begin(), uids.end(), peer.uid) != uids.end() ||
         std::find(gids.begin(), gids.end(), peer.gid) != gids.end();
}

bool listener::admit(int fd) noexcept {
  if (peers_.empty()) return true;
  ucred cred{};
  socklen_t size = sizeof cred;
  // Unknown credentials are refused: the policy fails closed.
  credentials peer{0, static_cast<uid_t>(-1), static_cast<gid_t>(-1)};
  if (::getsockopt(fd, SOL_SOCKET, SO_PEERCRED, &cred, &size) == 0) {
    peer = {cred.pid, cred.uid, cred.gid};
    if (peers_.allows(peer)) return true;
  }
  ++refused_;
  if (peers_.on_refused) {
    try {
      peers_.on_refused(peer);
    } catch (...) {
      // A logging hook must not turn a refusal into a failed accept.
    }
  }
  return false;
}

}  // namespace ipckit::net
