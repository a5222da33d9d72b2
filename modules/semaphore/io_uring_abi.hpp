// The little of io_uring that named semaphores' async waits use, by raw system calls:
// Debian 12 ships neither liburing with futex helpers nor headers that know
// IORING_OP_FUTEX_WAIT (linux-libc-dev 6.1; the operation came in Linux 6.7). The
// structures are the 6.1 header's; what it lacks is defined here, with the values of
// the kernel's include/uapi/linux/io_uring.h and futex.h.
#pragma once

#include <cstdint>
#include <linux/futex.h>
#include <linux/io_uring.h>
#include <sys/syscall.h>
#include <unistd.h>

namespace ipckit::detail::uring {

/// IORING_OP_FUTEX_WAIT (Linux 6.7): sqe.addr = the futex word, sqe.addr2 (`off`) = the
/// value it must hold to sleep, sqe.addr3 = the wake bitset, sqe.fd = futex2 flags,
/// sqe.futex_flags (the union with rw_flags) = 0. Completes with 0 when woken, -EAGAIN
/// when the word did not hold the value, -ECANCELED when cancelled.
inline constexpr std::uint8_t op_futex_wait = 51;
/// FUTEX2_SIZE_U32. FUTEX2_PRIVATE (128) is left out on purpose: a named semaphore's
/// word is shared between processes, and glibc's sem_post wakes it as a shared futex.
inline constexpr std::uint32_t futex2_size_u32 = 0x02;
/// The bitset of a plain FUTEX_WAKE, which is what sem_post sends.
inline constexpr std::uint64_t futex_match_any = FUTEX_BITSET_MATCH_ANY;

inline int setup(unsigned entries, io_uring_params* params) noexcept {
  return static_cast<int>(::syscall(__NR_io_uring_setup, entries, params));
}

/// io_uring_enter(2); -1 and errno on failure.
inline int enter(int fd, unsigned to_submit, unsigned min_complete, unsigned flags, const void* arg = nullptr,
                 std::size_t arg_size = 0) noexcept {
  return static_cast<int>(::syscall(__NR_io_uring_enter, fd, to_submit, min_complete, flags, arg, arg_size));
}

}  // namespace ipckit::detail::uring
