// A descriptor on Asio's reactor whose asynchronous operations are "attempts": a
// non-blocking call (a pipe read, mq_receive, an eventfd read, ...) that is tried at once
// and then again each time the edge-triggered registration says the descriptor became
// ready. Internal: pipe ends, message_queue, event_semaphore, the signal module, the
// worker pool and the semaphore ring use it; users never include this header.
//
// Why not posix::stream_descriptor::async_wait: Asio re-arms epoll (EPOLL_CTL_MOD) for
// every wait, one system call per operation (docs/performance-findings.md, finding 3). An attempt
// is a speculative reactor operation, as a socket's async_read_some is: the descriptor is
// registered once, edge-triggered, and only when an attempt first has to wait, so a
// descriptor that never waits (a queue we only send to) never wakes the loop.
#pragma once

#include <ipckit/detail/immediate_completions.hpp>
#include <ipckit/error.hpp>

#include <boost/asio/any_io_executor.hpp>
#include <boost/asio/associated_cancellation_slot.hpp>
#include <boost/asio/async_result.hpp>
#include <boost/asio/io_context.hpp>
#include <boost/asio/detail/bind_handler.hpp>
#include <boost/asio/detail/fenced_block.hpp>
#include <boost/asio/detail/handler_alloc_helpers.hpp>
#include <boost/asio/detail/handler_cont_helpers.hpp>
#include <boost/asio/detail/handler_work.hpp>
#include <boost/asio/detail/memory.hpp>
#include <boost/asio/detail/reactor_op.hpp>

#include <cstddef>
#include <type_traits>
#include <utility>

namespace ipckit::detail {

/// Which readiness an attempt waits for.
enum class attempt_direction { read, write };

template <class Result>
struct attempt_signature_of {
  using type = void(error_code, Result);
};
template <>
struct attempt_signature_of<void> {
  using type = void(error_code);
};
template <class Result>
using attempt_signature = typename attempt_signature_of<Result>::type;

/// What an attempt may return instead of a bool: `finished_and_drained` says that the
/// descriptor was found empty, so that the next attempt waits for the next edge instead
/// of being tried at once (one system call less; Asio's done_and_exhausted).
enum class attempt_status { would_block, finished, finished_and_drained };

/// The reactor side of an attempt: `attempt(ec[, result])` returns false (or
/// would_block) when the call would block (it is tried again at the next edge), true (or
/// finished, finished_and_drained) when it is finished, with `ec` saying how.
template <class Result, class Attempt>
class attempt_op_base : public boost::asio::detail::reactor_op {
 public:
  attempt_op_base(Attempt attempt, func_type complete)
      : reactor_op(error_code(), &attempt_op_base::do_perform, complete), attempt_(std::move(attempt)) {}

  static status do_perform(reactor_op* base) {
    auto* self = static_cast<attempt_op_base*>(base);
    self->ec_.clear();
    auto outcome = [self] {
      if constexpr (std::is_void_v<Result>) return self->attempt_(self->ec_);
      else return self->attempt_(self->ec_, self->result_);
    }();
    status result;
    if constexpr (std::is_same_v<decltype(outcome), attempt_status>)
      result = outcome == attempt_status::would_block ? not_done
               : outcome == attempt_status::finished  ? done
                                                      : done_and_exhausted;
    else
      result = outcome ? done : not_done;
    if (result == not_done) self->ec_.clear();  // would_block is not a result
    return result;
  }

 protected:
  Attempt attempt_;
  std::conditional_t<std::is_void_v<Result>, char, Result> result_{};
};

/// An attempt with its handler (modelled on Asio's descriptor_read_op).
template <class Result, class Attempt, class Handler, class IoExecutor>
class attempt_op : public attempt_op_base<Result, Attempt> {
 public:
  BOOST_ASIO_DEFINE_HANDLER_PTR(attempt_op);

  attempt_op(Attempt attempt, Handler& handler, const IoExecutor& io_ex)
      : attempt_op_base<Result, Attempt>(std::move(attempt), &attempt_op::do_complete),
        handler_(std::move(handler)),
        work_(handler_, io_ex) {}

