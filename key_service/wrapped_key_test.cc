#include "key_service/wrapped_key.h"

#include <cstdint>
#include <string>
#include <utility>

#include "absl/status/status.h"
#include "absl/strings/escaping.h"
#include "absl/strings/str_cat.h"
#include "absl/strings/string_view.h"
#include "crypto/aead.h"
#include "crypto/object_context.h"
#include "crypto/random.h"
#include "crypto/secret_bytes.h"
#include "gmock/gmock.h"
#include "gtest/gtest.h"
#include "tests/status_matchers.h"

namespace residency::key_service {
namespace {

using ::residency::crypto::Aead;
using ::residency::crypto::AeadAlgorithm;
using ::residency::crypto::EncodeObjectContext;
using ::residency::crypto::SecretBytes;
using ::residency::testing::StatusIs;
using ::testing::HasSubstr;
using ::testing::Not;

constexpr absl::StatusCode kInvalidArgument =
    absl::StatusCode::kInvalidArgument;

constexpr absl::string_view kKeyId = "alice-photos";
constexpr uint32_t kKeyVersion = 2;
constexpr absl::string_view kOwner = "alice";
constexpr absl::string_view kObjectId = "photos/2014/001.jpg";
constexpr uint64_t kObjectVersion = 3;

// A secret of `size` bytes counting up from `first`, so two secrets made from
// different `first` values differ in every byte.
SecretBytes Pattern(size_t size, uint8_t first) {
  SecretBytes secret(size);
  for (size_t i = 0; i < size; ++i) {
    secret.mutable_data()[i] = static_cast<uint8_t>(first + i);
  }
  return secret;
}

std::string FlipBit(std::string s, size_t byte, int bit = 0) {
  s[byte] = static_cast<char>(s[byte] ^ (1 << bit));
  return s;
}

std::string Context(absl::string_view owner, absl::string_view object_id,
                    uint64_t version) {
  absl::StatusOr<std::string> context =
      EncodeObjectContext(owner, object_id, version);
  EXPECT_OK(context);
  return context.ok() ? *std::move(context) : std::string();
}

std::string NotAuthenticMessage(absl::string_view key_id, uint32_t version) {
  return absl::StrCat("wrapped key does not authenticate under key '", key_id,
                      "' version ", version,
                      " for this context (tampered, wrong key version or "
                      "wrong object)");
}

class WrappedKeyTest : public ::testing::Test {
 protected:
  void SetUp() override {
    context_ = Context(kOwner, kObjectId, kObjectVersion);
    ASSERT_OK_AND_ASSIGN(
        wrapped_, WrapDataKey(kek_, kKeyId, kKeyVersion, context_, dek_));
  }

  absl::StatusOr<SecretBytes> Unwrap(absl::string_view wrapped) const {
    return UnwrapDataKey(kek_, kKeyId, kKeyVersion, context_, wrapped);
  }

  // The associated data exactly as the header documents it, built here by
  // hand rather than by the code under test.
  std::string DocumentedAssociatedData() const {
    return absl::StrCat("residency/wrapped-dek/v1", std::string(1, '\0'),
                        absl::HexStringToBytes("0000000c"), "alice-photos",
                        absl::HexStringToBytes("00000002"), context_);
  }

  void ExpectDoesNotAuthenticate(const absl::StatusOr<SecretBytes>& result,
                                 absl::string_view key_id = kKeyId,
                                 uint32_t version = kKeyVersion) const {
    EXPECT_THAT(result, StatusIs(kInvalidArgument));
    EXPECT_EQ(std::string(result.status().message()),
              NotAuthenticMessage(key_id, version));
  }

