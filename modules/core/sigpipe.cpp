#include <ipckit/detail/sigpipe.hpp>

#include <atomic>

namespace ipckit::detail {
namespace {
std::atomic<bool> ignored_through_ipckit{false};
}

bool sigpipe_ignored() noexcept { return ignored_through_ipckit.load(std::memory_order_acquire); }

void set_sigpipe_ignored(bool ignored) noexcept {
  ignored_through_ipckit.store(ignored, std::memory_order_release);
}

}  // namespace ipckit::detail
