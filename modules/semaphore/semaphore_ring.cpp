#include <ipckit/detail/polled_descriptor.hpp>
#include <ipckit/detail/semaphore_ring.hpp>

#include "glibc_semaphore.hpp"
#include "io_uring_abi.hpp"

#include <boost/asio/detail/call_stack.hpp>
#include <boost/asio/detail/reactor.hpp>
#include <boost/asio/detail/scheduler.hpp>
#include <boost/container/small_vector.hpp>
#include <boost/asio/io_context.hpp>

#include <atomic>
#include <cerrno>
#include <chrono>
#include <cstdlib>
#include <cstring>
#include <optional>
#include <string_view>
#include <sys/mman.h>

namespace ipckit::detail {
namespace {

namespace gs = glibc_semaphore;

// Sizes: the submission ring only carries a batch at a time (every entry point submits
// before it returns); the completion ring holds a completion per wait in flight, and
// the kernel keeps what does not fit (IORING_FEAT_NODROP) until there is room.
constexpr unsigned submission_entries = 64;
constexpr unsigned completion_entries = 256;

// A completion's user_data is the address of its wait; an ASYNC_CANCEL's has this bit
// set too (a ring_wait is never at an odd address).
constexpr std::uint64_t cancel_tag = 1;

// How long the context's destruction waits for the kernel to give back cancelled waits
// before it takes them out of the waiter counts anyway.
constexpr std::chrono::seconds shutdown_patience{2};
constexpr long shutdown_poll_ns = 100'000'000;

bool turned_off_by_environment() {
  const char* value = std::getenv("IPCKIT_NO_IO_URING");
  return value && *value && std::string_view(value) != "0";
}

template <class T>
T* at(void* base, std::uint32_t offset) noexcept {
  return reinterpret_cast<T*>(static_cast<char*>(base) + offset);
}

}  // namespace

struct semaphore_ring_service::impl {
  // Waits whose outcome is decided, to complete once the mutex is released; usually one
  // (a hand-off), kept off the heap.
  using outcomes = boost::container::small_vector<std::pair<std::shared_ptr<ring_wait>, error_code>, 4>;

  struct mapping {
    void* address = MAP_FAILED;
    std::size_t size = 0;
    mapping() = default;
    mapping(const mapping&) = delete;
    mapping& operator=(const mapping&) = delete;
    ~mapping() {
      if (address != MAP_FAILED) ::munmap(address, size);
    }
    bool map(int fd, std::size_t length, off_t offset) noexcept {
      address = ::mmap(nullptr, length, PROT_READ | PROT_WRITE, MAP_SHARED | MAP_POPULATE, fd, offset);
      size = length;
      return address != MAP_FAILED;
    }
  };

  // Set up once, then read-only.
  int fd = -1;  // closed by `descriptor` once it owns it, else by ~impl
  bool descriptor_owns_fd = false;
  mapping rings, entries;
  unsigned* sq_head = nullptr;
  unsigned* sq_tail = nullptr;
  unsigned* sq_array = nullptr;
  unsigned* sq_flags = nullptr;
  unsigned sq_mask = 0;
  unsigned sq_size = 0;
  io_uring_sqe* sqes = nullptr;
  unsigned* cq_head = nullptr;
  unsigned* cq_tail = nullptr;
  unsigned cq_mask = 0;
  io_uring_cqe* cqes = nullptr;
  std::optional<polled_descriptor> descriptor;  // made at the first wait, with its executor
  boost::asio::detail::scheduler* scheduler = nullptr;  // the context's, which runs the loop

  // Under the mutex.
  std::mutex mutex;
  unsigned unsubmitted = 0;                            // entries written since the last enter
  std::vector<std::shared_ptr<ring_wait>> in_kernel;   // waits the kernel holds a request of
  outcomes finished;
  bool armed = false;     // the descriptor's readiness is being waited for
  bool refused = false;   // the kernel refused a submission: new waits go to the pool
  bool stopping = false;
  bool held_for_fork = false;  // between fork_prepare and fork_parent
  bool abandoned = false;      // in a forked child: the parent's ring, never touched again
  std::unique_ptr<impl> inherited;  // the abandoned ring this one replaced in a child