  const SecretBytes kek_ = Pattern(32, 0x10);
  const SecretBytes dek_ = Pattern(32, 0xa0);
  std::string context_;
  std::string wrapped_;
};

TEST_F(WrappedKeyTest, RoundTripReturnsTheDataKey) {
  ASSERT_OK_AND_ASSIGN(SecretBytes unwrapped, Unwrap(wrapped_));
  EXPECT_TRUE(unwrapped == dek_);
}

TEST_F(WrappedKeyTest, RandomKeysRoundTrip) {
  ASSERT_OK_AND_ASSIGN(SecretBytes kek, crypto::RandomSecret(32));
  ASSERT_OK_AND_ASSIGN(SecretBytes dek, crypto::RandomSecret(32));
  ASSERT_OK_AND_ASSIGN(std::string wrapped,
                       WrapDataKey(kek, "k", /*key_version=*/1, context_, dek));
  ASSERT_OK_AND_ASSIGN(
      SecretBytes unwrapped,
      UnwrapDataKey(kek, "k", /*key_version=*/1, context_, wrapped));
  EXPECT_TRUE(unwrapped == dek);
}

TEST_F(WrappedKeyTest, WrappedValueIs60Bytes) {
  EXPECT_EQ(wrapped_.size(), 60u);
  EXPECT_EQ(kWrappedDataKeySize, 60u);
}

TEST_F(WrappedKeyTest, EachWrapHasAFreshNonce) {
  ASSERT_OK_AND_ASSIGN(std::string again,
                       WrapDataKey(kek_, kKeyId, kKeyVersion, context_, dek_));
  EXPECT_NE(again.substr(0, 12), wrapped_.substr(0, 12));
  ASSERT_OK_AND_ASSIGN(SecretBytes unwrapped, Unwrap(again));
  EXPECT_TRUE(unwrapped == dek_);
}

TEST_F(WrappedKeyTest, LayoutIsAes256GcmUnderTheDocumentedAssociatedData) {
  ASSERT_OK_AND_ASSIGN(Aead aead,
                       Aead::Create(AeadAlgorithm::kAes256Gcm, kek_.Clone()));
  ASSERT_OK_AND_ASSIGN(
      SecretBytes opened,
      aead.DecryptToSecret(wrapped_, DocumentedAssociatedData()));
  EXPECT_TRUE(opened == dek_);
  EXPECT_EQ(DocumentedAssociatedData().size(),
            24u + 1 + 4 + 12 + 4 + context_.size());
}

TEST_F(WrappedKeyTest, ValueSealedByHandUnderTheDocumentedLayoutUnwraps) {
  ASSERT_OK_AND_ASSIGN(Aead aead,
                       Aead::Create(AeadAlgorithm::kAes256Gcm, kek_.Clone()));
  ASSERT_OK_AND_ASSIGN(std::string sealed,
                       aead.Encrypt(dek_.view(), DocumentedAssociatedData()));
  ASSERT_OK_AND_ASSIGN(SecretBytes unwrapped, Unwrap(sealed));
  EXPECT_TRUE(unwrapped == dek_);
}

// --- Tampering -------------------------------------------------------------

TEST_F(WrappedKeyTest, FlippedNonceBitDoesNotAuthenticate) {
  for (size_t byte : {size_t{0}, size_t{6}, size_t{11}}) {
    ExpectDoesNotAuthenticate(Unwrap(FlipBit(wrapped_, byte, 3)));
  }
}

TEST_F(WrappedKeyTest, FlippedBodyBitDoesNotAuthenticate) {
  for (size_t byte : {size_t{12}, size_t{27}, size_t{43}}) {
    ExpectDoesNotAuthenticate(Unwrap(FlipBit(wrapped_, byte, 0)));
  }
}

TEST_F(WrappedKeyTest, FlippedTagBitDoesNotAuthenticate) {
  for (size_t byte : {size_t{44}, size_t{52}, size_t{59}}) {
    ExpectDoesNotAuthenticate(Unwrap(FlipBit(wrapped_, byte, 7)));
  }
}

TEST_F(WrappedKeyTest, WrongKeyIdDoesNotAuthenticate) {
  ExpectDoesNotAuthenticate(
      UnwrapDataKey(kek_, "bob-photos", kKeyVersion, context_, wrapped_),
      "bob-photos");
  ExpectDoesNotAuthenticate(
      UnwrapDataKey(kek_, "alice-photo", kKeyVersion, context_, wrapped_),
      "alice-photo");
}

TEST_F(WrappedKeyTest, WrongKeyVersionDoesNotAuthenticate) {
  for (uint32_t version : {1u, 3u, 0x100u | kKeyVersion}) {
    ExpectDoesNotAuthenticate(
        UnwrapDataKey(kek_, kKeyId, version, context_, wrapped_), kKeyId,
        version);
  }
}

TEST_F(WrappedKeyTest, OtherObjectDoesNotAuthenticate) {
  ExpectDoesNotAuthenticate(UnwrapDataKey(
      kek_, kKeyId, kKeyVersion,
      Context(kOwner, "photos/2014/002.jpg", kObjectVersion), wrapped_));
  ExpectDoesNotAuthenticate(
      UnwrapDataKey(kek_, kKeyId, kKeyVersion,
                    Context("bob", kObjectId, kObjectVersion), wrapped_));
}

TEST_F(WrappedKeyTest, OtherObjectVersionDoesNotAuthenticate) {
  for (uint64_t version : {uint64_t{2}, uint64_t{4}}) {
    ExpectDoesNotAuthenticate(UnwrapDataKey(kek_, kKeyId, kKeyVersion,
                                            Context(kOwner, kObjectId, version),
                                            wrapped_));
  }
}

TEST_F(WrappedKeyTest, WrongKekDoesNotAuthenticate) {
  ExpectDoesNotAuthenticate(UnwrapDataKey(Pattern(32, 0x11), kKeyId,
                                          kKeyVersion, context_, wrapped_));
}

TEST_F(WrappedKeyTest, TruncatedWrappedKeyIsRejectedBySize) {
  for (size_t size : {size_t{0}, size_t{28}, size_t{44}, size_t{59}}) {
    auto result = Unwrap(wrapped_.substr(0, size));
    EXPECT_THAT(result, StatusIs(kInvalidArgument));
    EXPECT_EQ(std::string(result.status().message()),
              absl::StrCat("wrapped key is ", size, " bytes, expected 60"));
  }
}

TEST_F(WrappedKeyTest, ExtendedWrappedKeyIsRejectedBySize) {
  auto result = Unwrap(wrapped_ + '\0');
  EXPECT_THAT(result, StatusIs(kInvalidArgument));
  EXPECT_EQ(std::string(result.status().message()),
            "wrapped key is 61 bytes, expected 60");
}

TEST_F(WrappedKeyTest, AuthenticSealOfA33ByteKeyIsRejectedBySize) {
  // Without the size check this would authenticate and yield a 33-byte
  // "DEK".
  ASSERT_OK_AND_ASSIGN(Aead aead,
                       Aead::Create(AeadAlgorithm::kAes256Gcm, kek_.Clone()));
  ASSERT_OK_AND_ASSIGN(
      std::string sealed,
      aead.Encrypt(std::string(33, 'd'), DocumentedAssociatedData()));
  auto result = Unwrap(sealed);
  EXPECT_THAT(result, StatusIs(kInvalidArgument));
  EXPECT_EQ(std::string(result.status().message()),
            "wrapped key is 61 bytes, expected 60");
}

// --- Bad arguments ---------------------------------------------------------

TEST_F(WrappedKeyTest, KekOfWrongSizeIsRejected) {
  for (size_t size : {size_t{0}, size_t{16}, size_t{31}, size_t{33}}) {
    const SecretBytes kek = Pattern(size, 0x10);
    const std::string expected =
        absl::StrCat("key-encryption key is ", size, " bytes, expected 32");
    auto wrapped = WrapDataKey(kek, kKeyId, kKeyVersion, context_, dek_);
    EXPECT_THAT(wrapped, StatusIs(kInvalidArgument));
    EXPECT_EQ(std::string(wrapped.status().message()), expected);
    auto unwrapped =
        UnwrapDataKey(kek, kKeyId, kKeyVersion, context_, wrapped_);
    EXPECT_THAT(unwrapped, StatusIs(kInvalidArgument));
    EXPECT_EQ(std::string(unwrapped.status().message()), expected);
  }
}

TEST_F(WrappedKeyTest, DataKeyOfWrongSizeIsRejected) {
  // A 16- or 31-byte key would otherwise wrap fine, into a shorter value.
  for (size_t size : {size_t{0}, size_t{16}, size_t{31}, size_t{33}}) {
    auto wrapped =
        WrapDataKey(kek_, kKeyId, kKeyVersion, context_, Pattern(size, 0xa0));
    EXPECT_THAT(wrapped, StatusIs(kInvalidArgument));
    EXPECT_EQ(std::string(wrapped.status().message()),
              absl::StrCat("data key is ", size, " bytes, expected 32"));
  }
}

TEST_F(WrappedKeyTest, ErrorsNeverContainKeyBytes) {
  // Printable key bytes, so that a message quoting them would be caught.
  SecretBytes kek(31);
  SecretBytes dek(32);
  for (size_t i = 0; i < 31; ++i) kek.mutable_data()[i] = 'K';
  for (size_t i = 0; i < 32; ++i) dek.mutable_data()[i] = 'D';
  const SecretBytes good_kek = SecretBytes::CopyFrom(std::string(32, 'K'));
  const absl::Status statuses[] = {
      WrapDataKey(kek, kKeyId, kKeyVersion, context_, dek).status(),
      WrapDataKey(good_kek, kKeyId, kKeyVersion, context_, kek).status(),
      UnwrapDataKey(kek, kKeyId, kKeyVersion, context_, wrapped_).status(),
      UnwrapDataKey(good_kek, kKeyId, kKeyVersion, context_, wrapped_).status(),
  };
  for (const absl::Status& status : statuses) {
    ASSERT_FALSE(status.ok());
    EXPECT_THAT(std::string(status.message()), Not(HasSubstr("KKKK")));
    EXPECT_THAT(std::string(status.message()), Not(HasSubstr("4b4b4b4b")));
    EXPECT_THAT(std::string(status.message()), Not(HasSubstr("DDDD")));
  }
}

TEST_F(WrappedKeyTest, EmptyOrOverlongKeyIdIsRejected) {
  for (const std::string& key_id : {std::string(), std::string(129, 'k')}) {
    const std::string expected =
        absl::StrCat("key id is ", key_id.size(),
                     " bytes, must be 1-128 bytes of printable ASCII");
    auto wrapped = WrapDataKey(kek_, key_id, kKeyVersion, context_, dek_);
    EXPECT_THAT(wrapped, StatusIs(kInvalidArgument));
    EXPECT_EQ(std::string(wrapped.status().message()), expected);
    auto unwrapped =
        UnwrapDataKey(kek_, key_id, kKeyVersion, context_, wrapped_);
    EXPECT_THAT(unwrapped, StatusIs(kInvalidArgument));
    EXPECT_EQ(std::string(unwrapped.status().message()), expected);
  }
}

TEST_F(WrappedKeyTest, KeyIdOf128PrintableBytesIsAccepted) {
  const std::string key_id = std::string(127, '~') + " ";
  ASSERT_OK_AND_ASSIGN(std::string wrapped,
                       WrapDataKey(kek_, key_id, kKeyVersion, context_, dek_));
  ASSERT_OK_AND_ASSIGN(
      SecretBytes unwrapped,
      UnwrapDataKey(kek_, key_id, kKeyVersion, context_, wrapped));
  EXPECT_TRUE(unwrapped == dek_);
}

TEST_F(WrappedKeyTest, KeyIdWithNonPrintableByteIsRejected) {
  for (char c : {'\0', '\n', '\x1f', '\x7f', '\x80', '\xff'}) {
    const std::string key_id = std::string("key") + c;
    const std::string expected =
        absl::StrCat("key id (4 bytes) has a non-printable byte 0x",
                     absl::Hex(static_cast<unsigned char>(c), absl::kZeroPad2),
                     " at offset 3");
    auto wrapped = WrapDataKey(kek_, key_id, kKeyVersion, context_, dek_);
    EXPECT_THAT(wrapped, StatusIs(kInvalidArgument));
    EXPECT_EQ(std::string(wrapped.status().message()), expected);
    auto unwrapped =
        UnwrapDataKey(kek_, key_id, kKeyVersion, context_, wrapped_);
    EXPECT_THAT(unwrapped, StatusIs(kInvalidArgument));
    EXPECT_EQ(std::string(unwrapped.status().message()), expected);
  }
}

TEST_F(WrappedKeyTest, KeyVersionZeroIsRejected) {
  const std::string expected =
      "key 'alice-photos': key version is 0, must be 1 or more";
  auto wrapped = WrapDataKey(kek_, kKeyId, /*key_version=*/0, context_, dek_);
  EXPECT_THAT(wrapped, StatusIs(kInvalidArgument));
  EXPECT_EQ(std::string(wrapped.status().message()), expected);
  auto unwrapped =
      UnwrapDataKey(kek_, kKeyId, /*key_version=*/0, context_, wrapped_);
  EXPECT_THAT(unwrapped, StatusIs(kInvalidArgument));
  EXPECT_EQ(std::string(unwrapped.status().message()), expected);
}

TEST_F(WrappedKeyTest, EmptyOrOverlongObjectContextIsRejected) {
  for (const std::string& context :
       {std::string(), std::string(crypto::kMaxObjectContextSize + 1, 'c')}) {
    const std::string expected = absl::StrCat(
        "object context is ", context.size(), " bytes, must be 1-1168");
    auto wrapped = WrapDataKey(kek_, kKeyId, kKeyVersion, context, dek_);
    EXPECT_THAT(wrapped, StatusIs(kInvalidArgument));
    EXPECT_EQ(std::string(wrapped.status().message()), expected);
    auto unwrapped =
        UnwrapDataKey(kek_, kKeyId, kKeyVersion, context, wrapped_);
    EXPECT_THAT(unwrapped, StatusIs(kInvalidArgument));
    EXPECT_EQ(std::string(unwrapped.status().message()), expected);
  }
}

}  // namespace
}  // namespace residency::key_service
