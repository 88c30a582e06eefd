// The audit and insider phases against a real world (in-process services,
// mTLS, no link delays): an audit finds planted plaintext and key bytes
// and fails a provider that keeps plaintext; an insider's copy holds
// ciphertext only, unless the provider keeps plaintext; every tampered read
// is refused and counted as such; PUT_ALL stores on the workload's node.
#include <stdlib.h>

#include <filesystem>
#include <fstream>
#include <memory>
#include <sstream>
#include <string>

#include "absl/strings/match.h"
#include "absl/strings/str_cat.h"
#include "absl/strings/str_join.h"
#include "crypto/object_context.h"
#include "gmock/gmock.h"
#include "gtest/gtest.h"
#include "key_service/server.h"
#include "key_service/wrapped_key.h"
#include "sim/ledger.h"
#include "sim/phases.h"
#include "sim/scenario.h"
#include "sim/tampering_node.h"
#include "sim/world.h"
#include "tests/status_matchers.h"
#include "tests/temp_dir.h"

namespace residency::sim {
namespace {

using ::residency::testing::TempDir;

namespace fs = std::filesystem;
using ::testing::Contains;
using ::testing::HasSubstr;

// Two CN nodes, one of which keeps plaintext, and a US custodian; no link
// delays, so the phases run fast.
constexpr char kScenario[] = R"pb(
  name: "audit-test"
  world {
    jurisdictions: [ "CN", "US" ]
    storage_nodes { name: "cn-node" jurisdiction: "CN" operator: "cn-telecom" }
    storage_nodes {
      name: "cn-provider"
      jurisdiction: "CN"
      operator: "cn-provider"
      keeps_plaintext: true
    }
    key_services {
      name: "us-custodian"
      jurisdiction: "US"
      policy {
        jurisdiction: "US"
        rules {
          name: "owners-use-own-keys"
          effect: ALLOW
          caller_is_owner: true
          operations: [
            OPERATION_CREATE_KEY,
            OPERATION_GENERATE_DATA_KEY,
            OPERATION_UNWRAP,
            OPERATION_GET_KEY_INFO
          ]
          justifications: CUSTOMER_INITIATED_ACCESS
        }
      }
    }
  }
  population {
    users: 3
    jurisdiction: "CN"
    objects_per_user: 4
    min_bytes: 100
    max_bytes: 70000
    seed: 7
    storage_node: "cn-node"
    key_services: "us-custodian"
    custody_mode: CUSTODY_MODE_CUSTODIAN
  }
  # Validation wants a phase; the tests run phases one by one themselves.
  phases {
    name: "store"
    workload { kind: PUT_ALL }
  }
)pb";

class PhaseTest : public ::testing::Test {
 protected:
  void SetUp() override {
    ASSERT_OK_AND_ASSIGN(dir_, temp_.Make("sim_audit_test"));
    ASSERT_OK_AND_ASSIGN(scenario_, ParseScenario(kScenario, "audit test"));
    ASSERT_OK_AND_ASSIGN(world_, World::Start(scenario_, dir_, /*seed=*/7));
    ledger_ = std::make_unique<Ledger>(*world_, report_, nullptr);
  }

  void TearDown() override {
    ledger_.reset();
    world_.reset();
  }

  absl::Status Workload(v1::Workload::Kind kind, const std::string& node = "") {
    v1::Workload workload;
    workload.set_kind(kind);
    workload.set_concurrency(3);
    workload.set_storage_node(node);
    const uint64_t failed_before = PutErrors();
    if (absl::Status s = RunWorkload(workload, *world_, *ledger_); !s.ok()) {
      return s;
    }
    // A store that lost objects would skew every count below.
    if (kind == v1::Workload::PUT_ALL && PutErrors() > failed_before) {
      return absl::InternalError(
          absl::StrCat(PutErrors() - failed_before,
                       " of the workload's puts failed (the "
                       "test's first failed put: ",
                       report_.operations.at("put").first_error, ")"));
    }
    return absl::OkStatus();
  }

  uint64_t PutErrors() {
    auto put = report_.operations.find("put");
    if (put == report_.operations.end()) return 0;
    uint64_t n = 0;
    for (const auto& [code, count] : put->second.errors) n += count;
    return n;
  }

  absl::Status Audit(const std::string& node) {
    v1::Audit audit;
    audit.set_storage_node(node);
    return RunAudit(audit, *world_, *ledger_);
  }

  absl::Status Insider(const std::string& node, bool tamper) {
    v1::InsiderDump insider;
    insider.set_storage_node(node);
    insider.set_tamper(tamper);
    return RunInsiderDump(insider, *world_, *ledger_);
  }

