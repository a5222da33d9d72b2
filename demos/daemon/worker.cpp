// Protocol: each line a client sends comes back prefixed with the worker's pid,
// "1234: hello". Stopping (SIGTERM, SIGINT) is graceful: the worker closes its copy of
// the listening socket (the kernel keeps queueing connections for the other holders:
// new workers and the supervisor), keeps serving every open connection until its client
// closes it, and exits 0 when none is left. Past the drain timeout it closes the rest.
#include "worker.hpp"

#include "listen_fds.hpp"

#include <ipckit/net.hpp>
#include <ipckit/signal.hpp>

#include <boost/asio/posix/stream_descriptor.hpp>
#include <boost/asio/read_until.hpp>
#include <boost/asio/steady_timer.hpp>
#include <boost/asio/streambuf.hpp>
#include <boost/asio/write.hpp>

#include <csignal>
#include <cstdio>
#include <fcntl.h>
#include <list>
#include <memory>
#include <sys/socket.h>
#include <unistd.h>

namespace daemon_demo {
namespace {

namespace asio = boost::asio;
using ipckit::error_code;

constexpr std::size_t max_line = 64 * 1024;  // a longer line closes the connection

// One client connection: read a line, write the reply, repeat until EOF.
class session : public std::enable_shared_from_this<session> {
 public:
  explicit session(ipckit::net::conn c) : conn_(std::move(c)), input_(max_line) {}

  void start(std::function<void()> on_close) {
    on_close_ = std::move(on_close);
    read_line();
  }
  void close() { conn_.close(); }

 private:
  void read_line() {
    asio::async_read_until(conn_, input_, '\n',
                           [self = shared_from_this()](error_code ec, std::size_t n) {
                             if (ec) return self->finish();  // EOF, error, or over max_line
                             self->reply(n);
                           });
  }

  void reply(std::size_t n) {
    std::string line(asio::buffers_begin(input_.data()), asio::buffers_begin(input_.data()) + n);
    input_.consume(n);
    output_ = std::to_string(::getpid()) + ": " + line;
    asio::async_write(conn_, asio::buffer(output_),
                      [self = shared_from_this()](error_code ec, std::size_t) {
                        if (ec) return self->finish();
                        self->read_line();
                      });
  }

  void finish() {
    conn_.close();
    if (auto done = std::exchange(on_close_, nullptr)) done();
  }

  ipckit::net::conn conn_;
  asio::streambuf input_;
  std::string output_;
  std::function<void()> on_close_;
};

class worker {
 public:
  worker(asio::io_context& io, std::vector<ipckit::unique_fd> fds, worker_options options)
      : io_(io), options_(options), signals_(io, {SIGTERM, SIGINT}), drain_timer_(io) {
    for (auto& fd : fds) {
      // Workers share the socket, so a wake-up may find the connection taken by another
      // worker: accept must not block. (O_NONBLOCK is shared by every holder; all of
      // them only ever accept after poll, so that is what they want too.)
      ::fcntl(fd.get(), F_SETFL, ::fcntl(fd.get(), F_GETFL) | O_NONBLOCK);
      listeners_.emplace_back(io, fd.release());
    }
  }

  void start() {
    for (auto& l : listeners_) wait_for_connection(l);
    signals_.on_signal([this](const ipckit::signal::info&) { drain(); });
    // The supervisor waits for this line before it stops the workers this one replaces.
    std::fputs("ready\n", stdout);
    std::fflush(stdout);
  }

 private:
  void wait_for_connection(asio::posix::stream_descriptor& l) {
    l.async_wait(asio::posix::stream_descriptor::wait_read, [this, &l](error_code ec) {
      if (ec) return;  // closed: we are draining
      accept_all(l);
      wait_for_connection(l);
    });
  }

  void accept_all(asio::posix::stream_descriptor& l) {
    for (;;) {
      const int fd = ::accept4(l.native_handle(), nullptr, nullptr, SOCK_CLOEXEC);
      if (fd < 0) return;  // EAGAIN: another worker took it; other errors: the peer went
      auto s = std::make_shared<session>(
          ipckit::net::conn(io_.get_executor(), "tcp", ipckit::unique_fd(fd)));
      auto at = sessions_.insert(sessions_.end(), s);
      s->start([this, at] {
        sessions_.erase(at);
        if (draining_ && sessions_.empty()) io_.stop();
      });
    }
  }

  void drain() {
    if (draining_) return;
    draining_ = true;
    for (auto& l : listeners_) l.close();  // stop accepting; pending waits end
    if (sessions_.empty()) return io_.stop();
    drain_timer_.expires_after(options_.drain_timeout);
    drain_timer_.async_wait([this](error_code ec) {
      if (ec) return;
      std::fprintf(stderr, "worker %d: drain timeout, closing %zu connections\n", ::getpid(),
                   sessions_.size());
      for (auto& s : std::list<std::shared_ptr<session>>(sessions_)) s->close();
    });
  }

  asio::io_context& io_;
  worker_options options_;
  ipckit::signal::notifier signals_;
  asio::steady_timer drain_timer_;
  std::list<asio::posix::stream_descriptor> listeners_;
  std::list<std::shared_ptr<session>> sessions_;
  bool draining_ = false;
};

}  // namespace

int worker_main(const worker_options& options) {
  auto fds = listen_fds();
  if (fds.empty()) {
    std::fputs("ipckit-daemon worker: no listening sockets (LISTEN_FDS/LISTEN_PID not set for "
                "this process)\n", stderr);
    return 1;
  }
  asio::io_context io(1);
  worker w(io, std::move(fds), options);
  w.start();
  io.run();
  return 0;
}

}  // namespace daemon_demo
