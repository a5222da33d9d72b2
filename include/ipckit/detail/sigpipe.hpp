// Whether SIGPIPE is ignored through ipckit, shared by the signal module (which knows)
// and the pipe module (which would otherwise mask SIGPIPE around every write).
#pragma once

namespace ipckit::detail {

/// True while the disposition the signal module last set for SIGPIPE is SIG_IGN
/// (signal::ignore, or a reset or a last notifier's stop that put SIG_IGN back). A
/// disposition changed behind ipckit's back with sigaction is not seen: see
/// docs/signal.md, "SIGPIPE".
bool sigpipe_ignored() noexcept;
void set_sigpipe_ignored(bool ignored) noexcept;

}  // namespace ipckit::detail
