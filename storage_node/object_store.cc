#include "storage_node/object_store.h"

#include <algorithm>
#include <utility>

#include "absl/strings/escaping.h"
#include "absl/strings/match.h"
#include "absl/strings/str_cat.h"
#include "crypto/big_endian.h"
#include "crypto/random.h"
#include "google/protobuf/timestamp.pb.h"
#include "google/protobuf/util/time_util.h"
#include "residency/v1/object_store.pb.h"
#include "rocks/recovery.h"
#include "rocks/write.h"
#include "rocksdb/cache.h"
#include "rocksdb/db.h"
#include "rocksdb/env.h"
#include "rocksdb/file_system.h"
#include "rocksdb/iterator.h"
#include "rocksdb/options.h"
#include "rocksdb/slice.h"
#include "rocksdb/snapshot.h"
#include "rocksdb/table.h"
#include "rocksdb/write_batch.h"
#include "storage_node/store_names.h"

namespace residency::storage_node {
namespace {

using store::CheckNames;
using store::CheckObjectId;
using store::CheckObjectIdPrefix;
using store::CheckOwner;
using store::ClampPageSize;
using store::kMaxSegmentBytes;
using store::kUploadIdSize;
using store::ObjectName;
using store::Quoted;
using store::ReadBigEndian64;
using store::ToProto;
using store::VersionName;

using ::residency::v1::ObjectHeader;
using ::residency::v1::ObjectInfo;
using ::residency::v1::ObjectRef;
using ::residency::v1::PendingUpload;
using ::residency::v1::StatsResponse;
using ::residency::v1::StoredObject;

constexpr char kObjectTag = 'o';
constexpr char kSegmentTag = 'd';
constexpr char kPendingTag = 'u';

// Values from this size on go to BlobDB blob files: every full segment, and
// the last one of all but small objects. "o" and "u" records stay in the
// LSM tree.
constexpr uint64_t kMinBlobBytes = 4096;

// Eight 0xff bytes sort at or after every big-endian u64.
const std::string& MaxVersionSuffix() {
  static const std::string* const suffix = new std::string(8, '\xff');
  return *suffix;
}

// A RocksDB failure as a status: a full disk is RESOURCE_EXHAUSTED, another
// I/O error UNAVAILABLE (the disk may come back; nothing was acknowledged),
// corruption DATA_LOSS, the rest INTERNAL.
absl::Status RocksError(absl::string_view what, const rocksdb::Status& s) {
  const std::string message =
      absl::StrCat("object store: ", what, ": ", s.ToString());
  if (s.IsNoSpace()) return absl::ResourceExhaustedError(message);
  if (s.IsIOError()) return absl::UnavailableError(message);
  if (s.IsCorruption()) return absl::DataLossError(message);
  return absl::InternalError(message);
}

rocksdb::Slice ToSlice(absl::string_view s) {
  return rocksdb::Slice(s.data(), s.size());
}

absl::string_view ToView(const rocksdb::Slice& s) {
  return absl::string_view(s.data(), s.size());
}

// Keys (layout in object_store.h). The 0x00 after the owner and after the
// object id ends names that cannot contain it, so an owner's (or an
// object's) keys form one contiguous range, sorted by object id (a shorter
// id sorts before its extensions, as 0x00 is the smallest byte) and then by
// version.

// "o" owner 0x00: every version of every object of the owner.
std::string OwnerPrefix(absl::string_view owner) {
  std::string key(1, kObjectTag);
  absl::StrAppend(&key, owner);
  key.push_back('\0');
  return key;
}

// "o" owner 0x00 object_id 0x00: every version of one object.
std::string ObjectPrefix(absl::string_view owner, absl::string_view object_id) {
  std::string key = OwnerPrefix(owner);
  absl::StrAppend(&key, object_id);
  key.push_back('\0');
  return key;
}

// The first key after every version of the object whose ObjectPrefix is
// `object_prefix`: the 0x00 that ends the id becomes 0x01. No other object's
// key falls in between, as ids contain no 0x00.
std::string AfterObject(absl::string_view object_prefix) {
  std::string key(object_prefix);
  key.back() = '\x01';
  return key;
}

std::string ObjectKey(absl::string_view owner, absl::string_view object_id,
                      uint64_t version) {
  std::string key = ObjectPrefix(owner, object_id);
  crypto::AppendBigEndian64(&key, version);
  return key;
}

struct ParsedObjectKey {
  absl::string_view owner;
  absl::string_view object_id;
  uint64_t version = 0;
};

// Splits an "o" key; false when it is not one the store writes.
bool ParseObjectKey(absl::string_view key, ParsedObjectKey* out) {
  if (key.empty() || key[0] != kObjectTag) return false;
  key.remove_prefix(1);
  const size_t owner_end = key.find('\0');
  if (owner_end == absl::string_view::npos) return false;
  out->owner = key.substr(0, owner_end);
  key.remove_prefix(owner_end + 1);
  const size_t id_end = key.find('\0');
  if (id_end == absl::string_view::npos) return false;
  out->object_id = key.substr(0, id_end);
  key.remove_prefix(id_end + 1);
  if (key.size() != 8) return false;
  out->version = ReadBigEndian64(key);
  return CheckOwner(out->owner).ok() && CheckObjectId(out->object_id).ok() &&
         out->version > 0;
}

// "d" upload_id: every segment of one upload.
std::string SegmentPrefix(absl::string_view upload_id) {
  std::string key(1, kSegmentTag);
  absl::StrAppend(&key, upload_id);
  return key;
}

// Exclusive end of an upload's segment range: longer than, and so after,
// every "d" upload_id u64 key.
std::string SegmentRangeEnd(absl::string_view upload_id) {
  return absl::StrCat(SegmentPrefix(upload_id), MaxVersionSuffix(), "\xff");
}

std::string SegmentKey(absl::string_view upload_id, uint64_t index) {
  std::string key = SegmentPrefix(upload_id);
  crypto::AppendBigEndian64(&key, index);
  return key;
}

std::string PendingKey(absl::string_view upload_id) {
  std::string key(1, kPendingTag);
  absl::StrAppend(&key, upload_id);
  return key;
}

// Adds the deletion of an upload's segments and its "u" record to `batch`.
void DeleteUpload(absl::string_view upload_id, rocksdb::WriteBatch* batch) {
  batch->DeleteRange(SegmentPrefix(upload_id), SegmentRangeEnd(upload_id));
  batch->Delete(PendingKey(upload_id));
}

// The StoredVersion in an "o" record, checked against its key.
absl::StatusOr<StoredVersion> ParseStoredVersion(const ParsedObjectKey& key,
                                                 absl::string_view value) {
  StoredObject record;
  const std::string name = VersionName(key.owner, key.object_id, key.version);
  if (!record.ParseFromArray(value.data(), static_cast<int>(value.size()))) {
    return absl::DataLossError(
        absl::StrCat("object store: record of ", name, " does not parse"));
  }
  const ObjectRef& ref = record.info().header().object();
  if (ref.owner() != key.owner || ref.object_id() != key.object_id ||
      ref.version() != key.version ||
      record.upload_id().size() != kUploadIdSize ||
      record.segment_bytes() == 0) {
    return absl::DataLossError(absl::StrCat(
        "object store: record of ", name,
        " names another object or has no valid upload id or segment size"));
  }
  StoredVersion stored;
  stored.info = std::move(*record.mutable_info());
  stored.upload_id = std::move(*record.mutable_upload_id());
  stored.segment_bytes = record.segment_bytes();
  return stored;
}

absl::StatusOr<StoredVersion> ParseStoredVersion(const rocksdb::Slice& key,
                                                 const rocksdb::Slice& value) {
  ParsedObjectKey parsed;
  if (!ParseObjectKey(ToView(key), &parsed)) {
    return absl::DataLossError(
        absl::StrCat("object store: malformed key ", Quoted(ToView(key))));
  }
  return ParseStoredVersion(parsed, ToView(value));
}

}  // namespace

// Holds an object's entry in locked_objects_ for its lifetime, waiting
// while another holder has it.
class RocksObjectStore::ObjectLock {
 public:
  ObjectLock(RocksObjectStore* store, std::string object_prefix)
      : store_(store), key_(std::move(object_prefix)) {
    absl::MutexLock lock(&store_->locks_mu_);
    Free free{&store_->locked_objects_, &key_};
    store_->locks_mu_.Await(absl::Condition(&free));
    store_->locked_objects_.insert(key_);
  }
  ~ObjectLock() {
    absl::MutexLock lock(&store_->locks_mu_);
    store_->locked_objects_.erase(key_);
  }
  ObjectLock(const ObjectLock&) = delete;
  ObjectLock& operator=(const ObjectLock&) = delete;

