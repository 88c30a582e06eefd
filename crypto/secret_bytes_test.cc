#include "crypto/secret_bytes.h"

#include <ostream>
#include <string>
#include <string_view>
#include <type_traits>
#include <utility>

#include "absl/strings/string_view.h"
#include "gtest/gtest.h"

namespace residency::crypto {
namespace {

// The contract is partly a compile-time one: no implicit copies, no way to
// print or stringify the bytes.
static_assert(!std::is_copy_constructible_v<SecretBytes>);
static_assert(!std::is_copy_assignable_v<SecretBytes>);
static_assert(std::is_nothrow_move_constructible_v<SecretBytes>);
static_assert(std::is_nothrow_move_assignable_v<SecretBytes>);
static_assert(!std::is_convertible_v<SecretBytes, std::string>);
static_assert(!std::is_convertible_v<SecretBytes, std::string_view>);
template <typename T>
concept Streamable = requires(std::ostream& os, const T& t) {
  os << t;
};
static_assert(!Streamable<SecretBytes>);

// Secrets are compared with EXPECT_TRUE(a == b) rather than EXPECT_EQ so that
// a failing test never tries to print one.

TEST(SecretBytesTest, DefaultConstructedIsEmpty) {
  SecretBytes secret;
  EXPECT_TRUE(secret.empty());
  EXPECT_EQ(secret.size(), 0u);
  EXPECT_TRUE(secret.view().empty());
}

TEST(SecretBytesTest, SizedConstructorGivesZeroedBytes) {
  SecretBytes secret(/*size=*/33);
  ASSERT_EQ(secret.size(), 33u);
  EXPECT_FALSE(secret.empty());
  EXPECT_EQ(secret.view(), std::string(33, '\0'));
}

TEST(SecretBytesTest, MutableDataWritesAreVisibleThroughView) {
  SecretBytes secret(/*size=*/4);
  secret.mutable_data()[0] = 'k';
  secret.mutable_data()[3] = 'y';
  EXPECT_EQ(secret.view(), absl::string_view("k\0\0y", 4));
  EXPECT_EQ(secret.data(), secret.mutable_data());
}

TEST(SecretBytesTest, CopyFromCopiesBytesIncludingNul) {
  const std::string source("key\0with\0nuls", 13);
  SecretBytes secret = SecretBytes::CopyFrom(source);
  EXPECT_EQ(secret.size(), source.size());
  EXPECT_EQ(secret.view(), source);
  // A copy, not a view of the caller's buffer.
  EXPECT_NE(static_cast<const void*>(secret.data()),
            static_cast<const void*>(source.data()));
}

TEST(SecretBytesTest, CopyFromIsIndependentOfSource) {
  std::string source = "0123456789abcdef";
  SecretBytes secret = SecretBytes::CopyFrom(source);
  source[0] = 'X';
  EXPECT_EQ(secret.view(), "0123456789abcdef");
}

TEST(SecretBytesTest, CopyFromEmptyIsEmpty) {
  SecretBytes secret = SecretBytes::CopyFrom("");
  EXPECT_TRUE(secret.empty());
  EXPECT_TRUE(secret == SecretBytes());
}

TEST(SecretBytesTest, MoveConstructionTransfersBytesAndEmptiesSource) {
  SecretBytes source = SecretBytes::CopyFrom("top secret key material");
  const uint8_t* original_buffer = source.data();
  SecretBytes target(std::move(source));
  EXPECT_EQ(target.view(), "top secret key material");
  // The buffer itself moved: no second copy of the key was made.
  EXPECT_EQ(target.data(), original_buffer);
  EXPECT_TRUE(source.empty());  // NOLINT(bugprone-use-after-move)
  EXPECT_EQ(source.size(), 0u);
  EXPECT_TRUE(source.view().empty());
}

TEST(SecretBytesTest, MoveAssignmentReplacesTargetAndEmptiesSource) {
  SecretBytes source = SecretBytes::CopyFrom("new key");
  SecretBytes target = SecretBytes::CopyFrom("old key that is longer");
  target = std::move(source);
  EXPECT_EQ(target.view(), "new key");
  EXPECT_EQ(target.size(), 7u);
  EXPECT_TRUE(source.empty());  // NOLINT(bugprone-use-after-move)
  EXPECT_EQ(source.size(), 0u);
}

TEST(SecretBytesTest, MovedFromSecretCanBeReassigned) {
  SecretBytes a = SecretBytes::CopyFrom("first");
  SecretBytes b(std::move(a));
  a = SecretBytes::CopyFrom("second");  // NOLINT(bugprone-use-after-move)
  EXPECT_EQ(a.view(), "second");
  EXPECT_EQ(b.view(), "first");
}

TEST(SecretBytesTest, CloneIsEqualButIndependent) {
  const SecretBytes original = SecretBytes::CopyFrom("0123456789abcdef");
  SecretBytes clone = original.Clone();
  EXPECT_TRUE(clone == original);
  EXPECT_EQ(clone.view(), original.view());
  EXPECT_NE(clone.data(), original.data());
  clone.mutable_data()[0] = 'X';
  EXPECT_EQ(original.view(), "0123456789abcdef");
  EXPECT_FALSE(clone == original);
}

TEST(SecretBytesTest, CloneOfEmptyIsEmpty) {
  const SecretBytes original;
  SecretBytes clone = original.Clone();
  EXPECT_TRUE(clone.empty());
  EXPECT_TRUE(clone == original);
}

TEST(SecretBytesTest, EqualContentsCompareEqual) {
  const std::string bytes("\x00\x01\xfe\xff secret", 10);
  EXPECT_TRUE(SecretBytes::CopyFrom(bytes) == SecretBytes::CopyFrom(bytes));
  EXPECT_FALSE(SecretBytes::CopyFrom(bytes) != SecretBytes::CopyFrom(bytes));
  EXPECT_TRUE(SecretBytes() == SecretBytes());
  EXPECT_TRUE(SecretBytes(/*size=*/5) ==
              SecretBytes::CopyFrom(std::string(5, '\0')));
}

TEST(SecretBytesTest, DifferingContentsCompareUnequal) {
  const std::string base(32, 'k');
  for (size_t i : {size_t{0}, size_t{15}, size_t{31}}) {
    std::string other = base;
    other[i] ^= 0x01;  // a single bit, at the start, middle and end
    EXPECT_FALSE(SecretBytes::CopyFrom(base) == SecretBytes::CopyFrom(other))
        << "differing byte at " << i;
    EXPECT_TRUE(SecretBytes::CopyFrom(base) != SecretBytes::CopyFrom(other));
  }
}

TEST(SecretBytesTest, DifferentSizesCompareUnequal) {
  // A prefix is not equal, even though the common bytes match.
  const SecretBytes longer = SecretBytes::CopyFrom("abcdef");
  const SecretBytes shorter = SecretBytes::CopyFrom("abcde");
  EXPECT_FALSE(longer == shorter);
  EXPECT_FALSE(shorter == longer);
  EXPECT_FALSE(SecretBytes() == SecretBytes::CopyFrom("a"));
  EXPECT_FALSE(SecretBytes::CopyFrom(std::string(1, '\0')) == SecretBytes());
}

}  // namespace
}  // namespace residency::crypto
