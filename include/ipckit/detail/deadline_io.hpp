// Internals of ipckit/net.hpp: an asynchronous socket operation bounded by a deadline
// (Go's SetReadDeadline / SetWriteDeadline). Users never include this.
//
// The operation gets a cancellation slot of our own; a timer emits on it at the
// deadline, and the operation's operation_aborted then becomes ipckit::errc::timeout. A
// cancellation slot bound by the caller still cancels (forwarded to ours). The wrapped
// handler keeps the caller's associated executor and allocator.
#pragma once

#include <ipckit/detail/draining_handler.hpp>
#include <ipckit/detail/iovecs.hpp>
#include <ipckit/error.hpp>

#include <boost/asio/any_io_executor.hpp>
#include <boost/asio/append.hpp>
#include <boost/asio/associated_allocator.hpp>
#include <boost/asio/associated_cancellation_slot.hpp>
#include <boost/asio/associated_executor.hpp>
#include <boost/asio/buffer.hpp>
#include <boost/asio/cancellation_signal.hpp>
#include <boost/asio/error.hpp>
#include <boost/asio/post.hpp>
#include <boost/asio/steady_timer.hpp>

#include <chrono>
#include <cstddef>
#include <memory>
#include <utility>

namespace ipckit::net::detail {

/// Shared by the operation's handler and the deadline timer. Both run on the
/// connection's executor (a strand when several threads run the io_context, as Asio
/// requires of a socket), so the flags need no lock.
struct deadline_state {
  explicit deadline_state(const boost::asio::any_io_executor& ex) : timer(ex) {}
  boost::asio::steady_timer timer;
  boost::asio::cancellation_signal cancel;
  bool timed_out = false;
  bool done = false;
};

/// The caller's handler, completing the operation with errc::timeout when the deadline
/// cancelled it.
template <class Handler, class IoExecutor>
class deadline_handler {
 public:
  using executor_type = boost::asio::associated_executor_t<Handler, IoExecutor>;
  using allocator_type = boost::asio::associated_allocator_t<Handler>;
  using cancellation_slot_type = boost::asio::cancellation_slot;

  deadline_handler(Handler handler, IoExecutor io_executor, std::shared_ptr<deadline_state> state)
      : handler_(std::move(handler)), io_executor_(std::move(io_executor)), state_(std::move(state)) {}

  executor_type get_executor() const noexcept {
    return boost::asio::get_associated_executor(handler_, io_executor_);
  }
  allocator_type get_allocator() const noexcept {
    return boost::asio::get_associated_allocator(handler_);
  }
  cancellation_slot_type get_cancellation_slot() const noexcept { return state_->cancel.slot(); }

  void operator()(error_code ec, std::size_t bytes) {
    state_->done = true;
    state_->timer.cancel();
    auto caller_slot = boost::asio::get_associated_cancellation_slot(handler_);
    if (caller_slot.is_connected()) caller_slot.clear();
    if (state_->timed_out && ec == boost::asio::error::operation_aborted) ec = ipckit::errc::timeout;
    std::move(handler_)(ec, bytes);
  }

 private:
  Handler handler_;
  IoExecutor io_executor_;
  std::shared_ptr<deadline_state> state_;
};

/// Starts `start(handler)` (a socket's async_read_some or async_write_some) bounded by
/// `deadline`. A deadline already past completes with errc::timeout without starting
/// the operation, as Go's Read and Write fail at once after their deadline.
template <class Handler, class Start>
void start_with_deadline(const boost::asio::any_io_executor& io_executor,
                         std::chrono::steady_clock::time_point deadline, Handler handler,
                         Start start) {
  if (deadline <= std::chrono::steady_clock::now()) {
    auto ex = boost::asio::get_associated_executor(handler, io_executor);
    boost::asio::post(ex, boost::asio::append(std::move(handler), make_error_code(ipckit::errc::timeout),
                                              std::size_t{0}));
    return;
  }
  auto state = std::make_shared<deadline_state>(io_executor);
  auto caller_slot = boost::asio::get_associated_cancellation_slot(handler);
  if (caller_slot.is_connected()) {
    caller_slot.assign([weak = std::weak_ptr<deadline_state>(state)](
                           boost::asio::cancellation_type_t type) {
      if (auto s = weak.lock(); s && !s->done) s->cancel.emit(type);
    });
  }
  state->timer.expires_at(deadline);
  state->timer.async_wait([state](error_code ec) {
    if (ec || state->done) return;
    state->timed_out = true;
    state->cancel.emit(boost::asio::cancellation_type::terminal);
  });
  using timed_handler = deadline_handler<Handler, boost::asio::any_io_executor>;
  start(ipckit::detail::draining(timed_handler(std::move(handler), io_executor, std::move(state))));
}

/// For the blocking forms: waits until the socket is ready for `events` (POLLIN or
/// POLLOUT) or the deadline passes (errc::timeout). False with `ec` set on failure.
bool wait_ready_until(int fd, short events, std::chrono::steady_clock::time_point deadline,
                      error_code& ec);

/// A blocking read or write bounded by `deadline`, as Asio's socket read_some/write_some
/// behave (a 0-byte read or write on a stream is a no-op, 0 bytes read on one is EOF;
/// writes never raise SIGPIPE), but each attempt is recvmsg/sendmsg with MSG_DONTWAIT
/// and waiting is poll: so a deadline works on a descriptor in blocking mode without
/// changing its O_NONBLOCK. A deadline already past fails at once (errc::timeout).
/// `name`/`name_size`, when given, is the datagram's peer: the address sent to, or the
/// buffer the sender's address is received into (its size updated).
std::size_t transfer_until(int fd, bool write, const ipckit::detail::iovec_array& buffers, bool stream,
                           std::chrono::steady_clock::time_point deadline, error_code& ec,
                           void* name = nullptr, socklen_t* name_size = nullptr);

}  // namespace ipckit::net::detail
