// The worker pool that runs calls the kernel cannot make pollable (flock wait, sem_wait,
// semop) and completes them on the caller's executor. Internal: modules use it to build
// their async_* operations; users never include this header.
#pragma once

#include <ipckit/error.hpp>

#include <boost/asio/any_io_executor.hpp>
#include <boost/asio/associated_cancellation_slot.hpp>
#include <boost/asio/associated_executor.hpp>
#include <boost/asio/async_result.hpp>
#include <boost/asio/execution_context.hpp>
#include <boost/asio/executor_work_guard.hpp>
#include <boost/asio/dispatch.hpp>
#include <boost/asio/post.hpp>
#include <boost/asio/query.hpp>

#include <atomic>
#include <memory>
#include <mutex>
#include <optional>
#include <type_traits>
#include <utility>
#include <vector>

namespace ipckit::detail {

/// The signal a worker is interrupted with when its call is cancelled. Workers unblock
/// only this signal; its handler does nothing, and it is installed without SA_RESTART so
/// that the blocking call returns EINTR. The signal module refuses to subscribe to it.
int interrupt_signal() noexcept;
/// Installs that handler (once per process; the pool does it when it starts). The signal
/// module also sends this signal, thread-directed, to wake a thread that blocks it in a
/// read of a signalfd (docs/signal.md), and needs a handler there in case a thread has it
/// unblocked: the default action would end the process.
void install_interrupt_handler();

/// What a blocking call sees of its cancellation. The call loops on EINTR and stops when
/// cancelled() is true; the pool keeps interrupting it until it returns. A call made on
/// an idle loop's thread (blocking_start::idle_loop_first) also stops so when the loop
/// gets work, and then goes on elsewhere (blocking_start).
class interrupt_token {
 public:
  bool cancelled() const noexcept {
    return cancelled_.load(std::memory_order_acquire) || yield_.load(std::memory_order_acquire);
  }

 private:
  friend class blocking_service;
  friend class blocking_task;
  friend class idle_loop_waiter;
  std::atomic<bool> cancelled_{false};
  std::atomic<bool> yield_{false};  // the idle loop the call runs on has work
};

/// Where a blocking call starts. idle_loop_first: on the loop's own thread when the loop
/// is idle under event_loop::run (the kernel then wakes the loop directly: one thread
/// switch a wake-up instead of two), else, or once the loop gets work, on the worker pool
/// (docs/performance-findings.md, finding 6). idle_loop_only: as idle_loop_first, but
/// instead of going to the pool the call completes with would_block (and no result), for
/// an operation that has a better way than the pool (a named semaphore's io_uring wait).
/// The idle loop ways are only for a call that, stopped by cancelled(), fails with
/// operation_aborted and has done nothing.
enum class blocking_start { on_worker, idle_loop_first, idle_loop_only };

/// One queued blocking call, type-erased.
class blocking_task {
 public:
  virtual ~blocking_task() = default;
  virtual void run() = 0;       // on a worker thread
  virtual void complete() = 0;  // on the handler's executor
  /// Queues complete() on the handler's executor; `self` is this task.
  virtual void post_completion(std::shared_ptr<blocking_task> self) = 0;
  /// Runs complete() at once if the calling thread runs the handler's executor (the
  /// loop taking finished calls), else queues it there.
  virtual void dispatch_completion(std::shared_ptr<blocking_task> self) = 0;
  interrupt_token& token() noexcept { return token_; }
  /// After run(): the call stopped with operation_aborted.
  virtual bool aborted() const noexcept = 0;
  /// Instead of run(): the call is not made, and completes with `ec`.
  virtual void fail(error_code ec) noexcept = 0;

 protected:
  /// complete() says so first: a child forked after it does not complete the call again.
  void mark_completed() noexcept { completed_ = true; }

 private:
  friend class blocking_service;
  interrupt_token token_;
  bool completed_ = false;  // written on the loop thread, read in a forked child only
  std::atomic<bool> running_{false};
  std::atomic<unsigned long> thread_{0};
  std::atomic<bool> finished_{false};
};

/// One per execution context. Threads are started as calls need them and kept for reuse;
/// shutdown() (when the io_context is destroyed) cancels every call, waits for the
/// threads and destroys the pending handlers without calling them, as Asio does. In a
/// child made by fork() without exec, io_context::notify_fork(fork_child) gives the pool
/// threads of its own, and a call queued or running at the fork is made in the child too
/// (docs/core.md, "fork without exec").
class blocking_service : public boost::asio::execution_context::service {
 public:
  using key_type = blocking_service;
  static inline boost::asio::execution_context::id id;

  explicit blocking_service(boost::asio::execution_context& context);
  ~blocking_service() override;

  /// Queues `task` for a worker, or with another `start` for the idle loop first (see
  /// blocking_start). `ex` (an executor of this service's context) is the loop whose
  /// reactor, if the context had one before this service, carries finished calls back
  /// through an eventfd; otherwise workers post them.
  void submit(std::shared_ptr<blocking_task> task, const boost::asio::any_io_executor& ex,
              blocking_start start = blocking_start::on_worker);
  void cancel(const std::shared_ptr<blocking_task>& task);
  /// Threads started so far (for tests and diagnostics).
  std::size_t thread_count() const;

