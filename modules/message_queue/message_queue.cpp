#include <ipckit/message_queue.hpp>

#include <cerrno>
#include <climits>
#include <ctime>
#include <fcntl.h>
#include <mqueue.h>
#include <poll.h>
#include <sys/stat.h>
#include <unistd.h>

namespace ipckit {
namespace {

using clock = std::chrono::steady_clock;

// Why a send or receive cannot start: a closed queue, or a size the queue rules out.
error_code send_precondition(bool open, std::size_t size, long message_size) {
  if (!open) return errc::closed;
  if (static_cast<long>(size) > message_size) return errc::message_too_large;
  return {};
}

error_code receive_precondition(bool open, std::size_t buffer_size, long message_size) {
  if (!open) return errc::closed;
  // The kernel refuses any buffer shorter than the message size, even for a short
  // message; say so plainly instead of "message too long".
  if (static_cast<long>(buffer_size) < message_size) return message_queue_errc::buffer_too_small;
  return {};
}

error_code check_name(std::string_view name) {
  return valid_ipc_name(name) ? error_code() : error_code(message_queue_errc::invalid_name);
}

// Waits until the descriptor is ready for `events` or the deadline passes (none: forever).
void wait_ready(int fd, short events, std::optional<clock::time_point> deadline, error_code& ec) {
  ec.clear();
  for (;;) {
    int timeout_ms = -1;
    if (deadline) {
      const auto left = std::chrono::ceil<std::chrono::milliseconds>(*deadline - clock::now());
      if (left.count() <= 0) {
        ec = errc::timeout;
        return;
      }
      timeout_ms = static_cast<int>(std::min<long long>(left.count(), INT_MAX));
    }
    pollfd ready{fd, events, 0};
    const int polled = ::poll(&ready, 1, timeout_ms);
    if (polled > 0) return;
    if (polled < 0 && errno != EINTR) {
      ec = last_error();
      return;
    }
  }
}

// An absolute timeout already past: on a blocking description mq_timedsend and
// mq_timedreceive then fail at once with ETIMEDOUT instead of waiting (the kernel takes a
// zero expiry without arming a timer), so a try needs no O_NONBLOCK.
const timespec no_wait{0, 0};

}  // namespace

bool valid_ipc_name(std::string_view name) noexcept {
  return name.size() >= 2 && name.size() <= NAME_MAX + 1 && name[0] == '/' &&
         name.find('/', 1) == std::string_view::npos && name.find('\0') == std::string_view::npos;
}

void message_queue::fail(const error_code& ec, std::string_view op, std::string_view syscall) const {
  const bool ours = ec.category() != boost::system::system_category();
  throw_error(ec, {std::string(op), "", "", name_, ours ? "" : std::string(syscall)});
}

void message_queue::create(std::string_view name, const message_queue_options& options, error_code& ec) {
  ec = check_name(name);
  if (ec) return;
  if (options.attributes.max_messages <= 0 || options.attributes.message_size <= 0) {
    ec = errc::invalid_argument;
    return;
  }
  const std::string path(name);
  mq_attr attributes{};
  attributes.mq_maxmsg = options.attributes.max_messages;
  attributes.mq_msgsize = options.attributes.message_size;
  const int flags = O_RDWR | O_CLOEXEC;
  mqd_t fd = ::mq_open(path.c_str(), flags | O_CREAT | O_EXCL, options.mode, &attributes);
  if (fd < 0 && errno == EEXIST && !options.exclusive) {
    message_queue_options existing = options;
    existing.require_owner = true;  // someone else's queue under our name is an attack
    open(name, existing, ec);
    return;
  }
  if (fd < 0) {
    ec = last_error();
    return;
  }
  // mq_open applies the umask; the mode asked for is the mode the queue gets.
  ::fchmod(fd, options.mode);
  adopt(fd, path, options.attributes.message_size, ec);
}

void message_queue::adopt(int fd, const std::string& path, long message_size, error_code& ec) {
  ec.clear();
  close();
  descriptor_.assign(fd);
  non_blocking_ = false;
  name_ = path;
  message_size_ = message_size;
}

void message_queue::create(std::string_view name, const message_queue_options& options) {
  error_code ec;
  create(name, options, ec);
  if (ec) {
    name_ = name;
    fail(ec, "create", "mq_open");
  }
}

void message_queue::open(std::string_view name, const message_queue_options& options, error_code& ec) {
  ec = check_name(name);
  if (ec) return;
  const std::string path(name);
  mqd_t fd = ::mq_open(path.c_str(), O_RDWR | O_CLOEXEC);
  if (fd < 0) {
    ec = last_error();
    return;
  }
  struct stat status {};
  mq_attr attributes{};
  if (::fstat(fd, &status) != 0 || ::mq_getattr(fd, &attributes) != 0) {
    ec = last_error();
    ::mq_close(fd);
    return;
  }
  if (options.require_owner && status.st_uid != ::geteuid()) {
    ::mq_close(fd);
    ec = message_queue_errc::not_owner;
    return;
  }
  adopt(fd, path, attributes.mq_msgsize, ec);
}

void message_queue::open(std::string_view name, const message_queue_options& options) {
  error_code ec;
  open(name, options, ec);
  if (ec) {
    name_ = name;
    fail(ec, "open", "mq_open");
  }
}

void message_queue::close() noexcept {
  descriptor_.close();  // an mqd_t is a descriptor: close() is mq_close()
  message_size_ = 0;
  non_blocking_ = false;
}

void message_queue::use_non_blocking() noexcept {
  if (non_blocking_ || !is_open()) return;
  mq_attr attributes{};
  attributes.mq_flags = O_NONBLOCK;
  // On failure the attempts still never block: they use a zero timeout.
  non_blocking_ = ::mq_setattr(native_handle(), &attributes, nullptr) == 0;
}

message_queue_attributes message_queue::attributes(error_code& ec) {
  ec.clear();
  mq_attr attributes{};
  if (!is_open()) {
    ec = errc::closed;
    return {};
  }
  if (::mq_getattr(native_handle(), &attributes) != 0) {
    ec = last_error();
    return {};
  }
  return {attributes.mq_maxmsg, attributes.mq_msgsize, attributes.mq_curmsgs};
}

message_queue_attributes message_queue::attributes() {
  error_code ec;
  auto result = attributes(ec);
  if (ec) fail(ec, "attributes", "mq_getattr");
  return result;
}

uid_t message_queue::owner(error_code& ec) {
  ec.clear();
  struct stat status {};
  if (::fstat(native_handle(), &status) != 0) ec = last_error();
  return status.st_uid;
}

mode_t message_queue::mode(error_code& ec) {
  ec.clear();
  struct stat status {};
  if (::fstat(native_handle(), &status) != 0) ec = last_error();
  return status.st_mode & 07777;
}

void message_queue::try_send(boost::asio::const_buffer message, unsigned priority, error_code& ec) {
  ec = send_precondition(is_open(), message.size(), message_size_);
  if (ec) return;
  const char* data = static_cast<const char*>(message.data());
  for (;;) {
    const int sent = non_blocking_ ? ::mq_send(native_handle(), data, message.size(), priority)
                                   : ::mq_timedsend(native_handle(), data, message.size(), priority, &no_wait);
    if (sent == 0) return;
    if (errno == EINTR) continue;
    ec = errno == EAGAIN || errno == ETIMEDOUT ? error_code(boost::asio::error::would_block) : last_error();
    return;
  }
}

bool message_queue::try_send(boost::asio::const_buffer message, unsigned priority) {
  error_code ec;
  try_send(message, priority, ec);
  if (ec == boost::asio::error::would_block) return false;
  if (ec) fail(ec, "send", "mq_send");
  return true;
}

void message_queue::send(boost::asio::const_buffer message, unsigned priority, error_code& ec) {
  ec = send_precondition(is_open(), message.size(), message_size_);
  if (ec) return;
  // One blocking mq_send; EAGAIN only once an async operation made the description
  // non-blocking, and then readiness is waited for here.
  for (;;) {
    if (::mq_send(native_handle(), static_cast<const char*>(message.data()), message.size(), priority) == 0)
      return;
    if (errno == EINTR) continue;
    if (errno != EAGAIN) {
      ec = last_error();
      return;
    }
    wait_ready(native_handle(), POLLOUT, std::nullopt, ec);
    if (ec) return;
  }
}

void message_queue::send(boost::asio::const_buffer message, unsigned priority) {
  error_code ec;
  send(message, priority, ec);
  if (ec) fail(ec, "send", "mq_send");
}

void message_queue::send_for(boost::asio::const_buffer message, unsigned priority,
                             std::chrono::nanoseconds timeout, error_code& ec) {
  const auto deadline = clock::now() + timeout;
  for (;;) {
    try_send(message, priority, ec);
    if (ec != boost::asio::error::would_block) return;
    wait_ready(native_handle(), POLLOUT, deadline, ec);
    if (ec) return;
  }
}

void message_queue::send_for(boost::asio::const_buffer message, unsigned priority,
                             std::chrono::nanoseconds timeout) {
  error_code ec;
  send_for(message, priority, timeout, ec);
  if (ec) fail(ec, "send", "mq_send");
}

received_message message_queue::try_receive(boost::asio::mutable_buffer buffer, error_code& ec) {
  ec = receive_precondition(is_open(), buffer.size(), message_size_);
  if (ec) return {};
  char* data = static_cast<char*>(buffer.data());
  for (;;) {
    unsigned priority = 0;
    const ssize_t n = non_blocking_ ? ::mq_receive(native_handle(), data, buffer.size(), &priority)
                                    : ::mq_timedreceive(native_handle(), data, buffer.size(), &priority, &no_wait);
    if (n >= 0) return {static_cast<std::size_t>(n), priority};
    if (errno == EINTR) continue;
    ec = errno == EAGAIN || errno == ETIMEDOUT ? error_code(boost::asio::error::would_block) : last_error();
    return {};
  }
}

std::optional<received_message> message_queue::try_receive(boost::asio::mutable_buffer buffer) {
  error_code ec;
  auto got = try_receive(buffer, ec);
  if (ec == boost::asio::error::would_block) return std::nullopt;
  if (ec) fail(ec, "receive", "mq_receive");
  return got;
}

received_message message_queue::receive(boost::asio::mutable_buffer buffer, error_code& ec) {
  ec = receive_precondition(is_open(), buffer.size(), message_size_);
  if (ec) return {};
  // As send: one blocking mq_receive, or (non-blocking description) EAGAIN and a wait.
  for (;;) {
    unsigned priority = 0;
    const ssize_t n = ::mq_receive(native_handle(), static_cast<char*>(buffer.data()), buffer.size(), &priority);
    if (n >= 0) return {static_cast<std::size_t>(n), priority};
    if (errno == EINTR) continue;
    if (errno != EAGAIN) {
      ec = last_error();
      return {};
    }
    wait_ready(native_handle(), POLLIN, std::nullopt, ec);
    if (ec) return {};
  }
}

received_message message_queue::receive(boost::asio::mutable_buffer buffer) {
  error_code ec;
  auto got = receive(buffer, ec);
  if (ec) fail(ec, "receive", "mq_receive");
  return got;
}

received_message message_queue::receive_for(boost::asio::mutable_buffer buffer,
                                            std::chrono::nanoseconds timeout, error_code& ec) {
  const auto deadline = clock::now() + timeout;
  for (;;) {
    auto got = try_receive(buffer, ec);
    if (ec != boost::asio::error::would_block) return got;
    wait_ready(native_handle(), POLLIN, deadline, ec);
    if (ec) return {};
  }
}

received_message message_queue::receive_for(boost::asio::mutable_buffer buffer,
                                            std::chrono::nanoseconds timeout) {
  error_code ec;
  auto got = receive_for(buffer, timeout, ec);
  if (ec) fail(ec, "receive", "mq_receive");
  return got;
}

queue_message message_queue::receive() {
  std::string data(static_cast<std::size_t>(message_size_), '\0');
  auto got = receive(boost::asio::buffer(data));
  data.resize(got.size);
  return {std::move(data), got.priority};
}

std::optional<queue_message> message_queue::receive_for(std::chrono::nanoseconds timeout) {
  std::string data(static_cast<std::size_t>(message_size_), '\0');
  error_code ec;
  auto got = receive_for(boost::asio::buffer(data), timeout, ec);
  if (ec == errc::timeout) return std::nullopt;
  if (ec) fail(ec, "receive", "mq_receive");
  data.resize(got.size);
  return queue_message{std::move(data), got.priority};
}

void message_queue::unlink(std::string_view name, error_code& ec) {
  ec = check_name(name);
  if (ec) return;
  if (::mq_unlink(std::string(name).c_str()) != 0) ec = last_error();
}

void message_queue::unlink(std::string_view name) {
  error_code ec;
  unlink(name, ec);
  if (ec)
    throw_error(ec, {"unlink", "", "", std::string(name),
                     ec.category() == boost::system::system_category() ? "mq_unlink" : ""});
}

}  // namespace ipckit
