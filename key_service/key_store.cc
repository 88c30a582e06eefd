#include "key_service/key_store.h"

#include <algorithm>
#include <utility>

#include "absl/strings/str_cat.h"
#include "crypto/big_endian.h"
#include "crypto/key_file.h"
#include "crypto/random.h"
#include "google/protobuf/util/time_util.h"
#include "key_service/audit_format.h"
#include "residency/v1/key_store.pb.h"
#include "rocks/recovery.h"
#include "rocks/write.h"
#include "rocksdb/db.h"
#include "rocksdb/env.h"
#include "rocksdb/file_system.h"
#include "rocksdb/options.h"
#include "rocksdb/write_batch.h"

namespace residency::key_service {
namespace {

using ::residency::crypto::Aead;
using ::residency::crypto::AeadAlgorithm;
using ::residency::crypto::SecretBytes;
using ::residency::v1::KeyInfo;
using ::residency::v1::StoredKey;
using ::residency::v1::StoredSecret;

constexpr absl::string_view kKeyPrefix = "k/";
constexpr absl::string_view kSecretPrefix = "s/";

absl::Status RocksError(absl::string_view what, const rocksdb::Status& s) {
  return absl::InternalError(
      absl::StrCat("key store: ", what, ": ", s.ToString()));
}

std::string KekAssociatedData(absl::string_view key_id, uint32_t version,
                              absl::string_view info_bytes) {
  std::string ad("residency/kek/v1");
  ad.push_back('\0');
  crypto::AppendBigEndian32(&ad, static_cast<uint32_t>(key_id.size()));
  absl::StrAppend(&ad, key_id);
  crypto::AppendBigEndian32(&ad, version);
  absl::StrAppend(&ad, Sha256(info_bytes));
  return ad;
}

std::string SecretAssociatedData(absl::string_view name) {
  std::string ad("residency/secret/v1");
  ad.push_back('\0');
  absl::StrAppend(&ad, name);
  return ad;
}

google::protobuf::Timestamp ToProto(absl::Time t) {
  return google::protobuf::util::TimeUtil::NanosecondsToTimestamp(
      absl::ToUnixNanos(t));
}

}  // namespace

absl::StatusOr<SecretBytes> LoadOrCreateRootKey(const std::string& path,
                                                bool create_if_missing) {
  return crypto::LoadOrCreateKeyFile(path,
                                     {.what = "root key",
                                      .size = kRootKeySize,
                                      .create_if_missing = create_if_missing});
}

const SecretBytes* KeySnapshot::Material(uint32_t version) const {
  auto it = material.find(version);
  return it == material.end() ? nullptr : &it->second;
}

KeyStore::KeyStore(std::unique_ptr<rocksdb::Env> env,
                   std::unique_ptr<rocksdb::DB> db, Aead sealer,
                   std::function<absl::Time()> clock)
    : env_(std::move(env)),
      db_(std::move(db)),
      sealer_(std::move(sealer)),
      clock_(std::move(clock)),
      resumer_(std::make_unique<rocks::DiskErrorResumer>(db_.get())) {}

KeyStore::~KeyStore() = default;

absl::Status KeyStore::ResumeIfStopped() {
  if (!stopped_) return absl::OkStatus();
  const rocksdb::Status s = resumer_->Resume();
  if (s.IsBusy()) {
    return absl::UnavailableError(
        "key store: recovering from a disk error; try again");
  }
  if (s.IsTryAgain()) {
    return absl::ResourceExhaustedError(
        absl::StrCat("key store: writing stopped after a disk error and ",
                     s.getState(), "; the next write tries again"));
  }
  if (!s.ok()) {
    return absl::UnavailableError(absl::StrCat(
        "key store: writing stopped after a disk error; restart the key "
        "service once the disk is sound (",
        s.ToString(), ")"));
  }
  stopped_ = false;
  return absl::OkStatus();
}

void KeyStore::NoteWrite(const rocksdb::Status& status) {
  if (status.IsIOError()) stopped_ = true;
}

absl::StatusOr<std::unique_ptr<KeyStore>> KeyStore::Open(
    const std::string& dir, SecretBytes root_key,
    std::function<absl::Time()> clock,
    std::shared_ptr<rocksdb::FileSystem> file_system) {
  if (root_key.size() != kRootKeySize) {
    return absl::InvalidArgumentError(absl::StrCat(
        "root key must be ", kRootKeySize, " bytes, got ", root_key.size()));
  }
  absl::StatusOr<Aead> sealer =
      Aead::Create(AeadAlgorithm::kAes256Gcm, std::move(root_key));
  if (!sealer.ok()) return sealer.status();
  rocksdb::Options options;
  options.create_if_missing = true;
  options.paranoid_checks = true;
  options.listeners.push_back(std::make_shared<rocks::ManualRecovery>());
  std::unique_ptr<rocksdb::Env> env;
  if (file_system != nullptr) {
    env = rocksdb::NewCompositeEnv(std::move(file_system));
    options.env = env.get();
  }
  rocksdb::DB* raw = nullptr;
  rocksdb::Status s = rocksdb::DB::Open(options, dir, &raw);
  if (!s.ok()) return RocksError(absl::StrCat("cannot open ", dir), s);
  std::unique_ptr<KeyStore> store(
      new KeyStore(std::move(env), std::unique_ptr<rocksdb::DB>(raw),
                   *std::move(sealer), std::move(clock)));
  if (absl::Status loaded = store->LoadAll(); !loaded.ok()) return loaded;
  return store;
}

absl::Status KeyStore::LoadAll() {
  std::unique_ptr<rocksdb::Iterator> it(
      db_->NewIterator(rocksdb::ReadOptions()));
  absl::flat_hash_map<std::string, Snapshot> loaded;
  for (it->Seek(rocksdb::Slice(kKeyPrefix.data(), kKeyPrefix.size()));
       it->Valid() && it->key().starts_with(
                          rocksdb::Slice(kKeyPrefix.data(), kKeyPrefix.size()));
       it->Next()) {
    const std::string key_id = it->key().ToString().substr(kKeyPrefix.size());
    StoredKey stored;
    if (!stored.ParseFromArray(it->value().data(),
                               static_cast<int>(it->value().size()))) {
      return absl::DataLossError(absl::StrCat("key store: record of key '",
                                              key_id, "' does not parse"));
    }
    auto snapshot = std::make_shared<KeySnapshot>();
    if (!snapshot->info.ParseFromString(stored.info()) ||
        snapshot->info.key_id() != key_id) {
      return absl::DataLossError(absl::StrCat("key store: metadata of key '",
                                              key_id, "' does not parse"));
    }
    for (const StoredKey::SealedVersion& v : stored.sealed_versions()) {
      absl::StatusOr<SecretBytes> material = sealer_.DecryptToSecret(
          v.sealed_material(),
          KekAssociatedData(key_id, v.version(), stored.info()));
      if (!material.ok()) {
        return absl::DataLossError(absl::StrCat(
            "key store: version ", v.version(), " of key '", key_id,
            "' does not open under the root key (wrong root key file, or "
            "the key's record was modified): ",
            material.status().message()));
      }
      snapshot->material.emplace(v.version(), *std::move(material));
    }
    loaded.emplace(key_id, std::move(snapshot));
  }
  if (!it->status().ok()) return RocksError("scan", it->status());
  absl::MutexLock lock(&mu_);
  keys_ = std::move(loaded);
  return absl::OkStatus();
}

KeyStore::Snapshot KeyStore::Find(absl::string_view key_id) const {
  absl::ReaderMutexLock lock(&mu_);
  auto it = keys_.find(key_id);
  return it == keys_.end() ? nullptr : it->second;
}

std::vector<KeyStore::Snapshot> KeyStore::All() const {
  std::vector<Snapshot> all;
  {
    absl::ReaderMutexLock lock(&mu_);
    all.reserve(keys_.size());
    for (const auto& [id, key] : keys_) all.push_back(key);
  }
  std::sort(all.begin(), all.end(), [](const Snapshot& a, const Snapshot& b) {
    return a->info.key_id() < b->info.key_id();
  });
  return all;
}

size_t KeyStore::key_count() const {
  absl::ReaderMutexLock lock(&mu_);
  return keys_.size();
}

absl::StatusOr<KeyStore::Snapshot> KeyStore::Commit(
    std::shared_ptr<KeySnapshot> next) {
  const std::string& key_id = next->info.key_id();
  StoredKey stored;
  stored.set_info(next->info.SerializeAsString());
  for (const auto& [version, material] : next->material) {
    absl::StatusOr<std::string> sealed = sealer_.Encrypt(
        material.view(), KekAssociatedData(key_id, version, stored.info()));
    if (!sealed.ok()) return sealed.status();
    StoredKey::SealedVersion* v = stored.add_sealed_versions();
    v->set_version(version);
    for (const KeyInfo::Version& meta : next->info.versions()) {
      if (meta.version() == version)
        *v->mutable_created_at() = meta.created_at();
    }
    v->set_sealed_material(*std::move(sealed));
  }
  std::string value;
  if (!stored.SerializeToString(&value)) {
    return absl::InternalError("key store: cannot serialize a key record");
  }
  rocksdb::WriteOptions write_options;
  write_options.sync = true;
  const std::string db_key = absl::StrCat(kKeyPrefix, key_id);
  if (absl::Status resumed = ResumeIfStopped(); !resumed.ok()) return resumed;
  rocksdb::Status s = rocks::Put(db_.get(), write_options, db_key, value);
  NoteWrite(s);
  if (!s.ok()) return RocksError(absl::StrCat("write key '", key_id, "'"), s);
  Snapshot published = std::move(next);
  absl::MutexLock lock(&mu_);
  keys_[key_id] = published;
  return published;
}

absl::StatusOr<std::shared_ptr<KeySnapshot>> KeyStore::CopyForUpdate(
    absl::string_view key_id) const {
  Snapshot current = Find(key_id);
  if (current == nullptr) {
    return absl::NotFoundError(absl::StrCat("no key '", key_id, "'"));
  }
  auto next = std::make_shared<KeySnapshot>();
  next->info = current->info;
  for (const auto& [version, material] : current->material) {
    next->material.emplace(version, material.Clone());
  }
  return next;
}

absl::StatusOr<KeyStore::Snapshot> KeyStore::Create(absl::string_view key_id,
                                                    absl::string_view owner) {
  absl::MutexLock write_lock(&write_mu_);
  if (Find(key_id) != nullptr) {
    return absl::AlreadyExistsError(
        absl::StrCat("key '", key_id, "' already exists"));
  }
  absl::StatusOr<SecretBytes> material = crypto::RandomSecret(kKekSize);
  if (!material.ok()) return material.status();
  const google::protobuf::Timestamp now = ToProto(clock_());
  auto next = std::make_shared<KeySnapshot>();
  KeyInfo& info = next->info;
  info.set_key_id(std::string(key_id));
  info.set_owner(std::string(owner));
  info.set_state(KeyInfo::ENABLED);
  info.set_current_version(1);
  info.set_min_decryption_version(1);
  *info.mutable_created_at() = now;
  KeyInfo::Version* v = info.add_versions();
  v->set_version(1);
  *v->mutable_created_at() = now;
  next->material.emplace(1, *std::move(material));
  return Commit(std::move(next));
}

absl::StatusOr<KeyStore::Snapshot> KeyStore::Update(
    absl::string_view key_id, absl::string_view refusal,
    const std::function<absl::Status(KeySnapshot&)>& change) {
  absl::MutexLock write_lock(&write_mu_);
  absl::StatusOr<std::shared_ptr<KeySnapshot>> next = CopyForUpdate(key_id);
  if (!next.ok()) return next.status();
  if ((*next)->info.state() == KeyInfo::DESTROYED) {
    return absl::FailedPreconditionError(
        absl::StrCat("key '", key_id, "' is destroyed and ", refusal));
  }
  if (absl::Status s = change(**next); !s.ok()) return s;
  return Commit(*std::move(next));
}

absl::StatusOr<KeyStore::Snapshot> KeyStore::Rotate(absl::string_view key_id) {
  return Update(key_id, "cannot rotate", [&](KeySnapshot& key) {
    absl::StatusOr<SecretBytes> material = crypto::RandomSecret(kKekSize);
    if (!material.ok()) return material.status();
    const uint32_t version = key.info.current_version() + 1;
    key.info.set_current_version(version);
    KeyInfo::Version* v = key.info.add_versions();
    v->set_version(version);
    *v->mutable_created_at() = ToProto(clock_());
    key.material.emplace(version, *std::move(material));
    return absl::OkStatus();
  });
}

absl::StatusOr<KeyStore::Snapshot> KeyStore::SetMinDecryptionVersion(
    absl::string_view key_id, uint32_t version) {
  return Update(key_id, "has no minimum decryption version",
                [&](KeySnapshot& key) {
                  if (version == 0 || version > key.info.current_version()) {
                    return absl::InvalidArgumentError(absl::StrCat(
                        "minimum decryption version ", version, " for key '",
                        key_id, "' must be between 1 and the current version ",
                        key.info.current_version()));
                  }
                  key.info.set_min_decryption_version(version);
                  return absl::OkStatus();
                });
}

absl::StatusOr<KeyStore::Snapshot> KeyStore::SetEnabled(
    absl::string_view key_id, bool enabled) {
  return Update(
      key_id, enabled ? "cannot be enabled" : "cannot be disabled",
      [&](KeySnapshot& key) {
        key.info.set_state(enabled ? KeyInfo::ENABLED : KeyInfo::DISABLED);
        return absl::OkStatus();
      });
}

absl::StatusOr<KeyStore::Snapshot> KeyStore::Destroy(absl::string_view key_id) {
  absl::MutexLock write_lock(&write_mu_);
  Snapshot current = Find(key_id);
  if (current == nullptr) {
    return absl::NotFoundError(absl::StrCat("no key '", key_id, "'"));
  }
  Snapshot destroyed = current;
  if (current->info.state() != KeyInfo::DESTROYED) {
    auto next = std::make_shared<KeySnapshot>();
    next->info = current->info;
    next->info.set_state(KeyInfo::DESTROYED);
    next->info.clear_versions();
    absl::StatusOr<Snapshot> committed = Commit(std::move(next));
    if (!committed.ok()) return committed;
    destroyed = *std::move(committed);
  }
  // The old record (with sealed material) may still sit in the memtable,
  // the WAL or older table files. Flushing and compacting the key's range
  // rewrites it away. Done again on every Destroy, so a failed attempt can
  // be retried.
  const std::string db_key = absl::StrCat(kKeyPrefix, key_id);
  rocksdb::Slice begin(db_key);
  rocksdb::Slice end(db_key);
  rocksdb::Status s = db_->Flush(rocksdb::FlushOptions());
  if (s.ok()) {
    rocksdb::CompactRangeOptions compact;
    compact.bottommost_level_compaction =
        rocksdb::BottommostLevelCompaction::kForce;
    s = db_->CompactRange(compact, &begin, &end);
  }
  if (!s.ok()) {
    return RocksError(
        absl::StrCat("key '", key_id,
                     "' is destroyed, but older copies of its record could "
                     "not be compacted away (retry DestroyKey)"),
        s);
  }
  return destroyed;
}

absl::StatusOr<SecretBytes> KeyStore::LoadOrCreateSecret(absl::string_view name,
                                                         size_t size) {
  absl::MutexLock write_lock(&write_mu_);
  const std::string db_key = absl::StrCat(kSecretPrefix, name);
  std::string value;
  rocksdb::Status s = db_->Get(rocksdb::ReadOptions(), db_key, &value);
  if (s.ok()) {
    StoredSecret stored;
    if (!stored.ParseFromString(value)) {
      return absl::DataLossError(
          absl::StrCat("key store: secret '", name, "' does not parse"));
    }
    absl::StatusOr<SecretBytes> secret =
        sealer_.DecryptToSecret(stored.sealed(), SecretAssociatedData(name));
    if (!secret.ok()) {
      return absl::DataLossError(absl::StrCat(
          "key store: secret '", name,
          "' does not open under the root key (wrong root key file?)"));
    }
    if (secret->size() != size) {
      return absl::DataLossError(absl::StrCat("key store: secret '", name,
                                              "' has ", secret->size(),
                                              " bytes, expected ", size));
    }
    return secret;
  }
  if (!s.IsNotFound()) return RocksError(absl::StrCat("read ", db_key), s);
  absl::StatusOr<SecretBytes> secret = crypto::RandomSecret(size);
  if (!secret.ok()) return secret.status();
  absl::StatusOr<std::string> sealed =
      sealer_.Encrypt(secret->view(), SecretAssociatedData(name));
  if (!sealed.ok()) return sealed.status();
  StoredSecret stored;
  stored.set_sealed(*std::move(sealed));
  rocksdb::WriteOptions write_options;
  write_options.sync = true;
  if (absl::Status resumed = ResumeIfStopped(); !resumed.ok()) return resumed;
  s = rocks::Put(db_.get(), write_options, db_key, stored.SerializeAsString());
  NoteWrite(s);
  if (!s.ok()) return RocksError(absl::StrCat("write ", db_key), s);
  return secret;
}

}  // namespace residency::key_service
