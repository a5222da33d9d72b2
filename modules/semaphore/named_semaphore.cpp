#include <ipckit/semaphore.hpp>

#include <cerrno>
#include <climits>
#include <ctime>
#include <fcntl.h>
#include <sys/stat.h>

namespace ipckit {
namespace detail {

named_semaphore_state::~named_semaphore_state() {
  if (sem) ::sem_close(sem);
}

bool named_semaphore_take(const named_semaphore_state& state, const interrupt_token* token, error_code& ec) {
  ec.clear();
  for (;;) {
    if (::sem_wait(state.sem) == 0) return true;
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

bool named_semaphore_try_take(const named_semaphore_state* state) noexcept {
  if (!state || !state->sem) return false;
  for (;;) {
    if (::sem_trywait(state->sem) == 0) return true;
    if (errno != EINTR) return false;
  }
}

void named_semaphore_give(const named_semaphore_state& state, error_code& ec) {
  ec.clear();
  if (::sem_post(state.sem) != 0) ec = last_error();
}

}  // namespace detail

namespace {

// glibc keeps "/name" as /dev/shm/sem.name, so four characters go to the prefix.
bool valid_semaphore_name(std::string_view name) {
  return name.size() >= 2 && name.size() <= NAME_MAX - 4 + 1 && name[0] == '/' &&
         name.find('/', 1) == std::string_view::npos && name.find('\0') == std::string_view::npos;
}

const std::string& empty_name() {
  static const std::string empty;
  return empty;
}

// Where glibc keeps the semaphore "/name".
std::string semaphore_file(const std::string& name) { return "/dev/shm/sem." + name.substr(1); }

// The semaphore's file, if it is a plain file of ours; `found` is false if it is missing.
bool file_is_ours(const std::string& name, struct stat& st, bool& found) {
  found = ::lstat(semaphore_file(name).c_str(), &st) == 0;
  return found && S_ISREG(st.st_mode) && st.st_uid == ::geteuid();
}

// sem_open(name, 0), refusing a semaphore that is not ours. sem_t has no descriptor to
// fstat, so the file is checked before and after sem_open and must be the same inode
// both times: /dev/shm is sticky, so no other user can swap out a file of ours between.
sem_t* open_owned(const std::string& name, error_code& ec) {
  struct stat before {}, after {};
  bool found = false;
  if (!file_is_ours(name, before, found) && found) {
    ec = semaphore_errc::not_owner;
    return SEM_FAILED;
  }
  sem_t* sem = ::sem_open(name.c_str(), 0);
  if (sem == SEM_FAILED) {
    ec = last_error();
    return SEM_FAILED;
  }
  const bool same = found && file_is_ours(name, after, found) && after.st_dev == before.st_dev &&
                    after.st_ino == before.st_ino;
  if (!same) {
    ::sem_close(sem);
    ec = semaphore_errc::not_owner;
    return SEM_FAILED;
  }
  return sem;
}

}  // namespace

const std::string& named_semaphore::name() const noexcept { return state_ ? state_->name : empty_name(); }

void named_semaphore::fail(const error_code& ec, std::string_view op, std::string_view syscall) const {
  const bool ours = ec.category() != boost::system::system_category();
  throw_error(ec, {std::string(op), "", "", name(), ours ? "" : std::string(syscall)});
}

void named_semaphore::create(std::string_view name, unsigned value, const semaphore_options& options,
                             error_code& ec) {
  ec.clear();
  if (!valid_semaphore_name(name)) {
    ec = semaphore_errc::invalid_name;
    return;
  }
  if (value > SEM_VALUE_MAX) {
    ec = semaphore_errc::value_too_large;
    return;
  }
  auto state = std::make_shared<detail::named_semaphore_state>();
  state->name = name;
  state->sem = ::sem_open(state->name.c_str(), O_CREAT | O_EXCL, options.mode, value);
  if (state->sem != SEM_FAILED) {
    // sem_open applies the umask; give the semaphore exactly the mode asked for.
    ::chmod(semaphore_file(state->name).c_str(), options.mode);
  } else if (errno == EEXIST && !options.exclusive) {
    // Someone else's semaphore under our name is an attack, not a semaphore to use.
    state->sem = open_owned(state->name, ec);
    if (ec) {
      state->sem = nullptr;
      return;
    }
  }
  if (state->sem == SEM_FAILED) {
    state->sem = nullptr;
    ec = last_error();
    return;
  }
  state_ = std::move(state);
}

void named_semaphore::create(std::string_view name, unsigned value, const semaphore_options& options) {
  error_code ec;
  create(name, value, options, ec);
  if (ec) throw_error(ec, {"create", "", "", std::string(name),
                           ec.category() == boost::system::system_category() ? "sem_open" : ""});
}

void named_semaphore::open(std::string_view name, error_code& ec) { open(name, semaphore_options{}, ec); }

void named_semaphore::open(std::string_view name) { open(name, semaphore_options{}); }

void named_semaphore::open(std::string_view name, const semaphore_options& options, error_code& ec) {
  ec.clear();
  if (!valid_semaphore_name(name)) {
    ec = semaphore_errc::invalid_name;
    return;
  }
  auto state = std::make_shared<detail::named_semaphore_state>();
  state->name = name;
  if (options.require_owner) {
    state->sem = open_owned(state->name, ec);
  } else {
    state->sem = ::sem_open(state->name.c_str(), 0);
    if (state->sem == SEM_FAILED) ec = last_error();
  }
  if (ec) {
    state->sem = nullptr;
    return;
  }
  state_ = std::move(state);
}

void named_semaphore::open(std::string_view name, const semaphore_options& options) {
  error_code ec;
  open(name, options, ec);
  if (ec) throw_error(ec, {"open", "", "", std::string(name),
                           ec.category() == boost::system::system_category() ? "sem_open" : ""});
}

void named_semaphore::post(error_code& ec) {
  if (!state_) {
    ec = errc::closed;
    return;
  }
  detail::named_semaphore_give(*state_, ec);
}

void named_semaphore::post() {
  error_code ec;
  post(ec);
  if (ec) fail(ec, "post", "sem_post");
}

void named_semaphore::wait(error_code& ec) {
  if (!state_) {
    ec = errc::closed;
    return;
  }
  detail::named_semaphore_take(*state_, nullptr, ec);
}

void named_semaphore::wait() {
  error_code ec;
  wait(ec);
  if (ec) fail(ec, "wait", "sem_wait");
}

bool named_semaphore::try_wait(error_code& ec) {
  ec.clear();
  if (!state_) {
    ec = errc::closed;
    return false;
  }
  for (;;) {
    if (::sem_trywait(state_->sem) == 0) return true;
    if (errno == EINTR) continue;
    if (errno != EAGAIN) ec = last_error();
    return false;
  }
}

bool named_semaphore::try_wait() {
  error_code ec;
  const bool taken = try_wait(ec);
  if (ec) fail(ec, "wait", "sem_trywait");
  return taken;
}

bool named_semaphore::wait_for(std::chrono::nanoseconds timeout, error_code& ec) {
  ec.clear();
  if (!state_) {
    ec = errc::closed;
    return false;
  }
  timespec deadline{};
  ::clock_gettime(CLOCK_MONOTONIC, &deadline);
  const auto total = std::chrono::nanoseconds(deadline.tv_nsec) + std::max(timeout, std::chrono::nanoseconds::zero());
  deadline.tv_sec += static_cast<time_t>(std::chrono::duration_cast<std::chrono::seconds>(total).count());
  deadline.tv_nsec = static_cast<long>((total % std::chrono::seconds(1)).count());
  for (;;) {
    if (::sem_clockwait(state_->sem, CLOCK_MONOTONIC, &deadline) == 0) return true;
    if (errno == EINTR) continue;
    if (errno != ETIMEDOUT) ec = last_error();
    return false;
  }
}

bool named_semaphore::wait_for(std::chrono::nanoseconds timeout) {
  error_code ec;
  const bool taken = wait_for(timeout, ec);
  if (ec) fail(ec, "wait", "sem_clockwait");
  return taken;
}

int named_semaphore::value(error_code& ec) {
  ec.clear();
  if (!state_) {
    ec = errc::closed;
    return 0;
  }
  int current = 0;
  if (::sem_getvalue(state_->sem, &current) != 0) ec = last_error();
  return current;
}

int named_semaphore::value() {
  error_code ec;
  const int current = value(ec);
  if (ec) fail(ec, "value", "sem_getvalue");
  return current;
}

void named_semaphore::unlink(std::string_view name, error_code& ec) {
  ec.clear();
  if (!valid_semaphore_name(name)) {
    ec = semaphore_errc::invalid_name;
    return;
  }
  if (::sem_unlink(std::string(name).c_str()) != 0) ec = last_error();
}

void named_semaphore::unlink(std::string_view name) {
  error_code ec;
  unlink(name, ec);
  if (ec) throw_error(ec, {"unlink", "", "", std::string(name),
                           ec.category() == boost::system::system_category() ? "sem_unlink" : ""});
}

}  // namespace ipckit
