// What notifier::async_wait needs in the header: the delivery type and a type-erased
// pending wait. Internal: users include <ipckit/signal.hpp>.
#pragma once

#include <ipckit/error.hpp>

#include <boost/asio/associated_cancellation_slot.hpp>
#include <boost/asio/associated_executor.hpp>
#include <boost/asio/error.hpp>
#include <boost/asio/executor_work_guard.hpp>
#include <boost/asio/io_context.hpp>
#include <boost/asio/query.hpp>
#include <boost/asio/dispatch.hpp>
#include <boost/asio/post.hpp>
#include <boost/asio/recycling_allocator.hpp>
#include <boost/asio/associated_allocator.hpp>
#include <boost/asio/any_io_executor.hpp>

#include <atomic>
#include <cstdint>
#include <memory>
#include <optional>
#include <signal.h>
#include <type_traits>
#include <typeinfo>
#include <sys/types.h>
#include <utility>

namespace ipckit::signal {

/// One delivery of a signal, with what the kernel says about its origin.
struct info {
  int number = 0;                     ///< the signal, e.g. SIGTERM
  std::optional<pid_t> sender_pid;    ///< kill/sigqueue/tkill/mq sender; SIGCHLD: the child
  std::optional<uid_t> sender_uid;    ///< its real uid
  int code = 0;                       ///< si_code: SI_USER, SI_QUEUE, CLD_EXITED … (code_name)
  std::optional<int> value;           ///< sigqueue/timer/mq value (sival_int)
  int status = 0;                     ///< SIGCHLD: exit status or signal number
};

namespace detail {

struct subscription;
class ready_waits;

/// A pending async_wait, type-erased. complete() posts the handler to its executor; the
/// caller then destroys the (emptied) op.
class wait_op {
 public:
  /// Posts the completion (never runs it inside the caller).
  virtual void complete(const error_code& ec, const info& delivery) = 0;
  /// Runs it at once when the caller is a thread running `running_loop` (a loop that
  /// read the delivery itself; null elsewhere) and the handler may run there, as an Asio
  /// operation's handler would; else dispatches it. Called under no lock.
  virtual void complete_here(const error_code& ec, const info& delivery,
                             const boost::asio::execution_context* running_loop) = 0;
  /// What a cancellation slot names the wait by (0: it has none).
  std::uint64_t id() const noexcept { return id_; }
  void set_id(std::uint64_t id) noexcept { id_ = id; }

 protected:
  ~wait_op() = default;

 private:
  friend struct wait_op_deleter;
  friend class ready_waits;
  /// Destroys and frees the op with the allocator it was made with.
  virtual void destroy() noexcept = 0;
  std::uint64_t id_ = 0;
  // While in a list of waits a delivery completed (the signal module's ready_waits).
  wait_op* next_ = nullptr;
  info delivery_;
};

struct wait_op_deleter {
  void operator()(wait_op* op) const noexcept { op->destroy(); }
};
using wait_op_ptr = std::unique_ptr<wait_op, wait_op_deleter>;

std::uint64_t next_wait_id() noexcept;
/// Set once the subscription is stopped: a completion already posted turns into
/// operation_aborted when it runs, so nothing is delivered after stop() returns.
std::shared_ptr<const std::atomic<bool>> stop_flag(const std::shared_ptr<subscription>& state);
void start_wait(const std::shared_ptr<subscription>& state, wait_op_ptr op);
void cancel_wait(const std::weak_ptr<subscription>& state, std::uint64_t id);
/// A delivery a stopped notifier will not see: sent again to the process when no
/// notifier of its signal is left, so it takes the disposition that is back.
void redeliver_unwatched(const info& delivery) noexcept;

/// Blocks every signal in the calling thread for its lifetime (then restores the mask).
class all_signals_blocked_here {
 public:
  all_signals_blocked_here() noexcept;
  ~all_signals_blocked_here();
  all_signals_blocked_here(const all_signals_blocked_here&) = delete;
  all_signals_blocked_here& operator=(const all_signals_blocked_here&) = delete;

