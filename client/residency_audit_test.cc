// Residency audit (issue item 7): after the client has stored objects that
// contain a known canary, every file under the storage node's data
// directory is read as raw bytes (RocksDB WAL, table and blob files,
// MANIFEST, OPTIONS, LOG, anything else) and must hold no canary, no data
// key (nor, in e2e and split custody, either share of one), no
// key-encryption key, no root key and no device key. Each key service's
// data directory must hold no canary, no data key or share, and its KEKs
// only sealed; its root key only in its own file.
//
// Each custody mode runs once. The data keys are the real ones: recovered as
// the owner would (audited Unwraps, the device key, the two shares combined
// by client::DeriveDataKey) and checked by opening the stored ciphertext
// with them. The KEKs are read from the running
// service and compared with its store opened again from disk.
//
// The node is scanned while the servers run (recent writes sit in the WAL)
// and after a restart and shutdown (recovery moves the WAL into table and
// blob files). Controls show the scan would find a leak: bytes planted in a
// nested tree, a slice of the stored ciphertext, each root key in its own
// file, and a "client that forgot to encrypt" (PutSealed with plaintext)
// whose marker must be found in the WAL while running and in table and
// blob files after the restart.
//
// The scanner and the owner-side key recovery are sim/residency_scan.h,
// which the simulator's audit phase uses too; the scanner's own tests are
// in sim/residency_scan_test.cc.
#include <stdlib.h>

#include <algorithm>
#include <filesystem>
#include <fstream>
#include <functional>
#include <iostream>
#include <map>
#include <optional>
#include <set>
#include <sstream>
#include <string>
#include <vector>

#include "absl/strings/escaping.h"
#include "absl/strings/match.h"
#include "absl/strings/str_cat.h"
#include "absl/strings/str_format.h"
#include "absl/strings/str_join.h"
#include "absl/strings/str_replace.h"
#include "client/client.h"
#include "crypto/chunked.h"
#include "crypto/object_context.h"
#include "crypto/random.h"
#include "gmock/gmock.h"
#include "gtest/gtest.h"
#include "key_service/key_store.h"
#include "key_service/server.h"
#include "key_service/wrapped_key.h"
#include "rpc/status.h"
#include "sim/residency_scan.h"
#include "storage_node/server.h"
#include "tests/status_matchers.h"
#include "tests/temp_dir.h"
#include "tls/credentials.h"
#include "tls/pki.h"

