#include "storage_node/rados_store.h"

#include <errno.h>

#include <algorithm>
#include <cstring>
#include <functional>
#include <map>
#include <optional>
#include <rados/librados.hpp>
#include <set>
#include <utility>

#include "absl/strings/escaping.h"
#include "absl/strings/match.h"
#include "absl/strings/str_cat.h"
#include "absl/strings/str_format.h"
#include "crypto/big_endian.h"
#include "crypto/random.h"
#include "google/protobuf/util/time_util.h"
#include "residency/v1/object_store.pb.h"
#include "storage_node/store_names.h"

namespace residency::storage_node {
namespace {

using ::residency::v1::ObjectHeader;
using ::residency::v1::ObjectRef;
using ::residency::v1::PendingUpload;
using ::residency::v1::SegmentGarbage;
using ::residency::v1::StatsResponse;
using ::residency::v1::StoredObject;
using store::CheckNames;
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

using Values = std::map<std::string, librados::bufferlist>;
using Assertions = std::map<std::string, std::pair<librados::bufferlist, int>>;

constexpr char kOwnersObject[] = "owners";
constexpr char kVersionTag = 'v';
constexpr char kLatestTag = 'l';
constexpr char kPendingTag = 'p';
constexpr char kGarbageTag = 'g';
// omap entries read per round trip when scanning an index.
constexpr uint64_t kScanBatch = 1000;
// Compare-and-set retries when another gateway changed an object between
// the read and the write.
constexpr int kCasAttempts = 8;

// A librados failure (a negative errno) as a status.
absl::Status RadosError(absl::string_view what, int r) {
  const std::string message =
      absl::StrCat("object store (RADOS): ", what, ": ", std::strerror(-r));
  switch (-r) {
    case ETIMEDOUT:
    case ENOTCONN:
    case ESHUTDOWN:
    case ECONNREFUSED:
    case EIO:
    case EAGAIN:
      return absl::UnavailableError(message);
    case ENOSPC:
    case EDQUOT:
      return absl::ResourceExhaustedError(message);
    case ENOENT:
      return absl::NotFoundError(message);
    default:
      return absl::InternalError(message);
  }
}

librados::bufferlist ToBuffer(absl::string_view bytes) {
  librados::bufferlist bl;
  bl.append(bytes.data(), static_cast<unsigned>(bytes.size()));
  return bl;
}

std::string BigEndian64(uint64_t value) {
  std::string out;
  crypto::AppendBigEndian64(&out, value);
  return out;
}

absl::Time FromProto(const google::protobuf::Timestamp& t) {
  return absl::FromUnixNanos(
      google::protobuf::util::TimeUtil::TimestampToNanoseconds(t));
}

std::string OwnerIndex(absl::string_view owner) {
  return absl::StrCat("owner.", absl::BytesToHexString(owner));
}

std::string SegmentObject(absl::string_view upload_id, uint64_t index) {
  return absl::StrFormat("seg.%s.%016x", absl::BytesToHexString(upload_id),
                         index);
}

std::string VersionPrefix(absl::string_view object_id) {
  std::string key(1, kVersionTag);
  absl::StrAppend(&key, object_id);
  key.push_back('\0');
  return key;
}

std::string VersionKey(absl::string_view object_id, uint64_t version) {
  std::string key = VersionPrefix(object_id);
  crypto::AppendBigEndian64(&key, version);
  return key;
}

// The last key an object's versions can have: listing from here skips the
// object.
std::string AfterVersions(absl::string_view object_id) {
  return VersionKey(object_id, ~uint64_t{0});
}

std::string LatestKey(absl::string_view object_id) {
  return absl::StrCat(std::string(1, kLatestTag), object_id);
}

std::string PendingKey(absl::string_view upload_id) {
  return absl::StrCat(std::string(1, kPendingTag), upload_id);
}

std::string GarbageKey(absl::string_view upload_id) {
  return absl::StrCat(std::string(1, kGarbageTag), upload_id);
}

// A "v" key's object id and version; false when it is not one.
bool ParseVersionKey(absl::string_view key, std::string* object_id,
                     uint64_t* version) {
  if (key.size() < 1 + 1 + 1 + 8 || key[0] != kVersionTag) return false;
  const size_t nul = key.size() - 9;
  if (key[nul] != '\0') return false;
  *object_id = std::string(key.substr(1, nul - 1));
  *version = ReadBigEndian64(key.substr(nul + 1));
  return store::CheckObjectId(*object_id).ok();
}

absl::StatusOr<StoredVersion> ParseStored(absl::string_view owner,
                                          absl::string_view key,
                                          librados::bufferlist& value) {
  std::string object_id;
  uint64_t version = 0;
  StoredObject record;
  if (!ParseVersionKey(key, &object_id, &version) ||
      !record.ParseFromArray(value.c_str(), static_cast<int>(value.length()))) {
    return absl::DataLossError(
        absl::StrCat("object store (RADOS): malformed record ", Quoted(key),
                     " of owner ", Quoted(owner)));
  }
  const ObjectRef& ref = record.info().header().object();
  if (ref.owner() != owner || ref.object_id() != object_id ||
      ref.version() != version || record.upload_id().size() != kUploadIdSize ||
      record.segment_bytes() == 0) {
    return absl::DataLossError(absl::StrCat(
        "object store (RADOS): record of ",
        VersionName(owner, object_id, version), " does not match its key"));
  }
  StoredVersion stored;
  stored.upload_id = record.upload_id();
  stored.segment_bytes = record.segment_bytes();
  stored.info = std::move(*record.mutable_info());
  return stored;
}

uint64_t SegmentCount(uint64_t length, uint32_t segment_bytes) {
  return segment_bytes == 0 ? 0 : (length + segment_bytes - 1) / segment_bytes;
}

// Reads `keys` of `oid`'s omap. A missing object reads as no keys.
absl::StatusOr<Values> GetKeys(librados::IoCtx& io, const std::string& oid,
                               const std::set<std::string>& keys) {
  Values values;
  int prval = 0;
  librados::ObjectReadOperation op;
  op.omap_get_vals_by_keys(keys, &values, &prval);
  const int r = io.operate(oid, &op, nullptr);
  if (r == -ENOENT) return Values();
  if (r < 0) return RadosError(absl::StrCat("read index ", oid), r);
  if (prval < 0) return RadosError(absl::StrCat("read index ", oid), prval);
  return values;
}

// Visits `oid`'s omap entries whose keys start with `prefix`, after
// `start_after`, in key order, until `visit` returns false. A missing
// object has none.
absl::Status ScanKeys(librados::IoCtx& io, const std::string& oid,
                      const std::string& prefix, std::string start_after,
                      const std::function<bool(const std::string&,
                                               librados::bufferlist&)>& visit) {
  while (true) {
    Values values;
    bool more = false;
    int prval = 0;
    librados::ObjectReadOperation op;
    op.omap_get_vals2(start_after, prefix, kScanBatch, &values, &more, &prval);
    const int r = io.operate(oid, &op, nullptr);
    if (r == -ENOENT) return absl::OkStatus();
    if (r < 0) return RadosError(absl::StrCat("scan index ", oid), r);
    if (prval < 0) return RadosError(absl::StrCat("scan index ", oid), prval);
    for (auto& [key, value] : values) {
      if (!visit(key, value)) return absl::OkStatus();
    }
    if (!more || values.empty()) return absl::OkStatus();
    start_after = values.rbegin()->first;
  }
}

// Visits the owner's visible versions whose "v" keys start with `prefix`,
// after `start_after`, in key order, parsed, until `visit` returns false.
// DATA_LOSS for a record that does not parse or match its key.
absl::Status ScanVersions(
    librados::IoCtx& io, absl::string_view owner, const std::string& prefix,
    const std::string& start_after,
    const std::function<bool(const std::string& key, StoredVersion stored)>&
        visit) {
  absl::Status inner;
  absl::Status s = ScanKeys(
      io, OwnerIndex(owner), prefix, start_after,
      [&](const std::string& key, librados::bufferlist& value) {
        absl::StatusOr<StoredVersion> stored = ParseStored(owner, key, value);
        if (!stored.ok()) {
          inner = stored.status();
          return false;
        }
        return visit(key, *std::move(stored));
      });
  if (!s.ok()) return s;
  return inner;
}

// Every entry of `oid`'s omap whose key starts with `prefix`, as (key,
// value) pairs in key order.
absl::StatusOr<std::vector<std::pair<std::string, std::string>>> ReadEntries(
    librados::IoCtx& io, const std::string& oid, const std::string& prefix) {
  std::vector<std::pair<std::string, std::string>> entries;
  absl::Status s =
      ScanKeys(io, oid, prefix, "",
               [&](const std::string& key, librados::bufferlist& value) {
                 entries.emplace_back(key, value.to_str());
                 return true;
               });
  if (!s.ok()) return s;
  return entries;
}

// The latest visible version of an object in the owner's index (0: none)
// and the "l" value it was read from ("" when absent), for a compare.
struct Latest {
  uint64_t version = 0;
  std::string value;
};

absl::StatusOr<Latest> ReadLatest(librados::IoCtx& io, const std::string& index,
                                  absl::string_view object_id) {
  const std::string key = LatestKey(object_id);
  absl::StatusOr<Values> values = GetKeys(io, index, {key});
  if (!values.ok()) return values.status();
  Latest latest;
  auto it = values->find(key);
  if (it == values->end()) return latest;
  latest.value = it->second.to_str();
  if (latest.value.size() != 8) {
    return absl::DataLossError(absl::StrCat(
        "object store (RADOS): malformed latest version of object ",
        Quoted(object_id)));
  }
  latest.version = ReadBigEndian64(latest.value);
  return latest;
}

void AssertEqual(Assertions& assertions, const std::string& key,
                 absl::string_view value) {
  assertions[key] = {ToBuffer(value), LIBRADOS_CMPXATTR_OP_EQ};
}

}  // namespace

// An upload this gateway runs: what the renewer needs to keep its "p"
// entry fresh, and what it learns (that a collector took it).
struct RadosObjectStore::Live {
  std::string index;        // the owner's index object
  std::string pending_key;  // its "p" key
  absl::Mutex mu;
  PendingUpload record ABSL_GUARDED_BY(mu);
  std::string value ABSL_GUARDED_BY(mu);  // the "p" value as last written
  // The value of a renewal whose outcome is unknown (it failed other than
  // by its compare: it may have been applied); empty when none.
  std::string attempted ABSL_GUARDED_BY(mu);
  bool lost ABSL_GUARDED_BY(mu) = false;  // a collector took it
  // Committing or abandoned: the renewer leaves the "p" entry alone.
  bool closed ABSL_GUARDED_BY(mu) = false;

