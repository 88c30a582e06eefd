// Every built-in scenario runs end to end against real in-process services
// and meets its expectations; a violated expectation is reported as such.
#include <filesystem>
#include <map>
#include <sstream>
#include <string>

#include "gmock/gmock.h"
#include "gtest/gtest.h"
#include "sim/engine.h"
#include "sim/scenario.h"
#include "tests/status_matchers.h"

namespace residency::sim {
namespace {

using ::testing::HasSubstr;

class ScenarioRunTest : public ::testing::TestWithParam<std::string> {
 protected:
  void SetUp() override {
    char tmpl[] = "/tmp/sim_test.XXXXXX";
    ASSERT_NE(mkdtemp(tmpl), nullptr);
    dir_ = tmpl;
  }
  void TearDown() override { std::filesystem::remove_all(dir_); }

  absl::StatusOr<Report> RunScenarioNamed(const std::string& name,
                                          uint64_t seed = 0) {
    absl::StatusOr<v1::Scenario> scenario = LoadBuiltinScenario(name);
    if (!scenario.ok()) return scenario.status();
    RunOptions options;
    options.work_dir = dir_ + "/" + std::to_string(runs_++);
    std::filesystem::create_directories(options.work_dir);
    options.seed = seed;
    return RunScenario(*scenario, options);
  }

  std::string dir_;
  int runs_ = 0;
};

TEST_P(ScenarioRunTest, MeetsItsExpectations) {
  ASSERT_OK_AND_ASSIGN(Report report, RunScenarioNamed(GetParam()));
  std::ostringstream text;
  WriteTextReport(report, text);
  ASSERT_FALSE(report.expectations.empty());
  for (const ExpectationResult& e : report.expectations) {
    EXPECT_TRUE(e.passed) << e.expectation.name() << "\n" << text.str();
  }
}

std::vector<std::string> BuiltinNames() {
  std::vector<std::string> names;
  for (const BuiltinScenario& b : BuiltinScenarios()) names.push_back(b.name);
  return names;
}

INSTANTIATE_TEST_SUITE_P(Builtins, ScenarioRunTest,
                         ::testing::ValuesIn(BuiltinNames()),
                         [](const auto& info) { return info.param; });

// Exposure and holdings, without timing figures.
std::map<std::string, double> ExposureFigures(const Report& report) {
  std::map<std::string, double> figures;
  for (const auto& [name, value] : report.Metrics()) {
    if (name.find("_ms{") != std::string::npos) continue;
    figures[name] = value;
  }
  return figures;
}

TEST_F(ScenarioRunTest, SameSeedSameExposureFigures) {
  ASSERT_OK_AND_ASSIGN(Report first, RunScenarioNamed("key_relocation", 77));
  ASSERT_OK_AND_ASSIGN(Report second, RunScenarioNamed("key_relocation", 77));
  EXPECT_EQ(ExposureFigures(first), ExposureFigures(second));
  EXPECT_GT(first.Metrics().at("plaintext_bytes{actor=authority/cn}"), 0);
  // Another seed draws other objects.
  ASSERT_OK_AND_ASSIGN(Report other, RunScenarioNamed("key_relocation", 78));
  EXPECT_NE(first.Metrics().at("stored_bytes"),
            other.Metrics().at("stored_bytes"));
}

TEST(ReportTest, ViolatedExpectationFailsAndIsNamed) {
  Report report;
  report.user_bytes["user-1"] = 100;
  report.actors["authority/cn"].plaintext_bytes = 100;
  report.exposed["authority/cn"]["user-1"] = 100;
  v1::Scenario scenario;
  auto* e = scenario.add_expectations();
  e->set_name("nothing leaks");
  e->set_metric("plaintext_bytes{actor=authority/cn}");
  e->set_op(v1::Expectation::EQ);
  e->set_value(0);
  auto* missing = scenario.add_expectations();
  missing->set_name("typo");
  missing->set_metric("plaintext_byte{actor=authority/cn}");
  missing->set_op(v1::Expectation::EQ);
  EXPECT_FALSE(report.Check(scenario.expectations()));
  ASSERT_EQ(report.expectations.size(), 2u);
  EXPECT_FALSE(report.expectations[0].passed);
  EXPECT_EQ(report.expectations[0].actual, 100);
  // A metric that does not exist fails rather than passing silently.
  EXPECT_FALSE(report.expectations[1].found);
  EXPECT_FALSE(report.expectations[1].passed);
  std::ostringstream text;
  WriteTextReport(report, text);
  EXPECT_THAT(text.str(), HasSubstr("[FAIL] nothing leaks"));
  EXPECT_THAT(text.str(), HasSubstr("no such metric"));
  EXPECT_EQ(report.Metrics().at("exposure_max{actor=authority/cn}"), 1.0);
}

}  // namespace
}  // namespace residency::sim
