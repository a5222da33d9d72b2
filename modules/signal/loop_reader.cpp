// The loop reads the signalfd itself: no thread hop, no wake-up of another thread.
// Why it is safe to leave a signal in the kernel while nobody waits: docs/signal.md.
#include "loop_reader.hpp"

#include "registry.hpp"

#include <boost/asio/post.hpp>

#include <algorithm>

namespace ipckit::signal::detail {

loop_reader::loop_reader(boost::asio::execution_context& context)
    : boost::asio::execution_context::service(context) {}

void loop_reader::attach(const std::shared_ptr<subscription>& sub,
                         const boost::asio::any_io_executor& ex) {
  std::lock_guard lock(mutex_);
  std::erase_if(tracked_, [](const auto& weak) { return weak.expired(); });
  tracked_.push_back(sub);
  sub->reader = this;
  if (!watch_) {
    executor_ = ex;
    watch_.emplace(ex, registry::get().new_watch_fd());
  }
}

void loop_reader::wait_added() {
  std::lock_guard lock(mutex_);
  if (shut_) return;
  ++waits_;
  idle_passes_ = 0;
  if (!armed_ && waits_ > 0) arm();
}

void loop_reader::wait_removed(std::size_t count) {
  std::lock_guard lock(mutex_);
  if (shut_ || count == 0) return;
  waits_ -= static_cast<long>(count);
  // A pending watch is work: it must go once nobody waits, or run() would never run out
  // of work. Not at once, though: the handler just completed usually waits again.
  if (waits_ <= 0 && armed_ && !idle_check_posted_) {
    idle_check_posted_ = true;
    boost::asio::post(*executor_, [this] { stop_if_idle(); });
  }
}

// Asio's async_wait completes at once when the descriptor is readable already (the
// reactor re-polls it when the wait is queued), so a signal that came before the watch
// is not missed.
void loop_reader::arm() {
  armed_ = true;
  const std::uint64_t generation = ++generation_;
  watch_->async_wait(boost::asio::posix::descriptor_base::wait_read,
                     [this, generation](const error_code& ec) { on_readable(ec, generation); });
}

void loop_reader::on_readable(const error_code& ec, std::uint64_t generation) {
  {
    std::lock_guard lock(mutex_);
    if (shut_) return;
    if (generation == generation_) armed_ = false;
  }
  if (ec) return;  // cancelled as idle (a later watch has its own completion)
  // The read completes this context's waits; the watch is armed again only for those
  // left, or when their handlers wait again (wait_added).
  registry::get().drain();
  std::lock_guard lock(mutex_);
  if (!shut_ && !armed_ && waits_ > 0) arm();
}

void loop_reader::stop_if_idle() {
  std::lock_guard lock(mutex_);
  idle_check_posted_ = false;
  if (shut_ || waits_ > 0 || !armed_) return;
  // Two more turns of the loop first: a handler that waits again after a post or two
  // (a coroutine resuming, a composed operation) then finds the watch still armed.
  if (idle_passes_ < 2) {
    ++idle_passes_;
    idle_check_posted_ = true;
    boost::asio::post(*executor_, [this] { stop_if_idle(); });
    return;
  }
  idle_passes_ = 0;
  armed_ = false;
  ++generation_;
  error_code ignored;
  watch_->cancel(ignored);
}

void loop_reader::shutdown() {
  std::vector<std::shared_ptr<subscription>> alive;
  {
    std::lock_guard lock(mutex_);
    shut_ = true;
    for (auto& weak : tracked_)
      if (auto sub = weak.lock()) alive.push_back(std::move(sub));
    tracked_.clear();
  }
  // The waits still pending here are destroyed without being called, which frees
  // coroutine frames and futures waiting on them (as Asio's own services do).
  std::vector<std::unique_ptr<wait_op>> orphans;
  for (auto& sub : alive) {
    std::lock_guard lock(sub->mutex);
    sub->shut_down = true;
    sub->reader = nullptr;
    for (auto& op : sub->waiting) orphans.push_back(std::move(op));
    sub->waiting.clear();
  }
  orphans.clear();  // outside every lock: a handler's destructor may stop a notifier
  std::lock_guard lock(mutex_);
  watch_.reset();
  executor_.reset();
}

}  // namespace ipckit::signal::detail
