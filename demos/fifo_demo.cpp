// Named pipes: mkfifo, a reader that outlives its writers, and writers that wait.
//
// The parent makes a FIFO (mode 0600) and opens it as a server reader, which keeps
// reading as writers come and go. Three children, one after another, open it for
// writing (the open waits for a reader instead of failing with ENXIO) and send a line.
#include <ipckit/event_loop.hpp>
#include <ipckit/pipe.hpp>
#include <ipckit/process.hpp>

#include <boost/asio/write.hpp>

#include <cstdio>
#include <cstdlib>
#include <filesystem>
#include <string>
#include <unistd.h>

int writer(const char* path) {
  ipckit::event_loop loop;
  auto out = ipckit::open_fifo_writer(loop.get_executor(), path, std::chrono::seconds(10));
  boost::asio::write(out, boost::asio::buffer("hello from writer " + std::to_string(::getpid()) + "\n"));
  return 0;
}

int main(int argc, char** argv) {
  if (argc == 3 && std::string(argv[1]) == "writer") return writer(argv[2]);

  char pattern[] = "/tmp/ipckit-fifo-demo-XXXXXX";
  const std::filesystem::path dir = ::mkdtemp(pattern);
  const auto fifo = dir / "fifo";
  ipckit::event_loop loop;
  ipckit::make_fifo(fifo);
  std::printf("made %s, mode %o\n", fifo.c_str(),
              static_cast<unsigned>(std::filesystem::status(fifo).permissions()));
  auto reader = ipckit::open_fifo_server(loop.get_executor(), fifo);
  for (int i = 0; i < 3; ++i) {
    ipckit::command child(loop.get_executor(), "/proc/self/exe", {"writer", fifo.string()});
    child.run();  // one writer at a time: it opens, writes, closes, exits
    char line[128];
    const std::size_t n = reader.read_some(boost::asio::buffer(line));
    std::printf("server reader got: %.*s", static_cast<int>(n), line);
  }
  std::printf("three writers came and went; the reader never saw EOF\n");
  std::filesystem::remove_all(dir);
  return 0;
}