 private:
  // Evaluated by Await with locks_mu_ held.
  struct Free {
    const absl::flat_hash_set<std::string>* locked;
    const std::string* key;
    bool operator()() const { return !locked->contains(*key); }
  };

  RocksObjectStore* const store_;
  const std::string key_;
};

// The Upload returned by BeginPut. Segments are written unsynced as they
// fill; Commit makes them durable with the synced batch that publishes the
// "o" record.
class ObjectUpload final : public Upload {
 public:
  ObjectUpload(RocksObjectStore* store, ObjectHeader header,
               std::string upload_id, uint32_t segment_bytes)
      : store_(store),
        header_(std::move(header)),
        upload_id_(std::move(upload_id)),
        segment_bytes_(segment_bytes),
        segmenter_(Name(), header_.ciphertext_length(), segment_bytes) {}

  // Abandons an uncommitted upload. The deletion need not be synced: if it
  // is lost in a crash, the "u" record it removes is still there and Open
  // collects the upload.
  ~ObjectUpload() override {
    if (committed_) return;
    rocksdb::WriteBatch batch;
    DeleteUpload(upload_id_, &batch);
    // A failure leaves the "u" record in place, so Open collects it.
    if (rocks::Write(store_->db_.get(), rocksdb::WriteOptions(), &batch).ok()) {
      store_->NoteDeleted(segmenter_.received() - segmenter_.buffered());
    }
  }

  absl::Status Append(absl::string_view ciphertext) override {
    if (absl::Status s = CheckLive(); !s.ok()) return s;
    if (absl::Status s = segmenter_.Append(ciphertext, WriteSegmentFn());
        !s.ok()) {
      return Fail(std::move(s));
    }
    return absl::OkStatus();
  }

