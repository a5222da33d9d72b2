#include <ipckit/detail/blocking_call.hpp>
#include <ipckit/detail/polled_descriptor.hpp>

#include "idle_loop_wait.hpp"

#include <ipckit/detail/draining_handler.hpp>
#include <ipckit/detail/immediate_completions.hpp>

#include <boost/asio/detail/reactor.hpp>
#include <boost/asio/detail/scheduler.hpp>
#include <boost/asio/io_context.hpp>
#include <boost/asio/post.hpp>

#include <algorithm>
#include <cerrno>
#include <chrono>
#include <condition_variable>
#include <csignal>
#include <cstdint>
#include <deque>
#include <mutex>
#include <optional>
#include <pthread.h>
#include <sys/eventfd.h>
#include <sys/resource.h>
#include <thread>
#include <unistd.h>
#include <utility>
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

// Workers run this much nicer than the thread that started them, so that on a shared CPU
// the scheduler runs the loop threads that are ready before a worker. A worker's turn
// matters twice in a hand-off (post to the peer, queue our next wait): a worker woken at
// the loop's priority preempts the loop mid-handler, and if ours runs before the peer
// has posted, it blocks and must be woken again. Run after the loops, it usually finds
// its next call queued and its unit posted, and never sleeps in the pool: 4 thread
// switches per semaphore round trip instead of 6.2 (docs/performance-findings.md, finding 6).
// +5 is the smallest step that gave that order in every run here (+3 did not); a bigger
// one saves nothing more and makes a worker wait longer behind CPU-bound threads.
constexpr int worker_nice_increment = 5;
constexpr int lowest_priority = 19;

// Raising one's own nice needs no privilege; on Linux it applies to the thread only.
void lower_worker_priority() {
  const auto tid = static_cast<id_t>(::gettid());
  errno = 0;
  const int nice = ::getpriority(PRIO_PROCESS, tid);
  if (nice == -1 && errno != 0) return;
  ::setpriority(PRIO_PROCESS, tid, std::min(nice + worker_nice_increment, lowest_priority));
}

}  // namespace

int interrupt_signal() noexcept { return SIGRTMAX; }

// How finished calls reach the loop. A worker's own post would wake a loop sleeping in
// epoll_wait with epoll_ctl while it holds Asio's scheduler mutex
// (scheduler::wake_one_thread_and_unlock); on a shared CPU the loop preempts the worker
// at once, finds the mutex taken and sleeps on it until the worker runs again: two more
// switches per completion. So a worker only queues the call here and writes an eventfd,
// holding no lock; the loop, woken by its reactor, runs the completions from its own
// thread (dispatched: no second turn of the scheduler), taking no lock a worker holds.
// The eventfd's wait is armed only while calls are in flight, since a pending reactor
// operation keeps the loop's run() from returning.
struct completion_channel {
  explicit completion_channel(const boost::asio::any_io_executor& ex) : wake(ex) {}

  polled_descriptor wake;
  std::mutex mutex;
  std::vector<std::shared_ptr<blocking_task>> done;
  std::size_t in_flight = 0;
  bool armed = false;
  bool closed = false;

  void open(error_code& ec) {
    const int fd = ::eventfd(0, EFD_NONBLOCK | EFD_CLOEXEC);
    if (fd < 0) {
      ec = last_error();
      return;
    }
    wake.assign(fd);
  }

  void submitted() {
    std::lock_guard lock(mutex);
    ++in_flight;
    if (!armed && !closed) arm();
  }

  // On the worker. False when the channel is closed (the context is going away).
  bool deliver(std::shared_ptr<blocking_task> task) {
    {
      std::lock_guard lock(mutex);
      if (closed) return false;
      done.push_back(std::move(task));
      --in_flight;
    }
    signal();
    return true;
  }

  void close() {
    {
      std::lock_guard lock(mutex);
      closed = true;
      done.clear();
    }
    wake.close();
  }

  // In a child made by fork() without exec: a thread of the parent's may have held the
  // lock, and the eventfd is the parent's too (reading it would take the parent's
  // wake-ups). Closes this channel, aborting its wait, and returns the calls it held.
  std::vector<std::shared_ptr<blocking_task>> forget_in_child() {
    new (&mutex) std::mutex;
    auto finished = std::move(done);
    done.clear();
    closed = true;
    wake.close();
    return finished;
  }

  // In the child, on a channel just opened: takes over the inherited one's calls.
  void adopt(std::vector<std::shared_ptr<blocking_task>> finished, std::size_t queued) {
    std::lock_guard lock(mutex);
    in_flight = queued;
    done = std::move(finished);
    if (!done.empty()) signal();
    if (in_flight > 0 || !done.empty()) arm();
  }

