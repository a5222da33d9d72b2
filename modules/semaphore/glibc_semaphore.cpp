#include "glibc_semaphore.hpp"

#include <atomic>
#include <bit>
#include <cstring>
#include <linux/futex.h>
#include <sys/syscall.h>
#include <unistd.h>

namespace ipckit::detail::glibc_semaphore {
namespace {

#if defined(__GLIBC__) && (__GLIBC__ > 2 || (__GLIBC__ == 2 && __GLIBC_MINOR__ >= 21))
constexpr bool built_against_glibc_2_21 = true;
#else
constexpr bool built_against_glibc_2_21 = false;
#endif

// The 64-bit layout: the data word fills 8 bytes, the value in its low half. On a
// big-endian target the value word would be the second half; none is supported here.
constexpr bool target_fits = sizeof(void*) == 8 && std::endian::native == std::endian::little &&
                             sizeof(sem_t) >= 16 && alignof(sem_t) >= alignof(std::uint64_t);

constexpr std::uint64_t one_waiter = std::uint64_t{1} << 32;  // SEM_NWAITERS_SHIFT
constexpr int futex_shared = 128;                            // glibc's FUTEX_SHARED

std::atomic_ref<std::uint64_t> data_of(sem_t* sem) noexcept {
  return std::atomic_ref<std::uint64_t>(*reinterpret_cast<std::uint64_t*>(sem));
}

int private_of(const sem_t* sem) noexcept {
  int value = 0;
  std::memcpy(&value, reinterpret_cast<const char*>(sem) + sizeof(std::uint64_t), sizeof value);
  return value;
}

// What sem_init, sem_post, sem_trywait and sem_getvalue do to an unnamed, shared sem_t
// must match the layout, with a waiter counted by hand in the high half.
bool layout_matches() noexcept {
  sem_t sem;
  if (::sem_init(&sem, 1, 5) != 0) return false;
  int value = -1;
  bool ok = load(&sem) == 5 && private_of(&sem) == futex_shared;
  ok = ok && ::sem_post(&sem) == 0 && load(&sem) == 6;
  ok = ok && ::sem_trywait(&sem) == 0 && load(&sem) == 5;
  if (ok) {
    add_waiter(&sem);
    ok = ::sem_getvalue(&sem, &value) == 0 && value == 5 && load(&sem) == (one_waiter | 5);
    data_of(&sem).fetch_sub(one_waiter);
  }
  ::sem_destroy(&sem);
  return ok;
}

}  // namespace

bool protocol_known() noexcept {
  if constexpr (!built_against_glibc_2_21 || !target_fits) {
    return false;
  } else {
    static const bool known = layout_matches();
    return known;
  }
}

bool is_shared(const sem_t* sem) noexcept { return private_of(sem) == futex_shared; }

std::uint32_t* value_word(sem_t* sem) noexcept { return reinterpret_cast<std::uint32_t*>(sem); }

std::uint64_t load(sem_t* sem) noexcept { return data_of(sem).load(std::memory_order_relaxed); }

std::uint64_t add_waiter(sem_t* sem) noexcept {
  // Relaxed, as glibc's: the CAS that takes a unit is what synchronises with sem_post.
  return data_of(sem).fetch_add(one_waiter, std::memory_order_relaxed) + one_waiter;
}

bool take_as_waiter(sem_t* sem, std::uint64_t& data) noexcept {
  auto word = data_of(sem);
  while (value_of(data) > 0)
    if (word.compare_exchange_weak(data, data - 1 - one_waiter, std::memory_order_acquire, std::memory_order_relaxed))
      return true;
  return false;
}

void remove_waiter(sem_t* sem) noexcept {
  const std::uint64_t before = data_of(sem).fetch_sub(one_waiter, std::memory_order_relaxed);
  const auto others = (before >> 32) - 1;
  // At worst a spurious wake: the woken waiter looks, finds nothing and sleeps again.
  if (value_of(before) > 0 && others > 0)
    ::syscall(SYS_futex, value_word(sem), FUTEX_WAKE, 1, nullptr, nullptr, 0);
}

}  // namespace ipckit::detail::glibc_semaphore
