// The process module's error category, exit_error and process_state's Go texts.
#include <ipckit/process.hpp>

#include <cctype>
#include <cstring>
#include <sys/wait.h>

namespace ipckit {
namespace process {
namespace {

class process_category : public boost::system::error_category {
 public:
  const char* name() const noexcept override { return "ipckit.process"; }
  std::string message(int value) const override {
    switch (static_cast<errc>(value)) {
      case errc::not_found: return "executable file not found in $PATH";
      case errc::dot: return "cannot run executable found relative to current directory";
      case errc::already_started: return "already started";
      case errc::not_started: return "not started";
      case errc::already_waited: return "Wait was already called";
      case errc::env_nul: return "environment variable contains NUL";
      case errc::stdout_set: return "Stdout already set";
      case errc::stderr_set: return "Stderr already set";
      case errc::exit_status: return "exit status non-zero";
      case errc::signaled: return "terminated by a signal";
    }
    return "unknown ipckit.process error " + std::to_string(value);
  }
};

}  // namespace

const boost::system::error_category& category() noexcept {
  static const process_category instance;
  return instance;
}

error_code make_error_code(errc e) noexcept { return {static_cast<int>(e), category()}; }

}  // namespace process

namespace detail {

bool process_state::exited() const noexcept { return code_ == CLD_EXITED; }
int process_state::exit_code() const noexcept { return exited() ? status_ : -1; }
int process_state::signal() const noexcept { return exited() ? 0 : status_; }
bool process_state::core_dumped() const noexcept { return code_ == CLD_DUMPED; }

std::string process_state::string() const {
  if (pid_ < 0) return "<nil>";
  if (exited()) return "exit status " + std::to_string(status_);
  // Go's signal names are strsignal's with a lower-case first letter.
  const char* name = ::strsignal(status_);
  std::string text = name ? name : "signal " + std::to_string(status_);
  if (text.size() > 1 && std::isupper(static_cast<unsigned char>(text[0])) &&
      std::islower(static_cast<unsigned char>(text[1])))
    text[0] = static_cast<char>(std::tolower(static_cast<unsigned char>(text[0])));
  text = "signal: " + text;
  if (core_dumped()) text += " (core dumped)";
  return text;
}

}  // namespace detail

exit_error::exit_error(process_state state, std::string stderr_output)
    : system_error(state.exited() ? process::errc::exit_status : process::errc::signaled),
      state_(state),
      stderr_(std::move(stderr_output)),
      message_(state_.string()) {}

}  // namespace ipckit
