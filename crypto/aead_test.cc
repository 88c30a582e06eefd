#include "crypto/aead.h"

#include <cstddef>
#include <cstdint>
#include <optional>
#include <ostream>
#include <string>
#include <tuple>
#include <utility>
#include <vector>

#include "absl/strings/escaping.h"
#include "absl/strings/str_cat.h"
#include "absl/strings/string_view.h"
#include "absl/types/span.h"
#include "crypto/internal/aead_cipher.h"
#include "crypto/random.h"
#include "gtest/gtest.h"
#include "tests/status_matchers.h"

namespace residency::crypto {
namespace {

using ::residency::crypto::internal::AeadCipher;
using ::residency::testing::StatusIs;
using ::testing::HasSubstr;

constexpr absl::StatusCode kDataLoss = absl::StatusCode::kDataLoss;
constexpr absl::StatusCode kInvalidArgument =
    absl::StatusCode::kInvalidArgument;

std::string Unhex(absl::string_view hex) { return absl::HexStringToBytes(hex); }

absl::Span<const uint8_t> Bytes(absl::string_view s) {
  return {reinterpret_cast<const uint8_t*>(s.data()), s.size()};
}
absl::Span<uint8_t> MutableBytes(std::string& s) {
  return {reinterpret_cast<uint8_t*>(s.data()), s.size()};
}

// Deterministic test plaintext that differs from byte to byte.
std::string Plaintext(size_t size) {
  std::string out(size, '\0');
  uint32_t x = 0x12345678u ^ static_cast<uint32_t>(size);
  for (char& c : out) {
    x = x * 1664525u + 1013904223u;
    c = static_cast<char>(x >> 24);
  }
  return out;
}

std::string FlipBit(std::string s, size_t byte, int bit = 0) {
  s[byte] = static_cast<char>(s[byte] ^ (1 << bit));
  return s;
}

std::string AlgorithmParamName(AeadAlgorithm algorithm) {
  return algorithm == AeadAlgorithm::kAes256Gcm ? "Aes256Gcm"
                                                : "ChaCha20Poly1305";
}

AeadCipher::Kind KindOf(AeadAlgorithm algorithm) {
  return algorithm == AeadAlgorithm::kAes256Gcm
             ? AeadCipher::Kind::kAesGcm
             : AeadCipher::Kind::kChaCha20Poly1305;
}

// Known answers: McGrew & Viega, "The Galois/Counter Mode of Operation",
// test cases 4 (AES-128) and 16 (AES-256); RFC 8439 section 2.8.2.
struct KnownAnswer {
  std::string key, nonce, aad, plaintext, ciphertext_and_tag;
};

const std::string kGcmPlaintext = Unhex(
    "d9313225f88406e5a55909c5aff5269a86a7a9531534f7da2e4c303d8a318a721c3c0c95"
    "956809532fcf0e2449a6b525b16aedf5aa0de657ba637b39");

KnownAnswer Aes256GcmKnownAnswer() {
  return {Unhex("feffe9928665731c6d6a8f9467308308feffe9928665731c6d6a8f94673083"
                "08"),
          Unhex("cafebabefacedbaddecaf888"),
          Unhex("feedfacedeadbeeffeedfacedeadbeefabaddad2"), kGcmPlaintext,
          Unhex("522dc1f099567d07f47f37a32a84427d643a8cdcbfe5c0c97598a2bd2555d1"
                "aa8cb08e48590dbb3da7b08b1056828838c5f61e6393ba7a0abcc9f662"
                "76fc6ece0f4e1768cddf8853bb2d551b")};
}

KnownAnswer Aes128GcmKnownAnswer() {
  return {Unhex("feffe9928665731c6d6a8f9467308308"),
          Unhex("cafebabefacedbaddecaf888"),
          Unhex("feedfacedeadbeeffeedfacedeadbeefabaddad2"), kGcmPlaintext,
          Unhex("42831ec2217774244b7221b784d0d49ce3aa212f2c02a4e035c17e2329aca1"
                "2e21d514b25466931c7d8f6a5aac84aa051ba30b396a0aac973d58e091"
                "5bc94fbc3221a5db94fae95ae7121a47")};
}

KnownAnswer ChaCha20Poly1305KnownAnswer() {
  std::string key;
  for (int b = 0x80; b <= 0x9f; ++b) key.push_back(static_cast<char>(b));
  return {key, Unhex("070000004041424344454647"),
          Unhex("50515253c0c1c2c3c4c5c6c7"),
          "Ladies and Gentlemen of the class of '99: If I could offer you only "
          "one tip for the future, sunscreen would be it.",
          Unhex("d31a8d34648e60db7b86afbc53ef7ec2a4aded51296e08fea9e2b5a736ee62"
                "d63dbea45e8ca9671282fafb69da92728b1a71de0a9e060b2905d6a5b67ecd"
                "3b3692ddbd7f2d778b8c9803aee328091b58fab324e4fad675945585808b48"
                "31d7bc3ff4def08e4b7a9de576d26586cec64b6116"
                "1ae10b594f09e26a7e902ecbd0600691")};
}

KnownAnswer KnownAnswerFor(AeadAlgorithm algorithm) {
  return algorithm == AeadAlgorithm::kAes256Gcm ? Aes256GcmKnownAnswer()
                                                : ChaCha20Poly1305KnownAnswer();
}

absl::StatusOr<Aead> NewAead(AeadAlgorithm algorithm) {
  absl::StatusOr<SecretBytes> key = RandomSecret(Aead::kKeySize);
  if (!key.ok()) return key.status();
  return Aead::Create(algorithm, *std::move(key));
}

TEST(AeadTest, ConstantsMatchTheLayout) {
  EXPECT_EQ(Aead::kKeySize, 32u);
  EXPECT_EQ(Aead::kNonceSize, 12u);
  EXPECT_EQ(Aead::kTagSize, 16u);
  EXPECT_EQ(Aead::kOverhead, 28u);
}

TEST(AeadTest, AlgorithmNamesAreStable) {
  EXPECT_EQ(AeadAlgorithmName(AeadAlgorithm::kAes256Gcm), "aes-256-gcm");
  EXPECT_EQ(AeadAlgorithmName(AeadAlgorithm::kChaCha20Poly1305),
            "chacha20-poly1305");
}

// ---------------------------------------------------------------------------
// Sweep over algorithms and sizes around the 16 KiB chunk boundary.

using SweepParam = std::tuple<AeadAlgorithm, size_t>;

class AeadSweepTest : public ::testing::TestWithParam<SweepParam> {
 protected:
  void SetUp() override {
    algorithm_ = std::get<0>(GetParam());
    plaintext_ = Plaintext(std::get<1>(GetParam()));
    ASSERT_OK_AND_ASSIGN(Aead aead, NewAead(algorithm_));
    aead_.emplace(std::move(aead));
    ASSERT_OK_AND_ASSIGN(ciphertext_, aead_->Encrypt(plaintext_, kAd));
  }

