#include "crypto/object_context.h"

#include <cstdint>
#include <string>

#include "absl/strings/escaping.h"
#include "absl/strings/str_cat.h"
#include "absl/strings/string_view.h"
#include "gmock/gmock.h"
#include "gtest/gtest.h"
#include "tests/status_matchers.h"

namespace residency::crypto {
namespace {

using ::residency::testing::StatusIs;
using ::testing::HasSubstr;

constexpr absl::StatusCode kInvalidArgument =
    absl::StatusCode::kInvalidArgument;

std::string Hex(absl::string_view bytes) {
  return absl::BytesToHexString(bytes);
}

TEST(ObjectContextTest, LayoutMatchesTheDocumentedExample) {
  ASSERT_OK_AND_ASSIGN(std::string encoded,
                       EncodeObjectContext("alice", "a/b", /*version=*/3));
  EXPECT_EQ(Hex(encoded),
            "00000005"
            "616c696365"
            "00000003"
            "612f62"
            "0000000000000003");
}

TEST(ObjectContextTest, LengthsAndVersionAreBigEndianAtTheirOffsets) {
  const std::string object_id(0x203, 'i');
  ASSERT_OK_AND_ASSIGN(std::string encoded,
                       EncodeObjectContext("owner-of-0x0b", object_id,
                                           /*version=*/0x0102030405060708u));
  ASSERT_EQ(encoded.size(), 16u + 13u + 0x203u);
  EXPECT_EQ(Hex(encoded.substr(0, 4)), "0000000d");
  EXPECT_EQ(encoded.substr(4, 13), "owner-of-0x0b");
  EXPECT_EQ(Hex(encoded.substr(17, 4)), "00000203");
  EXPECT_EQ(encoded.substr(21, 0x203), object_id);
  EXPECT_EQ(Hex(encoded.substr(21 + 0x203)), "0102030405060708");
}

TEST(ObjectContextTest, AcceptsTheLimits) {
  const std::string owner(kMaxObjectOwnerSize, 'o');
  const std::string object_id(kMaxObjectIdSize, 'i');
  ASSERT_OK_AND_ASSIGN(
      std::string encoded,
      EncodeObjectContext(owner, object_id, /*version=*/UINT64_MAX));
  EXPECT_EQ(encoded.size(), kMaxObjectContextSize);
  EXPECT_EQ(Hex(encoded.substr(encoded.size() - 8)), "ffffffffffffffff");

  ASSERT_OK_AND_ASSIGN(std::string smallest,
                       EncodeObjectContext("o", "i", /*version=*/1));
  EXPECT_EQ(Hex(smallest), "000000016f00000001690000000000000001");
}

TEST(ObjectContextTest, MovingBytesBetweenOwnerAndObjectIdChangesTheEncoding) {
  ASSERT_OK_AND_ASSIGN(std::string ab_c, EncodeObjectContext("ab", "c", 1));
  ASSERT_OK_AND_ASSIGN(std::string a_bc, EncodeObjectContext("a", "bc", 1));
  EXPECT_NE(ab_c, a_bc);
  // Plain concatenation would make both "abc" followed by the version.
  EXPECT_EQ(Hex(ab_c), "00000002616200000001630000000000000001");
  EXPECT_EQ(Hex(a_bc), "00000001610000000262630000000000000001");
}

TEST(ObjectContextTest, BytesThatLookLikeALengthPrefixDoNotCollide) {
  // An owner that embeds what would follow a shorter owner's length field.
  ASSERT_OK_AND_ASSIGN(std::string a, EncodeObjectContext("o", "x", 1));
  ASSERT_OK_AND_ASSIGN(
      std::string b,
      EncodeObjectContext(std::string("o\x00\x00\x00\x01x", 6), "x", 1));
  EXPECT_NE(a, b);
  ASSERT_OK_AND_ASSIGN(std::string c, EncodeObjectContext("o", "x/y", 1));
  EXPECT_NE(a, c);
  EXPECT_NE(c.substr(0, a.size()), a) << "one encoding is a prefix of another";
}

TEST(ObjectContextTest, OtherVersionChangesTheEncoding) {
  ASSERT_OK_AND_ASSIGN(std::string v1, EncodeObjectContext("u", "o", 1));
  ASSERT_OK_AND_ASSIGN(std::string v2, EncodeObjectContext("u", "o", 2));
  ASSERT_OK_AND_ASSIGN(std::string v256, EncodeObjectContext("u", "o", 256));
  EXPECT_NE(v1, v2);
  EXPECT_NE(v1, v256);
  EXPECT_NE(v2, v256);
}

TEST(ObjectContextTest, EmptyOwnerIsRejected) {
  auto result = EncodeObjectContext("", "o", 1);
  EXPECT_THAT(result, StatusIs(kInvalidArgument));
  EXPECT_THAT(std::string(result.status().message()),
              HasSubstr("owner is 0 bytes, must be 1-128"));
}

TEST(ObjectContextTest, OwnerLongerThan128BytesIsRejected) {
  auto result = EncodeObjectContext(std::string(129, 'o'), "o", 1);
  EXPECT_THAT(result, StatusIs(kInvalidArgument));
  EXPECT_THAT(std::string(result.status().message()),
              HasSubstr("owner is 129 bytes, must be 1-128"));
}

TEST(ObjectContextTest, EmptyObjectIdIsRejected) {
  auto result = EncodeObjectContext("u", "", 1);
  EXPECT_THAT(result, StatusIs(kInvalidArgument));
  EXPECT_THAT(std::string(result.status().message()),
              HasSubstr("object_id is 0 bytes, must be 1-1024"));
}

TEST(ObjectContextTest, ObjectIdLongerThan1024BytesIsRejected) {
  auto result = EncodeObjectContext("u", std::string(1025, 'i'), 1);
  EXPECT_THAT(result, StatusIs(kInvalidArgument));
  EXPECT_THAT(std::string(result.status().message()),
              HasSubstr("object_id is 1025 bytes, must be 1-1024"));
}

TEST(ObjectContextTest, ObjectIdWithNulIsRejected) {
  for (size_t at : {size_t{0}, size_t{2}, size_t{4}}) {
    std::string object_id = "abcde";
    object_id[at] = '\0';
    auto result = EncodeObjectContext("u", object_id, 1);
    EXPECT_THAT(result, StatusIs(kInvalidArgument)) << at;
    EXPECT_THAT(std::string(result.status().message()),
                HasSubstr(absl::StrCat("object_id (5 bytes) contains a NUL "
                                       "byte at offset ",
                                       at)));
  }
}

TEST(ObjectContextTest, NulInOwnerIsOnlyLengthChecked) {
  // ObjectRef forbids NUL only in object_id; the length prefix keeps an owner
  // with one unambiguous anyway.
  EXPECT_OK(EncodeObjectContext(std::string("a\0b", 3), "o", 1));
}

TEST(ObjectContextTest, VersionZeroIsRejected) {
  auto result = EncodeObjectContext("u", "o", 0);
  EXPECT_THAT(result, StatusIs(kInvalidArgument));
  EXPECT_THAT(std::string(result.status().message()),
              HasSubstr("version is 0"));
}

}  // namespace
}  // namespace residency::crypto
