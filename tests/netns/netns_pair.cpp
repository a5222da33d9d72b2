#include "netns_pair.hpp"

#include <atomic>
#include <cerrno>
#include <cstring>
#include <filesystem>
#include <fcntl.h>
#include <sched.h>
#include <system_error>
#include <thread>
#include <unistd.h>

namespace ipckit::test {
namespace {

std::string unique_prefix() {
  static std::atomic<int> counter{0};
  return "ipckit-" + std::to_string(::getpid()) + "-" + std::to_string(++counter);
}

std::string describe(const std::vector<std::string>& argv, const process_result& r) {
  std::string text;
  for (const auto& arg : argv) text += (text.empty() ? "" : " ") + arg;
  return text + ": exit " + std::to_string(r.exit_code) + ": " + r.err;
}

// A run that crashed could not delete its namespaces: remove those whose process is gone
// ("ipckit-PID-N-a" with no /proc/PID), never one of a run still going.
void remove_stale_namespaces() {
  std::error_code ec;
  for (const auto& entry : std::filesystem::directory_iterator("/run/netns", ec)) {
    const std::string name = entry.path().filename();
    if (!name.starts_with("ipckit-")) continue;
    const std::string pid = name.substr(7, name.find('-', 7) - 7);
    if (pid.empty() || pid.find_first_not_of("0123456789") != std::string::npos) continue;
    if (!std::filesystem::exists("/proc/" + pid, ec)) run_process({"ip", "netns", "del", name});
  }
}

}  // namespace

std::optional<netns_pair> netns_pair::create(std::string& why) {
  remove_stale_namespaces();
  netns_pair pair;
  const std::string prefix = unique_prefix();
  for (const char* side : {"-a", "-b"}) {
    const std::vector<std::string> add{"ip", "netns", "add", prefix + side};
    process_result r;
    try {
      r = run_process(add);
    } catch (const std::exception& e) {
      why = std::string("cannot run ip (iproute2): ") + e.what();
      return std::nullopt;
    }
    if (r.exit_code != 0) {
      why = "cannot create a network namespace (needs root or CAP_SYS_ADMIN and CAP_NET_ADMIN): " +
            describe(add, r);
      return std::nullopt;
    }
    pair.names_.push_back(prefix + side);
  }
  const std::string& a = pair.a();
  const std::string& b = pair.b();
  const std::vector<std::pair<std::string, std::vector<std::string>>> steps{
      {a, {"link", "add", "va", "type", "veth", "peer", "name", "vb", "netns", b}},
      {a, {"addr", "add", std::string(a4) + "/24", "dev", "va"}},
      {a, {"-6", "addr", "add", std::string(a6) + "/64", "dev", "va", "nodad"}},
      {b, {"addr", "add", std::string(b4) + "/24", "dev", "vb"}},
      {b, {"-6", "addr", "add", std::string(b6) + "/64", "dev", "vb", "nodad"}},
      {a, {"link", "set", "lo", "up"}},
      {b, {"link", "set", "lo", "up"}},
      {a, {"link", "set", "va", "up"}},
      {b, {"link", "set", "vb", "up"}},
      // A MAC address that no interface has: B's veth receives the frames and drops them.
      {a, {"neigh", "add", dark4, "lladdr", "02:00:00:00:19:85", "dev", "va", "nud", "permanent"}},
      {a, {"-6", "neigh", "add", dark6, "lladdr", "02:00:00:00:19:85", "dev", "va", "nud", "permanent"}},
  };
  for (const auto& [ns, args] : steps) {
    const process_result r = pair.ip(ns, args);
    if (r.exit_code != 0) {
      why = "cannot set up the veth between the namespaces: ip -n " + ns + " " + describe(args, r);
      return std::nullopt;
    }
  }
  // The veth's carrier comes up with both ends; wait for it (bounded) before any dial.
  const auto deadline = std::chrono::steady_clock::now() + 10s;
  for (const auto& [ns, dev] : {std::pair{a, "va"}, std::pair{b, "vb"}}) {
    while (pair.ip(ns, {"-o", "link", "show", dev}).out.find("LOWER_UP") == std::string::npos) {
      if (std::chrono::steady_clock::now() > deadline) {
        why = "the veth in " + ns + " did not come up within 10 s";
        return std::nullopt;
      }
      std::this_thread::sleep_for(10ms);  // polling a state with a deadline
    }
  }
  return std::optional<netns_pair>(std::move(pair));
}

netns_pair::netns_pair(netns_pair&& other) noexcept : names_(std::move(other.names_)) {
  other.names_.clear();
}

netns_pair::~netns_pair() {
  // Deleting a namespace destroys the veth end in it, and with it the other end.
  for (const auto& name : names_) {
    try {
      const process_result r = run_process({"ip", "netns", "del", name});
      if (r.exit_code != 0) ADD_FAILURE() << "ip netns del " << name << ": " << r.err;
    } catch (const std::exception& e) {
      ADD_FAILURE() << "ip netns del " << name << ": " << e.what();
    }
  }
}

process_result netns_pair::ip(const std::string& ns, const std::vector<std::string>& args) const {
  std::vector<std::string> argv{"ip", "-n", ns};
  argv.insert(argv.end(), args.begin(), args.end());
  return run_process(argv);
}

process_result netns_pair::exec(const std::string& ns, const std::vector<std::string>& argv) const {
  std::vector<std::string> full{"ip", "netns", "exec", ns};
  full.insert(full.end(), argv.begin(), argv.end());
  return run_process(full);
}

bool netns_pair::netem(const std::string& ns, const std::vector<std::string>& args,
                       std::string& why) const {
  std::vector<std::string> argv{"tc", "qdisc", "add", "dev", ns == a() ? "va" : "vb", "root", "netem"};
  argv.insert(argv.end(), args.begin(), args.end());
  process_result r;
  try {
    r = exec(ns, argv);
  } catch (const std::exception& e) {
    why = std::string("cannot run tc: ") + e.what();
    return false;
  }
  if (r.exit_code != 0) {
    why = "tc netem is not available here (a kernel without sch_netem, or no tc): " +
          describe(argv, r);
    return false;
  }
  return true;
}

bool netns_pair::lose_from_a(int percent, std::string& how) const {
  std::string netem_why;
  if (netem(a(), {"loss", std::to_string(percent) + "%"}, netem_why)) {
    how = "netem loss " + std::to_string(percent) + "% on A's veth";
    return true;
  }
  const std::string rule = percent >= 100 ? "drop" : "numgen random mod 100 < " + std::to_string(percent) + " drop";
  std::string nft_why;
  if (!filter_at_b(rule, nft_why)) {
    how = netem_why + "; and no nftables fallback: " + nft_why;
    return false;
  }
  how = "nftables drop of " + std::to_string(percent) + "% on B's veth ingress (" + netem_why + ")";
  return true;
}

bool netns_pair::filter_at_b(const std::string& rule, std::string& why) const {
  const std::string ruleset = "table netdev ipckit_filter {\n"
                              "  chain ingress {\n"
                              "    type filter hook ingress device \"vb\" priority 0; policy accept;\n"
                              "    " + rule + "\n"
                              "  }\n"
                              "}\n";
  const std::vector<std::string> argv{"ip", "netns", "exec", b(), "nft", "-f", "-"};
  process_result r;
  try {
    r = run_process(argv, ruleset);
  } catch (const std::exception& e) {
    r.err = e.what();
  }
  if (r.exit_code != 0) {
    why = "nftables cannot filter on B's veth (" + describe(argv, r) + ")";
    return false;
  }
  return true;
}

std::vector<std::string> netns_pair::helper_argv(const std::string& ns,
                                                 const std::vector<std::string>& args) const {
  std::vector<std::string> argv{"ip", "netns", "exec", ns, helper_path()};
  argv.insert(argv.end(), args.begin(), args.end());
  return argv;
}

enter_netns::enter_netns(const std::string& name)
    : home_(::open("/proc/thread-self/ns/net", O_RDONLY | O_CLOEXEC)) {
  if (!home_) throw std::system_error(errno, std::generic_category(), "open /proc/thread-self/ns/net");
  unique_fd target(::open(("/run/netns/" + name).c_str(), O_RDONLY | O_CLOEXEC));
  if (!target) throw std::system_error(errno, std::generic_category(), "open /run/netns/" + name);
  if (::setns(target.get(), CLONE_NEWNET) != 0)
    throw std::system_error(errno, std::generic_category(), "setns " + name);
}

enter_netns::~enter_netns() {
  if (::setns(home_.get(), CLONE_NEWNET) != 0)
    ADD_FAILURE() << "setns back to the original namespace: " << std::strerror(errno);
}

}  // namespace ipckit::test