namespace residency::client {

// Test names and failure messages show the mode by name.
void PrintTo(CustodyMode mode, std::ostream* out) {
  *out << CustodyModeName(mode);
}

namespace {

using ::residency::testing::TempDir;

namespace fs = std::filesystem;

constexpr char kPolicy[] = R"pb(
  jurisdiction: "US"
  rules {
    name: "owners-use-own-keys"
    effect: ALLOW
    caller_is_owner: true
    operations: [
      OPERATION_CREATE_KEY,
      OPERATION_ROTATE_KEY,
      OPERATION_GENERATE_DATA_KEY,
      OPERATION_UNWRAP
    ]
    justifications: CUSTOMER_INITIATED_ACCESS
  }
)pb";

using ::residency::sim::FileKind;
using ::residency::sim::Hit;
using ::residency::sim::Needle;
using ::residency::sim::ScanResult;

// The whole tree under `root` (sim::ScanTree); a scan that cannot run fails
// the test.
ScanResult Scan(const std::string& root, const std::vector<Needle>& needles) {
  absl::StatusOr<ScanResult> scan = sim::ScanTree(root, needles);
  EXPECT_OK(scan.status());
  return scan.ok() ? *std::move(scan) : ScanResult{};
}

std::string Hex(absl::string_view bytes) {
  return absl::BytesToHexString(bytes);
}

// The canary: a marker unique to this run, so nothing else on disk can hold
// it by chance.
std::string MakeMarker(absl::string_view label) {
  return absl::StrCat("<<", label, ":", Hex(*crypto::RandomBytes(12)), ">>");
}

// `size` bytes of `pattern` repeated.
std::string Repeat(absl::string_view pattern, size_t size) {
  std::string out;
  out.reserve(size + pattern.size());
  while (out.size() < size) out.append(pattern.data(), pattern.size());
  out.resize(size);
  return out;
}

// Random bytes with `marker` written at each offset.
std::string RandomWithMarkers(size_t size, absl::string_view marker,
                              const std::vector<size_t>& offsets) {
  std::string out = *crypto::RandomBytes(size);
  for (size_t at : offsets) {
    out.replace(at, marker.size(), marker.data(), marker.size());
  }
  return out;
}

// One key service of the audited world.
struct KeyServiceUnderAudit {
  std::string name;          // "ks-us"
  std::string jurisdiction;  // "US"
  std::string dir;
  std::optional<tls::Identity> identity;
  std::unique_ptr<key_service::KeyServiceServer> server;
  std::unique_ptr<v1::KeyService::Stub> stub;  // alice's channel
  std::shared_ptr<grpc::Channel> channel;
};

class ResidencyAuditTest : public ::testing::TestWithParam<CustodyMode> {
 protected:
  void SetUp() override {
    ASSERT_OK_AND_ASSIGN(dir_, temp_.Make("residency_audit_test"));
    sn_dir_ = dir_ + "/sn";
    ASSERT_OK_AND_ASSIGN(tls::CertificateAuthority ca,
                         tls::CertificateAuthority::Create("audit-ca"));
    ca_.emplace(std::move(ca));
    ASSERT_OK_AND_ASSIGN(sn_identity_,
                         ca_->Issue("residency://service/cn-node"));
    ASSERT_OK_AND_ASSIGN(alice_identity_, ca_->Issue("residency://user/alice"));
    key_services_.push_back({"ks-us", "US", dir_ + "/ks-us", {}, {}, {}, {}});
    if (GetParam() == CustodyMode::kSplit) {
      key_services_.push_back({"ks-ch", "CH", dir_ + "/ks-ch", {}, {}, {}, {}});
    }
    for (KeyServiceUnderAudit& ks : key_services_) {
      ASSERT_OK_AND_ASSIGN(ks.identity,
                           ca_->Issue("residency://service/" + ks.name));
      ASSERT_NO_FATAL_FAILURE(StartKeyService(ks));
    }
    if (GetParam() == CustodyMode::kE2e) {
      // The device key lives beside, not inside, the servers' directories.
      ASSERT_OK_AND_ASSIGN(
          device_key_, LoadDeviceKey(dir_ + "/device.key", /*create=*/true));
    }
    ASSERT_NO_FATAL_FAILURE(StartStorageNode());
    ASSERT_NO_FATAL_FAILURE(MakeClient());
  }

  void TearDown() override {
    client_.reset();
    storage_.reset();
    storage_node_.reset();
    for (KeyServiceUnderAudit& ks : key_services_) {
      ks.stub.reset();
      ks.server.reset();
    }
  }

  void StartKeyService(KeyServiceUnderAudit& ks) {
    key_service::KeyServiceServerOptions options;
    options.tls = ks.identity->Material();
    options.jurisdiction = ks.jurisdiction;
    options.data_dir = ks.dir;
    ASSERT_OK_AND_ASSIGN(
        key_service::PolicyEngine policy,
        key_service::PolicyEngine::Parse(
            absl::StrReplaceAll(
                kPolicy,
                {{"\"US\"", absl::StrCat("\"", ks.jurisdiction, "\"")}}),
            ks.name));
    ASSERT_OK_AND_ASSIGN(ks.server, key_service::KeyServiceServer::Start(
                                        std::move(options), std::move(policy)));
  }

