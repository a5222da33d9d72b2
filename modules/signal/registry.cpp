// The process-wide signal service. Why signalfd plus a recording handler: see
// docs/signal.md ("How it works").
#include "registry.hpp"

#include <ipckit/detail/blocking_call.hpp>
#include <ipckit/detail/sigpipe.hpp>

#include <algorithm>
#include <cerrno>
#include <fcntl.h>
#include <optional>
#include <poll.h>
#include <pthread.h>
#include <sys/signalfd.h>
#include <sys/syscall.h>
#include <system_error>
#include <thread>
#include <unistd.h>

namespace ipckit::signal::detail {
namespace {

// Records a read takes from a signalfd at most.
constexpr ssize_t batch = 32;

// The write end of the pipe the handler records into; set once, before any handler.
std::atomic<int> handler_pipe{-1};

// Runs only in a thread that has the signal unblocked (all others leave it pending for
// the signalfd). It records and returns; the reader thread does the rest.
void record_signal(int, siginfo_t* delivered, void*) {
  const int saved_errno = errno;
  // One siginfo_t is smaller than PIPE_BUF, so the write is atomic or fails whole.
  [[maybe_unused]] ssize_t written = ::write(handler_pipe.load(std::memory_order_relaxed),
                                             delivered, sizeof *delivered);
  errno = saved_errno;
}

// Signals this thread blocked itself (not those it inherited blocked).
thread_local sigset_t blocked_here{};

bool carries_sender(int number, int code) {
  return code == SI_USER || code == SI_QUEUE || code == SI_TKILL || code == SI_MESGQ ||
         (number == SIGCHLD && code > 0);
}

bool carries_value(int code) {
  return code == SI_QUEUE || code == SI_TIMER || code == SI_MESGQ || code == SI_ASYNCIO;
}

info from_signalfd(const signalfd_siginfo& raw) {
  info out;
  out.number = static_cast<int>(raw.ssi_signo);
  out.code = raw.ssi_code;
  if (carries_sender(out.number, out.code)) {
    out.sender_pid = static_cast<pid_t>(raw.ssi_pid);
    out.sender_uid = static_cast<uid_t>(raw.ssi_uid);
  }
  if (carries_value(out.code)) out.value = raw.ssi_int;
  if (out.number == SIGCHLD) out.status = raw.ssi_status;
  return out;
}

info from_siginfo(const siginfo_t& raw) {
  info out;
  out.number = raw.si_signo;
  out.code = raw.si_code;
  if (carries_sender(out.number, out.code)) {
    out.sender_pid = raw.si_pid;
    out.sender_uid = raw.si_uid;
  }
  if (carries_value(out.code)) out.value = raw.si_value.sival_int;
  if (out.number == SIGCHLD) out.status = raw.si_status;
  return out;
}

// rt_sigqueueinfo to this process with the delivery's own siginfo (allowed for any
// si_code when the target is the caller's process), so the sender pid, uid, code and
// value survive the round trip.
void send_again(const info& delivery) {
  siginfo_t raw{};
  raw.si_signo = delivery.number;
  raw.si_code = delivery.code;
  raw.si_pid = delivery.sender_pid.value_or(0);
  raw.si_uid = delivery.sender_uid.value_or(0);
  if (delivery.number == SIGCHLD) raw.si_status = delivery.status;
  else if (delivery.value) raw.si_value.sival_int = *delivery.value;
  ::syscall(SYS_rt_sigqueueinfo, ::getpid(), delivery.number, &raw);
}

// After every disposition change the registry makes: pipe writes skip their SIGPIPE
// mask only while SIGPIPE is ignored (a notifier of SIGPIPE must still get them).
void note_disposition(int number) {
  if (number != SIGPIPE) return;
  struct sigaction now {};
  ::sigaction(SIGPIPE, nullptr, &now);
  ipckit::detail::set_sigpipe_ignored(!(now.sa_flags & SA_SIGINFO) && now.sa_handler == SIG_IGN);
}

sigset_t just(int number) {
  sigset_t set;
  sigemptyset(&set);
  sigaddset(&set, number);
  return set;
}

}  // namespace

int wake_signal() noexcept { return ipckit::detail::interrupt_signal(); }

bool block_wake_signal_here() noexcept {
  thread_local bool blocked = false;
  if (blocked) return true;
  // A thread that has it unblocked after all (its mask changed behind ipckit's back)
  // then takes it in a handler that does nothing, rather than by the default action.
  ipckit::detail::install_interrupt_handler();
  const sigset_t one = just(wake_signal());
  blocked = pthread_sigmask(SIG_BLOCK, &one, nullptr) == 0;
  return blocked;
}

error_code check_subscribable(int number) {
  if (number <= 0 || number >= NSIG || (number >= 32 && number < SIGRTMIN))
    return errc::unknown_signal;
  if (number == SIGKILL || number == SIGSTOP) return errc::uncatchable_signal;
  if (number == ipckit::detail::interrupt_signal()) return errc::reserved_signal;
  if (number == SIGSEGV || number == SIGBUS || number == SIGFPE || number == SIGILL)
    return errc::synchronous_signal;
  return {};
}

struct registry::impl {
  // Guards everything here, and orders the reads of the signalfd with the fan-out and
  // with mask updates: deliveries read by two readers reach each notifier in the order
  // the kernel gave them. (ThreadSanitizer also models signalfd(fd, mask) as re-creating
  // the fd, and would report a read of it that this did not order.)
  std::mutex mutex;
  std::vector<std::shared_ptr<subscription>> subscriptions;
  int subscribers[NSIG] = {};
  std::optional<struct sigaction> previous[NSIG];  // before its first subscriber
  std::optional<struct sigaction> original[NSIG];  // before ipckit first changed it
  sigset_t active;
  int signal_fd = -1;
  int watch_fd = -1;  // a dup of signal_fd that blocking waiters poll
  int pipe_read = -1;

