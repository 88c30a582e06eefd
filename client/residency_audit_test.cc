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
#include "storage_node/server.h"
#include "tests/status_matchers.h"
#include "tls/credentials.h"
#include "tls/pki.h"

namespace residency::client {

// Test names and failure messages show the mode by name.
void PrintTo(CustodyMode mode, std::ostream* out) {
  *out << CustodyModeName(mode);
}

namespace {

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

// Bytes the scan looks for, with a name for the report. Never printed: a
// needle may be key material.
struct Needle {
  std::string name;
  std::string bytes;
};

// One needle found in one file.
struct Hit {
  std::string needle;
  std::string file;  // relative to the scanned root
  uint64_t offset = 0;
};

struct ScanResult {
  std::vector<Hit> hits;
  std::vector<std::string> files;  // every regular file read, relative
  uint64_t bytes = 0;

  std::vector<Hit> HitsOf(absl::string_view needle) const {
    std::vector<Hit> out;
    for (const Hit& h : hits) {
      if (h.needle == needle) out.push_back(h);
    }
    return out;
  }
  bool Found(absl::string_view needle) const { return !HitsOf(needle).empty(); }
  // Hits whose needle name starts with `prefix`, as "needle in file@offset".
  std::vector<std::string> Describe(absl::string_view prefix) const {
    std::vector<std::string> out;
    for (const Hit& h : hits) {
      if (absl::StartsWith(h.needle, prefix)) {
        out.push_back(absl::StrCat(h.needle, " in ", h.file, "@", h.offset));
      }
    }
    return out;
  }
  // "14 files, 61.2 MB: blob 3, info-log 1, ..." for the test log.
  std::string Summary() const;
  bool HasFileMatching(
      const std::function<bool(const std::string&)>& pred) const {
    return std::any_of(files.begin(), files.end(), pred);
  }
};

// What kind of RocksDB file a path is, from its name.
std::string FileKind(const std::string& relative) {
  const std::string name = fs::path(relative).filename().string();
  if (absl::EndsWith(name, ".log")) return "wal";
  if (absl::EndsWith(name, ".sst")) return "sst";
  if (absl::EndsWith(name, ".blob")) return "blob";
  if (absl::StartsWith(name, "MANIFEST-")) return "manifest";
  if (absl::StartsWith(name, "OPTIONS-")) return "options";
  if (name == "LOG" || absl::StartsWith(name, "LOG.old")) return "info-log";
  return "other";
}

std::string ScanResult::Summary() const {
  std::map<std::string, int> kinds;
  for (const std::string& f : files) ++kinds[FileKind(f)];
  return absl::StrCat(
      files.size(), " files, ", absl::StrFormat("%.1f", bytes / 1e6),
      " MB: ", absl::StrJoin(kinds, ", ", absl::PairFormatter(" ")));
}

// Reads every regular file under `root`, recursively and without following
// symbolic links, and reports each occurrence of each needle. A file that
// vanishes between listing and reading (RocksDB deletes obsolete files while
// it runs) is skipped; any other failure to read fails the test.
ScanResult Scan(const std::string& root, const std::vector<Needle>& needles) {
  ScanResult result;
  // Boyer-Moore-Horspool: the needles are 32 bytes and more, so a scan
  // skips through the data instead of comparing at every byte.
  using Searcher =
      std::boyer_moore_horspool_searcher<std::string::const_iterator>;
  std::vector<Searcher> searchers;
  for (const Needle& needle : needles) {
    EXPECT_FALSE(needle.bytes.empty()) << needle.name;
    searchers.emplace_back(needle.bytes.begin(), needle.bytes.end());
  }
  std::error_code ec;
  fs::recursive_directory_iterator it(root, ec), end;
  EXPECT_FALSE(ec) << "cannot list " << root << ": " << ec.message();
  for (; !ec && it != end; it.increment(ec)) {
    const fs::path path = it->path();
    std::error_code type_ec;
    if (!fs::is_regular_file(fs::symlink_status(path, type_ec))) continue;
    std::ifstream in(path, std::ios::binary);
    if (!in) {
      EXPECT_FALSE(fs::exists(path)) << "cannot read " << path;
      continue;
    }
    std::ostringstream contents;
    contents << in.rdbuf();
    const std::string data = std::move(contents).str();
    const std::string relative = fs::relative(path, root).string();
    result.files.push_back(relative);
    result.bytes += data.size();
    for (size_t i = 0; i < needles.size(); ++i) {
      for (auto at = data.begin();;) {
        at = std::search(at, data.end(), searchers[i]);
        if (at == data.end()) break;
        result.hits.push_back({needles[i].name, relative,
                               static_cast<uint64_t>(at - data.begin())});
        ++at;
      }
    }
  }
  // A vanished directory ends the walk early; anything else is a failure.
  EXPECT_TRUE(!ec || ec == std::errc::no_such_file_or_directory)
      << "walking " << root << ": " << ec.message();
  return result;
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

// The scanner itself: bytes planted anywhere in a nested tree, at any
// alignment, are found with their file and offset; a tree without them
// reports nothing.
TEST(ResidencyScanTest, FindsPlantedBytesAnywhereInTheTree) {
  char tmpl[] = "/tmp/residency_scan_test.XXXXXX";
  ASSERT_NE(mkdtemp(tmpl), nullptr);
  const std::string root = tmpl;
  fs::create_directories(root + "/a/b/c");
  const std::string marker = MakeMarker("planted");
  const std::string key = *crypto::RandomBytes(32);
  {
    std::ofstream(root + "/a/b/c/deep.bin", std::ios::binary)
        << *crypto::RandomBytes(100001) << marker;
    std::ofstream(root + "/top.bin", std::ios::binary)
        << key << *crypto::RandomBytes(5000) << key;
    std::ofstream(root + "/a/clean.bin", std::ios::binary)
        << *crypto::RandomBytes(70000);
    std::ofstream(root + "/a/b/empty", std::ios::binary);
  }
  const std::vector<Needle> needles = {{"marker", marker}, {"key", key}};
  ScanResult scan = Scan(root, needles);
  EXPECT_EQ(scan.files.size(), 4u);
  ASSERT_EQ(scan.HitsOf("marker").size(), 1u);
  EXPECT_EQ(scan.HitsOf("marker")[0].file, "a/b/c/deep.bin");
  EXPECT_EQ(scan.HitsOf("marker")[0].offset, 100001u);
  ASSERT_EQ(scan.HitsOf("key").size(), 2u);
  EXPECT_EQ(scan.HitsOf("key")[0].file, "top.bin");
  EXPECT_EQ(scan.HitsOf("key")[0].offset, 0u);
  EXPECT_EQ(scan.HitsOf("key")[1].offset, 5032u);

  // Every offset within a block of 64, in one file.
  {
    std::string data = *crypto::RandomBytes(64 * 100);
    for (size_t i = 0; i < 64; ++i) {
      data.replace(i * 100 + i % 64, key.size(), key);
    }
    std::ofstream(root + "/a/b/many.bin", std::ios::binary) << data;
  }
  EXPECT_EQ(Scan(root, needles).HitsOf("key").size(), 66u);

  fs::remove(root + "/a/b/c/deep.bin");
  fs::remove(root + "/top.bin");
  fs::remove(root + "/a/b/many.bin");
  EXPECT_THAT(Scan(root, needles).hits, ::testing::IsEmpty());
  fs::remove_all(root);
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
    char tmpl[] = "/tmp/residency_audit_test.XXXXXX";
    ASSERT_NE(mkdtemp(tmpl), nullptr);
    dir_ = tmpl;
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
    std::filesystem::remove_all(dir_);
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
      v1::UnwrapRequest request;
      request.mutable_metadata()->set_request_id("audit-unwrap");
      request.mutable_metadata()->mutable_justification()->set_reason(
          v1::Justification::CUSTOMER_INITIATED_ACCESS);
      *request.mutable_wrapped_key() = wrapped;
      *request.mutable_context() = header.object();
      v1::UnwrapResponse response;
      grpc::ClientContext context;
      grpc::Status status = ks.stub->Unwrap(&context, request, &response);
      if (!status.ok()) {
        return absl::InternalError(
            absl::StrCat("Unwrap at ", ks.name, ": ", status.error_message()));
      }
      return crypto::SecretBytes::CopyFrom(response.plaintext_key());
    }
    return absl::InternalError(
        absl::StrCat("no key service is '", wrapped.key_service(), "'"));
  }