  void StartStorageNode() {
    storage_node::StorageNodeServerOptions options;
    options.tls = sn_identity_->Material();
    options.jurisdiction = "CN";
    options.operator_principal = "residency://operator/cn-telecom";
    options.data_dir = sn_dir_;
    ASSERT_OK_AND_ASSIGN(storage_node_, storage_node::StorageNodeServer::Start(
                                            std::move(options)));
  }

  void MakeClient() {
    ClientOptions options;
    options.owner = "alice";
    options.mode = GetParam();
    for (KeyServiceUnderAudit& ks : key_services_) {
      ASSERT_OK_AND_ASSIGN(
          ks.channel,
          tls::MakeChannel(ks.server->address(), alice_identity_->Material()));
      ks.stub = v1::KeyService::NewStub(ks.channel);
      options.key_services.push_back(
          {ks.channel, "alice-key", ks.server->principal()});
    }
    options.device_key = device_key_;
    ASSERT_OK_AND_ASSIGN(options.storage,
                         tls::MakeChannel(storage_node_->address(),
                                          alice_identity_->Material()));
    options.residency = {"CN"};
    ASSERT_OK_AND_ASSIGN(client_, Client::Create(std::move(options)));
    storage_ = v1::StorageNode::NewStub(client_->options().storage);
  }

  absl::Status Put(const std::string& id, const std::string& data) {
    std::istringstream in(data);
    return client_->Put(id, in, data.size()).status();
  }

  // The stored ciphertext of alice's object, read raw from the node.
  absl::StatusOr<std::string> StoredCiphertext(const std::string& id) {
    v1::GetRequest request;
    request.mutable_metadata()->set_request_id("audit");
    request.mutable_metadata()->mutable_justification()->set_reason(
        v1::Justification::CUSTOMER_INITIATED_ACCESS);
    request.mutable_object()->set_owner("alice");
    request.mutable_object()->set_object_id(id);
    grpc::ClientContext context;
    auto reader = storage_->Get(&context, request);
    v1::GetResponse message;
    std::string ciphertext;
    while (reader->Read(&message)) {
      if (message.has_data()) ciphertext += message.data();
    }
    if (absl::Status status = rpc::FromGrpcStatus(reader->Finish());
        !status.ok()) {
      return status;
    }
    return ciphertext;
  }

  // An audited Unwrap of `wrapped` by its owner at the key service that
  // made it.
  absl::StatusOr<crypto::SecretBytes> UnwrapAtService(
      const v1::ObjectHeader& header, const v1::WrappedKey& wrapped) {
    for (KeyServiceUnderAudit& ks : key_services_) {
      if (ks.server->principal() != wrapped.key_service()) continue;
      return sim::UnwrapAsOwner(*ks.stub, header, wrapped, "audit-unwrap");
    }
    return absl::InternalError(
        absl::StrCat("no key service is '", wrapped.key_service(), "'"));
  }