  absl::StatusOr<StoredVersion> Commit() override {
    if (absl::Status s = CheckLive(); !s.ok()) return s;
    if (absl::Status s = segmenter_.Finish(WriteSegmentFn()); !s.ok()) {
      return Fail(std::move(s));
    }
    // Another upload may have met a disk error since this one began. Before
    // the object's lock, which a resume (a flush) would hold up.
    absl::StatusOr<uint64_t> resumes = store_->ResumeIfStopped();
    if (!resumes.ok()) return Fail(resumes.status());
    const ObjectRef& ref = header_.object();
    RocksObjectStore::ObjectLock lock(
        store_, ObjectPrefix(ref.owner(), ref.object_id()));
    if (absl::Status s = store_->CheckNoVersionAtOrAbove(ref); !s.ok()) {
      return Fail(std::move(s));
    }
    StoredObject record;
    *record.mutable_info()->mutable_header() = header_;
    *record.mutable_info()->mutable_stored_at() =
        ToProto(store_->options_.clock());
    record.set_upload_id(upload_id_);
    record.set_segment_bytes(segment_bytes_);
    rocksdb::WriteBatch batch;
    batch.Put(ObjectKey(ref.owner(), ref.object_id(), ref.version()),
              record.SerializeAsString());
    batch.Delete(PendingKey(upload_id_));
    // A synced write syncs the whole write-ahead log up to and including
    // this batch (RocksDB syncs every live log file before acknowledging),
    // so the unsynced "u" record and segments written before it become
    // durable with it. Segments already flushed from the memtable are in
    // table and blob files, which RocksDB syncs before it records them in
    // the MANIFEST. Recovery replays the log as a prefix of the writes
    // (point-in-time recovery), so the "o" record is never recovered without
    // the segments before it.
    rocksdb::WriteOptions write_options;
    write_options.sync = true;
    rocksdb::Status s = rocks::Write(store_->db_.get(), write_options, &batch);
    if (!s.ok()) {
      absl::Status error = RocksError(absl::StrCat("commit ", Name()), s);
      store_->ResumeAfter(error, *resumes);
      return Fail(std::move(error));
    }
    committed_ = true;
    StoredVersion stored;
    stored.info = std::move(*record.mutable_info());
    stored.upload_id = upload_id_;
    stored.segment_bytes = segment_bytes_;
    return stored;
  }

 private:
  std::string Name() const {
    const ObjectRef& ref = header_.object();
    return VersionName(ref.owner(), ref.object_id(), ref.version());
  }

  absl::Status CheckLive() const {
    if (!status_.ok()) return status_;
    if (committed_) {
      return absl::FailedPreconditionError(
          absl::StrCat(Name(), ": upload already committed"));
    }
    return absl::OkStatus();
  }

  absl::Status Fail(absl::Status status) {
    status_ = status;
    return status;
  }

  store::Segmenter::Write WriteSegmentFn() {
    return [this](absl::string_view bytes) { return WriteSegment(bytes); };
  }

  // Unsynced: Commit's synced write makes it durable.
  absl::Status WriteSegment(absl::string_view bytes) {
    // Another upload may have met a disk error since this one began.
    absl::StatusOr<uint64_t> resumes = store_->ResumeIfStopped();
    if (!resumes.ok()) return resumes.status();
    rocksdb::Status s =
        rocks::Put(store_->db_.get(), rocksdb::WriteOptions(),
                   SegmentKey(upload_id_, next_segment_), ToSlice(bytes));
    if (!s.ok()) {
      absl::Status error = RocksError(
          absl::StrCat("write segment ", next_segment_, " of ", Name()), s);
      store_->ResumeAfter(error, *resumes);
      return error;
    }
    ++next_segment_;
    return absl::OkStatus();
  }