 private:
  sigset_t saved_;
};

/// The work that keeps the notifier's execution context running while a wait is
/// pending: counted on the io_context itself when the executor is an io_context's own
/// (no type-erased guard to copy a wait), else through a guard of the executor.
template <class IoExecutor>
class wait_work {
 public:
  using plain_executor = boost::asio::io_context::executor_type;

  explicit wait_work(const IoExecutor& ex) {
    if constexpr (std::is_same_v<IoExecutor, boost::asio::any_io_executor>) {
      if (const auto* plain = ex.template target<plain_executor>()) {
        plain_.emplace(*plain);
        return;
      }
    }
    other_.emplace(ex);
  }

  /// The io_context whose threads may run a handler bound to nothing else directly, as
  /// Asio's operations do; null when the executor is something else (a strand, say).
  const boost::asio::execution_context* plain_context() const noexcept {
    return plain_ ? &plain_->get_executor().context() : nullptr;
  }

  /// Hands `f` to the executor: dispatch (run at once when on it) or post. `f` may hold
  /// this guard (moved into it): the executor is copied first.
  template <bool Dispatch, class MakeFunction>
  void hand(MakeFunction make) {
    if (plain_) {
      const auto ex = plain_->get_executor();
      hand_to<Dispatch>(ex, make());
    } else {
      const auto ex = other_->get_executor();
      hand_to<Dispatch>(ex, make());
    }
  }

  void reset() noexcept {
    plain_.reset();
    other_.reset();
  }

 private:
  template <bool Dispatch, class Executor, class F>
  static void hand_to(const Executor& ex, F&& f) {
    if constexpr (Dispatch) boost::asio::dispatch(ex, std::forward<F>(f));
    else boost::asio::post(ex, std::forward<F>(f));
  }

  std::optional<boost::asio::executor_work_guard<plain_executor>> plain_;
  std::optional<boost::asio::executor_work_guard<IoExecutor>> other_;
};

template <class Handler, class IoExecutor>
class wait_op_impl final : public wait_op {
  using handler_executor = boost::asio::associated_executor_t<Handler, IoExecutor>;
  /// The handler names no executor of its own: it runs on the notifier's, and one work
  /// guard keeps that executor's context running for both.
  static constexpr bool on_io_executor = requires {
    typename boost::asio::associated_executor<Handler, IoExecutor>::asio_associated_executor_is_unspecialised;
  };
  struct no_work_guard {
    explicit no_work_guard(const IoExecutor&) noexcept {}
    void reset() noexcept {}
  };
  using handler_work_type =
      std::conditional_t<on_io_executor, no_work_guard, boost::asio::executor_work_guard<handler_executor>>;
  // Made and freed with the handler's allocator, by default Asio's recycling one (the
  // thread's cache of operation-sized blocks): no malloc a wait.
  using allocator_type = typename std::allocator_traits<boost::asio::associated_allocator_t<
      Handler, boost::asio::recycling_allocator<void>>>::template rebind_alloc<wait_op_impl>;

 public:
  static wait_op_impl* create(Handler handler, const IoExecutor& io_executor,
                              std::shared_ptr<const std::atomic<bool>> stopped) {
    allocator_type allocator(boost::asio::get_associated_allocator(handler, boost::asio::recycling_allocator<void>()));
    wait_op_impl* memory = allocator.allocate(1);
    try {
      return new (memory) wait_op_impl(std::move(handler), io_executor, std::move(stopped), allocator);
    } catch (...) {
      allocator.deallocate(memory, 1);
      throw;
    }
  }

  Handler& handler() noexcept { return handler_; }