  // The data key of alice's stored object, and in e2e and split custody
  // its two shares, as its owner gets them (sim::RecoverDataKey): the
  // node's header, audited Unwraps at the key services, the device key.
  // The key must open the stored ciphertext to `plaintext`, so the scan
  // looks for the keys that really protect the objects.
  absl::StatusOr<std::vector<Needle>> KeysOf(const std::string& id,
                                             const std::string& plaintext) {
    absl::StatusOr<v1::ObjectInfo> info = client_->Head(id);
    if (!info.ok()) return info.status();
    const v1::ObjectHeader& header = info->header();
    const v1::CustodyMode expected =
        GetParam() == CustodyMode::kCustodian ? v1::CUSTODY_MODE_CUSTODIAN
        : GetParam() == CustodyMode::kE2e     ? v1::CUSTODY_MODE_E2E
                                              : v1::CUSTODY_MODE_SPLIT;
    if (header.custody_mode() != expected) {
      return absl::InternalError(id + ": stored in another custody mode");
    }
    absl::StatusOr<sim::RecoveredKeys> keys = sim::RecoverDataKey(
        header,
        [this](const v1::ObjectHeader& h, const v1::WrappedKey& w) {
          return UnwrapAtService(h, w);
        },
        device_key_.get());
    if (!keys.ok()) return keys.status();
    if (keys->shares.size() !=
        (GetParam() == CustodyMode::kCustodian ? 0u : 2u)) {
      return absl::InternalError(id + ": unexpected number of shares");
    }
    absl::StatusOr<std::string> ciphertext = StoredCiphertext(id);
    if (!ciphertext.ok()) return ciphertext.status();
    absl::StatusOr<std::string> opened =
        sim::OpenObject(keys->dek, header, *ciphertext);
    if (!opened.ok() || *opened != plaintext) {
      return absl::InternalError(
          id + ": the recovered data key does not open the stored object");
    }
    std::vector<Needle> out;
    for (auto& [index, share] : keys->shares) {
      out.push_back(
          Needle{absl::StrCat("share ", index, " ", id), std::move(share)});
    }
    out.push_back(Needle{"dek " + id, std::move(keys->dek)});
    return out;
  }

  // Every KEK version of alice's key at `ks`, as the running service holds
  // it.
  static std::vector<std::string> KekMaterial(
      const key_service::KeyStore& store) {
    std::vector<std::string> out;
    key_service::KeyStore::Snapshot key = store.Find("alice-key");
    EXPECT_NE(key, nullptr);
    if (key == nullptr) return out;
    for (const auto& [version, material] : key->material) {
      out.emplace_back(material.view());
    }
    return out;
  }

