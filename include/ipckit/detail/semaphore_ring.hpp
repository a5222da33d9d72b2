// Async waits of named semaphores on the loop itself, through io_uring: an
// IORING_OP_FUTEX_WAIT on the sem_t's value word, counted as a waiter the way sem_wait
// counts itself, so that the peer's sem_post wakes the ring, whose descriptor is on the
// loop's epoll. One thread switch per hand-off instead of the worker pool's two (peer →
// worker → loop): docs/semaphore.md, docs/performance-findings.md (finding 6).
// Internal: named_semaphore uses it; users never include this header.
#pragma once

#include <ipckit/error.hpp>

#include <boost/asio/any_io_executor.hpp>
#include <boost/asio/associated_cancellation_slot.hpp>
#include <boost/asio/associated_executor.hpp>
#include <boost/asio/async_result.hpp>
#include <boost/asio/dispatch.hpp>
#include <boost/asio/error.hpp>
#include <boost/asio/execution_context.hpp>
#include <boost/asio/executor_work_guard.hpp>
#include <boost/asio/post.hpp>

#include <cstddef>
#include <memory>
#include <mutex>
#include <semaphore.h>
#include <type_traits>
#include <utility>
#include <vector>

namespace ipckit::detail {

/// What a ring wait completes with when it could not wait on the ring after all (the
/// kernel refused a request): no unit was taken, and the caller waits elsewhere.
inline error_code ring_unavailable() noexcept { return boost::asio::error::operation_not_supported; }

/// One async wait on the ring, type-erased.
class ring_wait {
 public:
  /// `keep_mapped` keeps `sem` mapped until the wait is over.
  ring_wait(sem_t* sem, std::shared_ptr<const void> keep_mapped) noexcept
      : sem_(sem), keep_mapped_(std::move(keep_mapped)) {}
  ring_wait(const ring_wait&) = delete;
  ring_wait& operator=(const ring_wait&) = delete;
  virtual ~ring_wait() = default;

  /// Queues the handler's call with `ec` on its executor.
  virtual void post_completion(std::shared_ptr<ring_wait> self, error_code ec) = 0;
  /// Calls the handler at once if this thread runs its executor, else queues the call.
  virtual void dispatch_completion(std::shared_ptr<ring_wait> self, error_code ec) = 0;

  sem_t* semaphore() const noexcept { return sem_; }

  /// Where the wait stands; the service's, read and written under its mutex only.
  struct ring_progress {
    bool cancelled = false;        // cancel() was called
    bool counted = false;          // counted in the semaphore's waiters
    bool finished = false;         // its outcome is decided
    bool futex_in_kernel = false;  // the kernel holds its FUTEX_WAIT
    bool cancel_in_kernel = false; // the kernel holds an ASYNC_CANCEL aimed at it
    std::size_t slot = 0;          // its index in the service's list while the kernel holds either
  };
  ring_progress progress;

 private:
  sem_t* sem_;
  std::shared_ptr<const void> keep_mapped_;
};

template <class Handler, class IoExecutor>
class ring_wait_impl final : public ring_wait {
 public:
  ring_wait_impl(Handler handler, const IoExecutor& io_executor, sem_t* sem, std::shared_ptr<const void> keep_mapped)
      : ring_wait(sem, std::move(keep_mapped)),
        handler_(std::move(handler)),
        io_work_(io_executor),
        handler_work_(boost::asio::get_associated_executor(handler_, io_executor)) {}

  Handler& handler() noexcept { return handler_; }

  void post_completion(std::shared_ptr<ring_wait> self, error_code ec) override {
    boost::asio::post(handler_work_.get_executor(),
                      [self = std::move(self), ec] { static_cast<ring_wait_impl&>(*self).complete(ec); });
  }

  void dispatch_completion(std::shared_ptr<ring_wait> self, error_code ec) override {
    boost::asio::dispatch(handler_work_.get_executor(),
                          [self = std::move(self), ec] { static_cast<ring_wait_impl&>(*self).complete(ec); });
  }

 private:
  void complete(error_code ec) {
    auto slot = boost::asio::get_associated_cancellation_slot(handler_);
    if (slot.is_connected()) slot.clear();
    auto handler = std::move(handler_);
    io_work_.reset();
    handler_work_.reset();
    std::move(handler)(ec);
  }

