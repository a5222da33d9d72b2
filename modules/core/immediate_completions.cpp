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

struct drain_state {
  void* allowed = nullptr;                   // innermost event_loop run's scheduler, or nullptr
  void* scheduler = nullptr;                 // while a drain runs: its scheduler
  ad::scheduler_thread_info* thread = nullptr;  // while a drain runs: the run's thread_info
  ad::scheduler_operation* posted = nullptr;    // what the running handler posted, to take back
  std::size_t drained = 0;                   // handlers drains ran in the innermost scope
};

thread_local drain_state state;

ad::scheduler& scheduler_at(void* p) noexcept { return *static_cast<ad::scheduler*>(p); }

// Asio's own test for a scheduler whose posts always go to the thread's private queue.
bool one_thread(const ad::scheduler& s) noexcept {
  const int hint = s.concurrency_hint();
  return hint == 1 || !BOOST_ASIO_CONCURRENCY_HINT_IS_LOCKING(SCHEDULER, hint) ||
         !BOOST_ASIO_CONCURRENCY_HINT_IS_LOCKING(REACTOR_IO, hint);
}

// The noted operation, if it is still where it was posted.
ad::scheduler_operation* pending() noexcept {
  if (!state.thread || !state.posted || state.thread->private_op_queue.front() != state.posted) return nullptr;
  return state.posted;
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
  if (ad::scheduler_operation* op = pending()) {
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

immediate_drain::immediate_drain(void* owner) noexcept {
  if (state.thread || !owner || owner != state.allowed) return;
  ad::thread_info_base* info = thread_call_stack::contains(&scheduler_at(owner));
  if (!info || info != thread_call_stack::top()) return;
  state.scheduler = owner;
  state.thread = static_cast<ad::scheduler_thread_info*>(info);
  state.posted = nullptr;
  outermost_ = true;
}

immediate_drain::~immediate_drain() {
  if (!outermost_) return;
  state.scheduler = nullptr;
  state.thread = nullptr;
  state.posted = nullptr;
}

void immediate_drain::run(void* owner) {
  if (!outermost_) return;
  auto& s = scheduler_at(owner);
  for (int left = immediate_budget; left > 0; --left) {
    ad::scheduler_operation* op = pending();
    // stop() inside a handler: no further handler runs until restart, as with Asio's loop.
    if (!op || s.stopped()) return;
    state.posted = nullptr;
    state.thread->private_op_queue.pop();
    // post_immediate_completion counted it as private work; it is done here, as the
    // scheduler would count it after running it.
    --state.thread->private_outstanding_work;
    ++state.drained;
    op->complete(owner, boost::system::error_code(), 0);
  }
}

bool immediate_drain::can_follow(void* scheduler) noexcept {
  return state.thread && state.scheduler == scheduler && !state.posted &&
         thread_call_stack::top() == state.thread && state.thread->private_op_queue.empty();
}

void immediate_drain::posted() noexcept {
  if (!state.thread->private_op_queue.empty()) state.posted = state.thread->private_op_queue.front();
}

}  // namespace ipckit::detail
