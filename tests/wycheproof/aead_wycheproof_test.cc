// Wycheproof AES-GCM and ChaCha20-Poly1305 vectors against crypto::Aead (the
// public API: nonce || ciphertext || tag) and internal::AeadCipher (explicit
// nonces, which is what lets a test reproduce a vector's ciphertext).

#include <cstddef>
#include <cstdint>
#include <string>

#include "absl/strings/str_cat.h"
#include "absl/strings/string_view.h"
#include "absl/types/span.h"
#include "crypto/aead.h"
#include "crypto/internal/aead_cipher.h"
#include "crypto/secret_bytes.h"
#include "gtest/gtest.h"
#include "tests/status_matchers.h"
#include "tests/wycheproof/wycheproof_util.h"

namespace residency::wycheproof {
namespace {

using ::residency::crypto::Aead;
using ::residency::crypto::AeadAlgorithm;
using ::residency::crypto::SecretBytes;
using ::residency::crypto::internal::AeadCipher;
using ::residency::testing::StatusIs;

constexpr absl::StatusCode kDataLoss = absl::StatusCode::kDataLoss;
constexpr absl::StatusCode kInvalidArgument =
    absl::StatusCode::kInvalidArgument;

absl::Span<const uint8_t> AsBytes(absl::string_view s) {
  return {reinterpret_cast<const uint8_t*>(s.data()), s.size()};
}
absl::Span<uint8_t> AsMutableBytes(std::string& s) {
  return {reinterpret_cast<uint8_t*>(s.data()), s.size()};
}

struct AeadVector {
  explicit AeadVector(const JsonObject& test)
      : tc_id(test.tc_id()),
        valid(test.IsValid()),
        key(test.Bytes("key")),
        iv(test.Bytes("iv")),
        aad(test.Bytes("aad")),
        msg(test.Bytes("msg")),
        ct(test.Bytes("ct")),
        tag(test.Bytes("tag")) {}