  impl() = default;
  impl(const impl&) = delete;
  impl& operator=(const impl&) = delete;
  ~impl() {
    if (!descriptor_owns_fd && fd >= 0) ::close(fd);
  }

  // A ring that does what we need, or null: the reasons are in the class comment.
  static std::unique_ptr<impl> open(boost::asio::execution_context& context) {
    if (turned_off_by_environment() || !gs::protocol_known()) return nullptr;
    auto ring = std::make_unique<impl>();
    if (!ring->set_up() || !ring->futex_wait_works()) return nullptr;
    // The reactor is made now, before this service is registered, so that it is shut
    // down after it (Asio goes newest first), as the descriptor needs. A context whose
    // named semaphores fall back to the pool gets none from us: the pool hands
    // completions to a loop without a reactor more cheaply (finding 6).
    prepare_polled_descriptors(context);
    ring->scheduler = &boost::asio::use_service<boost::asio::detail::scheduler>(context);
    return ring;
  }

  // Whether this thread is running the loop (inside the scheduler's run).
  bool on_loop_thread() const noexcept {
    using thread_call_stack =
        boost::asio::detail::call_stack<boost::asio::detail::thread_context, boost::asio::detail::thread_info_base>;
    return thread_call_stack::contains(scheduler) != nullptr;
  }

  void begin_on_loop(const std::shared_ptr<ring_wait>& wait, const boost::asio::any_io_executor& ex) {
    std::unique_lock lock(mutex);
    watch_with(ex);
    begin(wait);
    arm();
    post_finished(lock);
  }

  // Called with the mutex held.
  void watch_with(const boost::asio::any_io_executor& ex) {
    if (descriptor) return;
    descriptor.emplace(ex);
    descriptor->assign(fd);
    descriptor_owns_fd = true;
  }

  bool set_up() noexcept {
    io_uring_params params{};
    // SUBMIT_ALL: an entry that fails is not the end of its batch, so each one written
    // gets its completion.
    params.flags = IORING_SETUP_CQSIZE | IORING_SETUP_SUBMIT_ALL;
    params.cq_entries = completion_entries;
    fd = uring::setup(submission_entries, &params);
    if (fd < 0) return false;
    const unsigned needed = IORING_FEAT_SINGLE_MMAP | IORING_FEAT_NODROP;
    if ((params.features & needed) != needed) return false;
    const std::size_t sq_bytes = params.sq_off.array + params.sq_entries * sizeof(unsigned);
    const std::size_t cq_bytes = params.cq_off.cqes + params.cq_entries * sizeof(io_uring_cqe);
    if (!rings.map(fd, std::max(sq_bytes, cq_bytes), IORING_OFF_SQ_RING) ||
        !entries.map(fd, params.sq_entries * sizeof(io_uring_sqe), IORING_OFF_SQES))
      return false;
    sq_head = at<unsigned>(rings.address, params.sq_off.head);
    sq_tail = at<unsigned>(rings.address, params.sq_off.tail);
    sq_array = at<unsigned>(rings.address, params.sq_off.array);
    sq_flags = at<unsigned>(rings.address, params.sq_off.flags);
    sq_mask = *at<unsigned>(rings.address, params.sq_off.ring_mask);
    sq_size = params.sq_entries;
    sqes = static_cast<io_uring_sqe*>(entries.address);
    cq_head = at<unsigned>(rings.address, params.cq_off.head);
    cq_tail = at<unsigned>(rings.address, params.cq_off.tail);
    cq_mask = *at<unsigned>(rings.address, params.cq_off.ring_mask);
    cqes = at<io_uring_cqe>(rings.address, params.cq_off.cqes);
    return true;
  }

  // A FUTEX_WAIT on a word that does not hold the expected value must come back with
  // EAGAIN at once; a kernel without the operation says EINVAL.
  bool futex_wait_works() noexcept {
    std::uint32_t word = 0;
    io_uring_sqe* sqe = next_entry();
    prepare_futex_wait(sqe, &word, 1, 0);
    push_entry();
    if (uring::enter(fd, 1, 1, IORING_ENTER_GETEVENTS) != 1) return false;
    unsubmitted = 0;
    io_uring_cqe cqe{};
    if (!next_completion(cqe)) return false;
    return cqe.user_data == 0 && cqe.res == -EAGAIN;
  }

