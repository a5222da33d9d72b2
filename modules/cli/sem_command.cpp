// `ipckit sem create|post|wait|info|unlink`: POSIX named semaphores from the shell.
#include "command.hpp"

#include <ipckit/duration.hpp>
#include <ipckit/semaphore.hpp>

#include <boost/asio/io_context.hpp>
#include <nlohmann/json.hpp>

#include <iostream>

namespace ipckit::cli {
namespace {

const std::string& only_name(const arguments& parsed) {
  if (parsed.positional().size() != 1) throw usage_error("want NAME");
  return parsed.positional()[0];
}

int run(std::span<const std::string> args) {
  if (args.empty()) throw usage_error("want a subcommand: create, post, wait, info or unlink");
  const std::string& verb = args[0];
  const auto rest = args.subspan(1);
  boost::asio::io_context io;
  named_semaphore semaphore(io.get_executor());
  if (verb == "create") {
    static constexpr flag_spec flags[] = {{"value", true}};
    const auto parsed = arguments::parse(rest, flags);
    const long long value = parsed.integer("value").value_or(0);
    if (value < 0 || value > SEM_VALUE_MAX)
      throw usage_error("invalid value for flag -value: want 0 to " + std::to_string(SEM_VALUE_MAX));
    semaphore.create(only_name(parsed), static_cast<unsigned>(value), {0600, true});
    return exit_ok;
  }
  if (verb == "post") {
    semaphore.open(only_name(arguments::parse(rest, {})));
    semaphore.post();
    return exit_ok;
  }
  if (verb == "wait") {
    static constexpr flag_spec flags[] = {{"timeout", true}};
    const auto parsed = arguments::parse(rest, flags);
    const auto& name = only_name(parsed);
    const auto timeout = parsed.duration("timeout");
    semaphore.open(name);
    if (!timeout) {
      semaphore.wait();
    } else if (!semaphore.wait_for(*timeout)) {
      std::cerr << "ipckit sem wait: timed out after " << format_duration(*timeout) << " waiting for " << name << '\n';
      return exit_failure;
    }
    return exit_ok;
  }
  if (verb == "info") {
    static constexpr flag_spec flags[] = {{"json", false}};
    const auto parsed = arguments::parse(rest, flags);
    const auto& name = only_name(parsed);
    semaphore.open(name);
    const int value = semaphore.value();
    if (parsed.has("json")) std::cout << nlohmann::json{{"name", name}, {"value", value}}.dump() << '\n';
    else std::cout << value << '\n';
    return exit_ok;
  }
  if (verb == "unlink") {
    named_semaphore::unlink(only_name(arguments::parse(rest, {})));
    return exit_ok;
  }
  throw usage_error("unknown subcommand \"" + verb + "\"");
}

const registration reg{{
    "sem",
    "create, post, wait on named semaphores",
    "Usage:\n"
    "  ipckit sem create NAME [--value N]\n"
    "  ipckit sem post NAME\n"
    "  ipckit sem wait NAME [--timeout D]\n"
    "  ipckit sem info NAME [--json]\n"
    "  ipckit sem unlink NAME\n\n"
    "NAME is \"/name\" (no other slash) for a POSIX named semaphore. create makes a new\n"
    "one, mode 0600, with N units (default 0) and fails if it exists. wait takes a\n"
    "unit, blocking until one is posted; with --timeout it gives up after D (200ms,\n"
    "1.5s) and exits 1. info prints the current value; with --json as one object\n"
    "{\"name\": NAME, \"value\": N}.\n",
    run,
}};

}  // namespace
}  // namespace ipckit::cli
