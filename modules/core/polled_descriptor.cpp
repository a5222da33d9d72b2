#include <ipckit/detail/polled_descriptor.hpp>

#include "asio_private.hpp"

#include <boost/asio/detail/epoll_reactor.hpp>
#include <boost/asio/detail/op_queue.hpp>
#include <boost/asio/detail/reactor.hpp>
#include <boost/asio/detail/scheduler.hpp>
#include <boost/asio/execution/context.hpp>
#include <boost/asio/execution_context.hpp>
#include <boost/asio/query.hpp>

#include <cerrno>
#include <cstdint>
#include <mutex>
#include <new>
#include <sys/epoll.h>
#include <type_traits>
#include <unistd.h>

static_assert(std::is_same_v<boost::asio::detail::reactor, boost::asio::detail::epoll_reactor>,
              "polled_descriptor registers in an epoll reactor's set");

namespace ipckit::detail {

// Asio's reactor has no public way to register a descriptor with a record of one's own.
IPCKIT_EXPOSE(reactor_epoll_fd, &boost::asio::detail::epoll_reactor::epoll_fd_);

int reactor_epoll_descriptor(boost::asio::detail::epoll_reactor& reactor) noexcept {
  return private_field<reactor_epoll_fd>(reactor);
}

namespace {

namespace ad = boost::asio::detail;
using ops = ad::op_queue<ad::reactor_op>;
using completions = ad::op_queue<ad::scheduler_operation>;  // what the scheduler is given

int index(attempt_direction d) noexcept { return d == attempt_direction::read ? 0 : 1; }

constexpr std::uint32_t readiness[2] = {EPOLLIN, EPOLLOUT};

}  // namespace

// What the reactor's epoll_wait hands back. The reactor takes every such pointer for one
// of its own descriptor states, of which it touches only the scheduler_operation base (the
// ready events and the queue link), then the scheduler runs it: perform(). So it is
// completed by the scheduler exactly as Asio's states are, and like them it is never
// freed while its context lives (an event for it may still be queued after close). The
// cast is sound in practice because the scheduler_operation is the only base of both
// classes, so it sits at offset 0 of each (the Itanium ABI's primary base).
struct polled_state : ad::scheduler_operation {
  polled_state() : ad::scheduler_operation(&polled_state::perform) {}

  std::mutex mutex;
  int fd = -1;
  std::uint32_t registered = 0;           // the epoll events asked for
  ops waiting[2];                         // read, write
  bool try_at_once[2] = {true, true};     // no attempt found the direction drained since its last edge
  polled_registry* registry = nullptr;
  polled_state* next = nullptr;  // in the registry's list of states in use, or of free ones
  polled_state* prev = nullptr;

  // Asio's descriptor_state::perform_io, for our two queues: the ready directions' attempts
  // run in turn; the first that finished completes here, the others are posted.
  static void perform(void* owner, ad::scheduler_operation* base, const error_code&, std::size_t events);

  // Every waiting attempt, as operation_aborted.
  void take_all_aborted(completions& aborted) {
    for (auto& queue : waiting) {
      while (ad::reactor_op* op = queue.front()) {
        queue.pop();
        op->ec_ = boost::asio::error::operation_aborted;
        aborted.push(op);
      }
    }
  }
};

class polled_registry : public boost::asio::detail::execution_context_service_base<polled_registry> {
 public:
  explicit polled_registry(boost::asio::execution_context& context)
      : execution_context_service_base(context),
        reactor_(boost::asio::use_service<ad::epoll_reactor>(context)),
        scheduler_(boost::asio::use_service<ad::scheduler>(context)) {
    reactor_.init_task();  // the scheduler runs the reactor (Asio's descriptor service does this too)
  }

  ~polled_registry() override {
    for (polled_state* list : {in_use_, free_}) {
      while (list) delete std::exchange(list, list->next);
    }
  }

  ad::scheduler& scheduler() noexcept { return scheduler_; }
  int epoll_fd() noexcept { return reactor_epoll_descriptor(reactor_); }

