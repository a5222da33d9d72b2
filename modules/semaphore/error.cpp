#include <ipckit/semaphore.hpp>

namespace ipckit {
namespace {

class semaphore_category_impl : public boost::system::error_category {
 public:
  const char* name() const noexcept override { return "ipckit.semaphore"; }
  std::string message(int value) const override {
    switch (static_cast<semaphore_errc>(value)) {
      case semaphore_errc::invalid_name:
        return "invalid name: want \"/name\" with no other slash, at most 251 characters";
      case semaphore_errc::value_too_large: return "semaphore value too large";
      case semaphore_errc::not_owner: return "semaphore exists and belongs to another user";
    }
    return "unknown semaphore error " + std::to_string(value);
  }
};

}  // namespace

const boost::system::error_category& semaphore_category() noexcept {
  static const semaphore_category_impl instance;
  return instance;
}

error_code make_error_code(semaphore_errc e) noexcept {
  return {static_cast<int>(e), semaphore_category()};
}

}  // namespace ipckit