  // Whether `current`, the "p" value in the index now, is one this
  // gateway wrote (the last confirmed or an unconfirmed renewal).
  bool Ours(const std::string& current) const ABSL_SHARED_LOCKS_REQUIRED(mu) {
    return current == value || (!attempted.empty() && current == attempted);
  }
};

class RadosUpload final : public Upload {
 public:
  RadosUpload(RadosObjectStore* store, ObjectHeader header,
              std::string upload_id, uint32_t segment_bytes,
              std::shared_ptr<RadosObjectStore::Live> live)
      : store_(store),
        header_(std::move(header)),
        upload_id_(std::move(upload_id)),
        segment_bytes_(segment_bytes),
        live_(std::move(live)),
        segmenter_(Name(), header_.ciphertext_length(), segment_bytes) {}

  // Abandons an upload that did not commit: its "p" entry becomes a
  // garbage entry (compare-and-set, so a collector that took it first
  // wins) and the segments written are removed. What fails here is left
  // for a collector.
  ~RadosUpload() override {
    if (outcome_ == Outcome::kCollected) {
      RemoveWrittenSegments();
      return;
    }
    if (outcome_ != Outcome::kOpen) return;
    store_->RemoveLive(upload_id_);
    std::string value;
    {
      absl::MutexLock lock(&live_->mu);
      live_->closed = true;
      if (live_->lost) {
        // A collector has the entry; what was written after it looked is
        // this upload's to remove.
        RemoveWrittenSegments();
        return;
      }
      value = live_->value;
      if (!live_->attempted.empty()) {
        absl::StatusOr<Values> now =
            GetKeys(*store_->io_, live_->index, {live_->pending_key});
        if (!now.ok()) return;  // left for a collector
        auto it = now->find(live_->pending_key);
        if (it == now->end() || !live_->Ours(it->second.to_str())) {
          RemoveWrittenSegments();
          return;
        }
        value = it->second.to_str();
      }
    }
    SegmentGarbage garbage;
    garbage.set_upload_id(upload_id_);
    garbage.set_segment_count(next_segment_);
    *garbage.mutable_due_at() = ToProto(store_->options_.store.clock());
    Assertions assertions;
    AssertEqual(assertions, live_->pending_key, value);
    int cmp = 0;
    librados::ObjectWriteOperation op;
    op.omap_cmp(assertions, &cmp);
    op.omap_rm_keys({live_->pending_key});
    op.omap_set(
        {{GarbageKey(upload_id_), ToBuffer(garbage.SerializeAsString())}});
    const int r = store_->io_->operate(live_->index, &op);
    if (r == -ECANCELED) {
      // A collector took it meanwhile.
      RemoveWrittenSegments();
      return;
    }
    if (r < 0) return;  // left for a collector
    if (!RemoveWrittenSegments()) return;
    Assertions done;
    AssertEqual(done, GarbageKey(upload_id_), garbage.SerializeAsString());
    librados::ObjectWriteOperation drop;
    drop.omap_cmp(done, &cmp);
    drop.omap_rm_keys({GarbageKey(upload_id_)});
    store_->io_->operate(live_->index, &drop);
  }

