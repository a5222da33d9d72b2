// File locks: a child holds an exclusive lock; the parent waits for it on the event loop
// while a timer keeps ticking; the child is killed, and the kernel hands the lock over.
#include <ipckit/event_loop.hpp>
#include <ipckit/file_lock.hpp>
#include <ipckit/process.hpp>

#include <boost/asio/steady_timer.hpp>

#include <chrono>
#include <cstdio>
#include <cstdlib>
#include <filesystem>
#include <string>
#include <unistd.h>

using namespace std::chrono_literals;

int holder(const char* path) {
  ipckit::event_loop loop;
  ipckit::file_lock lock(loop.get_executor(), path);
  lock.lock();
  std::printf("child %d holds the lock\n", ::getpid());
  std::fflush(stdout);
  for (;;) ::pause();  // until killed: the kernel releases the lock of a dead holder
}

int main(int argc, char** argv) {
  if (argc == 3 && std::string(argv[1]) == "hold") return holder(argv[2]);

  char pattern[] = "/tmp/ipckit-lock-demo-XXXXXX";
  const std::filesystem::path dir = ::mkdtemp(pattern);
  const auto path = (dir / "lock").string();
  ipckit::event_loop loop;
  ipckit::command child(loop.get_executor(), "/proc/self/exe", {"hold", path});
  auto child_out = child.stdout_pipe();
  child.start();
  char line[64];
  const std::size_t n = child_out.read_some(boost::asio::buffer(line));
  std::printf("%.*s", static_cast<int>(n), line);

  ipckit::file_lock lock(loop.get_executor(), path);
  std::printf("parent try_lock: %s\n", lock.try_lock() ? "got it (unexpected)" : "busy");
  const auto asked = std::chrono::steady_clock::now();
  bool locked = false;
  lock.async_lock(ipckit::lock_mode::exclusive, [&](ipckit::error_code ec) {
    locked = !ec;
    const auto waited = std::chrono::duration_cast<std::chrono::milliseconds>(std::chrono::steady_clock::now() - asked);
    std::printf("parent got the lock after %lld ms: %s\n", static_cast<long long>(waited.count()),
                ec ? ec.message().c_str() : "ok");
  });
  int ticks = 0;
  boost::asio::steady_timer timer(loop.get_executor());
  std::function<void(ipckit::error_code)> tick = [&](ipckit::error_code) {
    if (++ticks == 3) {
      std::printf("the loop ticked 3 times while the lock was waited for; killing the holder\n");
      child.kill();
      return;
    }
    timer.expires_after(50ms);
    timer.async_wait(tick);
  };
  timer.expires_after(50ms);
  timer.async_wait(tick);
  loop.run();
  ipckit::error_code killed;  // wait() reports a non-zero status as an error, as Go's Wait does
  std::printf("holder: %s\n", child.wait(killed).string().c_str());
  std::filesystem::remove_all(dir);
  return locked ? 0 : 1;
}
