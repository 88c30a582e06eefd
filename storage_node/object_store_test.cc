#include "storage_node/object_store.h"

#include <stdlib.h>
#include <unistd.h>

#include <cstdint>
#include <filesystem>
#include <functional>
#include <limits>
#include <memory>
#include <optional>
#include <rados/librados.hpp>
#include <random>
#include <string>
#include <thread>
#include <tuple>
#include <utility>
#include <vector>

#include "absl/cleanup/cleanup.h"
#include "absl/strings/escaping.h"
#include "absl/strings/match.h"
#include "absl/strings/str_cat.h"
#include "absl/strings/str_format.h"
#include "absl/time/clock.h"
#include "crypto/big_endian.h"
#include "crypto/chunked.h"
#include "gmock/gmock.h"
#include "google/protobuf/util/time_util.h"
#include "gtest/gtest.h"
#include "rocksdb/db.h"
#include "rocksdb/options.h"
#include "rocksdb/write_batch.h"
#include "rpc/status_detail.h"
#include "storage_node/rados_store.h"
#include "tests/ceph_test_cluster.h"
#include "tests/fault_file_system.h"
#include "tests/status_matchers.h"
#include "tests/temp_dir.h"

namespace residency::storage_node {
namespace {

using ::residency::testing::IsOkAndHolds;
using ::residency::testing::StatusIs;
using ::residency::testing::TempDir;
using ::residency::v1::ObjectHeader;
using ::residency::v1::ObjectInfo;
using ::testing::Each;
using ::testing::ElementsAre;
using ::testing::HasSubstr;
using ::testing::Le;
using ::testing::SizeIs;

// Small segments so that tests cross many segment boundaries cheaply.
constexpr size_t kSegment = 1000;
// The smallest valid chunked ciphertext: the 56-byte salt and commitment
// and one empty chunk's tag.
constexpr uint64_t kSmallestCiphertext = 72;

std::string TestBytes(size_t size, uint32_t seed) {
  std::mt19937 gen(seed);
  std::string bytes(size, '\0');
  for (char& c : bytes) c = static_cast<char>(gen());
  return bytes;
}

// A header as the service would pass it: a consistent pair of lengths.
ObjectHeader MakeHeader(const std::string& owner, const std::string& object_id,
                        uint64_t version, uint64_t ciphertext_length) {
  ObjectHeader header;
  header.mutable_object()->set_owner(owner);
  header.mutable_object()->set_object_id(object_id);
  header.mutable_object()->set_version(version);
  header.set_custody_mode(v1::CUSTODY_MODE_CUSTODIAN);
  header.set_payload_algorithm(v1::PAYLOAD_ALGORITHM_COBBLESTONE_256);
  header.set_plaintext_length(
      crypto::ChunkedPlaintextLength(ciphertext_length).value_or(0));
  header.set_ciphertext_length(ciphertext_length);
  return header;
}

// Runs `fn` on the store's RocksDB opened directly (the store must be
// closed), as a test's view of what is on disk.
void WithRawDb(const std::string& dir,
               const std::function<void(rocksdb::DB*)>& fn) {
  rocksdb::Options options;
  rocksdb::DB* raw = nullptr;
  rocksdb::Status s = rocksdb::DB::Open(options, dir, &raw);
  ASSERT_TRUE(s.ok()) << s.ToString();
  std::unique_ptr<rocksdb::DB> db(raw);
  fn(db.get());
}

// Keys on disk whose first byte is `tag` ('o', 'd' or 'u').
size_t CountKeys(const std::string& dir, char tag) {
  size_t count = 0;
  WithRawDb(dir, [&](rocksdb::DB* db) {
    std::unique_ptr<rocksdb::Iterator> it(
        db->NewIterator(rocksdb::ReadOptions()));
    const std::string prefix(1, tag);
    for (it->Seek(prefix); it->Valid() && it->key().starts_with(prefix);
         it->Next()) {
      ++count;
    }
    EXPECT_TRUE(it->status().ok()) << it->status().ToString();
  });
  return count;
}

uint64_t Segments(uint64_t ciphertext_length) {
  return (ciphertext_length + kSegment - 1) / kSegment;
}

enum class Backend { kRocks, kRados };

void PrintTo(Backend backend, std::ostream* os) {
  *os << (backend == Backend::kRocks ? "rocksdb" : "rados");
}

std::string BackendName(const ::testing::TestParamInfo<Backend>& info) {
  return info.param == Backend::kRocks ? "rocksdb" : "rados";
}

// A store of either kind, with a clock the test moves. The RADOS store uses
// the shared test cluster, in a namespace of its own.
class StoreTestBase : public ::testing::Test {
 protected:
  virtual Backend backend() const { return Backend::kRocks; }

  void SetUp() override {
    // The store's directory, and beside it the crash tests' copies.
    ASSERT_OK_AND_ASSIGN(const std::string root,
                         temp_.Make("object_store_test"));
    dir_ = root + "/store";
    ASSERT_TRUE(std::filesystem::create_directory(dir_));
    options_.segment_bytes = kSegment;
    // Small memtables, so that the larger objects are flushed to blob files
    // and read back from there.
    options_.write_buffer_bytes = 1 << 20;
    options_.block_cache_bytes = 1 << 20;
    options_.clock = [this] { return now_; };
    if (backend() == Backend::kRados) {
      ASSERT_OK_AND_ASSIGN(conf_, residency::testing::TestCephConf());
      namespace_ = absl::StrCat("test-", ::getpid(), "-",
                                absl::BytesToHexString(TestBytes(8, seed_())));
      librados::Rados* raw = new librados::Rados;
      rados_.reset(raw);
      ASSERT_EQ(raw->init2("client.admin", "ceph", 0), 0);
      ASSERT_EQ(raw->conf_read_file(conf_.c_str()), 0);
      ASSERT_EQ(raw->connect(), 0);
      ASSERT_EQ(raw->ioctx_create(residency::testing::kCephTestPool, io_), 0);
      io_.set_namespace(namespace_);
    }
    Reopen();
  }

  void TearDown() override {
    store_.reset();
    if (rados_ != nullptr) {
      io_.close();
      rados_->shutdown();
    }
  }

  RadosStoreOptions RadosOptions() const {
    RadosStoreOptions options;
    options.conf_path = conf_;
    options.pool = residency::testing::kCephTestPool;
    options.rados_namespace = namespace_;
    options.store = options_;
    options.op_timeout = absl::Seconds(10);
    // Deleted versions' segments are collectable at once (the test's
    // clock does not move by itself).
    options.delete_grace = absl::ZeroDuration();
    // Collections run when a test asks for one: a background one could take
    // an upload that a test then expects its own CollectNow to take.
    options.collect_every = absl::Hours(1);
    return options;
  }

  void Reopen() {
    store_.reset();
    if (backend() == Backend::kRocks) {
      ASSERT_OK_AND_ASSIGN(store_, ObjectStore::Open(dir_, options_));
    } else {
      ASSERT_OK_AND_ASSIGN(store_, RadosObjectStore::Open(RadosOptions()));
    }
  }

  // Ciphertext segments in the store's keeping, once due garbage is
  // collected.
  uint64_t SegmentsStored() {
    if (backend() == Backend::kRocks) {
      store_.reset();
      const uint64_t n = CountKeys(dir_, 'd');
      Reopen();
      return n;
    }
    EXPECT_OK(static_cast<RadosObjectStore*>(store_.get())->CollectNow());
    uint64_t n = 0;
    for (auto it = io_.nobjects_begin(); it != io_.nobjects_end(); ++it) {
      if (absl::StartsWith(it->get_oid(), "seg.")) ++n;
    }
    return n;
  }

  // Uploads begun and neither committed nor collected.
  uint64_t PendingStored() {
    if (backend() == Backend::kRocks) {
      store_.reset();
      const uint64_t n = CountKeys(dir_, 'u');
      Reopen();
      return n;
    }
    return store_->pending_uploads();
  }

  // Visible versions of every owner.
  uint64_t VersionsStored() {
    absl::StatusOr<std::vector<v1::StatsResponse::OwnerUsage>> usage =
        store_->Usage("");
    EXPECT_OK(usage.status());
    uint64_t n = 0;
    if (usage.ok()) {
      for (const auto& owner : *usage) n += owner.version_count();
    }
    return n;
  }

  // BeginPut, Append in pieces of `piece` bytes, Commit.
  absl::StatusOr<StoredVersion> Put(const ObjectHeader& header,
                                    absl::string_view data,
                                    size_t piece = kSegment / 3) {
    absl::StatusOr<std::unique_ptr<Upload>> upload = store_->BeginPut(header);
    if (!upload.ok()) return upload.status();
    while (!data.empty()) {
      const size_t n = std::min(piece, data.size());
      if (absl::Status s = (*upload)->Append(data.substr(0, n)); !s.ok()) {
        return s;
      }
      data.remove_prefix(n);
    }
    return (*upload)->Commit();
  }

  // Stores `size` bytes of test data as owner/object_id v`version`.
  absl::StatusOr<StoredVersion> PutSized(const std::string& owner,
                                         const std::string& object_id,
                                         uint64_t version, uint64_t size) {
    return Put(MakeHeader(owner, object_id, version, size),
               TestBytes(size, static_cast<uint32_t>(version)));
  }

