#include "key_service/key_store.h"

#include <memory>
#include <string>

#include "absl/time/clock.h"
#include "absl/time/time.h"
#include "crypto/random.h"
#include "gmock/gmock.h"
#include "gtest/gtest.h"
#include "tests/fault_file_system.h"
#include "tests/status_matchers.h"
#include "tests/temp_dir.h"

namespace residency::key_service {
namespace {

using ::residency::testing::FaultFileSystem;
using ::residency::testing::StatusIs;
using ::residency::testing::TempDir;
using ::testing::HasSubstr;

class KeyStoreTest : public ::testing::Test {
 protected:
  void SetUp() override {
    ASSERT_OK_AND_ASSIGN(dir_, temp_.Make("key_store_test"));
    ASSERT_OK_AND_ASSIGN(root_, crypto::RandomSecret(32));
  }

  absl::StatusOr<std::unique_ptr<KeyStore>> Open(
      std::shared_ptr<rocksdb::FileSystem> file_system = nullptr) {
    return KeyStore::Open(dir_ + "/keys", root_.Clone(), absl::Now,
                          std::move(file_system));
  }

  TempDir temp_;
  std::string dir_;
  crypto::SecretBytes root_;
};

// The first write after opening fails on a full disk, with nothing in the
// memtable: once there is space again the store does not write through the
// log writer that failed (RocksDB 7.8 would then fail every write, or abort
// the process with its assertions on). It refuses key changes with a
// message to restart and serves the keys it has; reopened, it writes again.
TEST_F(KeyStoreTest, AFullDiskOnTheFirstWriteAsksForARestart) {
  auto fs = std::make_shared<FaultFileSystem>();
  {
    ASSERT_OK_AND_ASSIGN(std::unique_ptr<KeyStore> store, Open(fs));
    fs->set_fault(FaultFileSystem::Fault::kDiskFull);
    EXPECT_THAT(store->Create("kek-1", "alice").status(),
                StatusIs(absl::StatusCode::kInternal,
                         HasSubstr("No space left on device")));
    fs->set_fault(FaultFileSystem::Fault::kNone);
    // Time for a recovery of RocksDB's own, which the store turns off.
    absl::SleepFor(absl::Milliseconds(300));
    for (const char* id : {"kek-2", "kek-3"}) {
      EXPECT_THAT(store->Create(id, "alice").status(),
                  StatusIs(absl::StatusCode::kUnavailable,
                           HasSubstr("restart the key service")));
    }
    EXPECT_THAT(store->LoadOrCreateSecret("audit-seed", 32).status(),
                StatusIs(absl::StatusCode::kUnavailable));
    EXPECT_EQ(store->Find("kek-1"), nullptr);
    EXPECT_EQ(store->key_count(), 0u);
  }
  ASSERT_OK_AND_ASSIGN(std::unique_ptr<KeyStore> store, Open());
  EXPECT_EQ(store->key_count(), 0u);
  ASSERT_OK(store->Create("kek-1", "alice").status());
  ASSERT_OK(store->Rotate("kek-1").status());
  ASSERT_NE(store->Find("kek-1"), nullptr);
}

// With keys in the memtable, resuming flushes them and starts a new log,
// so the store goes on writing once the disk has space again. A write while
// the disk is still full is refused without a resume being tried (one that
// met the full disk again would leave RocksDB unable to resume at all).
TEST_F(KeyStoreTest, AFullDiskAfterEarlierWritesIsResumedFrom) {
  auto fs = std::make_shared<FaultFileSystem>();
  {
    ASSERT_OK_AND_ASSIGN(std::unique_ptr<KeyStore> store, Open(fs));
    ASSERT_OK(store->Create("kek-1", "alice").status());
    fs->set_fault(FaultFileSystem::Fault::kDiskFull);
    EXPECT_THAT(store->Rotate("kek-1").status(),
                StatusIs(absl::StatusCode::kInternal));
    EXPECT_THAT(store->Create("kek-2", "alice").status(),
                StatusIs(absl::StatusCode::kResourceExhausted,
                         HasSubstr("the disk is still full")));
    fs->set_fault(FaultFileSystem::Fault::kNone);
    ASSERT_OK(store->Create("kek-2", "alice").status());
    ASSERT_OK(store->Rotate("kek-1").status());
    EXPECT_EQ(store->key_count(), 2u);
  }
  ASSERT_OK_AND_ASSIGN(std::unique_ptr<KeyStore> store, Open());
  EXPECT_EQ(store->key_count(), 2u);
  ASSERT_NE(store->Find("kek-1"), nullptr);
  EXPECT_EQ(store->Find("kek-1")->info.current_version(), 2u);
}

// A failed sync of the log is fatal to RocksDB: the store cannot resume
// from it and asks for a restart. It remembers that, so later mutations get
// the same answer without another resume (which would read the free space
// and call Resume() each time, to be refused again); reopened, the store
// has every key whose mutation returned OK.
TEST_F(KeyStoreTest, AFailedSyncAsksForARestartWithoutFurtherResumes) {
  auto fs = std::make_shared<FaultFileSystem>();
  {
    ASSERT_OK_AND_ASSIGN(std::unique_ptr<KeyStore> store, Open(fs));
    ASSERT_OK(store->Create("kek-1", "alice").status());
    fs->set_fault(FaultFileSystem::Fault::kSyncFails);
    EXPECT_THAT(store->Rotate("kek-1").status(),
                StatusIs(absl::StatusCode::kInternal));
    fs->set_fault(FaultFileSystem::Fault::kNone);
    const uint64_t asked_before = fs->free_space_asked();
    EXPECT_THAT(store->Create("kek-2", "alice").status(),
                StatusIs(absl::StatusCode::kUnavailable,
                         HasSubstr("restart the key service")));
    // The one resume that was tried read the free space first.
    EXPECT_EQ(fs->free_space_asked(), asked_before + 1);
    for (const char* id : {"kek-3", "kek-4"}) {
      EXPECT_THAT(store->Create(id, "alice").status(),
                  StatusIs(absl::StatusCode::kUnavailable,
                           HasSubstr("restart the key service")));
    }
    EXPECT_EQ(fs->free_space_asked(), asked_before + 1);
    ASSERT_NE(store->Find("kek-1"), nullptr);
    EXPECT_EQ(store->Find("kek-1")->info.current_version(), 1u);
  }
  ASSERT_OK_AND_ASSIGN(std::unique_ptr<KeyStore> store, Open());
  ASSERT_NE(store->Find("kek-1"), nullptr);
  EXPECT_EQ(store->Find("kek-2"), nullptr);
  ASSERT_OK(store->Create("kek-2", "alice").status());
}

}  // namespace
}  // namespace residency::key_service
