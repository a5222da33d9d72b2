// POSIX message queues: messages with priorities between two processes, received on the
// event loop, highest priority first.
#include <ipckit/event_loop.hpp>
#include <ipckit/message_queue.hpp>
#include <ipckit/process.hpp>

#include <cstdio>
#include <string>
#include <unistd.h>

int sender(const std::string& name) {
  ipckit::event_loop loop;
  ipckit::message_queue queue(loop.get_executor());
  queue.open(name);
  const std::pair<const char*, unsigned> messages[] = {
      {"routine report", 0}, {"disk almost full", 5}, {"log rotated", 1}, {"stop now", 9}};
  for (auto [text, priority] : messages) queue.send(boost::asio::buffer(std::string(text)), priority);
  return 0;
}

int main(int argc, char** argv) {
  if (argc == 3 && std::string(argv[1]) == "send") return sender(argv[2]);

  const std::string name = "/ipckit-mq-demo-" + std::to_string(::getpid());
  ipckit::event_loop loop;
  ipckit::message_queue queue(loop.get_executor());
  queue.create(name, {.attributes = {.max_messages = 8, .message_size = 256}});
  std::printf("created %s (mode 0600, 8 messages of at most 256 bytes)\n", name.c_str());

  ipckit::command child(loop.get_executor(), "/proc/self/exe", {"send", name});
  child.run();  // the child sends four messages and exits; they wait in the kernel

  char buffer[256];
  int received = 0;
  std::function<void(ipckit::error_code, ipckit::received_message)> on_message =
      [&](ipckit::error_code ec, ipckit::received_message m) {
        if (ec) return;
        std::printf("priority %u: %.*s\n", m.priority, static_cast<int>(m.size), buffer);
        if (++received < 4) queue.async_receive(boost::asio::buffer(buffer), on_message);
      };
  queue.async_receive(boost::asio::buffer(buffer), on_message);
  loop.run();
  ipckit::message_queue::unlink(name);
  return received == 4 ? 0 : 1;
}