  absl::Status Append(absl::string_view ciphertext) override {
    if (absl::Status s = CheckLive(); !s.ok()) return s;
    return Fail(segmenter_.Append(ciphertext, WriteSegmentFn()));
  }

  absl::StatusOr<StoredVersion> Commit() override {
    if (absl::Status s = CheckLive(); !s.ok()) return s;
    if (absl::Status s = segmenter_.Finish(WriteSegmentFn()); !s.ok()) {
      return Fail(std::move(s));
    }
    // From here the renewer leaves the "p" entry alone; the commit's
    // compare needs its value to stay what it is.
    store_->RemoveLive(upload_id_);
    std::string pending_value;
    std::string attempted;
    {
      absl::MutexLock lock(&live_->mu);
      live_->closed = true;
      if (live_->lost) {
        outcome_ = Outcome::kCollected;
        return Fail(Collected());
      }
      pending_value = live_->value;
      attempted = live_->attempted;
    }
    const ObjectRef& ref = header_.object();
    StoredObject record;
    *record.mutable_info()->mutable_header() = header_;
    *record.mutable_info()->mutable_stored_at() =
        ToProto(store_->options_.store.clock());
    record.set_upload_id(upload_id_);
    record.set_segment_bytes(segment_bytes_);
    const std::string record_bytes = record.SerializeAsString();
    for (int attempt = 0; attempt < kCasAttempts; ++attempt) {
      absl::StatusOr<Latest> latest =
          ReadLatest(*store_->io_, live_->index, ref.object_id());
      if (!latest.ok()) return Fail(latest.status());
      if (latest->version >= ref.version()) {
        return Fail(store::VersionTaken(Name(), latest->version));
      }
      Assertions assertions;
      AssertEqual(assertions, live_->pending_key, pending_value);
      AssertEqual(assertions, LatestKey(ref.object_id()), latest->value);
      int cmp = 0;
      librados::ObjectWriteOperation op;
      op.omap_cmp(assertions, &cmp);
      op.omap_rm_keys({live_->pending_key});
      op.omap_set(
          {{VersionKey(ref.object_id(), ref.version()), ToBuffer(record_bytes)},
           {LatestKey(ref.object_id()), ToBuffer(BigEndian64(ref.version()))}});
      const int r = store_->io_->operate(live_->index, &op);
      if (r == 0) {
        outcome_ = Outcome::kCommitted;
        StoredVersion stored;
        stored.info = std::move(*record.mutable_info());
        stored.upload_id = upload_id_;
        stored.segment_bytes = segment_bytes_;
        return stored;
      }
      if (r != -ECANCELED) {
        // The write may or may not have been applied: leave everything in
        // place. If it was not, the "p" entry, no longer renewed, is
        // collected after abandoned_after.
        outcome_ = Outcome::kUnknown;
        status_ = RadosError(absl::StrCat("commit ", Name()), r);
        return status_;
      }
      // A compare failed: "l" moved, a renewal of unknown outcome was
      // applied, the "p" entry was collected, or this very commit was
      // applied by an earlier send of it.
      const std::string version_key =
          VersionKey(ref.object_id(), ref.version());
      absl::StatusOr<Values> now = GetKeys(*store_->io_, live_->index,
                                           {live_->pending_key, version_key});
      if (!now.ok()) return Fail(now.status());
      auto it = now->find(live_->pending_key);
      if (it != now->end() &&
          (it->second.to_str() == pending_value ||
           (!attempted.empty() && it->second.to_str() == attempted))) {
        pending_value = it->second.to_str();
        continue;
      }
      auto committed = now->find(version_key);
      if (it == now->end() && committed != now->end()) {
        absl::StatusOr<StoredVersion> stored =
            ParseStored(ref.owner(), version_key, committed->second);
        if (stored.ok() && stored->upload_id == upload_id_) {
          outcome_ = Outcome::kCommitted;
          return stored;
        }
      }
      outcome_ = Outcome::kCollected;
      status_ = Collected();
      return status_;
    }
    return Fail(absl::AbortedError(
        absl::StrCat(Name(), ": the object kept changing under the commit")));
  }

