// listen_fds: systemd's socket-activation protocol (sd_listen_fds(3)), both ends of it.
//
// The parent puts the listening sockets at fd 3, 4, … and sets LISTEN_FDS=<count> and
// LISTEN_PID=<the child's pid>. The pid check stops a grandchild from taking sockets
// meant for its parent, which is why it must be the pid *after* fork: the supervisor
// starts `ipckit-daemon exec-worker …`, which sets LISTEN_PID=getpid() and execs the
// worker (exec keeps the pid).
#pragma once

#include <ipckit/unique_fd.hpp>

#include <string>
#include <vector>

namespace daemon_demo {

/// The first inherited socket, as in SD_LISTEN_FDS_START.
inline constexpr int listen_fds_start = 3;

/// The worker's side: the sockets handed over, if LISTEN_PID names this process (none
/// otherwise). Unsets LISTEN_FDS, LISTEN_PID and LISTEN_FDNAMES so that nothing we start
/// takes them, and makes each fd close-on-exec.
std::vector<ipckit::unique_fd> listen_fds();

/// The trampoline: sets LISTEN_PID to this process's pid and execs argv[0] with argv.
/// Returns only on failure (with errno's message in `error`).
void exec_with_listen_pid(const std::vector<std::string>& argv, std::string& error);

}  // namespace daemon_demo