  // ---- the rings -------------------------------------------------------------------

  // A free submission entry (after submitting what is written when the ring is full),
  // or null if there is none.
  io_uring_sqe* next_entry() noexcept {
    auto head = [this] { return std::atomic_ref<unsigned>(*sq_head).load(std::memory_order_acquire); };
    if (*sq_tail - head() >= sq_size) submit();
    if (*sq_tail - head() >= sq_size) return nullptr;
    const unsigned index = *sq_tail & sq_mask;
    io_uring_sqe* sqe = &sqes[index];
    std::memset(sqe, 0, sizeof *sqe);
    sq_array[index] = index;
    return sqe;
  }

  // Publishes the entry next_entry() gave.
  void push_entry() noexcept {
    std::atomic_ref<unsigned>(*sq_tail).store(*sq_tail + 1, std::memory_order_release);
    ++unsubmitted;
  }

  static void prepare_futex_wait(io_uring_sqe* sqe, std::uint32_t* word, std::uint32_t expected,
                                 std::uint64_t user_data) noexcept {
    sqe->opcode = uring::op_futex_wait;
    sqe->fd = static_cast<int>(uring::futex2_size_u32);
    sqe->addr = reinterpret_cast<std::uintptr_t>(word);
    sqe->off = expected;  // addr2
    sqe->addr3 = uring::futex_match_any;
    sqe->user_data = user_data;
  }

  bool next_completion(io_uring_cqe& cqe) noexcept {
    const unsigned head = *cq_head;
    if (head == std::atomic_ref<unsigned>(*cq_tail).load(std::memory_order_acquire)) return false;
    cqe = cqes[head & cq_mask];
    std::atomic_ref<unsigned>(*cq_head).store(head + 1, std::memory_order_release);
    return true;
  }

  bool completions_waiting() const noexcept {
    // On the reactor's thread, while the loop may be reaping: cq_head is read atomically.
    return std::atomic_ref<unsigned>(*cq_head).load(std::memory_order_relaxed) !=
               std::atomic_ref<unsigned>(*cq_tail).load(std::memory_order_acquire) ||
           (std::atomic_ref<unsigned>(*sq_flags).load(std::memory_order_relaxed) & IORING_SQ_CQ_OVERFLOW);
  }

  // Hands what is written to the kernel. If it refuses, the entries it did not take are
  // taken back (it reads them only inside io_uring_enter, which only we call, under the
  // mutex): their waits give up the ring, and no wait starts on it any more.
  void submit() noexcept {
    while (unsubmitted > 0) {
      const int taken = uring::enter(fd, unsubmitted, 0, 0);
      if (taken > 0) {
        unsubmitted -= static_cast<unsigned>(taken);
        continue;
      }
      if (taken < 0 && errno == EINTR) continue;
      take_back_unsubmitted();
      refused = true;
      return;
    }
  }

  void take_back_unsubmitted() noexcept {
    const unsigned head = std::atomic_ref<unsigned>(*sq_head).load(std::memory_order_acquire);
    for (unsigned i = head; i != *sq_tail; ++i) {
      const io_uring_sqe& sqe = sqes[sq_array[i & sq_mask]];
      auto* wait = reinterpret_cast<ring_wait*>(sqe.user_data & ~cancel_tag);
      auto& progress = wait->progress;
      auto owner = in_kernel[progress.slot];
      if (sqe.user_data & cancel_tag) {
        // It stays cancelled: it ends at its next wake-up instead.
        progress.cancel_in_kernel = false;
        forget_if_done(*wait);
      } else {
        progress.futex_in_kernel = false;
        forget_if_done(*wait);
        give_up(owner, ring_unavailable());
      }
    }
    std::atomic_ref<unsigned>(*sq_tail).store(head, std::memory_order_release);
    unsubmitted = 0;
  }

  // ---- the waits -------------------------------------------------------------------

