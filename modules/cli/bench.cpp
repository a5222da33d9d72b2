#include "bench.hpp"

#include "command.hpp"

#include <ipckit/signal.hpp>

#include <nlohmann/json.hpp>

#include <algorithm>
#include <cerrno>
#include <cmath>
#include <csignal>
#include <fcntl.h>
#include <fstream>
#include <iomanip>
#include <iostream>
#include <sched.h>
#include <sstream>
#include <sys/utsname.h>
#include <system_error>
#include <unistd.h>

namespace ipckit::cli::bench {
namespace {

std::vector<benchmark>& benchmarks() {
  static std::vector<benchmark> registered;
  return registered;
}

std::vector<std::string> split_names(const std::string& text) {
  std::vector<std::string> names;
  std::stringstream in(text);
  for (std::string name; std::getline(in, name, ',');)
    if (!name.empty()) names.push_back(name);
  return names;
}

pin_mode parse_pin(const std::string& text) {
  if (text == "same") return pin_mode::same;
  if (text == "cross") return pin_mode::cross;
  if (text == "none") return pin_mode::none;
  throw usage_error("--pin must be same, cross or none, not \"" + text + "\"");
}

std::string_view pin_name(pin_mode pin) {
  switch (pin) {
    case pin_mode::same: return "same";
    case pin_mode::cross: return "cross";
    case pin_mode::none: return "none";
  }
  return "?";
}

std::string number(double value) {
  std::ostringstream out;
  out << std::fixed << std::setprecision(value < 10 ? 2 : value < 1000 ? 1 : 0) << value;
  return out.str();
}

const way_result* find_way(const row_result& row, std::string_view way) {
  for (const auto& w : row.ways)
    if (w.way == way && !w.skipped && w.figures.contains(row.headline)) return &w;
  return nullptr;
}

std::optional<double> ratio(const row_result& row, const std::string& way, const std::string& base) {
  const way_result* a = find_way(row, way);
  const way_result* b = find_way(row, base);
  if (!a || !b || b->figures.at(row.headline) <= 0) return std::nullopt;
  return a->figures.at(row.headline) / b->figures.at(row.headline);
}

std::string ratio_name(const std::string& way, const std::string& base) { return way + "/" + base; }

nlohmann::json to_json(const row_result& row) {
  nlohmann::json ways = nlohmann::json::object();
  for (const auto& w : row.ways) {
    nlohmann::json figures = nlohmann::json::object();
    for (const auto& [name, value] : w.figures) figures[name] = value;
    ways[w.way] = {{"skipped", w.skipped ? nlohmann::json(*w.skipped) : nlohmann::json()},
                   {"figures", figures}};
  }
  nlohmann::json ratios = nlohmann::json::object();
  for (const auto& [way, base] : row.ratios)
    if (auto r = ratio(row, way, base)) ratios[ratio_name(way, base)] = *r;
  return {{"name", row.name},
          {"kind", row.kind},
          {"unit", row.unit},
          {"headline", row.headline},
          {"lower_is_better", row.lower_is_better},
          {"skipped", row.skipped ? nlohmann::json(*row.skipped) : nlohmann::json()},
          {"ways", ways},
          {"ratios", ratios},
          {"note", row.note}};
}

std::vector<int> allowed_cpus() {
  cpu_set_t set;
  CPU_ZERO(&set);
  std::vector<int> cpus;
  if (::sched_getaffinity(0, sizeof set, &set) != 0) return cpus;
  for (int cpu = 0; cpu < CPU_SETSIZE; ++cpu)
    if (CPU_ISSET(cpu, &set)) cpus.push_back(cpu);
  return cpus;
}

std::string kernel_release() {
  utsname name{};
  return ::uname(&name) == 0 ? name.release : "";
}

void print_table(const std::vector<row_result>& rows, const options& opts) {
  std::cout << "ipckit bench: --pin " << pin_name(opts.pin) << ", " << opts.iterations
            << " round trips per way, " << (opts.stream_bytes >> 20) << " MiB per stream\n";
  for (const auto& row : rows) {
    std::cout << '\n' << row.name << ' ' << row.kind;
    if (row.skipped) {
      std::cout << ": skipped (" << *row.skipped << ")\n";
      continue;
    }
    std::cout << " (" << row.unit << ", " << (row.lower_is_better ? "lower" : "higher")
              << " is better)";
    if (!row.note.empty()) std::cout << ": " << row.note;
    std::cout << '\n';
    for (const auto& w : row.ways) {
      std::cout << "  " << w.way << std::string(w.way.size() < 18 ? 18 - w.way.size() : 1, ' ');
      if (w.skipped) {
        std::cout << "skipped (" << *w.skipped << ")\n";
        continue;
      }
      bool first = true;
      if (auto it = w.figures.find(row.headline); it != w.figures.end()) {
        std::cout << std::setw(9) << number(it->second) << ' ' << row.unit;
        first = false;
      }
      for (const auto& [name, value] : w.figures) {
        if (name == row.headline) continue;
        std::cout << (first ? "" : ", ") << name << ' ' << number(value);
        first = false;
      }
      std::cout << '\n';
    }
    for (const auto& [way, base] : row.ratios)
      if (auto r = ratio(row, way, base))
        std::cout << "  " << ratio_name(way, base) << " = " << std::fixed << std::setprecision(2)
                  << *r << '\n';
  }
}

int run_child(std::span<const std::string> args) {
  if (args.size() < 2) throw usage_error("--child needs a benchmark name and a CPU");
  pin_to_cpu(std::stoi(args[1]));
  for (const auto& b : benchmarks())
    if (b.name == args[0] && b.child) return b.child(args.subspan(2));
  std::cerr << "ipckit bench: no child side for \"" << args[0] << "\"\n";
  return exit_usage;
}

int run_bench(std::span<const std::string> args) {
  // As a Go program (and most daemons) runs: SIGPIPE ignored, through ipckit so that pipe
  // writes know it and skip their per-write SIGPIPE mask (docs/pipe.md).
  signal::ignore({SIGPIPE});
  if (!args.empty() && args[0] == "--child") return run_child(args.subspan(1));
  static constexpr flag_spec flags[] = {{"json", false},      {"only", true},   {"pin", true},
                                        {"iterations", true}, {"quick", false}, {"bytes", true},
                                        {"connections", true}, {"list", false}, {"spin", true}};
  const auto parsed = arguments::parse(args, flags);
  if (!parsed.positional().empty()) throw usage_error("unexpected argument " + parsed.positional()[0]);

  std::vector<const benchmark*> ordered;
  for (const auto& b : benchmarks()) ordered.push_back(&b);
  std::sort(ordered.begin(), ordered.end(), [](auto* a, auto* b) { return a->order < b->order; });
  if (parsed.has("list")) {
    for (const auto* b : ordered) std::cout << b->name << '\n';
    return exit_ok;
  }

  options opts;
  if (parsed.has("quick")) {
    opts.quick = true;
    opts.iterations = 200;
    opts.stream_bytes = std::size_t(16) << 20;
    opts.connections = 500;
  }
  if (auto pin = parsed.value("pin")) opts.pin = parse_pin(*pin);
  if (auto n = parsed.integer("iterations")) {
    if (*n < 1) throw usage_error("--iterations must be at least 1");
    opts.iterations = static_cast<long>(*n);
  }
  // Across CPUs a stream runs at a fifth of the speed here: a smaller default keeps the
  // whole run under two minutes.
  if (opts.pin != pin_mode::same && !opts.quick) opts.stream_bytes = std::size_t(256) << 20;
  if (auto n = parsed.integer("bytes")) {
    if (*n < 65536) throw usage_error("--bytes must be at least 65536");
    opts.stream_bytes = static_cast<std::size_t>(*n);
  }
  if (auto n = parsed.integer("connections")) {
    if (*n < 1) throw usage_error("--connections must be at least 1");
    opts.connections = static_cast<long>(*n);
  }
  if (auto spin = parsed.duration("spin")) {
    if (spin->count() <= 0) throw usage_error("--spin must be positive");
    opts.spin = *spin;
  }
  // CPU "0" and "1" are the first two this process may run on (a container's cpuset
  // need not start at 0).
  const auto cpus = allowed_cpus();
  if (opts.pin != pin_mode::none && cpus.empty()) throw std::runtime_error("sched_getaffinity found no CPU");
  if (opts.pin == pin_mode::cross && cpus.size() < 2)
    throw usage_error("--pin cross needs two CPUs; this process may run on one");
  if (!cpus.empty()) opts.parent_cpu = cpus[0];
  if (cpus.size() > 1) opts.second_cpu = cpus[1];

  if (auto only = parsed.value("only")) {
    const auto names = split_names(*only);
    for (const auto& name : names)
      if (std::none_of(ordered.begin(), ordered.end(), [&](auto* b) { return b->name == name; }))
        throw usage_error("--only: no benchmark \"" + name + "\" (ipckit bench --list)");
    std::erase_if(ordered, [&](auto* b) {
      return std::find(names.begin(), names.end(), b->name) == names.end();
    });
  }

  if (opts.pin != pin_mode::none) pin_to_cpu(opts.parent_cpu);
  std::vector<row_result> rows;
  {
    context ctx(opts);
    int total = 0;
    for (const auto* b : ordered) total += b->steps;
    ctx.set_progress_total(total);
    for (const auto* b : ordered) {
      try {
        auto produced = b->run(ctx);
        rows.insert(rows.end(), produced.begin(), produced.end());
      } catch (const std::exception& error) {
        row_result failed;
        failed.name = std::string(b->name);
        failed.kind = "error";
        failed.skipped = std::string("failed: ") + error.what();
        rows.push_back(std::move(failed));
      }
    }
    ctx.progress("done");
  }

  const bool all_ran = std::none_of(rows.begin(), rows.end(), [](auto& r) { return r.kind == "error"; });
  if (parsed.has("json")) {
    nlohmann::json document{
        {"ok", all_ran},
        {"machine", {{"cpus", ::sysconf(_SC_NPROCESSORS_ONLN)}, {"kernel", kernel_release()}}},
        {"options",
         {{"pin", pin_name(opts.pin)},
          {"iterations", opts.iterations},
          {"stream_bytes", opts.stream_bytes},
          {"connections", opts.connections},
          {"spin_ns", opts.spin.count()},
          {"parent_cpu", opts.pin == pin_mode::none ? -1 : opts.parent_cpu},
          {"child_cpu", opts.pin == pin_mode::none ? -1 : opts.pin == pin_mode::same ? opts.parent_cpu : opts.second_cpu},
          {"quick", opts.quick}}},
        {"rows", nlohmann::json::array()}};
    for (const auto& row : rows) document["rows"].push_back(to_json(row));
    std::cout << document.dump(2) << '\n';
  } else {
    print_table(rows, opts);
  }
  return all_ran ? exit_ok : exit_failure;
}

const cli::registration bench_command{{
    "bench",
    "measure ipckit against the raw system calls",
    "Usage: ipckit bench [--json] [--only NAMES] [--pin same|cross|none] [--quick]\n"
    "                    [--iterations N] [--bytes N] [--connections N] [--spin D] [--list]\n\n"
    "Measures each IPC mechanism between this process and a child of itself, four ways\n"
    "in the same run: raw blocking system calls and a raw edge-triggered epoll loop (the\n"
    "baselines, written in the benchmark), then ipckit's blocking API and its async API\n"
    "on the event loop, and prints the ratios of ipckit to the baselines. The fd channels\n"
    "add plain Asio on the raw descriptors (asio_async), the floor under ipckit's async\n"
    "API, and the ratio ipckit_async/asio_async. Round trips are\n"
    "64-byte ping-pongs (median and 99th percentile, µs); throughput streams bytes in\n"
    "64 KiB writes (64 KiB datagrams on unix datagram sockets, 8 KiB messages on a\n"
    "message queue). Signals, eventfd and named semaphores, file lock hand-offs and\n"
    "JSON messages are round trips too; the scale rows echo on many unix connections\n"
    "at once (messages/s, resident bytes per connection) and start and reap children\n"
    "(per second). A progress line goes to stderr.\n"
    "Figures are for comparing ways within one run; see docs/performance.md.\n\n"
    "  --json           print one JSON document (the format is in docs/performance.md)\n"
    "  --only NAMES     run only these benchmarks, comma-separated (see --list)\n"
    "  --pin MODE       same: both processes on CPU 0 (default); cross: parent on CPU 0,\n"
    "                   child on CPU 1; none: let the scheduler place them. CPU 0 and 1\n"
    "                   are the first two this process may run on\n"
    "  --iterations N   round trips per way (default 5000; 200 with --quick)\n"
    "  --bytes N        bytes streamed per way (default 1 GiB, 256 MiB unless --pin same;\n"
    "                   16 MiB with --quick)\n"
    "  --connections N  connections of the scale benchmark (default 10000; 500 with --quick)\n"
    "  --spin D         the last way of the channels, ipckit_async_spin: the loop in its\n"
    "                   low-latency mode (event_loop::run_spinning) polls D (default 50us)\n"
    "                   before sleeping; measured only with the processes on different\n"
    "                   CPUs (--pin cross or none)\n"
    "  --quick          small counts, for tests and a first look\n"
    "  --list           print the benchmark names and exit\n",
    run_bench,
}};

}  // namespace

registration::registration(benchmark b) { benchmarks().push_back(std::move(b)); }

std::vector<std::pair<std::string, std::string>> four_way_ratios() {
  return {{"ipckit_blocking", "raw_blocking"}, {"ipckit_async", "raw_epoll"}};
}

void measure_ways(context& ctx, row_result& row, std::span<const std::string_view> ways,
                  const std::function<way_result(std::string_view way)>& measure) {
  for (std::string_view way : ways) {
    ctx.next_step();
    if (row.skipped) continue;
    ctx.progress(row.name + " " + row.kind + ": " + std::string(way));
    try {
      row.ways.push_back(measure(way));
    } catch (const std::exception& error) {
      row.ways.push_back({std::string(way), std::string("failed: ") + error.what(), {}});
    }
  }
}

std::map<std::string, double> latency_figures(std::vector<std::chrono::nanoseconds> samples) {
  if (samples.empty()) return {};
  std::sort(samples.begin(), samples.end());
  auto at = [&](double q) {
    const auto index = std::min(samples.size() - 1, static_cast<std::size_t>(q * static_cast<double>(samples.size())));
    return static_cast<double>(samples[index].count()) / 1000.0;
  };
  // A sample of 0 ns is below the clock's resolution; keep the figure positive.
  return {{"median", std::max(at(0.5), 0.001)}, {"p99", std::max(at(0.99), 0.001)}};
}

void pin_to_cpu(int cpu) {
  if (cpu < 0) return;
  cpu_set_t set;
  CPU_ZERO(&set);
  CPU_SET(cpu, &set);
  if (::sched_setaffinity(0, sizeof set, &set) != 0)
    throw std::system_error(errno, std::generic_category(), "sched_setaffinity CPU " + std::to_string(cpu));
}

context::context(options opts) : options_(std::move(opts)), tty_(::isatty(2) == 1) {
  std::string pattern = (std::filesystem::temp_directory_path() / "ipckit-bench-XXXXXX").string();
  if (!::mkdtemp(pattern.data())) throw std::system_error(errno, std::generic_category(), "mkdtemp");
  temp_dir_ = pattern;
}

context::~context() {
  std::error_code ignored;
  std::filesystem::remove_all(temp_dir_, ignored);
  if (tty_) std::cerr << '\n';
}

std::string context::unique_name(std::string_view kind) {
  return "/ipckit-bench-" + std::string(kind) + "-" + std::to_string(::getpid()) + "-" +
         std::to_string(++counter_);
}

int context::child_cpu() const {
  switch (options_.pin) {
    case pin_mode::same: return options_.parent_cpu;
    case pin_mode::cross: return options_.second_cpu;
    case pin_mode::none: return -1;
  }
  return -1;
}

tour_child context::start_child(std::string_view name, std::vector<std::string> args,
                                std::vector<std::pair<int, int>> fds) {
  // Move every source above the targets first: mapping 5→3 then 3→4 would send the
  // wrong descriptor to 4.
  std::vector<int> moved;
  for (auto& [from, to] : fds) {
    const int high = ::fcntl(from, F_DUPFD_CLOEXEC, 100);
    if (high < 0) {
      for (int fd : moved) ::close(fd);
      throw std::system_error(errno, std::generic_category(), "fcntl F_DUPFD_CLOEXEC");
    }
    moved.push_back(high);
    from = high;
  }
  std::vector<std::string> self_args{"bench", "--child", std::string(name), std::to_string(child_cpu())};
  self_args.insert(self_args.end(), args.begin(), args.end());
  try {
    auto child = start_self(std::move(self_args), fds);
    for (int fd : moved) ::close(fd);
    return child;
  } catch (...) {
    for (int fd : moved) ::close(fd);
    throw;
  }
}

void context::reap(tour_child& child, std::string_view what) {
  const auto code = child.wait(std::chrono::seconds(10));
  if (!code) throw std::runtime_error(std::string(what) + ": child did not exit within 10s");
  if (*code != 0) throw std::runtime_error(std::string(what) + ": child exited " + std::to_string(*code));
}

void context::progress(std::string_view what) {
  std::ostringstream line;
  line << "bench [" << std::min(progress_step_, progress_total_) << '/' << progress_total_ << "] " << what;
  if (tty_) {
    std::cerr << "\r\033[K" << line.str() << std::flush;
  } else {
    std::cerr << line.str() << '\n';
  }
}

}  // namespace ipckit::cli::bench
