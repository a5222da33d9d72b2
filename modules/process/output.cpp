// output() and combined_output(): both pipes read at once, so a child that fills one
// while the parent waits on the other never deadlocks.
#include <ipckit/process.hpp>

#include <cerrno>
#include <fcntl.h>
#include <poll.h>
#include <unistd.h>

namespace ipckit {
namespace {

// Reads every fd to EOF, concurrently; a read error stops that fd.
void read_all(std::vector<std::pair<int, std::string*>> sources) {
  char buffer[65536];
  while (!sources.empty()) {
    std::vector<::pollfd> polls;
    for (auto& [fd, out] : sources) polls.push_back({fd, POLLIN, 0});
    if (::poll(polls.data(), polls.size(), -1) < 0) {
      if (errno == EINTR) continue;
      return;
    }
    for (std::size_t i = polls.size(); i-- > 0;) {
      if (polls[i].revents == 0) continue;
      const ssize_t n = ::read(sources[i].first, buffer, sizeof buffer);
      if (n > 0) {
        sources[i].second->append(buffer, static_cast<std::size_t>(n));
      } else if (n == 0 || (errno != EINTR && errno != EAGAIN)) {
        sources.erase(sources.begin() + static_cast<std::ptrdiff_t>(i));
      }
    }
  }
}

}  // namespace

std::string command::output(error_code& ec) {
  ec.clear();
  if (impl_->io[1].what() != stdio::kind::null) {
    ec = process::errc::stdout_set;
    return {};
  }
  pipe_reader out = stdout_pipe();
  std::optional<pipe_reader> err;
  if (impl_->io[2].what() == stdio::kind::null) err.emplace(stderr_pipe());
  start(ec);
  if (ec) return {};
  std::string out_text, err_text;
  std::vector<std::pair<int, std::string*>> sources{{out.native_handle(), &out_text}};
  if (err) sources.emplace_back(err->native_handle(), &err_text);
  read_all(std::move(sources));
  wait(ec);
  last_stderr_ = std::move(err_text);
  return out_text;
}

std::string command::output() {
  error_code ec;
  std::string text = output(ec);
  if (ec == process::errc::exit_status || ec == process::errc::signaled)
    throw exit_error(*impl_->state, std::move(last_stderr_));
  if (ec) throw_error(ec, impl_->start_error_context(ec));
  return text;
}

std::string command::combined_output(error_code& ec) {
  ec.clear();
  if (impl_->io[1].what() != stdio::kind::null) {
    ec = process::errc::stdout_set;
    return {};
  }
  if (impl_->io[2].what() != stdio::kind::null) {
    ec = process::errc::stderr_set;
    return {};
  }
  pipe_reader out = stdout_pipe();
  impl_->io[2] = impl_->io[1];  // the same pipe: one stream, in the order written
  start(ec);
  if (ec) return {};
  std::string text;
  read_all({{out.native_handle(), &text}});
  wait(ec);
  return text;
}

std::string command::combined_output() {
  error_code ec;
  std::string text = combined_output(ec);
  if (ec == process::errc::exit_status || ec == process::errc::signaled)
    throw exit_error(*impl_->state, "");
  if (ec) throw_error(ec, impl_->start_error_context(ec));
  return text;
}

}  // namespace ipckit
