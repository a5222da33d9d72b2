// Two fresh network namespaces joined by a veth pair, for tests of networks between
// hosts. Everything is made with `ip` (iproute2) and removed by the destructor, so a
// failing test leaves no namespace behind.
//
//   namespace A: lo, veth "va"  198.18.0.1/24  fd00:1985::1/64
//   namespace B: lo, veth "vb"  198.18.0.2/24  fd00:1985::2/64
//
// 198.18.0.0/15 (RFC 2544 benchmarking) and fd00::/8 (ULA) are not routed anywhere, and
// the namespaces have no default route: their traffic stays on the veth. In A the
// "dark" addresses 198.18.0.3 and fd00:1985::3 have permanent neighbour entries for a
// MAC no one owns, so packets to them go out and are dropped by B (a SYN that is never
// answered, without netem).
#pragma once

#include "test_support.hpp"

#include <ipckit/unique_fd.hpp>

#include <optional>
#include <string>
#include <vector>

namespace ipckit::test {

struct netns_addresses {
  static constexpr const char* a4 = "198.18.0.1";
  static constexpr const char* b4 = "198.18.0.2";
  static constexpr const char* dark4 = "198.18.0.3";
  static constexpr const char* a6 = "fd00:1985::1";
  static constexpr const char* b6 = "fd00:1985::2";
  static constexpr const char* dark6 = "fd00:1985::3";
};

class netns_pair : public netns_addresses {
 public:
  /// Creates both namespaces and the veth; on failure removes what it made and returns
  /// nullopt with `why` saying what failed (for GTEST_SKIP).
  static std::optional<netns_pair> create(std::string& why);
  netns_pair(netns_pair&& other) noexcept;
  netns_pair& operator=(netns_pair&&) = delete;
  ~netns_pair();

  const std::string& a() const { return names_[0]; }
  const std::string& b() const { return names_[1]; }

  /// Runs `ip -n NS ARGS…` / any program inside NS (`ip netns exec NS ARGS…`).
  process_result ip(const std::string& ns, const std::vector<std::string>& args) const;
  process_result exec(const std::string& ns, const std::vector<std::string>& argv) const;

  /// Adds a netem qdisc on NS's veth (egress): "delay 100ms", "loss 100%". Returns
  /// false with `why` set when netem is not available here.
  bool netem(const std::string& ns, const std::vector<std::string>& args, std::string& why) const;

  /// Drops `percent`% of the packets A sends to B, at random: netem loss on A's veth,
  /// or where the kernel has no netem, an nftables rule on B's veth ingress (the same
  /// loss as seen from either end). `how` says which was used, or why neither was.
  bool lose_from_a(int percent, std::string& how) const;

  /// Adds an nftables rule on B's veth ingress (a netdev table): "meta protocol ip6 drop"
  /// drops every IPv6 packet A sends. False with `why` when nft cannot do it here.
  bool filter_at_b(const std::string& rule, std::string& why) const;

  /// The helper child started inside NS (`ip netns exec NS ipckit_helper ARGS…`).
  std::vector<std::string> helper_argv(const std::string& ns, const std::vector<std::string>& args) const;

 private:
  netns_pair() = default;
  std::vector<std::string> names_;  ///< the namespaces made so far, deleted at the end
};

/// Moves the calling thread into a named namespace and back at scope exit; sockets
/// created in between belong to that namespace for their whole life.
class enter_netns {
 public:
  explicit enter_netns(const std::string& name);
  enter_netns(const enter_netns&) = delete;
  enter_netns& operator=(const enter_netns&) = delete;
  ~enter_netns();

 private:
  unique_fd home_;
};

}  // namespace ipckit::test
