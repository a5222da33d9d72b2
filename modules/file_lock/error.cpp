#include <ipckit/file_lock.hpp>

namespace ipckit {
namespace {

class file_lock_category_impl : public boost::system::error_category {
 public:
  const char* name() const noexcept override { return "ipckit.file_lock"; }
  std::string message(int value) const override {
    switch (static_cast<file_lock_errc>(value)) {
      case file_lock_errc::already_running: return "already running";
      case file_lock_errc::invalid_range: return "invalid byte range";
    }
    return "unknown file_lock error " + std::to_string(value);
  }
};

}  // namespace

const boost::system::error_category& file_lock_category() noexcept {
  static const file_lock_category_impl instance;
  return instance;
}

error_code make_error_code(file_lock_errc e) noexcept {
  return {static_cast<int>(e), file_lock_category()};
}

}  // namespace ipckit
