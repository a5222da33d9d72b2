// net::errc registered with Boost.System, with Go's texts.
#include <ipckit/net.hpp>

namespace ipckit::net {
namespace {

class net_category : public boost::system::error_category {
 public:
  const char* name() const noexcept override { return "ipckit.net"; }
  std::string message(int value) const override {
    switch (static_cast<errc>(value)) {
      case errc::unknown_network: return "unknown network";
      case errc::unknown_protocol: return "unknown IP protocol specified";
      case errc::missing_address: return "missing address";
      case errc::missing_port: return "missing port in address";
      case errc::too_many_colons: return "too many colons in address";
      case errc::unexpected_bracket: return "unexpected '[' in address";
      case errc::unexpected_closing_bracket: return "unexpected ']' in address";
      case errc::missing_bracket: return "missing ']' in address";
      case errc::invalid_port: return "invalid port";
      case errc::unknown_port: return "unknown port";
      case errc::no_suitable_address: return "no suitable address found";
      case errc::wrong_operation: return "unexpected address type";
      case errc::no_such_host: return "no such host";
      case errc::invalid_address: return "invalid address";
      case errc::path_too_long: return "unix socket path too long (at most 107 bytes)";
      case errc::control_truncated:
        return "control message truncated: received file descriptors were closed";
      case errc::insecure_directory:
        return "insecure directory: not a directory of ours closed to group and others";
    }
    return "unknown ipckit.net error " + std::to_string(value);
  }
};

}  // namespace

const boost::system::error_category& category() noexcept {
  static const net_category instance;
  return instance;
}

error_code make_error_code(errc e) noexcept { return {static_cast<int>(e), category()}; }

}  // namespace ipckit::net
