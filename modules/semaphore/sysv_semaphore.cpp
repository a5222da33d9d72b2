#include <ipckit/semaphore.hpp>

#include <cerrno>
#include <ctime>
#include <sys/ipc.h>
#include <sys/sem.h>
#include <unistd.h>

namespace ipckit {
namespace {

union semun {
  int val;
  semid_ds* buf;
  unsigned short* array;
};

constexpr int sysv_value_max = 32767;  // SEMVMX

// Both the owner and the creator must be us: the creator may hand the owner field to
// anyone with IPC_SET and still control the set.
bool owned_by_us(int id, error_code& ec) {
  semid_ds status{};
  semun argument{};
  argument.buf = &status;
  if (::semctl(id, 0, IPC_STAT, argument) != 0) {
    ec = last_error();
    return false;
  }
  const uid_t us = ::geteuid();
  if (status.sem_perm.uid != us || status.sem_perm.cuid != us) {
    ec = semaphore_errc::not_owner;
    return false;
  }
  return true;
}

// One SEM_UNDO operation on the set's only semaphore; timeout null: none.
int operate(int id, short delta, short flags, const timespec* timeout) {
  sembuf operation{0, delta, static_cast<short>(flags | SEM_UNDO)};
  return ::semtimedop(id, &operation, 1, timeout);
}

}  // namespace

namespace detail {

bool sysv_semaphore_try_take(int id) noexcept {
  if (id < 0) return false;
  for (;;) {
    if (operate(id, -1, IPC_NOWAIT, nullptr) == 0) return true;
    if (errno != EINTR) return false;
  }
}

bool sysv_semaphore_take(int id, const interrupt_token* token, error_code& ec) {
  ec.clear();
  for (;;) {
    if (operate(id, -1, 0, nullptr) == 0) return true;
    if (errno != EINTR) {
      ec = last_error();
      return false;
    }
    if (token && token->cancelled()) {
      ec = boost::asio::error::operation_aborted;
      return false;
    }
  }
}

void sysv_semaphore_give(int id, error_code& ec) {
  ec.clear();
  while (operate(id, 1, 0, nullptr) != 0) {
    if (errno != EINTR) {
      ec = last_error();
      return;
    }
  }
}

}  // namespace detail

void sysv_semaphore::fail(const error_code& ec, std::string_view op, std::string_view syscall) const {
  const bool ours = ec.category() != boost::system::system_category();
  throw_error(ec, {std::string(op), "sysv", "", "id " + std::to_string(id_), ours ? "" : std::string(syscall)});
}

key_t sysv_semaphore::make_key(const std::filesystem::path& path, int project_id, error_code& ec) {
  ec.clear();
  const key_t key = ::ftok(path.c_str(), project_id);
  if (key == -1) ec = last_error();
  return key;
}

key_t sysv_semaphore::make_key(const std::filesystem::path& path, int project_id) {
  error_code ec;
  const key_t key = make_key(path, project_id, ec);
  if (ec) throw_error(ec, {"key", "sysv", "", path.string(), "ftok"});
  return key;
}

void sysv_semaphore::create(key_t key, unsigned value, const semaphore_options& options, error_code& ec) {
  ec.clear();
  if (value > sysv_value_max) {
    ec = semaphore_errc::value_too_large;
    return;
  }
  const int permissions = static_cast<int>(options.mode & 0777);
  int id = ::semget(key, 1, IPC_CREAT | IPC_EXCL | permissions);
  if (id >= 0) {
    // SETVAL, not an undoable semop: the creator's exit must not take the units away.
    semun argument{};
    argument.val = static_cast<int>(value);
    if (::semctl(id, 0, SETVAL, argument) != 0) {
      ec = last_error();
      ::semctl(id, 0, IPC_RMID);
      return;
    }
  } else if (errno == EEXIST && !options.exclusive) {
    id = ::semget(key, 1, 0);
    if (id >= 0 && !owned_by_us(id, ec)) return;
  }
  if (id < 0) {
    ec = last_error();
    return;
  }
  id_ = id;
}

void sysv_semaphore::create(key_t key, unsigned value, const semaphore_options& options) {
  error_code ec;
  create(key, value, options, ec);
  if (ec) throw_error(ec, {"create", "sysv", "", "key " + std::to_string(key),
                           ec.category() == boost::system::system_category() ? "semget" : ""});
}

void sysv_semaphore::open(key_t key, error_code& ec) { open(key, semaphore_options{}, ec); }

void sysv_semaphore::open(key_t key) { open(key, semaphore_options{}); }

void sysv_semaphore::open(key_t key, const semaphore_options& options, error_code& ec) {
  ec.clear();
  const int id = ::semget(key, 1, 0);
  if (id < 0) {
    ec = last_error();
    return;
  }
  if (options.require_owner && !owned_by_us(id, ec)) return;
  id_ = id;
}

void sysv_semaphore::open(key_t key, const semaphore_options& options) {
  error_code ec;
  open(key, options, ec);
  if (ec) throw_error(ec, {"open", "sysv", "", "key " + std::to_string(key),
                           ec.category() == boost::system::system_category() ? "semget" : ""});
}

void sysv_semaphore::attach(int id, error_code& ec) {
  ec.clear();
  semid_ds status{};
  semun argument{};
  argument.buf = &status;
  if (::semctl(id, 0, IPC_STAT, argument) != 0) {
    ec = last_error();
    return;
  }
  id_ = id;
}

void sysv_semaphore::attach(int id) {
  error_code ec;
  attach(id, ec);
  if (ec) throw_error(ec, {"attach", "sysv", "", "id " + std::to_string(id), "semctl"});
}

void sysv_semaphore::post(error_code& ec) { detail::sysv_semaphore_give(id_, ec); }

void sysv_semaphore::post() {
  error_code ec;
  post(ec);
  if (ec) fail(ec, "post", "semop");
}

void sysv_semaphore::wait(error_code& ec) { detail::sysv_semaphore_take(id_, nullptr, ec); }

void sysv_semaphore::wait() {
  error_code ec;
  wait(ec);
  if (ec) fail(ec, "wait", "semop");
}

bool sysv_semaphore::try_wait(error_code& ec) {
  ec.clear();
  for (;;) {
    if (operate(id_, -1, IPC_NOWAIT, nullptr) == 0) return true;
    if (errno == EINTR) continue;
    if (errno != EAGAIN) ec = last_error();
    return false;
  }
}

bool sysv_semaphore::try_wait() {
  error_code ec;
  const bool taken = try_wait(ec);
  if (ec) fail(ec, "wait", "semop");
  return taken;
}

bool sysv_semaphore::wait_for(std::chrono::nanoseconds timeout, error_code& ec) {
  ec.clear();
  using std::chrono::steady_clock;
  const auto deadline = steady_clock::now() + timeout;
  for (;;) {
    // semtimedop's timeout is relative; recompute it after an interruption.
    const auto left = std::max(deadline - steady_clock::now(), steady_clock::duration::zero());
    const auto seconds = std::chrono::duration_cast<std::chrono::seconds>(left);
    const timespec relative{static_cast<time_t>(seconds.count()),
                            static_cast<long>(std::chrono::nanoseconds(left - seconds).count())};
    if (operate(id_, -1, 0, &relative) == 0) return true;
    if (errno == EINTR) continue;
    if (errno != EAGAIN) ec = last_error();
    return false;
  }
}

bool sysv_semaphore::wait_for(std::chrono::nanoseconds timeout) {
  error_code ec;
  const bool taken = wait_for(timeout, ec);
  if (ec) fail(ec, "wait", "semtimedop");
  return taken;
}

int sysv_semaphore::value(error_code& ec) {
  ec.clear();
  const int current = ::semctl(id_, 0, GETVAL);
  if (current < 0) ec = last_error();
  return current < 0 ? 0 : current;
}

int sysv_semaphore::value() {
  error_code ec;
  const int current = value(ec);
  if (ec) fail(ec, "value", "semctl");
  return current;
}

void sysv_semaphore::remove(error_code& ec) {
  ec.clear();
  if (::semctl(id_, 0, IPC_RMID) != 0) ec = last_error();
  else id_ = -1;
}

void sysv_semaphore::remove() {
  error_code ec;
  remove(ec);
  if (ec) fail(ec, "remove", "semctl");
}

}  // namespace ipckit