  // The blocking read of the one thread in a blocking wait (read_alone): a signalfd of
  // its own, in blocking mode, whose mask is `active` plus the wake signal. Only the
  // reading thread changes that mask, under `mutex`, before it reads (ThreadSanitizer
  // models signalfd(fd, mask) as re-creating the fd).
  int block_fd = -1;
  bool block_mask_stale = true;
  // Held by a thread from before it reads the signalfd outside `mutex` (read_alone) or
  // polls and drains it (drain()) to after its fan-out. Loops never wait for it: while
  // `reading`, their attempts read nothing, say so in `skipped` and wake the reader, which
  // then reads again, tells the loops to look again, and polls for the rest of its wait,
  // so that no delivery waits for the next signal (a signal sent to a loop's own thread
  // is one the reader cannot read). Lock order: role_mutex, then mutex.
  std::mutex role_mutex;
  bool reading = false;
  pthread_t reading_thread{};
  bool skipped = false;
  // Threads in wait()/wait_for(). Counted without `mutex`; read under it by a thread
  // that would read alone, and a thread that finds another there takes `mutex` to wake
  // one reading alone, so either the reader sees the count or the newcomer the reader.
  std::atomic<int> blocking_threads{0};
  bool reader_started = false;

  impl() {
    sigemptyset(&active);
    signal_fd = ::signalfd(-1, &active, SFD_CLOEXEC | SFD_NONBLOCK);
    if (signal_fd >= 0) watch_fd = ::fcntl(signal_fd, F_DUPFD_CLOEXEC, 0);
    const sigset_t wake_only = just(wake_signal());
    block_fd = ::signalfd(-1, &wake_only, SFD_CLOEXEC);
    int fds[2];
    if (signal_fd < 0 || watch_fd < 0 || block_fd < 0 || ::pipe2(fds, O_CLOEXEC | O_NONBLOCK) != 0)
      throw system_error(last_error(), "ipckit signal service");
    // Room for 8192 records where the system allows it (1 MiB is the default cap).
    ::fcntl(fds[1], F_SETPIPE_SZ, 1 << 20);
    pipe_read = fds[0];
    handler_pipe.store(fds[1]);
  }

  // The reader of the handler's records starts before the first handler is installed, not
  // with the registry: a program that only ignores, resets or sends signals (SIGPIPE
  // ignored at start, as Go's runtime and most daemons do) keeps a single thread, whose
  // system calls skip glibc's cancellation bookkeeping. Under `mutex`.
  void start_reader_once() {
    if (reader_started) return;
    // The reader must never take a signal itself: it starts with all of them blocked.
    sigset_t all, before;
    sigfillset(&all);
    pthread_sigmask(SIG_SETMASK, &all, &before);
    try {
      std::thread([this] { read_pipe_forever(); }).detach();
    } catch (...) {
      pthread_sigmask(SIG_SETMASK, &before, nullptr);
      throw;
    }
    pthread_sigmask(SIG_SETMASK, &before, nullptr);
    reader_started = true;
  }