  int64_t tc_id;
  bool valid;
  std::string key, iv, aad, msg, ct, tag;
};

std::string Trace(const AeadVector& v, const JsonObject& group) {
  return absl::StrCat("tcId ", v.tc_id, " (keySize ", group.Int("keySize"),
                      ", ivSize ", group.Int("ivSize"), ")");
}

// A vector with a 96-bit IV and 128-bit tag, through both APIs. `aead` is
// null where the public Aead does not support the key size (AES-128).
void CheckVector(const AeadVector& v, AeadCipher::Kind kind, const Aead* aead) {
  // internal::AeadCipher: Seal reproduces ct || tag; Open authenticates.
  absl::StatusOr<AeadCipher> cipher = AeadCipher::Create(kind, v.key);
  ASSERT_OK(cipher);
  std::string sealed(v.msg.size() + AeadCipher::kTagSize, '\0');
  ASSERT_OK(cipher->Seal(AsBytes(v.iv), v.msg, v.aad, AsMutableBytes(sealed)));
  std::string opened(v.ct.size(), '\0');
  const absl::Status open_status =
      cipher->Open(AsBytes(v.iv), v.ct + v.tag, v.aad, AsMutableBytes(opened));
  if (v.valid) {
    EXPECT_EQ(HexEncode(sealed), HexEncode(v.ct + v.tag));
    EXPECT_OK(open_status);
    EXPECT_EQ(HexEncode(opened), HexEncode(v.msg));
  } else {
    // The invalid vectors here carry a modified tag over a correct
    // ciphertext: sealing gives the same ciphertext and another tag.
    EXPECT_EQ(HexEncode(sealed.substr(0, v.ct.size())), HexEncode(v.ct));
    EXPECT_NE(HexEncode(sealed.substr(v.ct.size())), HexEncode(v.tag));
    EXPECT_THAT(open_status, StatusIs(kDataLoss));
    EXPECT_EQ(opened, std::string(v.ct.size(), '\0')) << "not wiped";
  }

  if (aead == nullptr) return;
  absl::StatusOr<std::string> decrypted =
      aead->Decrypt(v.iv + v.ct + v.tag, v.aad);
  if (v.valid) {
    ASSERT_OK(decrypted);
    EXPECT_EQ(HexEncode(*decrypted), HexEncode(v.msg));
  } else {
    EXPECT_THAT(decrypted, StatusIs(kDataLoss));
  }
}

// A vector whose IV is not 96 bits: the explicit-nonce API refuses it and
// the public API cannot produce its message.
void CheckOtherIvSize(const AeadVector& v, AeadCipher::Kind kind,
                      const Aead* aead) {
  absl::StatusOr<AeadCipher> cipher = AeadCipher::Create(kind, v.key);
  ASSERT_OK(cipher);
  std::string sealed(v.msg.size() + AeadCipher::kTagSize, '\0');
  EXPECT_THAT(cipher->Seal(AsBytes(v.iv), v.msg, v.aad, AsMutableBytes(sealed)),
              StatusIs(kInvalidArgument));
  // Some InvalidNonceSize vectors carry no tag; give Open a full-size one so
  // that the nonce is the only thing wrong.
  const std::string ct_and_tag =
      v.ct + (v.tag.size() == 16 ? v.tag : std::string(16, '\0'));
  std::string opened(v.ct.size(), '\0');
  EXPECT_THAT(
      cipher->Open(AsBytes(v.iv), ct_and_tag, v.aad, AsMutableBytes(opened)),
      StatusIs(kInvalidArgument));
  if (aead != nullptr) {
    // Read as nonce || ciphertext || tag, the bytes are a different message
    // that does not authenticate.
    EXPECT_FALSE(aead->Decrypt(v.iv + v.ct + v.tag, v.aad).ok());
  }
}

absl::StatusOr<Aead> AeadFor(AeadAlgorithm algorithm, const std::string& key) {
  return Aead::Create(algorithm, SecretBytes::CopyFrom(key));
}

TEST(AesGcmWycheproofTest, VectorsMatch) {
  ASSERT_OK_AND_ASSIGN(TestFile file, TestFile::Load("aes_gcm_test.json"));
  ASSERT_EQ(file.algorithm(), "AES-GCM");
  ASSERT_EQ(file.number_of_tests(), 316);
  ASSERT_EQ(file.test_count(), 316u);

  int aes256_valid = 0, aes256_invalid = 0;  // 96-bit IV, via both APIs
  int aes128_valid = 0, aes128_invalid = 0;  // 96-bit IV, AeadCipher only
  int other_iv = 0;                          // 128/256-bit keys, other IV sizes
  int rejected_by_aead = 0;  // 128/192-bit keys refused by Aead::Create
  int aes192_rejected = 0;   // 192-bit keys refused by AeadCipher too
  for (const TestGroup& group : file.groups()) {
    ASSERT_EQ(group.params.String("type"), "AeadTest");
    const int64_t key_size = group.params.Int("keySize");
    const int64_t iv_size = group.params.Int("ivSize");
    ASSERT_EQ(group.params.Int("tagSize"), 128);
    for (const JsonObject& test : group.tests) {
      const AeadVector v(test);
      SCOPED_TRACE(Trace(v, group.params));
      ASSERT_EQ(v.key.size() * 8, static_cast<size_t>(key_size));
      ASSERT_EQ(v.iv.size() * 8, static_cast<size_t>(iv_size));
      ASSERT_EQ(v.tag.size(), 16u);

      if (key_size != 256) {
        EXPECT_THAT(AeadFor(AeadAlgorithm::kAes256Gcm, v.key),
                    StatusIs(kInvalidArgument));
        ++rejected_by_aead;
      }
      if (key_size == 192) {
        EXPECT_THAT(AeadCipher::Create(AeadCipher::Kind::kAesGcm, v.key),
                    StatusIs(kInvalidArgument));
        ++aes192_rejected;
        continue;
      }

      // The public Aead only for 256-bit keys (checked as refused above).
      absl::StatusOr<Aead> aead = AeadFor(AeadAlgorithm::kAes256Gcm, v.key);
      const Aead* public_aead = nullptr;
      if (key_size == 256) {
        ASSERT_OK(aead);
        public_aead = &*aead;
      }
      if (iv_size != 96) {
        CheckOtherIvSize(v, AeadCipher::Kind::kAesGcm, public_aead);
        ++other_iv;
        continue;
      }
      CheckVector(v, AeadCipher::Kind::kAesGcm, public_aead);
      if (key_size == 256) {
        ++(v.valid ? aes256_valid : aes256_invalid);
      } else {
        ++(v.valid ? aes128_valid : aes128_invalid);
      }
    }
  }
  // Totals from the file: a parsing slip cannot make the test vacuous.
  EXPECT_EQ(aes256_valid, 39);
  EXPECT_EQ(aes256_invalid, 27);
  EXPECT_EQ(aes128_valid, 40);
  EXPECT_EQ(aes128_invalid, 27);
  EXPECT_EQ(other_iv, 39 + 41);
  EXPECT_EQ(rejected_by_aead, 108 + 103);
  EXPECT_EQ(aes192_rejected, 103);
  EXPECT_EQ(aes256_valid + aes256_invalid + aes128_valid + aes128_invalid +
                other_iv + aes192_rejected,
            316);
}

TEST(ChaCha20Poly1305WycheproofTest, VectorsMatch) {
  ASSERT_OK_AND_ASSIGN(TestFile file,
                       TestFile::Load("chacha20_poly1305_test.json"));
  ASSERT_EQ(file.algorithm(), "CHACHA20-POLY1305");
  ASSERT_EQ(file.number_of_tests(), 325);
  ASSERT_EQ(file.test_count(), 325u);

  int valid = 0, invalid = 0, invalid_nonce_size = 0;
  for (const TestGroup& group : file.groups()) {
    ASSERT_EQ(group.params.String("type"), "AeadTest");
    ASSERT_EQ(group.params.Int("keySize"), 256);
    ASSERT_EQ(group.params.Int("tagSize"), 128);
    const int64_t iv_size = group.params.Int("ivSize");
    for (const JsonObject& test : group.tests) {
      const AeadVector v(test);
      SCOPED_TRACE(Trace(v, group.params));
      ASSERT_EQ(v.iv.size() * 8, static_cast<size_t>(iv_size));
      ASSERT_OK_AND_ASSIGN(Aead aead,
                           AeadFor(AeadAlgorithm::kChaCha20Poly1305, v.key));
      if (iv_size != 96) {
        EXPECT_TRUE(test.HasFlag("InvalidNonceSize"));
        EXPECT_FALSE(v.valid);
        CheckOtherIvSize(v, AeadCipher::Kind::kChaCha20Poly1305, &aead);
        ++invalid_nonce_size;
        continue;
      }
      CheckVector(v, AeadCipher::Kind::kChaCha20Poly1305, &aead);
      ++(v.valid ? valid : invalid);
    }
  }
  EXPECT_EQ(valid, 256);
  EXPECT_EQ(invalid, 60);
  EXPECT_EQ(invalid_nonce_size, 9);
}

}  // namespace
}  // namespace residency::wycheproof
