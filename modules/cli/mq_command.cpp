// `ipckit mq create|send|receive|info|unlink`: POSIX message queues from the shell.
#include "command.hpp"

#include <ipckit/duration.hpp>
#include <ipckit/message_queue.hpp>

#include <boost/asio/io_context.hpp>
#include <nlohmann/json.hpp>

#include <iomanip>
#include <iostream>
#include <mqueue.h>
#include <sstream>
#include <unistd.h>

namespace ipckit::cli {
namespace {

using clock = std::chrono::steady_clock;

const std::string& only_name(const arguments& parsed, std::size_t expected, std::string_view what) {
  if (parsed.positional().size() != expected) throw usage_error("want " + std::string(what));
  return parsed.positional()[0];
}

int create(std::span<const std::string> args) {
  static constexpr flag_spec flags[] = {{"max-messages", true}, {"message-size", true}};
  const auto parsed = arguments::parse(args, flags);
  const auto& name = only_name(parsed, 1, "NAME");
  message_queue_options options;
  options.exclusive = true;
  if (auto n = parsed.integer("max-messages")) {
    if (*n <= 0) throw usage_error("invalid value for flag -max-messages: must be positive");
    options.attributes.max_messages = static_cast<long>(*n);
  }
  if (auto n = parsed.integer("message-size")) {
    if (*n <= 0) throw usage_error("invalid value for flag -message-size: must be positive");
    options.attributes.message_size = static_cast<long>(*n);
  }
  boost::asio::io_context io;
  message_queue queue(io.get_executor());
  queue.create(name, options);
  return exit_ok;
}

int send(std::span<const std::string> args) {
  static constexpr flag_spec flags[] = {{"priority", true}};
  const auto parsed = arguments::parse(args, flags);
  if (parsed.positional().size() != 2) throw usage_error("want NAME MESSAGE");
  const long long priority = parsed.integer("priority").value_or(0);
  if (priority < 0 || priority >= ::sysconf(_SC_MQ_PRIO_MAX))
    throw usage_error("invalid value for flag -priority: want 0 to " + std::to_string(::sysconf(_SC_MQ_PRIO_MAX) - 1));
  boost::asio::io_context io;
  message_queue queue(io.get_executor());
  queue.open(parsed.positional()[0]);
  queue.send(boost::asio::buffer(parsed.positional()[1]), static_cast<unsigned>(priority));
  return exit_ok;
}

int receive(std::span<const std::string> args) {
  static constexpr flag_spec flags[] = {{"count", true}, {"timeout", true}, {"json", false}};
  const auto parsed = arguments::parse(args, flags);
  const auto& name = only_name(parsed, 1, "NAME");
  const long long count = parsed.integer("count").value_or(1);
  if (count <= 0) throw usage_error("invalid value for flag -count: must be positive");
  const auto timeout = parsed.duration("timeout");
  const bool json = parsed.has("json");
  boost::asio::io_context io;
  message_queue queue(io.get_executor());
  queue.open(name);
  // The timeout bounds the whole command, not each message.
  const auto deadline = timeout ? std::optional(clock::now() + *timeout) : std::nullopt;
  for (long long i = 0; i < count; ++i) {
    std::optional<queue_message> got;
    if (deadline) {
      got = queue.receive_for(std::max(*deadline - clock::now(), clock::duration::zero()));
      if (!got) {
        std::cerr << "ipckit mq receive: timed out after " << format_duration(*timeout) << " waiting for a message on "
                  << name << " (" << i << " of " << count << " received)\n";
        return exit_failure;
      }
    } else {
      got = queue.receive();
    }
    if (json) {
      nlohmann::json line{{"message", got->data}, {"priority", got->priority}};
      std::cout << line.dump(-1, ' ', false, nlohmann::json::error_handler_t::replace) << '\n';
    } else {
      std::cout << got->data << '\n';
    }
    std::cout.flush();
  }
  return exit_ok;
}

int info(std::span<const std::string> args) {
  static constexpr flag_spec flags[] = {{"json", false}};
  const auto parsed = arguments::parse(args, flags);
  const auto& name = only_name(parsed, 1, "NAME");
  boost::asio::io_context io;
  message_queue queue(io.get_executor());
  queue.open(name);
  const auto attributes = queue.attributes();
  error_code ec;
  const mode_t mode = queue.mode(ec);
  const uid_t owner = queue.owner(ec);
  std::ostringstream octal;
  octal << std::oct << std::setw(4) << std::setfill('0') << mode;
  if (parsed.has("json")) {
    const nlohmann::json document{{"name", name},
                                  {"max_messages", attributes.max_messages},
                                  {"message_size", attributes.message_size},
                                  {"messages", attributes.current_messages},
                                  {"mode", octal.str()},
                                  {"owner", owner}};
    std::cout << document.dump() << '\n';
    return exit_ok;
  }
  std::ostringstream out;
  out << "name " << name << "\nmax-messages " << attributes.max_messages << "\nmessage-size "
      << attributes.message_size << "\nmessages " << attributes.current_messages << "\nmode "
      << std::oct << std::setw(4) << std::setfill('0') << mode << std::dec << "\nowner " << owner << '\n';
  std::cout << out.str();
  return exit_ok;
}

int unlink(std::span<const std::string> args) {
  const auto parsed = arguments::parse(args, {});
  message_queue::unlink(only_name(parsed, 1, "NAME"));
  return exit_ok;
}

int run(std::span<const std::string> args) {
  if (args.empty()) throw usage_error("want a subcommand: create, send, receive, info or unlink");
  const auto rest = args.subspan(1);
  if (args[0] == "create") return create(rest);
  if (args[0] == "send") return send(rest);
  if (args[0] == "receive") return receive(rest);
  if (args[0] == "info") return info(rest);
  if (args[0] == "unlink") return unlink(rest);
  throw usage_error("unknown subcommand \"" + args[0] + "\"");
}

const registration reg{{
    "mq",
    "create, send to, receive from POSIX message queues",
    "Usage:\n"
    "  ipckit mq create NAME [--max-messages N] [--message-size N]\n"
    "  ipckit mq send NAME MESSAGE [--priority N]\n"
    "  ipckit mq receive NAME [--count N] [--timeout D] [--json]\n"
    "  ipckit mq info NAME [--json]\n"
    "  ipckit mq unlink NAME\n\n"
    "NAME is \"/name\" (no other slash). create makes a new queue, mode 0600, and fails\n"
    "if it exists (defaults: 10 messages of 8192 bytes). send blocks while the queue is\n"
    "full. receive prints each message on a line, highest priority first; with --json\n"
    "each line is {\"message\": TEXT, \"priority\": N}. --timeout bounds the whole\n"
    "receive; when it passes the exit status is 1. info prints the queue's limits,\n"
    "message count, mode and owner uid; with --json as one object {\"name\",\n"
    "\"max_messages\", \"message_size\", \"messages\", \"mode\": \"0600\", \"owner\"}.\n",
    run,
}};

}  // namespace
}  // namespace ipckit::cli