  Handler handler_;
  boost::asio::executor_work_guard<IoExecutor> io_work_;
  boost::asio::executor_work_guard<boost::asio::associated_executor_t<Handler, IoExecutor>> handler_work_;
};

/// One io_uring per execution context, made when a named semaphore's async_wait first
/// has to wait. Its descriptor joins the loop's reactor once; it is watched (a reactor
/// operation pending) only while waits are in flight, so that run() can return.
///
/// Usable only when all of it works here: glibc's 64-bit sem_t protocol (checked once
/// per process), io_uring_setup (refused under some seccomp filters and with
/// /proc/sys/kernel/io_uring_disabled), and IORING_OP_FUTEX_WAIT (Linux 6.7; tried once
/// on the new ring). IPCKIT_NO_IO_URING=1 in the environment when the context makes it
/// turns it off. Otherwise named semaphores wait on the worker pool, as before: only
/// the speed differs.
///
/// Thread safety: any threads. shutdown() (the context's destruction) takes every wait
/// out of the semaphores' waiter counts and destroys the handlers without calling them.
/// In a child made by fork() without exec, io_context::notify_fork(fork_child) leaves
/// the parent's ring (its memory is shared) to the parent: the child's copies of the
/// waits complete with ring_unavailable() (they go on on the pool), and later waits use
/// a ring of the child's own.
class semaphore_ring_service : public boost::asio::execution_context::service {
 public:
  using key_type = semaphore_ring_service;
  static inline boost::asio::execution_context::id id;

  explicit semaphore_ring_service(boost::asio::execution_context& context);
  ~semaphore_ring_service() override;

  /// Whether a wait on `sem` can go to the ring.
  bool can_wait(const sem_t* sem) const noexcept;
  /// Whether the ring is there at all (for tests and diagnostics).
  bool usable() const noexcept;

  /// Starts `wait` on the loop of `ex` (at once if this thread runs it). It completes
  /// with success (a unit taken), operation_aborted (after cancel(); none taken) or
  /// ring_unavailable(); never inside this call.
  void start(std::shared_ptr<ring_wait> wait, const boost::asio::any_io_executor& ex);
  /// Aborts `wait`; an outcome already decided stands (a unit taken stays taken).
  void cancel(const std::shared_ptr<ring_wait>& wait);

 private:
  void shutdown() override;
  void notify_fork(boost::asio::execution_context::fork_event event) override;
  struct impl;
  std::unique_ptr<impl> impl_;
};

/// The ring waits of one named semaphore, so that close() aborts them. A wait added
/// after cancel_all() is aborted at once. Thread safety: any threads.
class pending_ring_waits {
 public:
  void add(semaphore_ring_service& service, const std::shared_ptr<ring_wait>& wait);
  void cancel_all();

 private:
  std::mutex mutex_;
  bool cancelled_ = false;
  std::vector<std::pair<semaphore_ring_service*, std::weak_ptr<ring_wait>>> waits_;
};

/// Waits for a unit of `sem` on `service`'s ring; completes with void(error_code) as
/// semaphore_ring_service::start says. Every cancellation type aborts it.
template <class Executor, class CompletionToken>
auto async_ring_take(semaphore_ring_service& service, const Executor& ex, sem_t* sem,
                     std::shared_ptr<const void> keep_mapped, pending_ring_waits* pending, CompletionToken&& token) {
  auto initiation = [](auto handler, semaphore_ring_service* ring, const Executor& io_executor, sem_t* semaphore,
                       std::shared_ptr<const void> keep, pending_ring_waits* waits) {
    using wait_type = ring_wait_impl<std::decay_t<decltype(handler)>, Executor>;
    auto wait = std::make_shared<wait_type>(std::move(handler), io_executor, semaphore, std::move(keep));
    auto slot = boost::asio::get_associated_cancellation_slot(wait->handler());
    if (slot.is_connected()) {
      std::weak_ptr<ring_wait> weak = wait;
      slot.assign([ring, weak](boost::asio::cancellation_type_t) {
        if (auto alive = weak.lock()) ring->cancel(alive);
      });
    }
    if (waits) waits->add(*ring, wait);
    ring->start(std::move(wait), boost::asio::any_io_executor(io_executor));
  };
  return boost::asio::async_initiate<CompletionToken, void(error_code)>(initiation, token, &service, ex, sem,
                                                                       std::move(keep_mapped), pending);
}

}  // namespace ipckit::detail