  // The handler's records only: the signalfd is read by those who wait (drain()).
  void read_pipe_forever() {
    pollfd watched{pipe_read, POLLIN, 0};
    for (;;) {
      if (::poll(&watched, 1, -1) < 0) continue;  // EINTR cannot happen (all blocked); be safe
      siginfo_t from_pipe[32];
      std::lock_guard lock(mutex);
      for (ssize_t n; (n = ::read(pipe_read, from_pipe, sizeof from_pipe)) > 0;)
        for (ssize_t i = 0; i < n / static_cast<ssize_t>(sizeof *from_pipe); ++i)
          deliver(from_siginfo(from_pipe[i]));
    }
  }

  // Reads what the signalfd holds now and fans it out (under `mutex`). The waits it
  // completes go to `ready` when given (see subscription::push). Nothing while a thread
  // reads it outside the lock: what that one reads must be fanned out first. True when
  // it read the signalfd empty.
  bool drain(ready_waits* ready = nullptr) {
    if (reading) {
      if (!skipped) pthread_kill(reading_thread, wake_signal());
      skipped = true;
      return false;
    }
    signalfd_siginfo from_fd[batch];
    for (;;) {
      const ssize_t n = ::read(signal_fd, from_fd, sizeof from_fd);
      if (n <= 0) return n < 0 && errno == EAGAIN;
      const ssize_t count = n / static_cast<ssize_t>(sizeof *from_fd);
      for (ssize_t i = 0; i < count; ++i) deliver(from_signalfd(from_fd[i]), ready);
      // A short read took all there was: saves the read that would say EAGAIN.
      if (count < batch) return true;
    }
  }

  void deliver(const info& delivery, ready_waits* ready = nullptr) {
    // Read just before its last notifier stopped: no one will see it, so it takes
    // the disposition that is back now.
    if (subscribers[delivery.number] == 0) {
      send_again(delivery);
      return;
    }
    for (const auto& sub : subscriptions)
      if (sigismember(&sub->signals, delivery.number)) sub->push(delivery, ready);
  }

  void update_mask() {
    ::signalfd(signal_fd, &active, 0);
    block_mask_stale = true;
    // A blocking reader would miss a signal added now (and loops skip while it reads).
    if (reading) pthread_kill(reading_thread, wake_signal());
  }

  void remember_original(int number) {
    if (original[number]) return;
    struct sigaction current {};
    ::sigaction(number, nullptr, &current);
    original[number] = current;
  }

  // First subscriber: the handler first (a thread with the signal unblocked records it),
  // then the signalfd (a pending one is read from it).
  void activate(int number) {
    remember_original(number);
    struct sigaction ours {}, before {};
    ours.sa_sigaction = record_signal;
    ours.sa_flags = SA_SIGINFO | SA_RESTART;
    sigfillset(&ours.sa_mask);
    ::sigaction(number, nullptr, &before);
    if (number == SIGCHLD) {
      // Keep what the program asked of its children: no stop reports, and auto-reaping
      // when SIGCHLD was ignored (ignoring it is how a program asks for that).
      ours.sa_flags |= before.sa_flags & (SA_NOCLDSTOP | SA_NOCLDWAIT);
      if (!(before.sa_flags & SA_SIGINFO) && before.sa_handler == SIG_IGN) ours.sa_flags |= SA_NOCLDWAIT;
    }
    ::sigaction(number, &ours, nullptr);
    note_disposition(number);
    previous[number] = before;
    sigaddset(&active, number);
    update_mask();
  }

  // Last subscriber gone: off the signalfd, the previous disposition back, and unblocked
  // here, so a signal still pending now takes that disposition.
  void deactivate(int number, bool restore_previous) {
    sigdelset(&active, number);
    update_mask();
    if (restore_previous && previous[number]) ::sigaction(number, &*previous[number], nullptr);
    note_disposition(number);
    previous[number].reset();
    unblock_here(number);
  }

