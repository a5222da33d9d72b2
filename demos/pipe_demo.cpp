// Anonymous pipes: Go's os.Pipe, and exec.Cmd's StdinPipe/StdoutPipe/Output.
//
// 1. make_pipe gives a reader and a writer in this process (os.Pipe).
// 2. A child's stdin and stdout become pipes: the parent writes to `tr a-z A-Z` and
//    reads its answer (cmd.StdinPipe, cmd.StdoutPipe).
// 3. output() runs a command and collects its stdout (cmd.Output).
#include <ipckit/event_loop.hpp>
#include <ipckit/pipe.hpp>
#include <ipckit/process.hpp>

#include <boost/asio/read.hpp>
#include <boost/asio/write.hpp>

#include <cstdio>
#include <string>

int main() {
  ipckit::event_loop loop;

  auto [reader, writer] = ipckit::make_pipe(loop.get_executor());
  boost::asio::write(writer, boost::asio::buffer(std::string("through a pipe\n")));
  writer.close();
  std::string in_process;
  ipckit::error_code ec;
  boost::asio::read(reader, boost::asio::dynamic_buffer(in_process), ec);  // until EOF
  std::printf("os.Pipe:          %s", in_process.c_str());

  ipckit::command upper(loop.get_executor(), "tr", {"a-z", "A-Z"});
  auto to_child = upper.stdin_pipe();
  auto from_child = upper.stdout_pipe();
  upper.start();
  boost::asio::write(to_child, boost::asio::buffer(std::string("hello from the parent\n")));
  to_child.close();  // tr sees EOF, answers, exits
  std::string answer;
  boost::asio::read(from_child, boost::asio::dynamic_buffer(answer), ec);
  const auto state = upper.wait();
  std::printf("exec stdio pipes: %s          (tr: %s)\n", answer.substr(0, answer.size() - 1).c_str(),
              state.string().c_str());

  ipckit::command date(loop.get_executor(), "uname", {"-s"});
  std::printf("cmd.Output:       %s", date.output().c_str());
  return 0;
}
