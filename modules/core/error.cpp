#include <ipckit/error.hpp>

#include <boost/asio/error.hpp>

#include <cctype>
#include <cerrno>
#include <cstring>

namespace ipckit {
namespace {

// glibc's strerror starts with a capital; Go's messages for the same errno do not
// ("Connection refused" -> "connection refused"). Acronyms ("EOF") keep their case.
std::string lower_first(std::string text) {
  if (text.size() >= 2 && std::isupper(static_cast<unsigned char>(text[0])) &&
      std::islower(static_cast<unsigned char>(text[1])))
    text[0] = static_cast<char>(std::tolower(static_cast<unsigned char>(text[0])));
  return text;
}

class core_category : public boost::system::error_category {
 public:
  const char* name() const noexcept override { return "ipckit"; }
  std::string message(int value) const override {
    switch (static_cast<errc>(value)) {
      case errc::timeout: return "i/o timeout";
      case errc::closed: return "use of closed file or connection";
      case errc::message_too_large: return "message too large";
      case errc::invalid_argument: return "invalid argument";
      case errc::interrupted_child: return "child interrupted";
    }
    return "unknown ipckit error " + std::to_string(value);
  }
};

}  // namespace

const boost::system::error_category& category() noexcept {
  static const core_category instance;
  return instance;
}

error_code make_error_code(errc e) noexcept { return {static_cast<int>(e), category()}; }

error_code last_error() noexcept { return {errno, boost::system::system_category()}; }

std::string error_text(const error_code& ec) {
  if (ec == boost::asio::error::eof) return "EOF";
  if (ec == boost::asio::error::operation_aborted) return "operation was canceled";
  return lower_first(ec.message());
}

std::string format_error(const error_context& where, const error_code& ec) {
  std::string text = where.op;
  auto add = [&text](std::string_view part, std::string_view separator) {
    if (part.empty()) return;
    if (!text.empty()) text += separator;
    text += part;
  };
  add(where.net, " ");
  if (!where.source.empty()) {
    add(where.source, " ");
    text += "->";
    text += where.address;
  } else {
    add(where.address, " ");
  }
  add(where.syscall, ": ");
  add(error_text(ec), ": ");
  return text;
}

op_error::op_error(const error_code& ec, error_context where)
    : system_error(ec), where_(std::move(where)), message_(format_error(where_, ec)) {}

void throw_error(const error_code& ec, error_context where) {
  throw op_error(ec, std::move(where));
}

}  // namespace ipckit
