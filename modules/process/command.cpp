// ipckit::command: configuration, the throwing forms, run().
#include <ipckit/process.hpp>

#include <fcntl.h>
#include <unistd.h>

extern char** environ;

namespace ipckit {

namespace detail {

stdio stdio::file(std::filesystem::path path, bool append) {
  stdio s(kind::file);
  s.path_ = std::move(path);
  s.append_ = append;
  return s;
}

stdio stdio::fd(int fd) { return stdio::fd(duplicate(fd)); }

stdio stdio::fd(unique_fd fd) {
  stdio s(kind::fd);
  s.fd_ = std::make_shared<unique_fd>(std::move(fd));
  return s;
}

std::vector<std::string> command_impl::environ() const {
  std::vector<std::string> result;
  if (env) {
    result = *env;
  } else {
    for (char** entry = ::environ; entry && *entry; ++entry) result.emplace_back(*entry);
  }
  if (scrub_env) result = ipckit::scrub_env(std::move(result));
  auto name_of = [](const std::string& entry) { return entry.substr(0, entry.find('=')); };
  for (const auto& [name, value] : env_edits) {
    std::erase_if(result, [&](const std::string& entry) { return name_of(entry) == name; });
    if (value) result.push_back(name + "=" + *value);
  }
  // Go's dedupEnv: the last of duplicate names wins.
  std::vector<std::string> deduplicated;
  for (auto it = result.rbegin(); it != result.rend(); ++it) {
    const std::string name = name_of(*it);
    bool seen = false;
    for (const auto& kept : deduplicated) seen = seen || name_of(kept) == name;
    if (!seen) deduplicated.push_back(*it);
  }
  return {deduplicated.rbegin(), deduplicated.rend()};
}

}  // namespace detail

command::command(const boost::asio::any_io_executor& ex, std::string program,
                 std::vector<std::string> args)
    : impl_(std::make_shared<detail::command_impl>(ex)) {
  impl_->argv.push_back(program);
  impl_->argv.insert(impl_->argv.end(), args.begin(), args.end());
  if (program.find('/') == std::string::npos) {
    impl_->path = look_path(program, impl_->lookup_error);
    if (impl_->lookup_error) impl_->path = program;
  } else {
    impl_->path = std::move(program);
  }
}

command::~command() {
  if (impl_) impl_->kill_and_reap();
}

void command::set_env(std::vector<std::string> env) {
  impl_->env = std::move(env);
  impl_->env_edits.clear();
}

void command::setenv(std::string name, std::string value) {
  impl_->env_edits.emplace_back(std::move(name), std::move(value));
}

void command::unsetenv(std::string name) { impl_->env_edits.emplace_back(std::move(name), std::nullopt); }

std::vector<std::string> command::environ() const { return impl_->environ(); }

namespace {

// A pipe for a child's stdio: kernel-sized (many children at once must not each pin a
// large buffer), both ends close-on-exec; the child's end is handed to its stdio.
std::pair<unique_fd, unique_fd> stdio_pipe() {
  int fds[2];
  if (::pipe2(fds, O_CLOEXEC) != 0) throw_error(last_error(), {"pipe", "", "", "", "pipe2"});
  return {unique_fd(fds[0]), unique_fd(fds[1])};
}

}  // namespace

pipe_writer command::stdin_pipe() {
  auto [read_end, write_end] = stdio_pipe();
  impl_->io[0] = stdio::fd(std::move(read_end));
  return pipe_writer(impl_->ex, std::move(write_end));
}

pipe_reader command::stdout_pipe() {
  auto [read_end, write_end] = stdio_pipe();
  impl_->io[1] = stdio::fd(std::move(write_end));
  return pipe_reader(impl_->ex, std::move(read_end));
}

pipe_reader command::stderr_pipe() {
  auto [read_end, write_end] = stdio_pipe();
  impl_->io[2] = stdio::fd(std::move(write_end));
  return pipe_reader(impl_->ex, std::move(read_end));
}

void command::add_fd(int parent_fd, int child_fd, error_code& ec) {
  ec.clear();
  if (child_fd < 3) {
    ec = ipckit::errc::invalid_argument;
    return;
  }
  for (const auto& [fd, target] : impl_->extra)
    if (target == child_fd) {
      ec = ipckit::errc::invalid_argument;
      return;
    }
  unique_fd copy = duplicate(parent_fd, ec);
  if (ec) return;
  impl_->extra.emplace_back(std::make_shared<unique_fd>(std::move(copy)), child_fd);
}

void command::add_fd(int parent_fd, int child_fd) {
  error_code ec;
  add_fd(parent_fd, child_fd, ec);
  if (ec) throw_error(ec, {"exec", "", "", "fd " + std::to_string(child_fd), "add_fd"});
}

void command::start(error_code& ec) { impl_->start(ec); }

void command::start() {
  error_code ec;
  start(ec);
  if (ec) throw_error(ec, impl_->start_error_context(ec));
}

process_state command::wait(error_code& ec) { return impl_->wait(ec); }

process_state command::wait() {
  error_code ec;
  process_state state = wait(ec);
  if (ec == process::errc::exit_status || ec == process::errc::signaled) throw exit_error(state, "");
  if (ec) throw_error(ec, {"exec", "", "", "", ""});
  return state;
}

void command::run(error_code& ec) {
  start(ec);
  if (!ec) wait(ec);
}

void command::run() {
  start();
  wait();
}

void command::signal(int signal, error_code& ec) { impl_->send(signal, ec); }

void command::signal(int signal) {
  error_code ec;
  impl_->send(signal, ec);
  if (ec) throw_error(ec, {"signal", "", "", "pid " + std::to_string(impl_->pid), "pidfd_send_signal"});
}

void command::cancel() { impl_->cancel(); }

}  // namespace ipckit