  // The data key of alice's stored object, and in e2e and split custody
  // its two shares, as its owner gets them: the node's header, audited
  // Unwraps at the key services, the device key. The key must open the
  // stored ciphertext to `plaintext`, so the scan looks for the keys that
  // really protect the objects.
  absl::StatusOr<std::vector<Needle>> KeysOf(const std::string& id,
                                             const std::string& plaintext) {
    absl::StatusOr<v1::ObjectInfo> info = client_->Head(id);
    if (!info.ok()) return info.status();
    const v1::ObjectHeader& header = info->header();
    absl::StatusOr<std::string> context = crypto::EncodeObjectContext(
        header.object().owner(), header.object().object_id(),
        header.object().version());
    if (!context.ok()) return context.status();
    std::vector<Needle> out;
    std::optional<crypto::SecretBytes> dek;
    if (GetParam() == CustodyMode::kCustodian) {
      if (header.custody_mode() != v1::CUSTODY_MODE_CUSTODIAN ||
          header.wrapped_keys_size() != 1) {
        return absl::InternalError(id + ": not a custodian header");
      }
      absl::StatusOr<crypto::SecretBytes> key =
          UnwrapAtService(header, header.wrapped_keys(0));
      if (!key.ok()) return key.status();
      dek.emplace(*std::move(key));
    } else {
      if (header.wrapped_keys_size() != 2) {
        return absl::InternalError(id + ": not a two-share header");
      }
      std::optional<crypto::SecretBytes> share[2];
      for (const v1::WrappedKey& wrapped : header.wrapped_keys()) {
        const uint32_t index = wrapped.share_index();
        if (index != 1 && index != 2) {
          return absl::InternalError(id + ": share index out of range");
        }
        absl::StatusOr<crypto::SecretBytes> key =
            wrapped.wrapper() == v1::WrappedKey::DEVICE
                ? key_service::UnwrapDataKey(device_key_->key, wrapped.key_id(),
                                             wrapped.key_version(), *context,
                                             wrapped.wrapped())
                : UnwrapAtService(header, wrapped);
        if (!key.ok()) return key.status();
        out.push_back(
            {absl::StrCat("share ", index, " ", id), std::string(key->view())});
        share[index - 1].emplace(*std::move(key));
      }
      if (!share[0] || !share[1]) {
        return absl::InternalError(id + ": a share is missing");
      }
      absl::StatusOr<crypto::SecretBytes> derived =
          DeriveDataKey(GetParam(), *share[0], *share[1], *context);
      if (!derived.ok()) return derived.status();
      dek.emplace(*std::move(derived));
    }
    absl::StatusOr<std::string> ciphertext = StoredCiphertext(id);
    if (!ciphertext.ok()) return ciphertext.status();
    absl::StatusOr<std::string> opened =
        crypto::ChunkedDecrypt(*dek, *context, *ciphertext);
    if (!opened.ok() || *opened != plaintext) {
      return absl::InternalError(
          id + ": the recovered data key does not open the stored object");
    }
    out.push_back({"dek " + id, std::string(dek->view())});
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
  std::vector<Needle> needles = {{"canary", canary}};
  for (const auto& [id, data] : objects) {
    ASSERT_OK_AND_ASSIGN(std::vector<Needle> keys, KeysOf(id, data));
    needles.insert(needles.end(), keys.begin(), keys.end());
  }
  std::vector<std::vector<std::string>> keks;
  for (KeyServiceUnderAudit& ks : key_services_) {
    keks.push_back(KekMaterial(ks.server->custodian().keys()));
    ASSERT_EQ(keks.back().size(), 2u) << ks.name;
    for (size_t v = 0; v < keks.back().size(); ++v) {
      needles.push_back(
          {absl::StrCat("kek ", ks.name, " v", v + 1), keks.back()[v]});
    }
    ASSERT_OK_AND_ASSIGN(
        crypto::SecretBytes root,
        key_service::LoadOrCreateRootKey(ks.dir + "/root.key",
                                         /*create_if_missing=*/false));
    needles.push_back({"root key " + ks.name, std::string(root.view())});
  }
  if (device_key_ != nullptr) {
    needles.push_back({"device key", std::string(device_key_->key.view())});
  }

  // Controls: what the node does store must be found. A slice from the
  // middle of the large object's stored ciphertext, and the plaintext of a
  // client that forgot to encrypt: PutSealed with plaintext in place of
  // ciphertext (the node checks only lengths), small enough to stay in the
  // table files and large enough to go to blob files.
  ASSERT_OK_AND_ASSIGN(std::string stored, StoredCiphertext("canary/large"));
  needles.push_back(
      {"control ciphertext", stored.substr(stored.size() / 2, 64)});
  const std::string unencrypted = MakeMarker("UNENCRYPTED");
  needles.push_back({"control unencrypted", unencrypted});
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
