#ifndef RESIDENCY_KEY_SERVICE_KEY_STORE_H_
#define RESIDENCY_KEY_SERVICE_KEY_STORE_H_

#include <cstdint>
#include <functional>
#include <map>
#include <memory>
#include <string>
#include <vector>

#include "absl/base/thread_annotations.h"
#include "absl/container/flat_hash_map.h"
#include "absl/status/statusor.h"
#include "absl/strings/string_view.h"
#include "absl/synchronization/mutex.h"
#include "absl/time/time.h"
#include "crypto/aead.h"
#include "crypto/secret_bytes.h"
#include "key_service/wrapped_key.h"
#include "residency/v1/key_service.pb.h"

namespace rocksdb {
class DB;
class Env;
class FileSystem;
class Status;
}  // namespace rocksdb

namespace residency::rocks {
class DiskErrorResumer;
}  // namespace residency::rocks

namespace residency::key_service {

// Size of the root key (AES-256). KEK versions are kKekSize
// (wrapped_key.h).
inline constexpr size_t kRootKeySize = 32;

// Reads the root key from `path`. When the file does not exist and
// `create_if_missing` is set, creates it: 32 fresh random bytes, created
// exclusively with mode 0600 so no other user ever sees it, synced together
// with its directory entry. A file that exists is refused
// (FAILED_PRECONDITION) when group or others may read or write it or another
// user owns it, and (DATA_LOSS) when it is not exactly 32 bytes. A missing
// file without `create_if_missing` is NOT_FOUND. Other I/O failures are
// INTERNAL and name the path.
absl::StatusOr<crypto::SecretBytes> LoadOrCreateRootKey(
    const std::string& path, bool create_if_missing = true);

// One KEK as the service currently knows it: immutable, shared between the
// store and requests in flight, so a request keeps a consistent view while a
// rotation or destruction replaces the snapshot.
struct KeySnapshot {
  residency::v1::KeyInfo info;
  // Material of every stored version; empty once the key is destroyed.
  std::map<uint32_t, crypto::SecretBytes> material;

  // nullptr when the version was never created or is no longer stored.
  const crypto::SecretBytes* Material(uint32_t version) const;
};

// The KEKs of one key service, persisted in RocksDB and held in memory.
//
// On disk each key is one StoredKey record (proto/residency/v1/key_store.proto)
// under "k/" + key id. Every KEK version is sealed under the root key with
// AES-256-GCM (crypto::Aead):
//
//   sealed_material (60 bytes)
//     offset  size  field
//     0       12    nonce
//     12      32    KEK version material, encrypted
//     44      16    GCM tag
//   associated data
//     0       17    "residency/kek/v1" and a 0x00 byte
//     17      4     key id length L, big-endian
//     21      L     key id
//     21+L    4     key version, big-endian
//     25+L    32    SHA-256 of the record's serialized KeyInfo (StoredKey.info)
//
// so a sealed version moved to another key or version does not open, and
// neither does one whose key metadata (state, owner, minimum decryption
// version) was edited on disk. Other
// service secrets (the audit signing seed) are sealed the same way under
// "s/" + name, with associated data "residency/secret/v1" || 0x00 || name.
//
// Durability: every mutation is written with a synced WAL write before it
// returns, so a mutation that returned OK survives kill -9. Destroy also
// flushes and compacts the key's record so sealed copies of the destroyed
// material do not linger in the store's older files; if that fails it
// returns the error (the destruction itself is already durable) and a
// repeated Destroy tries again. Copies outside the store (a backup of the
// data directory together with the root key file) are beyond its reach.
//
// Disk errors: a write that fails for the disk stops writing. The next
// mutation resumes it when that is safe (rocks/recovery.h). It fails with
// RESOURCE_EXHAUSTED while the disk is still full (or UNAVAILABLE "try
// again" while RocksDB recovers), and the next one tries again. When only
// a reopen mends it, it fails with UNAVAILABLE, asking for a restart, and
// so does every later mutation, without another try; reads go on.
//
// Thread safety: all methods may be called concurrently. Mutations are
// serialized; Find takes a shared lock only.
//
// Errors: NOT_FOUND for an unknown key id, ALREADY_EXISTS from Create,
// FAILED_PRECONDITION for changes a destroyed key cannot take,
// INVALID_ARGUMENT for a minimum decryption version of 0 or above the
// current version, DATA_LOSS when a stored record does not open under the
// root key (wrong root key file or a modified store), RESOURCE_EXHAUSTED
// or UNAVAILABLE while writing is stopped after a disk error (see above),
// INTERNAL for RocksDB failures.
class KeyStore {
 public:
  using Snapshot = std::shared_ptr<const KeySnapshot>;

