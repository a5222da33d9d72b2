// Helper child modes for the file_lock, message_queue and semaphore tests: take a lock,
// a pidfile or a semaphore unit, say so on stdout, and hold it until stdin closes (or
// until the test kills the process, which is the point of most of them).
#include "helper_child.hpp"

#include <ipckit/file_lock.hpp>
#include <ipckit/semaphore.hpp>

#include <boost/asio/io_context.hpp>

#include <iostream>
#include <unistd.h>

namespace ipckit::test {
namespace {

int hold_until_stdin_closes() {
  char c;
  while (::read(0, &c, 1) > 0) {
  }
  return 0;
}

int lock_hold(std::span<const std::string> args) {
  if (args.size() != 2 && args.size() != 4) return 2;
  boost::asio::io_context io;
  const lock_mode mode = args[1] == "shared" ? lock_mode::shared : lock_mode::exclusive;
  std::optional<byte_range> range;
  if (args.size() == 4) range = byte_range{std::stoll(args[2]), std::stoll(args[3])};
  file_lock lock(io.get_executor());
  lock.open(args[0], range);
  lock.lock(mode);
  std::cout << "locked" << std::endl;
  return hold_until_stdin_closes();
}

int hold_pidfile(std::span<const std::string> args) {
  if (args.size() != 1) return 2;
  try {
    pidfile guard(args[0]);
    std::cout << "ok " << ::getpid() << std::endl;
    return hold_until_stdin_closes();
  } catch (const std::exception& error) {
    std::cout << error.what() << std::endl;
    return 3;
  }
}

int sem_hold(std::span<const std::string> args) {
  if (args.size() != 1) return 2;
  boost::asio::io_context io;
  named_semaphore semaphore(io.get_executor());
  semaphore.open(args[0]);
  semaphore.wait();
  std::cout << "holding" << std::endl;
  return hold_until_stdin_closes();
}

int sysv_hold(std::span<const std::string> args) {
  if (args.size() != 1) return 2;
  boost::asio::io_context io;
  sysv_semaphore semaphore(io.get_executor());
  semaphore.attach(std::stoi(args[0]));
  semaphore.wait();
  std::cout << "holding" << std::endl;
  return hold_until_stdin_closes();
}

const helper_mode_registration modes[] = {
    helper_mode_registration{{"lock-hold", "lock-hold PATH shared|exclusive [START LENGTH]  (prints 'locked')", lock_hold}},
    helper_mode_registration{{"pidfile", "pidfile PATH  (prints 'ok PID' or the error, exit 3)", hold_pidfile}},
    helper_mode_registration{{"sem-hold", "sem-hold NAME  (takes a unit, prints 'holding')", sem_hold}},
    helper_mode_registration{{"sysv-hold", "sysv-hold ID  (takes a unit with SEM_UNDO, prints 'holding')", sysv_hold}},
};

}  // namespace
}  // namespace ipckit::test
