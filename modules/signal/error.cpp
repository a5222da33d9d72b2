#include <ipckit/signal.hpp>

#include <string>

namespace ipckit::signal {
namespace {

class signal_category : public boost::system::error_category {
 public:
  const char* name() const noexcept override { return "ipckit.signal"; }
  std::string message(int value) const override {
    switch (static_cast<errc>(value)) {
      case errc::unknown_signal: return "unknown signal";
      case errc::reserved_signal: return "signal reserved by ipckit's worker pool";
      case errc::uncatchable_signal: return "signal cannot be caught or ignored";
      case errc::synchronous_signal: return "synchronous fault signal cannot be subscribed to";
      case errc::invalid_pid: return "invalid pid";
    }
    return "unknown ipckit.signal error " + std::to_string(value);
  }
};

}  // namespace

const boost::system::error_category& category() noexcept {
  static const signal_category instance;
  return instance;
}

error_code make_error_code(errc e) noexcept { return {static_cast<int>(e), category()}; }

}  // namespace ipckit::signal