  absl::StatusOr<std::string> Read(const StoredVersion& version,
                                   uint64_t offset, uint64_t length,
                                   std::vector<size_t>* pieces = nullptr) {
    std::string out;
    absl::Status s = store_->ReadCiphertext(
        version, {offset, length}, [&](absl::string_view piece) {
          out.append(piece.data(), piece.size());
          if (pieces != nullptr) pieces->push_back(piece.size());
          return true;
        });
    if (!s.ok()) return s;
    return out;
  }

  absl::StatusOr<std::string> ReadAll(const StoredVersion& version) {
    return Read(version, 0, version.info.header().ciphertext_length());
  }

  // Object ids of a listing page.
  static std::vector<std::string> Ids(const ObjectStore::ListResult& page) {
    std::vector<std::string> ids;
    for (const ObjectInfo& info : page.objects) {
      ids.push_back(absl::StrCat(info.header().object().object_id(), "@",
                                 info.header().object().version()));
    }
    return ids;
  }

  TempDir temp_;
  std::string dir_;
  absl::Time now_ = absl::FromUnixSeconds(1700000000);
  ObjectStoreOptions options_;
  std::unique_ptr<ObjectStore> store_;
  // RADOS only: the cluster, the test's namespace and a raw view of it.
  std::string conf_;
  std::string namespace_;
  std::unique_ptr<librados::Rados> rados_;
  librados::IoCtx io_;
  std::random_device seed_;
};

// The contract every store keeps, run against both.
class ObjectStoreTest : public StoreTestBase,
                        public ::testing::WithParamInterface<Backend> {
 protected:
  Backend backend() const override { return GetParam(); }
};

INSTANTIATE_TEST_SUITE_P(Backends, ObjectStoreTest,
                         ::testing::Values(Backend::kRocks, Backend::kRados),
                         BackendName);

// What only the RocksDB store has: its files, blob garbage, Open's
// collection of a crashed upload.
class RocksStoreTest : public StoreTestBase {
 protected:
  // Opens the store again, writing through fs_.
  void ReopenWithFaults() {
    fs_ = std::make_shared<testing::FaultFileSystem>();
    store_.reset();
    ObjectStoreOptions options = options_;
    options.file_system = fs_;
    ASSERT_OK_AND_ASSIGN(store_, ObjectStore::Open(dir_, options));
  }

  // Another upload meets a full disk, which stops the store's writing, and
  // then the space comes back.
  void FullDiskMetByAnotherUpload() {
    fs_->set_fault(testing::FaultFileSystem::Fault::kDiskFull);
    EXPECT_THAT(store_->BeginPut(MakeHeader("alice", "refused", 1, 10)),
                StatusIs(absl::StatusCode::kResourceExhausted));
    EXPECT_GT(fs_->injected(), 0u);
    fs_->set_fault(testing::FaultFileSystem::Fault::kNone);
  }

  std::shared_ptr<testing::FaultFileSystem> fs_;
};

// What only the RADOS store has: gateways sharing the pool, renewal and
// collection of pending uploads, a grace period before deleted segments go.
class RadosStoreTest : public StoreTestBase {
 protected:
  Backend backend() const override { return Backend::kRados; }

  // Another gateway over the same namespace, with `renew_every` and
  // `abandoned_after` of its own.
  std::unique_ptr<RadosObjectStore> Gateway(absl::Duration renew_every,
                                            absl::Duration abandoned_after) {
    RadosStoreOptions options = RadosOptions();
    options.renew_every = renew_every;
    options.abandoned_after = abandoned_after;
    absl::StatusOr<std::unique_ptr<RadosObjectStore>> gateway =
        RadosObjectStore::Open(options);
    EXPECT_OK(gateway.status());
    return gateway.ok() ? *std::move(gateway) : nullptr;
  }

