// The process-wide signal service: dispositions, masks, the signalfd (read by whoever
// waits), the handler's pipe and its reader thread, and the list of subscriptions every
// delivery is fanned out to.
#pragma once

#include "subscription.hpp"

#include <vector>

namespace ipckit::signal::detail {

/// Is `number` something a notifier may subscribe to? (errc otherwise)
error_code check_subscribable(int number);

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

  /// Reads what the signalfd holds and fans it out to the subscriptions: called by a
  /// loop whose watch saw it readable and by a thread in a blocking wait. The waits it
  /// completes run here when the caller is on their executor (else they are posted).
  void drain();
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
