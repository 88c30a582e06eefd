// The MIXED workload through the engine: timelines, per-phase operation
// names, and the data-key cache override reaching the users' clients.
#include <google/protobuf/text_format.h>

#include <filesystem>
#include <map>
#include <sstream>
#include <string>

#include "gmock/gmock.h"
#include "gtest/gtest.h"
#include "sim/engine.h"
#include "sim/scenario.h"
#include "sim/world.h"
#include "tests/status_matchers.h"
#include "tests/temp_dir.h"

namespace residency::sim {
namespace {

using ::residency::testing::TempDir;

constexpr char kUnwrap[] = "/residency.v1.KeyService/Unwrap";

class MixedTest : public ::testing::Test {
 protected:
  void SetUp() override {
    ASSERT_OK_AND_ASSIGN(dir_, temp_.Make("mixed_test"));
    // The 2014 world of network_tap: users in CN, keys across the CN-US
    // link; smaller, and with phases of each test's own.
    ASSERT_OK_AND_ASSIGN(scenario_, LoadBuiltinScenario("network_tap"));
    scenario_.mutable_population()->set_users(2);
    scenario_.mutable_population()->set_objects_per_user(3);
    scenario_.mutable_population()->set_max_bytes(8192);
    scenario_.clear_phases();
    scenario_.clear_expectations();
  }

  void AddPhase(const std::string& text) {
    ASSERT_TRUE(google::protobuf::TextFormat::ParseFromString(
        text, scenario_.add_phases()))
        << text;
  }

  absl::StatusOr<Report> Run() {
    RunOptions options;
    options.work_dir = dir_ + "/" + std::to_string(runs_++);
    std::filesystem::create_directories(options.work_dir);
    return RunScenario(scenario_, options);
  }

