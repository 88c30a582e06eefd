#ifndef RESIDENCY_STORAGE_NODE_OBJECT_STORE_H_
#define RESIDENCY_STORAGE_NODE_OBJECT_STORE_H_

#include <atomic>
#include <cstdint>
#include <functional>
#include <memory>
#include <optional>
#include <string>
#include <thread>
#include <vector>

#include "absl/base/thread_annotations.h"
#include "absl/container/flat_hash_set.h"
#include "absl/status/status.h"
#include "absl/status/statusor.h"
#include "absl/strings/string_view.h"
#include "absl/synchronization/mutex.h"
#include "absl/time/time.h"
#include "residency/v1/storage.pb.h"

namespace rocksdb {
class DB;
class Env;
class FileSystem;
}  // namespace rocksdb

namespace residency::rocks {
class DiskErrorResumer;
}  // namespace residency::rocks

namespace residency::storage_node {

struct ObjectStoreOptions {
  // Ciphertext is stored in segments of this many bytes (the last one of an
  // object may be shorter); ranged reads fetch only the segments they need.
  size_t segment_bytes = 256 * 1024;
  // Largest object accepted (ciphertext bytes).
  uint64_t max_object_bytes = uint64_t{4} << 30;
  // RocksDB memory: memtable size (two may exist) and block cache. Together
  // with the segment size they bound what a Put or Get holds in memory.
  size_t write_buffer_bytes = 8 << 20;
  size_t block_cache_bytes = 8 << 20;
  std::function<absl::Time()> clock = absl::Now;
  // Space of deleted versions: ciphertext sits in BlobDB blob files, which
  // RocksDB rewrites to drop dead blobs only when blob garbage collection
  // runs. Collecting on every compaction relocates live blobs over and over
  // (it took most of the node's CPU under steady Puts), so the store
  // collects only once the ciphertext deleted since the last collection
  // reaches both bounds below (see RocksObjectStore::ReclaimSpace).
  double reclaim_share = 0.5;  // of the blob file bytes, garbage included
  uint64_t reclaim_min_bytes = uint64_t{64} << 20;
  // The file system RocksDB writes through; null is the machine's. Fault
  // tests put one here that fails as a full or broken disk would.
  std::shared_ptr<rocksdb::FileSystem> file_system;
  // Told when the RocksDB store stops writing after a disk error (false:
  // every write is refused until a resume succeeds or the store is opened
  // again) and when it writes again (true). Called from a writing thread or
  // the store's background thread, with a store lock held: it must not
  // call the store.
  std::function<void(bool writing)> on_writing;
  // While writing is stopped, the store also tries to resume this often by
  // itself, not only at the next write: a node that its health took out of
  // rotation gets no writes to bring it back. It stops trying once a
  // resume has failed in a way only a reopen mends. Must be positive.
  absl::Duration resume_every = absl::Seconds(2);
};

// A stored version as the store knows it: the info a client sees plus
// where its ciphertext lives.
struct StoredVersion {
  residency::v1::ObjectInfo info;
  std::string upload_id;       // 16 bytes
  uint32_t segment_bytes = 0;  // segment size it was written with
};

// One upload in progress. Obtained from ObjectStore::BeginPut; feed the
// ciphertext in order with Append, then Commit. Destroying it without a
// successful Commit abandons the upload: its pieces are deleted (and, if the
// process dies first, collected at the next Open).
//
// Not thread-safe: one upload is driven by one stream. It refers to the
// store that made it and must be destroyed before that store. After any
// failed call the upload is finished: later calls return the same error.
class Upload {
 public:
  virtual ~Upload() = default;
  // INVALID_ARGUMENT when the bytes would exceed the header's
  // ciphertext_length ("stream sends N bytes after the declared length").
  // Memory: holds at most one segment.
  virtual absl::Status Append(absl::string_view ciphertext) = 0;
  // Checks that exactly ciphertext_length bytes arrived (INVALID_ARGUMENT
  // otherwise), then makes the version visible atomically and durably
  // (one synced write). ALREADY_EXISTS if a version at or above this one
  // became visible meanwhile. Returns the stored info.
  virtual absl::StatusOr<StoredVersion> Commit() = 0;
};

// Ranges are ciphertext byte offsets.
struct CiphertextRange {
  uint64_t offset = 0;
  uint64_t length = 0;
};

// Where a storage node keeps object versions: the seam between NodeCore and
// the bytes on disk. ObjectStore::Open gives the RocksDB store below; other
// implementations stand in for it in benchmarks (a store that discards, the
// baseline for the RocksDB cost) and in fault tests (a store that fails as a
// full or broken disk would).
//
// Contract for every implementation: all methods may be called
// concurrently; a version is visible only after its Upload::Commit returned
// OK, and then durably; errors are the codes listed for RocksObjectStore.
class ObjectStore {
 public:
  // The RocksDB store (RocksObjectStore) in `dir`, created if missing.
  static absl::StatusOr<std::unique_ptr<ObjectStore>> Open(
      const std::string& dir, ObjectStoreOptions options = {});
  virtual ~ObjectStore() = default;