  double Metric(const std::string& name) {
    std::map<std::string, double> metrics = report_.Metrics();
    auto it = metrics.find(name);
    EXPECT_NE(it, metrics.end()) << "no metric " << name;
    return it == metrics.end() ? -1 : it->second;
  }

  std::string Notes() const { return absl::StrJoin(report_.notes, "\n"); }

  // Writes `data` into a new file under the node's data directory.
  void Plant(const std::string& node, const std::string& relative,
             const std::string& data) {
    const fs::path path =
        fs::path((*world_->StorageNode(node))->data_dir) / relative;
    fs::create_directories(path.parent_path());
    std::ofstream(path, std::ios::binary) << "some operator notes\n"
                                          << data << "\nmore notes\n";
  }

  // KEK version 1 of `user`'s key, as the custodian holds it.
  std::string Kek(const std::string& user) {
    key_service::KeyStore::Snapshot key =
        world_->KeyServiceServer("us-custodian")
            ->custodian()
            .keys()
            .Find(user + "-key");
    EXPECT_NE(key, nullptr);
    if (key == nullptr) return "";
    return std::string(key->Material(1)->view());
  }

  uint64_t StoredBytes(const std::string& node) {
    uint64_t bytes = 0;
    for (const User& u : world_->users()) {
      for (const Truth& t : u.objects) bytes += t.node == node ? t.size : 0;
    }
    return bytes;
  }

