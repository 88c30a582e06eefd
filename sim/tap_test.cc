// The `tap` phase against a real world: a tap on the CN-US link sees
// users' plaintext when a client sends it across, and not when the client
// library encrypts it.
#include <filesystem>
#include <sstream>
#include <string>

#include "gmock/gmock.h"
#include "gtest/gtest.h"
#include "sim/ledger.h"
#include "sim/phases.h"
#include "sim/scenario.h"
#include "sim/world.h"
#include "tests/status_matchers.h"
#include "tests/temp_dir.h"

namespace residency::sim {
namespace {

using ::residency::testing::TempDir;

using ::testing::HasSubstr;

class TapTest : public ::testing::Test {
 protected:
  void SetUp() override {
    ASSERT_OK_AND_ASSIGN(dir_, temp_.Make("tap_test"));
    ASSERT_OK_AND_ASSIGN(scenario_, LoadBuiltinScenario("network_tap"));
    // Users in CN store across the border, on a node in the US.
    auto* node = scenario_.mutable_world()->add_storage_nodes();
    node->set_name("us-node");
    node->set_jurisdiction("US");
    node->set_operator_("us-provider");
    ASSERT_OK_AND_ASSIGN(world_, World::Start(scenario_, dir_, /*seed=*/7));
    ledger_ = std::make_unique<Ledger>(*world_, report_, nullptr);
    tap_.set_a("CN");
    tap_.set_b("US");
  }
  void TearDown() override {
    ledger_.reset();
    world_.reset();
  }

  TempDir temp_;
  std::string dir_;
  v1::Scenario scenario_;
  std::unique_ptr<World> world_;
  Report report_;
  std::unique_ptr<Ledger> ledger_;
  v1::NetworkTap tap_;
};

TEST_F(TapTest, PlaintextSentAcrossTheLinkIsSeenCiphertextIsNot) {
  User& user = world_->users()[0];
  ASSERT_OK_AND_ASSIGN(client::Client * client,
                       world_->ClientFor(user, "us-node"));
  const std::string data = world_->Content(user.name, 0, 1);
  ASSERT_THAT(data, HasSubstr(world_->canary()));

  // The client library encrypts: the object crosses, as ciphertext.
  ASSERT_OK(RunTap(tap_, *world_, *ledger_));
  std::istringstream in(data);
  ASSERT_OK(client->Put("obj-0", in, data.size()).status());
  ASSERT_OK(FinishTaps(*world_, *ledger_));
  ASSERT_EQ(report_.taps.size(), 1u);
  EXPECT_GT(report_.taps[0].request_bytes(), data.size());
  EXPECT_EQ(report_.taps[0].canary_hits, 0u);
  std::map<std::string, double> metrics = report_.Metrics();
  EXPECT_EQ(metrics.at("tap_canary_hits{link=CN-US}"), 0);
  EXPECT_EQ(metrics.at("plaintext_bytes{actor=tap/CN-US}"), 0);
  EXPECT_GT(metrics.at("ciphertext_bytes{actor=tap/CN-US}"), data.size());

  // A client that skips encryption: the same bytes in place of the
  // ciphertext, under the header the node accepted, as version 2.
  ASSERT_OK_AND_ASSIGN(v1::ObjectInfo info, client->Head("obj-0", 1));
  v1::ObjectHeader header = info.header();
  header.mutable_object()->set_version(2);
  std::string plaintext = data;
  plaintext.resize(header.ciphertext_length(), '\0');
  ASSERT_OK(RunTap(tap_, *world_, *ledger_));
  std::istringstream sent(plaintext);
  ASSERT_OK(client->PutSealed(header, sent).status());
  ASSERT_OK(FinishTaps(*world_, *ledger_));
  ASSERT_EQ(report_.taps.size(), 2u);
  EXPECT_GE(report_.taps[1].canary_hits, 1u);
  EXPECT_GE(report_.taps[1].canary_bytes, data.size());
  metrics = report_.Metrics();
  EXPECT_GE(metrics.at("tap_canary_hits{link=CN-US}"), 1);
  EXPECT_GE(metrics.at("plaintext_bytes{actor=tap/CN-US}"), data.size());
  bool noted = false;
  for (const std::string& note : report_.notes) {
    noted = noted || note.find("PLAINTEXT CROSSED") != std::string::npos;
  }
  EXPECT_TRUE(noted);
}

TEST_F(TapTest, TapOnAPairWithoutALinkCannotRun) {
  v1::NetworkTap tap;
  tap.set_a("CN");
  tap.set_b("CN");
  EXPECT_THAT(RunTap(tap, *world_, *ledger_),
              residency::testing::StatusIs(absl::StatusCode::kNotFound));
}

}  // namespace
}  // namespace residency::sim
