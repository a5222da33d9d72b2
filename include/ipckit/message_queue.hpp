// message_queue: POSIX message queues on the event loop.
//
// On Linux an mqd_t is a file descriptor that poll/epoll report ready, so the async
// operations wait on the loop itself (no worker threads): a non-blocking
// mq_send/mq_receive at once, and again at each readiness edge while it would block.
// The queue's description stays blocking until the first async operation, so a blocking
// send or receive is one system call.
#pragma once

#include <ipckit/detail/polled_descriptor.hpp>
#include <ipckit/error.hpp>

#include <boost/asio/any_io_executor.hpp>
#include <boost/asio/async_result.hpp>
#include <boost/asio/buffer.hpp>
#include <boost/asio/compose.hpp>

#include <chrono>
#include <cstddef>
#include <memory>
#include <optional>
#include <string>
#include <string_view>
#include <sys/types.h>

namespace ipckit {

/// Errors of the message_queue module (too-large messages are ipckit::errc::message_too_large;
/// a full queue on try_send is boost::asio::error::would_block).
enum class message_queue_errc {
  invalid_name = 1,  ///< not "/name" with no other slash, 1–255 characters after it
  buffer_too_small,  ///< a receive buffer shorter than the queue's message size
  not_owner,         ///< the queue exists and belongs to another user
};
const boost::system::error_category& message_queue_category() noexcept;
error_code make_error_code(message_queue_errc e) noexcept;

/// Is `name` a valid queue (or named semaphore) name: "/" then 1–255 characters, no "/"?
bool valid_ipc_name(std::string_view name) noexcept;

struct message_queue_attributes {
  long max_messages = 10;   ///< the kernel's default limit (fs.mqueue.msg_max) is 10
  long message_size = 8192;
  long current_messages = 0;  ///< read back by attributes(); ignored by create
};

struct message_queue_options {
  message_queue_attributes attributes{};
  mode_t mode = 0600;
  /// Fail with "file exists" if the queue exists already.
  bool exclusive = false;
  /// Refuse a queue that exists and belongs to another user (message_queue_errc::not_owner).
  /// create() always checks; open() checks only when asked.
  bool require_owner = false;
};

/// One received message's size and priority.
struct received_message {
  std::size_t size = 0;
  unsigned priority = 0;
};

/// A whole received message, from receive() without a buffer.
struct queue_message {
  std::string data;
  unsigned priority = 0;
};

/// A handle to a POSIX message queue. Sends and receives block the calling thread
/// (send/receive, with an optional timeout) or run on the loop (async_send,
/// async_receive: Asio async operations, cancellable, every completion token).
///
/// Thread safety: as an Asio I/O object (distinct objects: safe; one object: one
/// operation of each direction at a time, from one thread). The object must not be
/// moved or destroyed while an async operation is pending.
class message_queue {
 public:
  using executor_type = boost::asio::any_io_executor;

  explicit message_queue(const executor_type& ex) : descriptor_(ex) {}
  template <class Context>
    requires requires(Context& c) { executor_type(c.get_executor()); }
  explicit message_queue(Context& context) : descriptor_(executor_type(context.get_executor())) {}

  message_queue(message_queue&&) noexcept = default;
  message_queue& operator=(message_queue&&) noexcept = default;

  executor_type get_executor() noexcept { return descriptor_.get_executor(); }

  /// Creates the queue (or opens it if it exists and is ours, unless exclusive).
  /// An existing queue of another owner is refused with not_owner.
  void create(std::string_view name, const message_queue_options& options, error_code& ec);
  void create(std::string_view name, const message_queue_options& options = {});
  /// Opens an existing queue for sending and receiving.
  void open(std::string_view name, const message_queue_options& options, error_code& ec);
  void open(std::string_view name, const message_queue_options& options = {});

