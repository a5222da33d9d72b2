#include "stdio_relay.hpp"

#include <boost/asio/post.hpp>
#include <boost/asio/write.hpp>

#include <cerrno>
#include <fcntl.h>
#include <sys/stat.h>
#include <unistd.h>

namespace ipckit::cli {

stdin_reader::stdin_reader(const net::executor_type& ex) : executor_(ex) {
  // epoll refuses regular files, and /dev/null never blocks: those are read directly.
  struct stat st {};
  if (::fstat(0, &st) != 0 || S_ISREG(st.st_mode) || (S_ISCHR(st.st_mode) && !::isatty(0))) return;
  const int fd = ::fcntl(0, F_DUPFD_CLOEXEC, 0);
  if (fd < 0) return;
  came_non_blocking_ = (::fcntl(fd, F_GETFL) & O_NONBLOCK) != 0;
  error_code ec;
  pollable_.emplace(ex);
  pollable_->assign(fd, ec);
  if (ec) {
    ::close(fd);
    pollable_.reset();
  }
}

stdin_reader::~stdin_reader() {
  if (!pollable_ || !pollable_->is_open() || came_non_blocking_ || !pollable_->native_non_blocking())
    return;
  error_code ignored;
  pollable_->native_non_blocking(false, ignored);
}

void stdin_reader::async_read(boost::asio::mutable_buffer buffer,
                              std::function<void(error_code, std::size_t)> done) {
  if (pollable_) return pollable_->async_read_some(buffer, std::move(done));
  boost::asio::post(executor_, [buffer, done = std::move(done)] {
    ssize_t n;
    do n = ::read(0, buffer.data(), buffer.size());
    while (n < 0 && errno == EINTR);
    if (n < 0) return done(last_error(), 0);
    if (n == 0) return done(boost::asio::error::eof, 0);
    done({}, static_cast<std::size_t>(n));
  });
}

void write_stdout(std::string_view data) {
  while (!data.empty()) {
    const ssize_t n = ::write(1, data.data(), data.size());
    if (n < 0 && errno == EINTR) continue;
    if (n < 0) throw_error(last_error(), {"write", "", "", "stdout", "write"});
    data.remove_prefix(static_cast<std::size_t>(n));
  }
}

conn_relay::conn_relay(net::conn& c, std::string net, relay_options options)
    : conn_(c),
      net_(std::move(net)),
      packet_(net::parse_network(net_).socket_type != SOCK_STREAM),
      options_(options),
      stdin_(c.get_executor()),
      linger_(c.get_executor()) {}

void conn_relay::start(std::function<void(error_code, std::string)> done) {
  done_ = std::move(done);
  read_conn();
  if (options_.read_stdin && !options_.echo) read_stdin();
}

void conn_relay::finish(error_code ec, std::string where) {
  if (!done_) return;
  linger_.cancel();
  auto done = std::move(done_);
  done_ = nullptr;
  done(ec, std::move(where));
}

void conn_relay::read_conn() {
  conn_.async_read_some(boost::asio::buffer(from_conn_), [this](error_code ec, std::size_t n) {
    if (ec == boost::asio::error::eof) return finish({}, "");
    if (ec) return finish(ec, "read");
    if (options_.echo) {
      return boost::asio::async_write(conn_, boost::asio::buffer(from_conn_.data(), n),
                                      [this](error_code wec, std::size_t) {
                                        if (wec) return finish(wec, "write");
                                        read_conn();
                                      });
    }
    std::string text(from_conn_.data(), n);
    if (packet_) text += '\n';
    write_stdout(text);
    read_conn();
  });
}

void conn_relay::read_stdin() {
  stdin_.async_read(boost::asio::buffer(from_stdin_), [this](error_code ec, std::size_t n) {
    if (!done_) return;
    if (ec) {  // EOF (or a broken stdin): half-close, keep printing what still arrives
      if (packet_) {
        if (!partial_line_.empty()) conn_.write_some(boost::asio::buffer(partial_line_), ec);
        linger_.expires_after(options_.linger);
        linger_.async_wait([this](error_code timer) {
          if (!timer) finish({}, "");
        });
      } else {
        conn_.shutdown(net::conn::socket_type::shutdown_send, ec);
      }
      return;
    }
    if (packet_) {
      send_lines(n);
      return read_stdin();
    }
    boost::asio::async_write(conn_, boost::asio::buffer(from_stdin_.data(), n),
                             [this](error_code wec, std::size_t) {
                               if (wec) return finish(wec, "write");
                               read_stdin();
                             });
  });
}

void conn_relay::send_lines(std::size_t bytes) {
  partial_line_.append(from_stdin_.data(), bytes);
  std::size_t start = 0;
  for (auto newline = partial_line_.find('\n'); newline != std::string::npos;
       newline = partial_line_.find('\n', start)) {
    error_code ec;
    conn_.write_some(boost::asio::buffer(partial_line_.data() + start, newline - start), ec);
    if (ec) return finish(ec, "write");
    start = newline + 1;
  }
  partial_line_.erase(0, start);
}

packet_relay::packet_relay(net::packet_conn& c, relay_options options)
    : conn_(c), options_(options), stdin_(c.get_executor()) {}

void packet_relay::start(std::function<void(error_code, std::string)> done) {
  done_ = std::move(done);
  receive();
  if (options_.read_stdin && !options_.echo) read_stdin();
}

void packet_relay::receive() {
  conn_.async_receive_from(boost::asio::buffer(datagram_), from_, [this](error_code ec, std::size_t n) {
    if (ec) return done_(ec, "read");
    last_sender_ = from_;
    if (options_.echo) {
      conn_.send_to(boost::asio::buffer(datagram_.data(), n), from_, ec);
      if (ec) return done_(ec, "write");
    } else {
      write_stdout(std::string(datagram_.data(), n) + "\n");
    }
    receive();
  });
}

void packet_relay::read_stdin() {
  stdin_.async_read(boost::asio::buffer(from_stdin_), [this](error_code ec, std::size_t n) {
    if (ec) return;  // stdin ended: keep serving datagrams
    partial_line_.append(from_stdin_.data(), n);
    std::size_t start = 0;
    for (auto newline = partial_line_.find('\n'); newline != std::string::npos;
         newline = partial_line_.find('\n', start)) {
      if (!last_sender_.empty())
        conn_.send_to(boost::asio::buffer(partial_line_.data() + start, newline - start), last_sender_, ec);
      start = newline + 1;
    }
    partial_line_.erase(0, start);
    read_stdin();
  });
}

}  // namespace ipckit::cli
