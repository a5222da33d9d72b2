// The loop reads the signalfd itself: no thread hop, no wake-up of another thread.
// Why it is safe to leave a signal in the kernel while nobody waits: docs/signal.md.
#include "loop_reader.hpp"

#include "registry.hpp"

#include <boost/asio/post.hpp>

#include <algorithm>

namespace ipckit::signal::detail {
namespace {

// The reader whose read attempt runs in this thread: the waits it takes from their
// queues need no idle check, since its completion decides whether to watch on.
thread_local const loop_reader* attempting_for = nullptr;

}  // namespace

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
    watch_.emplace(ex);
    watch_->assign(registry::get().new_watch_fd());
  }
}

void loop_reader::wait_added() {
  waits_.fetch_add(1, std::memory_order_relaxed);
  std::lock_guard lock(mutex_);
  if (shut_.load(std::memory_order_relaxed)) return;
  idle_passes_ = 0;
  if (!armed_) arm();
}

void loop_reader::wait_removed(std::size_t count) {
  if (count == 0) return;
  const long left = waits_.fetch_sub(static_cast<long>(count), std::memory_order_relaxed) - static_cast<long>(count);
  if (left > 0 || attempting_for == this || shut_.load(std::memory_order_relaxed)) return;
  // A pending attempt is work: it must go once nobody waits, or run() would never run
  // out of work. Not at once, though: the handler just completed usually waits again.
  if (!idle_check_posted_.exchange(true)) boost::asio::post(*executor_, [this] { stop_if_idle(); });
}

// The attempt reads the signalfd now (the raw loop's "read before waiting") and again at
// each edge of the edge-triggered registration; it is finished once it has waits to
// complete, which its completion does on the loop, outside every lock.
void loop_reader::arm() {
  armed_ = true;
  const std::uint64_t generation = ++generation_;
  watch_->async_attempt<void>(
      ipckit::detail::attempt_direction::read,
      [this](error_code&) {
        ready_waits ready;
        attempting_for = this;
        registry::get().read_for_loop(ready);
        attempting_for = nullptr;
        if (ready.empty()) return false;
        std::lock_guard lock(read_mutex_);
        for (auto& wait : ready) read_.push_back(std::move(wait));
        return true;
      },
      [this, generation](const error_code& ec) { on_read(ec, generation); });
}

void loop_reader::on_read(const error_code& ec, std::uint64_t generation) {
  ready_waits ready;
  {
    std::lock_guard lock(mutex_);
    if (shut_.load(std::memory_order_relaxed)) return;  // read_ is destroyed with the service
    if (generation == generation_) armed_ = false;  // else cancelled as idle: a later one is armed
  }
  if (!ec) {
    // Even from an attempt cancelled as idle after it finished: its waits are done.
    std::lock_guard lock(read_mutex_);
    ready.swap(read_);
  }
  // Armed again only for the waits left, or when their handlers wait again (wait_added),
  // and also when a handler throws out of run(): the loop keeps watching for the others.
  struct watch_on {
    loop_reader* self;
    ~watch_on() {
      std::lock_guard lock(self->mutex_);
      if (self->shut_.load(std::memory_order_relaxed) || self->armed_ ||
          self->waits_.load(std::memory_order_relaxed) <= 0)
        return;
      try {
        self->arm();
      } catch (...) {  // no memory for the attempt: the next wait_added tries again
        self->armed_ = false;
      }
    }
  } rearm{this};
  complete_all(ready);
}

void loop_reader::stop_if_idle() {
  std::lock_guard lock(mutex_);
  idle_check_posted_.store(false);
  if (shut_.load(std::memory_order_relaxed) || waits_.load(std::memory_order_relaxed) > 0 || !armed_) return;
  // Two more turns of the loop first: a handler that waits again after a post or two
  // (a coroutine resuming, a composed operation) then finds the watch still armed.
  if (idle_passes_ < 2) {
    ++idle_passes_;
    idle_check_posted_.store(true);
    boost::asio::post(*executor_, [this] { stop_if_idle(); });
    return;
  }
  idle_passes_ = 0;
  armed_ = false;
  ++generation_;
  watch_->cancel();
}

void loop_reader::shutdown() {
  std::vector<std::shared_ptr<subscription>> alive;
  {
    std::lock_guard lock(mutex_);
    shut_.store(true);
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
