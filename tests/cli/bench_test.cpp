// `ipckit bench`: the command runs and reports well-formed figures. It never asserts a
// speed: speed is what the benchmark prints, not what a test checks.
#include "test_support.hpp"

#include <gmock/gmock.h>
#include <nlohmann/json.hpp>

#include <set>

namespace {

using namespace std::chrono_literals;
using ipckit::test::cli_path;
using ipckit::test::run_process;

TEST(cli_bench, quick_json_run_has_every_way_with_positive_figures) {
  auto result = run_process({cli_path(), "bench", "--quick", "--json", "--only", "pipe,unix"}, "", 60s);
  ASSERT_EQ(result.exit_code, 0) << result.out << result.err;
  EXPECT_THAT(result.err, testing::HasSubstr("bench ["));  // the progress line
  auto document = nlohmann::json::parse(result.out);
  EXPECT_TRUE(document["ok"].get<bool>());
  EXPECT_EQ(document["options"]["pin"], "same");
  EXPECT_TRUE(document["options"]["quick"].get<bool>());

  std::set<std::pair<std::string, std::string>> seen;
  for (const auto& row : document["rows"]) {
    ASSERT_TRUE(row.contains("name") && row.contains("kind") && row.contains("unit") &&
                row.contains("headline") && row.contains("skipped") && row.contains("ways") &&
                row.contains("ratios"))
        << row.dump();
    seen.insert({row["name"].get<std::string>(), row["kind"].get<std::string>()});
    ASSERT_TRUE(row["skipped"].is_null()) << row.dump();
    for (const std::string way : {"raw_blocking", "raw_epoll", "asio_async", "ipckit_blocking", "ipckit_async"}) {
      ASSERT_TRUE(row["ways"].contains(way)) << way << " missing in " << row.dump();
      const auto& measured = row["ways"][way];
      ASSERT_TRUE(measured["skipped"].is_null()) << row.dump();
      ASSERT_TRUE(measured["figures"].contains(row["headline"].get<std::string>())) << row.dump();
      for (const auto& [name, value] : measured["figures"].items())
        EXPECT_GT(value.get<double>(), 0.0) << row["name"] << ' ' << way << ' ' << name;
    }
    // The low-latency way spins, so it runs only with the processes on different CPUs.
    ASSERT_TRUE(row["ways"].contains("ipckit_async_spin")) << row.dump();
    EXPECT_THAT(row["ways"]["ipckit_async_spin"]["skipped"].get<std::string>(), testing::HasSubstr("another CPU"));
    for (const std::string ratio : {"ipckit_blocking/raw_blocking", "ipckit_async/raw_epoll", "ipckit_async/asio_async"}) {
      ASSERT_TRUE(row["ratios"].contains(ratio)) << row.dump();
      EXPECT_GT(row["ratios"][ratio].get<double>(), 0.0);
    }
  }
  const std::set<std::pair<std::string, std::string>> expected{
      {"pipe", "round_trip"}, {"pipe", "throughput"}, {"unix", "round_trip"}, {"unix", "throughput"}};
  EXPECT_EQ(seen, expected);
}

// Plain Asio has no message queue: the mq rows keep the way, skipped with the reason.
TEST(cli_bench, mq_rows_skip_the_asio_way_with_a_reason) {
  auto result = run_process({cli_path(), "bench", "--quick", "--json", "--only", "mq"}, "", 60s);
  ASSERT_EQ(result.exit_code, 0) << result.out << result.err;
  auto document = nlohmann::json::parse(result.out);
  ASSERT_FALSE(document["rows"].empty());
  for (const auto& row : document["rows"]) {
    ASSERT_TRUE(row["ways"].contains("asio_async")) << row.dump();
    EXPECT_EQ(row["ways"]["asio_async"]["skipped"], "Asio has no message queue");
    EXPECT_FALSE(row["ratios"].contains("ipckit_async/asio_async")) << row.dump();
    EXPECT_TRUE(row["ways"]["ipckit_async"]["skipped"].is_null()) << row.dump();
  }
}

// Unix datagram sockets (unixgram, unixpacket) block a sender whose peer is full, so they
// stream too, in 64 KiB datagrams; udp drops instead and has only the round trip.
TEST(cli_bench, unix_datagram_networks_stream_and_udp_does_not) {
  auto result = run_process({cli_path(), "bench", "--quick", "--json", "--only", "unixgram,udp4",
                              "--iterations", "50", "--bytes", "1048576"}, "", 60s);
  ASSERT_EQ(result.exit_code, 0) << result.out << result.err;
  auto document = nlohmann::json::parse(result.out);
  std::set<std::pair<std::string, std::string>> seen;
  for (const auto& row : document["rows"]) {
    seen.insert({row["name"].get<std::string>(), row["kind"].get<std::string>()});
    if (row["kind"] == "throughput") {
      EXPECT_THAT(row["note"].get<std::string>(), testing::HasSubstr("KiB datagrams")) << row.dump();
      for (const std::string way : {"raw_blocking", "raw_epoll", "ipckit_blocking", "ipckit_async"})
        EXPECT_GT(row["ways"][way]["figures"]["rate"].get<double>(), 0.0) << row.dump();
    }
  }
  const std::set<std::pair<std::string, std::string>> expected{
      {"unixgram", "round_trip"}, {"unixgram", "throughput"}, {"udp4", "round_trip"}};
  EXPECT_EQ(seen, expected);
}

TEST(cli_bench, unknown_benchmark_name_is_a_usage_error) {
  auto result = run_process({cli_path(), "bench", "--only", "carrier-pigeon"});
  EXPECT_EQ(result.exit_code, 2);
  EXPECT_THAT(result.err, testing::HasSubstr("no benchmark \"carrier-pigeon\""));
}

TEST(cli_bench, bad_pin_mode_is_a_usage_error) {
  auto result = run_process({cli_path(), "bench", "--pin", "sideways"});
  EXPECT_EQ(result.exit_code, 2);
  EXPECT_THAT(result.err, testing::HasSubstr("--pin must be same, cross or none"));
}

}  // namespace
