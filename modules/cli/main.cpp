// ipckit: the command-line face of the toolkit. Subcommands live in their own files and
// register themselves (command.hpp); this file only dispatches.
#include "command.hpp"

#include <iostream>
#include <string>
#include <vector>

namespace {

using namespace ipckit::cli;

// Subcommands the design promises, with the issue that builds each; one that is not
// registered yet says so instead of pretending.
struct planned {
  std::string_view name;
  std::string_view summary;
  int issue;
};
constexpr planned planned_subcommands[] = {
    {"dial", "connect to NETWORK ADDRESS, stdin to it and it to stdout", 7},
    {"listen", "accept on NETWORK ADDRESS, like dial the other way", 7},
    {"signal", "send signals and watch deliveries with their sender", 4},
    {"fifo", "make, read and write named pipes", 7},
    {"lock", "run a command holding a file lock", 6},
    {"mq", "create, send to, receive from POSIX message queues", 6},
    {"sem", "create, post, wait on named semaphores", 6},
    {"tour", "run every IPC method between this process and a child", 2},
    {"bench", "measure ipckit against the raw system calls", 8},
};

void print_help(std::ostream& out) {
  out << "ipckit: inter-process communication on one event loop\n\n"
         "Usage: ipckit COMMAND [ARGUMENTS]\n\nCommands:\n";
  for (const auto& plan : planned_subcommands) {
    const subcommand* command = find_subcommand(plan.name);
    out << "  " << plan.name << std::string(8 - plan.name.size(), ' ')
        << (command ? command->summary : plan.summary);
    if (!command) out << " (not built yet: issue " << plan.issue << ")";
    out << '\n';
  }
  out << "\nRun 'ipckit COMMAND --help' for a command's arguments.\n"
         "Durations are written as Go writes them (200ms, 1.5s, 2m); signals by name\n"
         "with or without SIG (TERM, SIGUSR1, RTMIN+2) or by number.\n";
}

}  // namespace

int main(int argc, char** argv) {
  std::vector<std::string> args(argv + 1, argv + argc);
  if (args.empty()) {
    print_help(std::cerr);
    return exit_usage;
  }
  if (args[0] == "--help" || args[0] == "-h" || args[0] == "help") {
    print_help(std::cout);
    return exit_ok;
  }
  const std::string name = args[0];
  const subcommand* command = find_subcommand(name);
  if (!command) {
    for (const auto& plan : planned_subcommands) {
      if (plan.name != name) continue;
      std::cerr << "ipckit " << name << ": not built yet (issue " << plan.issue << ")\n";
      return exit_failure;
    }
    std::cerr << "ipckit: unknown command \"" << name << "\"\nRun 'ipckit --help' for usage.\n";
    return exit_usage;
  }
  const std::span<const std::string> rest(args.begin() + 1, args.end());
  for (const auto& arg : rest) {
    if (arg == "--") break;
    if (arg == "--help" || arg == "-h") {
      std::cout << command->usage;
      return exit_ok;
    }
  }
  try {
    return command->run(rest);
  } catch (const usage_error& error) {
    std::cerr << "ipckit " << name << ": " << error.what() << "\nRun 'ipckit " << name
              << " --help' for usage.\n";
    return exit_usage;
  } catch (const std::exception& error) {
    return report(error);
  }
}
