// Whether SIGPIPE is ignored through ipckit, shared by the signal module (which knows)
// and the pipe module (which would otherwise mask SIGPIPE around every write).
#pragma once

namespace ipckit::detail {

/// True while SIGPIPE's disposition is SIG_IGN because signal::ignore set it (and no
/// notifier or reset has changed it since). A disposition changed behind ipckit's back
/// with sigaction is not seen: see docs/signal.md, "SIGPIPE".
bool sigpipe_ignored() noexcept;
void set_sigpipe_ignored(bool ignored) noexcept;

}  // namespace ipckit::detail
