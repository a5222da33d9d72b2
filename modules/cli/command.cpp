#include "command.hpp"

#include <ipckit/duration.hpp>

#include <algorithm>
#include <cctype>
#include <charconv>
#include <iostream>

namespace ipckit::cli {
namespace {

std::vector<subcommand>& registry() {
  static std::vector<subcommand> commands;
  return commands;
}

}  // namespace

registration::registration(subcommand command) { registry().push_back(std::move(command)); }

const subcommand* find_subcommand(std::string_view name) {
  for (const auto& command : registry())
    if (command.name == name) return &command;
  return nullptr;
}

std::vector<const subcommand*> all_subcommands() {
  std::vector<const subcommand*> commands;
  for (const auto& command : registry()) commands.push_back(&command);
  return commands;
}

arguments arguments::parse(std::span<const std::string> args, std::span<const flag_spec> flags) {
  arguments parsed;
  for (std::size_t i = 0; i < args.size(); ++i) {
    const std::string& arg = args[i];
    if (arg == "--") {
      parsed.had_dashes_ = true;
      parsed.after_dashes_.assign(args.begin() + static_cast<std::ptrdiff_t>(i) + 1, args.end());
      break;
    }
    // "-" alone and negative numbers ("-1", a process group) are positionals.
    if (arg.size() < 2 || arg[0] != '-' || std::isdigit(static_cast<unsigned char>(arg[1]))) {
      parsed.positional_.push_back(arg);
      continue;
    }
    // Go's flag package accepts -name and --name alike.
    std::string_view body = std::string_view(arg).substr(arg[1] == '-' ? 2 : 1);
    std::string_view name = body.substr(0, body.find('='));
    const auto spec = std::find_if(flags.begin(), flags.end(),
                                   [&](const flag_spec& f) { return f.name == name; });
    if (spec == flags.end()) throw usage_error("flag provided but not defined: -" + std::string(name));
    if (!spec->takes_value) {
      if (name.size() != body.size()) throw usage_error("flag -" + std::string(name) + " takes no value");
      parsed.values_[std::string(name)] = "";
    } else if (name.size() != body.size()) {
      parsed.values_[std::string(name)] = std::string(body.substr(name.size() + 1));
    } else if (i + 1 < args.size()) {
      parsed.values_[std::string(name)] = args[++i];
    } else {
      throw usage_error("flag needs an argument: -" + std::string(name));
    }
  }
  return parsed;
}

std::optional<std::string> arguments::value(std::string_view flag) const {
  auto found = values_.find(flag);
  if (found == values_.end()) return std::nullopt;
  return found->second;
}

std::optional<long long> arguments::integer(std::string_view flag) const {
  auto text = value(flag);
  if (!text) return std::nullopt;
  long long number = 0;
  auto [end, ec] = std::from_chars(text->data(), text->data() + text->size(), number);
  if (ec != std::errc{} || end != text->data() + text->size())
    throw usage_error("invalid value \"" + *text + "\" for flag -" + std::string(flag) + ": parse error");
  return number;
}

std::optional<std::chrono::nanoseconds> arguments::duration(std::string_view flag) const {
  auto text = value(flag);
  if (!text) return std::nullopt;
  error_code ec;
  auto parsed = parse_duration(*text, ec);
  if (ec) throw usage_error("invalid value \"" + *text + "\" for flag -" + std::string(flag) + ": invalid duration");
  return parsed;
}

int report(const std::exception& error) {
  std::cerr << error.what() << '\n';
  return exit_failure;
}

}  // namespace ipckit::cli