 private:
  // Called with the mutex held.
  void arm() {
    armed = true;
    const int fd = wake.native_handle();
    wake.async_attempt<void>(
        attempt_direction::read,
        [fd](error_code& ec) {
          std::uint64_t count;
          for (;;) {
            if (::read(fd, &count, sizeof count) == sizeof count) return true;
            if (errno == EINTR) continue;
            if (errno == EAGAIN) return false;
            ec = last_error();
            return true;
          }
        },
        [this](error_code) { drain(); });
  }

  // On the loop: runs each finished call's handler (dispatched: on this thread at once
  // when it is the handler's executor, which saves a turn of Asio's scheduler), then
  // waits again if calls are still in flight. A throwing handler leaves the rest queued,
  // and the eventfd is written so that the wait armed again finds them.
  void drain() {
    struct rearm {
      completion_channel& channel;
      ~rearm() {
        std::lock_guard lock(channel.mutex);
        channel.armed = false;
        if (channel.closed) return;
        if (!channel.done.empty()) channel.signal();
        if (channel.in_flight > 0 || !channel.done.empty()) channel.arm();
      }
    } on_exit{*this};
    for (;;) {
      std::shared_ptr<blocking_task> task;
      {
        std::lock_guard lock(mutex);
        if (closed || done.empty()) return;
        task = std::move(done.front());
        done.erase(done.begin());
      }
      task->dispatch_completion(std::move(task));
    }
  }

  void signal() noexcept {
    const std::uint64_t one = 1;
    while (::write(wake.native_handle(), &one, sizeof one) < 0 && errno == EINTR) {
    }
  }
};

