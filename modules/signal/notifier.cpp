// notifier: one subscription's queue and waits. The loop's side is loop_reader.cpp, the
// blocking waits are blocking_wait.cpp.
#include "blocking_wait.hpp"
#include "loop_reader.hpp"
#include "registry.hpp"

#include <boost/asio/query.hpp>

#include <algorithm>

namespace ipckit::signal {
namespace detail {
namespace {

bool is_realtime(int number) { return number >= SIGRTMIN && number <= SIGRTMAX; }

}  // namespace

subscription::~subscription() {
  if (wake_fd >= 0) ::close(wake_fd);
}

std::deque<wait_op_ptr> subscription::take_waiting() {
  std::deque<wait_op_ptr> taken;
  taken.swap(waiting);
  if (reader && !shut_down) reader->wait_removed(taken.size());
  return taken;
}

void subscription::wake_blocking() {
  if (draining_for == this) return;
  // The thread stays in its wait until it takes `mutex`, which the caller holds.
  if (has_reading_thread) pthread_kill(reading_thread, wake_signal());
  if (blocking_waiters == 0 || wake_fd < 0) return;
  const std::uint64_t one = 1;
  [[maybe_unused]] const ssize_t written = ::write(wake_fd, &one, sizeof one);
}

void subscription::push(const info& delivery, ready_waits* ready) {
  wait_op_ptr op;
  std::lock_guard lock(mutex);
  if (stopped->load(std::memory_order_relaxed)) return;
  if (!waiting.empty() && !shut_down) {
    op = std::move(waiting.front());
    waiting.pop_front();
    if (reader) reader->wait_removed(1);
    // Either way a stop() that comes before the handler runs turns it into
    // operation_aborted (the stop flag is read when it runs).
    if (ready) ready->push(std::move(op), delivery);
    else op->complete({}, delivery);
    return;
  }
  if (!is_realtime(delivery.number)) {
    // Standard signals coalesce, here as in the kernel: one undelivered copy is kept.
    const bool queued = std::any_of(queue.begin(), queue.end(),
                                    [&](const info& i) { return i.number == delivery.number; });
    if (queued) return;
  } else if (queue.size() >= queue_limit) {
    ++dropped;
    return;
  }
  queue.push_back(delivery);
  wake_blocking();
}

all_signals_blocked_here::all_signals_blocked_here() noexcept {
  sigset_t all;
  sigfillset(&all);
  pthread_sigmask(SIG_SETMASK, &all, &saved_);
}

all_signals_blocked_here::~all_signals_blocked_here() { pthread_sigmask(SIG_SETMASK, &saved_, nullptr); }

std::uint64_t next_wait_id() noexcept {
  static std::atomic<std::uint64_t> counter{0};
  return ++counter;
}

void redeliver_unwatched(const info& delivery) noexcept {
  try {
    registry::get().redeliver_unwatched(delivery);
  } catch (...) {  // a mutex that cannot lock: nothing better to do in a handler's path
  }
}

std::shared_ptr<const std::atomic<bool>> stop_flag(const std::shared_ptr<subscription>& state) {
  if (!state) return nullptr;
  return state->stopped;
}

void start_wait(const std::shared_ptr<subscription>& state, wait_op_ptr op) {
  if (!state) {
    op->complete(boost::asio::error::operation_aborted, {});
    return;
  }
  loop_reader* reader = nullptr;
  {
    std::lock_guard lock(state->mutex);
    if (state->stopped->load(std::memory_order_relaxed) || state->shut_down) {
      op->complete(boost::asio::error::operation_aborted, {});
      return;
    }
    if (!state->queue.empty()) {
      info delivery = state->queue.front();
      state->queue.pop_front();
      op->complete({}, delivery);
      return;
    }
    state->waiting.push_back(std::move(op));
    reader = state->reader;
  }
  // Outside the lock: arming the watch reads the signalfd at once, and what it reads may
  // complete this very wait.
  if (reader) reader->wait_added();
}

void cancel_wait(const std::weak_ptr<subscription>& weak, std::uint64_t id) {
  auto state = weak.lock();
  if (!state) return;
  wait_op_ptr op;
  std::lock_guard lock(state->mutex);
  auto found = std::find_if(state->waiting.begin(), state->waiting.end(),
                            [id](const auto& waiting) { return waiting->id() == id; });
  if (found == state->waiting.end()) return;
  op = std::move(*found);
  state->waiting.erase(found);
  if (state->reader && !state->shut_down) state->reader->wait_removed(1);
  op->complete(boost::asio::error::operation_aborted, {});
}

}  // namespace detail

using detail::registry;

notifier::notifier(const executor_type& ex, std::vector<int> signals, error_code& ec)
    : executor_(ex), state_(std::make_shared<detail::subscription>()) {
  auto& context = boost::asio::query(executor_, boost::asio::execution::context);
  try {
    // Throws only when the service's descriptors cannot be made (EMFILE, say).
    boost::asio::use_service<detail::loop_reader>(context).attach(state_, executor_);
  } catch (const system_error& e) {
    ec = e.code();
    return;
  }
  registry::get().subscribe(state_, signals, ec);
  if (ec) registry::get().remove(state_);
}

notifier::notifier(const executor_type& ex, std::vector<int> signals)
    : executor_(ex), state_(std::make_shared<detail::subscription>()) {
  auto& context = boost::asio::query(executor_, boost::asio::execution::context);
  boost::asio::use_service<detail::loop_reader>(context).attach(state_, executor_);
  error_code ec;
  registry::get().subscribe(state_, signals, ec);
  if (ec) {
    registry::get().remove(state_);
    std::string names;
    for (int number : signals) names += (names.empty() ? "" : ",") + name(number);
    throw_error(ec, {"notify", "", "", names, ""});
  }
}

notifier::notifier(notifier&& other) noexcept
    : executor_(std::move(other.executor_)), state_(std::move(other.state_)) {}

notifier& notifier::operator=(notifier&& other) noexcept {
  if (this != &other) {
    stop();
    executor_ = std::move(other.executor_);
    state_ = std::move(other.state_);
  }
  return *this;
}

notifier::~notifier() { stop(); }

void notifier::add(int number, error_code& ec) {
  if (!state_ || state_->stopped->load()) {
    ec = boost::asio::error::operation_aborted;
    return;
  }
  registry::get().subscribe(state_, {number}, ec);
}

void notifier::add(int number) {
  error_code ec;
  add(number, ec);
  if (ec) throw_error(ec, {"notify", "", "", name(number), ""});
}

void notifier::remove(int number) {
  if (state_) registry::get().unsubscribe(state_, number);
}

std::vector<int> notifier::signals() const {
  if (!state_) return {};
  return registry::get().signals_of(state_);
}

void notifier::stop() noexcept {
  if (!state_) return;
  registry::get().remove(state_);
  std::deque<detail::wait_op_ptr> aborted;
  std::deque<info> undelivered;
  {
    std::lock_guard lock(state_->mutex);
    state_->stopped->store(true, std::memory_order_release);
    undelivered.swap(state_->queue);
    aborted = state_->take_waiting();
    if (!state_->shut_down)
      for (auto& op : aborted) op->complete(boost::asio::error::operation_aborted, {});
    state_->wake_blocking();
  }
  // What was queued here and never waited for is not lost: if no notifier of its signal
  // is left, it takes the disposition that is back now (docs/signal.md, "Stop").
  for (const auto& delivery : undelivered) registry::get().redeliver_unwatched(delivery);
}

void notifier::cancel() {
  if (!state_) return;
  std::deque<detail::wait_op_ptr> aborted;
  std::lock_guard lock(state_->mutex);
  aborted = state_->take_waiting();
  for (auto& op : aborted) op->complete(boost::asio::error::operation_aborted, {});
}

std::size_t notifier::dropped() const {
  if (!state_) return 0;
  std::lock_guard lock(state_->mutex);
  return state_->dropped;
}

namespace {

// One wait of an on_signal loop; each delivery arms the next while the subscription lives.
void arm(const std::shared_ptr<detail::subscription>& state, const notifier::executor_type& ex,
         std::shared_ptr<std::function<void(const info&)>> handler) {
  auto next = [weak = std::weak_ptr<detail::subscription>(state), ex, handler](error_code ec, info got) {
    if (ec) return;
    (*handler)(got);
    if (auto alive = weak.lock()) arm(alive, ex, handler);
  };
  detail::start_wait(state, detail::wait_op_ptr(detail::wait_op_impl<decltype(next), notifier::executor_type>::create(
                                std::move(next), ex, detail::stop_flag(state))));
}

}  // namespace

void notifier::on_signal(std::function<void(const info&)> handler) {
  if (state_) arm(state_, executor_, std::make_shared<std::function<void(const info&)>>(std::move(handler)));
}

info notifier::wait(error_code& ec) {
  bool aborted = false;
  auto delivery = detail::wait_blocking(state_.get(), std::nullopt, aborted, ec);
  if (!ec && aborted) ec = boost::asio::error::operation_aborted;
  return delivery.value_or(info{});
}

info notifier::wait() {
  error_code ec;
  info delivery = wait(ec);
  if (ec) throw_error(ec, {"wait", "", "", "signal", ""});
  return delivery;
}

std::optional<info> notifier::wait_for(std::chrono::nanoseconds timeout) {
  bool aborted = false;
  error_code ec;
  auto delivery = detail::wait_blocking(state_.get(), std::chrono::steady_clock::now() + timeout, aborted, ec);
  if (ec) throw_error(ec, {"wait", "", "", "signal", ""});
  return delivery;
}

void ignore(std::vector<int> signals, error_code& ec) { registry::get().ignore(signals, ec); }

void ignore(std::vector<int> signals) {
  error_code ec;
  ignore(signals, ec);
  if (ec) throw_error(ec, {"ignore", "", "", "signal", ""});
}

void reset(std::vector<int> signals, error_code& ec) { registry::get().reset(signals, ec); }

void reset(std::vector<int> signals) {
  error_code ec;
  reset(signals, ec);
  if (ec) throw_error(ec, {"reset", "", "", "signal", ""});
}

}  // namespace ipckit::signal
