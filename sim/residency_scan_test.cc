// The auditor's scanner and owner-side key recovery (residency_scan.h),
// without services: planted bytes are found wherever they sit, and data
// keys come out of headers exactly as their owners would derive them.
#include "sim/residency_scan.h"

#include <stdlib.h>

#include <filesystem>
#include <fstream>
#include <string>
#include <vector>

#include "absl/strings/str_cat.h"
#include "crypto/chunked.h"
#include "crypto/object_context.h"
#include "crypto/random.h"
#include "gmock/gmock.h"
#include "gtest/gtest.h"
#include "key_service/wrapped_key.h"
#include "tests/status_matchers.h"
#include "tests/temp_dir.h"

namespace residency::sim {
namespace {

namespace fs = std::filesystem;
using ::residency::testing::StatusIs;
using ::residency::testing::TempDir;
using ::testing::ElementsAre;
using ::testing::IsEmpty;

class ResidencyScanTest : public ::testing::Test {
 protected:
  void SetUp() override {
    ASSERT_OK_AND_ASSIGN(root_, temp_.Make("residency_scan_test"));
  }

  void Write(const std::string& relative, const std::string& data) {
    const fs::path path = fs::path(root_) / relative;
    fs::create_directories(path.parent_path());
    std::ofstream(path, std::ios::binary) << data;
  }

  ScanResult Scan(const std::vector<Needle>& needles) {
    absl::StatusOr<ScanResult> scan = ScanTree(root_, needles);
    EXPECT_OK(scan.status());
    return scan.ok() ? *std::move(scan) : ScanResult{};
  }

