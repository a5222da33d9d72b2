// The ipckit command's plumbing: subcommands and tour rows register themselves from
// their own files, so a module adds its part of the command without editing a table.
#pragma once

#include <ipckit/error.hpp>

#include <chrono>
#include <functional>
#include <map>
#include <optional>
#include <ostream>
#include <span>
#include <stdexcept>
#include <string>
#include <string_view>
#include <vector>

namespace ipckit::cli {

/// Exit statuses: 0 success, 1 the operation failed, 2 the command line was wrong
/// (as Go's flag package).
inline constexpr int exit_ok = 0;
inline constexpr int exit_failure = 1;
inline constexpr int exit_usage = 2;

/// Thrown for a malformed command line; main prints it with the usage hint, exit 2.
struct usage_error : std::runtime_error {
  using std::runtime_error::runtime_error;
};

struct flag_spec {
  std::string_view name;      ///< without dashes: "timeout"
  bool takes_value = false;   ///< "--timeout 1s" / "--timeout=1s"
};

/// A parsed command line: flags anywhere before "--", positionals in order, and what
/// follows "--" kept apart (for `ipckit lock PATH -- CMD ARGS…`).
class arguments {
 public:
  static arguments parse(std::span<const std::string> args, std::span<const flag_spec> flags);

  bool has(std::string_view flag) const { return values_.contains(std::string(flag)); }
  std::optional<std::string> value(std::string_view flag) const;
  const std::vector<std::string>& positional() const { return positional_; }
  const std::vector<std::string>& after_dashes() const { return after_dashes_; }
  bool had_dashes() const { return had_dashes_; }

  /// Typed accessors that throw usage_error naming the flag on a bad value.
  std::optional<long long> integer(std::string_view flag) const;
  std::optional<std::chrono::nanoseconds> duration(std::string_view flag) const;

 private:
  std::map<std::string, std::string, std::less<>> values_;
  std::vector<std::string> positional_;
  std::vector<std::string> after_dashes_;
  bool had_dashes_ = false;
};

struct subcommand {
  std::string_view name;
  std::string_view summary;  ///< one line for `ipckit --help`
  std::string_view usage;    ///< the whole `ipckit NAME --help` text
  std::function<int(std::span<const std::string> args)> run;
};

/// Registers a subcommand at static-initialisation time; define one in the file that
/// implements it: `const ipckit::cli::registration reg{{"lock", …}};`
struct registration {
  explicit registration(subcommand command);
};

const subcommand* find_subcommand(std::string_view name);
std::vector<const subcommand*> all_subcommands();

/// Prints a failed operation's error on stderr exactly as Go would print it
/// ("dial tcp 127.0.0.1:1: connect: connection refused"); returns exit_failure.
int report(const std::exception& error);

}  // namespace ipckit::cli