  void block_here(int number) {
    sigset_t current;
    pthread_sigmask(SIG_BLOCK, nullptr, &current);
    if (sigismember(&current, number)) return;
    const sigset_t one = just(number);
    pthread_sigmask(SIG_BLOCK, &one, nullptr);
    sigaddset(&blocked_here, number);
  }

  void unblock_here(int number) {
    if (!sigismember(&blocked_here, number)) return;
    sigdelset(&blocked_here, number);
    const sigset_t one = just(number);
    pthread_sigmask(SIG_UNBLOCK, &one, nullptr);
  }

  // A thread that blocked a signal whose last subscriber left from another thread.
  void reconcile() {
    for (int number = 1; number < NSIG; ++number)
      if (subscribers[number] == 0 && sigismember(&blocked_here, number)) unblock_here(number);
  }

  void add(subscription& sub, int number) {
    if (!sigismember(&sub.signals, number)) {
      sigaddset(&sub.signals, number);
      if (subscribers[number]++ == 0) activate(number);
    }
    block_here(number);
  }

  void drop(subscription& sub, int number) {
    if (!sigismember(&sub.signals, number)) return;
    // The last one: what the kernel holds for it is read into the queues first, as a
    // reader that read ahead would have done (stop() sends its queue to the process).
    if (subscribers[number] == 1) drain();
    sigdelset(&sub.signals, number);
    if (--subscribers[number] == 0) deactivate(number, true);
  }

