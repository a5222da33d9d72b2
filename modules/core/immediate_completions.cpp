#include <ipckit/detail/immediate_completions.hpp>

#include <boost/asio/detail/call_stack.hpp>
#include <boost/asio/detail/concurrency_hint.hpp>
#include <boost/asio/detail/scheduler.hpp>
#include <boost/asio/detail/scheduler_thread_info.hpp>
#include <boost/asio/detail/thread_context.hpp>
#include <boost/system/error_code.hpp>

// Tied to Asio 1.81's scheduler: a thread running a scheduler has a thread_info on the
// thread call stack, whose private_op_queue takes the operations that thread posts (as
// continuations, or always on a one-thread scheduler) until the running handler returns;
// then the scheduler moves them to its shared queue, behind its reactor task.

namespace ipckit::detail {
namespace {

namespace ad = boost::asio::detail;
using thread_call_stack = ad::call_stack<ad::thread_context, ad::thread_info_base>;

}  // namespace

struct drain_state {
  void* allowed = nullptr;                      // innermost event_loop run's scheduler, or nullptr
  bool may_block = false;                       // that run is event_loop::run (idle_loop_wait.hpp)
  void* scheduler = nullptr;                    // while a drain runs: its scheduler
  ad::scheduler_thread_info* thread = nullptr;  // while a drain runs: the run's thread_info
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

// Takes the front of the drain's private queue, with its unit of outstanding work. An
// operation posted as an immediate completion counted its unit in the thread's private
// count, one completed from the reactor (a cancelled one, say) in the scheduler's shared
// count; which one is not recorded, but the two are summed when the handler returns, and
// the shared count cannot reach zero here, since it still holds the running handler's.
ad::scheduler_operation* take_front(drain_state& d) noexcept {
  ad::scheduler_operation* op = d.thread->private_op_queue.front();
  if (!op) return nullptr;
  d.thread->private_op_queue.pop();
  if (d.thread->private_outstanding_work > 0) --d.thread->private_outstanding_work;
  else scheduler_at(d.scheduler).work_finished();
  return op;
}

}  // namespace

void* scheduler_of(boost::asio::execution_context& context) {
  return &boost::asio::use_service<ad::scheduler>(context);
}

immediate_scope::immediate_scope(void* scheduler, bool may_block) noexcept
    : previous_(state.allowed), previous_may_block_(state.may_block), previous_drained_(state.drained) {
  // A run nested in a drained handler: what the drain would take goes where Asio would
  // have put it. On a one-thread scheduler that is the private queue, where it is; on
  // another it is the shared queue, where the nested run can take it (it went to the
  // private one only because the drain made it a continuation).
  if (state.thread && !one_thread(scheduler_at(state.scheduler))) {
    while (ad::scheduler_operation* op = take_front(state))
      scheduler_at(state.scheduler).post_immediate_completion(op, false);
  }
  state.allowed = scheduler;
  state.may_block = scheduler && may_block;
  state.drained = 0;
}

immediate_scope::~immediate_scope() {
  state.allowed = previous_;
  state.may_block = previous_may_block_;
  state.drained = previous_drained_;
}

std::size_t immediate_scope::drained() const noexcept { return state.drained; }

immediate_drain::immediate_drain(void* owner) noexcept { begin(owner); }

immediate_drain::immediate_drain() noexcept { begin(state.allowed); }

void immediate_drain::begin(void* owner) noexcept {
  drain_state& s = state;
  // Not when a drain runs already (this upcall is one of its completions), nor outside
  // an event_loop run that allows it, nor when the innermost run on this thread is
  // another one (a run of some other context nested in a handler of the loop). The
  // private queue must be empty, so that the drain takes only what this upcall posts.
  if (s.thread || !owner || owner != s.allowed) return;
  ad::thread_info_base* info = thread_call_stack::contains(&scheduler_at(owner));
  if (!info || info != thread_call_stack::top()) return;
  auto* thread = static_cast<ad::scheduler_thread_info*>(info);
  if (!thread->private_op_queue.empty()) return;
  s.scheduler = owner;
  s.thread = thread;
  outermost_ = true;
}

immediate_drain::~immediate_drain() {
  if (!outermost_) return;
  state.scheduler = nullptr;
  state.thread = nullptr;
}

void immediate_drain::run() {
  if (!outermost_) return;
  drain_state& d = state;
  auto& s = scheduler_at(d.scheduler);
  for (int left = immediate_budget; left > 0; --left) {
    // Nothing to run is the common last turn: seen without the scheduler's lock, which
    // stopped() takes.
    if (d.thread->private_op_queue.empty()) return;
    // stop() inside a handler: no further handler runs until restart, as with Asio's loop.
    if (s.stopped()) return;
    ad::scheduler_operation* op = take_front(d);
    if (!op) return;
    ++d.drained;
    // The last argument is the scheduler's task_result_, which only the reactor's own
    // descriptor states use; the reactor queues those in its turn, never a handler.
    op->complete(d.scheduler, boost::system::error_code(), 0);
    // A handler the io_context's executor ran inline (a posted composed operation) left
    // its exception with the thread, for the scheduler to throw after this handler; it is
    // thrown now, as the scheduler would throw it before running another handler.
    d.thread->rethrow_pending_exception();
  }
}

bool may_block_idle(void* scheduler) noexcept {
  if (!scheduler || scheduler != state.allowed || !state.may_block) return false;
  ad::thread_info_base* info = thread_call_stack::contains(&scheduler_at(scheduler));
  if (!info || info != thread_call_stack::top()) return false;
  return static_cast<ad::scheduler_thread_info*>(info)->private_op_queue.empty();
}

bool immediate_drain::active(const void* scheduler) noexcept {
  return state.thread && (!scheduler || state.scheduler == scheduler);
}

}  // namespace ipckit::detail
