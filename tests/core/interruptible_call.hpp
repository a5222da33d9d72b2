// The blocking call the worker-pool tests interrupt (core_blocking_call, core_blocking_fork).
#pragma once

#include <ipckit/detail/blocking_call.hpp>
#include <ipckit/error.hpp>

#include <cerrno>
#include <poll.h>

namespace ipckit::test {

/// Blocks until the token is cancelled: the shape of every interruptible blocking call
/// (a signal to the worker ends its poll; the token says whether that was the cancel).
inline void block_until_cancelled(const detail::interrupt_token& token, error_code& ec) {
  while (!token.cancelled())
    if (::poll(nullptr, 0, -1) < 0 && errno != EINTR) ec = last_error();
}

}  // namespace ipckit::test