  // Starts an upload for header.object (its version is the one stored).
  // The header must already be validated by the caller (envelope checks);
  // the store checks names, the size limit, and that no version at or above
  // it exists yet (ALREADY_EXISTS, checked again at Commit).
  virtual absl::StatusOr<std::unique_ptr<Upload>> BeginPut(
      const residency::v1::ObjectHeader& header) = 0;

  // One stored version; version 0 means the latest.
  virtual absl::StatusOr<StoredVersion> Head(absl::string_view owner,
                                             absl::string_view object_id,
                                             uint64_t version) const = 0;

  // Streams ciphertext bytes [range.offset, range.offset + range.length) of
  // a stored version to `sink` in pieces of at most segment_bytes. `sink`
  // returns false to stop (OK is returned). OUT_OF_RANGE when the range
  // does not lie within the ciphertext; NOT_FOUND when the version was
  // deleted while being read. The read sees the store as it was when the
  // read began, so NOT_FOUND means the version was gone by then (e.g.
  // deleted after `version` was obtained from Head); a delete that comes
  // later does not cut the read short.
  virtual absl::Status ReadCiphertext(
      const StoredVersion& version, CiphertextRange range,
      const std::function<bool(absl::string_view)>& sink) const = 0;

  struct ListResult {
    std::vector<residency::v1::ObjectInfo> objects;
    std::string next_page_token;  // empty on the last page
  };
  // Ordered by object id, then version. page_size is clamped to 1-1000.
  virtual absl::StatusOr<ListResult> List(
      absl::string_view owner, absl::string_view object_id_prefix,
      bool all_versions, uint32_t page_size,
      absl::string_view page_token) const = 0;

  // Deletes one version (version > 0) or all versions of the object.
  // Returns how many were deleted; NOT_FOUND when none existed.
  virtual absl::StatusOr<uint64_t> Delete(absl::string_view owner,
                                          absl::string_view object_id,
                                          uint64_t version) = 0;

  // Every stored version of the owner, ordered as List; `visit` returns
  // false to stop.
  virtual absl::Status ForEachObject(
      absl::string_view owner,
      const std::function<bool(const StoredVersion&)>& visit) const = 0;

  // Usage per owner (all owners when `owner` is empty), ordered by owner.
  // All owners: only owners with at least one version appear. A named owner
  // with no versions gets one entry of zeros.
  virtual absl::StatusOr<std::vector<residency::v1::StatsResponse::OwnerUsage>>
  Usage(absl::string_view owner) const = 0;

