#include "private_directory.hpp"

#include <fcntl.h>
#include <sys/stat.h>
#include <unistd.h>

namespace ipckit::net::detail {
namespace {

std::string base_name(const std::string& path) {
  const auto slash = path.rfind('/');
  return slash == std::string::npos ? path : path.substr(slash + 1);
}

// Ours and closed to others: what ssh's StrictModes asks of ~/.ssh.
bool private_enough(const struct stat& st) {
  return S_ISDIR(st.st_mode) && st.st_uid == ::geteuid() && (st.st_mode & (S_IWGRP | S_IWOTH)) == 0;
}

}  // namespace

std::string parent_directory(const std::string& socket_path) {
  const auto slash = socket_path.rfind('/');
  if (slash == std::string::npos) return ".";
  if (slash == 0) return "/";
  return socket_path.substr(0, slash);
}

unique_fd open_private_directory(const std::string& socket_path, std::string& syscall,
                                 error_code& ec) {
  ec.clear();
  const std::string directory = parent_directory(socket_path);
  bool created = false;
  if (::mkdir(directory.c_str(), 0700) == 0) {
    created = true;
  } else if (errno != EEXIST) {
    ec = last_error();
    syscall = "mkdir " + directory;
    return {};
  }
  syscall = "private directory " + directory;
  // O_NOFOLLOW: a symlink planted in place of the directory fails here (ELOOP/ENOTDIR).
  unique_fd fd(::open(directory.c_str(), O_RDONLY | O_DIRECTORY | O_NOFOLLOW | O_CLOEXEC));
  if (!fd) {
    ec = (errno == ELOOP || errno == ENOTDIR) ? error_code(errc::insecure_directory) : last_error();
    return {};
  }
  // The umask may have narrowed what mkdir made; a directory we made is exactly 0700.
  if (created && ::fchmod(fd.get(), 0700) != 0) {
    ec = last_error();
    return {};
  }
  struct stat st {};
  if (::fstat(fd.get(), &st) != 0) {
    ec = last_error();
    return {};
  }
  if (!private_enough(st)) {
    ec = errc::insecure_directory;
    return {};
  }
  syscall.clear();
  return fd;
}

bool bound_in_private_directory(int directory, const std::string& socket_path,
                                std::string& syscall, error_code& ec) {
  ec.clear();
  syscall = "private directory " + parent_directory(socket_path);
  struct stat opened {}, named {}, socket_file {};
  if (::fstat(directory, &opened) != 0 ||
      ::stat(parent_directory(socket_path).c_str(), &named) != 0) {
    ec = last_error();
    return false;
  }
  const bool same_directory = opened.st_dev == named.st_dev && opened.st_ino == named.st_ino;
  const bool socket_there =
      ::fstatat(directory, base_name(socket_path).c_str(), &socket_file, AT_SYMLINK_NOFOLLOW) == 0 &&
      S_ISSOCK(socket_file.st_mode);
  if (!same_directory || !socket_there || !private_enough(opened)) {
    // Remove what we bound in the directory we checked; one swapped in is not ours to edit.
    if (socket_there) ::unlinkat(directory, base_name(socket_path).c_str(), 0);
    ec = errc::insecure_directory;
    return false;
  }
  syscall.clear();
  return true;
}

}  // namespace ipckit::net::detail
