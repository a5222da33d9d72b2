// Go's exec.LookPath: never the current directory unless the path says so.
#include <ipckit/process.hpp>

#include <cstdlib>
#include <fcntl.h>
#include <sys/stat.h>
#include <unistd.h>

namespace ipckit {
namespace {

// Go's findExecutable: a regular file (not a directory) that we may execute.
error_code find_executable(const std::string& file) {
  struct stat st {};
  if (::stat(file.c_str(), &st) != 0) return last_error();
  if (S_ISDIR(st.st_mode)) return boost::system::errc::make_error_code(boost::system::errc::permission_denied);
  if (::faccessat(AT_FDCWD, file.c_str(), X_OK, AT_EACCESS) != 0) return last_error();
  return {};
}

}  // namespace

std::string look_path(std::string_view name, error_code& ec) {
  ec.clear();
  const std::string file(name);
  if (file.find('/') != std::string::npos) {
    ec = find_executable(file);
    return ec ? std::string() : file;
  }
  const char* path_env = std::getenv("PATH");
  const std::string path = path_env ? path_env : "";
  std::size_t begin = 0;
  for (;;) {
    const std::size_t end = path.find(':', begin);
    std::string dir = path.substr(begin, end == std::string::npos ? std::string::npos : end - begin);
    if (dir.empty()) dir = ".";  // an empty entry means the current directory, as in Go
    const std::string candidate = dir + "/" + file;
    if (!find_executable(candidate)) {
      if (candidate.front() != '/') {
        // Go 1.19's ErrDot: found only relative to the current directory.
        ec = process::errc::dot;
        return candidate;
      }
      return candidate;
    }
    if (end == std::string::npos) break;
    begin = end + 1;
  }
  ec = process::errc::not_found;
  return {};
}

std::string look_path(std::string_view name) {
  error_code ec;
  std::string found = look_path(name, ec);
  if (ec) throw_error(ec, {"exec: \"" + std::string(name) + "\"", "", "", "", ""});
  return found;
}

}  // namespace ipckit