  TempDir temp_;
  std::string dir_, sn_dir_;
  std::optional<tls::CertificateAuthority> ca_;
  std::optional<tls::Identity> sn_identity_, alice_identity_;
  std::vector<KeyServiceUnderAudit> key_services_;
  std::shared_ptr<const DeviceKey> device_key_;
  std::unique_ptr<storage_node::StorageNodeServer> storage_node_;
  std::unique_ptr<Client> client_;
  std::unique_ptr<v1::StorageNode::Stub> storage_;
};

TEST_P(ResidencyAuditTest, NoCanaryDataKeyOrKekInAnyFileTheServersWrite) {
  for (size_t i = 0; i < key_services_.size(); ++i) {
    ASSERT_OK(client_->CreateKey("alice-key", i).status());
  }
  const std::string canary = MakeMarker("CANARY");
  // Objects with the canary: alone, repeated across several 16 KiB chunks,
  // scattered through random bytes (one copy straddling a chunk boundary),
  // and one large enough (20 MiB, over twice the node's 8 MiB memtable) that
  // RocksDB flushes table and blob files while the node runs.
  std::map<std::string, std::string> objects;
  objects["canary/alone"] = canary;
  objects["canary/repeated"] = Repeat(canary, 3 * 16384 + 100);
  objects["canary/scattered"] =
      RandomWithMarkers(100000, canary, {0, 16384 - 7, 50000, 100000 - 60});
  objects["canary/large"] =
      Repeat(absl::StrCat(canary, *crypto::RandomBytes(1000)), 20 << 20);
  for (const auto& [id, data] : objects) ASSERT_OK(Put(id, data)) << id;
  // A second KEK version, and objects under it: a new one and a second
  // version of an old one.
  for (size_t i = 0; i < key_services_.size(); ++i) {
    ASSERT_OK(client_->RotateKey("alice-key", i).status());
  }
  objects["canary/after-rotation"] = Repeat(canary, 5000);
  ASSERT_OK(Put("canary/after-rotation", objects["canary/after-rotation"]));
  objects["canary/repeated"] += "v2";
  ASSERT_OK(Put("canary/repeated", objects["canary/repeated"]));

  // What must not be found.
  std::vector<Needle> needles;
  needles.push_back(Needle::Of("canary", canary));
  for (const auto& [id, data] : objects) {
    ASSERT_OK_AND_ASSIGN(std::vector<Needle> keys, KeysOf(id, data));
    for (Needle& key : keys) needles.push_back(std::move(key));
  }
  std::vector<std::vector<std::string>> keks;
  for (KeyServiceUnderAudit& ks : key_services_) {
    keks.push_back(KekMaterial(ks.server->custodian().keys()));
    ASSERT_EQ(keks.back().size(), 2u) << ks.name;
    for (size_t v = 0; v < keks.back().size(); ++v) {
      needles.push_back(Needle::Of(absl::StrCat("kek ", ks.name, " v", v + 1),
                                   keks.back()[v]));
    }
    ASSERT_OK_AND_ASSIGN(
        crypto::SecretBytes root,
        key_service::LoadOrCreateRootKey(ks.dir + "/root.key",
                                         /*create_if_missing=*/false));
    needles.push_back(Needle{"root key " + ks.name, std::move(root)});
  }
  if (device_key_ != nullptr) {
    needles.push_back(Needle{"device key", device_key_->key.Clone()});
  }

  // Controls: what the node does store must be found. A slice from the
  // middle of the large object's stored ciphertext, and the plaintext of a
  // client that forgot to encrypt: PutSealed with plaintext in place of
  // ciphertext (the node checks only lengths), small enough to stay in the
  // table files and large enough to go to blob files.
  ASSERT_OK_AND_ASSIGN(std::string stored, StoredCiphertext("canary/large"));
  needles.push_back(
      Needle::Of("control ciphertext", stored.substr(stored.size() / 2, 64)));
  const std::string unencrypted = MakeMarker("UNENCRYPTED");
  needles.push_back(Needle::Of("control unencrypted", unencrypted));
  ASSERT_OK_AND_ASSIGN(v1::ObjectInfo model, client_->Head("canary/alone"));
  for (const size_t size : {size_t{1000}, size_t{300000}}) {
    v1::ObjectHeader header = model.header();
    header.mutable_object()->set_object_id(
        absl::StrCat("forgot-to-encrypt/", size));
    header.mutable_object()->set_version(1);
    header.set_plaintext_length(size);
    header.set_ciphertext_length(crypto::ChunkedCiphertextLength(size));
    std::istringstream in(
        RandomWithMarkers(header.ciphertext_length(), unencrypted, {500}));
    ASSERT_OK(client_->PutSealed(header, in).status());
  }

  // Reading back: a node that cached plaintext or keys would show it now.
  auto read_all = [&] {
    for (const auto& [id, data] : objects) {
      std::ostringstream out;
      ASSERT_OK(client_->Get(id, 0, out).status()) << id;
      ASSERT_TRUE(out.str() == data) << id;
    }
  };
  ASSERT_NO_FATAL_FAILURE(read_all());

  auto expect_nothing_secret = [](const ScanResult& scan) {
    for (const char* prefix :
         {"canary", "dek ", "share ", "kek ", "root key", "device key"}) {
      EXPECT_THAT(scan.Describe(prefix), ::testing::IsEmpty());
    }
  };
  auto found_in = [](const ScanResult& scan, absl::string_view needle,
                     absl::string_view kind) {
    return std::any_of(scan.hits.begin(), scan.hits.end(), [&](const Hit& h) {
      return h.needle == needle && FileKind(h.file) == kind;
    });
  };
  auto has_kind = [](const ScanResult& scan, absl::string_view kind) {
    return scan.HasFileMatching(
        [&](const std::string& f) { return FileKind(f) == kind; });
  };

  // 1. The node while both run: the WAL holds the latest writes, flushed
  // table and blob files the earlier ones.
  {
    SCOPED_TRACE("node running");
    ScanResult scan = Scan(sn_dir_, needles);
    std::cout << "node running: " << scan.Summary() << "\n";
    expect_nothing_secret(scan);
    for (const char* kind :
         {"wal", "sst", "blob", "manifest", "options", "info-log"}) {
      EXPECT_TRUE(has_kind(scan, kind))
          << "no " << kind << " file: " << absl::StrJoin(scan.files, ", ");
    }
    EXPECT_TRUE(scan.Found("control ciphertext"));
    // The unencrypted control is recent: it sits in the WAL.
    EXPECT_TRUE(found_in(scan, "control unencrypted", "wal"))
        << absl::StrJoin(scan.Describe("control"), "; ");
  }

  // 2. Restart the node: recovery writes what the WAL held into table and
  // blob files. Everything still reads back.
  client_.reset();
  storage_node_.reset();
  ASSERT_NO_FATAL_FAILURE(StartStorageNode());
  ASSERT_NO_FATAL_FAILURE(MakeClient());
  ASSERT_NO_FATAL_FAILURE(read_all());

  // 3. Everything shut down: what is on disk is final.
  client_.reset();
  storage_.reset();
  storage_node_.reset();
  for (KeyServiceUnderAudit& ks : key_services_) {
    ks.stub.reset();
    ks.server.reset();
  }
  {
    SCOPED_TRACE("node stopped after a restart");
    ScanResult scan = Scan(sn_dir_, needles);
    std::cout << "node stopped: " << scan.Summary() << "\n";
    expect_nothing_secret(scan);
    EXPECT_TRUE(scan.Found("control ciphertext"));
    // The unencrypted control now sits in a table file (the small object)
    // and a blob file (the large one): the scan reads both kinds, through
    // whatever block compression RocksDB gives table files.
    for (const char* kind : {"sst", "blob"}) {
      EXPECT_TRUE(found_in(scan, "control unencrypted", kind))
          << "not in any " << kind
          << " file: " << absl::StrJoin(scan.Describe("control"), "; ");
    }
  }

  // 4. Each key service's directory: no canary, no data key or share, no
  // KEK in the clear (the store seals them under the root key), the root
  // key only in its own file. The KEKs looked for are the ones on disk: the
  // store opened again with its root key holds the same material.
  for (size_t i = 0; i < key_services_.size(); ++i) {
    const KeyServiceUnderAudit& ks = key_services_[i];
    SCOPED_TRACE(ks.name);
    ScanResult scan = Scan(ks.dir, needles);
    std::cout << ks.name << " stopped: " << scan.Summary() << "\n";
    for (const char* prefix :
         {"canary", "dek ", "share ", "kek ", "device key", "control "}) {
      EXPECT_THAT(scan.Describe(prefix), ::testing::IsEmpty());
    }
    EXPECT_THAT(scan.Describe("root key"),
                ::testing::ElementsAre(
                    absl::StrCat("root key ", ks.name, " in root.key@0")));
    EXPECT_TRUE(has_kind(scan, "wal") && has_kind(scan, "manifest"))
        << absl::StrJoin(scan.files, ", ");

    ASSERT_OK_AND_ASSIGN(
        crypto::SecretBytes root,
        key_service::LoadOrCreateRootKey(ks.dir + "/root.key",
                                         /*create_if_missing=*/false));
    ASSERT_OK_AND_ASSIGN(
        std::unique_ptr<key_service::KeyStore> store,
        key_service::KeyStore::Open(ks.dir + "/keys", std::move(root)));
    EXPECT_TRUE(KekMaterial(*store) == keks[i]);
  }
}

INSTANTIATE_TEST_SUITE_P(Modes, ResidencyAuditTest,
                         ::testing::Values(CustodyMode::kCustodian,
                                           CustodyMode::kE2e,
                                           CustodyMode::kSplit),
                         [](const ::testing::TestParamInfo<CustodyMode>& info) {
                           return std::string(CustodyModeName(info.param));
                         });

}  // namespace
}  // namespace residency::client
