// Signals on the event loop: Go's os/signal (Notify, Stop, Ignore, Reset, Ignored,
// NotifyContext) on Boost.Asio, and what Go and Asio cannot say: who sent each signal.
//
// One process-wide signalfd is read by whoever waits (a loop with a pending async_wait,
// on its own reactor; a thread in wait()), which fans each delivery out to every
// subscription (notifier) for that signal. Each notifier has its
// own queue and completes its waits on its own executor, so notifiers on several
// io_contexts and threads work side by side and a slow one never holds up the others.
// Handlers always run on the loop, never in signal context. See docs/signal.md.
#pragma once

#include <ipckit/error.hpp>
#include <ipckit/event_loop.hpp>
#include <ipckit/detail/signal_wait.hpp>

#include <boost/asio/any_io_executor.hpp>
#include <boost/asio/async_result.hpp>
#include <boost/asio/cancellation_signal.hpp>
#include <boost/asio/cancellation_type.hpp>
#include <boost/asio/execution_context.hpp>
#include <boost/asio/io_context.hpp>

#include <chrono>
#include <cstddef>
#include <functional>
#include <memory>
#include <optional>
#include <stop_token>
#include <string>
#include <string_view>
#include <sys/types.h>
#include <type_traits>
#include <vector>

namespace ipckit::signal {

/// Errors of the signal module.
enum class errc {
  unknown_signal = 1,   ///< a name or number that is no signal here: "unknown signal"
  reserved_signal,      ///< ipckit::detail::interrupt_signal(), the worker pool's own
  uncatchable_signal,   ///< SIGKILL and SIGSTOP cannot be caught, ignored or reset
  synchronous_signal,   ///< SIGSEGV, SIGBUS, SIGFPE, SIGILL: a fault, not a message
  invalid_pid,          ///< send/queue to a pid that is not > 0 (use send_group)
};

const boost::system::error_category& category() noexcept;
error_code make_error_code(errc e) noexcept;

// `info`, one delivery, is declared in detail/signal_wait.hpp (async_wait needs it):
// number, sender_pid, sender_uid, code (si_code), value (the sigqueue value), status.

/// The si_code of a delivery as a word: "user" (kill), "queue" (sigqueue), "tkill",
/// "kernel", "timer", "mesgq", "asyncio", "sigio"; for SIGCHLD "exited", "killed",
/// "dumped", "trapped", "stopped", "continued"; otherwise "code N".
std::string code_name(const info& delivery);

/// A signal by name or number: "SIGTERM", "TERM", "term", "15", "SIGRTMIN+3", "RTMIN+2",
/// "RTMAX-1", "SIGRTMAX". Anything else is errc::unknown_signal.
int parse(std::string_view text, error_code& ec);
int parse(std::string_view text);

/// The signal's name as `kill -l` and Go print it: "SIGTERM", "SIGRTMIN+3", "SIGRTMAX-2";
/// a number that is no signal gives "signal 99" (Go's syscall.Signal.String).
std::string name(int number);

/// kill(2) to one process. pid must be > 0; signal 0 checks that the process exists.
void send(pid_t pid, int number, error_code& ec);
void send(pid_t pid, int number);
/// kill(2) to a process group (kill(-pgid)); pgid 0 is the caller's own group.
void send_group(pid_t pgid, int number, error_code& ec);
void send_group(pid_t pgid, int number);
/// sigqueue(3): the signal with a value the receiver reads as info::value. Realtime
/// signals queued this way are delivered in order, none lost.
void queue(pid_t pid, int number, int value, error_code& ec);
void queue(pid_t pid, int number, int value);

/// Go's signal.Ignore: the signals are ignored from now on, and every notifier stops
/// receiving them (the notifiers stay usable for their other signals).
void ignore(std::vector<int> signals, error_code& ec);
void ignore(std::vector<int> signals);
/// Go's signal.Reset: notifiers stop receiving the signals and each gets back the
/// disposition it had before ipckit first changed it (an inherited SIG_IGN stays
/// ignored, as in Go). An empty list resets every signal ipckit has changed.
void reset(std::vector<int> signals, error_code& ec);
void reset(std::vector<int> signals = {});
/// Go's signal.Ignored: the signal's disposition is SIG_IGN now, whether by ignore()
/// or inherited (a program started under nohup sees SIGHUP ignored).
bool ignored(int number);

/// For a program that forks by hand: call in the child between fork and exec. Empties
/// the signal mask and sets every disposition to SIG_DFL (exec keeps both the mask and
/// SIG_IGN). Async-signal-safe.
void restore_child_defaults() noexcept;

/// For a program that starts children with Boost.Process v2: pass it as an initializer,
/// `boost::process::v2::process p(ctx, exe, args, ipckit::signal::default_child_signals{});`,
/// and the child starts with an empty mask and default dispositions, as ipckit's own
/// children do. It calls restore_child_defaults() between fork and exec (the launcher's
/// on_exec_setup hook). Without it such a child inherits the signals ipckit blocked.
struct default_child_signals {
  template <class Launcher, class Path>
  error_code on_exec_setup(Launcher&, const Path&, const char* const*&) const noexcept {
    restore_child_defaults();
    return {};
  }
};

/// A subscription (Go's signal.Notify with its channel, Asio's signal_set): every
/// delivery of its signals after construction is queued for it until it is stopped.
///
/// - Each notifier gets every delivery of its signals; several notifiers, in one or many
///   io_contexts and threads, each get their own copy.
/// - Standard signals may coalesce: the kernel merges a pending standard signal, and a
///   notifier keeps at most one undelivered copy of each. Realtime signals are queued:
///   every one is delivered, in order (up to 65536 undelivered per notifier; beyond
///   that they are counted in dropped()).
/// - After stop() (or the destructor) returns, nothing more is delivered: pending and
///   already posted waits complete with operation_aborted. When the last notifier of a
///   signal goes, its previous disposition is back, and the signal is unblocked in the
///   calling thread (other threads unblock it on their next ipckit::signal call); the
///   deliveries it had not handed out are sent to the process again, so none is lost:
///   each is delivered, or takes the disposition that is back.
/// - Subscribing blocks the signals in the calling thread (threads started later inherit
///   that); a thread that has them unblocked still delivers through ipckit's handler.
///
/// Thread safety: distinct notifiers, any threads. One notifier: async_wait, cancel and
/// stop from any thread; its completions run on its executor.
class notifier {
 public:
  using executor_type = boost::asio::any_io_executor;

