// async_open_fifo_writer's wait for a reader: inotify tells us when someone opens the
// FIFO, a slow timer re-checks anyway, and every attempt is a non-blocking open, so no
// thread ever blocks in open(2) and ENXIO never reaches the caller.
#include "fifo_open.hpp"

#include <ipckit/pipe.hpp>

#include <boost/asio/posix/stream_descriptor.hpp>
#include <boost/asio/post.hpp>

namespace ipckit::detail {
namespace {

class waiter final : public fifo_writer_wait, public std::enable_shared_from_this<waiter> {
 public:
  waiter(const boost::asio::any_io_executor& ex, std::filesystem::path path,
         std::function<void(error_code, unique_fd)> done)
      : ex_(ex), path_(std::move(path)), watch_(ex), recheck_(ex), deadline_(ex),
        done_(std::move(done)) {}

  void start(std::chrono::nanoseconds timeout) {
    if (unique_fd watch = pipe_internal::watch_opens(path_)) watch_.assign(watch.release());
    if (timeout > std::chrono::nanoseconds::zero()) {
      deadline_.expires_after(timeout);
      deadline_.async_wait([self = shared_from_this()](error_code ec) {
        if (!ec) self->finish(ipckit::errc::timeout, unique_fd());
      });
    }
    boost::asio::post(ex_, [self = shared_from_this()] { self->attempt(); });
  }

  void cancel() override {
    boost::asio::post(ex_, [self = shared_from_this()] {
      self->finish(boost::asio::error::operation_aborted, unique_fd());
    });
  }

 private:
  void attempt() {
    if (finished_) return;
    error_code ec;
    unique_fd fd = pipe_internal::try_open_fifo_writer(path_, ec);
    if (ec != boost::system::errc::no_such_device_or_address) return finish(ec, std::move(fd));
    if (watch_.is_open() && !watching_) {
      watching_ = true;
      watch_.async_wait(boost::asio::posix::stream_descriptor::wait_read,
                        [self = shared_from_this()](error_code wait_ec) {
                          self->watching_ = false;
                          if (wait_ec || self->finished_) return;
                          pipe_internal::drain(self->watch_.native_handle());
                          self->attempt();
                        });
    }
    recheck_.expires_after(std::chrono::milliseconds(pipe_internal::recheck_ms));
    recheck_.async_wait([self = shared_from_this()](error_code wait_ec) {
      if (!wait_ec) self->attempt();
    });
  }

  void finish(error_code ec, unique_fd fd) {
    if (finished_) return;
    finished_ = true;
    deadline_.cancel();
    recheck_.cancel();
    error_code ignored;
    watch_.close(ignored);
    auto done = std::move(done_);
    done(ec, std::move(fd));
  }

  boost::asio::any_io_executor ex_;
  std::filesystem::path path_;
  boost::asio::posix::stream_descriptor watch_;
  boost::asio::steady_timer recheck_;
  boost::asio::steady_timer deadline_;
  std::function<void(error_code, unique_fd)> done_;
  bool finished_ = false;
  bool watching_ = false;
};

}  // namespace

std::shared_ptr<fifo_writer_wait> start_fifo_writer_wait(
    const boost::asio::any_io_executor& ex, std::filesystem::path path,
    std::chrono::nanoseconds timeout, std::function<void(error_code, unique_fd)> done) {
  auto w = std::make_shared<waiter>(ex, std::move(path), std::move(done));
  w->start(timeout);
  return w;
}

}  // namespace ipckit::detail