  bool is_open() const noexcept { return descriptor_.is_open(); }
  void close() noexcept;
  const std::string& name() const noexcept { return name_; }
  int native_handle() noexcept { return descriptor_.native_handle(); }

  /// The queue's limits and how many messages it holds now.
  message_queue_attributes attributes(error_code& ec);
  message_queue_attributes attributes();
  /// The queue's owner uid and mode bits (from fstat on the descriptor).
  uid_t owner(error_code& ec);
  mode_t mode(error_code& ec);

  /// Sends, blocking while the queue is full; with a timeout, errc::timeout when it
  /// passes. A message over the queue's message size is errc::message_too_large.
  void send(boost::asio::const_buffer message, unsigned priority, error_code& ec);
  void send(boost::asio::const_buffer message, unsigned priority = 0);
  void send_for(boost::asio::const_buffer message, unsigned priority,
                std::chrono::nanoseconds timeout, error_code& ec);
  void send_for(boost::asio::const_buffer message, unsigned priority, std::chrono::nanoseconds timeout);
  /// Sends if there is room now; otherwise boost::asio::error::would_block (the
  /// throwing form returns false instead).
  void try_send(boost::asio::const_buffer message, unsigned priority, error_code& ec);
  bool try_send(boost::asio::const_buffer message, unsigned priority = 0);

  /// Receives the highest-priority oldest message into `buffer`, which must be at least
  /// the queue's message size (message_queue_errc::buffer_too_small).
  received_message receive(boost::asio::mutable_buffer buffer, error_code& ec);
  received_message receive(boost::asio::mutable_buffer buffer);
  received_message receive_for(boost::asio::mutable_buffer buffer, std::chrono::nanoseconds timeout,
                               error_code& ec);
  received_message receive_for(boost::asio::mutable_buffer buffer, std::chrono::nanoseconds timeout);
  /// Receives if a message is there now; otherwise would_block (throwing form: nullopt).
  received_message try_receive(boost::asio::mutable_buffer buffer, error_code& ec);
  std::optional<received_message> try_receive(boost::asio::mutable_buffer buffer);
  /// Receives into a string of the queue's message size.
  queue_message receive();
  std::optional<queue_message> receive_for(std::chrono::nanoseconds timeout);

  /// Sends on the loop: waits for room, then sends. Completes with void(error_code).
  /// The message bytes must stay valid until completion.
  template <class CompletionToken = boost::asio::default_completion_token_t<executor_type>>
  auto async_send(boost::asio::const_buffer message, unsigned priority,
                  CompletionToken&& token = boost::asio::default_completion_token_t<executor_type>()) {
    use_non_blocking();
    return descriptor_.async_attempt<void>(detail::attempt_direction::write, send_attempt{this, message, priority},
                                           std::forward<CompletionToken>(token));
  }

  /// Receives on the loop. Completes with void(error_code, received_message).
  template <class CompletionToken = boost::asio::default_completion_token_t<executor_type>>
  auto async_receive(boost::asio::mutable_buffer buffer,
                     CompletionToken&& token = boost::asio::default_completion_token_t<executor_type>()) {
    use_non_blocking();
    return descriptor_.async_attempt<received_message>(detail::attempt_direction::read, receive_attempt{this, buffer},
                                                       std::forward<CompletionToken>(token));
  }

  /// Cancels pending async operations (they complete with operation_aborted).
  void cancel() { descriptor_.cancel(); }

