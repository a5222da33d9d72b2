// Happy Eyeballs between two network namespaces: a name (answered by the dialer's
// resolver hook) that has an address of each family, where one family's SYN is never
// answered (a neighbour no one owns), is refused, or both answer.
#include "netns_test_util.hpp"

namespace {

namespace net = ipckit::net;
using ipckit::error_code;
using ipckit::test::enter_netns;
using ipckit::test::netns_addresses;
using ipckit::test::netns_test;
using ipckit::test::port_of;
using namespace std::chrono_literals;

net::dialer resolving_to(std::vector<std::string> answer) {
  net::dialer d;
  d.resolver = [answer](std::string_view, int, error_code& ec) {
    std::vector<net::address> list;
    for (const auto& a : answer) list.push_back(net::resolve_address("tcp", a, ec));
    return list;
  };
  return d;
}

class netns_happy_eyeballs_test : public netns_test {
 protected:
  void SetUp() override {
    netns_test::SetUp();
    if (IsSkipped()) return;
    // One dual-stack listener in B: the same port on both families.
    echo_ = echo_in_b("tcp", "[::]:0", listening_);
    ASSERT_FALSE(listening_.empty());
    port_ = port_of(listening_);
  }
  void TearDown() override { echo_.reset(); }

  std::string at(const char* host) const { return net::join_host_port(host, port_); }

  std::unique_ptr<ipckit::test::peer_process> echo_;
  std::string listening_, port_;
};

struct race_case {
  const char* name;
  const char* first;   ///< the resolver's first address (the primary family)
  const char* second;  ///< the fallback
  const char* winner;
  bool waits_for_fallback_delay;
};

class netns_race_test : public netns_happy_eyeballs_test,
                        public ::testing::WithParamInterface<race_case> {};

TEST_P(netns_race_test, dial_a_name_with_both_families) {
  const auto& param = GetParam();
  enter_netns in_a(ns().a());
  net::dialer d = resolving_to({at(param.first), at(param.second)});
  d.timeout = 10s;
  // Default (300 ms) where the fallback must start; 5 s where it must not be needed, so
  // that waiting for it would show plainly even on a slow machine.
  if (!param.waits_for_fallback_delay) d.fallback_delay = 5s;
  const auto start = std::chrono::steady_clock::now();
  std::optional<error_code> got;
  std::optional<net::conn> conn;
  d.async_dial(ex, "tcp", "both.test:" + port_, [&](error_code ec, net::conn c) {
    got = ec;
    conn.emplace(std::move(c));
  });
  ASSERT_TRUE(ipckit::test::run_until(io, [&] { return got.has_value(); }, 15s));
  const auto took = std::chrono::steady_clock::now() - start;
  ASSERT_FALSE(*got) << got->message();
  EXPECT_EQ(conn->remote_address().to_string(), at(param.winner));
  if (param.waits_for_fallback_delay) {
    EXPECT_GE(took, 290ms) << "the fallback starts after the 300 ms fallback delay";
    EXPECT_LT(took, 5s);
  } else {
    EXPECT_LT(took, 2500ms) << "the first family answered: no wait for the 5 s fallback delay";
  }
}

INSTANTIATE_TEST_SUITE_P(
    cases, netns_race_test,
    ::testing::Values(
        race_case{"v6_unanswered_falls_back_to_v4", netns_addresses::dark6, netns_addresses::b4,
                  netns_addresses::b4, true},
        race_case{"v4_unanswered_falls_back_to_v6", netns_addresses::dark4, netns_addresses::b6,
                  netns_addresses::b6, true},
        race_case{"v6_first_wins_when_both_answer", netns_addresses::b6, netns_addresses::b4,
                  netns_addresses::b6, false},
        race_case{"v4_first_wins_when_both_answer", netns_addresses::b4, netns_addresses::b6,
                  netns_addresses::b4, false}),
    [](const auto& info) { return std::string(info.param.name); });

// B's real addresses, but B drops every packet of one family (an nftables rule on its
// veth): the host is up and one of its families is broken, as with a bad IPv6 setup.
struct dropped_family_case {
  const char* name;
  const char* rule;
  const char* first;
  const char* second;
};

class netns_dropped_family_test : public netns_happy_eyeballs_test,
                                  public ::testing::WithParamInterface<dropped_family_case> {};

TEST_P(netns_dropped_family_test, the_dial_falls_back_to_the_family_that_works) {
  const auto& param = GetParam();
  std::string why;
  if (!ns().filter_at_b(param.rule, why)) GTEST_SKIP() << why;
  enter_netns in_a(ns().a());
  net::dialer d = resolving_to({at(param.first), at(param.second)});
  d.timeout = 10s;
  const auto start = std::chrono::steady_clock::now();
  net::conn c = d.dial(ex, "tcp", "both.test:" + port_);
  const auto took = std::chrono::steady_clock::now() - start;
  EXPECT_EQ(c.remote_address().to_string(), at(param.second));
  EXPECT_GE(took, 290ms) << "the fallback starts after the 300 ms fallback delay";
  EXPECT_LT(took, 5s);
}

INSTANTIATE_TEST_SUITE_P(
    cases, netns_dropped_family_test,
    ::testing::Values(dropped_family_case{"ipv6_dropped", "meta protocol ip6 drop", netns_addresses::b6,
                                          netns_addresses::b4},
                      dropped_family_case{"ipv4_dropped", "meta protocol ip drop", netns_addresses::b4,
                                          netns_addresses::b6}),
    [](const auto& info) { return std::string(info.param.name); });

TEST_F(netns_happy_eyeballs_test, refused_primary_starts_the_fallback_at_once) {
  enter_netns in_a(ns().a());
  // B answers the v6 SYN with a RST (nothing on port 1), so v4 need not wait 5 s.
  net::dialer d = resolving_to({net::join_host_port(netns_addresses::b6, "1"), at(netns_addresses::b4)});
  d.fallback_delay = 5s;
  const auto start = std::chrono::steady_clock::now();
  net::conn c = d.dial(ex, "tcp", "both.test:" + port_);
  EXPECT_LT(std::chrono::steady_clock::now() - start, 2s);
  EXPECT_EQ(c.remote_address().to_string(), at(netns_addresses::b4));
}

TEST_F(netns_happy_eyeballs_test, both_families_unanswered_time_out) {
  enter_netns in_a(ns().a());
  net::dialer d = resolving_to({at(netns_addresses::dark6), at(netns_addresses::dark4)});
  d.timeout = 700ms;
  const auto start = std::chrono::steady_clock::now();
  error_code ec;
  net::conn c = d.dial(ex, "tcp", "both.test:" + port_, ec);
  const auto took = std::chrono::steady_clock::now() - start;
  EXPECT_EQ(ec, ipckit::errc::timeout) << ec.message();
  EXPECT_FALSE(c.is_open());
  EXPECT_GE(took, 690ms);
  EXPECT_LT(took, 5s);
}

}  // namespace
