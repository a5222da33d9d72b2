#include "fault_util.hpp"

#include <chrono>
#include <fstream>
#include <sys/syscall.h>
#include <unistd.h>

namespace ipckit::test {
namespace {

std::atomic<std::size_t> handled_count{0};

void count_delivery(int) { handled_count.fetch_add(1, std::memory_order_relaxed); }

// The scheduler state of one thread of this process: 'R', 'S', 'D' …
char thread_state(pid_t tid) {
  std::ifstream stat("/proc/self/task/" + std::to_string(tid) + "/stat");
  std::string line;
  std::getline(stat, line);
  const auto close = line.rfind(')');
  return close == std::string::npos || close + 2 >= line.size() ? '?' : line[close + 2];
}

}  // namespace

no_restart_handler::no_restart_handler(int number) : number_(number) {
  struct sigaction action {};
  action.sa_handler = count_delivery;
  sigemptyset(&action.sa_mask);
  action.sa_flags = 0;  // no SA_RESTART: see the class comment
  ::sigaction(number_, &action, &previous_);
  sigset_t just;
  sigemptyset(&just);
  sigaddset(&just, number_);
  ::pthread_sigmask(SIG_UNBLOCK, &just, &previous_mask_);
}

no_restart_handler::~no_restart_handler() {
  ::pthread_sigmask(SIG_SETMASK, &previous_mask_, nullptr);
  ::sigaction(number_, &previous_, nullptr);
}

std::size_t no_restart_handler::handled() { return handled_count.load(); }

signal_storm::signal_storm(const no_restart_handler& handler, std::size_t then_after,
                           std::function<void()> then)
    : signal_(handler.number()),
      target_(::pthread_self()),
      target_tid_(static_cast<pid_t>(::syscall(SYS_gettid))),
      then_after_(then_after),
      then_(std::move(then)) {
  // The storm thread must not take the signal itself.
  sigset_t all, previous;
  sigfillset(&all);
  ::pthread_sigmask(SIG_SETMASK, &all, &previous);
  thread_ = std::thread([this] { run(); });
  ::pthread_sigmask(SIG_SETMASK, &previous, nullptr);
}

signal_storm::~signal_storm() {
  stop_ = true;
  thread_.join();
}

void signal_storm::run() {
  using clock = std::chrono::steady_clock;
  while (!stop_) {
    const char state = thread_state(target_tid_);
    const std::size_t before = no_restart_handler::handled();
    if (::pthread_kill(target_, signal_) != 0) return;
    // One signal at a time: wait (briefly) until it was handled, so that each one counts.
    const auto deadline = clock::now() + std::chrono::milliseconds(50);
    while (no_restart_handler::handled() == before && clock::now() < deadline && !stop_)
      std::this_thread::yield();
    if (no_restart_handler::handled() == before) continue;
    if (state == 'S' || state == 'D') ++interruptions_;
    if (!fired_ && interruptions_ >= then_after_) {
      fired_ = true;
      if (then_) then_();
    }
  }
}

script_peer::script_peer(int fd3) : peer_({helper_path(), "script"}, fd3) {}

void script_peer::start(const std::string& command) { peer_.write(command + "\n"); }

std::string script_peer::answer(std::chrono::milliseconds timeout) {
  const auto line = peer_.read_line(timeout);
  if (!line) {
    ADD_FAILURE() << "the script peer did not answer";
    return "";
  }
  if (line->rfind("ok", 0) != 0) {
    ADD_FAILURE() << "the script peer answered: " << *line;
    return "";
  }
  return line->size() > 3 ? line->substr(3) : "";
}

std::string script_peer::run(const std::string& command) {
  start(command);
  return answer();
}

char pattern_byte(std::size_t i) { return static_cast<char>('a' + (i * 7 + i / 251) % 26); }

std::string pattern(std::size_t size) {
  std::string data(size, '\0');
  for (std::size_t i = 0; i < size; ++i) data[i] = pattern_byte(i);
  return data;
}

}  // namespace ipckit::test
