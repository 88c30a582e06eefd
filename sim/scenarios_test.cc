// Every built-in scenario runs end to end against real in-process services
// and meets its expectations; a violated expectation is reported as such.
#include <algorithm>
#include <cstdio>
#include <filesystem>
#include <fstream>
#include <iterator>
#include <map>
#include <sstream>
#include <string>

#include "absl/strings/ascii.h"
#include "absl/strings/escaping.h"
#include "absl/strings/match.h"
#include "absl/strings/str_cat.h"
#include "crypto/object_context.h"
#include "gmock/gmock.h"
#include "gtest/gtest.h"
#include "key_service/key_store.h"
#include "key_service/server.h"
#include "key_service/wrapped_key.h"
#include "sim/engine.h"
#include "sim/scenario.h"
#include "tests/status_matchers.h"
#include "tests/temp_dir.h"

namespace residency::sim {
namespace {

using ::residency::testing::TempDir;

using ::testing::HasSubstr;

// A key by name ("kek us-custodian/user-1-key v1", "key user-1/obj-2 v1").
struct Secret {
  std::string name;
  std::string bytes;
};

// Every key the world's key services hold, and every key-service wrap of
// every stored version unwrapped offline with them: the data key in
// custodian custody, the key-service shares in the other modes. Versions a
// user cannot list at this point (a node cut off) are left out.
std::vector<Secret> WorldSecrets(World& world) {
  std::vector<Secret> out;
  std::map<std::string, const key_service::KeyStore*> stores;  // by principal
  for (const Endpoint& ks : world.key_services()) {
    key_service::KeyServiceServer* server = world.KeyServiceServer(ks.name);
    if (server == nullptr) continue;
    const key_service::KeyStore& keys = server->custodian().keys();
    stores[ks.principal] = &keys;
    for (const key_service::KeyStore::Snapshot& key : keys.All()) {
      for (const auto& [version, material] : key->material) {
        out.push_back({absl::StrCat("kek ", ks.name, "/", key->info.key_id(),
                                    " v", version),
                       std::string(material.view())});
      }
    }
  }
  for (User& user : world.users()) {
    for (const Endpoint& node : world.storage_nodes()) {
      absl::StatusOr<client::Client*> client = world.ClientFor(user, node.name);
      if (!client.ok()) continue;
      absl::StatusOr<std::vector<v1::ObjectInfo>> listed =
          (*client)->List("", /*all_versions=*/true);
      if (!listed.ok()) continue;
      for (const v1::ObjectInfo& info : *listed) {
        const v1::ObjectRef& ref = info.header().object();
        absl::StatusOr<std::string> context = crypto::EncodeObjectContext(
            ref.owner(), ref.object_id(), ref.version());
        if (!context.ok()) continue;
        for (const v1::WrappedKey& wrapped : info.header().wrapped_keys()) {
          if (wrapped.wrapper() != v1::WrappedKey::KEY_SERVICE) continue;
          auto store = stores.find(wrapped.key_service());
          if (store == stores.end()) continue;
          key_service::KeyStore::Snapshot key =
              store->second->Find(wrapped.key_id());
          const crypto::SecretBytes* kek =
              key == nullptr ? nullptr : key->Material(wrapped.key_version());
          if (kek == nullptr) continue;
          absl::StatusOr<crypto::SecretBytes> unwrapped =
              key_service::UnwrapDataKey(*kek, wrapped.key_id(),
                                         wrapped.key_version(), *context,
                                         wrapped.wrapped());
          if (!unwrapped.ok()) continue;
          out.push_back({absl::StrCat("key ", ref.owner(), "/", ref.object_id(),
                                      " v", ref.version()),
                         std::string(unwrapped->view())});
        }
      }
    }
  }
  return out;
}

// The first secret found in `text` raw, in hex (either case) or in base64.
std::string FindSecret(const std::string& text,
                       const std::vector<Secret>& secrets) {
  for (const Secret& secret : secrets) {
    for (const std::string& form :
         {secret.bytes, absl::BytesToHexString(secret.bytes),
          absl::AsciiStrToUpper(absl::BytesToHexString(secret.bytes)),
          absl::Base64Escape(secret.bytes),
          absl::WebSafeBase64Escape(secret.bytes)}) {
      if (text.find(form) != std::string::npos) return secret.name;
    }
  }
  return "";
}

class ScenarioRunTest : public ::testing::TestWithParam<std::string> {
 protected:
  void SetUp() override { ASSERT_OK_AND_ASSIGN(dir_, temp_.Make("sim_test")); }

  absl::StatusOr<Report> RunScenarioNamed(const std::string& name,
                                          uint64_t seed = 0) {
    absl::StatusOr<v1::Scenario> scenario = LoadBuiltinScenario(name);
    if (!scenario.ok()) return scenario.status();
    RunOptions options;
    options.work_dir = dir_ + "/" + std::to_string(runs_++);
    std::filesystem::create_directories(options.work_dir);
    options.seed = seed;
    progress_.str("");
    options.progress = &progress_;
    options.before_stop = [this, dir = options.work_dir](World& world) {
      secrets_ = WorldSecrets(world);
      // The key services' root keys, as the files they keep them in.
      for (const auto& entry :
           std::filesystem::recursive_directory_iterator(dir)) {
        if (entry.path().filename() != "root.key") continue;
        std::ifstream in(entry.path(), std::ios::binary);
        secrets_.push_back({"root key " + entry.path().string(),
                            std::string(std::istreambuf_iterator<char>(in),
                                        std::istreambuf_iterator<char>())});
      }
    };
    return RunScenario(*scenario, options);
  }

  std::ostringstream progress_;
  std::vector<Secret> secrets_;  // of the last run

  TempDir temp_;
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

  // No key the run's services held or handed out appears in any form of
  // the report or in the progress lines.
  ASSERT_FALSE(secrets_.empty());
  const size_t keks = std::count_if(
      secrets_.begin(), secrets_.end(),
      [](const Secret& s) { return absl::StartsWith(s.name, "kek "); });
  const size_t roots = std::count_if(
      secrets_.begin(), secrets_.end(),
      [](const Secret& s) { return absl::StartsWith(s.name, "root key "); });
  EXPECT_GT(roots, 0u);
  std::printf(
      "searched for %zu root keys, %zu KEK versions and %zu unwrapped keys\n",
      roots, keks, secrets_.size() - keks - roots);
  // The search finds a key that is there.
  EXPECT_EQ(
      FindSecret("x" + absl::Base64Escape(secrets_.back().bytes), secrets_),
      secrets_.back().name);
  std::ostringstream all;
  WriteJsonReport(report, all);
  WriteHtmlReport(report, all);
  WriteMarkdownReport(report, all);
  WriteTimelinesText(report, all);
  WriteTapsText(report, all);
  WriteTrafficJson(report, all);
  EXPECT_EQ(FindSecret(text.str() + all.str() + progress_.str(), secrets_), "")
      << "of " << secrets_.size() << " keys";
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
