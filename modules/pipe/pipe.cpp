// make_pipe and the pipe module's error category.
#include <ipckit/pipe.hpp>

#include <fcntl.h>
#include <unistd.h>

namespace ipckit {
namespace pipe {
namespace {

class pipe_category : public boost::system::error_category {
 public:
  const char* name() const noexcept override { return "ipckit.pipe"; }
  std::string message(int value) const override {
    switch (static_cast<errc>(value)) {
      case errc::not_a_fifo: return "file exists and is not a named pipe";
    }
    return "unknown ipckit.pipe error " + std::to_string(value);
  }
};

}  // namespace

const boost::system::error_category& category() noexcept {
  static const pipe_category instance;
  return instance;
}

error_code make_error_code(errc e) noexcept { return {static_cast<int>(e), category()}; }

}  // namespace pipe

namespace {

pipe_pair make_pipe_sized(const boost::asio::any_io_executor& ex, std::size_t size,
                          bool size_required, error_code& ec) {
  ec.clear();
  pipe_pair pair{pipe_reader(ex), pipe_writer(ex)};
  int fds[2];
  if (::pipe2(fds, O_CLOEXEC) != 0) {  // blocking until an async call needs otherwise
    ec = last_error();
    return pair;
  }
  unique_fd read_end(fds[0]), write_end(fds[1]);
  if (size != 0 && ::fcntl(write_end.get(), F_SETPIPE_SZ, static_cast<int>(size)) < 0 &&
      size_required) {
    ec = last_error();
    return pair;
  }
  pair.reader.assign(std::move(read_end), ec);
  if (!ec) pair.writer.assign(std::move(write_end), ec);
  return pair;
}

}  // namespace

pipe_pair make_pipe(const boost::asio::any_io_executor& ex, error_code& ec) {
  return make_pipe_sized(ex, default_pipe_buffer_size, false, ec);
}

pipe_pair make_pipe(const boost::asio::any_io_executor& ex) {
  error_code ec;
  auto pair = make_pipe(ex, ec);
  if (ec) throw_error(ec, {"pipe", "", "", "", "pipe2"});
  return pair;
}

pipe_pair make_pipe(const boost::asio::any_io_executor& ex, std::size_t buffer_size,
                    error_code& ec) {
  if (buffer_size > static_cast<std::size_t>(INT32_MAX)) {
    ec = ipckit::errc::invalid_argument;
    return {pipe_reader(ex), pipe_writer(ex)};
  }
  return make_pipe_sized(ex, buffer_size, true, ec);
}

pipe_pair make_pipe(const boost::asio::any_io_executor& ex, std::size_t buffer_size) {
  error_code ec;
  auto pair = make_pipe(ex, buffer_size, ec);
  if (ec) throw_error(ec, {"pipe", "", "", "", ec.category() == boost::system::system_category() ? "fcntl" : ""});
  return pair;
}

}  // namespace ipckit
