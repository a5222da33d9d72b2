// Signal names both ways, as `kill -l` and Go write them, and si_code as a word.
#include <ipckit/signal.hpp>

#include <algorithm>
#include <cctype>
#include <charconv>
#include <csignal>

namespace ipckit::signal {
namespace {

struct named {
  std::string_view name;  // without "SIG"
  int number;
};

// The first entry for a number is its printed name; the others are accepted aliases.
constexpr named standard[] = {
    {"HUP", SIGHUP},     {"INT", SIGINT},       {"QUIT", SIGQUIT},   {"ILL", SIGILL},
    {"TRAP", SIGTRAP},   {"ABRT", SIGABRT},     {"IOT", SIGIOT},     {"BUS", SIGBUS},
    {"FPE", SIGFPE},     {"KILL", SIGKILL},     {"USR1", SIGUSR1},   {"SEGV", SIGSEGV},
    {"USR2", SIGUSR2},   {"PIPE", SIGPIPE},     {"ALRM", SIGALRM},   {"TERM", SIGTERM},
    {"STKFLT", SIGSTKFLT}, {"CHLD", SIGCHLD},   {"CLD", SIGCHLD},    {"CONT", SIGCONT},
    {"STOP", SIGSTOP},   {"TSTP", SIGTSTP},     {"TTIN", SIGTTIN},   {"TTOU", SIGTTOU},
    {"URG", SIGURG},     {"XCPU", SIGXCPU},     {"XFSZ", SIGXFSZ},   {"VTALRM", SIGVTALRM},
    {"PROF", SIGPROF},   {"WINCH", SIGWINCH},   {"IO", SIGIO},       {"POLL", SIGPOLL},
    {"PWR", SIGPWR},     {"SYS", SIGSYS},
};

std::string upper(std::string_view text) {
  std::string out(text);
  for (auto& c : out) c = static_cast<char>(std::toupper(static_cast<unsigned char>(c)));
  return out;
}

std::optional<int> number_of(std::string_view text) {
  int value = 0;
  auto [end, ec] = std::from_chars(text.data(), text.data() + text.size(), value);
  if (ec != std::errc{} || end != text.data() + text.size() || text.empty()) return std::nullopt;
  return value;
}

// "RTMIN", "RTMIN+3", "RTMAX", "RTMAX-2" (already upper case, without SIG).
std::optional<int> realtime(std::string_view text) {
  for (auto [base_name, base, sign] : {std::tuple{std::string_view("RTMIN"), SIGRTMIN, '+'},
                                      std::tuple{std::string_view("RTMAX"), SIGRTMAX, '-'}}) {
    if (text.substr(0, 5) != base_name) continue;
    std::string_view rest = text.substr(5);
    if (rest.empty()) return base;
    if (rest[0] != sign) return std::nullopt;
    auto offset = number_of(rest.substr(1));
    if (!offset || *offset < 0 || rest.size() < 2 || rest[1] == '+' || rest[1] == '-')
      return std::nullopt;
    const int number = sign == '+' ? base + *offset : base - *offset;
    if (number < SIGRTMIN || number > SIGRTMAX) return std::nullopt;
    return number;
  }
  return std::nullopt;
}

}  // namespace

int parse(std::string_view text, error_code& ec) {
  ec = {};
  if (auto number = number_of(text)) {
    if (*number >= 0 && *number < NSIG && (*number < 32 || *number >= SIGRTMIN)) return *number;
    ec = errc::unknown_signal;
    return 0;
  }
  std::string word = upper(text);
  std::string_view bare = word;
  if (bare.substr(0, 3) == "SIG") bare.remove_prefix(3);
  for (const auto& entry : standard)
    if (entry.name == bare) return entry.number;
  if (auto number = realtime(bare)) return *number;
  ec = errc::unknown_signal;
  return 0;
}

int parse(std::string_view text) {
  error_code ec;
  const int number = parse(text, ec);
  if (ec) throw_error(ec, {"parse", "signal", "", "\"" + std::string(text) + "\"", ""});
  return number;
}

std::string name(int number) {
  for (const auto& entry : standard)
    if (entry.number == number) return "SIG" + std::string(entry.name);
  if (number >= SIGRTMIN && number <= SIGRTMAX) {
    // As bash's kill -l: the lower half counts up from RTMIN, the upper half down from RTMAX.
    const int from_min = number - SIGRTMIN, from_max = SIGRTMAX - number;
    if (from_min == 0) return "SIGRTMIN";
    if (from_max == 0) return "SIGRTMAX";
    if (from_min <= from_max) return "SIGRTMIN+" + std::to_string(from_min);
    return "SIGRTMAX-" + std::to_string(from_max);
  }
  return "signal " + std::to_string(number);
}

std::string code_name(const info& delivery) {
  switch (delivery.code) {
    case SI_USER: return "user";
    case SI_QUEUE: return "queue";
    case SI_TKILL: return "tkill";
    case SI_KERNEL: return "kernel";
    case SI_TIMER: return "timer";
    case SI_MESGQ: return "mesgq";
    case SI_ASYNCIO: return "asyncio";
    case SI_SIGIO: return "sigio";
    default: break;
  }
  if (delivery.number == SIGCHLD) {
    switch (delivery.code) {
      case CLD_EXITED: return "exited";
      case CLD_KILLED: return "killed";
      case CLD_DUMPED: return "dumped";
      case CLD_TRAPPED: return "trapped";
      case CLD_STOPPED: return "stopped";
      case CLD_CONTINUED: return "continued";
      default: break;
    }
  }
  // Positive codes of other signals come from the kernel (SEGV_MAPERR, POLL_IN …).
  if (delivery.code > 0) return "kernel";
  return "code " + std::to_string(delivery.code);
}

}  // namespace ipckit::signal
