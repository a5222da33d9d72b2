// Immediate completions, run back to back.
//
// Asio never runs a handler inside the call that started its operation: an operation that
// finishes at once is posted, and the scheduler runs its reactor (epoll_wait(..., 0))
// between every two handlers. A chain of operations that each finish at once (a stream
// of messages into a queue that has room) so pays one epoll_wait per message, and that
// call returns the readiness our own mq_send raised, which costs a descriptor operation
// more (docs/performance-findings.md, finding 7).
//
// Here, while an event_loop runs handlers (run, run_for, poll, run_spinning; not
// run_one), what a handler posts into its thread's private queue (the operations it
// started that finished at once, its continuations) is taken back and completed as soon
// as that handler has returned, up to `immediate_budget` in a row; then the scheduler has
// its turn (the reactor, timers, other handlers). The handlers that drain so are
// polled_descriptor's attempts (pipe ends among them) and the Asio socket operations ipckit
// starts (draining_handler.hpp); while one runs, the operations started on the loop
// finish at once into that private queue. A handler still never runs inside its
// initiating call, only earlier than it would otherwise: before the reactor's next turn.
// Internal: polled_descriptor, draining_handler and event_loop use it.
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
  /// `may_block`: the run is event_loop::run, in which an idle loop thread may make a
  /// blocking call itself (may_block_idle).
  explicit immediate_scope(void* scheduler, bool may_block = false) noexcept;
  ~immediate_scope();
  immediate_scope(const immediate_scope&) = delete;
  immediate_scope& operator=(const immediate_scope&) = delete;

  /// Handlers that drains ran in this scope (Asio's run() counts only its own).
  std::size_t drained() const noexcept;

 private:
  void* previous_;
  bool previous_may_block_;
  std::size_t previous_drained_;
};

/// Whether the calling thread, in a handler of `scheduler`'s loop, may block in a call
/// while that loop is idle (idle_loop_wait.hpp): the innermost run on the thread is an
/// event_loop::run of that loop, and the handler has queued nothing on the thread.
bool may_block_idle(void* scheduler) noexcept;

/// Around the upcall of a handler that drains: on the outermost one of a thread, when the
/// innermost scheduler run on the thread is the allowing scope's and its private queue is
/// empty, run() then completes what the upcall posted into that queue.
class immediate_drain {
 public:
  /// For an attempt's handler: `owner` as attempt_op::do_complete gets it (the
  /// scheduler, or nullptr when the operation is destroyed).
  explicit immediate_drain(void* owner) noexcept;
  /// For a draining_handler: the allowing scope's scheduler.
  immediate_drain() noexcept;
  ~immediate_drain();
  immediate_drain(const immediate_drain&) = delete;
  immediate_drain& operator=(const immediate_drain&) = delete;

  void run();

  /// Whether a drain runs on this thread (for `scheduler`, unless it is nullptr): an
  /// operation that finishes at once is then posted as a continuation, so that it goes
  /// into this thread's private queue, where the drain takes it.
  static bool active(const void* scheduler = nullptr) noexcept;

 private:
  void begin(void* owner) noexcept;
  bool outermost_ = false;
};

}  // namespace ipckit::detail