  polled_state* enroll(int fd, error_code& ec) {
    polled_state* state = take_free();
    epoll_event event{};
    {
      // A stale event may still run perform() on a reused state.
      std::lock_guard lock(state->mutex);
      state->fd = fd;
      state->try_at_once[0] = state->try_at_once[1] = true;
      // Readiness to read is asked for at once; to write, only by the first write attempt
      // that waits: a pipe's write end would otherwise wake the loop each time its reader
      // reads (Asio registers EPOLLOUT as lazily).
      state->registered = EPOLLIN | EPOLLERR | EPOLLHUP | EPOLLET;
    }
    event.events = state->registered;
    event.data.ptr = state;
    if (::epoll_ctl(epoll_fd(), EPOLL_CTL_ADD, fd, &event) != 0) {
      ec = last_error();
      give_back(state);
      return nullptr;
    }
    return state;
  }

  // The descriptor must still be open: it is taken out of the epoll set explicitly, since
  // a duplicate (a child's, native_handle's) would keep it there after close.
  void unregister(polled_state* state) {
    completions aborted;
    {
      std::lock_guard lock(state->mutex);
      state->take_all_aborted(aborted);
      epoll_event unused{};
      ::epoll_ctl(epoll_fd(), EPOLL_CTL_DEL, state->fd, &unused);
      state->fd = -1;
    }
    scheduler_.post_deferred_completions(aborted);
    give_back(state);
  }

  void shutdown() override {
    // As the reactor's shutdown: the waiting operations are destroyed, not run.
    completions abandoned;
    {
      std::lock_guard lock(mutex_);
      for (polled_state* state = in_use_; state; state = state->next) {
        std::lock_guard state_lock(state->mutex);
        for (auto& queue : state->waiting) abandoned.push(queue);
      }
    }
    // Outside the locks: a handler's destructor may close a descriptor.
    scheduler_.abandon_operations(abandoned);
  }

  void notify_fork(boost::asio::execution_context::fork_event event) override {
    if (event != boost::asio::execution_context::fork_child) return;
    // The reactor (made before this service, so told first) has made its epoll set anew,
    // with its own descriptors only. Only the thread that forked came along: a lock one
    // of the parent's threads held is made anew.
    new (&mutex_) std::mutex;
    for (polled_state* state = in_use_; state; state = state->next) {
      new (&state->mutex) std::mutex;
      if (state->fd < 0) continue;
      epoll_event event{};
      event.events = state->registered;
      event.data.ptr = state;
      ::epoll_ctl(epoll_fd(), EPOLL_CTL_ADD, state->fd, &event);
    }
  }

 private:
  polled_state* take_free() {
    std::lock_guard lock(mutex_);
    polled_state* state = free_;
    if (state) free_ = state->next;
    else state = new polled_state;
    state->registry = this;
    state->prev = nullptr;
    state->next = in_use_;
    if (in_use_) in_use_->prev = state;
    in_use_ = state;
    return state;
  }

  void give_back(polled_state* state) {
    std::lock_guard lock(mutex_);
    if (state->prev) state->prev->next = state->next;
    else in_use_ = state->next;
    if (state->next) state->next->prev = state->prev;
    state->prev = nullptr;
    state->next = free_;
    free_ = state;
  }

