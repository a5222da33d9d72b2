// Anonymous pipes and named pipes (FIFOs) on the event loop: Go's os.Pipe and mkfifo.
//
// pipe_reader and pipe_writer model Asio's SyncReadStream/AsyncReadStream and
// SyncWriteStream/AsyncWriteStream, so boost::asio::read/write/async_read work on them.
// Every descriptor is close-on-exec and starts in blocking mode until an async call or a
// deadline sets O_NONBLOCK (docs/pipe.md); a write to a pipe whose reader is gone fails
// with broken_pipe and never raises SIGPIPE.
//
// Thread safety: as Asio's I/O objects. One read (or one write) at a time per object;
// the object must outlive its pending operations.
#pragma once

#include <ipckit/detail/pipe_io.hpp>
#include <ipckit/error.hpp>
#include <ipckit/unique_fd.hpp>

#include <boost/asio/any_io_executor.hpp>
#include <boost/asio/associated_cancellation_slot.hpp>
#include <boost/asio/async_result.hpp>
#include <boost/asio/dispatch.hpp>
#include <boost/asio/executor_work_guard.hpp>
#include <boost/asio/read.hpp>
#include <boost/asio/write.hpp>

#include <chrono>
#include <filesystem>
#include <functional>
#include <memory>
#include <sys/types.h>
#include <type_traits>
#include <utility>

namespace ipckit {

namespace pipe {
/// Errors of the pipe module (besides errno values in the system category).
enum class errc {
  not_a_fifo = 1,  ///< make_fifo on a path that exists and is something else
};
const boost::system::error_category& category() noexcept;
error_code make_error_code(errc e) noexcept;
}  // namespace pipe

/// The pipe buffer make_pipe asks for unless told otherwise: 1 MiB streams about three
/// times faster than the kernel's 64 KiB (docs/pipe.md). The kernel only allocates pages
/// as data waits in the pipe; when the request is refused (fs.pipe-max-size,
/// pipe-user-pages-soft) the pipe keeps the kernel's size.
inline constexpr std::size_t default_pipe_buffer_size = std::size_t(1) << 20;

/// The read end of a pipe or FIFO.
class pipe_reader : public detail::pipe_end {
 public:
  using detail::pipe_end::pipe_end;

  template <class MutableBuffers>
  std::size_t read_some(const MutableBuffers& buffers, error_code& ec) {
    detail::iovec_array iov(buffers);
    return io(iov, false, ec);
  }
  template <class MutableBuffers>
  std::size_t read_some(const MutableBuffers& buffers) {
    error_code ec;
    const std::size_t n = read_some(buffers, ec);
    if (ec) fail("read", ec);
    return n;
  }
  /// Completes with (error_code, std::size_t); EOF is boost::asio::error::eof.
  template <class MutableBuffers, class CompletionToken>
  auto async_read_some(const MutableBuffers& buffers, CompletionToken&& token) {
    return boost::asio::async_initiate<CompletionToken, void(error_code, std::size_t)>(
        detail::initiate_pipe_io<false>{this}, token, buffers);
  }
};

/// The write end of a pipe or FIFO.
class pipe_writer : public detail::pipe_end {
 public:
  using detail::pipe_end::pipe_end;