  // ignore/reset: every subscription loses the signal, no previous disposition to restore.
  void drop_everywhere(int number) {
    if (subscribers[number] > 0) drain();
    for (const auto& sub : subscriptions) sigdelset(&sub->signals, number);
    if (subscribers[number] > 0) {
      subscribers[number] = 0;
      deactivate(number, false);
    }
  }
};

registry& registry::get() {
  static registry* instance = new registry;  // never destroyed: its reader never ends
  return *instance;
}

registry::registry() : impl_(new impl) {}

void registry::subscribe(const std::shared_ptr<subscription>& sub, const std::vector<int>& signals,
                         error_code& ec) {
  ec = {};
  for (int number : signals)
    if ((ec = check_subscribable(number))) return;
  std::lock_guard lock(impl_->mutex);
  try {
    impl_->start_reader_once();
  } catch (const std::system_error& e) {  // no thread to be had: nothing subscribed
    ec = e.code();
    return;
  }
  impl_->reconcile();
  if (!sub->registered) {
    impl_->subscriptions.push_back(sub);
    sub->registered = true;
  }
  for (int number : signals) impl_->add(*sub, number);
}

void registry::unsubscribe(const std::shared_ptr<subscription>& sub, int number) {
  if (number <= 0 || number >= NSIG) return;
  std::lock_guard lock(impl_->mutex);
  impl_->drop(*sub, number);
  impl_->reconcile();
}

void registry::remove(const std::shared_ptr<subscription>& sub) {
  std::lock_guard lock(impl_->mutex);
  if (!sub->registered) return;
  for (int number = 1; number < NSIG; ++number) impl_->drop(*sub, number);
  std::erase(impl_->subscriptions, sub);
  sub->registered = false;
  impl_->reconcile();
}

std::vector<int> registry::signals_of(const std::shared_ptr<subscription>& sub) {
  std::lock_guard lock(impl_->mutex);
  std::vector<int> out;
  for (int number = 1; number < NSIG; ++number)
    if (sigismember(&sub->signals, number)) out.push_back(number);
  return out;
}

void complete_all(ready_waits& ready, const boost::asio::execution_context* running_loop) {
  // Outside the locks, so that a handler may run here at once: a loop that read the
  // delivery runs its own notifier's handler without another turn of its scheduler.
  while (auto op = ready.pop()) {
    try {
      op->complete_here({}, ready_waits::delivery_of(*op), running_loop);
    } catch (...) {  // a handler threw (out of run()): the others still complete, later
      while (auto rest = ready.pop()) rest->complete({}, ready_waits::delivery_of(*rest));
      throw;
    }
  }
}

bool registry::read_for_loop(ready_waits& ready) {
  std::lock_guard lock(impl_->mutex);
  return impl_->drain(&ready);
}

void registry::drain() {
  ready_waits ready;
  {
    std::lock_guard role(impl_->role_mutex);
    std::lock_guard lock(impl_->mutex);
    impl_->drain(&ready);
  }
  complete_all(ready, nullptr);
}

void registry::enter_blocking() {
  if (impl_->blocking_threads.fetch_add(1) == 0) return;
  // A thread reading alone must poll from now on: wake it.
  std::lock_guard lock(impl_->mutex);
  if (impl_->reading) pthread_kill(impl_->reading_thread, wake_signal());
}

void registry::leave_blocking() { impl_->blocking_threads.fetch_sub(1); }

registry::alone registry::read_alone(const subscription* waiting) {
  std::unique_lock role(impl_->role_mutex);
  {
    std::lock_guard lock(impl_->mutex);
    if (impl_->blocking_threads.load() != 1 || impl_->reading) return alone::refused;
    if (impl_->block_mask_stale) {
      sigset_t mask = impl_->active;
      sigaddset(&mask, wake_signal());
      ::signalfd(impl_->block_fd, &mask, 0);
      impl_->block_mask_stale = false;
    }
    impl_->reading = true;
    impl_->reading_thread = pthread_self();
  }
  signalfd_siginfo from_fd[batch];
  const ssize_t n = ::read(impl_->block_fd, from_fd, sizeof from_fd);
  bool woken = n < 0;  // EINTR: a handler ran here (the wake signal's, if unblocked)
  ready_waits ready;
  {
    std::lock_guard lock(impl_->mutex);
    impl_->reading = false;
    // Pushes to the caller's own subscription need no wake-up: it looks at its queue next.
    draining_for = waiting;
    for (ssize_t i = 0; i < n / static_cast<ssize_t>(sizeof *from_fd); ++i) {
      if (static_cast<int>(from_fd[i].ssi_signo) == wake_signal()) woken = true;
      else impl_->deliver(from_signalfd(from_fd[i]), &ready);
    }
    // A loop or a stop found the signalfd busy meanwhile: what it left is read now, and
    // the loops are told to look again. A signal sent to one of their threads (raise,
    // pthread_kill) is there for that thread alone, and its edge went by while they
    // skipped: setting the mask again wakes every watch of the signalfd.
    if (impl_->skipped) {
      impl_->skipped = false;
      impl_->drain(&ready);
      ::signalfd(impl_->signal_fd, &impl_->active, 0);
    }
    draining_for = nullptr;
  }
  role.unlock();
  complete_all(ready, nullptr);
  return woken ? alone::woken : alone::read;
}

int registry::watch_fd() const noexcept { return impl_->watch_fd; }

int registry::new_watch_fd() {
  const int fd = ::fcntl(impl_->signal_fd, F_DUPFD_CLOEXEC, 0);
  if (fd < 0) throw system_error(last_error(), "ipckit signal service: dup");
  return fd;
}

void registry::redeliver_unwatched(const info& delivery) {
  if (delivery.number <= 0 || delivery.number >= NSIG) return;
  std::lock_guard lock(impl_->mutex);
  if (impl_->subscribers[delivery.number] == 0) send_again(delivery);
}

void registry::ignore(const std::vector<int>& signals, error_code& ec) {
  ec = {};
  for (int number : signals) {
    ec = check_subscribable(number);
    if (ec == errc::synchronous_signal) ec = {};
    if (ec) return;
  }
  std::lock_guard lock(impl_->mutex);
  struct sigaction ignore_it {};
  ignore_it.sa_handler = SIG_IGN;
  sigemptyset(&ignore_it.sa_mask);
  for (int number : signals) {
    impl_->remember_original(number);
    impl_->drop_everywhere(number);
    ::sigaction(number, &ignore_it, nullptr);
    note_disposition(number);
    impl_->unblock_here(number);
  }
  impl_->reconcile();
}

void registry::reset(const std::vector<int>& signals, error_code& ec) {
  ec = {};
  for (int number : signals) {
    ec = check_subscribable(number);
    if (ec == errc::synchronous_signal) ec = {};
    if (ec) return;
  }
  std::lock_guard lock(impl_->mutex);
  std::vector<int> chosen = signals;
  if (chosen.empty())
    for (int number = 1; number < NSIG; ++number)
      if (impl_->original[number]) chosen.push_back(number);
  for (int number : chosen) {
    impl_->drop_everywhere(number);
    if (impl_->original[number]) ::sigaction(number, &*impl_->original[number], nullptr);
    note_disposition(number);
    impl_->unblock_here(number);
  }
  impl_->reconcile();
}

}  // namespace ipckit::signal::detail