struct blocking_service::impl {
  std::mutex mutex;
  std::condition_variable work_ready;
  std::condition_variable cancel_requested;
  std::deque<std::shared_ptr<blocking_task>> queue;
  std::vector<std::shared_ptr<blocking_task>> running;
  std::vector<std::shared_ptr<blocking_task>> cancelling;
  std::vector<std::thread> workers;
  std::thread interrupter;
  idle_loop_waiter idle_loop;
  std::size_t idle = 0;
  bool use_channel = false;                     // the context had a reactor before us
  std::unique_ptr<completion_channel> channel;  // made at the first submit if so
  std::vector<std::unique_ptr<completion_channel>> retired;  // inherited at a fork
  bool channel_failed = false;                  // no eventfd: workers post
  bool stopping = false;
  bool interrupter_stopping = false;
  bool held_for_fork = false;  // between fork_prepare and fork_parent

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
    lower_worker_priority();
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
      // Idle again before the completion wakes the loop: a call the loop submits at once
      // then finds this thread (which checks the queue before it waits) instead of
      // starting another.
      ++idle;
      auto* to = channel.get();
      if (stopping || !to) {
        // Posted under the lock, as it leaves `running`: a forked child must know
        // whether the completion went (remake_in_child).
        std::erase(running, task);
        if (!stopping) task->post_completion(std::move(task));
        continue;
      }
      // Delivered without the lock: the loop thread it wakes may take the lock at once
      // (to submit its next call), and would otherwise wake only to wait for us. It
      // leaves `running` only once it is in the channel, for a forked child's sake.
      // shutdown() joins this thread before the channel and the scheduler go.
      lock.unlock();
      to->deliver(task);
      lock.lock();
      std::erase(running, task);
    }
  }

  // fork_prepare: no thread may be inside one of the pool's critical sections when the
  // process forks, or the child would find a change half made.
  void hold_for_fork() {
    mutex.lock();
    if (channel) channel->mutex.lock();
    held_for_fork = true;
  }

  void release_after_fork() {
    if (!held_for_fork) return;
    held_for_fork = false;
    if (channel) channel->mutex.unlock();
    mutex.unlock();
  }

  // fork_child: only the thread that forked came along. The workers, the interrupter and
  // any lock they held are the parent's, so the locks are made anew and the threads
  // forgotten (detached, never joined). A call a worker was running is made again here,
  // as a queued one is, on a new worker: the child's copy of a pending wait waits in the
  // child (every call is a take of a lock or a unit, so each success is the taking
  // process's own). A finished call not yet run by the loop is handed to it. The
  // completion eventfd was the parent's too: the child opens its own.
  void remake_in_child() {
    new (&mutex) std::mutex;
    new (&work_ready) std::condition_variable;
    new (&cancel_requested) std::condition_variable;
    held_for_fork = false;
    for (auto& worker : workers) worker.detach();
    workers.clear();
    if (interrupter.joinable()) interrupter.detach();
    interrupter_stopping = false;
    cancelling.clear();
    idle = 0;
    std::vector<std::shared_ptr<blocking_task>> finished;
    std::optional<boost::asio::any_io_executor> channel_executor;
    if (channel) {
      channel_executor = channel->wake.get_executor();
      finished = channel->forget_in_child();
      retired.push_back(std::move(channel));
    }
    for (auto& task : running) {
      if (task->completed_ || std::find(finished.begin(), finished.end(), task) != finished.end()) continue;
      task->running_.store(false);
      task->finished_.store(false);
      queue.push_front(std::move(task));
    }
    running.clear();
    if (channel_executor) {
      auto fresh = std::make_unique<completion_channel>(*channel_executor);
      error_code ec;
      fresh->open(ec);
      if (!ec) {
        fresh->adopt(std::exchange(finished, {}), queue.size());
        channel = std::move(fresh);
      } else {
        channel_failed = true;
      }
    }
    for (auto& task : finished) task->post_completion(std::move(task));
    for (std::size_t i = 0; i < queue.size(); ++i) start_worker();
  }

  void interrupt_cancelled() {
    std::unique_lock lock(mutex);
    for (;;) {
      std::erase_if(cancelling, [](const auto& task) { return task->finished_.load(); });
      // Set once the workers are joined: a cancelled call still here never ran (its turn
      // on the idle loop or in the pool's queue went with the context), and never will.
      if (interrupter_stopping) return;
      if (cancelling.empty()) {
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
  // An io_context's calls start on its loop when it is idle (idle_loop_wait.hpp), which
  // needs the reactor: made here, before this service, it is also shut down and destroyed
  // after it (Asio goes newest first), as the channel's descriptor needs.
  if (boost::asio::has_service<boost::asio::detail::scheduler>(context)) idle_loop_waiter::prepare(context);
  // Only a loop that sleeps in epoll_wait needs the channel: one without a reactor sleeps
  // on Asio's condition variable, which a post signals after unlocking, and its one futex
  // wake costs less than the eventfd's write, read and epoll_wait. A reactor made later
  // leaves workers posting.
  impl_->use_channel = boost::asio::has_service<boost::asio::detail::reactor>(context);
  if (impl_->use_channel) prepare_polled_descriptors(context);
}

blocking_service::~blocking_service() { shutdown(); }

void blocking_service::submit(std::shared_ptr<blocking_task> task, const boost::asio::any_io_executor& ex,
                              blocking_start start) {
  if (start != blocking_start::on_worker) {
    // The loop may be idle once the handler that started the call returns (or, started
    // from elsewhere, when the loop runs): the call is tried on the loop then. Drained, as
    // an immediate completion is: a call its completion starts is tried right after it,
    // without a turn of the reactor, which the watch covers.
    post_completion(ex, draining([this, task = std::move(task), ex, start] {
      start_on_idle_loop(task, ex, start);
    }));
    return;
  }
  submit_to_worker(std::move(task), ex);
}

void blocking_service::start_on_idle_loop(std::shared_ptr<blocking_task> task,
                                          const boost::asio::any_io_executor& ex, blocking_start start) {
  auto& token = task->token();
  auto finish = [&task] {
    task->finished_.store(true);
    task->dispatch_completion(std::move(task));
  };
  if (token.cancelled()) return finish();
  if (impl_->idle_loop.begin(context(), token)) {
    // The interrupter may signal this thread too, for a cancel from another thread.
    task->thread_.store(static_cast<unsigned long>(pthread_self()));
    task->running_.store(true);
    task->run();
    task->running_.store(false);
    const bool loop_has_work = impl_->idle_loop.end();
    if (!loop_has_work || !task->aborted() || token.cancelled()) return finish();
  }
  if (start == blocking_start::idle_loop_first) return submit_to_worker(std::move(task), ex);
  task->fail(boost::asio::error::would_block);
  finish();
}

void blocking_service::submit_to_worker(std::shared_ptr<blocking_task> task,
                                        const boost::asio::any_io_executor& ex) {
  std::unique_lock lock(impl_->mutex);
  if (impl_->stopping) return;
  if (impl_->use_channel && !impl_->channel && !impl_->channel_failed) {
    auto channel = std::make_unique<completion_channel>(ex);
    error_code ec;
    channel->open(ec);
    if (ec) impl_->channel_failed = true;
    else impl_->channel = std::move(channel);
  }
  if (impl_->channel) impl_->channel->submitted();
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

void blocking_service::notify_fork(boost::asio::execution_context::fork_event event) {
  switch (event) {
    case boost::asio::execution_context::fork_prepare:
      return impl_->hold_for_fork();
    case boost::asio::execution_context::fork_parent:
      return impl_->release_after_fork();
    case boost::asio::execution_context::fork_child:
      return impl_->remake_in_child();
  }
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
  impl_->idle_loop.stop();
  for (auto& worker : impl_->workers) worker.join();
  // Calls the workers delivered but the loop has not taken are destroyed uncalled.
  if (impl_->channel) impl_->channel->close();
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
