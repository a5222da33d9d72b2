#include "test_support.hpp"

#include <gmock/gmock.h>
#include <nlohmann/json.hpp>

namespace {

using ipckit::test::cli_path;
using ipckit::test::run_process;

TEST(cli_tour, every_row_that_ran_passed_and_json_says_so) {
  auto result = run_process({cli_path(), "tour", "--json"});
  ASSERT_EQ(result.exit_code, 0) << result.out << result.err;
  auto document = nlohmann::json::parse(result.out);
  EXPECT_TRUE(document["ok"].get<bool>());
  int ran = 0;
  for (const auto& row : document["rows"]) {
    ASSERT_TRUE(row.contains("method") && row.contains("ok") && row.contains("skipped") &&
                row.contains("round_trip_us") && row.contains("detail"));
    if (row["skipped"].is_null()) {
      ++ran;
      EXPECT_TRUE(row["ok"].get<bool>()) << row.dump();
      EXPECT_GT(row["round_trip_us"].get<double>(), 0.0) << row.dump();
    } else {
      EXPECT_FALSE(row["ok"].get<bool>());
      EXPECT_FALSE(row["skipped"].get<std::string>().empty());
    }
  }
  EXPECT_GE(ran, 3);  // the core's rows at least
}

TEST(cli_tour, table_names_each_method) {
  auto result = run_process({cli_path(), "tour"});
  ASSERT_EQ(result.exit_code, 0) << result.err;
  EXPECT_THAT(result.out, testing::HasSubstr("child process"));
  EXPECT_THAT(result.out, testing::HasSubstr("every row that ran passed"));
}

}  // namespace
