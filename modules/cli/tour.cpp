#include "tour.hpp"

#include "command.hpp"

#include <nlohmann/json.hpp>

#include <algorithm>
#include <cerrno>
#include <csignal>
#include <cstdio>
#include <iomanip>
#include <iostream>
#include <poll.h>
#include <spawn.h>
#include <sstream>
#include <sys/syscall.h>
#include <sys/wait.h>
#include <unistd.h>

extern char** environ;

namespace ipckit::cli {
namespace {

std::vector<tour_row>& rows() {
  static std::vector<tour_row> registered;
  return registered;
}

// The methods the tour will show when their modules land, with the issue for each. A
// method with no registered row is printed as skipped, saying so.
struct planned_row {
  int order;
  std::string_view method;
  int issue;
};
constexpr planned_row planned_rows[] = {
    {100, "signal", 4},          {200, "anonymous pipe", 5},   {210, "fifo", 5},
    {300, "tcp", 3},             {301, "tcp4", 3},             {302, "tcp6", 3},
    {303, "udp", 3},             {304, "udp4", 3},             {305, "udp6", 3},
    {306, "unix", 3},            {307, "unixgram", 3},         {308, "unixpacket", 3},
    {309, "ip4:icmp", 3},        {310, "fd passing", 3},
    {400, "file lock", 6},       {410, "message queue", 6},    {420, "named semaphore", 6},
    {421, "sysv semaphore", 6},  {422, "event semaphore", 6},  {500, "json messages", 7},
};

int pidfd_open(int pid) { return static_cast<int>(::syscall(SYS_pidfd_open, pid, 0)); }

std::string format_us(const std::optional<double>& us) {
  if (!us) return "";
  std::ostringstream out;
  out << std::fixed << std::setprecision(*us < 100 ? 1 : 0) << *us << " µs";
  return out.str();
}

// Pads to a width in characters, not bytes ("µs" is two bytes, one column).
std::string pad(const std::string& text, std::size_t width) {
  std::size_t columns = 0;
  for (unsigned char c : text) columns += (c & 0xC0) != 0x80;
  return text + std::string(columns < width ? width - columns : 1, ' ');
}

int run_child(std::span<const std::string> args) {
  if (args.empty()) throw usage_error("--child needs a method");
  for (const auto& row : rows())
    if (row.method == args[0] && row.child) return row.child(args.subspan(1));
  std::cerr << "ipckit tour: no child side for \"" << args[0] << "\"\n";
  return exit_usage;
}

int run_tour(std::span<const std::string> args) {
  if (!args.empty() && args[0] == "--child") return run_child(args.subspan(1));
  static constexpr flag_spec flags[] = {{"json", false}};
  const auto parsed = arguments::parse(args, flags);
  if (!parsed.positional().empty()) throw usage_error("unexpected argument " + parsed.positional()[0]);

  struct line {
    int order;
    std::string method;
    tour_result result;
  };
  std::vector<line> lines;
  {
    tour_context context;
    std::vector<const tour_row*> ordered;
    for (const auto& row : rows()) ordered.push_back(&row);
    std::sort(ordered.begin(), ordered.end(),
              [](auto* a, auto* b) { return a->order < b->order; });
    for (const tour_row* row : ordered) {
      tour_result result;
      try {
        result = row->run(context);
      } catch (const std::exception& error) {
        result = {false, std::nullopt, std::nullopt, error.what()};
      }
      // One loop runs every row; only a row that did not pass may have left an
      // operation pending at a deadline, so its loop goes with it.
      if (!result.ok) context.renew_loop();
      lines.push_back({row->order, std::string(row->method), std::move(result)});
    }
  }
  for (const auto& plan : planned_rows) {
    if (std::any_of(rows().begin(), rows().end(), [&](auto& r) { return r.method == plan.method; }))
      continue;
    lines.push_back({plan.order, std::string(plan.method),
                     tour_result::skip("not built yet (issue " + std::to_string(plan.issue) + ")")});
  }
  std::stable_sort(lines.begin(), lines.end(), [](auto& a, auto& b) { return a.order < b.order; });

  bool all_ok = std::all_of(lines.begin(), lines.end(),
                            [](auto& l) { return l.result.skipped || l.result.ok; });
  if (parsed.has("json")) {
    nlohmann::json document{{"ok", all_ok}, {"rows", nlohmann::json::array()}};
    for (const auto& l : lines) {
      document["rows"].push_back({
          {"method", l.method},
          {"ok", !l.result.skipped && l.result.ok},
          {"skipped", l.result.skipped ? nlohmann::json(*l.result.skipped) : nlohmann::json()},
          {"round_trip_us", l.result.round_trip_us ? nlohmann::json(*l.result.round_trip_us)
                                                   : nlohmann::json()},
          {"detail", l.result.detail},
      });
    }
    std::cout << document.dump(2) << '\n';
  } else {
    std::cout << pad("METHOD", 18) << pad("RESULT", 9) << pad("ROUND TRIP", 12) << "DETAIL\n";
    for (const auto& l : lines) {
      const char* verdict = l.result.skipped ? "skipped" : l.result.ok ? "ok" : "FAILED";
      std::cout << pad(l.method, 18) << pad(verdict, 9) << pad(format_us(l.result.round_trip_us), 12)
                << (l.result.skipped ? *l.result.skipped : l.result.detail) << '\n';
    }
    std::cout << (all_ok ? "tour: every row that ran passed\n" : "tour: some rows FAILED\n");
  }
  return all_ok ? exit_ok : exit_failure;
}

const registration tour_command{{
    "tour",
    "run every IPC method between this process and a child",
    "Usage: ipckit tour [--json]\n\n"
    "Starts a child of itself on one event loop and runs every IPC method between the\n"
    "two, printing a table: method, result, median round trip and what happened. A row\n"
    "that cannot run here (not built yet, or not permitted) says why it was skipped.\n"
    "Exits 0 only when every row that ran passed.\n\n"
    "  --json   print one JSON document: {\"ok\": bool, \"rows\": [{\"method\", \"ok\",\n"
    "           \"skipped\", \"round_trip_us\", \"detail\"}, …]}\n",
    run_tour,
}};

}  // namespace

tour_registration::tour_registration(tour_row row) { rows().push_back(std::move(row)); }

double median_us(std::vector<std::chrono::nanoseconds> samples) {
  if (samples.empty()) return 0;
  std::nth_element(samples.begin(), samples.begin() + static_cast<std::ptrdiff_t>(samples.size() / 2),
                   samples.end());
  return static_cast<double>(samples[samples.size() / 2].count()) / 1000.0;
}

tour_context::tour_context() : loop_(std::make_unique<event_loop>()) {
  std::string pattern = (std::filesystem::temp_directory_path() / "ipckit-tour-XXXXXX").string();
  if (!::mkdtemp(pattern.data())) throw std::system_error(errno, std::generic_category(), "mkdtemp");
  temp_dir_ = pattern;
}

void tour_context::renew_loop() {
  loop_.reset();
  loop_ = std::make_unique<event_loop>();
}

tour_context::~tour_context() {
  std::error_code ignored;
  std::filesystem::remove_all(temp_dir_, ignored);
}

std::string tour_context::unique_name(std::string_view kind) {
  return "/ipckit-tour-" + std::string(kind) + "-" + std::to_string(::getpid()) + "-" +
         std::to_string(++counter_);
}

tour_child tour_context::start_child(std::string_view method, std::vector<std::string> args,
                                     std::vector<std::pair<int, int>> fds) {
  std::vector<std::string> self_args{"tour", "--child", std::string(method)};
  self_args.insert(self_args.end(), args.begin(), args.end());
  return start_self(std::move(self_args), std::move(fds));
}

tour_child start_self(std::vector<std::string> args, std::vector<std::pair<int, int>> fds) {
  std::vector<std::string> argv_storage{"/proc/self/exe"};
  argv_storage.insert(argv_storage.end(), args.begin(), args.end());
  std::vector<char*> argv;
  for (auto& arg : argv_storage) argv.push_back(arg.data());
  argv.push_back(nullptr);

  posix_spawn_file_actions_t actions;
  posix_spawn_file_actions_init(&actions);
  for (auto [from, to] : fds) posix_spawn_file_actions_adddup2(&actions, from, to);
  posix_spawnattr_t attributes;
  posix_spawnattr_init(&attributes);
  sigset_t empty, all;
  sigemptyset(&empty);
  sigfillset(&all);
  posix_spawnattr_setsigmask(&attributes, &empty);
  posix_spawnattr_setsigdefault(&attributes, &all);
  posix_spawnattr_setflags(&attributes, POSIX_SPAWN_SETSIGMASK | POSIX_SPAWN_SETSIGDEF);
  pid_t pid = -1;
  const int error = ::posix_spawn(&pid, "/proc/self/exe", &actions, &attributes, argv.data(), environ);
  posix_spawn_file_actions_destroy(&actions);
  posix_spawnattr_destroy(&attributes);
  if (error != 0) throw std::system_error(error, std::generic_category(), "posix_spawn");
  tour_child child;
  child.pid_ = pid;
  child.pidfd_ = pidfd_open(pid);
  return child;
}

tour_child::tour_child(tour_child&& other) noexcept
    : pid_(std::exchange(other.pid_, -1)), pidfd_(std::exchange(other.pidfd_, -1)) {}

tour_child::~tour_child() {
  if (pid_ > 0) {
    ::kill(pid_, SIGKILL);
    ::waitpid(pid_, nullptr, 0);
  }
  if (pidfd_ >= 0) ::close(pidfd_);
}

std::optional<int> tour_child::wait(std::chrono::milliseconds timeout) {
  pollfd ready{pidfd_, POLLIN, 0};
  int polled;
  do polled = ::poll(&ready, 1, static_cast<int>(timeout.count()));
  while (polled < 0 && errno == EINTR);
  if (polled <= 0) return std::nullopt;  // the destructor kills and reaps it
  int status = 0;
  if (::waitpid(pid_, &status, 0) != pid_) return std::nullopt;
  pid_ = -1;
  return WIFEXITED(status) ? WEXITSTATUS(status) : 128 + WTERMSIG(status);
}

}  // namespace ipckit::cli
