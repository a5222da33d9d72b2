#include <ipckit/detail/immediate_completions.hpp>

#include <boost/asio/detail/call_stack.hpp>
#include <boost/asio/detail/concurrency_hint.hpp>
#include <boost/asio/detail/scheduler.hpp>
#include <boost/asio/detail/scheduler_thread_info.hpp>
#include <boost/asio/detail/thread_context.hpp>
#include <boost/system/error_code.hpp>

// Tied to Asio 1.81's scheduler: a thread running a scheduler has a thread_info on the
// thread call stack, whose private_op_queue takes the operations that thread posts (as
// continuations, or always on a one-thread scheduler) until the running handler returns.
// A drain takes its own operation back from the front of that queue.

namespace ipckit::detail {
namespace {

namespace ad = boost::asio::detail;
using thread_call_stack = ad::call_stack<ad::thread_context, ad::thread_info_base>;

}  // namespace

struct drain_state {
  void* allowed = nullptr;                      // innermost event_loop run's scheduler, or nullptr
  void* scheduler = nullptr;                    // while a drain runs: its scheduler
  ad::scheduler_thread_info* thread = nullptr;  // while a drain runs: the run's thread_info
  ad::scheduler_operation* posted = nullptr;    // what the running handler posted, to take back
  std::size_t drained = 0;                      // handlers drains ran in the innermost scope
};

namespace {

thread_local drain_state state;

ad::scheduler& scheduler_at(void* p) noexcept { return *static_cast<ad::scheduler*>(p); }

// Asio's own test for a scheduler whose posts always go to the thread's private queue.
bool one_thread(const ad::scheduler& s) noexcept {
  const int hint = s.concurrency_hint();
  return hint == 1 || !BOOST_ASIO_CONCURRENCY_HINT_IS_LOCKING(SCHEDULER, hint) ||
         !BOOST_ASIO_CONCURRENCY_HINT_IS_LOCKING(REACTOR_IO, hint);
}

// The noted operation, if it is still where it was posted.
ad::scheduler_operation* pending(const drain_state& s) noexcept {
  if (!s.thread || !s.posted || s.thread->private_op_queue.front() != s.posted) return nullptr;
  return s.posted;
}

}  // namespace

void* scheduler_of(boost::asio::execution_context& context) {
  return &boost::asio::use_service<ad::scheduler>(context);
}

immediate_scope::immediate_scope(void* scheduler) noexcept
    : previous_(state.allowed), previous_drained_(state.drained) {
  // A run nested in a drained handler: an operation noted for the drain goes back where
  // Asio would have put it. On a one-thread scheduler that is the private queue, where it
  // is; on another it is the shared queue, where the nested run can take it (it went to the
  // private one only because the drain posted it as a continuation).
  if (ad::scheduler_operation* op = pending(state)) {
    auto& s = scheduler_at(state.scheduler);
    if (!one_thread(s)) {
      state.thread->private_op_queue.pop();
      --state.thread->private_outstanding_work;
      state.posted = nullptr;
      s.post_immediate_completion(op, false);
    }
  }
  state.allowed = scheduler;
  state.drained = 0;
}

immediate_scope::~immediate_scope() {
  state.allowed = previous_;
  state.drained = previous_drained_;
}

std::size_t immediate_scope::drained() const noexcept { return state.drained; }

immediate_drain::immediate_drain(void* owner, const void* op) noexcept {
  drain_state& s = state;
  // The noted operation, completed or destroyed by someone else (a run nested in the
  // drained handler): forget it, so that its recycled memory is never taken for it.
  if (s.posted == op) s.posted = nullptr;
  // Not when a drain runs already (this upcall is one of its completions), nor outside
  // an event_loop run that allows it. The upcall comes from the scheduler's own run, so
  // its thread_info is the innermost one for that scheduler.
  if (s.thread || !owner || owner != s.allowed) return;
  ad::thread_info_base* info = thread_call_stack::contains(&scheduler_at(owner));
  if (!info) return;
  s.scheduler = owner;
  s.thread = static_cast<ad::scheduler_thread_info*>(info);
  s.posted = nullptr;
  outermost_ = &s;
}

immediate_drain::~immediate_drain() {
  if (!outermost_) return;
  outermost_->scheduler = nullptr;
  outermost_->thread = nullptr;
  outermost_->posted = nullptr;
}

void immediate_drain::run(void* owner) {
  if (!outermost_) return;
  drain_state& d = *outermost_;
  auto& s = scheduler_at(owner);
  for (int left = immediate_budget; left > 0; --left) {
    ad::scheduler_operation* op = pending(d);
    // stop() inside a handler: no further handler runs until restart, as with Asio's loop.
    if (!op || s.stopped()) return;
    d.posted = nullptr;
    d.thread->private_op_queue.pop();
    // post_immediate_completion counted it as private work; it is done here, as the
    // scheduler would count it after running it.
    --d.thread->private_outstanding_work;
    ++d.drained;
    op->complete(owner, boost::system::error_code(), 0);
  }
}

drain_state* immediate_drain::follow(void* scheduler) noexcept {
  // In a run nested in the drained handler, the operation goes to that run's private
  // queue, this one stays empty, and posted() notes nothing.
  drain_state& s = state;
  return s.thread && s.scheduler == scheduler && !s.posted && s.thread->private_op_queue.empty() ? &s : nullptr;
}

void immediate_drain::posted(drain_state* drain) noexcept {
  if (!drain->thread->private_op_queue.empty()) drain->posted = drain->thread->private_op_queue.front();
}

}  // namespace ipckit::detail
