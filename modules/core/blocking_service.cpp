#include <ipckit/detail/blocking_call.hpp>

#include <algorithm>
#include <chrono>
#include <condition_variable>
#include <csignal>
#include <deque>
#include <mutex>
#include <pthread.h>
#include <thread>
#include <vector>

namespace ipckit::detail {
namespace {

void ignore_interrupt(int) {}

}  // namespace

void install_interrupt_handler() {
  static std::once_flag once;
  std::call_once(once, [] {
    struct sigaction action {};
    action.sa_handler = ignore_interrupt;
    sigfillset(&action.sa_mask);
    action.sa_flags = 0;  // no SA_RESTART: the blocking call must see EINTR
    ::sigaction(interrupt_signal(), &action, nullptr);
  });
}

namespace {

// How often a cancelled call that has not returned yet is interrupted again. A signal
// that lands between the call's cancelled() check and its system call is lost, so one
// signal is not enough; repeating closes that window.
constexpr std::chrono::milliseconds reinterrupt_period{1};

}  // namespace

int interrupt_signal() noexcept { return SIGRTMAX; }

struct blocking_service::impl {
  std::mutex mutex;
  std::condition_variable work_ready;
  std::condition_variable cancel_requested;
  std::deque<std::shared_ptr<blocking_task>> queue;
  std::vector<std::shared_ptr<blocking_task>> running;
  std::vector<std::shared_ptr<blocking_task>> cancelling;
  std::vector<std::thread> workers;
  std::thread interrupter;
  std::size_t idle = 0;
  bool stopping = false;
  bool interrupter_stopping = false;

  void start_worker() {
    // A worker must never take a process-directed signal meant for a signalfd or the
    // loop thread, so it starts with everything blocked and unblocks only the interrupt.
    sigset_t all, previous;
    sigfillset(&all);
    pthread_sigmask(SIG_SETMASK, &all, &previous);
    workers.emplace_back([this] { work(); });
    pthread_sigmask(SIG_SETMASK, &previous, nullptr);
  }

  void work() {
    sigset_t interrupt;
    sigemptyset(&interrupt);
    sigaddset(&interrupt, interrupt_signal());
    pthread_sigmask(SIG_UNBLOCK, &interrupt, nullptr);
    std::unique_lock lock(mutex);
    ++idle;
    for (;;) {
      work_ready.wait(lock, [this] { return stopping || !queue.empty(); });
      --idle;
      if (stopping) return;
      auto task = std::move(queue.front());
      queue.pop_front();
      running.push_back(task);
      lock.unlock();

      task->thread_.store(static_cast<unsigned long>(pthread_self()));
      task->running_.store(true);
      if (!task->token().cancelled()) task->run();
      task->running_.store(false);
      task->finished_.store(true);

      lock.lock();
      std::erase(running, task);
      // Idle again before the completion wakes the loop: a call the loop submits at once
      // then finds this thread (which checks the queue before it waits) instead of
      // starting another.
      ++idle;
      if (stopping) continue;
      // Posted without the lock: the loop thread it wakes may take the lock at once
      // (to submit its next call), and would otherwise wake only to wait for us.
      // shutdown() joins this thread before the scheduler goes, so the post is safe.
      lock.unlock();
      task->post_completion(std::move(task));
      lock.lock();
    }
  }

  void interrupt_cancelled() {
    std::unique_lock lock(mutex);
    for (;;) {
      std::erase_if(cancelling, [](const auto& task) { return task->finished_.load(); });
      if (cancelling.empty()) {
        if (interrupter_stopping) return;
        cancel_requested.wait(lock);
        continue;
      }
      for (const auto& task : cancelling)
        if (task->running_.load())
          pthread_kill(static_cast<pthread_t>(task->thread_.load()), interrupt_signal());
      cancel_requested.wait_for(lock, reinterrupt_period);
    }
  }

  // Called with the mutex held.
  void mark_cancelled(const std::shared_ptr<blocking_task>& task) {
    if (task->finished_.load() || task->token().cancelled()) return;
    task->token().cancelled_.store(true, std::memory_order_release);
    cancelling.push_back(task);
    if (!interrupter.joinable()) {
      sigset_t all, previous;
      sigfillset(&all);
      pthread_sigmask(SIG_SETMASK, &all, &previous);
      interrupter = std::thread([this] { interrupt_cancelled(); });
      pthread_sigmask(SIG_SETMASK, &previous, nullptr);
    }
    cancel_requested.notify_one();
  }
};

blocking_service::blocking_service(boost::asio::execution_context& context)
    : boost::asio::execution_context::service(context), impl_(std::make_unique<impl>()) {
  install_interrupt_handler();
}

blocking_service::~blocking_service() { shutdown(); }

void blocking_service::submit(std::shared_ptr<blocking_task> task) {
  std::unique_lock lock(impl_->mutex);
  if (impl_->stopping) return;
  impl_->queue.push_back(std::move(task));
  // Every queued call gets a thread of its own: a call may block for as long as a lock
  // is held elsewhere, and must not wait behind another such call.
  if (impl_->queue.size() > impl_->idle) impl_->start_worker();
  // Notified without the lock, so that the woken worker does not wait for it.
  lock.unlock();
  impl_->work_ready.notify_one();
}

void blocking_service::cancel(const std::shared_ptr<blocking_task>& task) {
  std::lock_guard lock(impl_->mutex);
  if (!impl_->stopping) impl_->mark_cancelled(task);
}

std::size_t blocking_service::thread_count() const {
  std::lock_guard lock(impl_->mutex);
  return impl_->workers.size();
}

void blocking_service::shutdown() {
  {
    std::lock_guard lock(impl_->mutex);
    if (impl_->stopping) return;
    for (const auto& task : impl_->running) impl_->mark_cancelled(task);
    impl_->stopping = true;
    impl_->queue.clear();
    impl_->work_ready.notify_all();
  }
  for (auto& worker : impl_->workers) worker.join();
  {
    std::lock_guard lock(impl_->mutex);
    impl_->interrupter_stopping = true;
    impl_->running.clear();
    impl_->cancel_requested.notify_one();
  }
  if (impl_->interrupter.joinable()) impl_->interrupter.join();
  impl_->workers.clear();
  impl_->cancelling.clear();
}

void pending_calls::add(blocking_service& service, const std::shared_ptr<blocking_task>& task) {
  std::unique_lock lock(mutex_);
  if (cancelled_) {
    lock.unlock();
    service.cancel(task);
    return;
  }
  std::erase_if(calls_, [](const auto& call) { return call.second.expired(); });
  calls_.emplace_back(&service, task);
}

void pending_calls::cancel_all() {
  std::vector<std::pair<blocking_service*, std::weak_ptr<blocking_task>>> calls;
  {
    std::lock_guard lock(mutex_);
    cancelled_ = true;
    calls.swap(calls_);
  }
  // A task still alive is still owned by its service (queued, running or completing),
  // so the service is alive too.
  for (auto& [service, weak] : calls)
    if (auto task = weak.lock()) service->cancel(task);
}

}  // namespace ipckit::detail
