// The directory a unix socket is bound in when listen_config::private_directory asks for
// one: created 0700, or checked to be ours and closed to others.
#pragma once

#include "net_internal.hpp"

#include <string>

namespace ipckit::net::detail {

/// The parent directory of `socket_path` ("." for a bare name, "/" for "/name").
std::string parent_directory(const std::string& socket_path);

/// Creates the parent directory of `socket_path` with mode 0700 if it is missing, and
/// opens it. An existing directory must not be a symlink, must belong to our effective
/// uid and must not be writable by group or others (errc::insecure_directory). On
/// failure `syscall` names the step ("mkdir /d", "private directory /d").
unique_fd open_private_directory(const std::string& socket_path, std::string& syscall,
                                 error_code& ec);

/// After bind: the path's directory is still the one `directory` opened (nobody swapped
/// it between the check and the bind) and holds a socket under the path's name.
bool bound_in_private_directory(int directory, const std::string& socket_path,
                                std::string& syscall, error_code& ec);

}  // namespace ipckit::net::detail