  uint64_t SegmentObjects() {
    uint64_t n = 0;
    for (auto it = io_.nobjects_begin(); it != io_.nobjects_end(); ++it) {
      if (absl::StartsWith(it->get_oid(), "seg.")) ++n;
    }
    return n;
  }
};

// Round trips around the segment boundaries, the smallest ciphertext, and an
// object of a few MiB (which also goes through memtable flushes to blob
// files).
class ObjectStoreSizeTest
    : public StoreTestBase,
      public ::testing::WithParamInterface<std::tuple<Backend, uint64_t>> {
 protected:
  Backend backend() const override { return std::get<0>(GetParam()); }
};

TEST_P(ObjectStoreSizeTest, PutCommitHeadReadRoundTrip) {
  const uint64_t size = std::get<1>(GetParam());
  const std::string data = TestBytes(size, 7);
  const ObjectHeader header = MakeHeader("alice", "photos/1.jpg", 1, size);
  ASSERT_OK_AND_ASSIGN(StoredVersion committed,
                       Put(header, data, /*piece=*/64 * 1024 + 1));
  EXPECT_EQ(committed.info.header().SerializeAsString(),
            header.SerializeAsString());
  EXPECT_EQ(committed.info.stored_at(),
            google::protobuf::util::TimeUtil::SecondsToTimestamp(1700000000));
  EXPECT_EQ(committed.segment_bytes, kSegment);
  EXPECT_THAT(committed.upload_id, SizeIs(16));

  ASSERT_OK_AND_ASSIGN(StoredVersion head,
                       store_->Head("alice", "photos/1.jpg", 1));
  EXPECT_EQ(head.info.SerializeAsString(), committed.info.SerializeAsString());
  EXPECT_EQ(head.upload_id, committed.upload_id);
  ASSERT_OK_AND_ASSIGN(StoredVersion latest,
                       store_->Head("alice", "photos/1.jpg", 0));
  EXPECT_EQ(latest.upload_id, committed.upload_id);

  std::vector<size_t> pieces;
  ASSERT_OK_AND_ASSIGN(std::string read, Read(head, 0, size, &pieces));
  EXPECT_TRUE(read == data) << "read " << read.size() << " bytes";
  EXPECT_THAT(pieces, SizeIs(Segments(size)));
  EXPECT_THAT(pieces, Each(Le(kSegment)));
  EXPECT_EQ(store_->pending_uploads(), 0u);
}

INSTANTIATE_TEST_SUITE_P(
    Sizes, ObjectStoreSizeTest,
    ::testing::Combine(
        ::testing::Values(Backend::kRocks, Backend::kRados),
        ::testing::Values(kSmallestCiphertext, kSegment - 1, kSegment,
                          kSegment + 1, 3 * kSegment - 1, 3 * kSegment,
                          3 * kSegment + 1,
                          crypto::ChunkedCiphertextLength(3 << 20))),
    [](const auto& info) {
      return absl::StrCat(
          std::get<0>(info.param) == Backend::kRocks ? "rocksdb" : "rados", "_",
          std::get<1>(info.param));
    });

TEST_P(ObjectStoreTest, AppendsInAnySplitStoreTheSameBytes) {
  const uint64_t size = 2 * kSegment + 501;
  const std::string data = TestBytes(size, 3);
  const std::vector<size_t> splits = {
      1, 7, 333, kSegment - 1, kSegment, kSegment + 1, 2 * kSegment + 3, size};
  uint64_t version = 0;
  for (size_t split : splits) {
    ++version;
    SCOPED_TRACE(absl::StrCat("appends of ", split, " bytes"));
    ASSERT_OK_AND_ASSIGN(
        StoredVersion stored,
        Put(MakeHeader("alice", "split", version, size), data, split));
    EXPECT_THAT(ReadAll(stored), IsOkAndHolds(data));
  }
  // Mixed sizes in one upload, including empty appends.
  ++version;
  ASSERT_OK_AND_ASSIGN(
      std::unique_ptr<Upload> upload,
      store_->BeginPut(MakeHeader("alice", "split", version, size)));
  const std::vector<size_t> mixed = {0, 1, 998, 2, 0, 1, 1499};
  size_t at = 0;
  for (size_t n : mixed) {
    ASSERT_OK(upload->Append(absl::string_view(data).substr(at, n)));
    at += n;
  }
  ASSERT_EQ(at, size);
  ASSERT_OK_AND_ASSIGN(StoredVersion stored, upload->Commit());
  EXPECT_THAT(ReadAll(stored), IsOkAndHolds(data));
}

TEST_P(ObjectStoreTest, RangedReadsAreByteExactAcrossSegments) {
  const uint64_t size = 3 * kSegment + 500;
  const std::string data = TestBytes(size, 11);
  ASSERT_OK_AND_ASSIGN(StoredVersion stored,
                       Put(MakeHeader("alice", "ranges", 1, size), data));
  struct Case {
    uint64_t offset;
    uint64_t length;
    size_t pieces;
  };
  const std::vector<Case> cases = {
      {0, 1, 1},
      {kSegment - 1, 2, 2},
      {kSegment, kSegment, 1},
      {998, 1004, 3},
      {1, size - 2, 4},
      {size - 1, 1, 1},
      {3 * kSegment, 500, 1},
      {2 * kSegment + 1, 1, 1},
      {0, size, 4},
      {size, 0, 0},
      {1500, 0, 0},
  };
  for (const Case& c : cases) {
    SCOPED_TRACE(absl::StrCat("offset ", c.offset, " length ", c.length));
    std::vector<size_t> pieces;
    EXPECT_THAT(Read(stored, c.offset, c.length, &pieces),
                IsOkAndHolds(data.substr(c.offset, c.length)));
    EXPECT_THAT(pieces, SizeIs(c.pieces));
  }
}

TEST_P(ObjectStoreTest, RangesOutsideTheCiphertextAreOutOfRange) {
  const uint64_t size = 2 * kSegment;
  ASSERT_OK_AND_ASSIGN(StoredVersion stored, PutSized("alice", "x", 1, size));
  const uint64_t max = std::numeric_limits<uint64_t>::max();
  EXPECT_THAT(Read(stored, size, 1), StatusIs(absl::StatusCode::kOutOfRange));
  EXPECT_THAT(Read(stored, size + 1, 0),
              StatusIs(absl::StatusCode::kOutOfRange));
  EXPECT_THAT(Read(stored, 0, size + 1),
              StatusIs(absl::StatusCode::kOutOfRange));
  // offset + length wraps around.
  EXPECT_THAT(Read(stored, 10, max - 5),
              StatusIs(absl::StatusCode::kOutOfRange));
  EXPECT_THAT(Read(stored, max, 2), StatusIs(absl::StatusCode::kOutOfRange));
}

TEST_P(ObjectStoreTest, SinkReturningFalseStopsTheRead) {
  ASSERT_OK_AND_ASSIGN(StoredVersion stored,
                       PutSized("alice", "x", 1, 3 * kSegment));
  int calls = 0;
  EXPECT_OK(
      store_->ReadCiphertext(stored, {0, 3 * kSegment}, [&](absl::string_view) {
        ++calls;
        return false;
      }));
  EXPECT_EQ(calls, 1);
}

TEST_F(RocksStoreTest, ReadFetchesOnlyTheSegmentsItNeeds) {
  const uint64_t size = 3 * kSegment;
  const std::string data = TestBytes(size, 1);
  ASSERT_OK_AND_ASSIGN(StoredVersion stored,
                       Put(MakeHeader("alice", "x", 1, size), data));
  store_.reset();
  // Lose segment 0 behind the store's back.
  WithRawDb(dir_, [&](rocksdb::DB* db) {
    std::string key = absl::StrCat("d", stored.upload_id);
    key.append(8, '\0');
    ASSERT_TRUE(db->Delete(rocksdb::WriteOptions(), key).ok());
  });
  Reopen();
  EXPECT_THAT(Read(stored, kSegment, 2 * kSegment),
              IsOkAndHolds(data.substr(kSegment)));
  EXPECT_THAT(Read(stored, kSegment - 1, 2),
              StatusIs(absl::StatusCode::kDataLoss, HasSubstr("segment 0")));
}

TEST_F(RocksStoreTest, TruncatedSegmentIsDataLoss) {
  const uint64_t size = 3 * kSegment;
  ASSERT_OK_AND_ASSIGN(StoredVersion stored, PutSized("alice", "x", 1, size));
  store_.reset();
  WithRawDb(dir_, [&](rocksdb::DB* db) {
    std::string key = absl::StrCat("d", stored.upload_id);
    crypto::AppendBigEndian64(&key, 2);
    ASSERT_TRUE(db->Put(rocksdb::WriteOptions(), key, "short").ok());
  });
  Reopen();
  EXPECT_OK(Read(stored, 0, 2 * kSegment));
  EXPECT_THAT(Read(stored, 2 * kSegment, 1),
              StatusIs(absl::StatusCode::kDataLoss,
                       HasSubstr("has 5 bytes, expected 1000")));
}

TEST_F(RocksStoreTest, RecordsThatDoNotMatchTheirKeyAreDataLoss) {
  ASSERT_OK(PutSized("alice", "x", 1, 72).status());
  store_.reset();
  WithRawDb(dir_, [&](rocksdb::DB* db) {
    std::string x1 = std::string("oalice\0x\0", 9);
    crypto::AppendBigEndian64(&x1, 1);
    std::string record;
    ASSERT_TRUE(db->Get(rocksdb::ReadOptions(), x1, &record).ok());
    // A valid record under another name, and bytes that do not parse.
    std::string y1 = std::string("oalice\0y\0", 9);
    crypto::AppendBigEndian64(&y1, 1);
    ASSERT_TRUE(db->Put(rocksdb::WriteOptions(), y1, record).ok());
    std::string z1 = std::string("oalice\0z\0", 9);
    crypto::AppendBigEndian64(&z1, 1);
    ASSERT_TRUE(db->Put(rocksdb::WriteOptions(), z1, "\xff\xff").ok());
  });
  Reopen();
  EXPECT_OK(store_->Head("alice", "x", 1));
  EXPECT_THAT(store_->Head("alice", "y", 1),
              StatusIs(absl::StatusCode::kDataLoss));
  EXPECT_THAT(store_->Head("alice", "y", 0),
              StatusIs(absl::StatusCode::kDataLoss));
  EXPECT_THAT(store_->Head("alice", "z", 1),
              StatusIs(absl::StatusCode::kDataLoss, HasSubstr("parse")));
  EXPECT_THAT(store_->List("alice", "", true, 0, ""),
              StatusIs(absl::StatusCode::kDataLoss));
  EXPECT_THAT(store_->Usage(""), StatusIs(absl::StatusCode::kDataLoss));
}

TEST_F(RocksStoreTest, SegmentsOfLargeObjectsLiveInBlobFiles) {
  // Segments of the default size's order (the tests' 1000-byte segments are
  // below the blob threshold and stay in table files). 3 MiB through 1 MiB
  // memtables, at most two of them: writes wait for at least one flush,
  // which puts the segments in blob files.
  options_.segment_bytes = 64 * 1024;
  Reopen();
  const uint64_t size = 3 << 20;
  ASSERT_OK(PutSized("alice", "big", 1, size).status());
  int blob_files = 0;
  for (const auto& entry : std::filesystem::directory_iterator(dir_)) {
    if (entry.path().extension() == ".blob") ++blob_files;
  }
  EXPECT_GE(blob_files, 1);
}

TEST_F(RocksStoreTest, ReclaimSpaceGivesBackDeletedCiphertext) {
  options_.segment_bytes = 64 * 1024;
  options_.reclaim_min_bytes = std::numeric_limits<uint64_t>::max();
  Reopen();
  auto* rocks = dynamic_cast<RocksObjectStore*>(store_.get());
  ASSERT_NE(rocks, nullptr);
  constexpr uint64_t kMiB = 1 << 20;
  for (uint64_t v = 1; v <= 8; ++v) {
    ASSERT_OK(PutSized("alice", absl::StrCat("o", v), v, kMiB).status());
  }
  const uint64_t before = rocks->blob_file_bytes();
  EXPECT_GE(before, 6 * kMiB);
  for (uint64_t v = 1; v <= 6; ++v) {
    ASSERT_OK(store_->Delete("alice", absl::StrCat("o", v), 0).status());
  }
  EXPECT_EQ(rocks->deleted_since_reclaim(), 6 * kMiB);
  // Collection is off between reclaims, and the bounds are out of reach:
  // nothing has given the space back yet.
  EXPECT_GE(rocks->blob_file_bytes(), before);

  ASSERT_OK(rocks->ReclaimSpace());
  EXPECT_LE(rocks->blob_file_bytes(), 2 * kMiB + kMiB / 2);
  EXPECT_EQ(rocks->deleted_since_reclaim(), 0u);
  for (uint64_t v = 7; v <= 8; ++v) {
    ASSERT_OK_AND_ASSIGN(StoredVersion kept,
                         store_->Head("alice", absl::StrCat("o", v), 0));
    EXPECT_THAT(ReadAll(kept),
                IsOkAndHolds(TestBytes(kMiB, static_cast<uint32_t>(v))));
  }
  // The collected store reopens with everything kept.
  Reopen();
  ASSERT_OK_AND_ASSIGN(StoredVersion kept, store_->Head("alice", "o8", 0));
  EXPECT_THAT(ReadAll(kept), IsOkAndHolds(TestBytes(kMiB, 8)));
  EXPECT_THAT(store_->Head("alice", "o1", 0),
              StatusIs(absl::StatusCode::kNotFound));
}

TEST_F(RocksStoreTest, DeletingPastTheBoundsReclaimsByItself) {
  options_.segment_bytes = 64 * 1024;
  constexpr uint64_t kMiB = 1 << 20;
  options_.reclaim_min_bytes = 4 * kMiB;
  options_.reclaim_share = 0.25;
  Reopen();
  auto* rocks = dynamic_cast<RocksObjectStore*>(store_.get());
  ASSERT_NE(rocks, nullptr);
  for (uint64_t v = 1; v <= 8; ++v) {
    ASSERT_OK(PutSized("alice", absl::StrCat("o", v), v, kMiB).status());
  }
  // Three deleted MiB stay below the 4 MiB bound.
  for (uint64_t v = 1; v <= 3; ++v) {
    ASSERT_OK(store_->Delete("alice", absl::StrCat("o", v), 0).status());
  }
  absl::SleepFor(absl::Milliseconds(300));
  EXPECT_EQ(rocks->deleted_since_reclaim(), 3 * kMiB);
  for (uint64_t v = 4; v <= 6; ++v) {
    ASSERT_OK(store_->Delete("alice", absl::StrCat("o", v), 0).status());
  }
  // The background collection runs after the delete that crossed the bound.
  const absl::Time deadline = absl::Now() + absl::Seconds(30);
  while (rocks->blob_file_bytes() > 2 * kMiB + kMiB / 2 &&
         absl::Now() < deadline) {
    absl::SleepFor(absl::Milliseconds(20));
  }
  EXPECT_LE(rocks->blob_file_bytes(), 2 * kMiB + kMiB / 2);
  ASSERT_OK_AND_ASSIGN(StoredVersion kept, store_->Head("alice", "o7", 0));
  EXPECT_THAT(ReadAll(kept), IsOkAndHolds(TestBytes(kMiB, 7)));
}

TEST_F(RocksStoreTest, BlobFilesAreRewrittenOnlyPastTheGarbageShare) {
  options_.segment_bytes = 64 * 1024;
  constexpr uint64_t kMiB = 1 << 20;
  constexpr uint64_t kHalf = kMiB / 2;
  options_.reclaim_min_bytes = kMiB;
  options_.reclaim_share = 0.5;
  Reopen();
  auto* rocks = dynamic_cast<RocksObjectStore*>(store_.get());
  ASSERT_NE(rocks, nullptr);
  // 4 MiB written together and deleted together, so their blob files hold
  // nothing else; then 6 MiB in which every third object is deleted, so
  // those blob files mix live and dead blobs.
  for (uint64_t v = 1; v <= 8; ++v) {
    ASSERT_OK(PutSized("alice", absl::StrCat("old", v), v, kHalf).status());
  }
  for (uint64_t v = 1; v <= 4; ++v) {
    ASSERT_OK(PutSized("alice", absl::StrCat("keep", v), v, kHalf).status());
    ASSERT_OK(PutSized("alice", absl::StrCat("drop", v), v, kHalf).status());
    ASSERT_OK(
        PutSized("alice", absl::StrCat("keep", v + 4), v + 4, kHalf).status());
  }
  for (uint64_t v = 1; v <= 8; ++v) {
    ASSERT_OK(store_->Delete("alice", absl::StrCat("old", v), 0).status());
  }
  for (uint64_t v = 1; v <= 4; ++v) {
    ASSERT_OK(store_->Delete("alice", absl::StrCat("drop", v), 0).status());
  }
  // 6 of 10 MiB deleted: the background collection runs. It removes the
  // blob files of the old objects; the garbage left, about 2 of 6 MiB, is
  // below the 0.5 share, so the mixed files are not rewritten.
  const absl::Time deadline = absl::Now() + absl::Seconds(30);
  while (rocks->blob_file_bytes() > 7 * kMiB && absl::Now() < deadline) {
    absl::SleepFor(absl::Milliseconds(20));
  }
  EXPECT_LE(rocks->blob_file_bytes(), 7 * kMiB);
  EXPECT_GE(rocks->blob_file_bytes(), 5 * kMiB + kHalf);
  EXPECT_GE(rocks->blob_garbage_bytes(), kMiB + kHalf);
  // Asked for, the rewrite happens whatever the share.
  ASSERT_OK(rocks->ReclaimSpace());
  EXPECT_LE(rocks->blob_file_bytes(), 4 * kMiB + kHalf);
  EXPECT_EQ(rocks->blob_garbage_bytes(), 0u);
  for (uint64_t v = 1; v <= 8; ++v) {
    ASSERT_OK_AND_ASSIGN(StoredVersion kept,
                         store_->Head("alice", absl::StrCat("keep", v), 0));
    EXPECT_THAT(ReadAll(kept),
                IsOkAndHolds(TestBytes(kHalf, static_cast<uint32_t>(v))));
  }
}

TEST_P(ObjectStoreTest, AbandonedUploadLeavesNothing) {
  {
    ASSERT_OK_AND_ASSIGN(
        std::unique_ptr<Upload> upload,
        store_->BeginPut(MakeHeader("alice", "gone", 1, 3 * kSegment)));
    ASSERT_OK(upload->Append(TestBytes(2 * kSegment + 10, 1)));
    EXPECT_EQ(store_->pending_uploads(), 1u);
  }
  EXPECT_EQ(store_->pending_uploads(), 0u);
  EXPECT_THAT(store_->Head("alice", "gone", 0),
              StatusIs(absl::StatusCode::kNotFound));
  ASSERT_OK_AND_ASSIGN(ObjectStore::ListResult list,
                       store_->List("alice", "", true, 0, ""));
  EXPECT_THAT(list.objects, SizeIs(0));
  EXPECT_EQ(SegmentsStored(), 0u);
  EXPECT_EQ(PendingStored(), 0u);
}

TEST_F(RocksStoreTest, UploadInterruptedByACrashIsCollectedAtOpen) {
  // A copy of the directory taken while an upload is half done is what a
  // crash (of the process, the writes having reached the OS) leaves. It is
  // in the test's temporary directory, removed with it.
  const std::string crash_dir = dir_ + "_crash";
  {
    ASSERT_OK_AND_ASSIGN(
        std::unique_ptr<Upload> upload,
        store_->BeginPut(MakeHeader("alice", "crash", 1, 3 * kSegment)));
    ASSERT_OK(upload->Append(TestBytes(2 * kSegment + 10, 1)));
    std::filesystem::copy(dir_, crash_dir,
                          std::filesystem::copy_options::recursive);
  }
  store_.reset();
  // The image holds the pending record and the two full segments.
  EXPECT_EQ(CountKeys(crash_dir, 'u'), 1u);
  EXPECT_EQ(CountKeys(crash_dir, 'd'), 2u);

  {
    ASSERT_OK_AND_ASSIGN(std::unique_ptr<ObjectStore> reopened,
                         ObjectStore::Open(crash_dir, options_));
    EXPECT_EQ(reopened->pending_uploads(), 0u);
    EXPECT_THAT(reopened->Head("alice", "crash", 0),
                StatusIs(absl::StatusCode::kNotFound));
  }
  EXPECT_EQ(CountKeys(crash_dir, 'u'), 0u);
  EXPECT_EQ(CountKeys(crash_dir, 'd'), 0u);
}

// A full disk met by one upload stops writing for every upload. An upload
// that was already under way, and whose own writes all succeeded, goes on
// once there is space again: its next write resumes the store (its earlier
// segments are in the memtable, so the resume starts a new log) and it
// commits whole.
TEST_F(RocksStoreTest, AnUploadUnderWayGoesOnAfterAFullDiskIsOver) {
  ASSERT_NO_FATAL_FAILURE(ReopenWithFaults());
  const std::string data = TestBytes(3 * kSegment, 4);
  ASSERT_OK_AND_ASSIGN(
      std::unique_ptr<Upload> under_way,
      store_->BeginPut(MakeHeader("alice", "under-way", 1, data.size())));
  ASSERT_OK(under_way->Append(absl::string_view(data).substr(0, kSegment)));

  FullDiskMetByAnotherUpload();
  ASSERT_OK(under_way->Append(absl::string_view(data).substr(kSegment)));
  ASSERT_OK_AND_ASSIGN(StoredVersion stored, under_way->Commit());
  EXPECT_THAT(ReadAll(stored), IsOkAndHolds(data));
  EXPECT_THAT(store_->Head("alice", "refused", 0),
              StatusIs(absl::StatusCode::kNotFound));
}

// The same when the upload's next write is its commit: all its segments
// were written before the full disk. What it commits survives a reopen.
TEST_F(RocksStoreTest, AnUploadUnderWayCommitsAfterAFullDiskIsOver) {
  ASSERT_NO_FATAL_FAILURE(ReopenWithFaults());
  const std::string data = TestBytes(3 * kSegment, 6);
  ASSERT_OK_AND_ASSIGN(
      std::unique_ptr<Upload> under_way,
      store_->BeginPut(MakeHeader("alice", "under-way", 1, data.size())));
  ASSERT_OK(under_way->Append(data));

  FullDiskMetByAnotherUpload();
  ASSERT_OK(under_way->Commit().status());
  under_way.reset();
  store_.reset();
  ASSERT_OK_AND_ASSIGN(store_, ObjectStore::Open(dir_, options_));
  ASSERT_OK_AND_ASSIGN(StoredVersion stored,
                       store_->Head("alice", "under-way", 1));
  EXPECT_THAT(ReadAll(stored), IsOkAndHolds(data));
  EXPECT_EQ(store_->pending_uploads(), 0u);
}

// A store stopped by a full disk tries to resume by itself, without a
// write to prompt it: first in vain while the disk is still full (without
// calling RocksDB's Resume, which would then fail for good), then
// successfully once the space is back. It reports both changes.
TEST_F(RocksStoreTest, AStoppedStoreResumesWithoutAWriteOnceTheDiskAllows) {
  absl::Mutex mu;
  std::vector<bool> reported;
  options_.on_writing = [&](bool writing) {
    absl::MutexLock lock(&mu);
    reported.push_back(writing);
  };
  options_.resume_every = absl::Milliseconds(20);
  ASSERT_NO_FATAL_FAILURE(ReopenWithFaults());
  // The store's thread reports into `mu` and `reported`: it ends first.
  absl::Cleanup close_first = [this] { store_.reset(); };
  const std::string data = TestBytes(kSegment, 8);
  ASSERT_OK(Put(MakeHeader("alice", "before", 1, data.size()), data).status());

  fs_->set_fault(testing::FaultFileSystem::Fault::kDiskFull);
  EXPECT_THAT(store_->BeginPut(MakeHeader("alice", "refused", 1, 10)),
              StatusIs(absl::StatusCode::kResourceExhausted));
  // Several tries find the disk still full, and a write meanwhile is
  // refused as such. None of them may leave the store unable to resume.
  const uint64_t asked = fs_->free_space_asked();
  for (int i = 0; i < 500 && fs_->free_space_asked() < asked + 3; ++i) {
    absl::SleepFor(absl::Milliseconds(10));
  }
  EXPECT_GE(fs_->free_space_asked(), asked + 3);
  EXPECT_THAT(store_->BeginPut(MakeHeader("alice", "refused", 1, 10)),
              StatusIs(absl::StatusCode::kResourceExhausted,
                       HasSubstr("the disk is still full")));
  {
    absl::MutexLock lock(&mu);
    EXPECT_THAT(reported, ::testing::ElementsAre(false));
  }

  fs_->set_fault(testing::FaultFileSystem::Fault::kNone);
  auto resumed = [&] { return reported.size() == 2; };
  {
    absl::MutexLock lock(&mu);
    EXPECT_TRUE(
        mu.AwaitWithTimeout(absl::Condition(&resumed), absl::Seconds(30)));
    EXPECT_THAT(reported, ::testing::ElementsAre(false, true));
  }
  ASSERT_OK_AND_ASSIGN(StoredVersion after,
                       Put(MakeHeader("alice", "after", 1, data.size()), data));
  EXPECT_THAT(ReadAll(after), IsOkAndHolds(data));
}

TEST_P(ObjectStoreTest, BytesBeyondTheDeclaredLengthAreRefused) {
  const uint64_t size = kSegment + 1;
  const std::string data = TestBytes(size + 5, 2);
  {
    ASSERT_OK_AND_ASSIGN(std::unique_ptr<Upload> upload,
                         store_->BeginPut(MakeHeader("alice", "x", 1, size)));
    ASSERT_OK(upload->Append(absl::string_view(data).substr(0, size)));
    EXPECT_THAT(upload->Append("z"),
                StatusIs(absl::StatusCode::kInvalidArgument,
                         HasSubstr("1 bytes after the declared length")));
    // The upload is over: it does not commit what it had.
    EXPECT_THAT(upload->Commit(), StatusIs(absl::StatusCode::kInvalidArgument));
  }
  {
    // One Append that runs past the end is refused whole.
    ASSERT_OK_AND_ASSIGN(std::unique_ptr<Upload> upload,
                         store_->BeginPut(MakeHeader("alice", "x", 1, size)));
    EXPECT_THAT(upload->Append(data),
                StatusIs(absl::StatusCode::kInvalidArgument,
                         HasSubstr("5 bytes after")));
  }
  EXPECT_THAT(store_->Head("alice", "x", 0),
              StatusIs(absl::StatusCode::kNotFound));
  EXPECT_EQ(store_->pending_uploads(), 0u);
}

TEST_P(ObjectStoreTest, TooFewBytesAreRefusedAtCommitAndNothingIsVisible) {
  const uint64_t size = 3 * kSegment + 1;
  {
    ASSERT_OK_AND_ASSIGN(std::unique_ptr<Upload> upload,
                         store_->BeginPut(MakeHeader("alice", "x", 1, size)));
    ASSERT_OK(upload->Append(TestBytes(size - 1, 1)));
    EXPECT_THAT(upload->Commit(), StatusIs(absl::StatusCode::kInvalidArgument,
                                           HasSubstr("3000 of 3001")));
    EXPECT_THAT(store_->Head("alice", "x", 1),
                StatusIs(absl::StatusCode::kNotFound));
  }
  ASSERT_OK_AND_ASSIGN(ObjectStore::ListResult list,
                       store_->List("alice", "", true, 0, ""));
  EXPECT_THAT(list.objects, SizeIs(0));
  EXPECT_EQ(SegmentsStored(), 0u);
  EXPECT_EQ(VersionsStored(), 0u);
}

TEST_P(ObjectStoreTest, ConcurrentUploadsOfOneVersionCommitExactlyOnce) {
  constexpr int kWriters = 8;
  constexpr uint64_t kSize = 3 * kSegment + 17;
  const ObjectHeader header = MakeHeader("alice", "race", 1, kSize);
  // Every writer has its upload begun and filled before any commits, so
  // all of them reach Commit with the version still free.
  std::vector<std::unique_ptr<Upload>> uploads;
  for (int i = 0; i < kWriters; ++i) {
    ASSERT_OK_AND_ASSIGN(std::unique_ptr<Upload> upload,
                         store_->BeginPut(header));
    ASSERT_OK(upload->Append(TestBytes(kSize, static_cast<uint32_t>(i))));
    uploads.push_back(std::move(upload));
  }
  std::vector<absl::Status> results(kWriters);
  std::vector<std::thread> threads;
  for (int i = 0; i < kWriters; ++i) {
    threads.emplace_back(
        [&, i] { results[i] = uploads[i]->Commit().status(); });
  }
  for (std::thread& t : threads) t.join();
  int committed = -1;
  for (int i = 0; i < kWriters; ++i) {
    if (results[i].ok()) {
      EXPECT_EQ(committed, -1) << "two commits of one version";
      committed = i;
    } else {
      EXPECT_THAT(results[i], StatusIs(absl::StatusCode::kAlreadyExists));
    }
  }
  ASSERT_NE(committed, -1);
  uploads.clear();  // the losers are abandoned
  EXPECT_EQ(store_->pending_uploads(), 0u);
  ASSERT_OK_AND_ASSIGN(StoredVersion stored, store_->Head("alice", "race", 1));
  ASSERT_OK_AND_ASSIGN(std::string bytes, ReadAll(stored));
  EXPECT_TRUE(bytes == TestBytes(kSize, static_cast<uint32_t>(committed)));
}

TEST_P(ObjectStoreTest, CommitTwiceFails) {
  ASSERT_OK_AND_ASSIGN(std::unique_ptr<Upload> upload,
                       store_->BeginPut(MakeHeader("alice", "x", 1, 72)));
  ASSERT_OK(upload->Append(TestBytes(72, 1)));
  ASSERT_OK(upload->Commit().status());
  EXPECT_THAT(upload->Commit(),
              StatusIs(absl::StatusCode::kFailedPrecondition));
  EXPECT_THAT(upload->Append(""),
              StatusIs(absl::StatusCode::kFailedPrecondition));
}

// The latest version a refusal names for the writer (VersionTaken), or 0.
template <typename T>
uint64_t NamedLatest(const absl::StatusOr<T>& refused) {
  const std::optional<residency::v1::VersionTaken> taken =
      rpc::DetailOf<residency::v1::VersionTaken>(refused.status());
  return taken.has_value() ? taken->latest_version() : 0;
}

TEST_P(ObjectStoreTest, SameOrLowerVersionAlreadyExists) {
  ASSERT_OK(PutSized("alice", "x", 2, 100).status());
  absl::StatusOr<std::unique_ptr<Upload>> same =
      store_->BeginPut(MakeHeader("alice", "x", 2, 100));
  EXPECT_THAT(same, StatusIs(absl::StatusCode::kAlreadyExists,
                             HasSubstr("version 2 already exists")));
  EXPECT_EQ(NamedLatest(same), 2u);
  absl::StatusOr<std::unique_ptr<Upload>> lower =
      store_->BeginPut(MakeHeader("alice", "x", 1, 100));
  EXPECT_THAT(lower, StatusIs(absl::StatusCode::kAlreadyExists));
  EXPECT_EQ(NamedLatest(lower), 2u);
  // Other objects and other owners are unaffected.
  EXPECT_OK(store_->BeginPut(MakeHeader("alice", "xy", 1, 100)));
  EXPECT_OK(store_->BeginPut(MakeHeader("bob", "x", 1, 100)));
  EXPECT_OK(PutSized("alice", "x", 3, 100));
  EXPECT_THAT(store_->BeginPut(MakeHeader("alice", "x", 0, 100)),
              StatusIs(absl::StatusCode::kInvalidArgument));
  EXPECT_EQ(store_->pending_uploads(), 0u);
}

TEST_P(ObjectStoreTest, CommitRechecksTheVersion) {
  const uint64_t size = 2 * kSegment + 1;
  ASSERT_OK_AND_ASSIGN(std::unique_ptr<Upload> first,
                       store_->BeginPut(MakeHeader("alice", "x", 5, size)));
  ASSERT_OK_AND_ASSIGN(std::unique_ptr<Upload> second,
                       store_->BeginPut(MakeHeader("alice", "x", 5, size)));
  ASSERT_OK_AND_ASSIGN(std::unique_ptr<Upload> lower,
                       store_->BeginPut(MakeHeader("alice", "x", 4, size)));
  const std::string a = TestBytes(size, 1);
  const std::string b = TestBytes(size, 2);
  ASSERT_OK(first->Append(a));
  ASSERT_OK(second->Append(b));
  ASSERT_OK(lower->Append(b));
  ASSERT_OK_AND_ASSIGN(StoredVersion stored, first->Commit());
  absl::StatusOr<StoredVersion> refused = second->Commit();
  EXPECT_THAT(refused, StatusIs(absl::StatusCode::kAlreadyExists));
  EXPECT_EQ(NamedLatest(refused), 5u);
  refused = lower->Commit();
  EXPECT_THAT(refused, StatusIs(absl::StatusCode::kAlreadyExists));
  EXPECT_EQ(NamedLatest(refused), 5u);
  ASSERT_OK_AND_ASSIGN(StoredVersion head, store_->Head("alice", "x", 0));
  EXPECT_EQ(head.upload_id, stored.upload_id);
  EXPECT_EQ(head.info.header().object().version(), 5u);
  EXPECT_THAT(ReadAll(head), IsOkAndHolds(a));
  EXPECT_THAT(store_->Head("alice", "x", 4),
              StatusIs(absl::StatusCode::kNotFound));
  first.reset();
  second.reset();
  lower.reset();
  // Only the committed upload's segments remain.
  EXPECT_EQ(SegmentsStored(), Segments(size));
  EXPECT_EQ(PendingStored(), 0u);
}

TEST_P(ObjectStoreTest, VersionZeroIsTheLatest) {
  ASSERT_OK(PutSized("alice", "a", 1, 100).status());
  ASSERT_OK(PutSized("alice", "a", 2, 101).status());
  ASSERT_OK(PutSized("alice", "a", 7, 102).status());
  // Objects whose keys sort right after "a"'s must not be taken for it.
  ASSERT_OK(PutSized("alice", "a ", 9, 103).status());
  ASSERT_OK(PutSized("alice", "ab", 9, 104).status());
  ASSERT_OK(PutSized("alicf", "a", 9, 105).status());
  ASSERT_OK_AND_ASSIGN(StoredVersion latest, store_->Head("alice", "a", 0));
  EXPECT_EQ(latest.info.header().object().version(), 7u);
  EXPECT_EQ(latest.info.header().ciphertext_length(), 102u);
  ASSERT_OK_AND_ASSIGN(StoredVersion v2, store_->Head("alice", "a", 2));
  EXPECT_EQ(v2.info.header().ciphertext_length(), 101u);
  EXPECT_THAT(store_->Head("alice", "a", 3),
              StatusIs(absl::StatusCode::kNotFound));
  EXPECT_THAT(store_->Head("alice", "", 0),
              StatusIs(absl::StatusCode::kInvalidArgument));
  // A prefix of an existing id is not that object.
  ASSERT_OK(PutSized("bob", "photo", 4, 100).status());
  EXPECT_THAT(store_->Head("bob", "phot", 0),
              StatusIs(absl::StatusCode::kNotFound));
  EXPECT_THAT(store_->Head("bob", "photos", 0),
              StatusIs(absl::StatusCode::kNotFound));
}

TEST_P(ObjectStoreTest, ListPaginatesWithAPrefix) {
  for (int i = 0; i < 25; ++i) {
    ASSERT_OK(
        PutSized("alice", absl::StrFormat("photos/%02d", i), 1, 72).status());
  }
  ASSERT_OK(PutSized("alice", "docs/a", 1, 72).status());
  ASSERT_OK(PutSized("alice", "photos", 1, 72).status());  // not "photos/"
  ASSERT_OK(PutSized("bob", "photos/99", 1, 72).status());

  std::vector<std::string> all;
  std::vector<size_t> page_sizes;
  std::string token;
  do {
    ASSERT_OK_AND_ASSIGN(ObjectStore::ListResult page,
                         store_->List("alice", "photos/", false, 10, token));
    page_sizes.push_back(page.objects.size());
    for (const std::string& id : Ids(page)) all.push_back(id);
    token = page.next_page_token;
  } while (!token.empty() && page_sizes.size() < 10);
  EXPECT_THAT(page_sizes, ElementsAre(10, 10, 5));
  std::vector<std::string> expected;
  for (int i = 0; i < 25; ++i) {
    expected.push_back(absl::StrFormat("photos/%02d@1", i));
  }
  EXPECT_EQ(all, expected);

  ASSERT_OK_AND_ASSIGN(ObjectStore::ListResult everything,
                       store_->List("alice", "", false, 0, ""));
  EXPECT_THAT(everything.objects, SizeIs(27));
  EXPECT_EQ(Ids(everything).front(), "docs/a@1");
  EXPECT_EQ(Ids(everything)[1], "photos@1");
  EXPECT_EQ(everything.next_page_token, "");
}

TEST_P(ObjectStoreTest, ListAllVersionsOrLatestOnly) {
  for (int i = 0; i < 12; ++i) {
    const std::string id = absl::StrFormat("f%02d", i);
    ASSERT_OK(PutSized("alice", id, 1, 72).status());
    if (i % 3 == 0) {
      ASSERT_OK(PutSized("alice", id, 2, 73).status());
      ASSERT_OK(PutSized("alice", id, 4, 74).status());
    }
  }
  // 12 objects, 20 versions.
  std::vector<std::string> latest;
  std::vector<std::string> versions;
  for (bool all_versions : {false, true}) {
    std::vector<std::string>& out = all_versions ? versions : latest;
    std::string token;
    int pages = 0;
    do {
      ASSERT_OK_AND_ASSIGN(ObjectStore::ListResult page,
                           store_->List("alice", "f", all_versions, 5, token));
      EXPECT_THAT(page.objects, SizeIs(Le(5u)));
      for (const std::string& id : Ids(page)) out.push_back(id);
      token = page.next_page_token;
      ++pages;
    } while (!token.empty() && pages < 10);
    // A last page that is exactly full carries no token.
    EXPECT_EQ(pages, all_versions ? 4 : 3);
  }
  ASSERT_THAT(latest, SizeIs(12));
  EXPECT_EQ(latest[0], "f00@4");
  EXPECT_EQ(latest[1], "f01@1");
  EXPECT_EQ(latest[3], "f03@4");
  EXPECT_EQ(latest[11], "f11@1");
  ASSERT_THAT(versions, SizeIs(20));
  EXPECT_THAT(std::vector<std::string>(versions.begin(), versions.begin() + 4),
              ElementsAre("f00@1", "f00@2", "f00@4", "f01@1"));
}

TEST_P(ObjectStoreTest, PageSizeIsDefaultedAndCapped) {
  for (int i = 0; i < 1001; ++i) {
    ASSERT_OK(PutSized("alice", absl::StrFormat("o%04d", i), 1, 72).status());
  }
  ASSERT_OK_AND_ASSIGN(ObjectStore::ListResult page,
                       store_->List("alice", "", false, 0, ""));
  EXPECT_THAT(page.objects, SizeIs(100));
  EXPECT_NE(page.next_page_token, "");
  ASSERT_OK_AND_ASSIGN(page, store_->List("alice", "", true, 5000, ""));
  EXPECT_THAT(page.objects, SizeIs(1000));
  ASSERT_OK_AND_ASSIGN(
      page, store_->List("alice", "", true, 5000, page.next_page_token));
  EXPECT_THAT(Ids(page), ElementsAre("o1000@1"));
  EXPECT_EQ(page.next_page_token, "");
}

TEST_P(ObjectStoreTest, ForeignOrMalformedPageTokensAreRefused) {
  for (int i = 0; i < 3; ++i) {
    ASSERT_OK(PutSized("alice", absl::StrCat("p/", i), 1, 72).status());
    ASSERT_OK(PutSized("alice", absl::StrCat("q/", i), 1, 72).status());
    ASSERT_OK(PutSized("bob", absl::StrCat("p/", i), 1, 72).status());
  }
  ASSERT_OK_AND_ASSIGN(ObjectStore::ListResult bobs,
                       store_->List("bob", "p/", false, 1, ""));
  ASSERT_NE(bobs.next_page_token, "");
  ASSERT_OK_AND_ASSIGN(ObjectStore::ListResult alices,
                       store_->List("alice", "q/", false, 1, ""));
  ASSERT_NE(alices.next_page_token, "");
  // The tokens work where they belong.
  EXPECT_OK(store_->List("bob", "p/", false, 1, bobs.next_page_token));
  EXPECT_OK(store_->List("alice", "q/", false, 1, alices.next_page_token));

  const std::vector<std::string> bad = {
      bobs.next_page_token,  // another owner's
      "!!not base64!!", absl::WebSafeBase64Escape("hello"),
      absl::WebSafeBase64Escape(std::string("oalice\0p/0\0", 11)),  // short
  };
  for (const std::string& token : bad) {
    EXPECT_THAT(
        store_->List("alice", "p/", false, 1, token),
        StatusIs(absl::StatusCode::kInvalidArgument, HasSubstr("page_token")))
        << token;
  }
  // Another prefix's token.
  EXPECT_THAT(store_->List("alice", "p/", true, 1, alices.next_page_token),
              StatusIs(absl::StatusCode::kInvalidArgument));
}

TEST_P(ObjectStoreTest, DeleteOneVersionOrAll) {
  const uint64_t size = 2 * kSegment + 1;
  ASSERT_OK(PutSized("alice", "x", 1, size).status());
  ASSERT_OK(PutSized("alice", "x", 2, size).status());
  ASSERT_OK(PutSized("alice", "x", 3, size).status());
  ASSERT_OK(PutSized("alice", "y", 1, size).status());
  ASSERT_OK(PutSized("alice", "x/z", 1, size).status());

  EXPECT_THAT(store_->Delete("alice", "x", 2), IsOkAndHolds(1u));
  EXPECT_THAT(store_->Head("alice", "x", 2),
              StatusIs(absl::StatusCode::kNotFound));
  EXPECT_OK(store_->Head("alice", "x", 1));
  EXPECT_OK(store_->Head("alice", "x", 3));
  EXPECT_THAT(store_->Delete("alice", "x", 2),
              StatusIs(absl::StatusCode::kNotFound));
  EXPECT_THAT(store_->Delete("alice", "nothing", 0),
              StatusIs(absl::StatusCode::kNotFound));

  EXPECT_THAT(store_->Delete("alice", "x", 0), IsOkAndHolds(2u));
  EXPECT_THAT(store_->Head("alice", "x", 0),
              StatusIs(absl::StatusCode::kNotFound));
  EXPECT_THAT(store_->Delete("alice", "x", 0),
              StatusIs(absl::StatusCode::kNotFound));
  // Neighbours in key order survive.
  EXPECT_OK(store_->Head("alice", "y", 1));
  EXPECT_OK(store_->Head("alice", "x/z", 1));
  // A deleted version may be stored again.
  EXPECT_OK(PutSized("alice", "x", 1, 72));

  EXPECT_EQ(VersionsStored(), 3u);
  // y and x/z, and the new x v1 (one segment).
  EXPECT_EQ(SegmentsStored(), 2 * Segments(size) + 1);
}

TEST_P(ObjectStoreTest, ReadOfADeletedVersionIsNotFound) {
  const uint64_t size = 2 * kSegment;
  ASSERT_OK_AND_ASSIGN(StoredVersion old, PutSized("alice", "x", 1, size));
  ASSERT_OK(store_->Delete("alice", "x", 1).status());
  EXPECT_THAT(ReadAll(old), StatusIs(absl::StatusCode::kNotFound));
  // Stored again under the same name: the old handle still does not read
  // the new bytes.
  ASSERT_OK_AND_ASSIGN(StoredVersion fresh, PutSized("alice", "x", 1, size));
  EXPECT_THAT(ReadAll(old), StatusIs(absl::StatusCode::kNotFound));
  EXPECT_OK(ReadAll(fresh));
}

TEST_P(ObjectStoreTest, UsageAggregatesTheHeaders) {
  const uint64_t c1 = crypto::ChunkedCiphertextLength(100);
  const uint64_t c2 = crypto::ChunkedCiphertextLength(200);
  const uint64_t c3 = crypto::ChunkedCiphertextLength(16384);
  ASSERT_OK(PutSized("alice", "a", 1, c1).status());
  ASSERT_OK(PutSized("alice", "a", 2, c2).status());
  ASSERT_OK(PutSized("alice", "b", 1, c3).status());
  ASSERT_OK(PutSized("bob", "a", 1, c1).status());

  ASSERT_OK_AND_ASSIGN(auto usage, store_->Usage(""));
  ASSERT_THAT(usage, SizeIs(2));
  EXPECT_EQ(usage[0].owner(), "alice");
  EXPECT_EQ(usage[0].object_count(), 2u);
  EXPECT_EQ(usage[0].version_count(), 3u);
  EXPECT_EQ(usage[0].ciphertext_bytes(), c1 + c2 + c3);
  EXPECT_EQ(usage[0].plaintext_bytes(), 100u + 200u + 16384u);
  EXPECT_EQ(usage[1].owner(), "bob");
  EXPECT_EQ(usage[1].object_count(), 1u);
  EXPECT_EQ(usage[1].version_count(), 1u);
  EXPECT_EQ(usage[1].ciphertext_bytes(), c1);
  EXPECT_EQ(usage[1].plaintext_bytes(), 100u);

  ASSERT_OK_AND_ASSIGN(usage, store_->Usage("bob"));
  ASSERT_THAT(usage, SizeIs(1));
  EXPECT_EQ(usage[0].owner(), "bob");
  EXPECT_EQ(usage[0].version_count(), 1u);

  ASSERT_OK_AND_ASSIGN(usage, store_->Usage("carol"));
  ASSERT_THAT(usage, SizeIs(1));
  EXPECT_EQ(usage[0].owner(), "carol");
  EXPECT_EQ(usage[0].object_count(), 0u);
  EXPECT_EQ(usage[0].ciphertext_bytes(), 0u);

  EXPECT_THAT(store_->Usage("a/b"),
              StatusIs(absl::StatusCode::kInvalidArgument));
}

TEST_P(ObjectStoreTest, ForEachObjectVisitsInOrderAndStops) {
  ASSERT_OK(PutSized("alice", "b", 1, 72).status());
  ASSERT_OK(PutSized("alice", "a", 1, 72).status());
  ASSERT_OK(PutSized("alice", "a", 2, 72).status());
  ASSERT_OK(PutSized("bob", "a", 1, 72).status());
  std::vector<std::string> seen;
  ASSERT_OK(store_->ForEachObject("alice", [&](const StoredVersion& v) {
    seen.push_back(absl::StrCat(v.info.header().object().object_id(), "@",
                                v.info.header().object().version()));
    return true;
  }));
  EXPECT_THAT(seen, ElementsAre("a@1", "a@2", "b@1"));
  int visits = 0;
  ASSERT_OK(store_->ForEachObject("alice", [&](const StoredVersion&) {
    ++visits;
    return false;
  }));
  EXPECT_EQ(visits, 1);
}

TEST_P(ObjectStoreTest, MalformedNamesAreRefused) {
  const std::string max_owner(128, 'o');
  const std::string max_id(1024, 'i');
  ASSERT_OK_AND_ASSIGN(StoredVersion stored,
                       PutSized(max_owner, max_id, 1, 72));
  EXPECT_OK(store_->Head(max_owner, max_id, 1));

  const std::vector<std::string> bad_owners = {"", std::string(129, 'o'), "a/b",
                                               std::string("a\0b", 3)};
  for (const std::string& owner : bad_owners) {
    SCOPED_TRACE(absl::CHexEscape(owner));
    const auto invalid_owner =
        StatusIs(absl::StatusCode::kInvalidArgument, HasSubstr("owner"));
    EXPECT_THAT(store_->BeginPut(MakeHeader(owner, "x", 1, 72)), invalid_owner);
    EXPECT_THAT(store_->Head(owner, "x", 0), invalid_owner);
    EXPECT_THAT(store_->List(owner, "", false, 0, ""), invalid_owner);
    EXPECT_THAT(store_->Delete(owner, "x", 0), invalid_owner);
    EXPECT_THAT(
        store_->ForEachObject(owner, [](const StoredVersion&) { return true; }),
        invalid_owner);
  }
  const std::vector<std::string> bad_ids = {"", std::string(1025, 'i'),
                                            std::string("x\0y", 3)};
  for (const std::string& id : bad_ids) {
    SCOPED_TRACE(absl::CHexEscape(id));
    const auto invalid_id =
        StatusIs(absl::StatusCode::kInvalidArgument, HasSubstr("object_id"));
    EXPECT_THAT(store_->BeginPut(MakeHeader("alice", id, 1, 72)), invalid_id);
    EXPECT_THAT(store_->Head("alice", id, 0), invalid_id);
    EXPECT_THAT(store_->Delete("alice", id, 0), invalid_id);
  }
  EXPECT_THAT(store_->List("alice", std::string(1025, 'i'), false, 0, ""),
              StatusIs(absl::StatusCode::kInvalidArgument,
                       HasSubstr("object_id_prefix")));
  EXPECT_THAT(store_->List("alice", std::string("x\0", 2), false, 0, ""),
              StatusIs(absl::StatusCode::kInvalidArgument,
                       HasSubstr("object_id_prefix")));
  EXPECT_EQ(store_->pending_uploads(), 0u);
}

TEST_P(ObjectStoreTest, DataSurvivesCloseAndReopen) {
  const std::string big = TestBytes(5 * kSegment + 3, 5);
  const std::string small = TestBytes(72, 6);
  ASSERT_OK_AND_ASSIGN(StoredVersion a,
                       Put(MakeHeader("alice", "big", 1, big.size()), big));
  ASSERT_OK(Put(MakeHeader("bob", "small", 3, small.size()), small).status());
  Reopen();
  ASSERT_OK_AND_ASSIGN(StoredVersion a2, store_->Head("alice", "big", 0));
  EXPECT_EQ(a2.info.SerializeAsString(), a.info.SerializeAsString());
  EXPECT_THAT(ReadAll(a2), IsOkAndHolds(big));
  ASSERT_OK_AND_ASSIGN(StoredVersion b, store_->Head("bob", "small", 3));
  EXPECT_THAT(ReadAll(b), IsOkAndHolds(small));
  EXPECT_THAT(store_->BeginPut(MakeHeader("bob", "small", 3, 72)),
              StatusIs(absl::StatusCode::kAlreadyExists));
}

TEST_P(ObjectStoreTest, VersionsKeepTheirSegmentSizeWhenTheOptionChanges) {
  const std::string data = TestBytes(3 * kSegment + 7, 8);
  ASSERT_OK(Put(MakeHeader("alice", "x", 1, data.size()), data).status());
  options_.segment_bytes = 700;
  Reopen();
  ASSERT_OK(Put(MakeHeader("alice", "x", 2, data.size()), data).status());
  ASSERT_OK_AND_ASSIGN(StoredVersion v1, store_->Head("alice", "x", 1));
  ASSERT_OK_AND_ASSIGN(StoredVersion v2, store_->Head("alice", "x", 2));
  EXPECT_EQ(v1.segment_bytes, kSegment);
  EXPECT_EQ(v2.segment_bytes, 700u);
  EXPECT_THAT(Read(v1, 995, 1010), IsOkAndHolds(data.substr(995, 1010)));
  EXPECT_THAT(Read(v2, 995, 1010), IsOkAndHolds(data.substr(995, 1010)));
}

TEST_P(ObjectStoreTest, ObjectsAboveTheSizeLimitAreRefused) {
  options_.max_object_bytes = 2000;
  Reopen();
  EXPECT_OK(PutSized("alice", "x", 1, 2000));
  EXPECT_THAT(
      store_->BeginPut(MakeHeader("alice", "y", 1, 2001)),
      StatusIs(absl::StatusCode::kResourceExhausted, HasSubstr("2001")));
  EXPECT_EQ(store_->pending_uploads(), 0u);
}

TEST_F(RocksStoreTest, OpenRefusesAnUnusableSegmentSize) {
  store_.reset();
  ObjectStoreOptions options = options_;
  options.segment_bytes = 0;
  EXPECT_THAT(
      ObjectStore::Open(dir_, options),
      StatusIs(absl::StatusCode::kInvalidArgument, HasSubstr("segment_bytes")));
  options.segment_bytes = size_t{1} << 30;
  EXPECT_THAT(
      ObjectStore::Open(dir_, options),
      StatusIs(absl::StatusCode::kInvalidArgument, HasSubstr("segment_bytes")));
  options.segment_bytes = kSegment;
  options.clock = nullptr;
  EXPECT_THAT(ObjectStore::Open(dir_, options),
              StatusIs(absl::StatusCode::kInvalidArgument, HasSubstr("clock")));
  options.clock = options_.clock;
  options.resume_every = absl::ZeroDuration();
  EXPECT_THAT(ObjectStore::Open(dir_, options),
              StatusIs(absl::StatusCode::kInvalidArgument,
                       HasSubstr("resume_every must be positive")));
}

TEST_F(RadosStoreTest, UploadOfADeadGatewayIsCollectedByAnother) {
  // Gateway a stops renewing (as if it died) in the middle of an upload.
  std::unique_ptr<RadosObjectStore> a = Gateway(absl::Hours(1), absl::Hours(3));
  std::unique_ptr<RadosObjectStore> b = Gateway(absl::Hours(1), absl::Hours(3));
  ASSERT_NE(a, nullptr);
  ASSERT_NE(b, nullptr);
  ASSERT_OK_AND_ASSIGN(std::unique_ptr<Upload> upload,
                       a->BeginPut(MakeHeader("alice", "x", 1, 3 * kSegment)));
  ASSERT_OK(upload->Append(TestBytes(2 * kSegment + 10, 1)));
  EXPECT_EQ(SegmentObjects(), 2u);
  EXPECT_EQ(b->pending_uploads(), 1u);

  // Not yet abandoned: nothing is collected.
  now_ += absl::Hours(2);
  EXPECT_THAT(b->CollectNow(), IsOkAndHolds(uint64_t{0}));
  EXPECT_EQ(SegmentObjects(), 2u);

  now_ += absl::Hours(1) + absl::Seconds(1);
  EXPECT_THAT(b->CollectNow(), IsOkAndHolds(uint64_t{1}));
  EXPECT_EQ(b->pending_uploads(), 0u);
  EXPECT_EQ(SegmentObjects(), 0u);

  // The upload, should its gateway wake up, cannot commit any more.
  ASSERT_OK(upload->Append(TestBytes(kSegment - 10, 2)));
  EXPECT_THAT(upload->Commit(), StatusIs(absl::StatusCode::kUnavailable,
                                         HasSubstr("collected as abandoned")));
  upload.reset();
  EXPECT_THAT(b->Head("alice", "x", 0), StatusIs(absl::StatusCode::kNotFound));
  EXPECT_EQ(SegmentObjects(), 0u);
}

TEST_F(RadosStoreTest, RenewedUploadIsNotCollected) {
  std::unique_ptr<RadosObjectStore> a = Gateway(absl::Hours(1), absl::Hours(3));
  std::unique_ptr<RadosObjectStore> b = Gateway(absl::Hours(1), absl::Hours(3));
  ASSERT_NE(a, nullptr);
  ASSERT_NE(b, nullptr);
  const std::string data = TestBytes(2 * kSegment, 3);
  ASSERT_OK_AND_ASSIGN(std::unique_ptr<Upload> upload,
                       a->BeginPut(MakeHeader("alice", "x", 1, data.size())));
  ASSERT_OK(upload->Append(absl::string_view(data).substr(0, kSegment)));
  now_ += absl::Hours(2);
  a->RenewNow();
  now_ += absl::Hours(2);  // 4 h since the start, 2 h since the renewal
  EXPECT_THAT(b->CollectNow(), IsOkAndHolds(uint64_t{0}));
  ASSERT_OK(upload->Append(absl::string_view(data).substr(kSegment)));
  ASSERT_OK_AND_ASSIGN(StoredVersion stored, upload->Commit());
  ASSERT_OK_AND_ASSIGN(StoredVersion head, b->Head("alice", "x", 1));
  EXPECT_EQ(head.upload_id, stored.upload_id);
  EXPECT_THAT(ReadAll(head), IsOkAndHolds(data));
}

TEST_F(RadosStoreTest, DeletedSegmentsOutliveReadsUnderWayForTheGrace) {
  RadosStoreOptions options = RadosOptions();
  options.delete_grace = absl::Minutes(1);
  ASSERT_OK_AND_ASSIGN(store_, RadosObjectStore::Open(options));
  const uint64_t size = 3 * kSegment;
  ASSERT_OK_AND_ASSIGN(StoredVersion stored, PutSized("alice", "x", 1, size));
  // A read under way when the version is deleted still gets every byte.
  std::string read;
  bool deleted = false;
  ASSERT_OK(
      store_->ReadCiphertext(stored, {0, size}, [&](absl::string_view piece) {
        read.append(piece.data(), piece.size());
        if (!deleted) {
          deleted = true;
          EXPECT_OK(store_->Delete("alice", "x", 1));
        }
        return true;
      }));
  EXPECT_TRUE(deleted);
  EXPECT_TRUE(read == TestBytes(size, 1));
  // A read that begins after the delete is refused.
  EXPECT_THAT(ReadAll(stored), StatusIs(absl::StatusCode::kNotFound));
  auto* rados = static_cast<RadosObjectStore*>(store_.get());
  ASSERT_OK(rados->CollectNow().status());
  EXPECT_EQ(SegmentObjects(), Segments(size));
  now_ += absl::Minutes(1) + absl::Seconds(1);
  ASSERT_OK(rados->CollectNow().status());
  EXPECT_EQ(SegmentObjects(), 0u);
}

TEST_F(RadosStoreTest, OpenRefusesAMissingPoolOrCluster) {
  RadosStoreOptions options = RadosOptions();
  options.pool = "no-such-pool";
  EXPECT_THAT(RadosObjectStore::Open(options),
              StatusIs(absl::StatusCode::kNotFound, HasSubstr("no-such-pool")));
  options = RadosOptions();
  options.conf_path = dir_ + "/missing.conf";
  EXPECT_THAT(RadosObjectStore::Open(options),
              StatusIs(absl::StatusCode::kNotFound, HasSubstr("missing.conf")));
  options = RadosOptions();
  options.abandoned_after = options.renew_every;
  EXPECT_THAT(RadosObjectStore::Open(options),
              StatusIs(absl::StatusCode::kInvalidArgument));
}

}  // namespace
}  // namespace residency::storage_node