 private:
  // kUnknown: a commit whose write may or may not have been applied;
  // kCollected: a collector took the upload as abandoned.
  enum class Outcome { kOpen, kCommitted, kUnknown, kCollected };

  std::string Name() const {
    const ObjectRef& ref = header_.object();
    return VersionName(ref.owner(), ref.object_id(), ref.version());
  }

  absl::Status Collected() const {
    return absl::UnavailableError(absl::StrCat(
        Name(), ": the upload was collected as abandoned (not renewed within ",
        absl::FormatDuration(store_->options_.abandoned_after), ")"));
  }

  absl::Status CheckLive() {
    if (!status_.ok()) return status_;
    if (outcome_ != Outcome::kOpen) {
      return absl::FailedPreconditionError(
          absl::StrCat(Name(), ": upload already committed"));
    }
    absl::MutexLock lock(&live_->mu);
    if (live_->lost) {
      outcome_ = Outcome::kCollected;
      status_ = Collected();
    }
    return status_;
  }

  absl::Status Fail(absl::Status status) {
    if (status_.ok()) status_ = std::move(status);
    return status_;
  }

  // Removes segments 0 .. next_segment_ - 1; false if one could not be.
  bool RemoveWrittenSegments() {
    bool all = true;
    for (uint64_t i = 0; i < next_segment_; ++i) {
      const int r = store_->io_->remove(SegmentObject(upload_id_, i));
      if (r < 0 && r != -ENOENT) all = false;
    }
    return all;
  }

  store::Segmenter::Write WriteSegmentFn() {
    return [this](absl::string_view bytes) { return WriteSegment(bytes); };
  }

  absl::Status WriteSegment(absl::string_view bytes) {
    librados::bufferlist bl = ToBuffer(bytes);
    const int r =
        store_->io_->write_full(SegmentObject(upload_id_, next_segment_), bl);
    if (r < 0) {
      return RadosError(
          absl::StrCat("write segment ", next_segment_, " of ", Name()), r);
    }
    ++next_segment_;
    return absl::OkStatus();
  }