  // ---- as a packet stream: one message per call, as a unixpacket net::conn ----
  // So that what takes an Asio stream of datagrams works on a queue: json_channel with
  // framing::datagram (one JSON message per queue message). Writes send the first
  // non-empty buffer of the sequence as one message, priority 0, and return its size
  // (a shorter count than the sequence holds, as write_some may); reads receive the
  // highest-priority message into the first buffer, which must hold the queue's message
  // size (message_queue_errc::buffer_too_small). The sync forms block while the queue is
  // full or empty; the async forms wait on the loop as async_send/async_receive do.
  template <class ConstBuffers>
  std::size_t write_some(const ConstBuffers& buffers, error_code& ec) {
    const boost::asio::const_buffer message = first_buffer<boost::asio::const_buffer>(buffers);
    send(message, 0, ec);
    return ec ? 0 : message.size();
  }
  template <class MutableBuffers>
  std::size_t read_some(const MutableBuffers& buffers, error_code& ec) {
    return receive(first_buffer<boost::asio::mutable_buffer>(buffers), ec).size;
  }
  /// Completes with void(error_code, std::size_t).
  template <class ConstBuffers, class CompletionToken>
  auto async_write_some(const ConstBuffers& buffers, CompletionToken&& token) {
    return boost::asio::async_compose<CompletionToken, void(error_code, std::size_t)>(
        write_some_op{this, first_buffer<boost::asio::const_buffer>(buffers)}, token, descriptor_);
  }
  /// Completes with void(error_code, std::size_t).
  template <class MutableBuffers, class CompletionToken>
  auto async_read_some(const MutableBuffers& buffers, CompletionToken&& token) {
    return boost::asio::async_compose<CompletionToken, void(error_code, std::size_t)>(
        read_some_op{this, first_buffer<boost::asio::mutable_buffer>(buffers)}, token, descriptor_);
  }

  /// Removes the name; processes that have the queue open keep using it.
  static void unlink(std::string_view name, error_code& ec);
  static void unlink(std::string_view name);

 private:
  // The first non-empty buffer of a sequence (an empty one if all are empty).
  template <class Buffer, class Buffers>
  static Buffer first_buffer(const Buffers& buffers) {
    const auto end = boost::asio::buffer_sequence_end(buffers);
    for (auto it = boost::asio::buffer_sequence_begin(buffers); it != end; ++it) {
      const Buffer buffer(*it);
      if (buffer.size() > 0) return buffer;
    }
    return Buffer();
  }

  struct write_some_op {
    message_queue* queue;
    boost::asio::const_buffer message;
    template <class Self>
    void operator()(Self& self) {
      queue->async_send(message, 0, std::move(self));
    }
    template <class Self>
    void operator()(Self& self, error_code ec) {
      self.complete(ec, ec ? 0 : message.size());
    }
  };

  struct read_some_op {
    message_queue* queue;
    boost::asio::mutable_buffer buffer;
    template <class Self>
    void operator()(Self& self) {
      queue->async_receive(buffer, std::move(self));
    }
    template <class Self>
    void operator()(Self& self, error_code ec, received_message got) {
      self.complete(ec, ec ? 0 : got.size);
    }
  };

  // The attempts of async_send/async_receive: false while the queue is full/empty.
  struct send_attempt {
    message_queue* queue;
    boost::asio::const_buffer message;
    unsigned priority;
    bool operator()(error_code& ec) const {
      queue->try_send(message, priority, ec);
      return ec != boost::asio::error::would_block;
    }
  };

  struct receive_attempt {
    message_queue* queue;
    boost::asio::mutable_buffer buffer;
    bool operator()(error_code& ec, received_message& got) const {
      got = queue->try_receive(buffer, ec);
      return ec != boost::asio::error::would_block;
    }
  };

  // Sets O_NONBLOCK on the queue's description once (mq_setattr), for the attempts of the
  // async operations; until then blocking calls block in the kernel and try_* calls are
  // made non-blocking with a zero timeout.
  void use_non_blocking() noexcept;

  void fail(const error_code& ec, std::string_view op, std::string_view syscall) const;
  void adopt(int fd, const std::string& path, long message_size, error_code& ec);

  detail::polled_descriptor descriptor_;
  std::string name_;
  long message_size_ = 0;
  bool non_blocking_ = false;
};

}  // namespace ipckit

template <>
struct boost::system::is_error_code_enum<ipckit::message_queue_errc> : std::true_type {};
