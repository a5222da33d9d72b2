// What notifier::async_wait needs in the header: the delivery type and a type-erased
// pending wait. Internal: users include <ipckit/signal.hpp>.
#pragma once

#include <ipckit/error.hpp>

#include <boost/asio/associated_cancellation_slot.hpp>
#include <boost/asio/associated_executor.hpp>
#include <boost/asio/error.hpp>
#include <boost/asio/executor_work_guard.hpp>
#include <boost/asio/dispatch.hpp>
#include <boost/asio/post.hpp>

#include <atomic>
#include <cstdint>
#include <memory>
#include <optional>
#include <signal.h>
#include <type_traits>
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

/// A pending async_wait, type-erased. complete() posts the handler to its executor; the
/// caller then destroys the (emptied) op.
class wait_op {
 public:
  explicit wait_op(std::uint64_t id) : id_(id) {}
  virtual ~wait_op() = default;
  /// Posts the completion (never runs it inside the caller).
  virtual void complete(const error_code& ec, const info& delivery) = 0;
  /// Dispatches it: runs it at once when the caller is on the handler's executor (a loop
  /// that read the delivery itself), else posts it. Called under no lock.
  virtual void complete_here(const error_code& ec, const info& delivery) = 0;
  std::uint64_t id() const noexcept { return id_; }

 private:
  std::uint64_t id_;
};

std::uint64_t next_wait_id() noexcept;
/// Set once the subscription is stopped: a completion already posted turns into
/// operation_aborted when it runs, so nothing is delivered after stop() returns.
std::shared_ptr<const std::atomic<bool>> stop_flag(const std::shared_ptr<subscription>& state);
void start_wait(const std::shared_ptr<subscription>& state, std::unique_ptr<wait_op> op);
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

template <class Handler, class IoExecutor>
class wait_op_impl final : public wait_op {
 public:
  wait_op_impl(Handler handler, const IoExecutor& io_executor,
               std::shared_ptr<const std::atomic<bool>> stopped)
      : wait_op(next_wait_id()),
        handler_(std::move(handler)),
        io_work_(io_executor),
        handler_work_(boost::asio::get_associated_executor(handler_, io_executor)),
        stopped_(std::move(stopped)) {}

  Handler& handler() noexcept { return handler_; }

  void complete(const error_code& ec, const info& delivery) override { finish<false>(ec, delivery); }
  void complete_here(const error_code& ec, const info& delivery) override { finish<true>(ec, delivery); }

 private:
  template <bool Dispatch>
  void finish(const error_code& ec, const info& delivery) {
    using handler_executor = boost::asio::associated_executor_t<Handler, IoExecutor>;
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
    auto ex = handler_work_.get_executor();
    auto run = [handler = std::move(handler_), io_work = std::move(io_work_),
                handler_work = std::move(handler_work_), stopped = std::move(stopped_), ec,
                delivery]() mutable {
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
    };
    if constexpr (Dispatch) boost::asio::dispatch(ex, std::move(run));
    else boost::asio::post(ex, std::move(run));
  }

  Handler handler_;
  boost::asio::executor_work_guard<IoExecutor> io_work_;
  boost::asio::executor_work_guard<boost::asio::associated_executor_t<Handler, IoExecutor>>
      handler_work_;
  std::shared_ptr<const std::atomic<bool>> stopped_;
};

}  // namespace detail
}  // namespace ipckit::signal
