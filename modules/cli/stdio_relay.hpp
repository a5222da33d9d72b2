// Moves bytes between this process's stdin/stdout and a connection, on the loop: the
// engine of `ipckit dial` and `ipckit listen`. Stream connections relay bytes and
// half-close on stdin EOF; packet connections send one datagram per stdin line and print
// one line per datagram received.
#pragma once

#include <ipckit/net.hpp>

#include <boost/asio/posix/stream_descriptor.hpp>
#include <boost/asio/steady_timer.hpp>

#include <array>
#include <chrono>
#include <functional>
#include <optional>
#include <string>

namespace ipckit::cli {

/// Reads stdin on the loop when it is pollable (pipe, tty, socket); a regular file or
/// /dev/null, which epoll refuses, is read directly (it never blocks).
class stdin_reader {
 public:
  explicit stdin_reader(const net::executor_type& ex);
  /// Puts back stdin's blocking mode: the loop's reads set O_NONBLOCK on the open file
  /// description, which the shell and the other processes of the terminal share.
  ~stdin_reader();
  stdin_reader(const stdin_reader&) = delete;
  stdin_reader& operator=(const stdin_reader&) = delete;
  void async_read(boost::asio::mutable_buffer buffer, std::function<void(error_code, std::size_t)> done);

 private:
  net::executor_type executor_;
  std::optional<boost::asio::posix::stream_descriptor> pollable_;
  bool came_non_blocking_ = false;
};

/// Writes all of `data` to stdout (blocking: stdout is the user's terminal or pipe).
void write_stdout(std::string_view data);

struct relay_options {
  bool echo = false;      ///< send what arrives back instead of printing it; stdin unused
  bool read_stdin = true;
  /// Packet networks have no EOF: after stdin ends, wait this long for replies.
  std::chrono::nanoseconds linger = std::chrono::seconds(1);
};

/// Relays one connection until it ends; `done` gets the error that ended it (none for a
/// clean EOF). The relay must outlive the operation.
class conn_relay {
 public:
  conn_relay(net::conn& c, std::string net, relay_options options);
  void start(std::function<void(error_code, std::string where)> done);

 private:
  void read_conn();
  void read_stdin();
  void send_lines(std::size_t bytes);
  void finish(error_code ec, std::string where);

  net::conn& conn_;
  std::string net_;
  bool packet_;
  relay_options options_;
  stdin_reader stdin_;
  boost::asio::steady_timer linger_;
  std::array<char, 65536> from_conn_{};
  std::array<char, 65536> from_stdin_{};
  std::string partial_line_;
  std::function<void(error_code, std::string)> done_;
};

/// Serves a packet socket (udp, unixgram, ip): prints each datagram as a line (or echoes
/// it); stdin lines go to the last sender. Runs until the loop stops.
class packet_relay {
 public:
  packet_relay(net::packet_conn& c, relay_options options);
  void start(std::function<void(error_code, std::string where)> done);

 private:
  void receive();
  void read_stdin();

  net::packet_conn& conn_;
  relay_options options_;
  stdin_reader stdin_;
  net::address last_sender_, from_;
  std::array<char, 65536> datagram_{};
  std::array<char, 65536> from_stdin_{};
  std::string partial_line_;
  std::function<void(error_code, std::string)> done_;
};

}  // namespace ipckit::cli
