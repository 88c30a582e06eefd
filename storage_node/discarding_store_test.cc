#include "storage_node/discarding_store.h"

#include <memory>
#include <string>

#include "gmock/gmock.h"
#include "gtest/gtest.h"
#include "tests/status_matchers.h"

namespace residency::storage_node {
namespace {

using ::residency::testing::StatusIs;
using ::residency::v1::ObjectHeader;
using ::testing::HasSubstr;
using ::testing::IsEmpty;

ObjectHeader MakeHeader(const std::string& object_id, uint64_t length) {
  ObjectHeader header;
  header.mutable_object()->set_owner("alice");
  header.mutable_object()->set_object_id(object_id);
  header.mutable_object()->set_version(1);
  header.set_ciphertext_length(length);
  return header;
}

TEST(DiscardingObjectStoreTest, CommitAcknowledgesAndCountsWithoutKeeping) {
  DiscardingObjectStore store;
  ASSERT_OK_AND_ASSIGN(std::unique_ptr<Upload> upload,
                       store.BeginPut(MakeHeader("a", 10)));
  EXPECT_EQ(store.pending_uploads(), 1u);
  ASSERT_OK(upload->Append("01234"));
  ASSERT_OK(upload->Append("56789"));
  ASSERT_OK_AND_ASSIGN(StoredVersion stored, upload->Commit());
  EXPECT_EQ(stored.info.header().object().object_id(), "a");
  EXPECT_GT(stored.info.stored_at().seconds(), 0);
  EXPECT_EQ(store.pending_uploads(), 0u);
  EXPECT_EQ(store.committed_versions(), 1u);
  EXPECT_EQ(store.committed_bytes(), 10u);
  // Nothing was kept.
  EXPECT_THAT(
      store.Head("alice", "a", 0).status(),
      StatusIs(absl::StatusCode::kNotFound, HasSubstr("keeps nothing")));
  EXPECT_THAT(store.ReadCiphertext(stored, {0, 10},
                                   [](absl::string_view) { return true; }),
              StatusIs(absl::StatusCode::kNotFound));
  ASSERT_OK_AND_ASSIGN(ObjectStore::ListResult listed,
                       store.List("alice", "", true, 100, ""));
  EXPECT_THAT(listed.objects, IsEmpty());
  EXPECT_THAT(store.Delete("alice", "a", 0).status(),
              StatusIs(absl::StatusCode::kNotFound));
}

TEST(DiscardingObjectStoreTest, LengthsAreCheckedAsTheRealStoreChecksThem) {
  DiscardingObjectStore store;
  ASSERT_OK_AND_ASSIGN(std::unique_ptr<Upload> longer,
                       store.BeginPut(MakeHeader("long", 4)));
  EXPECT_THAT(longer->Append("12345"),
              StatusIs(absl::StatusCode::kInvalidArgument,
                       HasSubstr("1 bytes after the declared length of 4")));
  // The first error sticks.
  EXPECT_THAT(longer->Commit().status(),
              StatusIs(absl::StatusCode::kInvalidArgument));

  ASSERT_OK_AND_ASSIGN(std::unique_ptr<Upload> shorter,
                       store.BeginPut(MakeHeader("short", 4)));
  ASSERT_OK(shorter->Append("12"));
  EXPECT_THAT(shorter->Commit().status(),
              StatusIs(absl::StatusCode::kInvalidArgument,
                       HasSubstr("ended after 2 of 4")));
  EXPECT_EQ(store.committed_versions(), 0u);
}

TEST(DiscardingObjectStoreTest, AbandonedUploadIsNoLongerPending) {
  DiscardingObjectStore store;
  {
    ASSERT_OK_AND_ASSIGN(std::unique_ptr<Upload> upload,
                         store.BeginPut(MakeHeader("a", 4)));
    ASSERT_OK(upload->Append("12"));
    EXPECT_EQ(store.pending_uploads(), 1u);
  }
  EXPECT_EQ(store.pending_uploads(), 0u);
  EXPECT_EQ(store.committed_versions(), 0u);
}

TEST(DiscardingObjectStoreTest, SecondCommitIsRefused) {
  DiscardingObjectStore store;
  ASSERT_OK_AND_ASSIGN(std::unique_ptr<Upload> upload,
                       store.BeginPut(MakeHeader("a", 0)));
  ASSERT_OK(upload->Commit().status());
  EXPECT_THAT(upload->Commit().status(),
              StatusIs(absl::StatusCode::kFailedPrecondition));
  EXPECT_EQ(store.committed_versions(), 1u);
}

}  // namespace
}  // namespace residency::storage_node