  void remember(const std::shared_ptr<ring_wait>& wait) {
    auto& progress = wait->progress;
    if (progress.futex_in_kernel || progress.cancel_in_kernel) return;
    progress.slot = in_kernel.size();
    in_kernel.push_back(wait);
  }

  // Drops the wait from the list once the kernel holds nothing of it.
  void forget_if_done(ring_wait& wait) {
    auto& progress = wait.progress;
    if (progress.futex_in_kernel || progress.cancel_in_kernel) return;
    const std::size_t slot = progress.slot;
    if (slot >= in_kernel.size() || in_kernel[slot].get() != &wait) return;
    if (slot + 1 != in_kernel.size()) {
      in_kernel[slot] = std::move(in_kernel.back());
      in_kernel[slot]->progress.slot = slot;
    }
    in_kernel.pop_back();
  }

  void finish(const std::shared_ptr<ring_wait>& wait, error_code ec) {
    wait->progress.finished = true;
    if (!stopping) finished.emplace_back(wait, ec);
  }

  // Stops counting the wait as a waiter (passing on a wake it may have had) and ends it.
  void give_up(const std::shared_ptr<ring_wait>& wait, error_code ec) {
    if (wait->progress.counted) gs::remove_waiter(wait->semaphore());
    wait->progress.counted = false;
    finish(wait, ec);
  }

  // A counted wait takes a unit if there is one, else sleeps on the value word while it
  // is 0 (the kernel says EAGAIN at once if a post came in between).
  void take_or_sleep(const std::shared_ptr<ring_wait>& wait) {
    sem_t* sem = wait->semaphore();
    std::uint64_t data = gs::load(sem);
    if (gs::take_as_waiter(sem, data)) {
      wait->progress.counted = false;
      finish(wait, {});
      return;
    }
    io_uring_sqe* sqe = next_entry();
    if (!sqe) {
      give_up(wait, ring_unavailable());
      return;
    }
    prepare_futex_wait(sqe, gs::value_word(sem), 0, reinterpret_cast<std::uintptr_t>(wait.get()));
    remember(wait);
    wait->progress.futex_in_kernel = true;
    push_entry();
  }

  void begin(const std::shared_ptr<ring_wait>& wait) {
    auto& progress = wait->progress;
    if (stopping || progress.finished) return;
    if (progress.cancelled) return finish(wait, boost::asio::error::operation_aborted);
    if (refused) return finish(wait, ring_unavailable());
    gs::add_waiter(wait->semaphore());
    progress.counted = true;
    take_or_sleep(wait);
    submit();
  }

  // A wait's FUTEX_WAIT came back with `result`.
  void settle(const std::shared_ptr<ring_wait>& wait, int result) {
    auto& progress = wait->progress;
    if (stopping || progress.cancelled) return give_up(wait, boost::asio::error::operation_aborted);
    switch (result) {
      case 0:            // woken
      case -EAGAIN:      // the value was not 0 any more
      case -EINTR:
      case -ECANCELED:   // not by us: the kernel's (the submitting thread went away)
        return take_or_sleep(wait);
      default:           // the kernel cannot wait for us (ENOMEM…): the pool can
        return give_up(wait, ring_unavailable());
    }
  }

  void request_cancel(ring_wait& wait) {
    auto& progress = wait.progress;
    if (!progress.futex_in_kernel || progress.cancel_in_kernel) return;
    io_uring_sqe* sqe = next_entry();
    if (!sqe) return;  // it ends at its next wake-up instead
    sqe->opcode = IORING_OP_ASYNC_CANCEL;
    sqe->fd = -1;
    sqe->addr = reinterpret_cast<std::uintptr_t>(&wait);
    sqe->user_data = reinterpret_cast<std::uintptr_t>(&wait) | cancel_tag;
    progress.cancel_in_kernel = true;
    push_entry();
  }

