// The loop reads the signalfd itself: no thread hop, no wake-up of another thread.
// Why it is safe to leave a signal in the kernel while nobody waits: docs/signal.md.
#include "loop_reader.hpp"

#include "registry.hpp"

#include <boost/asio/post.hpp>

#include <algorithm>
#include <thread>

namespace ipckit::signal::detail {
namespace {

// The reader whose read attempt runs in this thread: the waits it takes from their
// queues need no idle check, since its completion decides whether to watch on.
thread_local const loop_reader* attempting_for = nullptr;

class spin_guard {
 public:
  explicit spin_guard(std::atomic_flag& busy) : busy_(busy) {
    while (busy_.test_and_set(std::memory_order_acquire)) std::this_thread::yield();
  }
  ~spin_guard() { busy_.clear(std::memory_order_release); }
  spin_guard(const spin_guard&) = delete;
  spin_guard& operator=(const spin_guard&) = delete;

 private:
  std::atomic_flag& busy_;
};

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
  waits_.fetch_add(1);
  if (armed_.load()) return;
  std::lock_guard lock(mutex_);
  if (!shut_.load(std::memory_order_relaxed) && !armed_.load()) arm();
}

void loop_reader::wait_removed(std::size_t count) {
  if (count == 0) return;
  const long left = waits_.fetch_sub(static_cast<long>(count)) - static_cast<long>(count);
  if (left > 0 || attempting_for == this || shut_.load(std::memory_order_relaxed)) return;
  // A pending attempt is work: it must go once nobody waits, or run() would never run
  // out of work. Not at once, though: the handler just completed usually waits again.
  if (!idle_check_posted_.exchange(true)) boost::asio::post(*executor_, [this] { stop_if_idle(); });
}

// The attempt reads the signalfd at once when an edge came since the last read found it
// empty (else it waits for the next edge, where the raw loop reads to learn that it is
// empty), and again at each edge. It is finished once it has waits to complete, which
// its completion does on the loop, outside every lock.
void loop_reader::arm() {
  armed_.store(true);
  watch_->async_attempt<void>(
      ipckit::detail::attempt_direction::read,
      [this](error_code&) {
        ready_waits ready;
        attempting_for = this;
        const bool drained = registry::get().read_for_loop(ready);
        attempting_for = nullptr;
        if (ready.empty()) return ipckit::detail::attempt_status::would_block;
        {
          spin_guard busy(read_busy_);
          read_.splice(ready);
        }
        armed_.store(false);
        return drained ? ipckit::detail::attempt_status::finished_and_drained
                       : ipckit::detail::attempt_status::finished;
      },
      [this](const error_code& ec) { on_read(ec); });
}

void loop_reader::on_read(const error_code& ec) {
  if (shut_.load(std::memory_order_relaxed)) return;  // read_ is destroyed with the service
  if (ec) return;  // cancelled as idle
  ready_waits ready;
  {
    spin_guard busy(read_busy_);
    ready.splice(read_);
  }
  // Armed again only for the waits left, or when their handlers wait again (wait_added),
  // and also when a handler throws out of run(): the loop keeps watching for the others.
  struct watch_on {
    loop_reader* self;
    ~watch_on() { self->watch_on_if_waiting(); }
  } rearm{this};
  complete_all(ready, &context());
}

void loop_reader::watch_on_if_waiting() {
  if (armed_.load() || waits_.load() <= 0) return;
  std::lock_guard lock(mutex_);
  if (shut_.load(std::memory_order_relaxed) || armed_.load() || waits_.load() <= 0) return;
  try {
    arm();
  } catch (...) {  // no memory for the attempt: the next wait_added tries again
    armed_.store(false);
  }
}

void loop_reader::stop_if_idle() {
  std::lock_guard lock(mutex_);
  idle_check_posted_.store(false);
  if (shut_.load(std::memory_order_relaxed) || !armed_.load()) return;
  if (waits_.load() > 0) {
    idle_passes_ = 0;
    return;
  }
  // Two more turns of the loop first: a handler that waits again after a post or two
  // (a coroutine resuming, a composed operation) then finds the watch still armed.
  if (idle_passes_ < 2) {
    ++idle_passes_;
    idle_check_posted_.store(true);
    boost::asio::post(*executor_, [this] { stop_if_idle(); });
    return;
  }
  idle_passes_ = 0;
  watch_->cancel();
  armed_.store(false);
  // A wait added meanwhile saw the watch armed and left it to this one.
  if (waits_.load() > 0) arm();
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
  std::vector<wait_op_ptr> orphans;
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
  ready_waits unrun;
  {
    spin_guard busy(read_busy_);
    unrun.splice(read_);
  }
}

}  // namespace ipckit::signal::detail
