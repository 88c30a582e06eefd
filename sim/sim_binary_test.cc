// The sim binary as a user meets it: exit codes and what it prints.
#include <filesystem>
#include <fstream>
#include <string>

#include "absl/strings/str_replace.h"
#include "gmock/gmock.h"
#include "gtest/gtest.h"
#include "rpc/process.h"
#include "sim/scenario.h"
#include "tests/status_matchers.h"
#include "tests/temp_dir.h"

namespace residency::sim {
namespace {

using ::residency::testing::TempDir;

using ::residency::process::ProcessResult;
using ::residency::process::RunProcess;
using ::testing::HasSubstr;

class SimBinaryTest : public ::testing::Test {
 protected:
  void SetUp() override {
    ASSERT_OK_AND_ASSIGN(dir_, temp_.Make("sim_binary_test"));
  }

  ProcessResult Sim(const std::vector<std::string>& args) {
    absl::StatusOr<ProcessResult> result =
        RunProcess(SIM_BINARY, args, absl::Seconds(120));
    EXPECT_OK(result.status());
    return result.ok() ? *result : ProcessResult{};
  }

  std::string Builtin(const std::string& name) {
    for (const BuiltinScenario& b : BuiltinScenarios()) {
      if (b.name == name) return b.text;
    }
    return "";
  }

  TempDir temp_;
  std::string dir_;
};

TEST_F(SimBinaryTest, ListsEveryBuiltinOnePerLine) {
  ProcessResult r = Sim({"--list"});
  EXPECT_EQ(r.exit_code, 0);
  for (const BuiltinScenario& b : BuiltinScenarios()) {
    EXPECT_THAT(r.out, HasSubstr(b.name + "\t")) << b.name;
  }
}

TEST_F(SimBinaryTest, MetExpectationsExitZero) {
  ProcessResult r = Sim({"--scenario=gov_request", "--quiet"});
  EXPECT_EQ(r.exit_code, 0) << r.err;
  EXPECT_THAT(r.out, HasSubstr("All expectations met."));
}

TEST_F(SimBinaryTest, ViolatedExpectationExitsOneAndIsNamed) {
  // gov_request expecting the CN authority to read everything: false.
  const std::string path = dir_ + "/wrong.textproto";
  std::ofstream(path) << absl::StrReplaceAll(
      Builtin("gov_request"),
      {{"name: \"no plaintext reaches the CN authority\"",
        "name: \"the authority reads the target\""},
       {"metric: \"plaintext_bytes{actor=authority/cn}\"\n  op: EQ",
        "metric: \"plaintext_bytes{actor=authority/cn}\"\n  op: GT"}});
  ProcessResult r = Sim({"--scenario_file=" + path, "--quiet"});
  EXPECT_EQ(r.exit_code, 1) << r.err;
  EXPECT_THAT(r.out, HasSubstr("[FAIL] the authority reads the target"));
  EXPECT_THAT(r.out, HasSubstr("1 expectation(s) failed."));
}

TEST_F(SimBinaryTest, UsageErrorsExitTwo) {
  ProcessResult unknown = Sim({"--scenario=gov_reqest"});
  EXPECT_EQ(unknown.exit_code, 2);
  EXPECT_THAT(unknown.err, HasSubstr("known: "));
  ProcessResult flag = Sim({"--scenari=gov_request"});
  EXPECT_EQ(flag.exit_code, 2);
  EXPECT_THAT(flag.err, HasSubstr("unknown flag --scenari"));
  ProcessResult neither = Sim({});
  EXPECT_EQ(neither.exit_code, 2);
  const std::string path = dir_ + "/broken.textproto";
  std::ofstream(path) << "name: \"x\"\nworld {\n  jurisdictons: \"CN\"\n}\n";
  ProcessResult broken = Sim({"--scenario_file=" + path});
  EXPECT_EQ(broken.exit_code, 2);
  EXPECT_THAT(broken.err, HasSubstr("broken.textproto:3:3:"));
  // The error names the file as given, escaped for the terminal.
  const std::string odd = dir_ + "/odd\x1b[2J.textproto";
  std::ofstream(odd) << "name: \"x\"\nworld {\n  jurisdictons: \"CN\"\n}\n";
  ProcessResult escaped = Sim({"--scenario_file=" + odd});
  EXPECT_EQ(escaped.exit_code, 2);
  EXPECT_THAT(escaped.err, HasSubstr("/odd\\x1b[2J.textproto:3:3:"));
  EXPECT_THAT(escaped.err, Not(HasSubstr("\x1b")));
}

TEST_F(SimBinaryTest, HelpDocumentsTheFlags) {
  ProcessResult r = Sim({"--help"});
  for (const char* flag :
       {"--scenario", "--scenario_file", "--list", "--report", "--out",
        "--seed", "--compare", "--spawn", "--topology"}) {
    EXPECT_THAT(r.out + r.err, HasSubstr(flag)) << flag;
  }
}

}  // namespace
}  // namespace residency::sim