  TempDir temp_;
  std::string dir_;
  v1::Scenario scenario_;
  std::unique_ptr<World> world_;
  Report report_;
  std::unique_ptr<Ledger> ledger_;
};

// ---------------------------------------------------------------- workload

// The report keeps the first error of an operation, cut short: the message
// comes from a peer. Each report format escapes it (report_test).
TEST_F(PhaseTest, LedgerKeepsTheFirstErrorBounded) {
  ledger_->Record(
      "put", absl::UnavailableError("no 'route'\r\n" + std::string(400, 'x')),
      absl::Milliseconds(1));
  ledger_->Record("put", absl::DeadlineExceededError("later"),
                  absl::Milliseconds(1));
  const std::string& first = report_.operations.at("put").first_error;
  EXPECT_THAT(first, ::testing::StartsWith("UNAVAILABLE: no 'route'\r\nxxx"));
  EXPECT_EQ(first, absl::StrCat("UNAVAILABLE: no 'route'\r\n",
                                std::string(240 - 12, 'x'), "..."));
  EXPECT_EQ(report_.operations.at("put").errors.size(), 2u);
}

// The cut falls between characters, never inside a UTF-8 one.
TEST_F(PhaseTest, LedgerCutsTheFirstErrorBetweenCharacters) {
  // U+6587, three bytes, at bytes 239 to 241 of the message.
  ledger_->Record("put",
                  absl::UnavailableError(std::string(239, 'x') +
                                         "\xe6\x96\x87" + std::string(20, 'y')),
                  absl::Milliseconds(1));
  EXPECT_EQ(report_.operations.at("put").first_error,
            absl::StrCat("UNAVAILABLE: ", std::string(239, 'x'), "..."));
}

// Status details a peer attached are for programs, not for the report.
TEST_F(PhaseTest, LedgerShowsNoStatusPayload) {
  absl::Status refused = absl::AlreadyExistsError("version 2 exists");
  refused.SetPayload("type.googleapis.com/residency.v1.VersionTaken",
                     absl::Cord("\x08\x02"));
  ledger_->Record("put", refused, absl::Milliseconds(1));
  EXPECT_EQ(report_.operations.at("put").first_error,
            "ALREADY_EXISTS: version 2 exists");
}

TEST_F(PhaseTest, PutAllStoresOnTheWorkloadsNodeAndKeepsEachNodesRecords) {
  ASSERT_OK(Workload(v1::Workload::PUT_ALL, "cn-node"));
  ASSERT_OK(Workload(v1::Workload::PUT_ALL, "cn-provider"));
  ASSERT_OK(Workload(v1::Workload::PUT_ALL, "cn-provider"));
  for (const User& u : world_->users()) {
    ASSERT_EQ(u.objects.size(), 8u) << u.name;
    for (const Truth& t : u.objects) {
      // Version 1 on cn-node; versions 1 and then 2 on cn-provider.
      EXPECT_EQ(t.version, t.node == "cn-node" ? 1u : 2u) << t.object_id;
    }
  }
  // Each node holds what the records say: the provider's plaintext copies
  // are there, and every object reads back from its own node.
  EXPECT_TRUE(
      fs::exists(world_->PlaintextDir("cn-provider") + "/user-1/obj-0"));
  EXPECT_FALSE(fs::exists(world_->PlaintextDir("cn-node")));
  ASSERT_OK(Workload(v1::Workload::GET_ALL));
  EXPECT_EQ(Metric("ok{op=get}"), 24);
  EXPECT_EQ(Metric("wrong_plaintext"), 0);
  // The same object stored with two providers counts once as the user's.
  uint64_t one_node = 0;
  for (const Truth& t : world_->users()[0].objects) {
    one_node += t.node == "cn-node" ? t.size : 0;
  }
  EXPECT_GT(report_.user_bytes["user-1"], one_node);  // v2 is other data
  EXPECT_THAT(Workload(v1::Workload::PUT_ALL, "no-such-node"),
              residency::testing::StatusIs(absl::StatusCode::kNotFound));
}

// ------------------------------------------------------------------- audit

TEST_F(PhaseTest, AuditOfAnEncryptedNodePassesAndLooksForEveryKey) {
  ASSERT_OK(Workload(v1::Workload::PUT_ALL));
  ASSERT_OK(Audit("cn-node"));
  EXPECT_EQ(Metric("audit_passed{node=cn-node}"), 1);
  // 12 data keys (each proven against the stored ciphertext) and 3 KEKs.
  EXPECT_EQ(Metric("audit_keys{node=cn-node}"), 15);
  EXPECT_EQ(Metric("audit_key_errors{node=cn-node}"), 0);
  EXPECT_EQ(Metric("audit_canary_hits{node=cn-node}"), 0);
  EXPECT_EQ(Metric("audit_key_hits{node=cn-node}"), 0);
  EXPECT_GT(Metric("audit_files{node=cn-node}"), 3);
  EXPECT_EQ(Metric("plaintext_bytes{actor=auditor/cn-node}"), 0);
  EXPECT_THAT(Notes(), HasSubstr("nothing found; the review passes"));
}

TEST_F(PhaseTest, AuditFindsAPlantedCanary) {
  ASSERT_OK(Workload(v1::Workload::PUT_ALL));
  Plant("cn-node", "debug/dump.txt", world_->canary());
  ASSERT_OK(Audit("cn-node"));
  EXPECT_EQ(Metric("audit_passed{node=cn-node}"), 0);
  EXPECT_EQ(Metric("audit_canary_hits{node=cn-node}"), 1);
  EXPECT_EQ(Metric("audit_key_hits{node=cn-node}"), 0);
  EXPECT_THAT(Notes(), HasSubstr("debug/dump.txt"));
  EXPECT_THAT(Notes(), HasSubstr("The review fails"));
  // A canary is not a whole object: nothing counts as read.
  EXPECT_EQ(Metric("plaintext_bytes{actor=auditor/cn-node}"), 0);
}

TEST_F(PhaseTest, AuditFindsAPlantedKek) {
  ASSERT_OK(Workload(v1::Workload::PUT_ALL));
  Plant("cn-node", "objects/backup/keys.bin", Kek("user-2"));
  ASSERT_OK(Audit("cn-node"));
  EXPECT_EQ(Metric("audit_passed{node=cn-node}"), 0);
  EXPECT_EQ(Metric("audit_key_hits{node=cn-node}"), 1);
  EXPECT_THAT(Notes(), HasSubstr("objects/backup/keys.bin (kek "
                                 "us-custodian/user-2-key v1)"));
}

// The data key is worked out here independently of the phase (the KEK
// from the custodian's store, the node's header, the wrapped-key format),
// then planted: the phase must have recovered the same key to find it.
TEST_F(PhaseTest, AuditFindsAPlantedDataKey) {
  ASSERT_OK(Workload(v1::Workload::PUT_ALL));
  User& user = world_->users()[2];
  ASSERT_OK_AND_ASSIGN(client::Client * client,
                       world_->ClientFor(user, "cn-node"));
  ASSERT_OK_AND_ASSIGN(v1::ObjectInfo info, client->Head("obj-3"));
  const v1::WrappedKey& wrapped = info.header().wrapped_keys(0);
  ASSERT_OK_AND_ASSIGN(std::string context,
                       crypto::EncodeObjectContext(user.name, "obj-3", 1));
  ASSERT_OK_AND_ASSIGN(
      crypto::SecretBytes dek,
      key_service::UnwrapDataKey(crypto::SecretBytes::CopyFrom(Kek(user.name)),
                                 wrapped.key_id(), wrapped.key_version(),
                                 context, wrapped.wrapped()));
  Plant("cn-node", "cache/entry", std::string(dek.view()));
  ASSERT_OK(Audit("cn-node"));
  EXPECT_EQ(Metric("audit_passed{node=cn-node}"), 0);
  EXPECT_EQ(Metric("audit_key_hits{node=cn-node}"), 1);
  EXPECT_THAT(Notes(), HasSubstr("cache/entry (dek user-3/obj-3 v1)"));
}

TEST_F(PhaseTest, AuditOfAProviderThatKeepsPlaintextFails) {
  ASSERT_OK(Workload(v1::Workload::PUT_ALL, "cn-provider"));
  ASSERT_OK(Audit("cn-provider"));
  EXPECT_EQ(Metric("audit_passed{node=cn-provider}"), 0);
  EXPECT_GE(Metric("audit_canary_hits{node=cn-provider}"), 12);
  EXPECT_EQ(Metric("audit_key_hits{node=cn-provider}"), 0);
  EXPECT_THAT(Notes(), HasSubstr("plaintext/user-"));
  // The copies are whole objects: the auditor can read all of them.
  EXPECT_EQ(Metric("plaintext_bytes{actor=auditor/cn-provider}"),
            StoredBytes("cn-provider"));
  EXPECT_EQ(Metric("exposure_mean{actor=auditor/cn-provider}"), 1);
}

// ----------------------------------------------------------------- insider

TEST_F(PhaseTest, InsidersCopyOfAnEncryptedNodeHoldsCiphertextOnly) {
  ASSERT_OK(Workload(v1::Workload::PUT_ALL));
  ASSERT_OK(Insider("cn-node", /*tamper=*/false));
  EXPECT_EQ(Metric("objects{actor=insider/cn-node}"), 12);
  EXPECT_EQ(Metric("wrapped_keys{actor=insider/cn-node}"), 12);
  EXPECT_GT(Metric("ciphertext_bytes{actor=insider/cn-node}"),
            StoredBytes("cn-node"));
  EXPECT_EQ(Metric("plaintext_bytes{actor=insider/cn-node}"), 0);
  EXPECT_EQ(Metric("insider_canary_hits{node=cn-node}"), 0);
  EXPECT_TRUE(fs::is_directory(world_->Dir("insider-cn-node") + "/objects"));
}

TEST_F(PhaseTest, InsidersCopyOfAPlaintextProviderHoldsThePlaintext) {
  ASSERT_OK(Workload(v1::Workload::PUT_ALL, "cn-provider"));
  ASSERT_OK(Insider("cn-provider", /*tamper=*/false));
  EXPECT_EQ(Metric("plaintext_bytes{actor=insider/cn-provider}"),
            StoredBytes("cn-provider"));
  EXPECT_GT(Metric("insider_canary_hits{node=cn-provider}"), 0);
}

// Every user reads every latest version through the insider, which
// tampers with most of them in every way it knows (and leaves some alone,
// as a control): each tampered read is refused with DATA_LOSS and counted
// as detected; nothing else reaches a reader. Afterwards users read from
// the real node again.
TEST_F(PhaseTest, TamperedReadsAreCountedAsDetected) {
  ASSERT_OK(Workload(v1::Workload::PUT_ALL));
  ASSERT_OK(Workload(v1::Workload::PUT_ALL));  // version 2 of everything
  ASSERT_OK(Insider("cn-node", /*tamper=*/true));
  const double tampered = Metric("tampered_reads{node=cn-node}");
  EXPECT_GE(tampered, 9);
  EXPECT_EQ(Metric("tamper_detected{node=cn-node}"), tampered);
  EXPECT_EQ(Metric("tamper_undetected{node=cn-node}"), 0);
  EXPECT_EQ(Metric("tamper_other_errors{node=cn-node}"), 0);
  EXPECT_EQ(tampered + Metric("untampered_reads{node=cn-node}"), 12);
  EXPECT_GE(Metric("untampered_reads{node=cn-node}"), 1);
  EXPECT_EQ(Metric("untampered_read_errors{node=cn-node}"), 0);
  EXPECT_EQ(Metric("wrong_plaintext"), 0);
  for (TamperingNode::Mode mode : TamperingNode::kTamperModes) {
    const std::string name = absl::StrCat("tamper_detected{node=cn-node,mode=",
                                          TamperingNode::ModeName(mode), "}");
    EXPECT_GE(Metric(name), 1) << name;
  }
  EXPECT_THAT(Notes(), HasSubstr("the clients refused"));

  ASSERT_OK(Workload(v1::Workload::GET_ALL));
  EXPECT_EQ(Metric("availability{op=get}"), 1);
  EXPECT_EQ(Metric("wrong_plaintext"), 0);
}

}  // namespace
}  // namespace residency::sim
