// The process-wide signal service: dispositions, masks, the signalfd (read by whoever
// waits), the handler's pipe and its reader thread, and the list of subscriptions every
// delivery is fanned out to.
#pragma once

#include "subscription.hpp"

#include <vector>

namespace ipckit::signal::detail {

/// Is `number` something a notifier may subscribe to? (errc otherwise)
error_code check_subscribable(int number);

/// What wakes a thread from registry::read_alone: ipckit's interrupt signal, which no
/// notifier may subscribe to, sent to that thread alone.
int wake_signal() noexcept;
/// Blocks the wake signal in the calling thread, for good (once per thread), so that one
/// sent before the read makes the read return at once rather than being lost. False if
/// the mask cannot be changed (then the thread polls).
bool block_wake_signal_here() noexcept;

class registry {
 public:
  /// The one instance, created on first use and never destroyed (its reader thread
  /// runs for the life of the process).
  static registry& get();

  /// Adds `signals` to the subscription (registering it on first use).
  void subscribe(const std::shared_ptr<subscription>& sub, const std::vector<int>& signals,
                 error_code& ec);
  void unsubscribe(const std::shared_ptr<subscription>& sub, int number);
  /// Unsubscribes from everything; no push() reaches it after this returns.
  void remove(const std::shared_ptr<subscription>& sub);
  std::vector<int> signals_of(const std::shared_ptr<subscription>& sub);

  /// A delivery taken from the kernel that no notifier will see (its last one stopped
  /// before it was waited for): sent again to this process, so that it takes the
  /// disposition the signal has now, as if it had arrived after the stop. Nothing when a
  /// notifier of the signal is left (that one had its own copy).
  void redeliver_unwatched(const info& delivery);

  /// A loop's read attempt: reads what the signalfd holds and fans it out; the waits it
  /// completes go to `ready`, for the caller to complete once it holds no lock. Reads
  /// nothing while a thread is in read_alone() (that one delivers what comes, and reads
  /// again before it leaves). True when it read the signalfd empty.
  bool read_for_loop(ready_waits& ready);
  /// The same for a thread in a blocking wait that polled the signalfd readable; the
  /// waits it completes run here when the caller is on their executor (else are posted).
  void drain();
  /// A blocking read of the signalfd, for the only thread in a blocking wait in the
  /// process (no poll before it: one system call a delivery, as a raw blocking read).
  /// `waiting` is the caller's subscription. Besides a signal, the wake signal ends the
  /// read: sent to the thread by a push to or a stop of `waiting` from elsewhere, by a
  /// second blocking waiter, by a change of the mask, or by a loop that could not read
  /// meanwhile. The caller blocks it (block_wake_signal_here).
  enum class alone {
    refused,  ///< another thread is in a blocking wait too (each polls then); nothing read
    read,     ///< a read that returned signals, fanned out
    woken,    ///< woken: poll for the rest of this wait, so that loops may read
  };
  alone read_alone(const subscription* waiting);
  /// A thread enters or leaves wait()/wait_for() (read_alone needs to be the only one).
  void enter_blocking();
  void leave_blocking();
  /// A dup of the signalfd for poll(2) (kept for the life of the process).
  int watch_fd() const noexcept;
  /// A new dup of the signalfd, owned by the caller (a loop's reactor watches it).
  int new_watch_fd();

  void ignore(const std::vector<int>& signals, error_code& ec);
  void reset(const std::vector<int>& signals, error_code& ec);

  registry(const registry&) = delete;
  registry& operator=(const registry&) = delete;

 private:
  registry();
  struct impl;
  impl* impl_;
};

}  // namespace ipckit::signal::detail