  // Takes every completion the kernel has, then submits what they call for.
  void reap() {
    for (;;) {
      io_uring_cqe cqe{};
      if (!next_completion(cqe)) {
        // Completions that did not fit wait in the kernel; entering moves them over.
        if (!(std::atomic_ref<unsigned>(*sq_flags).load(std::memory_order_relaxed) & IORING_SQ_CQ_OVERFLOW)) break;
        uring::enter(fd, 0, 0, IORING_ENTER_GETEVENTS);
        if (!next_completion(cqe)) break;
      }
      auto* wait = reinterpret_cast<ring_wait*>(cqe.user_data & ~cancel_tag);
      auto& progress = wait->progress;
      auto owner = in_kernel[progress.slot];
      // Out of the list first: settling may put it back with a new FUTEX_WAIT.
      if (cqe.user_data & cancel_tag) {
        progress.cancel_in_kernel = false;
        forget_if_done(*wait);
      } else {
        progress.futex_in_kernel = false;
        forget_if_done(*wait);
        settle(owner, cqe.res);
      }
    }
    submit();
  }

  // Watches the descriptor while the kernel holds requests (a pending reactor operation
  // would keep run() from returning otherwise). Called with the mutex held; the attempt
  // takes no lock, and its handler never runs inside this call.
  void arm() {
    if (armed || in_kernel.empty() || stopping) return;
    armed = true;
    descriptor->async_attempt<void>(
        attempt_direction::read, [this](error_code&) { return completions_waiting(); },
        [this](error_code ec) { on_ready(ec); });
  }

  void on_ready(error_code ec) {
    outcomes done;
    {
      std::lock_guard lock(mutex);
      armed = false;
      if (ec || stopping) return;
      reap();
      arm();
      done.swap(finished);
    }
    // Dispatched: the loop runs the handlers now, without another turn of the scheduler.
    // If one throws, the others are queued rather than lost (each may hold a unit).
    std::size_t next = 0;
    try {
      for (; next < done.size(); ++next) {
        auto& [wait, ec] = done[next];
        wait->dispatch_completion(std::move(wait), ec);
      }
    } catch (...) {
      for (++next; next < done.size(); ++next) {
        auto& [wait, ec] = done[next];
        wait->post_completion(std::move(wait), ec);
      }
      throw;
    }
  }

  void post_finished(std::unique_lock<std::mutex>& lock) {
    outcomes done;
    done.swap(finished);
    lock.unlock();
    for (auto& [wait, result] : done) wait->post_completion(std::move(wait), result);
  }

  // In a child made by fork() without exec, before anything else runs there: the rings'
  // memory is shared with the parent, so reaping here would take the parent's
  // completions, and the kernel's requests are the parent's. Only the thread that forked
  // came along (a lock a thread of the parent's held is made anew). The waits' counts in
  // the semaphores belong to the parent's waits, so they stay; the child's copies of the
  // waits are returned, for ring_unavailable(). The descriptor, re-registered in the
  // child's epoll set by the reactor's own fork_child, is closed (its armed wait ends
  // with operation_aborted, which reaps nothing); new waits here would go to the pool.
  std::vector<std::shared_ptr<ring_wait>> abandon_in_child() {
    new (&mutex) std::mutex;
    held_for_fork = false;
    abandoned = true;
    refused = true;
    unsubmitted = 0;
    std::vector<std::shared_ptr<ring_wait>> waits;
    waits.swap(in_kernel);
    for (auto& wait : waits) {
      wait->progress = {};
      wait->progress.finished = true;
    }
    if (descriptor) {
      descriptor->close();
    } else if (fd >= 0) {
      ::close(fd);
      fd = -1;
    }
    return waits;
  }

