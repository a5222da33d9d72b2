// Signals and synchronisation objects, as round trips between two processes: a signal
// each way, an eventfd semaphore each way, a named semaphore each way, and a file lock
// handed to and fro (three locks in rotation, so each hand-off wakes the other side).
#include "bench_ends.hpp"

#include "command.hpp"

#include <ipckit/file_lock.hpp>
#include <ipckit/semaphore.hpp>
#include <ipckit/signal.hpp>

#include <boost/asio/io_context.hpp>

#include <cerrno>
#include <csignal>
#include <cstdint>
#include <fcntl.h>
#include <semaphore.h>
#include <sys/eventfd.h>
#include <sys/file.h>
#include <sys/signalfd.h>
#include <unistd.h>

namespace ipckit::cli::bench {
namespace {

constexpr int child_in = 3, child_out = 4, child_ready = 5;
constexpr std::size_t no_bytes = 8;  // what the drivers pass around; unused here

std::string_view raw_epoll_way = four_ways[1];

long warmup_of(long count) { return std::max(10L, count / 10); }

/// What each mechanism's child needs: WAY COUNT [NAMES…]; fds 3 and 4 (and 5 to say it
/// is ready) when the mechanism has descriptors.
struct side {
  bool parent;
  std::string way;
  long count;
  bool async() const { return way == four_ways[3]; }
  bool ipckit() const { return way == four_ways[2] || way == four_ways[3]; }
  bool epoll() const { return way == raw_epoll_way; }
};

/// The child says it is ready (it holds what the parent must wait for) with one byte.
struct ready_pipe {
  int read_end = -1, write_end = -1;
  ready_pipe() {
    int fds[2];
    if (::pipe2(fds, O_CLOEXEC) != 0) fail_errno("pipe2");
    read_end = fds[0];
    write_end = fds[1];
  }
  ~ready_pipe() {
    if (read_end >= 0) ::close(read_end);
    if (write_end >= 0) ::close(write_end);
  }
  void child_started() {
    ::close(write_end);
    write_end = -1;
  }
  void wait() {
    char byte;
    long n;
    do n = ::read(read_end, &byte, 1);
    while (n < 0 && errno == EINTR);
    if (n != 1) throw std::runtime_error("the child exited before it was ready");
  }
};

void say_ready() {
  if (::write(child_ready, "r", 1) != 1) fail_errno("write ready");
  ::close(child_ready);
}

/// Runs one way of a row: makes the child, runs the parent's side, reaps the child.
template <class Body>
way_result run_way(context& ctx, std::string_view name, std::string_view way, std::vector<std::string> extra,
                   std::vector<std::pair<int, int>> fds, ready_pipe* ready, Body&& body) {
  way_result result{std::string(way), std::nullopt, {}};
  std::vector<std::string> args{result.way, std::to_string(ctx.opts().iterations)};
  args.insert(args.end(), extra.begin(), extra.end());
  if (ready) fds.push_back({ready->write_end, child_ready});
  auto child = ctx.start_child(name, args, fds);
  if (ready) {
    ready->child_started();
    ready->wait();
  }
  result.figures = body(side{true, result.way, ctx.opts().iterations}, child.pid());
  context::reap(child, std::string(name) + " " + result.way);
  return result;
}

// ---- signal ----------------------------------------------------------------------------

constexpr int ping_signal = SIGUSR1;

std::map<std::string, double> signal_side(const side& s, pid_t peer, std::function<void()> ready) {
  event_loop loop(1);
  const long warmup = warmup_of(s.count);
  if (s.ipckit()) {
    signal::notifier subscription(loop.get_executor(), {ping_signal});
    ready();
    call_end end{[peer] { signal::send(peer, ping_signal); }, [&] { subscription.wait(); },
                 [&](auto handler) {
                   subscription.async_wait([handler](error_code ec, const signal::info&) mutable { handler(ec, 0); });
                 }};
    return ping_or_echo(s.parent, s.async(), loop, end, s.count, warmup, no_bytes);
  }
  // The raw way: block the signal, read it from a signalfd (blocking, or on epoll).
  sigset_t only, old;
  sigemptyset(&only);
  sigaddset(&only, ping_signal);
  ::sigprocmask(SIG_BLOCK, &only, &old);
  struct restore {
    sigset_t mask;
    ~restore() { ::sigprocmask(SIG_SETMASK, &mask, nullptr); }
  } restore_mask{old};
  const int fd = ::signalfd(-1, &only, SFD_CLOEXEC);
  if (fd < 0) fail_errno("signalfd");
  raw_end signals(fd, fd, framing::datagram, s.epoll());
  ready();
  std::vector<char> info(sizeof(signalfd_siginfo));
  call_end end{[peer] {
                 if (::kill(peer, ping_signal) != 0) fail_errno("kill");
               },
               [&] { signals.recv(info.data(), info.size(), info.size()); }, no_async_recv{}};
  return ping_or_echo(s.parent, false, loop, end, s.count, warmup, no_bytes);
}

way_result signal_way(context& ctx, std::string_view way) {
  ready_pipe ready;
  return run_way(ctx, "signal", way, {}, {}, &ready,
                 [](const side& s, pid_t child) { return signal_side(s, child, [] {}); });
}

int signal_child(std::span<const std::string> args) {
  if (args.size() < 2) return exit_usage;
  signal_side({false, args[0], std::stol(args[1])}, ::getppid(), say_ready);
  return 0;
}

// ---- eventfd semaphore ---------------------------------------------------------------

std::map<std::string, double> eventfd_side(const side& s, int in, int out) {
  event_loop loop(1);
  const long warmup = warmup_of(s.count);
  if (s.ipckit()) {
    event_semaphore take(loop.get_executor()), give(loop.get_executor());
    take.assign(unique_fd(in));
    give.assign(unique_fd(out));
    call_end end{[&] { give.post(); }, [&] { take.wait(); },
                 [&](auto handler) { take.async_wait([handler](error_code ec) mutable { handler(ec, 0); }); }};
    return ping_or_echo(s.parent, s.async(), loop, end, s.count, warmup, no_bytes);
  }
  raw_end fds(in, out, framing::counter, s.epoll());
  const std::uint64_t one = 1;
  std::uint64_t got = 0;
  call_end end{[&] { fds.send(reinterpret_cast<const char*>(&one), sizeof one); },
               [&] { fds.recv(reinterpret_cast<char*>(&got), sizeof got, sizeof got); }, no_async_recv{}};
  return ping_or_echo(s.parent, false, loop, end, s.count, warmup, no_bytes);
}

way_result eventfd_way(context& ctx, std::string_view way) {
  const int down = ::eventfd(0, EFD_SEMAPHORE | EFD_CLOEXEC);
  const int up = ::eventfd(0, EFD_SEMAPHORE | EFD_CLOEXEC);
  if (down < 0 || up < 0) fail_errno("eventfd");
  std::vector<std::pair<int, int>> fds{{down, child_in}, {up, child_out}};
  return run_way(ctx, "eventfd", way, {}, fds, nullptr, [&](const side& s, pid_t) {
    return eventfd_side(s, up, down);
  });
}

int eventfd_child(std::span<const std::string> args) {
  if (args.size() < 2) return exit_usage;
  eventfd_side({false, args[0], std::stol(args[1])}, child_in, child_out);
  return 0;
}

// ---- named semaphore -----------------------------------------------------------------

std::map<std::string, double> semaphore_side(const side& s, const std::string& in, const std::string& out) {
  event_loop loop(1);
  const long warmup = warmup_of(s.count);
  if (s.ipckit()) {
    named_semaphore take(loop.get_executor()), give(loop.get_executor());
    take.open(in);
    give.open(out);
    call_end end{[&] { give.post(); }, [&] { take.wait(); },
                 [&](auto handler) { take.async_wait([handler](error_code ec) mutable { handler(ec, 0); }); }};
    return ping_or_echo(s.parent, s.async(), loop, end, s.count, warmup, no_bytes);
  }
  sem_t* take = ::sem_open(in.c_str(), 0);
  sem_t* give = ::sem_open(out.c_str(), 0);
  if (take == SEM_FAILED || give == SEM_FAILED) fail_errno("sem_open");
  struct closer {
    sem_t* a;
    sem_t* b;
    ~closer() {
      ::sem_close(a);
      ::sem_close(b);
    }
  } close_both{take, give};
  call_end end{[&] {
                 if (::sem_post(give) != 0) fail_errno("sem_post");
               },
               [&] {
                 while (::sem_wait(take) != 0)
                   if (errno != EINTR) fail_errno("sem_wait");
               },
               no_async_recv{}};
  return ping_or_echo(s.parent, false, loop, end, s.count, warmup, no_bytes);
}

way_result semaphore_way(context& ctx, std::string_view way) {
  if (way == raw_epoll_way) return {std::string(way), "a named semaphore has no descriptor to poll", {}};
  event_loop loop(1);
  const std::string down = ctx.unique_name("sem"), up = ctx.unique_name("sem");
  struct unlinker {
    std::vector<std::string> names;
    ~unlinker() {
      for (const auto& name : names) {
        error_code ignored;
        named_semaphore::unlink(name, ignored);
      }
    }
  } unlink_both{{down, up}};
  for (const auto& name : {down, up}) named_semaphore(loop.get_executor()).create(name, 0);
  return run_way(ctx, "named_semaphore", way, {down, up}, {}, nullptr, [&](const side& s, pid_t) {
    return semaphore_side(s, up, down);
  });
}

int semaphore_child(std::span<const std::string> args) {
  if (args.size() < 4) return exit_usage;
  semaphore_side({false, args[0], std::stol(args[1])}, args[2], args[3]);
  return 0;
}

// ---- file lock hand-off --------------------------------------------------------------

// Three locks in rotation. The parent starts holding 0 and 1, the child 2. Step k: the
// parent releases k and takes k+2 (which the child releases next), the child takes k
// and releases k+2; so every release wakes the other process, and one parent step is
// one round trip.
template <class Lock, class Unlock, class AsyncLock>
std::map<std::string, double> rotate(const side& s, event_loop& loop, Lock lock, Unlock unlock,
                                     AsyncLock async_lock) {
  long k = 0;
  auto first = [&] { return static_cast<int>(k % 3); };
  auto third = [&] { return static_cast<int>((k + 2) % 3); };
  // The parent sends (releases) first; the child receives (takes) first.
  auto release = [&] {
    unlock(s.parent ? first() : third());
    if (!s.parent) ++k;
  };
  auto take = [&] {
    lock(s.parent ? third() : first());
    if (s.parent) ++k;
  };
  auto take_async = [&](auto handler) {
    const int which = s.parent ? third() : first();
    async_lock(which, [&, handler](error_code ec) mutable {
      if (s.parent) ++k;
      handler(ec, 0);
    });
  };
  call_end end{release, take, take_async};
  return ping_or_echo(s.parent, s.async(), loop, end, s.count, warmup_of(s.count), no_bytes);
}

std::map<std::string, double> lock_side(const side& s, const std::vector<std::string>& paths,
                                        std::function<void()> ready) {
  event_loop loop(1);
  const std::vector<int> held_first = s.parent ? std::vector<int>{0, 1} : std::vector<int>{2};
  if (s.ipckit()) {
    std::vector<file_lock> locks;
    for (const auto& path : paths) locks.emplace_back(loop.get_executor(), path);
    for (int i : held_first) locks[static_cast<std::size_t>(i)].lock();
    ready();
    return rotate(s, loop, [&](int i) { locks[static_cast<std::size_t>(i)].lock(); },
                  [&](int i) { locks[static_cast<std::size_t>(i)].unlock(); },
                  [&](int i, auto handler) { locks[static_cast<std::size_t>(i)].async_lock(lock_mode::exclusive, handler); });
  }
  std::vector<unique_fd> fds;
  for (const auto& path : paths) {
    fds.emplace_back(::open(path.c_str(), O_RDWR | O_CREAT | O_CLOEXEC, 0600));
    if (!fds.back().is_open()) fail_errno("open");
  }
  auto flock_call = [&](int i, int operation) {
    while (::flock(fds[static_cast<std::size_t>(i)].get(), operation) != 0)
      if (errno != EINTR) fail_errno("flock");
  };
  for (int i : held_first) flock_call(i, LOCK_EX);
  ready();
  return rotate(s, loop, [&](int i) { flock_call(i, LOCK_EX); }, [&](int i) { flock_call(i, LOCK_UN); },
                [](int, auto&&) { throw std::logic_error("no async flock"); });
}

way_result lock_way(context& ctx, std::string_view way) {
  if (way == raw_epoll_way) return {std::string(way), "a file lock has no descriptor to poll", {}};
  std::vector<std::string> args{std::string(way), std::to_string(ctx.opts().iterations)};
  for (int i = 0; i < 3; ++i) args.push_back((ctx.temp_dir() / ("lock" + std::to_string(i))).string());
  const std::vector<std::string> paths(args.begin() + 2, args.end());
  ready_pipe ready;
  std::optional<tour_child> child;
  way_result result{std::string(way), std::nullopt, {}};
  // The child starts only once the parent holds its two locks, so that the child's first
  // take (lock 0) waits for the parent's first release.
  result.figures = lock_side({true, result.way, ctx.opts().iterations}, paths, [&] {
    child.emplace(ctx.start_child("flock", args, {{ready.write_end, child_ready}}));
    ready.child_started();
    ready.wait();
  });
  context::reap(*child, "flock " + result.way);
  return result;
}

int lock_child(std::span<const std::string> args) {
  if (args.size() < 5) return exit_usage;
  lock_side({false, args[0], std::stol(args[1])}, {args[2], args[3], args[4]}, say_ready);
  return 0;
}

// ---- rows ----------------------------------------------------------------------------

// Locks and semaphores cannot be polled: both ipckit ways compare with raw blocking calls.
const std::vector<std::pair<std::string, std::string>> unpollable_ratios{
    {"ipckit_blocking", "raw_blocking"}, {"ipckit_async", "raw_blocking"}};

template <way_result (*Way)(context&, std::string_view)>
std::vector<row_result> rows_of(context& ctx, std::string name, std::string note) {
  const bool pollable = name == "signal" || name == "eventfd";
  row_result row{std::move(name), "round_trip", "us", "median", true, std::nullopt, {}, std::move(note),
                 pollable ? four_way_ratios() : unpollable_ratios};
  measure_ways(ctx, row, four_ways, [&](std::string_view way) { return Way(ctx, way); });
  return {row};
}

const registration registered[] = {
    registration{{50, "signal", 4,
                  [](context& ctx) {
                    return rows_of<signal_way>(ctx, "signal",
                                               "SIGUSR1 each way; raw: signalfd (blocking read / epoll), "
                                               "ipckit: signal::notifier wait / async_wait");
                  },
                  signal_child}},
    registration{{60, "eventfd", 4,
                  [](context& ctx) {
                    return rows_of<eventfd_way>(ctx, "eventfd",
                                                "an EFD_SEMAPHORE eventfd each way; ipckit: event_semaphore");
                  },
                  eventfd_child}},
    registration{{61, "named_semaphore", 4,
                  [](context& ctx) {
                    // The path the children's waits take too (they share the environment).
                    boost::asio::io_context probe;
                    const bool ring = boost::asio::use_service<detail::semaphore_ring_service>(probe).usable();
                    return rows_of<semaphore_way>(
                        ctx, "named_semaphore",
                        std::string("a POSIX named semaphore each way; ipckit's async_wait waits ") +
                            (ring ? "on the loop's io_uring (FUTEX_WAIT)"
                                  : "on its worker pool (no io_uring FUTEX_WAIT here, or IPCKIT_NO_IO_URING=1)"));
                  },
                  semaphore_child}},
    registration{{62, "flock", 4,
                  [](context& ctx) {
                    return rows_of<lock_way>(ctx, "flock",
                                             "flock hand-off through three lock files in rotation; "
                                             "ipckit's async_lock waits on its worker pool");
                  },
                  lock_child}},
};

}  // namespace
}  // namespace ipckit::cli::bench