  static void do_complete(void* owner, boost::asio::detail::operation* base, const error_code&, std::size_t) {
    namespace ad = boost::asio::detail;
    auto* self = static_cast<attempt_op*>(base);
    ptr p = {ad::addressof(self->handler_), self, self};
    ad::handler_work<Handler, IoExecutor> work(std::move(self->work_));
    immediate_drain drain(owner);
    // The handler is moved out so the operation's memory is freed before the upcall.
    if constexpr (std::is_void_v<Result>) {
      ad::binder1<Handler, error_code> handler(self->handler_, self->ec_);
      p.h = ad::addressof(handler.handler_);
      p.reset();
      if (owner) {
        ad::fenced_block fence(ad::fenced_block::half);
        work.complete(handler, handler.handler_);
      }
    } else {
      ad::binder2<Handler, error_code, Result> handler(self->handler_, self->ec_, std::move(self->result_));
      p.h = ad::addressof(handler.handler_);
      p.reset();
      if (owner) {
        ad::fenced_block fence(ad::fenced_block::half);
        work.complete(handler, handler.handler_);
      }
    }
    // What the upcall started and finished at once runs now, not after the reactor's turn.
    drain.run();
  }

 private:
  Handler handler_;
  boost::asio::detail::handler_work<Handler, IoExecutor> work_;
};

/// The loop's record of a registered polled_descriptor: what the epoll set hands back for
/// its descriptor, and the attempts waiting on it (polled_descriptor.cpp).
struct polled_state;
/// The per-context service that keeps the records (polled_descriptor.cpp).
class polled_registry;

/// Makes `context`'s reactor and the registry of polled descriptors now. A service that will
/// own polled_descriptors calls it in its constructor: Asio shuts down and destroys
/// services newest first, so both then outlive the descriptors it closes.
void prepare_polled_descriptors(boost::asio::execution_context& context);

/// Owns one descriptor and its registration in the epoll set of the loop's reactor.
///
/// The registration is ipckit's own, not Asio's descriptor service: the reactor hands
/// back a polled_state, which the scheduler runs as it runs Asio's descriptor states, and
/// which completes the waiting attempts itself. So a wait costs no reactor operation
/// queue and no second lock around it (docs/performance-findings.md, finding 4).
///
/// Thread safety: as an Asio I/O object. Not moved or destroyed while an operation is
/// pending, and destroyed before its execution context.
class polled_descriptor {
 public:
  using executor_type = boost::asio::any_io_executor;

  explicit polled_descriptor(const executor_type& ex);
  polled_descriptor(polled_descriptor&& other) noexcept;
  polled_descriptor& operator=(polled_descriptor&& other) noexcept;
  polled_descriptor(const polled_descriptor&) = delete;
  polled_descriptor& operator=(const polled_descriptor&) = delete;
  ~polled_descriptor();

  executor_type get_executor() const noexcept { return executor_; }
  /// Takes ownership of `fd` (closing any descriptor held before); it joins the
  /// reactor only when an attempt first has to wait.
  void assign(int fd) noexcept;
  bool is_open() const noexcept { return fd_ >= 0; }
  int native_handle() const noexcept { return fd_; }
  /// Aborts pending operations (operation_aborted) and closes the descriptor.
  void close() noexcept;
  /// Aborts pending operations (operation_aborted), takes the descriptor out of the
  /// reactor and gives it back, open (-1 when there is none).
  int release() noexcept;
  /// Aborts pending operations (operation_aborted).
  void cancel() noexcept;

  /// Runs `attempt` now and, while it would block, at each readiness edge; completes
  /// with void(error_code[, Result]), never inside this call. Cancellation slots of
  /// every type abort a waiting attempt (an attempt that finished is not undone). After
  /// an attempt that finished_and_drained, the next one starts waiting for an edge
  /// (unless one came meanwhile) rather than running at once.
  template <class Result, class Attempt, class CompletionToken>
  auto async_attempt(attempt_direction direction, Attempt attempt, CompletionToken&& token) {
    return boost::asio::async_initiate<CompletionToken, attempt_signature<Result>>(
        [this](auto handler, attempt_direction d, Attempt a) {
          start<Result>(d, std::move(a), handler);
        },
        token, direction, std::move(attempt));
  }