  // Uploads not committed (for tests and stats).
  virtual uint64_t pending_uploads() const = 0;
};

// The node's embedded object store on RocksDB: object versions, each a header
// (ObjectInfo) and its ciphertext, stored in segments.
//
// Layout (RocksDB keys; owner and object id are 1-128 and 1-1024 bytes, so
// the 0x00 separators are unambiguous after length checks; u64 are
// big-endian):
//   "o" owner 0x00 object_id 0x00 u64 version  -> StoredObject (visible;
//                                                 proto/residency/v1/
//                                                 object_store.proto)
//   "d" upload_id(16) u64 segment_index          -> ciphertext segment
//   "u" upload_id(16)                            -> pending upload record
// A version is visible exactly when its "o" record exists; the "o" record
// is written together with the deletion of its "u" record in one synced
// batch, after all segments. Pending records left by a crash are collected
// by Open (their segments deleted).
//
// Thread safety: all methods may be called concurrently; uploads of the same
// object are serialized at Commit.
//
// Errors: INVALID_ARGUMENT for malformed names, NOT_FOUND for a missing
// object or version, ALREADY_EXISTS, RESOURCE_EXHAUSTED for an object above
// max_object_bytes, DATA_LOSS for a stored record that does not parse or a
// segment that is missing (or RocksDB corruption). A disk that fails under
// RocksDB gives RESOURCE_EXHAUSTED when it is full and UNAVAILABLE for other
// I/O errors (a failed write or sync); either way the write was not
// acknowledged. Reads go on. Writes stay refused until the store resumes
// RocksDB (rocksdb::DB::Resume, tried at the next write, including the next
// segment or commit of an upload already under way; RocksDB's own
// automatic recovery is off): after a full disk it may, once there is space
// again, unless the memtable was empty (RocksDB 7.8 then keeps the failed
// log writer); after a failed sync it does not, since what reached the disk
// is then unknown. Otherwise the store must be opened again (the node
// restarted), which the error says. Other RocksDB failures are INTERNAL.
class RocksObjectStore final : public ObjectStore {
 public:
  static absl::StatusOr<std::unique_ptr<RocksObjectStore>> Open(
      const std::string& dir, ObjectStoreOptions options = {});
  ~RocksObjectStore() override;
  RocksObjectStore(const RocksObjectStore&) = delete;
  RocksObjectStore& operator=(const RocksObjectStore&) = delete;

  absl::StatusOr<std::unique_ptr<Upload>> BeginPut(
      const residency::v1::ObjectHeader& header) override;
  absl::StatusOr<StoredVersion> Head(absl::string_view owner,
                                     absl::string_view object_id,
                                     uint64_t version) const override;
  absl::Status ReadCiphertext(
      const StoredVersion& version, CiphertextRange range,
      const std::function<bool(absl::string_view)>& sink) const override;
  absl::StatusOr<ListResult> List(absl::string_view owner,
                                  absl::string_view object_id_prefix,
                                  bool all_versions, uint32_t page_size,
                                  absl::string_view page_token) const override;
  absl::StatusOr<uint64_t> Delete(absl::string_view owner,
                                  absl::string_view object_id,
                                  uint64_t version) override;
  absl::Status ForEachObject(
      absl::string_view owner,
      const std::function<bool(const StoredVersion&)>& visit) const override;
  absl::StatusOr<std::vector<residency::v1::StatsResponse::OwnerUsage>> Usage(
      absl::string_view owner) const override;
  // The "u" records present.
  uint64_t pending_uploads() const override;

  // Gives back the disk space of deleted versions now: compacts the whole
  // key range, which drops blob files that hold only deleted ciphertext,
  // then again with blob garbage collection on, which rewrites the others
  // without their dead blobs. The store also collects by itself, on a
  // background thread, once enough has been deleted (reclaim_min_bytes and
  // reclaim_share; the rewrite only when the garbage left is at least
  // reclaim_share of the blob bytes). Reads and writes go on meanwhile.
  // Errors as for writes (UNAVAILABLE, RESOURCE_EXHAUSTED for a failing
  // disk).
  absl::Status ReclaimSpace();
  // Bytes of blob files on disk, live and garbage ("rocksdb.live-blob-file-
  // size"); the garbage among them that compaction has found so far
  // ("rocksdb.live-blob-file-garbage-size"); and ciphertext deleted since
  // the last collection.
  uint64_t blob_file_bytes() const;
  uint64_t blob_garbage_bytes() const;
  uint64_t deleted_since_reclaim() const { return deleted_bytes_.load(); }