  template <class ConstBuffers>
  std::size_t write_some(const ConstBuffers& buffers, error_code& ec) {
    detail::iovec_array iov(buffers);
    return io(iov, true, ec);
  }
  template <class ConstBuffers>
  std::size_t write_some(const ConstBuffers& buffers) {
    error_code ec;
    const std::size_t n = write_some(buffers, ec);
    if (ec) fail("write", ec);
    return n;
  }
  /// Completes with (error_code, std::size_t); a gone reader is broken_pipe.
  template <class ConstBuffers, class CompletionToken>
  auto async_write_some(const ConstBuffers& buffers, CompletionToken&& token) {
    return boost::asio::async_initiate<CompletionToken, void(error_code, std::size_t)>(
        detail::initiate_pipe_io<true>{this}, token, buffers);
  }
};

// boost::asio::async_read(reader, buffer, token) and async_write(writer, buffer, token)
// on one buffer with Asio's default transfer_all: Asio's composed operation finds these
// hooks by argument-dependent lookup (its detail::start_read_op and start_write_op, Boost
// 1.81), and they make the whole transfer one attempt instead of an async_read_some per
// part (docs/performance-findings.md, finding 4). Results, cancellation and completion
// are Asio's; other buffer sequences, conditions and ends with a deadline are its own
// composed operation.
template <class MutableBuffers, class Iterator, class ReadHandler>
void start_read_op(pipe_reader& reader, const MutableBuffers& buffers, const Iterator& begin,
                   boost::asio::detail::transfer_all_t& condition, ReadHandler& handler) {
  if constexpr (std::is_convertible_v<const MutableBuffers&, boost::asio::mutable_buffer>) {
    const boost::asio::mutable_buffer b(buffers);
    if (reader.start_whole_transfer(b.data(), b.size(), false, handler)) return;
  }
  boost::asio::detail::start_read_op(reader, buffers, begin, condition, handler);
}

template <class ConstBuffers, class Iterator, class WriteHandler>
void start_write_op(pipe_writer& writer, const ConstBuffers& buffers, const Iterator& begin,
                    boost::asio::detail::transfer_all_t& condition, WriteHandler& handler) {
  if constexpr (std::is_convertible_v<const ConstBuffers&, boost::asio::const_buffer>) {
    const boost::asio::const_buffer b(buffers);
    if (writer.start_whole_transfer(const_cast<void*>(b.data()), b.size(), true, handler)) return;
  }
  boost::asio::detail::start_write_op(writer, buffers, begin, condition, handler);
}

struct pipe_pair {
  pipe_reader reader;
  pipe_writer writer;
};

/// Go's os.Pipe: both ends close-on-exec, on `ex`. buffer_size 0 keeps the kernel's
/// size; the default asks for default_pipe_buffer_size and ignores a refusal, while an
/// explicit size that the kernel refuses is an error.
pipe_pair make_pipe(const boost::asio::any_io_executor& ex, error_code& ec);
pipe_pair make_pipe(const boost::asio::any_io_executor& ex);
pipe_pair make_pipe(const boost::asio::any_io_executor& ex, std::size_t buffer_size,
                    error_code& ec);
pipe_pair make_pipe(const boost::asio::any_io_executor& ex, std::size_t buffer_size);

/// mkfifo with `mode` (0600 unless asked). An existing FIFO is reused (its mode is left
/// as it is); an existing path that is not a FIFO is pipe::errc::not_a_fifo.
void make_fifo(const std::filesystem::path& path, mode_t mode, error_code& ec);
void make_fifo(const std::filesystem::path& path, error_code& ec);
void make_fifo(const std::filesystem::path& path, mode_t mode = 0600);

/// Opens the FIFO for reading at once (never waiting for a writer). Reads wait for data;
/// after a writer has come and gone, a read returns EOF.
pipe_reader open_fifo_reader(const boost::asio::any_io_executor& ex,
                             const std::filesystem::path& path, error_code& ec);
pipe_reader open_fifo_reader(const boost::asio::any_io_executor& ex,
                             const std::filesystem::path& path);

/// A reader for a FIFO that many writers open, write to and close over time (a log or
/// command FIFO). It holds a write end of its own, so the last writer leaving is not an
/// EOF: reads simply wait for the next writer's data. close() ends it.
pipe_reader open_fifo_server(const boost::asio::any_io_executor& ex,
                             const std::filesystem::path& path, error_code& ec);
pipe_reader open_fifo_server(const boost::asio::any_io_executor& ex,
                             const std::filesystem::path& path);

/// Opens the FIFO for writing without ENXIO: if a reader has it open this completes at
/// once, otherwise when a reader appears (watched with inotify, with a slow re-check as a
/// safety net). No thread blocks. timeout <= 0 waits forever; a timeout is
/// ipckit::errc::timeout; cancellation (any type) completes with operation_aborted.
/// A path that is not a FIFO fails with pipe::errc::not_a_fifo.
/// Completes with (error_code, pipe_writer).
template <class CompletionToken>
auto async_open_fifo_writer(const boost::asio::any_io_executor& ex,
                            const std::filesystem::path& path,
                            std::chrono::nanoseconds timeout, CompletionToken&& token) {
  auto initiation = [](auto handler, boost::asio::any_io_executor io_ex,
                       std::filesystem::path fifo, std::chrono::nanoseconds limit) {
    using handler_type = std::decay_t<decltype(handler)>;
    struct holder {
      handler_type handler;
      boost::asio::executor_work_guard<
          boost::asio::associated_executor_t<handler_type, boost::asio::any_io_executor>>
          work;
    };
    auto work = boost::asio::make_work_guard(boost::asio::get_associated_executor(handler, io_ex));
    auto held = std::make_shared<holder>(holder{std::move(handler), std::move(work)});
    auto slot = boost::asio::get_associated_cancellation_slot(held->handler);
    auto waiter = detail::start_fifo_writer_wait(
        io_ex, std::move(fifo), limit, [held, io_ex](error_code ec, unique_fd fd) {
          auto slot = boost::asio::get_associated_cancellation_slot(held->handler);
          if (slot.is_connected()) slot.clear();
          pipe_writer writer(io_ex);
          if (!ec) writer.assign(std::move(fd), ec);
          auto handler_ex = held->work.get_executor();
          boost::asio::dispatch(handler_ex, [held, ec, w = std::make_shared<pipe_writer>(
                                                          std::move(writer))]() mutable {
            auto h = std::move(held->handler);
            held->work.reset();
            std::move(h)(ec, std::move(*w));
          });
        });
    if (slot.is_connected()) {
      std::weak_ptr<detail::fifo_writer_wait> weak = waiter;
      slot.assign([weak](boost::asio::cancellation_type_t) {
        if (auto alive = weak.lock()) alive->cancel();
      });
    }
  };
  return boost::asio::async_initiate<CompletionToken, void(error_code, pipe_writer)>(
      initiation, token, ex, path, timeout);
}

/// The blocking counterpart (Go's os.OpenFile(fifo, O_WRONLY)): waits for a reader, up
/// to `timeout` (<= 0: forever), without touching any event loop.
pipe_writer open_fifo_writer(const boost::asio::any_io_executor& ex,
                             const std::filesystem::path& path,
                             std::chrono::nanoseconds timeout, error_code& ec);
pipe_writer open_fifo_writer(const boost::asio::any_io_executor& ex,
                             const std::filesystem::path& path,
                             std::chrono::nanoseconds timeout = {});

}  // namespace ipckit

template <>
struct boost::system::is_error_code_enum<ipckit::pipe::errc> : std::true_type {};