  void shut_down() {
    std::vector<std::shared_ptr<ring_wait>> dropped;
    {
      std::lock_guard lock(mutex);
      if (stopping || abandoned) return;
      stopping = true;
      for (const auto& wait : in_kernel) request_cancel(*wait);
      submit();
      // A cancelled FUTEX_WAIT must be out of the kernel before its waiter stops being
      // counted, or a post could wake it instead of another waiter (see remove_waiter).
      const auto deadline = std::chrono::steady_clock::now() + shutdown_patience;
      auto sleeping = [this] {
        for (const auto& wait : in_kernel)
          if (wait->progress.futex_in_kernel) return true;
        return false;
      };
      for (;;) {
        reap();
        if (!sleeping() || std::chrono::steady_clock::now() >= deadline) break;
        __kernel_timespec timeout{0, shutdown_poll_ns};
        io_uring_getevents_arg arg{};
        arg.ts = reinterpret_cast<std::uintptr_t>(&timeout);
        uring::enter(fd, 0, 1, IORING_ENTER_GETEVENTS | IORING_ENTER_EXT_ARG, &arg, sizeof arg);
      }
      // Best effort for what the kernel did not give back in time.
      for (const auto& wait : in_kernel) give_up(wait, {});
      dropped.swap(in_kernel);
      finished.clear();
    }
    // The handlers are destroyed here, uncalled, outside the lock; then the ring goes.
    dropped.clear();
    if (descriptor) descriptor->close();
  }
};

semaphore_ring_service::semaphore_ring_service(boost::asio::execution_context& context)
    : boost::asio::execution_context::service(context), impl_(impl::open(context)) {}

semaphore_ring_service::~semaphore_ring_service() { shutdown(); }

bool semaphore_ring_service::usable() const noexcept { return impl_ && !impl_->abandoned; }

bool semaphore_ring_service::can_wait(const sem_t* sem) const noexcept {
  return usable() && sem && glibc_semaphore::is_shared(sem);
}

void semaphore_ring_service::start(std::shared_ptr<ring_wait> wait, const boost::asio::any_io_executor& ex) {
  // Begun on a thread of the loop: the kernel completes a FUTEX_WAIT through task work
  // of the thread that submitted it, and a loop thread is the one to wake. Not through
  // `ex` itself when this thread runs the loop already: begin touches nothing of the
  // caller's (a strand's order does not matter to it), and a dispatch costs a wrapped,
  // type-erased call per wait.
  if (impl_->on_loop_thread()) return impl_->begin_on_loop(wait, ex);
  boost::asio::post(ex, [this, ex, wait = std::move(wait)] { impl_->begin_on_loop(wait, ex); });
}

void semaphore_ring_service::cancel(const std::shared_ptr<ring_wait>& wait) {
  if (!impl_) return;
  std::unique_lock lock(impl_->mutex);
  auto& progress = wait->progress;
  if (progress.finished || progress.cancelled) return;
  progress.cancelled = true;
  impl_->request_cancel(*wait);
  impl_->submit();
  impl_->post_finished(lock);
}

void semaphore_ring_service::shutdown() {
  if (impl_) impl_->shut_down();
}

void semaphore_ring_service::notify_fork(boost::asio::execution_context::fork_event event) {
  if (!impl_) return;
  switch (event) {
    case boost::asio::execution_context::fork_prepare:
      // No thread may be halfway through a change of the ring's state at the fork.
      impl_->mutex.lock();
      impl_->held_for_fork = true;
      return;
    case boost::asio::execution_context::fork_parent:
      if (impl_->held_for_fork) {
        impl_->held_for_fork = false;
        impl_->mutex.unlock();
      }
      return;
    case boost::asio::execution_context::fork_child:
      break;
  }
  auto waits = impl_->abandon_in_child();
  // The abandoned ring stays (its descriptor's aborted wait still refers to it) until
  // the context goes; without a new ring, it sends every wait to the pool.
  if (auto own = impl::open(context())) {
    own->inherited = std::move(impl_);
    impl_ = std::move(own);
  }
  for (auto& wait : waits) wait->post_completion(std::move(wait), ring_unavailable());
}

void pending_ring_waits::add(semaphore_ring_service& service, const std::shared_ptr<ring_wait>& wait) {
  std::unique_lock lock(mutex_);
  if (cancelled_) {
    lock.unlock();
    service.cancel(wait);
    return;
  }
  std::erase_if(waits_, [](const auto& entry) { return entry.second.expired(); });
  waits_.emplace_back(&service, wait);
}

void pending_ring_waits::cancel_all() {
  std::vector<std::pair<semaphore_ring_service*, std::weak_ptr<ring_wait>>> waits;
  {
    std::lock_guard lock(mutex_);
    cancelled_ = true;
    waits.swap(waits_);
  }
  // A wait still alive is held by its service's context, which is alive too.
  for (auto& [service, weak] : waits)
    if (auto wait = weak.lock()) service->cancel(wait);
}

}  // namespace ipckit::detail
