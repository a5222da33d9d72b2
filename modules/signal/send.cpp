// Sending signals (kill, sigqueue), the disposition query, and the fork-child reset.
#include <ipckit/signal.hpp>

#include <cerrno>
#include <csignal>
#include <unistd.h>

namespace ipckit::signal {
namespace {

bool valid_number(int number) { return number >= 0 && number < NSIG; }

void throw_send(const error_code& ec, std::string_view kind, pid_t pid, int number,
                std::string_view syscall) {
  throw_error(ec, {"send", "", "", name(number) + " to " + std::string(kind) + " " + std::to_string(pid),
                   std::string(syscall)});
}

}  // namespace

void send(pid_t pid, int number, error_code& ec) {
  ec = {};
  if (!valid_number(number)) ec = errc::unknown_signal;
  else if (pid <= 0) ec = errc::invalid_pid;
  else if (::kill(pid, number) != 0) ec = last_error();
}

void send(pid_t pid, int number) {
  error_code ec;
  send(pid, number, ec);
  if (ec) throw_send(ec, "pid", pid, number, ec.category() == category() ? "" : "kill");
}

void send_group(pid_t pgid, int number, error_code& ec) {
  ec = {};
  if (!valid_number(number)) ec = errc::unknown_signal;
  else if (pgid < 0) ec = errc::invalid_pid;
  else if (::kill(-pgid, number) != 0) ec = last_error();
}

void send_group(pid_t pgid, int number) {
  error_code ec;
  send_group(pgid, number, ec);
  if (ec) throw_send(ec, "process group", pgid, number, ec.category() == category() ? "" : "kill");
}

void queue(pid_t pid, int number, int value, error_code& ec) {
  ec = {};
  if (!valid_number(number)) {
    ec = errc::unknown_signal;
    return;
  }
  if (pid <= 0) {
    ec = errc::invalid_pid;
    return;
  }
  sigval payload{};
  payload.sival_int = value;
  if (::sigqueue(pid, number, payload) != 0) ec = last_error();
}

void queue(pid_t pid, int number, int value) {
  error_code ec;
  queue(pid, number, value, ec);
  if (ec) throw_send(ec, "pid", pid, number, ec.category() == category() ? "" : "sigqueue");
}

bool ignored(int number) {
  struct sigaction current {};
  if (number <= 0 || number >= NSIG || ::sigaction(number, nullptr, &current) != 0) return false;
  return !(current.sa_flags & SA_SIGINFO) && current.sa_handler == SIG_IGN;
}

void restore_child_defaults() noexcept {
  struct sigaction defaults {};
  defaults.sa_handler = SIG_DFL;
  sigemptyset(&defaults.sa_mask);
  for (int number = 1; number < NSIG; ++number) {
    if (number == SIGKILL || number == SIGSTOP) continue;
    ::sigaction(number, &defaults, nullptr);  // EINVAL for glibc's internal ones: fine
  }
  sigset_t empty;
  sigemptyset(&empty);
  ::sigprocmask(SIG_SETMASK, &empty, nullptr);
}

}  // namespace ipckit::signal