  static constexpr absl::string_view kAd = "object a/b v3";
  AeadAlgorithm algorithm_;
  std::string plaintext_;
  std::optional<Aead> aead_;
  std::string ciphertext_;
};

TEST_P(AeadSweepTest, RoundTripRecoversPlaintext) {
  ASSERT_OK_AND_ASSIGN(std::string decrypted, aead_->Decrypt(ciphertext_, kAd));
  EXPECT_TRUE(decrypted == plaintext_);
  EXPECT_EQ(aead_->algorithm(), algorithm_);
}

TEST_P(AeadSweepTest, CiphertextIsPlaintextPlus28Bytes) {
  EXPECT_EQ(ciphertext_.size(), plaintext_.size() + 28);
  EXPECT_EQ(ciphertext_.size(), plaintext_.size() + Aead::kOverhead);
}

TEST_P(AeadSweepTest, LayoutIsNonceThenCiphertextThenTag) {
  // Open the parts with the explicit-nonce cipher: nonce = bytes [0, 12).
  // The key is not reachable from Aead, so re-encrypt under a known key.
  const SecretBytes key = SecretBytes::CopyFrom(std::string(32, 'K'));
  ASSERT_OK_AND_ASSIGN(Aead aead, Aead::Create(algorithm_, key.Clone()));
  ASSERT_OK_AND_ASSIGN(std::string ct, aead.Encrypt(plaintext_, kAd));
  ASSERT_OK_AND_ASSIGN(AeadCipher cipher,
                       AeadCipher::Create(KindOf(algorithm_), key.view()));
  std::string out(plaintext_.size(), '\0');
  ASSERT_OK(cipher.Open(Bytes(absl::string_view(ct).substr(0, 12)),
                        absl::string_view(ct).substr(12), kAd,
                        MutableBytes(out)));
  EXPECT_TRUE(out == plaintext_);
}

TEST_P(AeadSweepTest, TwoEncryptionsOfSamePlaintextDiffer) {
  ASSERT_OK_AND_ASSIGN(std::string second, aead_->Encrypt(plaintext_, kAd));
  EXPECT_NE(second.substr(0, 12), ciphertext_.substr(0, 12))
      << "nonce repeated";
  EXPECT_NE(second, ciphertext_);
  ASSERT_OK_AND_ASSIGN(std::string decrypted, aead_->Decrypt(second, kAd));
  EXPECT_TRUE(decrypted == plaintext_);
}

TEST_P(AeadSweepTest, FlippedBitInNonceCiphertextOrTagFails) {
  const size_t n = plaintext_.size();
  std::vector<size_t> positions = {0, 5, 11,              // nonce
                                   12 + n, 12 + n + 15};  // tag
  if (n > 0) {
    positions.insert(positions.end(), {12, 12 + n / 2, 12 + n - 1});
  }
  for (size_t pos : positions) {
    for (int bit : {0, 7}) {
      EXPECT_THAT(aead_->Decrypt(FlipBit(ciphertext_, pos, bit), kAd),
                  StatusIs(kDataLoss))
          << "byte " << pos << " bit " << bit;
    }
  }
}

TEST_P(AeadSweepTest, WrongAssociatedDataFails) {
  EXPECT_THAT(aead_->Decrypt(ciphertext_, "object a/b v4"),
              StatusIs(kDataLoss));
  EXPECT_THAT(aead_->Decrypt(ciphertext_, ""), StatusIs(kDataLoss));
  EXPECT_THAT(aead_->Decrypt(ciphertext_, absl::StrCat(kAd, "x")),
              StatusIs(kDataLoss));
}

TEST_P(AeadSweepTest, TruncatedOrExtendedCiphertextFails) {
  const std::string shorter = ciphertext_.substr(0, ciphertext_.size() - 1);
  EXPECT_THAT(aead_->Decrypt(shorter, kAd),
              StatusIs(shorter.size() < Aead::kOverhead ? kInvalidArgument
                                                        : kDataLoss));
  EXPECT_THAT(aead_->Decrypt(ciphertext_ + '\0', kAd), StatusIs(kDataLoss));
  // Dropping the whole tag: what precedes it is parsed as nonce, body and a
  // "tag" taken from the body's last bytes.
  const std::string untagged = ciphertext_.substr(0, ciphertext_.size() - 16);
  EXPECT_THAT(aead_->Decrypt(untagged, kAd),
              StatusIs(untagged.size() < Aead::kOverhead ? kInvalidArgument
                                                         : kDataLoss));
  // Dropping the tag and re-appending only its first 8 bytes: a truncated
  // tag whose bytes are all genuine.
  const std::string tag = ciphertext_.substr(ciphertext_.size() - 16);
  ASSERT_EQ(tag.size(), 16u);
  const std::string truncated_tag = untagged + tag.substr(0, 8);
  EXPECT_THAT(aead_->Decrypt(truncated_tag, kAd),
              StatusIs(truncated_tag.size() < Aead::kOverhead ? kInvalidArgument
                                                              : kDataLoss));
}

TEST_P(AeadSweepTest, DecryptToSecretRecoversPlaintext) {
  ASSERT_OK_AND_ASSIGN(SecretBytes decrypted,
                       aead_->DecryptToSecret(ciphertext_, kAd));
  EXPECT_TRUE(decrypted == SecretBytes::CopyFrom(plaintext_));
  EXPECT_EQ(decrypted.size(), plaintext_.size());
}

TEST_P(AeadSweepTest, DecryptToSecretFailsExactlyAsDecryptDoes) {
  const size_t n = plaintext_.size();
  const std::vector<std::pair<std::string, std::string>> bad = {
      {"flipped nonce bit", FlipBit(ciphertext_, 0)},
      {"flipped tag bit", FlipBit(ciphertext_, 12 + n + 15, 7)},
      {"truncated", ciphertext_.substr(0, ciphertext_.size() - 1)},
      {"extended", ciphertext_ + '\0'},
      {"shorter than overhead", ciphertext_.substr(0, Aead::kOverhead - 1)},
  };
  for (const auto& [what, ciphertext] : bad) {
    const absl::Status expected = aead_->Decrypt(ciphertext, kAd).status();
    ASSERT_FALSE(expected.ok()) << what;
    EXPECT_EQ(aead_->DecryptToSecret(ciphertext, kAd).status(), expected)
        << what;
  }
  const absl::Status wrong_ad = aead_->Decrypt(ciphertext_, "other").status();
  ASSERT_THAT(wrong_ad, StatusIs(kDataLoss));
  EXPECT_EQ(aead_->DecryptToSecret(ciphertext_, "other").status(), wrong_ad);
  if (n > 0) {
    const std::string body = FlipBit(ciphertext_, 12 + n / 2);
    const absl::Status expected = aead_->Decrypt(body, kAd).status();
    ASSERT_THAT(expected, StatusIs(kDataLoss));
    EXPECT_EQ(aead_->DecryptToSecret(body, kAd).status(), expected);
  }
}

TEST_P(AeadSweepTest, WrongKeyFails) {
  ASSERT_OK_AND_ASSIGN(Aead other, NewAead(algorithm_));
  EXPECT_THAT(other.Decrypt(ciphertext_, kAd), StatusIs(kDataLoss));
}

INSTANTIATE_TEST_SUITE_P(
    AlgorithmsAndSizes, AeadSweepTest,
    ::testing::Combine(::testing::Values(AeadAlgorithm::kAes256Gcm,
                                         AeadAlgorithm::kChaCha20Poly1305),
                       ::testing::Values(size_t{0}, size_t{1}, size_t{16383},
                                         size_t{16384}, size_t{16385},
                                         size_t{1048583})),
    [](const ::testing::TestParamInfo<SweepParam>& info) {
      return absl::StrCat(AlgorithmParamName(std::get<0>(info.param)), "_",
                          std::get<1>(info.param));
    });

// ---------------------------------------------------------------------------
// Per-algorithm tests of Aead.

class AeadAlgorithmTest : public ::testing::TestWithParam<AeadAlgorithm> {};

TEST_P(AeadAlgorithmTest, DecryptsKnownAnswer) {
  const KnownAnswer kat = KnownAnswerFor(GetParam());
  ASSERT_OK_AND_ASSIGN(
      Aead aead, Aead::Create(GetParam(), SecretBytes::CopyFrom(kat.key)));
  ASSERT_OK_AND_ASSIGN(
      std::string plaintext,
      aead.Decrypt(kat.nonce + kat.ciphertext_and_tag, kat.aad));
  EXPECT_EQ(plaintext, kat.plaintext);
}

TEST_P(AeadAlgorithmTest, DecryptToSecretDecryptsKnownAnswer) {
  const KnownAnswer kat = KnownAnswerFor(GetParam());
  ASSERT_OK_AND_ASSIGN(
      Aead aead, Aead::Create(GetParam(), SecretBytes::CopyFrom(kat.key)));
  ASSERT_OK_AND_ASSIGN(
      SecretBytes plaintext,
      aead.DecryptToSecret(kat.nonce + kat.ciphertext_and_tag, kat.aad));
  EXPECT_EQ(plaintext.view(), kat.plaintext);
}

TEST_P(AeadAlgorithmTest, KeyOfWrongSizeIsInvalidArgument) {
  for (size_t size : {size_t{0}, size_t{16}, size_t{24}, size_t{31}, size_t{33},
                      size_t{64}}) {
    EXPECT_THAT(
        Aead::Create(GetParam(), SecretBytes::CopyFrom(std::string(size, 'k'))),
        StatusIs(kInvalidArgument))
        << "key size " << size;
  }
}

// A message over the limit for one nonce is refused before anything is
// allocated for it or read from it: the views are longer than the buffer
// behind them.
TEST_P(AeadAlgorithmTest, MessageOverTheLimitForOneNonceIsInvalidArgument) {
  ASSERT_OK_AND_ASSIGN(Aead aead, NewAead(GetParam()));
  const uint64_t limit =
      AeadCipher::MaxMessage(GetParam() == AeadAlgorithm::kAes256Gcm
                                 ? AeadCipher::Kind::kAesGcm
                                 : AeadCipher::Kind::kChaCha20Poly1305);
  const std::string buffer(64, 'x');
  const absl::string_view over(buffer.data(), static_cast<size_t>(limit) + 1);
  EXPECT_THAT(aead.Encrypt(over, ""),
              StatusIs(kInvalidArgument, HasSubstr("limit for one nonce")));
  const absl::string_view sealed(
      buffer.data(), static_cast<size_t>(limit) + 1 + Aead::kOverhead);
  EXPECT_THAT(aead.Decrypt(sealed, ""),
              StatusIs(kInvalidArgument, HasSubstr("limit for one nonce")));
  EXPECT_THAT(aead.DecryptToSecret(sealed, ""),
              StatusIs(kInvalidArgument, HasSubstr("limit for one nonce")));
}

TEST_P(AeadAlgorithmTest, CiphertextShorterThanOverheadIsInvalidArgument) {
  ASSERT_OK_AND_ASSIGN(Aead aead, NewAead(GetParam()));
  for (size_t size = 0; size < Aead::kOverhead; ++size) {
    EXPECT_THAT(aead.Decrypt(std::string(size, '\x5a'), ""),
                StatusIs(kInvalidArgument))
        << "size " << size;
  }
  // Exactly the overhead is a well-formed (empty) message that fails to
  // authenticate.
  EXPECT_THAT(aead.Decrypt(std::string(Aead::kOverhead, '\x5a'), ""),
              StatusIs(kDataLoss));
}

TEST_P(AeadAlgorithmTest, CiphertextOfTheOtherAlgorithmFails) {
  const AeadAlgorithm other = GetParam() == AeadAlgorithm::kAes256Gcm
                                  ? AeadAlgorithm::kChaCha20Poly1305
                                  : AeadAlgorithm::kAes256Gcm;
  const SecretBytes key = SecretBytes::CopyFrom(std::string(32, 'S'));
  ASSERT_OK_AND_ASSIGN(Aead mine, Aead::Create(GetParam(), key.Clone()));
  ASSERT_OK_AND_ASSIGN(Aead theirs, Aead::Create(other, key.Clone()));
  ASSERT_OK_AND_ASSIGN(std::string ct, mine.Encrypt("payload", "ad"));
  EXPECT_THAT(theirs.Decrypt(ct, "ad"), StatusIs(kDataLoss));
}

TEST_P(AeadAlgorithmTest, MovedAeadStillDecrypts) {
  ASSERT_OK_AND_ASSIGN(Aead aead, NewAead(GetParam()));
  ASSERT_OK_AND_ASSIGN(std::string ct, aead.Encrypt("payload", "ad"));
  Aead moved = std::move(aead);
  ASSERT_OK_AND_ASSIGN(std::string pt, moved.Decrypt(ct, "ad"));
  EXPECT_EQ(pt, "payload");
  EXPECT_EQ(moved.algorithm(), GetParam());
}

INSTANTIATE_TEST_SUITE_P(
    Algorithms, AeadAlgorithmTest,
    ::testing::Values(AeadAlgorithm::kAes256Gcm,
                      AeadAlgorithm::kChaCha20Poly1305),
    [](const ::testing::TestParamInfo<AeadAlgorithm>& info) {
      return AlgorithmParamName(info.param);
    });

// ---------------------------------------------------------------------------
// internal::AeadCipher: explicit nonces.

struct CipherParam {
  const char* name;
  AeadCipher::Kind kind;
  KnownAnswer (*known_answer)();
};
void PrintTo(const CipherParam& param, std::ostream* os) { *os << param.name; }

class AeadCipherTest : public ::testing::TestWithParam<CipherParam> {
 protected:
  absl::StatusOr<AeadCipher> Cipher() const {
    return AeadCipher::Create(GetParam().kind, GetParam().known_answer().key);
  }
};

TEST_P(AeadCipherTest, SealWithExplicitNonceMatchesKnownAnswer) {
  const KnownAnswer kat = GetParam().known_answer();
  ASSERT_OK_AND_ASSIGN(AeadCipher cipher, Cipher());
  std::string out(kat.plaintext.size() + AeadCipher::kTagSize, '\0');
  ASSERT_OK(
      cipher.Seal(Bytes(kat.nonce), kat.plaintext, kat.aad, MutableBytes(out)));
  EXPECT_EQ(absl::BytesToHexString(out),
            absl::BytesToHexString(kat.ciphertext_and_tag));
}

TEST_P(AeadCipherTest, OpenWithExplicitNonceMatchesKnownAnswer) {
  const KnownAnswer kat = GetParam().known_answer();
  ASSERT_OK_AND_ASSIGN(AeadCipher cipher, Cipher());
  std::string out(kat.plaintext.size(), '\0');
  ASSERT_OK(cipher.Open(Bytes(kat.nonce), kat.ciphertext_and_tag, kat.aad,
                        MutableBytes(out)));
  EXPECT_EQ(out, kat.plaintext);
}

TEST_P(AeadCipherTest, SealInPlaceEqualsSealOutOfPlace) {
  const KnownAnswer kat = GetParam().known_answer();
  ASSERT_OK_AND_ASSIGN(AeadCipher cipher, Cipher());
  // The plaintext sits at the start of a buffer with room for the tag.
  std::string buffer = kat.plaintext + std::string(AeadCipher::kTagSize, '\0');
  absl::string_view in_place(buffer.data(), kat.plaintext.size());
  ASSERT_OK(
      cipher.Seal(Bytes(kat.nonce), in_place, kat.aad, MutableBytes(buffer)));
  EXPECT_EQ(buffer, kat.ciphertext_and_tag);
}

TEST_P(AeadCipherTest, OneCipherSealsAndOpensManyMessages) {
  // The key schedule is set once; each call must fully reset the nonce and
  // the running tag. Compare with a fresh cipher per message.
  ASSERT_OK_AND_ASSIGN(AeadCipher reused, Cipher());
  for (uint8_t i = 0; i < 20; ++i) {
    const std::string nonce(12, static_cast<char>(i));
    const std::string plaintext = Plaintext(i * 7u);
    const std::string aad(i % 3, 'a');
    std::string sealed(plaintext.size() + 16, '\0');
    ASSERT_OK(reused.Seal(Bytes(nonce), plaintext, aad, MutableBytes(sealed)));

    ASSERT_OK_AND_ASSIGN(AeadCipher fresh, Cipher());
    std::string expected(plaintext.size() + 16, '\0');
    ASSERT_OK(fresh.Seal(Bytes(nonce), plaintext, aad, MutableBytes(expected)));
    EXPECT_EQ(sealed, expected) << "message " << int{i};

    std::string opened(plaintext.size(), '\0');
    ASSERT_OK(reused.Open(Bytes(nonce), sealed, aad, MutableBytes(opened)));
    EXPECT_EQ(opened, plaintext) << "message " << int{i};
  }
}

TEST_P(AeadCipherTest, WrongNonceSizeIsInvalidArgument) {
  const KnownAnswer kat = GetParam().known_answer();
  ASSERT_OK_AND_ASSIGN(AeadCipher cipher, Cipher());
  for (size_t size :
       {size_t{0}, size_t{8}, size_t{11}, size_t{13}, size_t{16}, size_t{24}}) {
    const std::string nonce(size, '\x01');
    std::string sealed(kat.plaintext.size() + 16, '\0');
    EXPECT_THAT(
        cipher.Seal(Bytes(nonce), kat.plaintext, kat.aad, MutableBytes(sealed)),
        StatusIs(kInvalidArgument))
        << "nonce size " << size;
    std::string opened(kat.plaintext.size(), '\0');
    EXPECT_THAT(cipher.Open(Bytes(nonce), kat.ciphertext_and_tag, kat.aad,
                            MutableBytes(opened)),
                StatusIs(kInvalidArgument))
        << "nonce size " << size;
  }
}

TEST_P(AeadCipherTest, OpenFailureWipesOutput) {
  const KnownAnswer kat = GetParam().known_answer();
  ASSERT_OK_AND_ASSIGN(AeadCipher cipher, Cipher());
  // A bad tag leaves the ciphertext intact, so an implementation that
  // decrypts before checking the tag would leave the true plaintext behind.
  const std::string bad_tag =
      FlipBit(kat.ciphertext_and_tag, kat.ciphertext_and_tag.size() - 1);
  std::string out(kat.plaintext.size(), '\xaa');
  EXPECT_THAT(
      cipher.Open(Bytes(kat.nonce), bad_tag, kat.aad, MutableBytes(out)),
      StatusIs(kDataLoss));
  EXPECT_EQ(out, std::string(kat.plaintext.size(), '\0'));

  // Same for wrong associated data.
  out.assign(kat.plaintext.size(), '\xaa');
  EXPECT_THAT(cipher.Open(Bytes(kat.nonce), kat.ciphertext_and_tag, "other",
                          MutableBytes(out)),
              StatusIs(kDataLoss));
  EXPECT_EQ(out, std::string(kat.plaintext.size(), '\0'));
}

TEST_P(AeadCipherTest, CipherStillWorksAfterFailedOpen) {
  const KnownAnswer kat = GetParam().known_answer();
  ASSERT_OK_AND_ASSIGN(AeadCipher cipher, Cipher());
  std::string out(kat.plaintext.size(), '\0');
  ASSERT_THAT(cipher.Open(Bytes(kat.nonce), FlipBit(kat.ciphertext_and_tag, 0),
                          kat.aad, MutableBytes(out)),
              StatusIs(kDataLoss));
  ASSERT_OK(cipher.Open(Bytes(kat.nonce), kat.ciphertext_and_tag, kat.aad,
                        MutableBytes(out)));
  EXPECT_EQ(out, kat.plaintext);
}

TEST_P(AeadCipherTest, ModifiedNonceCiphertextOrAadFails) {
  const KnownAnswer kat = GetParam().known_answer();
  ASSERT_OK_AND_ASSIGN(AeadCipher cipher, Cipher());
  std::string out(kat.plaintext.size(), '\0');
  EXPECT_THAT(cipher.Open(Bytes(FlipBit(kat.nonce, 11, 7)),
                          kat.ciphertext_and_tag, kat.aad, MutableBytes(out)),
              StatusIs(kDataLoss));
  EXPECT_THAT(cipher.Open(Bytes(kat.nonce), FlipBit(kat.ciphertext_and_tag, 3),
                          kat.aad, MutableBytes(out)),
              StatusIs(kDataLoss));
  EXPECT_THAT(cipher.Open(Bytes(kat.nonce), kat.ciphertext_and_tag,
                          FlipBit(kat.aad, 0), MutableBytes(out)),
              StatusIs(kDataLoss));
}

TEST_P(AeadCipherTest, CiphertextShorterThanTagIsInvalidArgument) {
  const KnownAnswer kat = GetParam().known_answer();
  ASSERT_OK_AND_ASSIGN(AeadCipher cipher, Cipher());
  for (size_t size : {size_t{0}, size_t{1}, size_t{15}}) {
    std::string out;
    EXPECT_THAT(cipher.Open(Bytes(kat.nonce), std::string(size, 'c'), "",
                            MutableBytes(out)),
                StatusIs(kInvalidArgument))
        << size;
  }
}

TEST_P(AeadCipherTest, OutputOfWrongSizeIsInvalidArgument) {
  const KnownAnswer kat = GetParam().known_answer();
  ASSERT_OK_AND_ASSIGN(AeadCipher cipher, Cipher());
  for (size_t delta : {size_t{1}, size_t{16}}) {
    std::string small(kat.plaintext.size() + 16 - delta, '\0');
    EXPECT_THAT(cipher.Seal(Bytes(kat.nonce), kat.plaintext, kat.aad,
                            MutableBytes(small)),
                StatusIs(kInvalidArgument));
    std::string large(kat.plaintext.size() + 16 + delta, '\0');
    EXPECT_THAT(cipher.Seal(Bytes(kat.nonce), kat.plaintext, kat.aad,
                            MutableBytes(large)),
                StatusIs(kInvalidArgument));
    std::string small_out(kat.plaintext.size() - delta, '\0');
    EXPECT_THAT(cipher.Open(Bytes(kat.nonce), kat.ciphertext_and_tag, kat.aad,
                            MutableBytes(small_out)),
                StatusIs(kInvalidArgument));
    std::string large_out(kat.plaintext.size() + delta, '\0');
    EXPECT_THAT(cipher.Open(Bytes(kat.nonce), kat.ciphertext_and_tag, kat.aad,
                            MutableBytes(large_out)),
                StatusIs(kInvalidArgument));
  }
}

// A message past the algorithm's limit for one nonce is refused before a
// byte of it is read: the views below are longer than the buffer behind
// them, which any read would overrun.
TEST_P(AeadCipherTest, MessageOverTheLimitForOneNonceIsInvalidArgument) {
  const KnownAnswer kat = GetParam().known_answer();
  ASSERT_OK_AND_ASSIGN(AeadCipher cipher, Cipher());
  const uint64_t limit = GetParam().kind == AeadCipher::Kind::kAesGcm
                             ? AeadCipher::kMaxAesGcmMessage
                             : AeadCipher::kMaxChaCha20Poly1305Message;
  std::string buffer(64, 'x');
  const size_t over = static_cast<size_t>(limit) + 1;
  EXPECT_THAT(
      cipher.Seal(Bytes(kat.nonce), absl::string_view(buffer.data(), over),
                  kat.aad,
                  absl::Span<uint8_t>(reinterpret_cast<uint8_t*>(buffer.data()),
                                      over + 16)),
      StatusIs(kInvalidArgument, HasSubstr("limit for one nonce")));
  EXPECT_THAT(cipher.Open(Bytes(kat.nonce),
                          absl::string_view(buffer.data(), over + 16), kat.aad,
                          absl::Span<uint8_t>(
                              reinterpret_cast<uint8_t*>(buffer.data()), over)),
              StatusIs(kInvalidArgument, HasSubstr("limit for one nonce")));
  // The cipher still works.
  std::string out(kat.plaintext.size(), '\0');
  ASSERT_OK(cipher.Open(Bytes(kat.nonce), kat.ciphertext_and_tag, kat.aad,
                        MutableBytes(out)));
  EXPECT_EQ(out, kat.plaintext);
}

TEST_P(AeadCipherTest, MovedCipherStillWorks) {
  const KnownAnswer kat = GetParam().known_answer();
  ASSERT_OK_AND_ASSIGN(AeadCipher cipher, Cipher());
  AeadCipher moved(std::move(cipher));
  AeadCipher assigned = std::move(moved);
  std::string out(kat.plaintext.size(), '\0');
  ASSERT_OK(assigned.Open(Bytes(kat.nonce), kat.ciphertext_and_tag, kat.aad,
                          MutableBytes(out)));
  EXPECT_EQ(out, kat.plaintext);
}

INSTANTIATE_TEST_SUITE_P(
    Kinds, AeadCipherTest,
    ::testing::Values(CipherParam{"Aes256Gcm", AeadCipher::Kind::kAesGcm,
                                  &Aes256GcmKnownAnswer},
                      CipherParam{"Aes128Gcm", AeadCipher::Kind::kAesGcm,
                                  &Aes128GcmKnownAnswer},
                      CipherParam{"ChaCha20Poly1305",
                                  AeadCipher::Kind::kChaCha20Poly1305,
                                  &ChaCha20Poly1305KnownAnswer}),
    [](const ::testing::TestParamInfo<CipherParam>& info) {
      return info.param.name;
    });

TEST(AeadCipherCreateTest, AesGcmAcceptsOnly16Or32ByteKeys) {
  for (size_t size : {size_t{16}, size_t{32}}) {
    EXPECT_OK(
        AeadCipher::Create(AeadCipher::Kind::kAesGcm, std::string(size, 'k')));
  }
  for (size_t size : {size_t{0}, size_t{15}, size_t{17}, size_t{24}, size_t{31},
                      size_t{33}, size_t{64}}) {
    EXPECT_THAT(
        AeadCipher::Create(AeadCipher::Kind::kAesGcm, std::string(size, 'k')),
        StatusIs(kInvalidArgument))
        << "key size " << size;
  }
}

TEST(AeadCipherCreateTest, ChaCha20Poly1305AcceptsOnly32ByteKeys) {
  EXPECT_OK(AeadCipher::Create(AeadCipher::Kind::kChaCha20Poly1305,
                               std::string(32, 'k')));
  for (size_t size :
       {size_t{0}, size_t{16}, size_t{24}, size_t{31}, size_t{33}}) {
    EXPECT_THAT(AeadCipher::Create(AeadCipher::Kind::kChaCha20Poly1305,
                                   std::string(size, 'k')),
                StatusIs(kInvalidArgument))
        << "key size " << size;
  }
}

}  // namespace
}  // namespace residency::crypto
