// `ipckit tour`: every IPC method run between this process and a child of itself.
// Each module registers its rows from a file of its own (tour_<module>.cpp).
#pragma once

#include <ipckit/event_loop.hpp>

#include <chrono>
#include <filesystem>
#include <functional>
#include <memory>
#include <optional>
#include <span>
#include <string>
#include <string_view>
#include <utility>
#include <vector>

namespace ipckit::cli {

struct tour_result {
  bool ok = false;
  std::optional<std::string> skipped;  ///< why the row did not run (then ok is ignored)
  std::optional<double> round_trip_us;
  std::string detail;  ///< what happened, in a few words

  static tour_result skip(std::string why) { return {false, std::move(why), std::nullopt, ""}; }
};

/// A child of the tour: `ipckit tour --child METHOD ARGS…`, started with an empty signal
/// mask and default dispositions, extra fds placed at chosen numbers.
class tour_child {
 public:
  tour_child() = default;
  tour_child(tour_child&& other) noexcept;
  tour_child& operator=(tour_child&&) = delete;
  ~tour_child();  // kills and reaps a child that was not waited for

  int pid() const { return pid_; }
  /// Waits for the exit; a child still running at the deadline is killed and reaped,
  /// and the result is nullopt. Otherwise the exit code (128+N for signal N).
  std::optional<int> wait(std::chrono::milliseconds timeout);

 private:
  friend tour_child start_self(std::vector<std::string>, std::vector<std::pair<int, int>>);
  int pid_ = -1;
  int pidfd_ = -1;
};

/// Starts `ipckit ARGS…` (this very executable) as tour_context::start_child does: empty
/// signal mask, default dispositions, fds mapped parent → child number. Shared with
/// `ipckit bench`, whose children are started the same way. Throws on failure.
tour_child start_self(std::vector<std::string> args, std::vector<std::pair<int, int>> fds = {});

class tour_context {
 public:
  tour_context();
  ~tour_context();

  /// The tour's event loop: every row runs on it, until a row fails (renew_loop).
  event_loop& loop() { return *loop_; }
  /// Destroys the loop and starts a new one. A row that gave up at a deadline may leave
  /// an operation pending whose handler refers to that row's (gone) stack frame;
  /// destroying the loop destroys such handlers unrun, so none runs during a later row.
  /// The tour calls it after each row that did not pass.
  void renew_loop();
  /// A private (0700) directory for this tour run, removed at the end.
  const std::filesystem::path& temp_dir() const { return temp_dir_; }
  /// A name unique to this run, for message queues and semaphores: "/ipckit-tour-PID-N".
  std::string unique_name(std::string_view kind);

  /// Starts `ipckit tour --child METHOD ARGS…`; fds maps a parent fd to the child fd
  /// number it must appear at (0–2 included). Throws on failure.
  tour_child start_child(std::string_view method, std::vector<std::string> args,
                         std::vector<std::pair<int, int>> fds = {});

 private:
  std::unique_ptr<event_loop> loop_;
  std::filesystem::path temp_dir_;
  int counter_ = 0;
};

struct tour_row {
  int order = 0;               ///< rows are printed in this order
  std::string_view method;     ///< "unixpacket", "anonymous pipe" …
  std::function<tour_result(tour_context&)> run;
  /// The child's side, run as `ipckit tour --child METHOD ARGS…`; returns the exit code.
  std::function<int(std::span<const std::string> args)> child;
};

struct tour_registration {
  explicit tour_registration(tour_row row);
};

/// Median of round-trip samples in microseconds.
double median_us(std::vector<std::chrono::nanoseconds> samples);

}  // namespace ipckit::cli