 private:
  using reactor_op = boost::asio::detail::reactor_op;

  // Per-operation cancellation: the key is this object's address, as with Asio's
  // reactive_descriptor_service.
  class cancellation {
   public:
    cancellation(polled_state* state, attempt_direction direction) : state_(state), direction_(direction) {}
    void operator()(boost::asio::cancellation_type_t type) {
      using boost::asio::cancellation_type;
      if (!!(type & (cancellation_type::terminal | cancellation_type::partial | cancellation_type::total)))
        cancel_by_key(state_, direction_, this);
    }

   private:
    polled_state* state_;
    attempt_direction direction_;
  };

  template <class Result, class Attempt, class Handler>
  void start(attempt_direction direction, Attempt attempt, Handler& handler) {
    // An io_context's own executor, not type-erased, makes the handler's work tracking
    // and its upcall plain calls (Asio's handler_work compares any_io_executors).
    if (context_executor_) start_with<Result>(direction, std::move(attempt), handler, *context_executor_);
    else start_with<Result>(direction, std::move(attempt), handler, executor_);
  }

  template <class Result, class Attempt, class Handler, class IoExecutor>
  void start_with(attempt_direction direction, Attempt attempt, Handler& handler, const IoExecutor& io_executor) {
    namespace ad = boost::asio::detail;
    using op = attempt_op<Result, Attempt, Handler, IoExecutor>;
    // When a drain on this thread can take an immediate completion back, it is posted as
    // a continuation: into this thread's private queue, where the drain looks for it.
    const bool is_continuation =
        immediate_drain::active(scheduler_) || boost_asio_handler_cont_helpers::is_continuation(handler);
    auto slot = boost::asio::get_associated_cancellation_slot(handler);
    typename op::ptr p = {ad::addressof(handler), op::ptr::allocate(handler), nullptr};
    p.p = new (p.v) op(std::move(attempt), handler, io_executor);
    bool try_at_once = true;
    if (!state_) {
      // The first attempt of an unregistered descriptor runs here (a closed one's attempt
      // reports its own error, such as errc::closed). If it would block, the descriptor
      // is registered now; the registration reports the current readiness, so nothing
      // that arrived since the attempt is missed.
      if (p.p->perform() == reactor_op::not_done) {
        if (fd_ < 0) p.p->ec_ = boost::asio::error::bad_descriptor;
        else enroll(p.p->ec_);
      }
      if (p.p->ec_ || !state_) {
        post_at_once(p.p, is_continuation);
        p.v = p.p = nullptr;
        return;
      }
      try_at_once = false;
    }
    if (slot.is_connected())
      p.p->cancellation_key_ = &slot.template emplace<cancellation>(state_, direction);
    start_op(direction, p.p, is_continuation, try_at_once);
    p.v = p.p = nullptr;
  }

  // Registers fd_ in the reactor's epoll set (edge-triggered, as Asio registers every
  // descriptor), making state_.
  void enroll(error_code& ec) noexcept;
  // Tries `op` at once (if `try_at_once` and nothing waits before it) and queues it on
  // state_ if it would block; a finished attempt is posted.
  void start_op(attempt_direction direction, reactor_op* op, bool is_continuation, bool try_at_once) noexcept;
  void post_at_once(reactor_op* op, bool is_continuation) noexcept;
  static void cancel_by_key(polled_state* state, attempt_direction direction, void* key) noexcept;
  // Aborts what waits and takes the descriptor out of the epoll set.
  void unregister() noexcept;

  // The executor_'s target when it is an io_context's executor with default properties.
  const boost::asio::io_context::executor_type* context_executor() const noexcept {
    return executor_.target<boost::asio::io_context::executor_type>();
  }

  executor_type executor_;
  const boost::asio::io_context::executor_type* context_executor_ = context_executor();
  polled_registry* registry_;
  void* scheduler_;  // Asio's detail::scheduler of the context (the key of immediate_drain)
  int fd_ = -1;
  polled_state* state_ = nullptr;
};

}  // namespace ipckit::detail