  RadosObjectStore* const store_;
  const ObjectHeader header_;
  const std::string upload_id_;
  const uint32_t segment_bytes_;
  const std::shared_ptr<RadosObjectStore::Live> live_;
  store::Segmenter segmenter_;
  uint64_t next_segment_ = 0;
  absl::Status status_;  // first error, sticky
  Outcome outcome_ = Outcome::kOpen;
};

absl::StatusOr<std::unique_ptr<RadosObjectStore>> RadosObjectStore::Open(
    RadosStoreOptions options) {
  if (options.conf_path.empty() || options.pool.empty()) {
    return absl::InvalidArgumentError(
        "the RADOS store needs a ceph.conf and a pool");
  }
  const size_t segment_bytes = options.store.segment_bytes;
  if (segment_bytes == 0 || segment_bytes > kMaxSegmentBytes) {
    return absl::InvalidArgumentError(
        absl::StrCat("segment_bytes must be 1-", kMaxSegmentBytes));
  }
  if (!options.store.clock) options.store.clock = absl::Now;
  if (options.renew_every <= absl::ZeroDuration() ||
      options.abandoned_after <= options.renew_every * 2 ||
      options.collect_every <= absl::ZeroDuration() ||
      options.delete_grace < absl::ZeroDuration()) {
    return absl::InvalidArgumentError(
        "the RADOS store needs renew_every > 0, abandoned_after > 2 x "
        "renew_every, collect_every > 0 and delete_grace >= 0");
  }
  auto cluster = std::make_unique<librados::Rados>();
  int r = cluster->init2(options.client.c_str(), "ceph", 0);
  if (r < 0) return RadosError("initialise the client", r);
  r = cluster->conf_read_file(options.conf_path.c_str());
  if (r < 0) {
    return RadosError(absl::StrCat("read ", options.conf_path), r);
  }
  const std::string timeout = absl::StrCat(
      std::max<int64_t>(1, absl::ToInt64Seconds(options.op_timeout)));
  for (const char* option : {"rados_osd_op_timeout", "rados_mon_op_timeout",
                             "client_mount_timeout"}) {
    r = cluster->conf_set(option, timeout.c_str());
    if (r < 0) return RadosError(absl::StrCat("set ", option), r);
  }
  r = cluster->connect();
  if (r < 0) {
    absl::Status s = RadosError(
        absl::StrCat("connect to the cluster of ", options.conf_path), r);
    return absl::UnavailableError(s.message());
  }
  auto io = std::make_unique<librados::IoCtx>();
  r = cluster->ioctx_create(options.pool.c_str(), *io);
  if (r == -ENOENT) {
    return absl::NotFoundError(absl::StrCat("object store (RADOS): pool ",
                                            Quoted(options.pool),
                                            " does not exist"));
  }
  if (r < 0) {
    return RadosError(absl::StrCat("open pool ", Quoted(options.pool)), r);
  }
  io->set_namespace(options.rados_namespace);
  // A full pool or cluster answers ENOSPC / EDQUOT at once (and lets
  // removes through) instead of holding writes until the op timeout.
  io->set_pool_full_try();
  return std::unique_ptr<RadosObjectStore>(new RadosObjectStore(
      std::move(options), std::move(cluster), std::move(io)));
}

RadosObjectStore::RadosObjectStore(RadosStoreOptions options,
                                   std::unique_ptr<librados::Rados> cluster,
                                   std::unique_ptr<librados::IoCtx> io)
    : options_(std::move(options)),
      cluster_(std::move(cluster)),
      io_(std::move(io)),
      renewer_([this] {
        BackgroundLoop(options_.renew_every, [this] { Renew(); });
      }),
      collector_([this] {
        BackgroundLoop(options_.collect_every,
                       [this] { CollectNow().IgnoreError(); });
      }) {}

RadosObjectStore::~RadosObjectStore() {
  {
    absl::MutexLock lock(&loop_mu_);
    closing_ = true;
  }
  renewer_.join();
  collector_.join();
  io_->close();
  cluster_->shutdown();
}

void RadosObjectStore::AddLive(const std::string& upload_id,
                               std::shared_ptr<Live> live) {
  absl::MutexLock lock(&live_mu_);
  live_[upload_id] = std::move(live);
}

void RadosObjectStore::RemoveLive(const std::string& upload_id) {
  absl::MutexLock lock(&live_mu_);
  live_.erase(upload_id);
}

void RadosObjectStore::Renew() {
  std::vector<std::shared_ptr<Live>> live;
  {
    absl::MutexLock lock(&live_mu_);
    for (const auto& [id, upload] : live_) live.push_back(upload);
  }
  for (const std::shared_ptr<Live>& upload : live) {
    // Held across the write: Commit and the destructor take it to read the
    // value and close the upload, so a renewal is either done before they
    // look or skipped.
    absl::MutexLock lock(&upload->mu);
    if (upload->lost || upload->closed) continue;
    // After a renewal of unknown outcome, learn which value is there.
    if (!upload->attempted.empty()) {
      absl::StatusOr<Values> now =
          GetKeys(*io_, upload->index, {upload->pending_key});
      if (!now.ok()) continue;  // tried again next time
      auto it = now->find(upload->pending_key);
      if (it == now->end() || !upload->Ours(it->second.to_str())) {
        upload->lost = true;
        continue;
      }
      upload->value = it->second.to_str();
      upload->attempted.clear();
    }
    PendingUpload next = upload->record;
    *next.mutable_renewed_at() = ToProto(options_.store.clock());
    const std::string value = next.SerializeAsString();
    Assertions assertions;
    AssertEqual(assertions, upload->pending_key, upload->value);
    int cmp = 0;
    librados::ObjectWriteOperation op;
    op.omap_cmp(assertions, &cmp);
    op.omap_set({{upload->pending_key, ToBuffer(value)}});
    const int r = io_->operate(upload->index, &op);
    if (r == 0) {
      upload->record = std::move(next);
      upload->value = value;
    } else if (r == -ECANCELED) {
      upload->lost = true;
    } else {
      // It may have been applied; the next renewal or the commit finds out.
      // abandoned_after leaves room for a few failures.
      upload->record = std::move(next);
      upload->attempted = value;
    }
  }
}

void RadosObjectStore::BackgroundLoop(absl::Duration every,
                                      const std::function<void()>& work) {
  while (true) {
    {
      absl::MutexLock lock(&loop_mu_);
      loop_mu_.AwaitWithTimeout(
          absl::Condition(
              +[](bool* closing) { return *closing; }, &closing_),
          every);
      if (closing_) return;
    }
    work();
  }
}

absl::Status RadosObjectStore::ForEachOwner(
    const std::function<absl::Status(const std::string&)>& visit) const {
  absl::Status inner;
  absl::Status s =
      ScanKeys(*io_, kOwnersObject, "", "",
               [&](const std::string& owner, librados::bufferlist&) {
                 inner = visit(owner);
                 return inner.ok();
               });
  if (!s.ok()) return s;
  return inner;
}

absl::StatusOr<uint64_t> RadosObjectStore::CollectNow() {
  uint64_t abandoned = 0;
  absl::Status s = ForEachOwner([&](const std::string& owner) {
    return CollectOwner(owner, &abandoned);
  });
  if (!s.ok()) return s;
  return abandoned;
}

absl::Status RadosObjectStore::CollectOwner(const std::string& owner,
                                            uint64_t* abandoned) {
  const std::string index = OwnerIndex(owner);
  const absl::Time now = options_.store.clock();
  absl::StatusOr<std::vector<std::pair<std::string, std::string>>> pending =
      ReadEntries(*io_, index, std::string(1, kPendingTag));
  if (!pending.ok()) return pending.status();
  for (const auto& [key, value] : *pending) {
    PendingUpload record;
    if (!record.ParseFromString(value) ||
        record.upload_id().size() != kUploadIdSize) {
      continue;  // not ours to judge; left as found
    }
    if (now - FromProto(record.renewed_at()) < options_.abandoned_after) {
      continue;
    }
    SegmentGarbage garbage;
    garbage.set_upload_id(record.upload_id());
    garbage.set_segment_count(
        SegmentCount(record.ciphertext_length(), record.segment_bytes()));
    *garbage.mutable_due_at() = ToProto(now);
    Assertions assertions;
    AssertEqual(assertions, key, value);
    int cmp = 0;
    librados::ObjectWriteOperation op;
    op.omap_cmp(assertions, &cmp);
    op.omap_rm_keys({key});
    op.omap_set({{GarbageKey(record.upload_id()),
                  ToBuffer(garbage.SerializeAsString())}});
    const int r = io_->operate(index, &op);
    if (r == 0) ++*abandoned;
    if (r < 0 && r != -ECANCELED) {
      return RadosError(absl::StrCat("collect an upload of ", Quoted(owner)),
                        r);
    }
  }
  absl::StatusOr<std::vector<std::pair<std::string, std::string>>> garbage =
      ReadEntries(*io_, index, std::string(1, kGarbageTag));
  if (!garbage.ok()) return garbage.status();
  for (const auto& [key, value] : *garbage) {
    SegmentGarbage record;
    if (!record.ParseFromString(value) ||
        record.upload_id().size() != kUploadIdSize) {
      continue;
    }
    if (FromProto(record.due_at()) > now) continue;
    for (uint64_t i = 0; i < record.segment_count(); ++i) {
      const int r = io_->remove(SegmentObject(record.upload_id(), i));
      if (r < 0 && r != -ENOENT) {
        return RadosError("remove a collected segment", r);
      }
    }
    Assertions assertions;
    AssertEqual(assertions, key, value);
    int cmp = 0;
    librados::ObjectWriteOperation op;
    op.omap_cmp(assertions, &cmp);
    op.omap_rm_keys({key});
    const int r = io_->operate(index, &op);
    if (r < 0 && r != -ECANCELED) {
      return RadosError("drop a collected garbage entry", r);
    }
  }
  return absl::OkStatus();
}

absl::StatusOr<std::unique_ptr<Upload>> RadosObjectStore::BeginPut(
    const ObjectHeader& header) {
  const ObjectRef& ref = header.object();
  if (absl::Status s =
          store::CheckNewVersion(header, options_.store.max_object_bytes);
      !s.ok()) {
    return s;
  }
  const std::string index = OwnerIndex(ref.owner());
  absl::StatusOr<Latest> latest = ReadLatest(*io_, index, ref.object_id());
  if (!latest.ok()) return latest.status();
  if (latest->version >= ref.version()) {
    return store::VersionTaken(
        VersionName(ref.owner(), ref.object_id(), ref.version()),
        latest->version);
  }
  absl::StatusOr<std::string> upload_id = crypto::RandomBytes(kUploadIdSize);
  if (!upload_id.ok()) return upload_id.status();
  const std::string name =
      VersionName(ref.owner(), ref.object_id(), ref.version());

  // The owner is listed before its index gets the "p" entry, so a
  // collector that scans the owners finds every upload. Once per owner and
  // gateway: "owners" would otherwise be one object every Put writes.
  bool listed;
  {
    absl::MutexLock lock(&owners_mu_);
    listed = listed_owners_.contains(ref.owner());
  }
  if (!listed) {
    librados::ObjectWriteOperation op;
    op.omap_set({{std::string(ref.owner()), librados::bufferlist()}});
    const int r = io_->operate(kOwnersObject, &op);
    if (r < 0) return RadosError(absl::StrCat("begin upload of ", name), r);
    absl::MutexLock lock(&owners_mu_);
    listed_owners_.insert(ref.owner());
  }
  auto live = std::make_shared<Live>();
  live->index = index;
  live->pending_key = PendingKey(*upload_id);
  {
    absl::MutexLock lock(&live->mu);
    PendingUpload& record = live->record;
    *record.mutable_object() = ref;
    record.set_upload_id(*upload_id);
    *record.mutable_started_at() = ToProto(options_.store.clock());
    *record.mutable_renewed_at() = record.started_at();
    record.set_ciphertext_length(header.ciphertext_length());
    record.set_segment_bytes(
        static_cast<uint32_t>(options_.store.segment_bytes));
    live->value = record.SerializeAsString();
    librados::ObjectWriteOperation op;
    op.create(false);
    op.omap_set({{live->pending_key, ToBuffer(live->value)}});
    const int r = io_->operate(index, &op);
    if (r < 0) return RadosError(absl::StrCat("begin upload of ", name), r);
  }
  AddLive(*upload_id, live);
  return std::make_unique<RadosUpload>(
      this, header, *std::move(upload_id),
      static_cast<uint32_t>(options_.store.segment_bytes), std::move(live));
}

absl::StatusOr<StoredVersion> RadosObjectStore::Head(
    absl::string_view owner, absl::string_view object_id,
    uint64_t version) const {
  if (absl::Status s = CheckNames(owner, object_id); !s.ok()) return s;
  const std::string index = OwnerIndex(owner);
  // The latest may be deleted between the two reads: look again.
  for (int attempt = 0; attempt < kCasAttempts; ++attempt) {
    uint64_t wanted = version;
    if (version == 0) {
      absl::StatusOr<Latest> latest = ReadLatest(*io_, index, object_id);
      if (!latest.ok()) return latest.status();
      if (latest->version == 0) {
        return absl::NotFoundError(
            absl::StrCat(ObjectName(owner, object_id), " has no version"));
      }
      wanted = latest->version;
    }
    const std::string key = VersionKey(object_id, wanted);
    absl::StatusOr<Values> values = GetKeys(*io_, index, {key});
    if (!values.ok()) return values.status();
    auto it = values->find(key);
    if (it != values->end()) return ParseStored(owner, key, it->second);
    if (version != 0) {
      return absl::NotFoundError(
          absl::StrCat(VersionName(owner, object_id, version), " not found"));
    }
  }
  return absl::UnavailableError(absl::StrCat(
      ObjectName(owner, object_id), ": the latest version kept changing"));
}

absl::Status RadosObjectStore::ReadCiphertext(
    const StoredVersion& version, CiphertextRange range,
    const std::function<bool(absl::string_view)>& sink) const {
  if (absl::Status s = store::CheckReadRange(version, range); !s.ok()) {
    return s;
  }
  const ObjectRef& ref = version.info.header().object();
  const std::string name =
      VersionName(ref.owner(), ref.object_id(), ref.version());
  // Still visible now; its segments then stay for delete_grace even if it
  // is deleted while this read goes on.
  absl::StatusOr<StoredVersion> current =
      Head(ref.owner(), ref.object_id(), ref.version());
  if (absl::IsNotFound(current.status())) {
    return absl::NotFoundError(absl::StrCat(name, " was deleted"));
  }
  if (!current.ok()) return current.status();
  if (current->upload_id != version.upload_id) {
    return absl::NotFoundError(
        absl::StrCat(name, " was deleted (and stored again)"));
  }
  librados::bufferlist segment;
  absl::Status sent = store::SendSegments(
      version, range,
      [&](uint64_t index) -> absl::StatusOr<absl::string_view> {
        segment.clear();
        // One byte more than a segment holds, so a longer one shows.
        const int r = io_->read(SegmentObject(version.upload_id, index),
                                segment, version.segment_bytes + 1, 0);
        if (r == -ENOENT) return absl::NotFoundError("missing");
        if (r < 0) {
          return RadosError(absl::StrCat("read segment ", index, " of ", name),
                            r);
        }
        return absl::string_view(segment.c_str(), segment.length());
      },
      sink);
  if (absl::IsDataLoss(sent)) {
    // A read that outlasts a delete's grace period finds segments gone:
    // the version was deleted, not damaged.
    absl::StatusOr<StoredVersion> now =
        Head(ref.owner(), ref.object_id(), ref.version());
    if (absl::IsNotFound(now.status()) ||
        (now.ok() && now->upload_id != version.upload_id)) {
      return absl::NotFoundError(
          absl::StrCat(name,
                       " was deleted while being read (its segments outlive a "
                       "delete by ",
                       absl::FormatDuration(options_.delete_grace), ")"));
    }
  }
  return sent;
}

absl::StatusOr<RadosObjectStore::ListResult> RadosObjectStore::List(
    absl::string_view owner, absl::string_view object_id_prefix,
    bool all_versions, uint32_t page_size, absl::string_view page_token) const {
  if (absl::Status s = CheckOwner(owner); !s.ok()) return s;
  if (absl::Status s = CheckObjectIdPrefix(object_id_prefix); !s.ok()) {
    return s;
  }
  page_size = ClampPageSize(page_size);
  const std::string list_prefix =
      absl::StrCat(std::string(1, kVersionTag), object_id_prefix);
  // The token is the owner, 0x00 and the last "v" key of the previous
  // page; it must be one this listing could have returned.
  const std::string token_prefix = absl::StrCat(owner, std::string(1, '\0'));
  std::string start_after;
  if (!page_token.empty()) {
    std::string token, last_key, object_id;
    uint64_t version = 0;
    if (!absl::WebSafeBase64Unescape(page_token, &token) ||
        !absl::StartsWith(token, token_prefix) ||
        !absl::StartsWith(last_key = token.substr(token_prefix.size()),
                          list_prefix) ||
        !ParseVersionKey(last_key, &object_id, &version)) {
      return absl::InvalidArgumentError(absl::StrCat(
          "page_token is not a token of a listing of owner ", Quoted(owner),
          " with object_id_prefix ", Quoted(object_id_prefix)));
    }
    start_after = all_versions ? last_key : AfterVersions(object_id);
  }

  ListResult result;
  // Versions of one object are adjacent and ascending: without
  // all_versions, the last of each run is the one listed.
  std::optional<std::pair<std::string, StoredVersion>> held;
  bool full = false;
  absl::Status s =
      ScanVersions(*io_, owner, list_prefix, start_after,
                   [&](const std::string& key, StoredVersion stored) {
                     if (!all_versions && held.has_value() &&
                         held->second.info.header().object().object_id() ==
                             stored.info.header().object().object_id()) {
                       held.emplace(key, std::move(stored));
                       return true;
                     }
                     if (held.has_value()) {
                       if (result.objects.size() == page_size) {
                         full = true;
                         return false;
                       }
                       result.objects.push_back(std::move(held->second.info));
                       absl::WebSafeBase64Escape(token_prefix + held->first,
                                                 &result.next_page_token);
                     }
                     held.emplace(key, std::move(stored));
                     return true;
                   });
  if (!s.ok()) return s;
  if (!full && held.has_value()) {
    if (result.objects.size() == page_size) {
      full = true;
    } else {
      result.objects.push_back(std::move(held->second.info));
    }
  }
  if (!full) result.next_page_token.clear();
  return result;
}

absl::StatusOr<uint64_t> RadosObjectStore::Delete(absl::string_view owner,
                                                  absl::string_view object_id,
                                                  uint64_t version) {
  if (absl::Status s = CheckNames(owner, object_id); !s.ok()) return s;
  const std::string index = OwnerIndex(owner);
  for (int attempt = 0; attempt < kCasAttempts; ++attempt) {
    absl::StatusOr<Latest> latest = ReadLatest(*io_, index, object_id);
    if (!latest.ok()) return latest.status();
    absl::StatusOr<std::vector<std::pair<std::string, std::string>>> versions =
        ReadEntries(*io_, index, VersionPrefix(object_id));
    if (!versions.ok()) return versions.status();
    std::vector<std::pair<std::string, std::string>> doomed;
    uint64_t remaining_latest = 0;
    for (auto& [key, value] : *versions) {
      const uint64_t v =
          ReadBigEndian64(absl::string_view(key).substr(key.size() - 8));
      if (version == 0 || v == version) {
        doomed.emplace_back(key, value);
      } else {
        remaining_latest = std::max(remaining_latest, v);
      }
    }
    if (doomed.empty()) {
      return absl::NotFoundError(
          version == 0
              ? absl::StrCat(ObjectName(owner, object_id), " has no version")
              : absl::StrCat(VersionName(owner, object_id, version),
                             " not found"));
    }
    // Every version read is compared, not only those deleted: the new
    // latest must still be there when "l" is set to it.
    Assertions assertions;
    AssertEqual(assertions, LatestKey(object_id), latest->value);
    for (const auto& [key, value] : *versions) {
      AssertEqual(assertions, key, value);
    }
    std::set<std::string> removed;
    std::map<std::string, librados::bufferlist> set;
    const absl::Time due = options_.store.clock() + options_.delete_grace;
    for (const auto& [key, value] : doomed) {
      removed.insert(key);
      StoredObject record;
      if (!record.ParseFromString(value)) {
        return absl::DataLossError(absl::StrCat(
            "object store (RADOS): malformed record ", Quoted(key)));
      }
      SegmentGarbage garbage;
      garbage.set_upload_id(record.upload_id());
      garbage.set_segment_count(SegmentCount(
          record.info().header().ciphertext_length(), record.segment_bytes()));
      *garbage.mutable_due_at() = ToProto(due);
      set[GarbageKey(record.upload_id())] =
          ToBuffer(garbage.SerializeAsString());
    }
    if (remaining_latest == 0) {
      removed.insert(LatestKey(object_id));
    } else {
      set[LatestKey(object_id)] = ToBuffer(BigEndian64(remaining_latest));
    }
    int cmp = 0;
    librados::ObjectWriteOperation op;
    op.omap_cmp(assertions, &cmp);
    op.omap_rm_keys(removed);
    op.omap_set(set);
    const int r = io_->operate(index, &op);
    if (r == 0) return doomed.size();
    if (r != -ECANCELED) {
      return RadosError(absl::StrCat("delete ", ObjectName(owner, object_id)),
                        r);
    }
  }
  return absl::AbortedError(
      absl::StrCat(ObjectName(owner, object_id),
                   ": the object kept changing under the delete"));
}

absl::Status RadosObjectStore::ForEachObject(
    absl::string_view owner,
    const std::function<bool(const StoredVersion&)>& visit) const {
  if (absl::Status s = CheckOwner(owner); !s.ok()) return s;
  return ScanVersions(
      *io_, owner, std::string(1, kVersionTag), "",
      [&](const std::string&, StoredVersion stored) { return visit(stored); });
}

absl::StatusOr<std::vector<StatsResponse::OwnerUsage>> RadosObjectStore::Usage(
    absl::string_view owner) const {
  std::vector<std::string> owners;
  if (!owner.empty()) {
    if (absl::Status s = CheckOwner(owner); !s.ok()) return s;
    owners.emplace_back(owner);
  } else {
    absl::Status s = ForEachOwner([&](const std::string& o) {
      owners.push_back(o);
      return absl::OkStatus();
    });
    if (!s.ok()) return s;
  }
  std::vector<StatsResponse::OwnerUsage> usage;
  for (const std::string& o : owners) {
    StatsResponse::OwnerUsage entry;
    entry.set_owner(o);
    std::string last_object;
    absl::Status s = ForEachObject(o, [&](const StoredVersion& stored) {
      const ObjectHeader& header = stored.info.header();
      if (header.object().object_id() != last_object ||
          entry.object_count() == 0) {
        entry.set_object_count(entry.object_count() + 1);
        last_object = header.object().object_id();
      }
      entry.set_version_count(entry.version_count() + 1);
      entry.set_ciphertext_bytes(entry.ciphertext_bytes() +
                                 header.ciphertext_length());
      entry.set_plaintext_bytes(entry.plaintext_bytes() +
                                header.plaintext_length());
      return true;
    });
    if (!s.ok()) return s;
    if (entry.version_count() > 0 || !owner.empty()) {
      usage.push_back(std::move(entry));
    }
  }
  return usage;
}

uint64_t RadosObjectStore::pending_uploads() const {
  uint64_t count = 0;
  ForEachOwner([&](const std::string& owner) {
    return ScanKeys(*io_, OwnerIndex(owner), std::string(1, kPendingTag), "",
                    [&](const std::string&, librados::bufferlist&) {
                      ++count;
                      return true;
                    });
  }).IgnoreError();
  return count;
}

absl::StatusOr<uint64_t> RadosObjectStore::SegmentObjects(
    absl::string_view upload_id, uint64_t up_to) const {
  uint64_t present = 0;
  for (uint64_t i = 0; i < up_to; ++i) {
    uint64_t size = 0;
    time_t mtime = 0;
    const int r = io_->stat(SegmentObject(upload_id, i), &size, &mtime);
    if (r == 0) ++present;
    if (r < 0 && r != -ENOENT) return RadosError("stat a segment", r);
  }
  return present;
}

}  // namespace residency::storage_node
