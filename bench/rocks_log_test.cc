#include "bench/rocks_log.h"

#include <memory>
#include <string>

#include "absl/strings/str_cat.h"
#include "gmock/gmock.h"
#include "gtest/gtest.h"
#include "rocksdb/db.h"
#include "rocksdb/options.h"
#include "tests/status_matchers.h"
#include "tests/temp_dir.h"

namespace residency::bench {
namespace {

using ::residency::testing::StatusIs;
using ::residency::testing::TempDir;
using ::testing::HasSubstr;

class RocksLogTest : public ::testing::Test {
 protected:
  void SetUp() override {
    ASSERT_OK_AND_ASSIGN(dir_, temp_.Make("rocks_log_test"));
  }

  TempDir temp_;
  std::string dir_;
};

// The counts come from a LOG that RocksDB itself wrote, so a change in its
// event log format shows up here rather than as zeros in a scale report.
TEST_F(RocksLogTest, CountsTheFlushesAndCompactionsOfARealLog) {
  const std::string db_dir = dir_ + "/db";
  RocksLog before;
  {
    rocksdb::Options options;
    options.create_if_missing = true;
    options.disable_auto_compactions = true;
    options.compression = rocksdb::kNoCompression;
    rocksdb::DB* raw = nullptr;
    const rocksdb::Status opened = rocksdb::DB::Open(options, db_dir, &raw);
    ASSERT_TRUE(opened.ok()) << opened.ToString();
    std::unique_ptr<rocksdb::DB> db(raw);
    ASSERT_OK_AND_ASSIGN(before, ReadRocksLog(db_dir + "/LOG"));
    for (int flush = 0; flush < 3; ++flush) {
      for (int i = 0; i < 100; ++i) {
        ASSERT_TRUE(db->Put(rocksdb::WriteOptions(),
                            absl::StrCat("key-", i, "-", flush),
                            std::string(100, 'v'))
                        .ok());
      }
      ASSERT_TRUE(db->Flush(rocksdb::FlushOptions()).ok());
    }
    rocksdb::CompactRangeOptions compact;
    compact.bottommost_level_compaction =
        rocksdb::BottommostLevelCompaction::kForce;
    ASSERT_TRUE(db->CompactRange(compact, nullptr, nullptr).ok());
    ASSERT_TRUE(db->Close().ok());
  }
  ASSERT_OK_AND_ASSIGN(const RocksLog after, ReadRocksLog(db_dir + "/LOG"));
  const RocksLog step = after.Minus(before);
  EXPECT_EQ(step.flushes, 3);
  EXPECT_EQ(step.compactions, 1);
  // Three files of 100 entries of over 100 bytes went into the output.
  EXPECT_GT(step.compaction_output_bytes, 30000u);
  EXPECT_GT(step.compaction_seconds, 0);
  EXPECT_GT(step.compaction_cpu_seconds, 0);
  EXPECT_EQ(step.stalls, 0);
  // The three level-0 files became one, on the level below (the flushes
  // reported "1, 0, ...", "2, 0, ..." and "3, 0, ..." before it).
  EXPECT_EQ(after.lsm_state, "0, 1, 0, 0, 0, 0, 0");
}

TEST(RocksLogParseTest, ReadsTheFieldsOfEventLines) {
  const RocksLog log = ParseRocksLog(
      "2026/11/27-13:00:00.000001 7f00 EVENT_LOG_v1 {\"time_micros\": 1, "
      "\"event\": \"flush_finished\", \"lsm_state\": [1, 0]}\n"
      "2026/11/27-13:00:01.000001 7f00 EVENT_LOG_v1 {\"time_micros\": 2, "
      "\"event\": \"compaction_finished\", \"compaction_time_micros\": "
      "2500000, \"compaction_time_cpu_micros\": 1250000, "
      "\"total_output_size\": 4096, \"lsm_state\": [0, 2, 5]}\n"
      "2026/11/27-13:00:02.000001 7f00 EVENT_LOG_v1 {\"time_micros\": 3, "
      "\"event\": \"compaction_finished\", \"compaction_time_micros\": "
      "500000, \"total_output_size\": 1024, \"lsm_state\": [0, 0, 6]}\n"
      "2026/11/27-13:00:03.000001 7f00 [WARN] Stalling writes because we "
      "have 20 level-0 files rate 16777216\n"
      "2026/11/27-13:00:04.000001 7f00 [WARN] Stopping writes because we "
      "have 36 level-0 files\n"
      // Not event lines: mentioned, not counted.
      "2026/11/27-13:00:05.000001 7f00 note: \"event\": \"flush_finished\"\n"
      "\n");
  EXPECT_EQ(log.flushes, 1);
  EXPECT_EQ(log.compactions, 2);
  EXPECT_DOUBLE_EQ(log.compaction_seconds, 3.0);
  EXPECT_DOUBLE_EQ(log.compaction_cpu_seconds, 1.25);
  EXPECT_EQ(log.compaction_output_bytes, 5120u);
  EXPECT_EQ(log.stalls, 2);
  EXPECT_EQ(log.lsm_state, "0, 0, 6");

  const RocksLog none = ParseRocksLog("");
  EXPECT_EQ(none.flushes + none.compactions + none.stalls, 0);
  EXPECT_EQ(log.Minus(log).compactions, 0);
  EXPECT_EQ(log.Minus(none).compaction_output_bytes, 5120u);
}

TEST(RocksLogParseTest, JsonNumberIsZeroForAMissingOrMalformedValue) {
  EXPECT_DOUBLE_EQ(JsonNumber("{\"a\": 12.5, \"b\": 3}", "a"), 12.5);
  EXPECT_DOUBLE_EQ(JsonNumber("{\"a\": 12.5, \"b\": 3}", "b"), 3);
  EXPECT_DOUBLE_EQ(JsonNumber("{\"a\": 12.5}", "c"), 0);
  EXPECT_DOUBLE_EQ(JsonNumber("{\"a\": \"x\"}", "a"), 0);
  EXPECT_DOUBLE_EQ(JsonNumber("{\"a\": 1.2.3}", "a"), 0);
  // A key that is only the end of another key's name does not match.
  EXPECT_DOUBLE_EQ(JsonNumber("{\"xa\": 7}", "a"), 0);
}

TEST_F(RocksLogTest, AMissingFileIsAnErrorNotAQuietLog) {
  EXPECT_THAT(ReadRocksLog(dir_ + "/no-such-LOG"),
              StatusIs(absl::StatusCode::kNotFound, HasSubstr("no-such-LOG")));
}

}  // namespace
}  // namespace residency::bench
