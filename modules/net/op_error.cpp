// Go-style error texts for the net module's throwing calls.
#include "net_internal.hpp"

namespace ipckit::net::detail {
namespace {

class net_op_error : public op_error {
 public:
  net_op_error(const error_code& ec, error_context where, std::string text)
      : op_error(ec, std::move(where)), text_(std::move(text)) {}
  const char* what() const noexcept override { return text_.c_str(); }

 private:
  std::string text_;
};

}  // namespace

void throw_op(const error_code& ec, error_context where) {
  if (ec != errc::unknown_network) throw_error(ec, std::move(where));
  std::string text = format_error(where, ec) + " " + where.net;
  throw net_op_error(ec, std::move(where), std::move(text));
}

void throw_address_error(std::string_view op, std::string_view net, std::string_view addr,
                         const error_code& ec) {
  throw_op(ec, {std::string(op), std::string(net), "", "", "address " + std::string(addr)});
}

void throw_network_error(std::string_view op, std::string_view net, std::string_view addr,
                         const error_code& ec) {
  throw_op(ec, {std::string(op), std::string(net), "", std::string(addr), ""});
}

error_context resolve_context(std::string_view op, std::string_view net, std::string_view addr,
                              const error_code& ec, std::string_view detail_text) {
  error_context where{std::string(op), std::string(net), "", "", ""};
  if (ec == errc::unknown_network) {
    where.address = addr;
  } else if (ec == errc::unknown_port || ec == errc::no_such_host) {
    where.syscall = "lookup " + std::string(detail_text);
  } else if (ec.category() == category()) {
    where.syscall = "address " + std::string(detail_text.empty() ? addr : detail_text);
  } else {
    where.address = addr;
  }
  return where;
}

}  // namespace ipckit::net::detail