  // Opens (creating if needed) the store in `dir` and unseals every key.
  // RocksDB writes through `file_system` (null: the default one; tests put
  // a fault-injecting one here).
  static absl::StatusOr<std::unique_ptr<KeyStore>> Open(
      const std::string& dir, crypto::SecretBytes root_key,
      std::function<absl::Time()> clock = absl::Now,
      std::shared_ptr<rocksdb::FileSystem> file_system = nullptr);

  ~KeyStore();
  KeyStore(const KeyStore&) = delete;
  KeyStore& operator=(const KeyStore&) = delete;

  // nullptr when no key has this id.
  Snapshot Find(absl::string_view key_id) const;
  // Every key, ordered by key id.
  std::vector<Snapshot> All() const;

  // Creates a key with version 1, enabled, for `owner`.
  absl::StatusOr<Snapshot> Create(absl::string_view key_id,
                                  absl::string_view owner);
  // Adds a version with fresh material and makes it current.
  absl::StatusOr<Snapshot> Rotate(absl::string_view key_id);
  absl::StatusOr<Snapshot> SetMinDecryptionVersion(absl::string_view key_id,
                                                   uint32_t version);
  // Disable (the kill switch) and enable again.
  absl::StatusOr<Snapshot> SetEnabled(absl::string_view key_id, bool enabled);
  // Erases every version's material for good. Destroying a destroyed key
  // returns it unchanged.
  absl::StatusOr<Snapshot> Destroy(absl::string_view key_id);

  // Returns the named secret, creating it with `size` random bytes on first
  // use (durably, before returning).
  absl::StatusOr<crypto::SecretBytes> LoadOrCreateSecret(absl::string_view name,
                                                         size_t size);

  size_t key_count() const;

 private:
  KeyStore(std::unique_ptr<rocksdb::Env> env, std::unique_ptr<rocksdb::DB> db,
           crypto::Aead sealer, std::function<absl::Time()> clock);

  // Before a write: OK, RESOURCE_EXHAUSTED while the disk is still full,
  // or UNAVAILABLE while writing is stopped after a disk error that the
  // store cannot resume from (rocks/recovery.h).
  absl::Status ResumeIfStopped() ABSL_EXCLUSIVE_LOCKS_REQUIRED(write_mu_);
  // After a write: a failed one stops writing until ResumeIfStopped.
  void NoteWrite(const rocksdb::Status& status)
      ABSL_EXCLUSIVE_LOCKS_REQUIRED(write_mu_);

  absl::Status LoadAll();
  // Seals `next`, writes it durably, then publishes it.
  absl::StatusOr<Snapshot> Commit(std::shared_ptr<KeySnapshot> next)
      ABSL_EXCLUSIVE_LOCKS_REQUIRED(write_mu_);
  // Applies `change` to a copy of the key and commits it; a destroyed key
  // is refused (FAILED_PRECONDITION: "key 'ID' is destroyed and <refusal>").
  absl::StatusOr<Snapshot> Update(
      absl::string_view key_id, absl::string_view refusal,
      const std::function<absl::Status(KeySnapshot&)>& change);
  // A mutable copy of the current snapshot, or NOT_FOUND.
  absl::StatusOr<std::shared_ptr<KeySnapshot>> CopyForUpdate(
      absl::string_view key_id) const ABSL_EXCLUSIVE_LOCKS_REQUIRED(write_mu_);

  std::unique_ptr<rocksdb::Env> env_;  // over the file system, or null
  std::unique_ptr<rocksdb::DB> db_;
  const crypto::Aead sealer_;
  const std::function<absl::Time()> clock_;

  // Serializes mutations end to end (read, write, publish).
  absl::Mutex write_mu_;
  bool stopped_ ABSL_GUARDED_BY(write_mu_) = false;  // by a disk error
  std::unique_ptr<rocks::DiskErrorResumer> resumer_
      ABSL_PT_GUARDED_BY(write_mu_);
  mutable absl::Mutex mu_;
  absl::flat_hash_map<std::string, Snapshot> keys_ ABSL_GUARDED_BY(mu_);
};

}  // namespace residency::key_service

#endif  // RESIDENCY_KEY_SERVICE_KEY_STORE_H_
