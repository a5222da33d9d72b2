#include "idle_loop_wait.hpp"

#include "asio_private.hpp"

#include <ipckit/detail/immediate_completions.hpp>

#include <boost/asio/detail/epoll_reactor.hpp>
#include <boost/asio/detail/reactor.hpp>
#include <boost/asio/detail/scheduler.hpp>
#include <boost/version.hpp>

#include <atomic>
#include <cerrno>
#include <chrono>
#include <csignal>
#include <cstdint>
#include <sys/epoll.h>
#include <sys/eventfd.h>
#include <mutex>
#include <type_traits>
#include <unistd.h>

static_assert(std::is_same_v<boost::asio::detail::reactor, boost::asio::detail::epoll_reactor>,
              "idle_loop_wait watches an epoll reactor");

namespace ipckit::detail {

IPCKIT_EXPOSE(scheduler_mutex, &boost::asio::detail::scheduler::mutex_);
IPCKIT_EXPOSE(scheduler_queue, &boost::asio::detail::scheduler::op_queue_);
IPCKIT_EXPOSE(scheduler_task, &boost::asio::detail::scheduler::task_operation_);
IPCKIT_EXPOSE(scheduler_task_interrupted, &boost::asio::detail::scheduler::task_interrupted_);
IPCKIT_EXPOSE(scheduler_stopped, &boost::asio::detail::scheduler::stopped_);

namespace {

namespace ad = boost::asio::detail;

using scheduler_lock = ad::conditionally_enabled_mutex::scoped_lock;

bool queued(ad::scheduler& s, const ad::scheduler_operation* op) {
  for (auto* o = private_field<scheduler_queue>(s).front(); o; o = ad::op_queue_access::next(o))
    if (o == op) return true;
  return false;
}

// The scheduler's queue holds nothing but its reactor task, which so no thread runs.
bool only_the_reactor_task(ad::scheduler& s) {
  ad::scheduler_operation* front = private_field<scheduler_queue>(s).front();
  return front == &private_field<scheduler_task>(s) && !ad::op_queue_access::next(front);
}

// How often the watcher interrupts the loop thread again until it has left its call: a
// signal that lands between the call's cancelled() check and its system call is lost.
constexpr std::chrono::microseconds resignal_period{200};

// Forks this process has made (counted in the child): a child made by fork() without
// exec has the parent's watcher object but not its thread, and shares its descriptors.
std::atomic<unsigned> forks{0};

void count_forks() {
  static std::once_flag once;
  std::call_once(once, [] {
    ::pthread_atfork(nullptr, nullptr, [] { forks.fetch_add(1, std::memory_order_relaxed); });
  });
}

}  // namespace

void idle_loop_waiter::prepare(boost::asio::execution_context& context) {
  // Asio adds the reactor task for the first socket or timer; here there may be none yet.
  // Made before a call is queued, the reactor has its first turn before the call starts:
  // a new reactor is ready at once (its interrupter is), which would end the first wait.
  boost::asio::use_service<ad::epoll_reactor>(context).init_task();
}

bool idle_loop_waiter::begin(boost::asio::execution_context& context, interrupt_token& token) {
  void* scheduler = scheduler_of(context);
  if (!may_block_idle(scheduler)) return false;
  {
    std::lock_guard lock(mutex_);
    if (inherited()) forget_inherited_watcher();
    // One call at a time: another thread running the same loop may be in one.
    if (taken_ || failed_ || stopping_) return false;
    if (!watcher_.joinable() && !start_watcher(context)) return false;
    taken_ = true;
  }
  auto& s = *static_cast<ad::scheduler*>(scheduler);
  {
    scheduler_lock lock(private_field<scheduler_mutex>(s));
    if (private_field<scheduler_stopped>(s) || !only_the_reactor_task(s)) {
      lock.unlock();
      std::lock_guard own(mutex_);
      taken_ = false;
      return false;
    }
    // From here a post or stop() from another thread interrupts the reactor.
    private_field<scheduler_task_interrupted>(s) = false;
  }
  scheduler_ = scheduler;
  // The watcher wakes this thread with interrupt_signal(), which a thread that has made a
  // blocking signal wait keeps blocked (docs/signal.md): unblocked for the call.
  sigset_t interrupt, previous;
  sigemptyset(&interrupt);
  sigaddset(&interrupt, interrupt_signal());
  reblock_ = pthread_sigmask(SIG_UNBLOCK, &interrupt, &previous) == 0 &&
             sigismember(&previous, interrupt_signal()) == 1;
  bool rearm = false;
  {
    std::lock_guard lock(mutex_);
    // Read with the arming: a watch that fires before it is seen here, one after it
    // finds the call armed.
    rearm = fired_;
    armed_ = true;
    token_ = &token;
    thread_ = pthread_self();
    ++generation_;
    fired_ = false;
  }
  // Armed, the watch fires for any readiness of the reactor, that present now included.
  epoll_event interest{};
  interest.events = EPOLLIN | EPOLLONESHOT;
  interest.data.fd = reactor_fd_;
  if (rearm && ::epoll_ctl(watch_fd_, EPOLL_CTL_MOD, reactor_fd_, &interest) != 0) {
    end();
    std::lock_guard lock(mutex_);
    fired_ = true;
    return false;
  }
  return true;
}

bool idle_loop_waiter::end() {
  if (reblock_) {
    // A signal of the watcher's still pending stays so: a blocking signal wait's read of
    // it is a spurious wake, which that wait allows for.
    sigset_t interrupt;
    sigemptyset(&interrupt);
    sigaddset(&interrupt, interrupt_signal());
    pthread_sigmask(SIG_BLOCK, &interrupt, nullptr);
    reblock_ = false;
  }
  if (scheduler_) {
    auto& s = *static_cast<ad::scheduler*>(scheduler_);
    scheduler_lock lock(private_field<scheduler_mutex>(s));
    // As the scheduler keeps it whenever its task waits in the queue. If another thread
    // took the task meanwhile, the flag is that thread's.
    if (queued(s, &private_field<scheduler_task>(s))) private_field<scheduler_task_interrupted>(s) = true;
    scheduler_ = nullptr;
  }
  bool interrupted = false;
  {
    std::lock_guard lock(mutex_);
    armed_ = false;
    taken_ = false;
    if (token_) interrupted = token_->yield_.exchange(false);
    token_ = nullptr;
  }
  disarmed_.notify_one();
  return interrupted;
}

bool idle_loop_waiter::inherited() const {
  return watcher_.joinable() && watcher_forks_ != forks.load(std::memory_order_relaxed);
}

void idle_loop_waiter::forget_inherited_watcher() {
  // The parent's thread is not here to join, and its descriptors are the parent's too:
  // writing the stop eventfd would stop the parent's watcher. A new one starts if needed
  // (on the reactor's new epoll set after io_context::notify_fork).
  watcher_.detach();
  if (watch_fd_ >= 0) ::close(watch_fd_);
  if (stop_fd_ >= 0) ::close(stop_fd_);
  watch_fd_ = stop_fd_ = -1;
  taken_ = armed_ = fired_ = failed_ = false;
}

bool idle_loop_waiter::start_watcher(boost::asio::execution_context& context) {
  count_forks();
  watcher_forks_ = forks.load(std::memory_order_relaxed);
  failed_ = true;
  reactor_fd_ = reactor_epoll_descriptor(boost::asio::use_service<ad::epoll_reactor>(context));
  watch_fd_ = ::epoll_create1(EPOLL_CLOEXEC);
  stop_fd_ = ::eventfd(0, EFD_CLOEXEC | EFD_NONBLOCK);
  if (watch_fd_ < 0 || stop_fd_ < 0 || reactor_fd_ < 0) return false;
  epoll_event interest{};
  interest.events = EPOLLIN | EPOLLONESHOT;
  interest.data.fd = reactor_fd_;
  epoll_event stop{};
  stop.events = EPOLLIN;
  stop.data.fd = stop_fd_;
  if (::epoll_ctl(watch_fd_, EPOLL_CTL_ADD, reactor_fd_, &interest) != 0 ||
      ::epoll_ctl(watch_fd_, EPOLL_CTL_ADD, stop_fd_, &stop) != 0)
    return false;
  // No signal meant for the process or for a loop thread may land on the watcher.
  sigset_t all, previous;
  sigfillset(&all);
  pthread_sigmask(SIG_SETMASK, &all, &previous);
  try {
    watcher_ = std::thread([this] { watch(); });
  } catch (const std::system_error&) {
  }
  pthread_sigmask(SIG_SETMASK, &previous, nullptr);
  failed_ = !watcher_.joinable();
  return !failed_;
}

void idle_loop_waiter::watch() {
  for (;;) {
    epoll_event event{};
    const int n = ::epoll_wait(watch_fd_, &event, 1, -1);
    if (n < 0 && errno == EINTR) continue;
    if (n < 0 || event.data.fd == stop_fd_) return;
    std::unique_lock lock(mutex_);
    fired_ = true;
    const unsigned long generation = generation_;
    while (armed_ && generation_ == generation && !stopping_) {
      token_->yield_.store(true, std::memory_order_release);
      pthread_kill(thread_, interrupt_signal());
      disarmed_.wait_for(lock, resignal_period);
    }
  }
}

void idle_loop_waiter::stop() {
  {
    std::lock_guard lock(mutex_);
    stopping_ = true;
    if (inherited()) forget_inherited_watcher();
  }
  disarmed_.notify_one();
  if (watcher_.joinable()) {
    const std::uint64_t one = 1;
    while (::write(stop_fd_, &one, sizeof one) < 0 && errno == EINTR) {
    }
    watcher_.join();
  }
  if (watch_fd_ >= 0) ::close(watch_fd_);
  if (stop_fd_ >= 0) ::close(stop_fd_);
  watch_fd_ = stop_fd_ = -1;
}

}  // namespace ipckit::detail