 private:
  void shutdown() override;
  // io_context::notify_fork: fork_prepare holds the pool's locks until fork_parent; in
  // the child, fork_child remakes the pool, whose threads stayed with the parent.
  void notify_fork(boost::asio::execution_context::fork_event event) override;
  void submit_to_worker(std::shared_ptr<blocking_task> task, const boost::asio::any_io_executor& ex);
  void start_on_idle_loop(std::shared_ptr<blocking_task> task, const boost::asio::any_io_executor& ex,
                          blocking_start start);
  struct impl;
  std::unique_ptr<impl> impl_;
};

/// The calls an I/O object has running on the worker pool, so that closing the object
/// aborts them (each completes with operation_aborted) as closing a socket aborts its
/// Asio operations. A call started after cancel_all() is aborted at once.
/// Thread safety: any threads.
class pending_calls {
 public:
  void add(blocking_service& service, const std::shared_ptr<blocking_task>& task);
  void cancel_all();

 private:
  std::mutex mutex_;
  bool cancelled_ = false;
  std::vector<std::pair<blocking_service*, std::weak_ptr<blocking_task>>> calls_;
};

template <class Result>
struct blocking_signature_of {
  using type = void(error_code, Result);
};
template <>
struct blocking_signature_of<void> {
  using type = void(error_code);
};
template <class Result>
using blocking_signature = typename blocking_signature_of<Result>::type;

template <class Result, class Handler, class IoExecutor, class Fn>
class blocking_task_impl : public blocking_task {
 public:
  blocking_task_impl(Handler handler, const IoExecutor& io_executor, Fn fn)
      : handler_(std::move(handler)),
        io_work_(io_executor),
        handler_work_(boost::asio::get_associated_executor(handler_, io_executor)),
        fn_(std::move(fn)) {}

  Handler& handler() noexcept { return handler_; }

  void run() override {
    ec_.clear();
    if constexpr (std::is_void_v<Result>) {
      fn_(token(), ec_);
    } else {
      result_.emplace(fn_(token(), ec_));
    }
  }

  void complete() override {
    mark_completed();
    auto slot = boost::asio::get_associated_cancellation_slot(handler_);
    if (slot.is_connected()) slot.clear();
    if (token().cancelled() && !ec_) ec_ = boost::asio::error::operation_aborted;
    auto handler = std::move(handler_);
    io_work_.reset();
    handler_work_.reset();
    if constexpr (std::is_void_v<Result>) {
      std::move(handler)(ec_);
    } else {
      // A call cancelled before a worker ran it has no result: complete with Result{}
      // (false for "taken"/"acquired"), never with an empty optional's garbage.
      std::move(handler)(ec_, result_ ? std::move(*result_) : Result{});
    }
  }

  bool aborted() const noexcept override { return ec_ == boost::asio::error::operation_aborted; }

  void fail(error_code ec) noexcept override {
    ec_ = ec;
    if constexpr (!std::is_void_v<Result>) result_.reset();
  }

  void post_completion(std::shared_ptr<blocking_task> self) override {
    boost::asio::post(handler_work_.get_executor(), [self = std::move(self)] { self->complete(); });
  }

  void dispatch_completion(std::shared_ptr<blocking_task> self) override {
    boost::asio::dispatch(handler_work_.get_executor(), [self = std::move(self)] { self->complete(); });
  }

 private:
  Handler handler_;
  boost::asio::executor_work_guard<IoExecutor> io_work_;
  boost::asio::executor_work_guard<boost::asio::associated_executor_t<Handler, IoExecutor>>
      handler_work_;
  Fn fn_;
  error_code ec_;
  std::conditional_t<std::is_void_v<Result>, char, std::optional<Result>> result_{};
};

/// Runs `fn(const interrupt_token&, error_code&) -> Result` on the worker pool of `ex`'s
/// execution context and completes with (error_code[, Result]) on the handler's executor.
/// Cancellation (any type) interrupts the call; a call that returns after a cancel
/// without an error of its own completes with operation_aborted. With `pending`, the
/// call is registered there, and pending->cancel_all() cancels it too.
template <class Result, class Executor, class Fn, class CompletionToken>
auto async_run_blocking(const Executor& ex, Fn fn, CompletionToken&& token,
                        pending_calls* pending = nullptr,
                        blocking_start start = blocking_start::on_worker) {
  auto initiation = [](auto handler, const Executor& io_executor, Fn call, pending_calls* calls,
                       blocking_start where) {
    using handler_type = std::decay_t<decltype(handler)>;
    using task_type = blocking_task_impl<Result, handler_type, Executor, Fn>;
    auto& context = boost::asio::query(io_executor, boost::asio::execution::context);
    auto& service = boost::asio::use_service<blocking_service>(context);
    auto task = std::make_shared<task_type>(std::move(handler), io_executor, std::move(call));
    auto slot = boost::asio::get_associated_cancellation_slot(task->handler());
    if (slot.is_connected()) {
      std::weak_ptr<blocking_task> weak = task;
      slot.assign([&service, weak](boost::asio::cancellation_type_t) {
        if (auto alive = weak.lock()) service.cancel(alive);
      });
    }
    std::shared_ptr<blocking_task> queued = task;
    service.submit(queued, boost::asio::any_io_executor(io_executor), where);
    if (calls) calls->add(service, queued);
  };
  return boost::asio::async_initiate<CompletionToken, blocking_signature<Result>>(
      initiation, token, ex, std::move(fn), pending, start);
}

}  // namespace ipckit::detail
