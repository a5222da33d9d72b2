#include <ipckit/message.hpp>

namespace ipckit::message {
namespace {

class message_category : public boost::system::error_category {
 public:
  const char* name() const noexcept override { return "ipckit.message"; }
  std::string message(int value) const override {
    switch (static_cast<errc>(value)) {
      case errc::malformed_json: return "malformed JSON";
      case errc::unexpected_eof: return "unexpected EOF";
      case errc::short_write: return "short write";
    }
    return "unknown message error " + std::to_string(value);
  }
};

}  // namespace

const boost::system::error_category& category() noexcept {
  static const message_category instance;
  return instance;
}

error_code make_error_code(errc e) noexcept { return {static_cast<int>(e), category()}; }

}  // namespace ipckit::message
