// Helper child modes for the security tests: run another mode as another user, dial a
// unix socket and report what the listener did, and plant semaphores as that user.
#include "helper_child.hpp"

#include <ipckit/net.hpp>
#include <ipckit/semaphore.hpp>

#include <boost/asio/io_context.hpp>

#include <grp.h>
#include <iostream>
#include <sys/ipc.h>
#include <sys/sem.h>
#include <unistd.h>
#include <vector>

namespace ipckit::test {
namespace {

// Drops to UID/GID (no supplementary groups), then runs MODE ARGS… in this same program
// again, so the mode starts with the new credentials and nothing of the old process.
int as_user(std::span<const std::string> args) {
  if (args.size() < 3) return 2;
  const auto uid = static_cast<uid_t>(std::stoul(args[0]));
  const auto gid = static_cast<gid_t>(std::stoul(args[1]));
  if (::setgroups(0, nullptr) != 0 || ::setgid(gid) != 0 || ::setuid(uid) != 0) {
    std::perror("as-user: drop privileges");
    return 3;
  }
  std::vector<std::string> argv{"ipckit_helper"};
  argv.insert(argv.end(), args.begin() + 2, args.end());
  std::vector<char*> pointers;
  for (auto& arg : argv) pointers.push_back(arg.data());
  pointers.push_back(nullptr);
  ::execv("/proc/self/exe", pointers.data());
  std::perror("as-user: exec");
  return 3;
}

// Prints "connected" once connect returns (the connection is in the listener's queue),
// then everything it receives up to EOF: 'received "DATA"'. A refused peer sees "".
int unix_dial(std::span<const std::string> args) {
  if (args.size() != 2) return 2;
  boost::asio::io_context io;
  error_code ec;
  net::conn c = net::dial(io.get_executor(), args[0], args[1], ec);
  if (ec) {
    std::cout << "dial error: " << error_text(ec) << std::endl;
    return 1;
  }
  std::cout << "connected" << std::endl;
  std::string data;
  char buffer[256];
  for (;;) {
    const std::size_t n = c.read_some(boost::asio::buffer(buffer), ec);
    if (ec) break;
    data.append(buffer, n);
  }
  std::cout << "received \"" << data << "\"" << (ec == boost::asio::error::eof ? "" : " (" + error_text(ec) + ")")
            << std::endl;
  return 0;
}

int sem_create(std::span<const std::string> args) {
  if (args.size() != 2) return 2;
  boost::asio::io_context io;
  named_semaphore semaphore(io.get_executor());
  semaphore_options options;
  options.mode = static_cast<mode_t>(std::stoul(args[1], nullptr, 8));
  options.exclusive = true;
  semaphore.create(args[0], 1, options);
  std::cout << "created" << std::endl;
  return 0;
}

// Creates a System V set under KEY with MODE; with OWNER, then hands the owner field to
// that uid (IPC_SET), as a creator may, keeping control as the creator.
int sysv_create(std::span<const std::string> args) {
  if (args.size() != 2 && args.size() != 3) return 2;
  const auto key = static_cast<key_t>(std::stol(args[0]));
  const int mode = static_cast<int>(std::stoul(args[1], nullptr, 8));
  const int id = ::semget(key, 1, IPC_CREAT | IPC_EXCL | mode);
  if (id < 0) {
    std::perror("semget");
    return 1;
  }
  if (args.size() == 3) {
    union {
      int val;
      semid_ds* buf;
    } argument{};
    semid_ds status{};
    argument.buf = &status;
    if (::semctl(id, 0, IPC_STAT, argument) != 0) return 1;
    status.sem_perm.uid = static_cast<uid_t>(std::stoul(args[2]));
    if (::semctl(id, 0, IPC_SET, argument) != 0) {
      std::perror("semctl IPC_SET");
      return 1;
    }
  }
  std::cout << id << std::endl;
  return 0;
}

const helper_mode_registration modes[] = {
    helper_mode_registration{{"as-user", "as-user UID GID MODE ARGS…  (drops to UID/GID, then runs MODE)", as_user}},
    helper_mode_registration{{"unix-dial", "unix-dial NETWORK ADDRESS  (prints 'connected', then 'received \"DATA\"' at EOF)", unix_dial}},
    helper_mode_registration{{"sem-create", "sem-create NAME MODE  (O_EXCL, octal MODE, prints 'created')", sem_create}},
    helper_mode_registration{{"sysv-create", "sysv-create KEY MODE [OWNER_UID]  (IPC_EXCL, prints the id)", sysv_create}},
};

}  // namespace
}  // namespace ipckit::test
