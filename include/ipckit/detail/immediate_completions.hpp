// Immediate completions of polled_descriptor operations, run back to back.
//
// Asio never runs a handler inside the call that started its operation: an operation that
// finishes at once is posted, and the scheduler runs its reactor (epoll_wait(..., 0))
// between every two handlers. A chain of operations that each finish at once (a stream
// of messages into a queue that has room) so pays one epoll_wait per message, and that
// call returns the readiness our own mq_send raised, which costs a descriptor operation
// more (docs/performance-findings.md, finding 7).
//
// Here, while an event_loop runs handlers (run, run_for, poll, run_spinning; not
// run_one), an attempt that finished at once and was started by the handler of another
// attempt is taken back from the scheduler's queue and completed as soon as that handler
// has returned, up to `immediate_budget` in a row; then the scheduler has its turn (the
// reactor, timers, other handlers). A handler still never runs inside its initiating
// call, only earlier than it would otherwise: before the reactor's next turn.
// Internal: polled_descriptor and event_loop use it.
#pragma once

#include <cstddef>

namespace boost::asio {
class execution_context;
}

namespace ipckit::detail {

/// The key that names a context's run in the classes below: its Asio detail::scheduler
/// (created if the context has none yet, as Asio's own I/O objects do).
void* scheduler_of(boost::asio::execution_context& context);

/// How many immediate completions may run in a row before the scheduler has its turn.
inline constexpr int immediate_budget = 16;

/// Whether the innermost event_loop run on this thread lets immediate completions run
/// back to back: `scheduler` (Asio's detail::scheduler of the loop) for run, run_for,
/// poll and run_spinning, nullptr for run_one (which runs one handler). Nested scopes
/// restore the outer one.
class immediate_scope {
 public:
  explicit immediate_scope(void* scheduler) noexcept;
  ~immediate_scope();
  immediate_scope(const immediate_scope&) = delete;
  immediate_scope& operator=(const immediate_scope&) = delete;

  /// Handlers that drains ran in this scope (Asio's run() counts only its own).
  std::size_t drained() const noexcept;

 private:
  void* previous_;
  std::size_t previous_drained_;
};

/// This thread's drain (opaque).
struct drain_state;

/// Around the upcall of an attempt's handler (attempt_op::do_complete of `op`, `owner`
/// being the scheduler, or nullptr when the operation is destroyed): on the outermost
/// one of a thread, inside an allowing scope, run() completes the attempts the upcall
/// started that finished at once.
class immediate_drain {
 public:
  immediate_drain(void* owner, const void* op) noexcept;
  ~immediate_drain();
  immediate_drain(const immediate_drain&) = delete;
  immediate_drain& operator=(const immediate_drain&) = delete;

  void run(void* owner);

  /// polled_descriptor::start, before posting an immediate completion to `scheduler`:
  /// this thread's drain when it can take the completion back (it must then be posted
  /// as a continuation, into this thread's private queue, and noted with posted()), else
  /// nullptr.
  static drain_state* follow(void* scheduler) noexcept;
  /// Notes the operation just posted (the front of this thread's private queue).
  static void posted(drain_state* drain) noexcept;

 private:
  drain_state* outermost_ = nullptr;
};

}  // namespace ipckit::detail