  ad::epoll_reactor& reactor_;
  ad::scheduler& scheduler_;
  std::mutex mutex_;  // guards the lists
  polled_state* in_use_ = nullptr;
  polled_state* free_ = nullptr;
};

void polled_state::perform(void* owner, ad::scheduler_operation* base, const error_code&, std::size_t events) {
  if (!owner) return;  // the scheduler shuts down; the registry owns the state
  auto* state = static_cast<polled_state*>(base);
  completions finished;
  {
    std::lock_guard lock(state->mutex);
    for (int d = 1; d >= 0; --d) {
      if (!(events & (readiness[d] | EPOLLERR | EPOLLHUP))) continue;
      state->try_at_once[d] = true;
      while (ad::reactor_op* op = state->waiting[d].front()) {
        const auto status = op->perform();
        if (status == ad::reactor_op::not_done) break;
        state->waiting[d].pop();
        finished.push(op);
        if (status == ad::reactor_op::done_and_exhausted) {
          state->try_at_once[d] = false;
          break;
        }
      }
    }
  }
  auto& scheduler = *static_cast<ad::scheduler*>(owner);
  ad::scheduler_operation* first = finished.front();
  if (!first) {
    // The scheduler counts this run as a finished unit of work; none was.
    scheduler.compensating_work_started();
    return;
  }
  finished.pop();
  if (!finished.empty()) scheduler.post_deferred_completions(finished);
  first->complete(owner, error_code(), 0);
}

namespace {

polled_registry& registry_of(const boost::asio::any_io_executor& ex) {
  return boost::asio::use_service<polled_registry>(boost::asio::query(ex, boost::asio::execution::context));
}

}  // namespace

void prepare_polled_descriptors(boost::asio::execution_context& context) {
  boost::asio::use_service<polled_registry>(context);
}

polled_descriptor::polled_descriptor(const executor_type& ex)
    : executor_(ex), registry_(&registry_of(ex)), scheduler_(&registry_->scheduler()) {}

polled_descriptor::polled_descriptor(polled_descriptor&& other) noexcept
    : executor_(other.executor_),
      context_executor_(context_executor()),
      registry_(other.registry_),
      scheduler_(other.scheduler_),
      fd_(std::exchange(other.fd_, -1)),
      state_(std::exchange(other.state_, nullptr)) {}

polled_descriptor& polled_descriptor::operator=(polled_descriptor&& other) noexcept {
  if (this != &other) {
    close();
    executor_ = other.executor_;
    context_executor_ = context_executor();
    registry_ = other.registry_;
    scheduler_ = other.scheduler_;
    fd_ = std::exchange(other.fd_, -1);
    state_ = std::exchange(other.state_, nullptr);
  }
  return *this;
}

polled_descriptor::~polled_descriptor() { close(); }

void polled_descriptor::assign(int fd) noexcept {
  close();
  fd_ = fd;
}

void polled_descriptor::enroll(error_code& ec) noexcept {
  try {
    state_ = registry_->enroll(fd_, ec);
  } catch (const std::bad_alloc&) {
    ec = make_error_code(std::errc::not_enough_memory);
  }
}

void polled_descriptor::start_op(attempt_direction direction, reactor_op* op, bool is_continuation,
                                 bool try_at_once) noexcept {
  const int d = index(direction);
  polled_state& state = *state_;
  std::unique_lock lock(state.mutex);
  if (state.waiting[d].empty()) {
    // Tried under the lock, so that an edge that comes meanwhile finds the attempt queued.
    if (try_at_once && state.try_at_once[d]) {
      if (const auto status = op->perform()) {
        if (status == reactor_op::done_and_exhausted) state.try_at_once[d] = false;
        lock.unlock();
        post_at_once(op, is_continuation);
        return;
      }
    }
    if (!(state.registered & readiness[d])) {
      // The first write that waits asks for EPOLLOUT; the change reports the current
      // readiness, as the registration did.
      epoll_event event{};
      event.events = state.registered | readiness[d];
      event.data.ptr = &state;
      if (::epoll_ctl(registry_->epoll_fd(), EPOLL_CTL_MOD, fd_, &event) != 0) {
        op->ec_ = last_error();
        lock.unlock();
        post_at_once(op, is_continuation);
        return;
      }
      state.registered = event.events;
    }
  }
  state.waiting[d].push(op);
  registry_->scheduler().work_started();
}

void polled_descriptor::post_at_once(reactor_op* op, bool is_continuation) noexcept {
  registry_->scheduler().post_immediate_completion(op, is_continuation);
}

void polled_descriptor::cancel_by_key(polled_state* state, attempt_direction direction, void* key) noexcept {
  completions aborted;
  {
    std::lock_guard lock(state->mutex);
    ops kept;
    auto& queue = state->waiting[index(direction)];
    while (ad::reactor_op* op = queue.front()) {
      queue.pop();
      if (op->cancellation_key_ == key) {
        op->ec_ = boost::asio::error::operation_aborted;
        aborted.push(op);
      } else {
        kept.push(op);
      }
    }
    queue.push(kept);
  }
  state->registry->scheduler().post_deferred_completions(aborted);
}

void polled_descriptor::cancel() noexcept {
  if (!state_) return;
  completions aborted;
  {
    std::lock_guard lock(state_->mutex);
    state_->take_all_aborted(aborted);
  }
  registry_->scheduler().post_deferred_completions(aborted);
}

void polled_descriptor::unregister() noexcept {
  if (state_) registry_->unregister(std::exchange(state_, nullptr));
}

void polled_descriptor::close() noexcept {
  if (fd_ < 0) return;
  unregister();
  ::close(std::exchange(fd_, -1));
}

int polled_descriptor::release() noexcept {
  unregister();
  return std::exchange(fd_, -1);
}

}  // namespace ipckit::detail
