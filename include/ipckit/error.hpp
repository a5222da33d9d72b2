// ipckit's error model: Boost.System codes, Go-style messages.
//
// Every fallible call comes in two forms, as in Asio: one throws ipckit::system_error,
// one takes ipckit::error_code& as its last argument. errno values stay in the system
// category; each module adds one `errc` enum of its own. A thrown error's what() reads
// like Go's net.OpError: "dial tcp 127.0.0.1:1: connect: connection refused".
#pragma once

#include <boost/system/error_code.hpp>
#include <boost/system/system_error.hpp>

#include <string>
#include <string_view>

namespace ipckit {

using error_code = boost::system::error_code;
using system_error = boost::system::system_error;

/// Where a failed call happened; the fields of Go's net.OpError plus the system call.
/// Empty fields are left out of the message.
struct error_context {
  std::string op;       ///< "dial", "listen", "read", "open", "lock" …
  std::string net;      ///< "tcp", "unix", "fifo" … (may be empty)
  std::string source;   ///< local address, printed as "source->address" (may be empty)
  std::string address;  ///< the address, path or name the call was about (may be empty)
  std::string syscall;  ///< "connect", "bind", "mq_open" … (may be empty)
};

/// The error's text as Go prints it: "connection refused", "EOF", "i/o timeout".
std::string error_text(const error_code& ec);

/// "op net source->address: syscall: text", leaving out what is empty.
std::string format_error(const error_context& where, const error_code& ec);

/// The exception every throwing ipckit call raises. Catch it as ipckit::system_error;
/// code() is the error, what() the Go-style message, where() the context.
class op_error : public system_error {
 public:
  op_error(const error_code& ec, error_context where);
  const char* what() const noexcept override { return message_.c_str(); }
  const error_context& where() const noexcept { return where_; }

 private:
  error_context where_;
  std::string message_;
};

[[noreturn]] void throw_error(const error_code& ec, error_context where);

/// errno as an error_code in the system category.
error_code last_error() noexcept;

/// Errors of the toolkit itself, shared by every module.
enum class errc {
  timeout = 1,        ///< a deadline passed: "i/o timeout" (Go's os.ErrDeadlineExceeded)
  closed,             ///< the object was closed: "use of closed file or connection"
  message_too_large,  ///< a size cap was hit before anything was allocated
  invalid_argument,   ///< a caller's value is out of range; the context says which
  interrupted_child,  ///< reserved for the process module
};

const boost::system::error_category& category() noexcept;
error_code make_error_code(errc e) noexcept;

}  // namespace ipckit

template <>
struct boost::system::is_error_code_enum<ipckit::errc> : std::true_type {};
