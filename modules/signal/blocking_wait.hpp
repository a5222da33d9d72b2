// notifier::wait and wait_for: the waiting thread reads the signalfd itself.
#pragma once

#include "subscription.hpp"

#include <chrono>
#include <optional>

namespace ipckit::signal::detail {

/// The next delivery of `sub`: from its queue, or read from the signalfd by this thread
/// (which fans out what it reads to every notifier), or pushed by another reader.
/// nullopt at the deadline, or with `aborted` once the notifier is stopped (or null);
/// `ec` when the wake-up eventfd cannot be made.
std::optional<info> wait_blocking(subscription* sub,
                                  std::optional<std::chrono::steady_clock::time_point> deadline,
                                  bool& aborted, error_code& ec);

}  // namespace ipckit::signal::detail
