#include <ipckit/message_queue.hpp>

namespace ipckit {
namespace {

class message_queue_category_impl : public boost::system::error_category {
 public:
  const char* name() const noexcept override { return "ipckit.message_queue"; }
  std::string message(int value) const override {
    switch (static_cast<message_queue_errc>(value)) {
      case message_queue_errc::invalid_name:
        return "invalid name: want \"/name\" with no other slash, at most 255 characters";
      case message_queue_errc::buffer_too_small:
        return "receive buffer smaller than the queue's message size";
      case message_queue_errc::not_owner: return "queue exists and belongs to another user";
    }
    return "unknown message_queue error " + std::to_string(value);
  }
};

}  // namespace

const boost::system::error_category& message_queue_category() noexcept {
  static const message_queue_category_impl instance;
  return instance;
}

error_code make_error_code(message_queue_errc e) noexcept {
  return {static_cast<int>(e), message_queue_category()};
}

}  // namespace ipckit