  TempDir temp_;
  std::string dir_;
  int runs_ = 0;
  v1::Scenario scenario_;
};

double Ops(const Report& report, const std::string& op) {
  const std::map<std::string, double> m = report.Metrics();
  return m.at("ok{op=" + op + "}") + m.at("errors{op=" + op + "}");
}

TEST_F(MixedTest, EveryOperationLandsInATimelineBucket) {
  AddPhase(R"pb(name: "store"
                workload { kind: PUT_ALL concurrency: 2 })pb");
  AddPhase(R"pb(name: "busy"
                workload { kind: MIXED duration_ms: 1000 concurrency: 2 })pb");
  ASSERT_OK_AND_ASSIGN(Report report, Run());

  ASSERT_EQ(report.timelines.size(), 1u);
  const Timeline& t = report.timelines[0];
  EXPECT_EQ(t.phase, "busy");
  EXPECT_EQ(t.get_op, "get@busy");
  EXPECT_EQ(t.put_op, "put@busy");
  EXPECT_GT(t.start_ms, 0);
  ASSERT_EQ(t.buckets.size(), 4u);  // 1000 ms of 250 ms buckets
  uint64_t gets = 0, puts = 0, failed = 0;
  for (const TimelineBucket& b : t.buckets) {
    gets += b.get_ok + b.get_failed;
    puts += b.put_ok + b.put_failed;
    failed += b.get_failed + b.put_failed;
    EXPECT_FALSE(b.partitioned);
  }
  // Both users start at once.
  const TimelineBucket& first = t.buckets[0];
  EXPECT_GT(first.get_ok + first.put_ok, 0u);
  EXPECT_GT(gets, 0u);
  EXPECT_GT(puts, 0u);
  EXPECT_EQ(failed, 0u);
  EXPECT_EQ(gets, Ops(report, "get@busy"));
  EXPECT_EQ(puts, Ops(report, "put@busy"));
  // Reads outnumber writes (80%), over a few dozen operations.
  EXPECT_GT(gets, puts);
  const std::map<std::string, double> m = report.Metrics();
  EXPECT_EQ(m.at("availability_outside_partition{op=get@busy}"), 1);
  EXPECT_EQ(m.count("availability_during_partition{op=get@busy}"), 0u);
  EXPECT_EQ(m.at("wrong_plaintext"), 0);
  // The generic operations are PUT_ALL's only.
  EXPECT_EQ(m.count("ok{op=get}"), 0u);
  std::ostringstream text;
  WriteTextReport(report, text);
  EXPECT_THAT(text.str(), ::testing::HasSubstr("Availability over time"));
  EXPECT_THAT(text.str(),
              ::testing::ContainsRegex("busy +at +[0-9.]+ s get [#.]{4}\n"));
}

TEST_F(MixedTest, TheCacheOverrideSavesUnwrapsAcrossTheBorder) {
  AddPhase(R"pb(name: "store"
                workload { kind: PUT_ALL concurrency: 2 })pb");
  AddPhase(R"pb(name: "tap-plain"
                tap { a: "CN" b: "US" })pb");
  AddPhase(R"pb(name: "plain"
                workload { kind: MIXED duration_ms: 1000 concurrency: 2 })pb");
  AddPhase(R"pb(name: "tap-cached"
                tap { a: "CN" b: "US" })pb");
  AddPhase(R"pb(name: "cached"
                workload {
                  kind: MIXED
                  duration_ms: 1000
                  concurrency: 2
                  data_key_cache: 64
                })pb");
  ASSERT_OK_AND_ASSIGN(Report report, Run());
  ASSERT_EQ(report.taps.size(), 2u);
  const std::map<std::string, double> m = report.Metrics();
  const double plain_reads = m.at("ok{op=get@plain}");
  const double cached_reads = m.at("ok{op=get@cached}");
  ASSERT_GT(plain_reads, 0);
  ASSERT_GT(cached_reads, 0);
  // Without a cache every read asks the custodian; with one, only the
  // first read of each object version does (at most 3 objects per user
  // plus the versions written in the phase).
  const auto unwraps = [&](size_t tap) -> double {
    auto it = report.taps[tap].methods.find(kUnwrap);
    return it == report.taps[tap].methods.end() ? 0 : it->second.calls;
  };
  EXPECT_EQ(unwraps(0), plain_reads);
  EXPECT_LE(unwraps(1), 2 * 3 + m.at("ok{op=put@cached}"));
  EXPECT_LT(unwraps(1), cached_reads);
}

TEST(WorldCacheTest, ClientsAreKeptPerNodeAndCacheSize) {
  TempDir temp;
  ASSERT_OK_AND_ASSIGN(const std::string dir, temp.Make("world_cache_test"));
  ASSERT_OK_AND_ASSIGN(v1::Scenario scenario,
                       LoadBuiltinScenario("network_tap"));
  scenario.mutable_population()->set_users(1);
  scenario.mutable_population()->set_data_key_cache(8);
  {
    ASSERT_OK_AND_ASSIGN(std::unique_ptr<World> world,
                         World::Start(scenario, dir, /*seed=*/1));
    User& user = world->users()[0];
    ASSERT_OK_AND_ASSIGN(client::Client * population, world->ClientFor(user));
    EXPECT_EQ(population->options().cache.max_entries, 8u);
    ASSERT_OK_AND_ASSIGN(client::Client * bigger,
                         world->ClientFor(user, "", 64));
    EXPECT_NE(bigger, population);
    EXPECT_EQ(bigger->options().cache.max_entries, 64u);
    // The same size is the same client, however it is asked for.
    ASSERT_OK_AND_ASSIGN(client::Client * again,
                         world->ClientFor(user, "cn-node", 64));
    EXPECT_EQ(again, bigger);
    ASSERT_OK_AND_ASSIGN(client::Client * explicit_population,
                         world->ClientFor(user, "cn-node", 8));
    EXPECT_EQ(explicit_population, population);
  }
}

}  // namespace
}  // namespace residency::sim
