// `ipckit bench`: ipckit against the raw system calls under it, in the same run. Each
// benchmark registers itself from a file of its own (bench_<area>.cpp), as tour rows do;
// its child side runs as `ipckit bench --child NAME CPU ARGS…`, started by start_self.
#pragma once

#include "tour.hpp"

#include <chrono>
#include <filesystem>
#include <functional>
#include <map>
#include <optional>
#include <span>
#include <string>
#include <string_view>
#include <utility>
#include <vector>

namespace ipckit::cli::bench {

enum class pin_mode { same, cross, none };

struct options {
  pin_mode pin = pin_mode::same;
  long iterations = 5000;                      ///< round trips per way (after warm-up)
  std::size_t stream_bytes = std::size_t(1) << 30;  ///< bytes per throughput way
  long connections = 10000;                    ///< the scale benchmark's connections
  /// How long the ipckit_async_spin way polls before sleeping (event_loop::run_spinning).
  std::chrono::nanoseconds spin = std::chrono::microseconds(50);
  bool quick = false;
  int parent_cpu = 0;  ///< the first CPU this process may run on
  int second_cpu = 1;  ///< the second (the child's under --pin cross)
};

/// One way a benchmark row was measured ("raw_blocking", "ipckit_async" …): named
/// figures (all positive when it ran), or why it did not run.
struct way_result {
  std::string way;
  std::optional<std::string> skipped;
  std::map<std::string, double> figures;
};

/// One line of the output: a mechanism measured one way of several.
struct row_result {
  std::string name;  ///< "pipe", "unix", "signal" …
  std::string kind;  ///< "round_trip", "throughput", "scale", "spawn"
  std::string unit;  ///< the unit of `headline` figures: "us", "MB/s" …
  std::string headline;  ///< the figure ratios are taken of: "median", "rate" …
  bool lower_is_better = true;
  std::optional<std::string> skipped;  ///< why the whole row did not run
  std::vector<way_result> ways;
  std::string note;  ///< what was measured, in a few words
  /// Ratios printed for the row: {way, baseline way}, headline over headline.
  std::vector<std::pair<std::string, std::string>> ratios;
};

/// The four ways of the channel rows, in output order.
inline constexpr std::string_view four_ways[] = {"raw_blocking", "raw_epoll", "ipckit_blocking",
                                                 "ipckit_async"};
/// The channel rows add plain Asio (a posix::stream_descriptor on the raw descriptors:
/// the floor under ipckit's async API) and ipckit's opt-in low-latency mode
/// (event_loop::run_spinning), measured only when the two processes are on different CPUs.
inline constexpr std::string_view channel_ways[] = {"raw_blocking", "raw_epoll", "asio_async",
                                                    "ipckit_blocking", "ipckit_async",
                                                    "ipckit_async_spin"};
/// ipckit's blocking API against raw blocking calls, its async API against the epoll loop.
std::vector<std::pair<std::string, std::string>> four_way_ratios();

class context {
 public:
  explicit context(options opts);
  ~context();
  context(const context&) = delete;
  context& operator=(const context&) = delete;

  const options& opts() const { return options_; }
  /// A private (0700) directory for this run, removed at the end.
  const std::filesystem::path& temp_dir() const { return temp_dir_; }
  /// A name unique to this run, for message queues and semaphores: "/ipckit-bench-KIND-PID-N".
  std::string unique_name(std::string_view kind);
  /// The CPU the child pins itself to (-1: none) under the --pin mode.
  int child_cpu() const;

  /// Starts `ipckit bench --child NAME CPU ARGS…`. fds maps parent fds to the child's
  /// numbers; they are first moved out of the way so that no mapping clobbers another.
  tour_child start_child(std::string_view name, std::vector<std::string> args,
                         std::vector<std::pair<int, int>> fds = {});
  /// Waits for a child to exit 0 (10 s at most); throws otherwise.
  static void reap(tour_child& child, std::string_view what);

  /// The progress line on stderr: "bench [3/40] pipe round trip: raw_epoll".
  void progress(std::string_view what);
  void set_progress_total(int total) { progress_total_ = total; }
  void next_step() { ++progress_step_; }

 private:
  options options_;
  std::filesystem::path temp_dir_;
  int counter_ = 0;
  int progress_step_ = 0;
  int progress_total_ = 0;
  bool tty_ = false;
};

struct benchmark {
  int order = 0;           ///< output order
  std::string_view name;   ///< what --only selects: "pipe", "unix", "spawn" …
  int steps = 1;           ///< progress steps it reports (for the progress line)
  std::function<std::vector<row_result>(context&)> run;
  /// The child's side: `ipckit bench --child NAME CPU ARGS…` (after pinning); exit code.
  std::function<int(std::span<const std::string> args)> child;
};

struct registration {
  explicit registration(benchmark b);
};

/// Measures each way of `row` in turn, one progress step each (none when the row is
/// skipped); a way whose `measure` throws is kept as skipped with "failed: …".
void measure_ways(context& ctx, row_result& row, std::span<const std::string_view> ways,
                  const std::function<way_result(std::string_view way)>& measure);

/// Round-trip samples as microseconds: {"median", "p99"}.
std::map<std::string, double> latency_figures(std::vector<std::chrono::nanoseconds> samples);

/// Pins the calling thread (and the threads it starts later) to `cpu`; -1 does nothing.
void pin_to_cpu(int cpu);

}  // namespace ipckit::cli::bench