  void complete(const error_code& ec, const info& delivery) override { finish<false>(ec, delivery); }
  void complete_here(const error_code& ec, const info& delivery,
                     const boost::asio::execution_context* running_loop) override {
    if (on_io_executor && running_loop && io_work_.plain_context() == running_loop) invoke(ec, delivery);
    else finish<true>(ec, delivery);
  }

 private:
  wait_op_impl(Handler handler, const IoExecutor& io_executor,
               std::shared_ptr<const std::atomic<bool>> stopped, const allocator_type& allocator)
      : handler_(std::move(handler)),
        io_work_(io_executor),
        handler_work_(handler_work_of(handler_, io_executor)),
        stopped_(std::move(stopped)),
        allocator_(allocator) {}
  ~wait_op_impl() = default;

  void destroy() noexcept override {
    allocator_type allocator(allocator_);
    this->~wait_op_impl();
    allocator.deallocate(this, 1);
  }

  static handler_work_type handler_work_of(const Handler& handler, const IoExecutor& io_executor) {
    if constexpr (on_io_executor) return handler_work_type(io_executor);
    else return handler_work_type(boost::asio::get_associated_executor(handler, io_executor));
  }

  // What the handler gets: operation_aborted once the notifier is stopped, however far
  // the completion had come. Runs on the handler's executor.
  template <class Work1, class Work2>
  static void call(Handler& handler, Work1& io_work, Work2& handler_work,
                   const std::shared_ptr<const std::atomic<bool>>& stopped, const error_code& ec,
                   const info& delivery) {
    // The slot is cleared here, on the handler's executor, where it is emitted.
    auto slot = boost::asio::get_associated_cancellation_slot(handler);
    if (slot.is_connected()) slot.clear();
    error_code result = ec;
    info out = delivery;
    if (!result && stopped && stopped->load(std::memory_order_acquire)) {
      result = boost::asio::error::operation_aborted;
      redeliver_unwatched(out);
      out = {};
    }
    io_work.reset();
    handler_work.reset();
    std::move(handler)(result, std::move(out));
  }

  void invoke(const error_code& ec, const info& delivery) {
    Handler handler(std::move(handler_));
    auto io_work = std::move(io_work_);
    auto handler_work = std::move(handler_work_);
    auto stopped = std::move(stopped_);
    call(handler, io_work, handler_work, stopped, ec, delivery);
  }

  template <bool Dispatch>
  void finish(const error_code& ec, const info& delivery) {
    if constexpr (!std::is_same_v<handler_executor, IoExecutor>) {
      // The first post to such an executor may start its threads (use_future's system
      // context does), and they would inherit this thread's mask: start them with every
      // signal blocked, so that they never take a signal meant for a notifier.
      static std::atomic<bool> posted_once{false};
      if (!posted_once.load(std::memory_order_acquire)) {
        all_signals_blocked_here blocked;
        hand_over<false>(ec, delivery);
        posted_once.store(true, std::memory_order_release);
        return;
      }
    }
    hand_over<Dispatch>(ec, delivery);
  }

  template <bool Dispatch>
  void hand_over(const error_code& ec, const info& delivery) {
    auto make_run = [this, &ec, &delivery] {
      return [handler = std::move(handler_), io_work = std::move(io_work_), handler_work = std::move(handler_work_),
              stopped = std::move(stopped_), ec, delivery]() mutable {
        call(handler, io_work, handler_work, stopped, ec, delivery);
      };
    };
    if constexpr (on_io_executor) {
      io_work_.template hand<Dispatch>(make_run);
    } else {
      auto ex = handler_work_.get_executor();
      if constexpr (Dispatch) boost::asio::dispatch(ex, make_run());
      else boost::asio::post(ex, make_run());
    }
  }

  Handler handler_;
  wait_work<IoExecutor> io_work_;
  handler_work_type handler_work_;
  std::shared_ptr<const std::atomic<bool>> stopped_;
  allocator_type allocator_;
};

}  // namespace detail
}  // namespace ipckit::signal