  /// Subscribes to `signals` (none is allowed: add them later).
  notifier(const executor_type& ex, std::vector<int> signals);
  notifier(const executor_type& ex, std::vector<int> signals, error_code& ec);
  template <class ExecutionContext>
    requires std::is_convertible_v<ExecutionContext&, boost::asio::execution_context&>
  notifier(ExecutionContext& context, std::vector<int> signals)
      : notifier(executor_type(context.get_executor()), std::move(signals)) {}

  notifier(notifier&& other) noexcept;
  notifier& operator=(notifier&& other) noexcept;
  notifier(const notifier&) = delete;
  notifier& operator=(const notifier&) = delete;
  ~notifier();  // stop()

  executor_type get_executor() const noexcept { return executor_; }

  void add(int number, error_code& ec);
  void add(int number);
  void remove(int number);
  std::vector<int> signals() const;

  /// Go's signal.Stop: unsubscribes; nothing is delivered after it returns.
  void stop() noexcept;
  /// Completes pending waits with operation_aborted; the subscription stays.
  void cancel();
  /// Deliveries dropped because 65536 were already waiting.
  std::size_t dropped() const;

  /// Waits for the next delivery: void(error_code, info). Any completion token; a
  /// cancellation slot (any type) aborts the wait, and the delivery is kept for the next.
  template <BOOST_ASIO_COMPLETION_TOKEN_FOR(void(error_code, info))
                Token = boost::asio::default_completion_token_t<executor_type>>
  auto async_wait(Token&& token = boost::asio::default_completion_token_t<executor_type>()) {
    return boost::asio::async_initiate<Token, void(error_code, info)>(
        [](auto handler, const std::shared_ptr<detail::subscription>& state,
           const executor_type& ex) {
          using handler_type = std::decay_t<decltype(handler)>;
          auto* typed = detail::wait_op_impl<handler_type, executor_type>::create(
              std::move(handler), ex, detail::stop_flag(state));
          detail::wait_op_ptr op(typed);
          auto slot = boost::asio::get_associated_cancellation_slot(typed->handler());
          if (slot.is_connected()) {
            op->set_id(detail::next_wait_id());
            slot.assign([weak = std::weak_ptr<detail::subscription>(state),
                         id = op->id()](boost::asio::cancellation_type_t) {
              detail::cancel_wait(weak, id);
            });
          }
          detail::start_wait(state, std::move(op));
        },
        token, state_, executor_);
  }

  /// Go's `for sig := range c`: calls `handler` on the executor for every delivery until
  /// stop(). Replaces async_wait for this notifier (do not mix the two).
  void on_signal(std::function<void(const info&)> handler);

  /// Blocking counterparts (Go's <-c), for threads without a loop.
  info wait(error_code& ec);
  info wait();
  std::optional<info> wait_for(std::chrono::nanoseconds timeout);

 private:
  executor_type executor_;
  std::shared_ptr<detail::subscription> state_;
};

/// Go's signal.NotifyContext, with the cause: fires on the first of its signals (or on
/// cancel()), emitting `type` on every slot handed out and requesting stop on
/// stop_token(). cause() says which signal it was.
///
/// Thread safety: slot() and the emission run on the executor; give it a strand when
/// several threads run the io_context. cause(), done() and stop_token() from any thread.
class notify_context {
 public:
  using executor_type = boost::asio::any_io_executor;

  notify_context(const executor_type& ex, std::vector<int> signals,
                 boost::asio::cancellation_type type = boost::asio::cancellation_type::terminal);
  ~notify_context();  // stop()
  notify_context(const notify_context&) = delete;
  notify_context& operator=(const notify_context&) = delete;

  /// A new slot to bind to an operation (bind_cancellation_slot); one per operation.
  boost::asio::cancellation_slot slot();
  std::stop_token stop_token() const;
  bool done() const;
  /// The signal that fired it; nullopt before, or when cancel() fired it.
  std::optional<info> cause() const;
  /// Fires now, without a signal (Go's cancel func).
  void cancel();
  /// Go's stop func: unsubscribes without firing.
  void stop() noexcept;

 private:
  struct impl;
  std::shared_ptr<impl> impl_;
};

/// The daemon main: runs `loop` until one of `signals` arrives, then stops it and
/// returns the delivery. nullopt when the loop stopped for another reason.
std::optional<info> run_until_signal(boost::asio::io_context& loop, std::vector<int> signals);
std::optional<info> run_until_signal(event_loop& loop, std::vector<int> signals);

}  // namespace ipckit::signal

template <>
struct boost::system::is_error_code_enum<ipckit::signal::errc> : std::true_type {};