  TempDir temp_;
  std::string root_;
};

std::string Random(size_t size) { return *crypto::RandomBytes(size); }

// Bytes planted anywhere in a nested tree, at any alignment, are found with
// their file and offset; a tree without them reports nothing.
TEST_F(ResidencyScanTest, FindsPlantedBytesAnywhereInTheTree) {
  const std::string marker = absl::StrCat("<<planted:", Random(12), ">>");
  const std::string key = Random(32);
  Write("a/b/c/deep.bin", Random(100001) + marker);
  Write("top.bin", key + Random(5000) + key);
  Write("a/clean.bin", Random(70000));
  Write("a/b/empty", "");
  std::vector<Needle> needles;
  needles.push_back(Needle::Of("marker", marker));
  needles.push_back(Needle::Of("key", key));
  ScanResult scan = Scan(needles);
  EXPECT_EQ(scan.files.size(), 4u);
  ASSERT_EQ(scan.HitsOf("marker").size(), 1u);
  EXPECT_EQ(scan.HitsOf("marker")[0].file, "a/b/c/deep.bin");
  EXPECT_EQ(scan.HitsOf("marker")[0].offset, 100001u);
  ASSERT_EQ(scan.HitsOf("key").size(), 2u);
  EXPECT_EQ(scan.HitsOf("key")[0].file, "top.bin");
  EXPECT_EQ(scan.HitsOf("key")[0].offset, 0u);
  EXPECT_EQ(scan.HitsOf("key")[1].offset, 5032u);
  EXPECT_THAT(scan.FilesWith("mark"), ElementsAre("a/b/c/deep.bin"));

  // Every offset within a block of 64, in one file.
  std::string data = Random(64 * 100);
  for (size_t i = 0; i < 64; ++i)
    data.replace(i * 100 + i % 64, key.size(), key);
  Write("a/b/many.bin", data);
  EXPECT_EQ(Scan(needles).HitsOf("key").size(), 66u);

  fs::remove(root_ + "/a/b/c/deep.bin");
  fs::remove(root_ + "/top.bin");
  fs::remove(root_ + "/a/b/many.bin");
  EXPECT_THAT(Scan(needles).hits, IsEmpty());
}

// Files are read in 4 MiB blocks: an occurrence across a block boundary is
// found, once, and so is one that ends exactly at a boundary or starts
// right after it.
TEST_F(ResidencyScanTest, FindsBytesAcrossBlockBoundariesOnce) {
  const size_t block = 4 << 20;
  const std::string key = Random(32);
  std::string data = Random(3 * block);
  const std::vector<size_t> offsets = {block - 10, 2 * block - 32, 2 * block,
                                       3 * block - 32};
  for (size_t at : offsets) data.replace(at, key.size(), key);
  Write("big.sst", data);
  std::vector<Needle> needles;
  needles.push_back(Needle::Of("key", key));
  needles.push_back(Needle::Of("short", data.substr(block - 3, 7)));
  ScanResult scan = Scan(needles);
  std::vector<uint64_t> found;
  for (const Hit& h : scan.HitsOf("key")) found.push_back(h.offset);
  EXPECT_THAT(found, ElementsAre(block - 10, 2 * block - 32, 2 * block,
                                 3 * block - 32));
  // The short needle is a piece of the key, so it sits in every copy; the
  // first one crosses the boundary.
  found.clear();
  for (const Hit& h : scan.HitsOf("short")) found.push_back(h.offset);
  EXPECT_THAT(found, ElementsAre(block - 3, 2 * block - 25, 2 * block + 7,
                                 3 * block - 25));
  EXPECT_EQ(scan.bytes, data.size());
}

TEST_F(ResidencyScanTest, RefusesAnEmptyNeedleAndAMissingRoot) {
  std::vector<Needle> needles;
  needles.push_back(Needle::Of("nothing", ""));
  EXPECT_THAT(ScanTree(root_, needles).status(),
              StatusIs(absl::StatusCode::kInvalidArgument));
  EXPECT_THAT(ScanTree(root_ + "/missing", {}).status(),
              StatusIs(absl::StatusCode::kNotFound));
}

TEST(FileKindTest, NamesRocksDbFilesAndPlaintextCopies) {
  EXPECT_EQ(FileKind("objects/000012.log"), "wal");
  EXPECT_EQ(FileKind("objects/000013.sst"), "sst");
  EXPECT_EQ(FileKind("objects/000014.blob"), "blob");
  EXPECT_EQ(FileKind("objects/MANIFEST-000005"), "manifest");
  EXPECT_EQ(FileKind("objects/OPTIONS-000007"), "options");
  EXPECT_EQ(FileKind("objects/LOG"), "info-log");
  EXPECT_EQ(FileKind("plaintext/user-1/obj-0"), "plaintext");
  EXPECT_EQ(FileKind("objects/CURRENT"), "other");
}

// ----------------------------------------------------------- key recovery

v1::ObjectHeader HeaderFor(v1::CustodyMode mode) {
  v1::ObjectHeader header;
  header.mutable_object()->set_owner("user-1");
  header.mutable_object()->set_object_id("obj-0");
  header.mutable_object()->set_version(3);
  header.set_custody_mode(mode);
  return header;
}

std::string Context(const v1::ObjectHeader& header) {
  return *crypto::EncodeObjectContext(header.object().owner(),
                                      header.object().object_id(),
                                      header.object().version());
}

// A key-service wrap whose "service" answers with `key`.
v1::WrappedKey ServiceWrap(uint32_t share_index) {
  v1::WrappedKey wrapped;
  wrapped.set_wrapper(v1::WrappedKey::KEY_SERVICE);
  wrapped.set_key_service("residency://service/us-custodian");
  wrapped.set_key_id("user-1-key");
  wrapped.set_key_version(1);
  wrapped.set_share_index(share_index);
  return wrapped;
}

TEST(RecoverDataKeyTest, CustodianHeaderIsOneUnwrap) {
  const crypto::SecretBytes dek = crypto::SecretBytes::CopyFrom(Random(32));
  v1::ObjectHeader header = HeaderFor(v1::CUSTODY_MODE_CUSTODIAN);
  *header.add_wrapped_keys() = ServiceWrap(0);
  int calls = 0;
  ASSERT_OK_AND_ASSIGN(
      RecoveredKeys keys,
      RecoverDataKey(
          header,
          [&](const v1::ObjectHeader& h,
              const v1::WrappedKey& w) -> absl::StatusOr<crypto::SecretBytes> {
            ++calls;
            EXPECT_EQ(h.object().version(), 3u);
            EXPECT_EQ(w.key_id(), "user-1-key");
            return dek.Clone();
          },
          nullptr));
  EXPECT_EQ(calls, 1);
  EXPECT_TRUE(keys.dek == dek);
  EXPECT_THAT(keys.shares, IsEmpty());

  // A second wrap does not fit custodian custody.
  *header.add_wrapped_keys() = ServiceWrap(0);
  EXPECT_THAT(
      RecoverDataKey(
          header,
          [&](const v1::ObjectHeader&, const v1::WrappedKey&)
              -> absl::StatusOr<crypto::SecretBytes> { return dek.Clone(); },
          nullptr)
          .status(),
      StatusIs(absl::StatusCode::kDataLoss));
}

// E2E: the service's share and the device's share, combined as the client
// combines them; without the device key the object's key is out of reach.
TEST(RecoverDataKeyTest, E2eHeaderCombinesTheServiceAndDeviceShares) {
  v1::ObjectHeader header = HeaderFor(v1::CUSTODY_MODE_E2E);
  const crypto::SecretBytes share1 = crypto::SecretBytes::CopyFrom(Random(32));
  const crypto::SecretBytes share2 = crypto::SecretBytes::CopyFrom(Random(32));
  client::DeviceKey device{"device-0123456789abcdef",
                           crypto::SecretBytes::CopyFrom(Random(32))};
  *header.add_wrapped_keys() = ServiceWrap(1);
  v1::WrappedKey* device_wrap = header.add_wrapped_keys();
  device_wrap->set_wrapper(v1::WrappedKey::DEVICE);
  device_wrap->set_key_id(device.key_id);
  device_wrap->set_key_version(1);
  device_wrap->set_share_index(2);
  ASSERT_OK_AND_ASSIGN(std::string wrapped,
                       key_service::WrapDataKey(device.key, device.key_id, 1,
                                                Context(header), share2));
  device_wrap->set_wrapped(wrapped);
  const UnwrapFn unwrap =
      [&](const v1::ObjectHeader&,
          const v1::WrappedKey& w) -> absl::StatusOr<crypto::SecretBytes> {
    EXPECT_EQ(w.share_index(), 1u);
    return share1.Clone();
  };

  ASSERT_OK_AND_ASSIGN(RecoveredKeys keys,
                       RecoverDataKey(header, unwrap, &device));
  ASSERT_OK_AND_ASSIGN(crypto::SecretBytes expected,
                       client::DeriveDataKey(client::CustodyMode::kE2e, share1,
                                             share2, Context(header)));
  EXPECT_TRUE(keys.dek == expected);
  ASSERT_EQ(keys.shares.size(), 2u);
  EXPECT_EQ(keys.shares[0].first, 1u);
  EXPECT_TRUE(keys.shares[0].second == share1);
  EXPECT_TRUE(keys.shares[1].second == share2);

  EXPECT_THAT(RecoverDataKey(header, unwrap, nullptr).status(),
              StatusIs(absl::StatusCode::kFailedPrecondition));
  // The device wrap is bound to its object: moved to another version, it
  // does not open.
  header.mutable_object()->set_version(4);
  EXPECT_THAT(RecoverDataKey(header, unwrap, &device).status(),
              StatusIs(absl::StatusCode::kDataLoss));
}

TEST(OpenObjectTest, OnlyTheObjectsOwnKeyOpensIt) {
  const v1::ObjectHeader header = HeaderFor(v1::CUSTODY_MODE_CUSTODIAN);
  const crypto::SecretBytes dek = crypto::SecretBytes::CopyFrom(Random(32));
  ASSERT_OK_AND_ASSIGN(std::string ciphertext,
                       crypto::ChunkedEncrypt(dek, Context(header), "secret"));
  EXPECT_THAT(OpenObject(dek, header, ciphertext),
              residency::testing::IsOkAndHolds("secret"));
  EXPECT_THAT(
      OpenObject(crypto::SecretBytes::CopyFrom(Random(32)), header, ciphertext)
          .status(),
      StatusIs(absl::StatusCode::kDataLoss));
}

}  // namespace
}  // namespace residency::sim
