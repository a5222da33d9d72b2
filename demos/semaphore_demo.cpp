// Semaphores, and what happens when a holder dies: a POSIX named semaphore leaks the
// unit the dead process took, a System V semaphore with SEM_UNDO gives it back.
#include <ipckit/event_loop.hpp>
#include <ipckit/process.hpp>
#include <ipckit/semaphore.hpp>

#include <cstdio>
#include <string>
#include <sys/ipc.h>
#include <unistd.h>

// Takes one unit of each semaphore, says so, and waits to be killed.
int holder(const std::string& posix_name, int sysv_id) {
  ipckit::event_loop loop;
  ipckit::named_semaphore posix(loop.get_executor());
  posix.open(posix_name);
  ipckit::sysv_semaphore sysv(loop.get_executor());
  sysv.attach(sysv_id);
  posix.wait();
  sysv.wait();
  std::printf("taken\n");
  std::fflush(stdout);
  for (;;) ::pause();
}

int main(int argc, char** argv) {
  if (argc == 4 && std::string(argv[1]) == "hold") return holder(argv[2], std::stoi(argv[3]));

  ipckit::event_loop loop;
  const std::string name = "/ipckit-sem-demo-" + std::to_string(::getpid());
  ipckit::named_semaphore posix(loop.get_executor());
  posix.create(name, 2);
  ipckit::sysv_semaphore sysv(loop.get_executor());
  sysv.create(IPC_PRIVATE, 2);
  std::printf("before: posix %d, sysv %d\n", posix.value(), sysv.value());

  ipckit::command child(loop.get_executor(), "/proc/self/exe", {"hold", name, std::to_string(sysv.id())});
  auto out = child.stdout_pipe();
  child.start();
  char line[16];
  out.read_some(boost::asio::buffer(line));
  std::printf("holder took one unit: posix %d, sysv %d\n", posix.value(), sysv.value());
  child.kill();
  ipckit::error_code killed;  // wait() reports "signal: killed" as an error, as Go's Wait does
  child.wait(killed);
  std::printf("holder killed:        posix %d (the unit is lost), sysv %d (SEM_UNDO gave it back)\n",
              posix.value(), sysv.value());

  // The event_semaphore (eventfd) is waited on by the loop itself.
  ipckit::event_semaphore events(loop.get_executor(), 0);
  events.async_wait([](ipckit::error_code ec) { std::printf("event semaphore: %s\n", ec ? ec.message().c_str() : "a unit arrived on the loop"); });
  events.post();
  loop.run();

  ipckit::named_semaphore::unlink(name);
  sysv.remove();
  return 0;
}
