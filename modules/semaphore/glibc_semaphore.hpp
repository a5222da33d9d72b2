// glibc's sem_t waiter protocol, so that a wait that sleeps somewhere else than in
// sem_wait (an io_uring FUTEX_WAIT on the loop) takes part in it as sem_wait does.
//
// glibc ≥ 2.21 on a 64-bit target (nptl/sem_waitcommon.c, the __HAVE_64B_ATOMICS case):
// sem_t starts with `uint64_t data`, the value in its low 32 bits and the number of
// waiters that may sleep in its high 32 (SEM_NWAITERS_SHIFT), then `int private`
// (FUTEX_SHARED, 128, for a named semaphore). sem_post adds 1 to the value and, if the
// waiter count is not zero, wakes one sleeper with FUTEX_WAKE on the value word. A
// waiter adds itself to the count, then loops: value > 0 → one CAS takes a unit and
// removes it from the count; value 0 → it sleeps on the value word while it is 0.
#pragma once

#include <cstdint>
#include <semaphore.h>

namespace ipckit::detail::glibc_semaphore {

/// True when this process's sem_t is laid out and used as above (checked once: the
/// target, glibc's version, and what sem_init, sem_post and sem_trywait leave in it).
bool protocol_known() noexcept;

/// True for a semaphore whose sleepers use shared futexes (sem_open's always do).
bool is_shared(const sem_t* sem) noexcept;

/// The 32-bit word sleepers wait on and sem_post wakes.
std::uint32_t* value_word(sem_t* sem) noexcept;

/// Counts one more waiter; returns the data word after it.
std::uint64_t add_waiter(sem_t* sem) noexcept;

/// A registered waiter takes a unit and stops being counted, in one CAS; false when the
/// value is 0. `data` is the last data word seen, and is updated.
bool take_as_waiter(sem_t* sem, std::uint64_t& data) noexcept;

/// The current data word.
std::uint64_t load(sem_t* sem) noexcept;

/// A registered waiter gives up (cancelled). A sem_post may have woken this waiter
/// rather than another one still asleep; so if units are there and others are counted,
/// one of them is woken, as the post would have done. Call it only once the waiter can
/// no longer be woken (its futex wait has completed), or such a wake could be lost.
void remove_waiter(sem_t* sem) noexcept;

/// The value (units) part of a data word.
constexpr std::uint32_t value_of(std::uint64_t data) noexcept { return static_cast<std::uint32_t>(data); }

}  // namespace ipckit::detail::glibc_semaphore