 private:
  friend class ObjectUpload;  // object_store.cc: the Upload implementation
  class ObjectLock;

  RocksObjectStore(std::unique_ptr<rocksdb::Env> env,
                   std::unique_ptr<rocksdb::DB> db, ObjectStoreOptions options);

  // Deletes every "u" record and its segments (uploads a crash interrupted).
  absl::Status CollectPendingUploads();
  // The latest visible version of an object, or nullopt when it has none.
  absl::StatusOr<std::optional<StoredVersion>> Latest(
      absl::string_view owner, absl::string_view object_id) const;
  // ALREADY_EXISTS when a version at or above ref.version() is visible.
  absl::Status CheckNoVersionAtOrAbove(
      const residency::v1::ObjectRef& ref) const;

  // After a write failed for the disk (UNAVAILABLE, RESOURCE_EXHAUSTED),
  // RocksDB refuses every write until it is resumed: ResumeAfter notes it,
  // and the next write (BeginPut, Delete, or an upload's segment or commit)
  // first resumes (ResumeIfStopped, which fails as long as the disk does),
  // as does the background thread every resume_every. A resume that fails
  // for good (only a reopen mends it) is remembered: later calls return its
  // error without trying again.
  // ResumeIfStopped returns the number of successful resumes so far; the
  // write hands it to ResumeAfter, which ignores a failure that a resume has
  // since cleared.
  void ResumeAfter(const absl::Status& write_error, uint64_t resumes);
  absl::StatusOr<uint64_t> ResumeIfStopped();

  // Counts deleted ciphertext and wakes the reclaimer when both bounds of
  // ObjectStoreOptions are reached.
  void NoteDeleted(uint64_t bytes);
  // The background thread: collects when NoteDeleted asks, and while
  // writing is stopped tries to resume every resume_every.
  void ReclaimLoop();
  // Drops deleted versions' keys, then rewrites blob files when `force` or
  // when their garbage reaches reclaim_share of all blob bytes.
  absl::Status Collect(bool force);
  // `resumes` as for ResumeAfter.
  absl::Status CompactAll(bool collect_blobs, uint64_t resumes);

  const ObjectStoreOptions options_;
  std::unique_ptr<rocksdb::Env> env_;  // over options_.file_system, or null
  std::unique_ptr<rocksdb::DB> db_;
  std::atomic<bool> stopped_{false};
  absl::Mutex resume_mu_;  // one Resume at a time
  // Resume() under resume_mu_; gave_up() from any thread.
  std::unique_ptr<rocks::DiskErrorResumer> resumer_;
  uint64_t resumes_ ABSL_GUARDED_BY(resume_mu_) = 0;

  // Objects (as "o" owner 0x00 object_id 0x00) whose commit or delete is in
  // progress: the version check and the write of one object happen while
  // its entry is held (ObjectLock), one holder at a time.
  absl::Mutex locks_mu_;
  absl::flat_hash_set<std::string> locked_objects_ ABSL_GUARDED_BY(locks_mu_);

  std::atomic<uint64_t> deleted_bytes_{0};
  absl::Mutex collect_mu_;  // one ReclaimSpace at a time
  absl::Mutex reclaim_mu_;
  absl::CondVar reclaim_cv_;
  bool reclaim_wanted_ ABSL_GUARDED_BY(reclaim_mu_) = false;
  bool closing_ ABSL_GUARDED_BY(reclaim_mu_) = false;
  std::thread reclaimer_;  // runs ReclaimLoop; last member, started last
};

}  // namespace residency::storage_node

#endif  // RESIDENCY_STORAGE_NODE_OBJECT_STORE_H_
