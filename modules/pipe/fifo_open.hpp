// Private to the pipe module: the FIFO open steps shared by the sync and async writers.
#pragma once

#include <ipckit/error.hpp>
#include <ipckit/unique_fd.hpp>

#include <filesystem>

namespace ipckit::pipe_internal {

/// One non-blocking attempt to open the FIFO for writing. ENXIO (no reader yet) is
/// returned in ec for the caller to wait; a path that is not a FIFO is not_a_fifo.
unique_fd try_open_fifo_writer(const std::filesystem::path& path, error_code& ec);

/// An inotify descriptor watching `path` for opens (IN_OPEN), close-on-exec and
/// non-blocking. Invalid (and no error) when inotify is unavailable: callers then re-check
/// on a timer only.
unique_fd watch_opens(const std::filesystem::path& path);

/// Empties a non-blocking inotify descriptor.
void drain(int fd);

/// How often a waiting writer re-checks for a reader even without an inotify event (a
/// reader that opened through another mount namespace, or inotify limits).
constexpr int recheck_ms = 250;

}  // namespace ipckit::pipe_internal
