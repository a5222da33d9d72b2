// notify_context (Go's NotifyContext with its cause) and run_until_signal.
#include <ipckit/signal.hpp>

#include <boost/asio/post.hpp>

#include <list>
#include <mutex>

namespace ipckit::signal {

struct notify_context::impl {
  impl(const executor_type& ex, std::vector<int> signals, boost::asio::cancellation_type t)
      : executor(ex), type(t), subscription(ex, std::move(signals)) {}

  executor_type executor;
  boost::asio::cancellation_type type;
  notifier subscription;
  std::list<boost::asio::cancellation_signal> slots;  // touched on the executor only
  std::stop_source source;
  mutable std::mutex mutex;
  std::optional<info> cause;
  bool fired = false;

  // Records the cause and requests stop at once; the slots are emitted on the executor.
  static void fire(const std::shared_ptr<impl>& self, std::optional<info> cause) {
    {
      std::lock_guard lock(self->mutex);
      if (self->fired) return;
      self->fired = true;
      self->cause = std::move(cause);
    }
    self->source.request_stop();
    boost::asio::post(self->executor, [weak = std::weak_ptr<impl>(self)] {
      if (auto alive = weak.lock())
        for (auto& slot : alive->slots) slot.emit(alive->type);
    });
    self->subscription.stop();
  }
};

notify_context::notify_context(const executor_type& ex, std::vector<int> signals,
                               boost::asio::cancellation_type type)
    : impl_(std::make_shared<impl>(ex, std::move(signals), type)) {
  impl_->subscription.async_wait([weak = std::weak_ptr<impl>(impl_)](error_code ec, info delivery) {
    if (ec) return;
    if (auto alive = weak.lock()) impl::fire(alive, delivery);
  });
}

notify_context::~notify_context() { stop(); }

boost::asio::cancellation_slot notify_context::slot() { return impl_->slots.emplace_back().slot(); }

std::stop_token notify_context::stop_token() const { return impl_->source.get_token(); }

bool notify_context::done() const {
  std::lock_guard lock(impl_->mutex);
  return impl_->fired;
}

std::optional<info> notify_context::cause() const {
  std::lock_guard lock(impl_->mutex);
  return impl_->cause;
}

void notify_context::cancel() { impl::fire(impl_, std::nullopt); }

void notify_context::stop() noexcept { impl_->subscription.stop(); }

std::optional<info> run_until_signal(boost::asio::io_context& loop, std::vector<int> signals) {
  // Shared with the handler: if the loop stops for another reason, its aborted
  // completion may run after this function has returned.
  auto got = std::make_shared<std::optional<info>>();
  notifier subscription(loop.get_executor(), std::move(signals));
  subscription.async_wait([got, &loop](error_code ec, info delivery) {
    if (ec) return;
    *got = delivery;
    loop.stop();
  });
  loop.run();
  subscription.stop();
  return *got;
}

std::optional<info> run_until_signal(event_loop& loop, std::vector<int> signals) {
  return run_until_signal(loop.context(), std::move(signals));
}

}  // namespace ipckit::signal