  RocksObjectStore* const store_;
  const ObjectHeader header_;
  const std::string upload_id_;
  const uint32_t segment_bytes_;
  store::Segmenter segmenter_;
  uint64_t next_segment_ = 0;
  absl::Status status_;  // first error, sticky
  bool committed_ = false;
};

RocksObjectStore::RocksObjectStore(std::unique_ptr<rocksdb::Env> env,
                                   std::unique_ptr<rocksdb::DB> db,
                                   ObjectStoreOptions options)
    : options_(std::move(options)),
      env_(std::move(env)),
      db_(std::move(db)),
      resumer_(std::make_unique<rocks::DiskErrorResumer>(db_.get())),
      reclaimer_([this] { ReclaimLoop(); }) {}

RocksObjectStore::~RocksObjectStore() {
  {
    absl::MutexLock lock(&reclaim_mu_);
    closing_ = true;
    reclaim_cv_.Signal();
  }
  // A collection in progress stops at its next step instead of finishing
  // the whole key range.
  db_->DisableManualCompaction();
  reclaimer_.join();
}

uint64_t RocksObjectStore::blob_file_bytes() const {
  uint64_t bytes = 0;
  if (!db_->GetIntProperty("rocksdb.live-blob-file-size", &bytes)) return 0;
  return bytes;
}

uint64_t RocksObjectStore::blob_garbage_bytes() const {
  uint64_t bytes = 0;
  if (!db_->GetIntProperty("rocksdb.live-blob-file-garbage-size", &bytes)) {
    return 0;
  }
  return bytes;
}

void RocksObjectStore::NoteDeleted(uint64_t bytes) {
  const uint64_t deleted = deleted_bytes_ += bytes;
  if (deleted < options_.reclaim_min_bytes ||
      static_cast<double>(deleted) <
          options_.reclaim_share * static_cast<double>(blob_file_bytes())) {
    return;
  }
  absl::MutexLock lock(&reclaim_mu_);
  reclaim_wanted_ = true;
  reclaim_cv_.Signal();
}

void RocksObjectStore::ReclaimLoop() {
  while (true) {
    bool collect = false;
    {
      absl::MutexLock lock(&reclaim_mu_);
      // ResumeAfter wakes this thread when writing stops.
      while (!reclaim_wanted_ && !closing_ &&
             !(stopped_.load() && !resumer_->gave_up())) {
        reclaim_cv_.Wait(&reclaim_mu_);
      }
      if (!reclaim_wanted_ && !closing_) {
        reclaim_cv_.WaitWithTimeout(&reclaim_mu_, options_.resume_every);
      }
      if (closing_) return;
      collect = reclaim_wanted_;
      reclaim_wanted_ = false;
    }
    if (collect) {
      // Resumes first if need be. A failure keeps the count of deleted
      // bytes, so the next deletion asks again; a disk failure also stops
      // writes (ResumeAfter).
      Collect(/*force=*/false).IgnoreError();
    } else if (stopped_.load() && !resumer_->gave_up()) {
      // Fails as long as the disk is full (without touching RocksDB), or
      // for good when only a reopen mends it, which ends the tries.
      ResumeIfStopped().IgnoreError();
    }
  }
}

absl::Status RocksObjectStore::ReclaimSpace() {
  return Collect(/*force=*/true);
}

absl::Status RocksObjectStore::CompactAll(bool collect_blobs,
                                          uint64_t resumes) {
  rocksdb::CompactRangeOptions compact;
  compact.bottommost_level_compaction =
      rocksdb::BottommostLevelCompaction::kForce;
  // Automatic compactions go on meanwhile: holding them back would let
  // level-0 files pile up until Puts stall.
  compact.exclusive_manual_compaction = false;
  if (collect_blobs) {
    // For this compaction only, and then for every blob file (age cutoff
    // 1.0): each is rewritten without its dead blobs.
    rocksdb::Status s =
        db_->SetOptions({{"enable_blob_garbage_collection", "true"},
                         {"blob_garbage_collection_age_cutoff", "1.0"}});
    if (!s.ok()) return RocksError("turn on blob garbage collection", s);
  }
  const rocksdb::Status compacted =
      db_->CompactRange(compact, nullptr, nullptr);
  if (collect_blobs) {
    rocksdb::Status s =
        db_->SetOptions({{"enable_blob_garbage_collection", "false"}});
    if (!s.ok() && compacted.ok()) {
      return RocksError("turn off blob garbage collection", s);
    }
  }
  if (!compacted.ok()) {
    absl::Status error = RocksError("collect deleted ciphertext", compacted);
    ResumeAfter(error, resumes);
    return error;
  }
  return absl::OkStatus();
}

absl::Status RocksObjectStore::Collect(bool force) {
  absl::MutexLock lock(&collect_mu_);
  absl::StatusOr<uint64_t> resumes = ResumeIfStopped();
  if (!resumes.ok()) return resumes.status();
  const uint64_t deleted = deleted_bytes_.load();
  // First a compaction that only drops the keys of deleted versions: RocksDB
  // then counts their blobs as garbage and removes blob files that hold
  // nothing else. It is cheap, since table files hold only keys and blob
  // references, and it is all that versions deleted together need.
  if (absl::Status s = CompactAll(/*collect_blobs=*/false, *resumes); !s.ok()) {
    return s;
  }
  // Blob files that mix live and dead blobs are rewritten only when their
  // garbage is a large share of all blob bytes: a rewrite copies every
  // live blob, so this bounds the copying to about one byte per byte
  // deleted (at the default share of 0.5).
  const uint64_t garbage = blob_garbage_bytes();
  const double total = static_cast<double>(blob_file_bytes());
  if (garbage > 0 && (force || static_cast<double>(garbage) >=
                                   options_.reclaim_share * total)) {
    if (absl::Status s = CompactAll(/*collect_blobs=*/true, *resumes);
        !s.ok()) {
      return s;
    }
  }
  // What was deleted during the compaction waits for the next collection.
  deleted_bytes_ -= deleted;
  return absl::OkStatus();
}

void RocksObjectStore::ResumeAfter(const absl::Status& write_error,
                                   uint64_t resumes) {
  if (!absl::IsUnavailable(write_error) &&
      !absl::IsResourceExhausted(write_error)) {
    return;
  }
  // A resume since the write began cleared the error the write met (a
  // write that failed after the resume met a new one, and the next write
  // notes it). Stopping now would refuse writes to a sound database, and
  // with the memtable just flushed, until a restart.
  absl::MutexLock lock(&resume_mu_);
  if (resumes_ != resumes || stopped_.load()) return;
  stopped_ = true;
  if (options_.on_writing) options_.on_writing(false);
  absl::MutexLock wake(&reclaim_mu_);
  reclaim_cv_.Signal();
}

absl::StatusOr<uint64_t> RocksObjectStore::ResumeIfStopped() {
  absl::MutexLock lock(&resume_mu_);
  if (!stopped_.load()) return resumes_;
  // A failed sync of the write-ahead log (EIO) is never resumed from: what
  // reached the disk is unknown, so writing stays stopped until the node
  // restarts and recovery replays the log. Nor is an empty memtable (see
  // rocks/recovery.h). The resumer remembers such a failure, so later
  // writes get it without another try and the background thread stops.
  const rocksdb::Status s = resumer_->Resume();
  if (s.IsBusy()) {
    return absl::UnavailableError(
        "object store: recovering from a disk error; try again");
  }
  if (s.IsTryAgain()) {
    return absl::ResourceExhaustedError(absl::StrCat(
        "object store: writing stopped after a disk error and ", s.getState(),
        "; it resumes by itself once there is room"));
  }
  if (s.IsAborted()) {
    return absl::UnavailableError(absl::StrCat(
        "object store: writing stopped after a disk error; restart the node "
        "once the disk is sound (",
        s.ToString(), ")"));
  }
  if (!s.ok()) {
    return RocksError(
        "writing stopped after a disk error; restart the node once the disk "
        "is sound",
        s);
  }
  ++resumes_;
  stopped_ = false;
  if (options_.on_writing) options_.on_writing(true);
  return resumes_;
}

absl::StatusOr<std::unique_ptr<ObjectStore>> ObjectStore::Open(
    const std::string& dir, ObjectStoreOptions options) {
  absl::StatusOr<std::unique_ptr<RocksObjectStore>> store =
      RocksObjectStore::Open(dir, std::move(options));
  if (!store.ok()) return store.status();
  return std::unique_ptr<ObjectStore>(*std::move(store));
}

absl::StatusOr<std::unique_ptr<RocksObjectStore>> RocksObjectStore::Open(
    const std::string& dir, ObjectStoreOptions options) {
  if (options.segment_bytes == 0 || options.segment_bytes > kMaxSegmentBytes) {
    return absl::InvalidArgumentError(absl::StrCat("segment_bytes must be 1-",
                                                   kMaxSegmentBytes, ", got ",
                                                   options.segment_bytes));
  }
  if (!options.clock) {
    return absl::InvalidArgumentError("object store: clock is not set");
  }
  if (options.resume_every <= absl::ZeroDuration()) {
    return absl::InvalidArgumentError(
        absl::StrCat("object store: resume_every must be positive, got ",
                     absl::FormatDuration(options.resume_every)));
  }
  rocksdb::Options db_options;
  db_options.create_if_missing = true;
  db_options.paranoid_checks = true;
  // Recovery stops at the first damaged log record, so what survives a
  // crash is a prefix of the writes (Commit and BeginPut rely on it).
  db_options.wal_recovery_mode = rocksdb::WALRecoveryMode::kPointInTimeRecovery;
  // Memory: at most two memtables (one being written, one being flushed)
  // and a fixed block cache, whatever the object sizes.
  db_options.write_buffer_size = options.write_buffer_bytes;
  db_options.max_write_buffer_number = 2;
  // Flushes and compactions hand their output to the disk a megabyte at a
  // time (sync_file_range) instead of in one burst at their final sync. A
  // memtable flush writes several megabytes of blobs, and as one burst it
  // queued every synced write behind it for milliseconds: this node's next
  // commit, and any other service's sync on the same disk (a key service's
  // audit append). Measured on one disk with a 1 MiB Put loop: the audit
  // append's fdatasync went from 0.48 to 0.28 ms on average, its p99 from
  // 6.3 to 2.7 ms.
  db_options.bytes_per_sync = 1 << 20;
  rocksdb::BlockBasedTableOptions table_options;
  table_options.block_cache = rocksdb::NewLRUCache(options.block_cache_bytes);
  db_options.table_factory.reset(
      rocksdb::NewBlockBasedTableFactory(table_options));
  // Segments go to blob files (BlobDB): compaction then moves only the small
  // keys and blob references instead of rewriting the ciphertext at every
  // level. Garbage collection stays off except in ReclaimSpace, which gives
  // the space of deleted objects back. Ciphertext does not compress.
  db_options.enable_blob_files = true;
  db_options.min_blob_size = kMinBlobBytes;
  db_options.enable_blob_garbage_collection = false;
  db_options.blob_compression_type = rocksdb::kNoCompression;

  // The store resumes after a disk error itself (ResumeIfStopped).
  db_options.listeners.push_back(std::make_shared<rocks::ManualRecovery>());

  std::unique_ptr<rocksdb::Env> env;
  if (options.file_system != nullptr) {
    env = rocksdb::NewCompositeEnv(options.file_system);
    db_options.env = env.get();
  }

  rocksdb::DB* raw = nullptr;
  rocksdb::Status s = rocksdb::DB::Open(db_options, dir, &raw);
  if (!s.ok()) return RocksError(absl::StrCat("cannot open ", dir), s);
  std::unique_ptr<RocksObjectStore> store(new RocksObjectStore(
      std::move(env), std::unique_ptr<rocksdb::DB>(raw), std::move(options)));
  if (absl::Status collected = store->CollectPendingUploads();
      !collected.ok()) {
    return collected;
  }
  // Garbage RocksDB has already found (blobs of versions deleted before a
  // restart, whose compaction has run) counts as deleted.
  store->NoteDeleted(store->blob_garbage_bytes());
  return store;
}

absl::Status RocksObjectStore::CollectPendingUploads() {
  const std::string begin(1, kPendingTag);
  const std::string end(1, kPendingTag + 1);
  rocksdb::Slice upper(end);
  rocksdb::ReadOptions read_options;
  read_options.iterate_upper_bound = &upper;
  std::unique_ptr<rocksdb::Iterator> it(db_->NewIterator(read_options));
  rocksdb::WriteBatch batch;
  for (it->Seek(begin); it->Valid(); it->Next()) {
    const absl::string_view key = ToView(it->key());
    if (key.size() != 1 + kUploadIdSize) {
      return absl::DataLossError(absl::StrCat(
          "object store: malformed pending upload key ", Quoted(key)));
    }
    DeleteUpload(key.substr(1), &batch);
  }
  if (!it->status().ok())
    return RocksError("scan pending uploads", it->status());
  if (batch.Count() == 0) return absl::OkStatus();
  rocksdb::WriteOptions write_options;
  write_options.sync = true;
  rocksdb::Status s = rocks::Write(db_.get(), write_options, &batch);
  if (!s.ok()) return RocksError("delete interrupted uploads", s);
  return absl::OkStatus();
}

absl::StatusOr<std::optional<StoredVersion>> RocksObjectStore::Latest(
    absl::string_view owner, absl::string_view object_id) const {
  const std::string prefix = ObjectPrefix(owner, object_id);
  // The bound keeps the backward seek from wandering through other objects'
  // keys (or deletion tombstones) when this one has no version.
  rocksdb::Slice lower(prefix);
  rocksdb::ReadOptions read_options;
  read_options.iterate_lower_bound = &lower;
  std::unique_ptr<rocksdb::Iterator> it(db_->NewIterator(read_options));
  it->SeekForPrev(absl::StrCat(prefix, MaxVersionSuffix()));
  if (!it->Valid()) {
    if (!it->status().ok()) {
      return RocksError(absl::StrCat("read ", ObjectName(owner, object_id)),
                        it->status());
    }
    return std::nullopt;
  }
  if (!it->key().starts_with(prefix)) return std::nullopt;
  absl::StatusOr<StoredVersion> stored =
      ParseStoredVersion(it->key(), it->value());
  if (!stored.ok()) return stored.status();
  return *std::move(stored);
}

absl::Status RocksObjectStore::CheckNoVersionAtOrAbove(
    const ObjectRef& ref) const {
  absl::StatusOr<std::optional<StoredVersion>> latest =
      Latest(ref.owner(), ref.object_id());
  if (!latest.ok()) return latest.status();
  if (latest->has_value()) {
    const uint64_t existing = (*latest)->info.header().object().version();
    if (existing >= ref.version()) {
      return store::VersionTaken(
          VersionName(ref.owner(), ref.object_id(), ref.version()), existing);
    }
  }
  return absl::OkStatus();
}

absl::StatusOr<std::unique_ptr<Upload>> RocksObjectStore::BeginPut(
    const ObjectHeader& header) {
  const ObjectRef& ref = header.object();
  if (absl::Status s =
          store::CheckNewVersion(header, options_.max_object_bytes);
      !s.ok()) {
    return s;
  }
  absl::StatusOr<uint64_t> resumes = ResumeIfStopped();
  if (!resumes.ok()) return resumes.status();
  if (absl::Status s = CheckNoVersionAtOrAbove(ref); !s.ok()) return s;
  absl::StatusOr<std::string> upload_id = crypto::RandomBytes(kUploadIdSize);
  if (!upload_id.ok()) return upload_id.status();

  // Written before any segment and unsynced: recovery restores a prefix of
  // the writes, so any segment that survives a crash comes with this record
  // and Open collects both.
  PendingUpload pending;
  *pending.mutable_object() = ref;
  pending.set_upload_id(*upload_id);
  *pending.mutable_started_at() = ToProto(options_.clock());
  rocksdb::Status s =
      rocks::Put(db_.get(), rocksdb::WriteOptions(), PendingKey(*upload_id),
                 pending.SerializeAsString());
  if (!s.ok()) {
    absl::Status error = RocksError(
        absl::StrCat("begin upload of ",
                     VersionName(ref.owner(), ref.object_id(), ref.version())),
        s);
    ResumeAfter(error, *resumes);
    return error;
  }
  return std::make_unique<ObjectUpload>(
      this, header, *std::move(upload_id),
      static_cast<uint32_t>(options_.segment_bytes));
}

absl::StatusOr<StoredVersion> RocksObjectStore::Head(
    absl::string_view owner, absl::string_view object_id,
    uint64_t version) const {
  if (absl::Status s = CheckNames(owner, object_id); !s.ok()) return s;
  if (version == 0) {
    absl::StatusOr<std::optional<StoredVersion>> latest =
        Latest(owner, object_id);
    if (!latest.ok()) return latest.status();
    if (!latest->has_value()) {
      return absl::NotFoundError(
          absl::StrCat(ObjectName(owner, object_id), " has no version"));
    }
    return **std::move(latest);
  }
  const std::string key = ObjectKey(owner, object_id, version);
  rocksdb::PinnableSlice value;
  rocksdb::Status s =
      db_->Get(rocksdb::ReadOptions(), db_->DefaultColumnFamily(), key, &value);
  if (s.IsNotFound()) {
    return absl::NotFoundError(
        absl::StrCat(VersionName(owner, object_id, version), " not found"));
  }
  if (!s.ok()) {
    return RocksError(
        absl::StrCat("read ", VersionName(owner, object_id, version)), s);
  }
  return ParseStoredVersion(ParsedObjectKey{owner, object_id, version},
                            ToView(value));
}

absl::Status RocksObjectStore::ReadCiphertext(
    const StoredVersion& version, CiphertextRange range,
    const std::function<bool(absl::string_view)>& sink) const {
  if (absl::Status s = store::CheckReadRange(version, range); !s.ok()) {
    return s;
  }
  const ObjectRef& ref = version.info.header().object();
  const std::string name =
      VersionName(ref.owner(), ref.object_id(), ref.version());
  // Every read below sees the same state, so a concurrent Delete cannot
  // remove segments halfway through.
  rocksdb::ManagedSnapshot snapshot(db_.get());
  rocksdb::ReadOptions read_options;
  read_options.snapshot = snapshot.snapshot();
  {
    rocksdb::PinnableSlice record;
    rocksdb::Status s = db_->Get(
        read_options, db_->DefaultColumnFamily(),
        ObjectKey(ref.owner(), ref.object_id(), ref.version()), &record);
    if (s.IsNotFound()) {
      return absl::NotFoundError(absl::StrCat(name, " was deleted"));
    }
    if (!s.ok()) return RocksError(absl::StrCat("read ", name), s);
    absl::StatusOr<StoredVersion> current = ParseStoredVersion(
        ParsedObjectKey{ref.owner(), ref.object_id(), ref.version()},
        ToView(record));
    if (!current.ok()) return current.status();
    // The same name may have been deleted and uploaded again.
    if (current->upload_id != version.upload_id) {
      return absl::NotFoundError(
          absl::StrCat(name, " was deleted (and stored again)"));
    }
  }
  rocksdb::PinnableSlice segment;
  return store::SendSegments(
      version, range,
      [&](uint64_t index) -> absl::StatusOr<absl::string_view> {
        segment.Reset();
        rocksdb::Status s =
            db_->Get(read_options, db_->DefaultColumnFamily(),
                     SegmentKey(version.upload_id, index), &segment);
        if (s.IsNotFound()) return absl::NotFoundError("missing");
        if (!s.ok()) {
          return RocksError(absl::StrCat("read segment ", index, " of ", name),
                            s);
        }
        return ToView(segment);
      },
      sink);
}

absl::StatusOr<RocksObjectStore::ListResult> RocksObjectStore::List(
    absl::string_view owner, absl::string_view object_id_prefix,
    bool all_versions, uint32_t page_size, absl::string_view page_token) const {
  if (absl::Status s = CheckOwner(owner); !s.ok()) return s;
  if (absl::Status s = CheckObjectIdPrefix(object_id_prefix); !s.ok()) {
    return s;
  }
  page_size = ClampPageSize(page_size);
  const std::string list_prefix =
      absl::StrCat(OwnerPrefix(owner), object_id_prefix);

  // The token is the last key of the previous page. It must be a key this
  // listing could have returned: another owner's or prefix's key would
  // otherwise let the listing escape its range.
  std::string start = list_prefix;
  bool skip_start = false;
  if (!page_token.empty()) {
    std::string last_key;
    ParsedObjectKey parsed;
    if (!absl::WebSafeBase64Unescape(page_token, &last_key) ||
        !absl::StartsWith(last_key, list_prefix) ||
        !ParseObjectKey(last_key, &parsed)) {
      return absl::InvalidArgumentError(absl::StrCat(
          "page_token is not a token of a listing of owner ", Quoted(owner),
          " with object_id_prefix ", Quoted(object_id_prefix)));
    }
    if (all_versions) {
      start = std::move(last_key);
      skip_start = true;
    } else {
      start = AfterObject(ObjectPrefix(parsed.owner, parsed.object_id));
    }
  }

  ListResult result;
  std::unique_ptr<rocksdb::Iterator> it(
      db_->NewIterator(rocksdb::ReadOptions()));
  it->Seek(start);
  if (skip_start && it->Valid() && ToView(it->key()) == start) it->Next();
  std::string last_key;
  while (it->Valid() && it->key().starts_with(list_prefix)) {
    if (result.objects.size() == page_size) {
      // More follow: the page ends here.
      absl::WebSafeBase64Escape(last_key, &result.next_page_token);
      break;
    }
    ParsedObjectKey parsed;
    if (!ParseObjectKey(ToView(it->key()), &parsed)) {
      return absl::DataLossError(absl::StrCat("object store: malformed key ",
                                              Quoted(ToView(it->key()))));
    }
    std::string object_prefix;
    if (!all_versions) {
      // Jump to the object's last (latest) version. The iterator reads one
      // implicit snapshot, so the version it was on is still there.
      object_prefix = ObjectPrefix(parsed.owner, parsed.object_id);
      it->SeekForPrev(absl::StrCat(object_prefix, MaxVersionSuffix()));
      if (!it->Valid()) break;  // an error, reported below
      if (!it->key().starts_with(object_prefix)) {
        return absl::InternalError(
            absl::StrCat("object store: listing lost its place at ",
                         ObjectName(parsed.owner, parsed.object_id)));
      }
    }
    absl::StatusOr<StoredVersion> stored =
        ParseStoredVersion(it->key(), it->value());
    if (!stored.ok()) return stored.status();
    result.objects.push_back(std::move(stored->info));
    last_key = it->key().ToString();
    if (all_versions) {
      it->Next();
    } else {
      it->Seek(AfterObject(object_prefix));
    }
  }
  if (!it->status().ok()) {
    return RocksError(absl::StrCat("list ", Quoted(owner)), it->status());
  }
  return result;
}

absl::StatusOr<uint64_t> RocksObjectStore::Delete(absl::string_view owner,
                                                  absl::string_view object_id,
                                                  uint64_t version) {
  if (absl::Status s = CheckNames(owner, object_id); !s.ok()) return s;
  absl::StatusOr<uint64_t> resumes = ResumeIfStopped();
  if (!resumes.ok()) return resumes.status();
  const std::string prefix = ObjectPrefix(owner, object_id);
  ObjectLock lock(this, prefix);
  rocksdb::WriteBatch batch;
  uint64_t deleted = 0;
  uint64_t deleted_bytes = 0;
  if (version > 0) {
    absl::StatusOr<StoredVersion> stored = Head(owner, object_id, version);
    if (!stored.ok()) return stored.status();
    batch.Delete(ObjectKey(owner, object_id, version));
    batch.DeleteRange(SegmentPrefix(stored->upload_id),
                      SegmentRangeEnd(stored->upload_id));
    deleted = 1;
    deleted_bytes = stored->info.header().ciphertext_length();
  } else {
    const std::string end = AfterObject(prefix);
    rocksdb::Slice upper(end);
    rocksdb::ReadOptions read_options;
    read_options.iterate_upper_bound = &upper;
    std::unique_ptr<rocksdb::Iterator> it(db_->NewIterator(read_options));
    for (it->Seek(prefix); it->Valid(); it->Next()) {
      absl::StatusOr<StoredVersion> stored =
          ParseStoredVersion(it->key(), it->value());
      if (!stored.ok()) return stored.status();
      batch.Delete(it->key());
      batch.DeleteRange(SegmentPrefix(stored->upload_id),
                        SegmentRangeEnd(stored->upload_id));
      ++deleted;
      deleted_bytes += stored->info.header().ciphertext_length();
    }
    if (!it->status().ok()) {
      return RocksError(absl::StrCat("read ", ObjectName(owner, object_id)),
                        it->status());
    }
    if (deleted == 0) {
      return absl::NotFoundError(
          absl::StrCat(ObjectName(owner, object_id), " has no version"));
    }
  }
  rocksdb::WriteOptions write_options;
  write_options.sync = true;
  rocksdb::Status s = rocks::Write(db_.get(), write_options, &batch);
  if (!s.ok()) {
    absl::Status error =
        RocksError(absl::StrCat("delete ", ObjectName(owner, object_id)), s);
    ResumeAfter(error, *resumes);
    return error;
  }
  NoteDeleted(deleted_bytes);
  return deleted;
}

absl::Status RocksObjectStore::ForEachObject(
    absl::string_view owner,
    const std::function<bool(const StoredVersion&)>& visit) const {
  if (absl::Status s = CheckOwner(owner); !s.ok()) return s;
  const std::string prefix = OwnerPrefix(owner);
  std::unique_ptr<rocksdb::Iterator> it(
      db_->NewIterator(rocksdb::ReadOptions()));
  for (it->Seek(prefix); it->Valid() && it->key().starts_with(prefix);
       it->Next()) {
    absl::StatusOr<StoredVersion> stored =
        ParseStoredVersion(it->key(), it->value());
    if (!stored.ok()) return stored.status();
    if (!visit(*stored)) return absl::OkStatus();
  }
  if (!it->status().ok()) {
    return RocksError(absl::StrCat("list ", Quoted(owner)), it->status());
  }
  return absl::OkStatus();
}

absl::StatusOr<std::vector<StatsResponse::OwnerUsage>> RocksObjectStore::Usage(
    absl::string_view owner) const {
  std::string prefix(1, kObjectTag);
  if (!owner.empty()) {
    if (absl::Status s = CheckOwner(owner); !s.ok()) return s;
    prefix = OwnerPrefix(owner);
  }
  std::vector<StatsResponse::OwnerUsage> usage;
  std::string last_object;  // ObjectPrefix of the last version counted
  std::unique_ptr<rocksdb::Iterator> it(
      db_->NewIterator(rocksdb::ReadOptions()));
  for (it->Seek(prefix); it->Valid() && it->key().starts_with(prefix);
       it->Next()) {
    ParsedObjectKey parsed;
    if (!ParseObjectKey(ToView(it->key()), &parsed)) {
      return absl::DataLossError(absl::StrCat("object store: malformed key ",
                                              Quoted(ToView(it->key()))));
    }
    absl::StatusOr<StoredVersion> stored =
        ParseStoredVersion(parsed, ToView(it->value()));
    if (!stored.ok()) return stored.status();
    if (usage.empty() || usage.back().owner() != parsed.owner) {
      usage.emplace_back().set_owner(std::string(parsed.owner));
      last_object.clear();
    }
    StatsResponse::OwnerUsage& entry = usage.back();
    std::string object = ObjectPrefix(parsed.owner, parsed.object_id);
    if (object != last_object) {
      entry.set_object_count(entry.object_count() + 1);
      last_object = std::move(object);
    }
    const ObjectHeader& header = stored->info.header();
    entry.set_version_count(entry.version_count() + 1);
    entry.set_ciphertext_bytes(entry.ciphertext_bytes() +
                               header.ciphertext_length());
    entry.set_plaintext_bytes(entry.plaintext_bytes() +
                              header.plaintext_length());
  }
  if (!it->status().ok()) return RocksError("usage scan", it->status());
  if (!owner.empty() && usage.empty()) {
    usage.emplace_back().set_owner(std::string(owner));
  }
  return usage;
}

uint64_t RocksObjectStore::pending_uploads() const {
  const std::string begin(1, kPendingTag);
  const std::string end(1, kPendingTag + 1);
  rocksdb::Slice upper(end);
  rocksdb::ReadOptions read_options;
  read_options.iterate_upper_bound = &upper;
  std::unique_ptr<rocksdb::Iterator> it(db_->NewIterator(read_options));
  uint64_t count = 0;
  for (it->Seek(begin); it->Valid(); it->Next()) ++count;
  return count;
}

}  // namespace residency::storage_node
