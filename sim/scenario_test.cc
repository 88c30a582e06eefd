#include "sim/scenario.h"

#include <string>

#include "absl/strings/str_replace.h"
#include "gmock/gmock.h"
#include "gtest/gtest.h"
#include "tests/status_matchers.h"

namespace residency::sim {
namespace {

using ::residency::testing::StatusIs;
using ::testing::HasSubstr;

std::string GovRequest() {
  for (const BuiltinScenario& b : BuiltinScenarios()) {
    if (b.name == "gov_request") return b.text;
  }
  ADD_FAILURE() << "gov_request is not built in";
  return "";
}

TEST(ScenarioTest, EveryBuiltinParsesAndIsNamedAfterItsFile) {
  ASSERT_FALSE(BuiltinScenarios().empty());
  for (const BuiltinScenario& b : BuiltinScenarios()) {
    ASSERT_OK_AND_ASSIGN(v1::Scenario s, LoadBuiltinScenario(b.name));
    EXPECT_EQ(s.name(), b.name);
    EXPECT_FALSE(s.title().empty()) << b.name;
    EXPECT_FALSE(s.expectations().empty()) << b.name;
  }
}

TEST(ScenarioTest, UnknownBuiltinListsTheKnownOnes) {
  EXPECT_THAT(LoadBuiltinScenario("gov_reqest"),
              StatusIs(absl::StatusCode::kNotFound,
                       AllOf(HasSubstr("gov_reqest"), HasSubstr("known: "),
                             HasSubstr("gov_request"))));
}

TEST(ScenarioTest, SyntaxErrorNamesLineAndColumn) {
  EXPECT_THAT(ParseScenario("name: \"x\"\nworld {\n  jurisdictons: \"CN\"\n}\n",
                            "scenario file bad.textproto"),
              StatusIs(absl::StatusCode::kInvalidArgument,
                       AllOf(HasSubstr("bad.textproto:3:3:"),
                             HasSubstr("jurisdictons"))));
}

TEST(ScenarioTest, UnknownNamesAreRefusedNamingTheField) {
  const std::string text = GovRequest();
  EXPECT_THAT(
      ParseScenario(absl::StrReplaceAll(text, {{"storage_node: \"cn-node\"",
                                                "storage_node: \"cn-nod\""}}),
                    "s"),
      StatusIs(
          absl::StatusCode::kInvalidArgument,
          AllOf(HasSubstr("population.storage_node"), HasSubstr("cn-nod"))));
  EXPECT_THAT(ParseScenario(absl::StrReplaceAll(
                                text, {{"jurisdiction: \"CN\"\n    target",
                                        "jurisdiction: \"RU\"\n    target"}}),
                            "s"),
              StatusIs(absl::StatusCode::kInvalidArgument,
                       AllOf(HasSubstr("phases[2].compulsion.jurisdiction"),
                             HasSubstr("RU"))));
}

TEST(ScenarioTest, PolicyOfAnotherJurisdictionIsRefused) {
  EXPECT_THAT(ParseScenario(
                  absl::StrReplaceAll(
                      GovRequest(), {{"policy {\n      jurisdiction: \"US\"",
                                      "policy {\n      jurisdiction: \"CN\""}}),
                  "s"),
              StatusIs(absl::StatusCode::kInvalidArgument,
                       HasSubstr("world.key_services[0].policy.jurisdiction")));
}

TEST(ScenarioTest, InvalidPolicyIsRefused) {
  EXPECT_THAT(ParseScenario(absl::StrReplaceAll(GovRequest(),
                                                {{"residency://authority/us",
                                                  "residency://custodian/us"}}),
                            "s"),
              StatusIs(absl::StatusCode::kInvalidArgument,
                       HasSubstr("world.key_services[0].policy")));
}

TEST(ScenarioTest, PopulationMustBeUsable) {
  EXPECT_THAT(
      ParseScenario(
          absl::StrReplaceAll(GovRequest(), {{"users: 4", "users: 0"}}), "s"),
      StatusIs(absl::StatusCode::kInvalidArgument,
               HasSubstr("population.users")));
  EXPECT_THAT(ParseScenario(
                  absl::StrReplaceAll(
                      GovRequest(), {{"min_bytes: 1024", "min_bytes: 999999"}}),
                  "s"),
              StatusIs(absl::StatusCode::kInvalidArgument,
                       HasSubstr("population.min_bytes")));
  EXPECT_THAT(ParseScenario(
                  absl::StrReplaceAll(GovRequest(), {{"CUSTODY_MODE_CUSTODIAN",
                                                      "CUSTODY_MODE_SPLIT"}}),
                  "s"),
              StatusIs(absl::StatusCode::kInvalidArgument,
                       HasSubstr("population.key_services")));
}

TEST(ScenarioTest, ExpectationNeedsAnOperator) {
  EXPECT_THAT(ParseScenario(
                  absl::StrReplaceAll(GovRequest(), {{"  op: GT\n", ""}}), "s"),
              StatusIs(absl::StatusCode::kInvalidArgument,
                       HasSubstr("expectations[0].op")));
}

TEST(ScenarioTest, TapNeedsALink) {
  const std::string text =
      GovRequest() + "phases { name: \"tap\" tap { a: \"CN\" b: \"US\" } }\n";
  EXPECT_OK(ParseScenario(text, "s").status());
  EXPECT_THAT(
      ParseScenario(absl::StrReplaceAll(
                        text, {{"  links { a: \"CN\" b: \"US\" latency_ms: 40 "
                                "jitter_ms: 10 }\n",
                                ""}}),
                    "s"),
      StatusIs(absl::StatusCode::kInvalidArgument,
               AllOf(HasSubstr("phases[3].tap"), HasSubstr("CN-US"))));
}

// A partition window on gov_request's CN-US link.
std::string WithWindow(const std::string& window) {
  return absl::StrReplaceAll(
      GovRequest(),
      {{"links { a: \"CN\" b: \"US\" latency_ms: 40 jitter_ms: 10 }",
        "links { a: \"CN\" b: \"US\" latency_ms: 40 jitter_ms: 10 "
        "partitions { " +
            window + " } }"}});
}

TEST(ScenarioTest, PartitionWindowsAreChecked) {
  ASSERT_NE(WithWindow("x"), GovRequest());
  EXPECT_OK(ParseScenario(WithWindow("start_ms: 100 end_ms: 200"), "s"));
  EXPECT_OK(ParseScenario(
      WithWindow("phase: \"read-back\" start_ms: 0 end_ms: 200"), "s"));
  EXPECT_THAT(ParseScenario(WithWindow("start_ms: 200 end_ms: 200"), "s"),
              StatusIs(absl::StatusCode::kInvalidArgument,
                       AllOf(HasSubstr("world.links[0].partitions"),
                             HasSubstr("ends before it starts"))));
  EXPECT_THAT(
      ParseScenario(WithWindow("phase: \"readback\" start_ms: 0 end_ms: 200"),
                    "s"),
      StatusIs(absl::StatusCode::kInvalidArgument,
               AllOf(HasSubstr("world.links[0].partitions"),
                     HasSubstr("\"readback\""))));
}

TEST(ScenarioTest, RadosNodesAreChecked) {
  const std::string node =
      "storage_nodes { name: \"cn-node\" jurisdiction: \"CN\" operator: "
      "\"cn-telecom\" }";
  ASSERT_NE(GovRequest().find(node), std::string::npos);
  auto with = [&](const std::string& extra) {
    return absl::StrReplaceAll(
        GovRequest(),
        {{node,
          "storage_nodes { name: \"cn-node\" jurisdiction: \"CN\" "
          "operator: \"cn-telecom\" " +
              extra + " }"}});
  };
  EXPECT_OK(ParseScenario(with("store: STORE_RADOS gateways: 3"), "s"));
  EXPECT_THAT(ParseScenario(with("gateways: 2"), "s"),
              StatusIs(absl::StatusCode::kInvalidArgument,
                       AllOf(HasSubstr("world.storage_nodes[0].gateways"),
                             HasSubstr("STORE_RADOS"))));
  EXPECT_THAT(
      ParseScenario(with("store: STORE_RADOS keeps_plaintext: true"), "s"),
      StatusIs(absl::StatusCode::kInvalidArgument,
               HasSubstr("world.storage_nodes[0].keeps_plaintext")));
  EXPECT_THAT(
      ParseScenario(with("store: STORE_RADOS") +
                        "phases { name: \"audit\" audit { storage_node: "
                        "\"cn-node\" } }\n",
                    "s"),
      StatusIs(absl::StatusCode::kInvalidArgument,
               AllOf(HasSubstr("phases[3].audit.storage_node"),
                     HasSubstr("RADOS"))));
}

TEST(ScenarioTest, MissingFileIsNotFound) {
  EXPECT_THAT(LoadScenarioFile("/nonexistent/s.textproto"),
              StatusIs(absl::StatusCode::kNotFound,
                       HasSubstr("/nonexistent/s.textproto")));
}

}  // namespace
}  // namespace residency::sim
