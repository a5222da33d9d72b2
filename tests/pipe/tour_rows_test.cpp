#include "test_support.hpp"

#include <nlohmann/json.hpp>

namespace {

TEST(pipe_tour, anonymous_pipe_and_fifo_rows_run_and_pass) {
  auto result = ipckit::test::run_process({ipckit::test::cli_path(), "tour", "--json"});
  ASSERT_EQ(result.exit_code, 0) << result.out << result.err;
  const auto document = nlohmann::json::parse(result.out);
  int found = 0;
  for (const auto& row : document["rows"]) {
    const auto method = row["method"].get<std::string>();
    if (method != "anonymous pipe" && method != "fifo") continue;
    ++found;
    EXPECT_TRUE(row["skipped"].is_null()) << row.dump();
    EXPECT_TRUE(row["ok"].get<bool>()) << row.dump();
    EXPECT_GT(row["round_trip_us"].get<double>(), 0.0) << row.dump();
  }
  EXPECT_EQ(found, 2);
}

}  // namespace
