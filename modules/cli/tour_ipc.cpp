// Tour rows of issue 6: file lock, message queue, and the three semaphores, each run
// between the tour and a child of itself (`ipckit tour --child METHOD ARGS…`).
#include "tour.hpp"

#include <ipckit/file_lock.hpp>
#include <ipckit/message_queue.hpp>
#include <ipckit/semaphore.hpp>

#include <boost/asio/io_context.hpp>

#include <cerrno>
#include <fcntl.h>
#include <poll.h>
#include <sys/ipc.h>
#include <unistd.h>

namespace ipckit::cli {
namespace {

using clock = std::chrono::steady_clock;
constexpr int rounds = 100;
constexpr auto child_deadline = std::chrono::seconds(10);

struct pipe_pair {
  unique_fd read, write;
};

pipe_pair make_pipe() {
  int fds[2];
  if (::pipe2(fds, O_CLOEXEC) != 0) throw std::system_error(errno, std::generic_category(), "pipe2");
  return {unique_fd(fds[0]), unique_fd(fds[1])};
}

bool put(int fd) {
  const char byte = 'x';
  return ::write(fd, &byte, 1) == 1;
}

bool get(int fd) {
  char byte;
  ssize_t n;
  do n = ::read(fd, &byte, 1);
  while (n < 0 && errno == EINTR);
  return n == 1;
}

// get() for the tour's side: a child that hangs fails the row after child_deadline.
bool get_within_deadline(int fd) {
  pollfd ready{fd, POLLIN, 0};
  int polled;
  do polled = ::poll(&ready, 1, static_cast<int>(std::chrono::milliseconds(child_deadline).count()));
  while (polled < 0 && errno == EINTR);
  return polled == 1 && get(fd);
}

tour_result finish(tour_child& child, std::vector<std::chrono::nanoseconds>& times, std::string detail) {
  const auto status = child.wait(child_deadline);
  const bool ok = status == 0 && times.size() == rounds;
  if (!ok) detail = "child exit " + (status ? std::to_string(*status) : std::string("timeout")) + ", " +
                    std::to_string(times.size()) + " of " + std::to_string(rounds) + " round trips";
  return {ok, std::nullopt, median_us(times), detail};
}

// The lock passes from the tour to the child and back: the tour releases, the child's
// blocked flock returns and it says so on a pipe; the median is that hand-off.
tour_result file_lock_row(tour_context& context) {
  const auto path = context.temp_dir() / "tour.lock";
  file_lock lock(context.loop(), path);
  lock.lock();
  auto got_it = make_pipe();
  auto your_turn = make_pipe();
  auto child = context.start_child("file lock", {path.string()},
                                   {{got_it.write.get(), 3}, {your_turn.read.get(), 4}});
  got_it.write.reset();
  your_turn.read.reset();
  std::vector<std::chrono::nanoseconds> times;
  for (int i = 0; i < rounds; ++i) {
    const auto start = clock::now();
    lock.unlock();
    if (!get_within_deadline(got_it.read.get())) break;
    times.push_back(clock::now() - start);
    if (!lock.try_lock_for(child_deadline)) break;  // the child lets go at once
    if (!put(your_turn.write.get())) break;
  }
  your_turn.write.reset();
  return finish(child, times, "flock hand-off to the child and back; a dead holder's lock is released by the kernel");
}

int file_lock_child(std::span<const std::string> args) {
  if (args.size() != 1) return 2;
  boost::asio::io_context io;
  file_lock lock(io.get_executor(), args[0]);
  for (int i = 0; i < rounds; ++i) {
    lock.lock();
    if (!put(3)) return 1;
    lock.unlock();
    if (!get(4)) return 1;
  }
  return 0;
}

tour_result message_queue_row(tour_context& context) {
  const std::string ping = context.unique_name("mq-ping"), pong = context.unique_name("mq-pong");
  message_queue_options options;
  options.exclusive = true;
  options.attributes = {10, 64, 0};
  message_queue out(context.loop()), in(context.loop());
  // Before the creates: when the second one fails, the first queue is removed too.
  struct unlinker {
    std::string a, b;
    ~unlinker() {
      error_code ignored;
      message_queue::unlink(a, ignored);
      message_queue::unlink(b, ignored);
    }
  } cleanup{ping, pong};
  out.create(ping, options);
  in.create(pong, options);
  auto child = context.start_child("message queue", {ping, pong});
  std::vector<std::chrono::nanoseconds> times;
  char buffer[64];
  std::string payload(64, 'm');
  for (int i = 0; i < rounds; ++i) {
    const auto start = clock::now();
    out.send(boost::asio::buffer(payload), 1);
    bool done = false;
    error_code ec;
    in.async_receive(boost::asio::buffer(buffer), [&](error_code e, received_message) { ec = e, done = true; });
    context.loop().restart();
    while (!done && context.loop().context().run_one_for(child_deadline) > 0) {
    }
    if (!done || ec) break;
    times.push_back(clock::now() - start);
  }
  return finish(child, times, "64-byte messages, 0600 queues; the tour receives with async_receive on the loop");
}

int message_queue_child(std::span<const std::string> args) {
  if (args.size() != 2) return 2;
  boost::asio::io_context io;
  message_queue in(io.get_executor()), out(io.get_executor());
  in.open(args[0]);
  out.open(args[1]);
  for (int i = 0; i < rounds; ++i) {
    auto got = in.receive();
    out.send(boost::asio::buffer(got.data), got.priority);
  }
  return 0;
}

tour_result named_semaphore_row(tour_context& context) {
  const std::string ping = context.unique_name("sem-ping"), pong = context.unique_name("sem-pong");
  named_semaphore post(context.loop()), wait(context.loop());
  // Before the creates: when the second one fails, the first semaphore is removed too.
  struct unlinker {
    std::string a, b;
    ~unlinker() {
      error_code ignored;
      named_semaphore::unlink(a, ignored);
      named_semaphore::unlink(b, ignored);
    }
  } cleanup{ping, pong};
  post.create(ping, 0, {0600, true});
  wait.create(pong, 0, {0600, true});
  auto child = context.start_child("named semaphore", {ping, pong});
  std::vector<std::chrono::nanoseconds> times;
  for (int i = 0; i < rounds; ++i) {
    const auto start = clock::now();
    post.post();
    if (!wait.wait_for(child_deadline)) break;
    times.push_back(clock::now() - start);
  }
  return finish(child, times, "sem_post / sem_wait ping-pong; a killed holder's unit is lost (see docs)");
}

int named_semaphore_child(std::span<const std::string> args) {
  if (args.size() != 2) return 2;
  boost::asio::io_context io;
  named_semaphore in(io.get_executor()), out(io.get_executor());
  in.open(args[0]);
  out.open(args[1]);
  for (int i = 0; i < rounds; ++i) {
    if (!in.wait_for(child_deadline)) return 1;
    out.post();
  }
  return 0;
}

tour_result sysv_semaphore_row(tour_context& context) {
  sysv_semaphore ping(context.loop()), pong(context.loop()), held(context.loop());
  ping.create(IPC_PRIVATE, 0);
  struct remover {
    sysv_semaphore& a;
    sysv_semaphore& b;
    sysv_semaphore& c;
    ~remover() {
      error_code ignored;
      for (auto* s : {&a, &b, &c})
        if (s->is_open()) s->remove(ignored);
    }
  } cleanup{ping, pong, held};
  pong.create(IPC_PRIVATE, 0);
  held.create(IPC_PRIVATE, 1);
  auto child = context.start_child("sysv semaphore",
                                   {std::to_string(ping.id()), std::to_string(pong.id()), std::to_string(held.id())});
  std::vector<std::chrono::nanoseconds> times;
  for (int i = 0; i < rounds; ++i) {
    const auto start = clock::now();
    ping.post();
    if (!pong.wait_for(child_deadline)) break;
    times.push_back(clock::now() - start);
  }
  // The child's posts carry undo too: were it to exit now, the kernel would take its
  // last post back before we read it. It exits only after this final ping.
  ping.post();
  auto result = finish(child, times, "");
  // The child took the `held` unit and exited without posting it: SEM_UNDO gave it back.
  const int left = held.value();
  result.ok = result.ok && left == 1;
  if (result.detail.empty())
    result.detail = "semop ping-pong with SEM_UNDO; the child exited holding a unit and the kernel gave it back (value " +
                    std::to_string(left) + ")";
  return result;
}

int sysv_semaphore_child(std::span<const std::string> args) {
  if (args.size() != 3) return 2;
  boost::asio::io_context io;
  sysv_semaphore in(io.get_executor()), out(io.get_executor()), held(io.get_executor());
  in.attach(std::stoi(args[0]));
  out.attach(std::stoi(args[1]));
  held.attach(std::stoi(args[2]));
  if (!held.try_wait()) return 1;  // and never posted back
  for (int i = 0; i < rounds; ++i) {
    if (!in.wait_for(child_deadline)) return 1;
    // SEM_UNDO counts this wait as ours: at exit the kernel adds it back to `in`.
    // That is the documented cost of undo for a pure consumer; the tour removes the set.
    out.post();
  }
  return in.wait_for(child_deadline) ? 0 : 1;
}

tour_result event_semaphore_row(tour_context& context) {
  event_semaphore ping(context.loop(), 0), pong(context.loop(), 0);
  auto child = context.start_child("event semaphore", {}, {{ping.native_handle(), 3}, {pong.native_handle(), 4}});
  std::vector<std::chrono::nanoseconds> times;
  for (int i = 0; i < rounds; ++i) {
    const auto start = clock::now();
    ping.post();
    bool done = false;
    error_code ec;
    pong.async_wait([&](error_code e) { ec = e, done = true; });
    context.loop().restart();
    while (!done && context.loop().context().run_one_for(child_deadline) > 0) {
    }
    if (!done || ec) break;
    times.push_back(clock::now() - start);
  }
  return finish(child, times, "eventfd (EFD_SEMAPHORE) inherited by the child; the tour waits with async_wait on the loop");
}

int event_semaphore_child(std::span<const std::string>) {
  boost::asio::io_context io;
  event_semaphore in(io.get_executor()), out(io.get_executor());
  in.assign(unique_fd(3));
  out.assign(unique_fd(4));
  for (int i = 0; i < rounds; ++i) {
    if (!in.wait_for(child_deadline)) return 1;
    out.post();
  }
  return 0;
}

const tour_registration rows[] = {
    tour_registration{{400, "file lock", file_lock_row, file_lock_child}},
    tour_registration{{410, "message queue", message_queue_row, message_queue_child}},
    tour_registration{{420, "named semaphore", named_semaphore_row, named_semaphore_child}},
    tour_registration{{421, "sysv semaphore", sysv_semaphore_row, sysv_semaphore_child}},
    tour_registration{{422, "event semaphore", event_semaphore_row, event_semaphore_child}},
};

}  // namespace
}  // namespace ipckit::cli
