// An Asio buffer sequence as the iovecs of one readv/writev/recvmsg/sendmsg. Internal:
// the pipe and net modules' templates use it; users never include this header.
#pragma once

#include <boost/asio/buffer.hpp>

#include <array>
#include <cstddef>
#include <sys/uio.h>

namespace ipckit::detail {

/// Up to 64 non-empty buffers of a sequence (Asio's own limit per call; more are left for
/// the next call, which a read_some/write_some may do).
struct iovec_array {
  static constexpr int max = 64;
  // Left uninitialised: only the first `count` are used, and zeroing 1 KiB per call
  // was a measurable part of a 64-byte read or write (docs/performance-findings.md, finding 3).
  std::array<::iovec, max> iov;
  int count = 0;
  std::size_t total = 0;

  template <class Buffers>
  explicit iovec_array(const Buffers& buffers) {
    for (auto it = boost::asio::buffer_sequence_begin(buffers);
         it != boost::asio::buffer_sequence_end(buffers) && count < max; ++it) {
      auto b = boost::asio::buffer(*it);
      if (b.size() == 0) continue;
      iov[static_cast<std::size_t>(count)] = {const_cast<void*>(static_cast<const void*>(b.data())),
                                              b.size()};
      ++count;
      total += b.size();
    }
  }
};

}  // namespace ipckit::detail
