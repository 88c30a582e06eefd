#include "crypto/chunked.h"

#include <sys/wait.h>
#include <unistd.h>

#include <algorithm>
#include <array>
#include <cstddef>
#include <cstdint>
#include <limits>
#include <optional>
#include <string>
#include <thread>
#include <tuple>
#include <utility>
#include <vector>

#include "absl/container/flat_hash_set.h"
#include "absl/status/status.h"
#include "absl/status/statusor.h"
#include "absl/strings/str_cat.h"
#include "absl/strings/string_view.h"
#include "absl/types/span.h"
#include "crypto/hkdf.h"
#include "crypto/internal/aead_cipher.h"
#include "crypto/internal/chunk_cipher.h"
#include "crypto/random.h"
#include "crypto/secret_bytes.h"
#include "gtest/gtest.h"
#include "tests/status_matchers.h"

namespace residency::crypto {
namespace {

using ::residency::crypto::internal::AeadCipher;
using ::residency::crypto::internal::ChunkCipher;
using ::residency::testing::StatusIs;

constexpr absl::StatusCode kDataLoss = absl::StatusCode::kDataLoss;
constexpr absl::StatusCode kInvalidArgument =
    absl::StatusCode::kInvalidArgument;
constexpr absl::StatusCode kFailedPrecondition =
    absl::StatusCode::kFailedPrecondition;
constexpr uint64_t kMax64 = std::numeric_limits<uint64_t>::max();

constexpr absl::string_view kContext =
    "\x05"
    "alice"
    "\x08"
    "photos/1"
    "\x01"
    "3";

// ---------------------------------------------------------------------------
// An independent model of the format, written from the specification rather
// than from chunked.cc, so the tests check the layout instead of echoing it.

size_t FullChunks(size_t plaintext_size) { return plaintext_size / 16384; }
size_t ChunkOffset(size_t k) { return 56 + k * 16400; }
size_t SealedChunkLength(size_t plaintext_size, size_t k) {
  return k < FullChunks(plaintext_size) ? 16400 : plaintext_size % 16384 + 16;
}
// Messages are capped at 2^60 bytes; the largest one has 2^46 full chunks
// and an empty final chunk.
constexpr uint64_t kModelMaxPlaintext = uint64_t{1} << 60;
constexpr uint64_t kModelMaxCiphertext =
    56 + kModelMaxPlaintext + 16 * ((uint64_t{1} << 46) + 1);
// Whether some message has a ciphertext of this length.
bool IsPossibleLength(uint64_t length) {
  return length >= 56 && length <= kModelMaxCiphertext &&
         (length - 56) % 16400 >= 16;
}

absl::string_view AeadName(ChunkedAead aead) {
  return aead == ChunkedAead::kAes256Gcm ? "AEAD_AES_256_GCM"
                                         : "AEAD_AES_128_GCM";
}
size_t AeadKeySize(ChunkedAead aead) {
  return aead == ChunkedAead::kAes256Gcm ? 32 : 16;
}
std::string ParamName(ChunkedAead aead) {
  return aead == ChunkedAead::kAes256Gcm ? "Aes256Gcm" : "Aes128Gcm";
}

// key || base_nonce || commitment, per c2sp.org/chunked-encryption.
struct DerivedKeys {
  std::string aead_key;
  std::string base_nonce;
  std::string commitment;
};
absl::StatusOr<DerivedKeys> Derive(const SecretBytes& key, ChunkedAead aead,
                                   absl::string_view salt,
                                   absl::string_view context) {
  const std::string info =
      absl::StrCat("c2sp.org/chunked-encryption@v1+", AeadName(aead),
                   absl::string_view("\0", 1), salt, context);
  const size_t nk = AeadKeySize(aead);
  absl::StatusOr<SecretBytes> okm =
      HkdfExpand(HkdfHash::kSha512, key, info, nk + 12 + 32);
  if (!okm.ok()) return okm.status();
  const absl::string_view v = okm->view();
  return DerivedKeys{std::string(v.substr(0, nk)),
                     std::string(v.substr(nk, 12)),
                     std::string(v.substr(nk + 12, 32))};
}

// Deterministic plaintext, different in every chunk, so that a swapped or
// duplicated chunk could never decrypt to the right bytes by accident.
std::string Plaintext(size_t size) {
  std::string out(size, '\0');
  uint64_t x = 0x9e3779b97f4a7c15u ^ size;
  for (char& c : out) {
    x = x * 6364136223846793005u + 1442695040888963407u;
    c = static_cast<char>(x >> 56);
  }
  return out;
}

SecretBytes TestKey(ChunkedAead aead, char seed = 'k') {
  std::string bytes(ChunkedKeySize(aead), seed);
  for (size_t i = 0; i < bytes.size(); ++i)
    bytes[i] = static_cast<char>(seed + 3 * i);
  return SecretBytes::CopyFrom(bytes);
}

std::string FlipBit(std::string s, size_t byte, int bit = 0) {
  s[byte] = static_cast<char>(s[byte] ^ (1 << bit));
  return s;
}

bool IsPrefixOf(absl::string_view prefix, absl::string_view whole) {
  return prefix.size() <= whole.size() &&
         whole.substr(0, prefix.size()) == prefix;
}

// Compares large byte strings without printing megabytes on failure.
::testing::AssertionResult SameBytes(absl::string_view actual,
                                     absl::string_view expected) {
  if (actual == expected) return ::testing::AssertionSuccess();
  size_t i = 0;
  while (i < actual.size() && i < expected.size() && actual[i] == expected[i]) {
    ++i;
  }
  return ::testing::AssertionFailure()
         << "sizes " << actual.size() << " vs " << expected.size()
         << ", first difference at byte " << i;
}

struct StreamResult {
  absl::Status status;   // first error, or Finish's status
  std::string released;  // all plaintext the decryptor appended
};

// Feeds `ct` to a ChunkedDecryptor in `piece`-byte pieces, then Finish.
StreamResult StreamDecrypt(const SecretBytes& key, absl::string_view context,
                           absl::string_view ct, size_t piece,
                           ChunkedAead aead) {
  absl::StatusOr<ChunkedDecryptor> decryptor =
      ChunkedDecryptor::Create(key, context, aead);
  if (!decryptor.ok()) return {decryptor.status(), ""};
  StreamResult result;
  for (size_t i = 0; i < ct.size(); i += piece) {
    result.status = decryptor->Update(ct.substr(i, piece), &result.released);
    if (!result.status.ok()) return result;
  }
  result.status = decryptor->Finish(&result.released);
  return result;
}

// `ct` must be rejected by the one-shot and the streaming decryptor; a
// streaming decryptor may only release a prefix of `plaintext`.
//
// The header documents DATA_LOSS for truncation and trailing data but also
// INVALID_ARGUMENT for "an impossible ciphertext length", so a ciphertext
// whose length no message can have may fail with either; one of possible
// length must fail with DATA_LOSS.
void ExpectRejected(const SecretBytes& key, absl::string_view context,
                    absl::string_view ct, ChunkedAead aead,
                    absl::string_view plaintext) {
  const bool possible = IsPossibleLength(ct.size());
  auto acceptable = [&](const absl::Status& status) {
    return status.code() == kDataLoss ||
           (!possible && status.code() == kInvalidArgument);
  };
  absl::StatusOr<std::string> one_shot = ChunkedDecrypt(key, context, ct, aead);
  EXPECT_FALSE(one_shot.ok())
      << "one-shot accepted a " << ct.size() << "-byte forgery";
  EXPECT_TRUE(acceptable(one_shot.status()))
      << "one-shot: " << one_shot.status() << " (length " << ct.size() << ")";
  for (size_t piece : {std::max<size_t>(ct.size(), 1), size_t{4099}}) {
    StreamResult stream = StreamDecrypt(key, context, ct, piece, aead);
    EXPECT_FALSE(stream.status.ok())
        << "streaming (" << piece << "-byte pieces) accepted a forgery";
    EXPECT_TRUE(acceptable(stream.status))
        << "streaming: " << stream.status << " (length " << ct.size() << ")";
    EXPECT_TRUE(IsPrefixOf(stream.released, plaintext))
        << "streaming released " << stream.released.size()
        << " bytes that are not a prefix of the message";
  }
}

// ---------------------------------------------------------------------------
// Lengths.

TEST(ChunkedLengthTest, ConstantsMatchTheSpecification) {
  EXPECT_EQ(kChunkSize, 16384u);
  EXPECT_EQ(kChunkTagSize, 16u);
  EXPECT_EQ(kSealedChunkSize, 16400u);
  EXPECT_EQ(kChunkedSaltSize, 24u);
  EXPECT_EQ(kChunkedCommitmentSize, 32u);
  EXPECT_EQ(kChunkedHeaderSize, 56u);
  EXPECT_EQ(ChunkedKeySize(ChunkedAead::kAes256Gcm), 32u);
  EXPECT_EQ(ChunkedKeySize(ChunkedAead::kAes128Gcm), 16u);
  EXPECT_EQ(kMaxChunkedContextSize, 4096u);
  EXPECT_EQ(kMaxChunkedPlaintextLength, kModelMaxPlaintext);
}

TEST(ChunkedLengthTest, ChunkCountIncludesTheShortFinalChunk) {
  EXPECT_EQ(ChunkCount(0), 1u);
  EXPECT_EQ(ChunkCount(1), 1u);
  EXPECT_EQ(ChunkCount(16383), 1u);
  EXPECT_EQ(ChunkCount(16384), 2u);  // a full chunk plus an empty one
  EXPECT_EQ(ChunkCount(16385), 2u);
  EXPECT_EQ(ChunkCount(32768), 3u);
  EXPECT_EQ(ChunkCount(1048583), 65u);
  EXPECT_EQ(ChunkCount(uint64_t{1} << 40), (uint64_t{1} << 26) + 1);
}

TEST(ChunkedLengthTest, CiphertextLengthKnownValues) {
  EXPECT_EQ(ChunkedCiphertextLength(0), 72u);
  EXPECT_EQ(ChunkedCiphertextLength(1), 73u);
  EXPECT_EQ(ChunkedCiphertextLength(16383), 56u + 16399u);
  EXPECT_EQ(ChunkedCiphertextLength(16384), 56u + 16400u + 16u);
  EXPECT_EQ(ChunkedCiphertextLength(16385), 56u + 16400u + 17u);
  EXPECT_EQ(ChunkedCiphertextLength(1048583), 56u + 1048583u + 16u * 65u);
  EXPECT_EQ(ChunkedCiphertextLength(uint64_t{1} << 40),
            56 + (uint64_t{1} << 40) + 16 * ((uint64_t{1} << 26) + 1));
  EXPECT_EQ(ChunkedCiphertextLength(kMaxChunkedPlaintextLength),
            kModelMaxCiphertext);
  EXPECT_EQ(ChunkedCiphertextLength(kMaxChunkedPlaintextLength - 1),
            kModelMaxCiphertext - 17);  // 16383-byte final chunk, one fewer tag
}

TEST(ChunkedLengthTest, CiphertextLengthAboveTheLimitIsMaxNotWrapped) {
  // Without the cap, 56 + P + 16 * (P / 16384 + 1) wraps: this P gave 72, the
  // length of an empty message.
  for (uint64_t p :
       {kModelMaxPlaintext + 1, kModelMaxPlaintext + 16384, uint64_t{1} << 63,
        uint64_t{18428747250223005712u}, kMax64 - 56, kMax64 - 1, kMax64}) {
    EXPECT_EQ(ChunkedCiphertextLength(p), kMax64) << "plaintext length " << p;
  }
}

TEST(ChunkedLengthTest, PlaintextLengthAtAndAboveTheLimit) {
  ASSERT_OK_AND_ASSIGN(uint64_t largest,
                       ChunkedPlaintextLength(ChunkedCiphertextLength(
                           kMaxChunkedPlaintextLength)));
  EXPECT_EQ(largest, kMaxChunkedPlaintextLength);
  ASSERT_OK_AND_ASSIGN(uint64_t below,
                       ChunkedPlaintextLength(kModelMaxCiphertext - 17));
  EXPECT_EQ(below, kModelMaxPlaintext - 1);
  // Each of these ends in a short chunk, so only the limit rules it out.
  // UINT64_MAX is also what ChunkedCiphertextLength returns above the limit.
  for (uint64_t length : {kModelMaxCiphertext + 1, kModelMaxCiphertext + 16,
                          kModelMaxCiphertext + 16400,
                          (uint64_t{1} << 63) + 56 + 16, kMax64 - 1, kMax64}) {
    EXPECT_THAT(ChunkedPlaintextLength(length), StatusIs(kInvalidArgument))
        << "ciphertext length " << length;
  }
}

TEST(ChunkedLengthTest, PlaintextLengthRejectsImpossibleLengths) {
  for (uint64_t length :
       {uint64_t{0}, uint64_t{1}, uint64_t{24}, uint64_t{55}, uint64_t{56},
        uint64_t{56 + 15},                 // a truncated tag
        uint64_t{56 + 16400},              // last chunk full: truncated
        uint64_t{56 + 16400 + 15},         // second tag truncated
        uint64_t{56 + 2 * 16400},          // last chunk full again
        uint64_t{56 + 64 * 16400 + 3}}) {  // 3 bytes cannot hold a tag
    EXPECT_THAT(ChunkedPlaintextLength(length), StatusIs(kInvalidArgument))
        << "ciphertext length " << length;
  }
}

TEST(ChunkedLengthTest, PlaintextLengthKnownValues) {
  const std::vector<std::pair<uint64_t, uint64_t>> cases = {
      {72, 0},
      {73, 1},
      {56 + 16399, 16383},
      {56 + 16400 + 16, 16384},
      {56 + 16400 + 17, 16385},
      {56 + 1048583 + 16 * 65, 1048583}};
  for (const auto& [ct_length, pt_length] : cases) {
    ASSERT_OK_AND_ASSIGN(uint64_t got, ChunkedPlaintextLength(ct_length));
    EXPECT_EQ(got, pt_length) << "ciphertext length " << ct_length;
  }
}

TEST(ChunkedLengthTest, PlaintextLengthInvertsCiphertextLengthExhaustively) {
  // Every length up to four chunks: accepted exactly when some message has
  // it, and then the inverse of ChunkedCiphertextLength.
  size_t accepted = 0;
  for (uint64_t length = 0; length <= 56 + 4 * 16400 + 20; ++length) {
    absl::StatusOr<uint64_t> pt = ChunkedPlaintextLength(length);
    ASSERT_EQ(pt.ok(), IsPossibleLength(length)) << "length " << length;
    if (pt.ok()) {
      ++accepted;
      ASSERT_EQ(ChunkedCiphertextLength(*pt), length);
    } else {
      ASSERT_THAT(pt, StatusIs(kInvalidArgument)) << "length " << length;
    }
  }
  EXPECT_EQ(accepted, 4u * 16384 + 5);  // plaintext lengths 0 .. 4*16384+4
}

TEST(ChunkedLengthTest, PlaintextLengthNearTheTopDoesNotOverflow) {
  for (uint64_t length : {kMax64, kMax64 - 1, kMax64 - 16400, uint64_t{1} << 63,
                          (uint64_t{1} << 63) + 56}) {
    absl::StatusOr<uint64_t> pt = ChunkedPlaintextLength(length);
    EXPECT_EQ(pt.ok(), IsPossibleLength(length)) << "length " << length;
    if (pt.ok()) {
      EXPECT_LT(*pt, length);
      EXPECT_EQ(ChunkedCiphertextLength(*pt), length) << "length " << length;
    }
  }
}

// ---------------------------------------------------------------------------
// Sweep over both instances and sizes around the chunk boundary.

using SweepParam = std::tuple<ChunkedAead, size_t>;

class ChunkedSweepTest : public ::testing::TestWithParam<SweepParam> {
 protected:
  void SetUp() override {
    aead_ = std::get<0>(GetParam());
    size_ = std::get<1>(GetParam());
    key_ = TestKey(aead_);
    plaintext_ = Plaintext(size_);
    ASSERT_OK_AND_ASSIGN(ciphertext_,
                         ChunkedEncrypt(key_, kContext, plaintext_, aead_));
  }

  size_t chunk_count() const { return FullChunks(size_) + 1; }
  absl::string_view SealedChunk(size_t k) const {
    return absl::string_view(ciphertext_)
        .substr(ChunkOffset(k), SealedChunkLength(size_, k));
  }
  absl::string_view ChunkPlaintext(size_t k) const {
    return absl::string_view(plaintext_).substr(k * 16384, 16384);
  }
  // Piece sizes for streaming; 1-byte pieces only where they stay cheap.
  std::vector<size_t> PieceSizes() const {
    std::vector<size_t> pieces = {7, 16384, 16400, 65536};
    if (size_ <= 16385) pieces.insert(pieces.begin(), 1);
    return pieces;
  }
  void ExpectRejected(absl::string_view ct) const {
    ::residency::crypto::ExpectRejected(key_, kContext, ct, aead_, plaintext_);
  }

  ChunkedAead aead_;
  size_t size_;
  SecretBytes key_;
  std::string plaintext_;
  std::string ciphertext_;
};

TEST_P(ChunkedSweepTest, OneShotRoundTripRecoversPlaintext) {
  ASSERT_OK_AND_ASSIGN(std::string decrypted,
                       ChunkedDecrypt(key_, kContext, ciphertext_, aead_));
  EXPECT_TRUE(SameBytes(decrypted, plaintext_));
}

TEST_P(ChunkedSweepTest, CiphertextLengthMatchesTheFormula) {
  EXPECT_EQ(ciphertext_.size(), ChunkedCiphertextLength(size_));
  EXPECT_EQ(ciphertext_.size(), 56 + size_ + 16 * chunk_count());
  EXPECT_EQ(ChunkCount(size_), chunk_count());
  ASSERT_OK_AND_ASSIGN(uint64_t pt_length,
                       ChunkedPlaintextLength(ciphertext_.size()));
  EXPECT_EQ(pt_length, size_);
}

TEST_P(ChunkedSweepTest, HeaderAndChunksFollowTheKeySchedule) {
  // Re-derive the AEAD key, base nonce and commitment with HKDF-Expand from
  // the salt, and re-seal every chunk with nonce = base_nonce XOR index.
  const absl::string_view salt = absl::string_view(ciphertext_).substr(0, 24);
  ASSERT_OK_AND_ASSIGN(DerivedKeys derived,
                       Derive(key_, aead_, salt, kContext));
  EXPECT_EQ(ciphertext_.substr(24, 32), derived.commitment);
  ASSERT_OK_AND_ASSIGN(
      ChunkCipher cipher,
      ChunkCipher::Create(derived.aead_key, derived.base_nonce));
  std::string resealed(ciphertext_.substr(0, 56));
  for (size_t k = 0; k < chunk_count(); ++k) {
    ASSERT_OK(cipher.SealChunk(k, ChunkPlaintext(k), &resealed));
  }
  EXPECT_TRUE(SameBytes(resealed, ciphertext_));
}

TEST_P(ChunkedSweepTest, StreamingEncryptionEmitsFullChunksPromptly) {
  for (size_t piece : PieceSizes()) {
    SCOPED_TRACE(absl::StrCat("piece size ", piece));
    ASSERT_OK_AND_ASSIGN(ChunkedEncryptor encryptor,
                         ChunkedEncryptor::Create(key_, kContext, aead_));
    ASSERT_EQ(encryptor.header().size(), 56u);
    std::string out = encryptor.header();
    for (size_t i = 0; i < size_; i += piece) {
      const absl::string_view part =
          absl::string_view(plaintext_).substr(i, piece);
      ASSERT_OK(encryptor.Update(part, &out));
      const size_t accepted = i + part.size();
      ASSERT_EQ(encryptor.plaintext_length(), accepted);
      // Every complete chunk is out; nothing else is.
      ASSERT_EQ(out.size(), 56 + accepted / 16384 * 16400)
          << "after " << accepted << " bytes";
    }
    ASSERT_OK(encryptor.Finish(&out));
    EXPECT_EQ(out.size(), ChunkedCiphertextLength(size_));
    ASSERT_OK_AND_ASSIGN(std::string decrypted,
                         ChunkedDecrypt(key_, kContext, out, aead_));
    EXPECT_TRUE(SameBytes(decrypted, plaintext_));
  }
}

TEST_P(ChunkedSweepTest, StreamingDecryptionReleasesChunksAsTheyAuthenticate) {
  for (size_t piece : PieceSizes()) {
    SCOPED_TRACE(absl::StrCat("piece size ", piece));
    ASSERT_OK_AND_ASSIGN(ChunkedDecryptor decryptor,
                         ChunkedDecryptor::Create(key_, kContext, aead_));
    std::string out;
    for (size_t i = 0; i < ciphertext_.size(); i += piece) {
      const absl::string_view part =
          absl::string_view(ciphertext_).substr(i, piece);
      ASSERT_OK(decryptor.Update(part, &out));
      const size_t fed = i + part.size();
      // A chunk is released once authenticated (at the latest when the next
      // byte shows it is not the final one), and never before it is whole.
      const size_t most = fed < 56 ? 0 : (fed - 56) / 16400 * 16384;
      const size_t least = fed < 57 ? 0 : (fed - 57) / 16400 * 16384;
      ASSERT_LE(out.size(), most) << "after " << fed << " bytes";
      ASSERT_GE(out.size(), least) << "after " << fed << " bytes";
      ASSERT_TRUE(IsPrefixOf(out, plaintext_)) << "after " << fed << " bytes";
    }
    // Only the short final chunk is left for Finish.
    EXPECT_EQ(out.size(), FullChunks(size_) * 16384);
    ASSERT_OK(decryptor.Finish(&out));
    EXPECT_TRUE(SameBytes(out, plaintext_));
  }
}

TEST_P(ChunkedSweepTest, EmptyUpdatesAreHarmless) {
  ASSERT_OK_AND_ASSIGN(ChunkedEncryptor encryptor,
                       ChunkedEncryptor::Create(key_, kContext, aead_));
  std::string ct = encryptor.header();
  ASSERT_OK(encryptor.Update("", &ct));
  ASSERT_OK(encryptor.Update(plaintext_, &ct));
  ASSERT_OK(encryptor.Update("", &ct));
  ASSERT_OK(encryptor.Finish(&ct));

  ASSERT_OK_AND_ASSIGN(ChunkedDecryptor decryptor,
                       ChunkedDecryptor::Create(key_, kContext, aead_));
  std::string out;
  ASSERT_OK(decryptor.Update("", &out));
  ASSERT_OK(decryptor.Update(ct, &out));
  ASSERT_OK(decryptor.Update("", &out));
  ASSERT_OK(decryptor.Finish(&out));
  EXPECT_TRUE(SameBytes(out, plaintext_));
}

TEST_P(ChunkedSweepTest, FlippedBitInSaltFails) {
  for (size_t pos : {size_t{0}, size_t{11}, size_t{23}}) {
    SCOPED_TRACE(absl::StrCat("salt byte ", pos));
    ExpectRejected(FlipBit(ciphertext_, pos, 3));
  }
}

TEST_P(ChunkedSweepTest, FlippedBitInCommitmentFails) {
  for (size_t pos : {size_t{24}, size_t{40}, size_t{55}}) {
    SCOPED_TRACE(absl::StrCat("commitment byte ", pos));
    ExpectRejected(FlipBit(ciphertext_, pos, 5));
  }
}

TEST_P(ChunkedSweepTest, FlippedBitInEachChunkBodyFails) {
  for (size_t k = 0; k < chunk_count(); ++k) {
    const size_t body = SealedChunkLength(size_, k) - 16;
    if (body == 0) continue;  // an empty final chunk has only a tag
    for (size_t pos : {size_t{0}, body / 2, body - 1}) {
      const std::string tampered =
          FlipBit(ciphertext_, ChunkOffset(k) + pos, 6);
      EXPECT_THAT(ChunkedDecrypt(key_, kContext, tampered, aead_),
                  StatusIs(kDataLoss))
          << "chunk " << k << " body byte " << pos;
    }
  }
}

TEST_P(ChunkedSweepTest, FlippedBitInEachTagFails) {
  for (size_t k = 0; k < chunk_count(); ++k) {
    const size_t tag = ChunkOffset(k) + SealedChunkLength(size_, k) - 16;
    for (size_t pos : {size_t{0}, size_t{15}}) {
      const std::string tampered = FlipBit(ciphertext_, tag + pos, 0);
      EXPECT_THAT(ChunkedDecrypt(key_, kContext, tampered, aead_),
                  StatusIs(kDataLoss))
          << "chunk " << k << " tag byte " << pos;
    }
  }
}

TEST_P(ChunkedSweepTest, FlippedBitInFinalChunkFails) {
  // Also through the streaming path: the final chunk is opened in Finish.
  const size_t last = chunk_count() - 1;
  ExpectRejected(FlipBit(ciphertext_, ciphertext_.size() - 1, 7));  // tag
  if (SealedChunkLength(size_, last) > 16) {
    ExpectRejected(FlipBit(ciphertext_, ChunkOffset(last), 7));  // body
  }
}

TEST_P(ChunkedSweepTest, TruncationAtAnyPointFails) {
  std::vector<size_t> cuts = {0,
                              1,
                              23,
                              24,
                              55,
                              56,
                              57,
                              56 + 15,
                              56 + 16,
                              ciphertext_.size() - 1,
                              ciphertext_.size() - 15,
                              ciphertext_.size() - 16,
                              ciphertext_.size() - 17};
  // Around the first two and the last two chunk boundaries.
  const size_t n = chunk_count();
  for (size_t k : {size_t{1}, size_t{2}, n - 1, n}) {
    if (k == 0 || k > n) continue;
    for (int delta : {-1, 0, 1, 15, 16, 17}) {
      cuts.push_back(ChunkOffset(k) + delta);
    }
  }
  for (size_t cut : cuts) {
    if (cut >= ciphertext_.size()) continue;
    SCOPED_TRACE(absl::StrCat("cut to ", cut, " of ", ciphertext_.size()));
    ExpectRejected(absl::string_view(ciphertext_).substr(0, cut));
  }
}

TEST_P(ChunkedSweepTest, DroppedFinalChunkFails) {
  // With at least one full chunk, dropping the short final chunk leaves a
  // well-formed run of full chunks: only the "final chunk is short" rule
  // catches it. Without one, nothing but the header is left.
  ExpectRejected(
      absl::string_view(ciphertext_).substr(0, ChunkOffset(chunk_count() - 1)));
}

TEST_P(ChunkedSweepTest, TrailingGarbageByteFails) {
  ExpectRejected(ciphertext_ + '\0');
  ExpectRejected(ciphertext_ + 'x');
}

TEST_P(ChunkedSweepTest, TrailingValidlySealedChunkFails) {
  const absl::string_view salt = absl::string_view(ciphertext_).substr(0, 24);
  ASSERT_OK_AND_ASSIGN(DerivedKeys derived,
                       Derive(key_, aead_, salt, kContext));
  ASSERT_OK_AND_ASSIGN(
      ChunkCipher cipher,
      ChunkCipher::Create(derived.aead_key, derived.base_nonce));
  for (absl::string_view extra : {absl::string_view(""), absl::string_view("x"),
                                  absl::string_view("more data")}) {
    std::string ct = ciphertext_;
    ASSERT_OK(cipher.SealChunk(chunk_count(), extra, &ct));
    SCOPED_TRACE(absl::StrCat("extra chunk of ", extra.size(), " bytes"));
    ExpectRejected(ct);
  }
}

TEST_P(ChunkedSweepTest, WrongContextFails) {
  for (absl::string_view context : {absl::string_view(""),
                                    absl::string_view("\x05"
                                                      "alice"
                                                      "\x08"
                                                      "photos/1"
                                                      "\x01"
                                                      "4"),
                                    absl::string_view("\x05"
                                                      "alice"
                                                      "\x08"
                                                      "photos/1"
                                                      "\x01"
                                                      "3\0",
                                                      18)}) {
    ::residency::crypto::ExpectRejected(key_, context, ciphertext_, aead_, "");
  }
}

TEST_P(ChunkedSweepTest, WrongKeyFails) {
  ::residency::crypto::ExpectRejected(TestKey(aead_, 'w'), kContext,
                                      ciphertext_, aead_, "");
  SecretBytes one_bit_off = key_.Clone();
  one_bit_off.mutable_data()[one_bit_off.size() - 1] ^= 1;
  ::residency::crypto::ExpectRejected(one_bit_off, kContext, ciphertext_, aead_,
                                      "");
}

TEST_P(ChunkedSweepTest, RangeDecryptionReturnsTheSlice) {
  ASSERT_OK_AND_ASSIGN(
      ChunkedRangeDecryptor reader,
      ChunkedRangeDecryptor::Create(key_, kContext, ciphertext_.substr(0, 56),
                                    ciphertext_.size(), aead_));
  EXPECT_EQ(reader.plaintext_length(), size_);

  const uint64_t size = size_;
  const std::vector<std::pair<uint64_t, uint64_t>> ranges = {
      {0, 0},
      {0, 1},
      {0, size},
      {0, kMax64},
      {1, kMax64},
      {size / 2, 1},
      {16383, 1},
      {16383, 2},
      {16384, 1},
      {16384, 16384},
      {16380, 40000},
      {100, 16384 * 3},
      {size - std::min<uint64_t>(size, 1), 1},
      {size, 0},
      {size, 10},
      {size + 5, 10},
      {kMax64 - 1, 5},  // offset + length overflows
      {3, kMax64 - 1}};
  for (const auto& [offset, length] : ranges) {
    SCOPED_TRACE(absl::StrCat("range offset ", offset, " length ", length));
    const uint64_t begin = std::min(offset, size);
    const uint64_t end = length > size - begin ? size : begin + length;
    const absl::string_view expected =
        absl::string_view(plaintext_).substr(begin, end - begin);

    const ChunkedRangeDecryptor::ChunkSpan span =
        reader.CiphertextSpan(offset, length);
    // The contract: the chunks holding plaintext of the range; a range that
    // reaches the end (also one starting at or past it, and any range of an
    // empty message) runs to the final chunk, whose authentication proves
    // where the message ends; an empty range before the end takes no chunk.
    const bool reaches_end = offset >= size || length >= size - offset;
    if (!reaches_end && length == 0) {
      EXPECT_EQ(span.chunk_count, 0u);
      EXPECT_EQ(span.length, 0u);
    } else {
      const uint64_t first = begin / 16384;
      const uint64_t last = reaches_end ? size / 16384 : (end - 1) / 16384;
      EXPECT_EQ(span.first_chunk, first);
      EXPECT_EQ(span.chunk_count, last - first + 1);
      EXPECT_EQ(span.offset, 56 + first * 16400);
      EXPECT_EQ(span.length, ChunkOffset(last) +
                                 SealedChunkLength(size_, last) -
                                 ChunkOffset(first));
    }
    absl::string_view sealed;
    if (span.chunk_count > 0) {
      ASSERT_LE(span.offset + span.length, ciphertext_.size());
      sealed = absl::string_view(ciphertext_).substr(span.offset, span.length);
    }
    ASSERT_OK_AND_ASSIGN(std::string got,
                         reader.DecryptRange(offset, length, sealed));
    EXPECT_TRUE(SameBytes(got, expected));
  }
}

TEST_P(ChunkedSweepTest, DecryptChunkReturnsEachChunk) {
  ASSERT_OK_AND_ASSIGN(
      ChunkedRangeDecryptor reader,
      ChunkedRangeDecryptor::Create(key_, kContext, ciphertext_.substr(0, 56),
                                    ciphertext_.size(), aead_));
  for (size_t k = 0; k < chunk_count(); ++k) {
    ASSERT_OK_AND_ASSIGN(std::string chunk,
                         reader.DecryptChunk(k, SealedChunk(k)));
    EXPECT_TRUE(SameBytes(chunk, ChunkPlaintext(k))) << "chunk " << k;
  }
  EXPECT_FALSE(reader.DecryptChunk(chunk_count(), "").ok())
      << "a chunk past the final one";
}

TEST_P(ChunkedSweepTest, TamperedChunkInRangeFails) {
  ASSERT_OK_AND_ASSIGN(
      ChunkedRangeDecryptor reader,
      ChunkedRangeDecryptor::Create(key_, kContext, ciphertext_.substr(0, 56),
                                    ciphertext_.size(), aead_));
  const ChunkedRangeDecryptor::ChunkSpan span =
      reader.CiphertextSpan(0, kMax64);
  const std::string sealed = ciphertext_.substr(span.offset, span.length);
  ASSERT_EQ(sealed.size(), ciphertext_.size() - 56);
  for (size_t pos : {size_t{0}, sealed.size() / 2, sealed.size() - 1}) {
    EXPECT_THAT(reader.DecryptRange(0, kMax64, FlipBit(sealed, pos, 2)),
                StatusIs(kDataLoss))
        << "flipped byte " << pos;
  }
  const size_t last = chunk_count() - 1;
  EXPECT_THAT(
      reader.DecryptChunk(last, FlipBit(std::string(SealedChunk(last)), 0, 1)),
      StatusIs(kDataLoss));
}

TEST_P(ChunkedSweepTest, RangeReadToTheEndFailsIfTheFinalChunkIsForged) {
  // The ciphertext length comes from the storage node, so nothing but the
  // final chunk vouches for it. A read that reaches the end of the message
  // must authenticate that chunk, also when it is the empty terminator of a
  // message of whole chunks; otherwise a node that drops the tail of an
  // object (and reports a shorter length) or forges the terminator goes
  // unnoticed by range reads (for an empty message: a node that reports any
  // object as empty). Wycheproof tcId 14 of both chunked files is this case.
  const std::string forged = FlipBit(ciphertext_, ciphertext_.size() - 1, 4);
  ASSERT_OK_AND_ASSIGN(
      ChunkedRangeDecryptor reader,
      ChunkedRangeDecryptor::Create(key_, kContext, forged.substr(0, 56),
                                    forged.size(), aead_));
  std::vector<std::pair<uint64_t, uint64_t>> ranges = {
      {0, kMax64}, {size_, 0}, {size_, 10}, {size_ + 5, 1}, {kMax64, kMax64}};
  if (size_ > 0) {
    ranges.insert(ranges.end(), {{0, size_}, {size_ - 1, 1}, {0, 0}});
  }
  for (const auto& [offset, length] : ranges) {
    const ChunkedRangeDecryptor::ChunkSpan span =
        reader.CiphertextSpan(offset, length);
    if (size_ > 0 && offset == 0 && length == 0) {
      // An empty range before the end reads nothing, so cannot notice.
      EXPECT_EQ(span.chunk_count, 0u);
      continue;
    }
    ASSERT_LE(span.offset + span.length, forged.size());
    EXPECT_THAT(reader.DecryptRange(
                    offset, length,
                    absl::string_view(forged).substr(span.offset, span.length)),
                StatusIs(kDataLoss))
        << "range " << offset << "+" << length << " read " << span.chunk_count
        << " chunk(s) from chunk " << span.first_chunk << " of "
        << chunk_count();
  }
}

TEST_P(ChunkedSweepTest, RangeWithSealedBytesOfWrongSizeIsInvalidArgument) {
  ASSERT_OK_AND_ASSIGN(
      ChunkedRangeDecryptor reader,
      ChunkedRangeDecryptor::Create(key_, kContext, ciphertext_.substr(0, 56),
                                    ciphertext_.size(), aead_));
  if (size_ > 0) {
    const uint64_t offset = size_ / 3;
    const uint64_t length = size_ / 2 + 1;
    const ChunkedRangeDecryptor::ChunkSpan span =
        reader.CiphertextSpan(offset, length);
    ASSERT_GT(span.chunk_count, 0u);
    const std::string sealed = ciphertext_.substr(span.offset, span.length);
    EXPECT_THAT(reader.DecryptRange(offset, length, sealed + 'x'),
                StatusIs(kInvalidArgument));
    EXPECT_THAT(reader.DecryptRange(offset, length,
                                    sealed.substr(0, sealed.size() - 1)),
                StatusIs(kInvalidArgument));
    EXPECT_THAT(reader.DecryptRange(offset, length, ""),
                StatusIs(kInvalidArgument));
    ASSERT_OK_AND_ASSIGN(std::string pt,
                         reader.DecryptRange(offset, length, sealed));
    EXPECT_EQ(pt.size(), std::min<uint64_t>(length, size_ - offset));
  }
  // One byte is neither no chunk (an empty range before the end) nor a
  // final chunk (16 bytes or more).
  EXPECT_THAT(reader.DecryptRange(0, 0, "x"), StatusIs(kInvalidArgument));
  EXPECT_THAT(reader.DecryptRange(size_, 10, "x"), StatusIs(kInvalidArgument));
}

TEST_P(ChunkedSweepTest, RangeDecryptorChecksTheHeader) {
  const std::string header = ciphertext_.substr(0, 56);
  const uint64_t length = ciphertext_.size();
  EXPECT_THAT(ChunkedRangeDecryptor::Create(key_, kContext, FlipBit(header, 0),
                                            length, aead_),
              StatusIs(kDataLoss));
  EXPECT_THAT(ChunkedRangeDecryptor::Create(key_, kContext, FlipBit(header, 55),
                                            length, aead_),
              StatusIs(kDataLoss));
  EXPECT_THAT(ChunkedRangeDecryptor::Create(key_, "other context", header,
                                            length, aead_),
              StatusIs(kDataLoss));
  EXPECT_THAT(ChunkedRangeDecryptor::Create(TestKey(aead_, 'w'), kContext,
                                            header, length, aead_),
              StatusIs(kDataLoss));
  EXPECT_THAT(ChunkedRangeDecryptor::Create(
                  key_, kContext, header.substr(0, 55), length, aead_),
              StatusIs(kInvalidArgument));
  EXPECT_THAT(ChunkedRangeDecryptor::Create(key_, kContext, header + 'x',
                                            length, aead_),
              StatusIs(kInvalidArgument));
}

TEST_P(ChunkedSweepTest, RangeDecryptorRejectsImpossibleLengths) {
  const std::string header = ciphertext_.substr(0, 56);
  for (uint64_t length :
       {uint64_t{0}, uint64_t{56}, uint64_t{56 + 15}, uint64_t{56 + 16400},
        ChunkOffset(chunk_count()) + 0, ChunkOffset(chunk_count()) + 15}) {
    EXPECT_THAT(
        ChunkedRangeDecryptor::Create(key_, kContext, header, length, aead_),
        StatusIs(kInvalidArgument))
        << "ciphertext length " << length;
  }
}

INSTANTIATE_TEST_SUITE_P(
    InstancesAndSizes, ChunkedSweepTest,
    ::testing::Combine(
        ::testing::Values(ChunkedAead::kAes256Gcm, ChunkedAead::kAes128Gcm),
        ::testing::Values(size_t{0}, size_t{1}, size_t{16383}, size_t{16384},
                          size_t{16385}, size_t{1048583})),
    [](const ::testing::TestParamInfo<SweepParam>& info) {
      return absl::StrCat(ParamName(std::get<0>(info.param)), "_",
                          std::get<1>(info.param));
    });

// ---------------------------------------------------------------------------
// Structural attacks on a message of three full chunks and a short one.

class ChunkedFormatTest : public ::testing::TestWithParam<ChunkedAead> {
 protected:
  static constexpr size_t kSize = 3 * 16384 + 1000;

  void SetUp() override {
    aead_ = GetParam();
    key_ = TestKey(aead_);
    plaintext_ = Plaintext(kSize);
    ASSERT_OK_AND_ASSIGN(ciphertext_,
                         ChunkedEncrypt(key_, kContext, plaintext_, aead_));
    ASSERT_EQ(ciphertext_.size(), ChunkOffset(3) + 1016);
  }

  std::string Chunk(size_t k) const {
    return ciphertext_.substr(ChunkOffset(k), SealedChunkLength(kSize, k));
  }
  std::string Header() const { return ciphertext_.substr(0, 56); }

  // Every way into the format (three Creates, two one-shot helpers) refuses
  // this key/context pair with INVALID_ARGUMENT.
  void ExpectEveryEntryPointRejects(const SecretBytes& key,
                                    absl::string_view context) {
    EXPECT_THAT(ChunkedEncryptor::Create(key, context, aead_),
                StatusIs(kInvalidArgument));
    EXPECT_THAT(ChunkedDecryptor::Create(key, context, aead_),
                StatusIs(kInvalidArgument));
    EXPECT_THAT(ChunkedRangeDecryptor::Create(key, context, Header(),
                                              ciphertext_.size(), aead_),
                StatusIs(kInvalidArgument));
    EXPECT_THAT(ChunkedEncrypt(key, context, "x", aead_),
                StatusIs(kInvalidArgument));
    EXPECT_THAT(ChunkedDecrypt(key, context, ciphertext_, aead_),
                StatusIs(kInvalidArgument));
  }
  void ExpectRejected(absl::string_view ct) const {
    ::residency::crypto::ExpectRejected(key_, kContext, ct, aead_, plaintext_);
  }

  ChunkedAead aead_;
  SecretBytes key_;
  std::string plaintext_;
  std::string ciphertext_;
};

TEST_P(ChunkedFormatTest, SwappedChunksFail) {
  ExpectRejected(Header() + Chunk(1) + Chunk(0) + Chunk(2) + Chunk(3));
  ExpectRejected(Header() + Chunk(0) + Chunk(2) + Chunk(1) + Chunk(3));
}

TEST_P(ChunkedFormatTest, DuplicatedChunkFails) {
  // In place of the next chunk, and inserted as an extra one.
  ExpectRejected(Header() + Chunk(0) + Chunk(0) + Chunk(2) + Chunk(3));
  ExpectRejected(Header() + Chunk(0) + Chunk(1) + Chunk(1) + Chunk(2) +
                 Chunk(3));
  ExpectRejected(ciphertext_ + Chunk(3));
}

TEST_P(ChunkedFormatTest, DroppedChunkFails) {
  ExpectRejected(Header() + Chunk(1) + Chunk(2) + Chunk(3));
  ExpectRejected(Header() + Chunk(0) + Chunk(2) + Chunk(3));
  ExpectRejected(Header() + Chunk(0) + Chunk(1) + Chunk(3));
  ExpectRejected(Header() + Chunk(0) + Chunk(1) + Chunk(2));  // final chunk
}

TEST_P(ChunkedFormatTest, DroppedEmptyFinalChunkFails) {
  // The classic truncation: a message of whole chunks loses its empty
  // terminator and every remaining chunk still authenticates.
  const std::string plaintext = Plaintext(2 * 16384);
  ASSERT_OK_AND_ASSIGN(std::string ct,
                       ChunkedEncrypt(key_, kContext, plaintext, aead_));
  ASSERT_EQ(ct.size(), ChunkOffset(2) + 16);
  ::residency::crypto::ExpectRejected(
      key_, kContext, absl::string_view(ct).substr(0, ChunkOffset(2)), aead_,
      plaintext);
  ::residency::crypto::ExpectRejected(
      key_, kContext, absl::string_view(ct).substr(0, ChunkOffset(1)), aead_,
      plaintext);
}

TEST_P(ChunkedFormatTest, ChunkFromAnotherMessageFails) {
  // Same key, context and plaintext; only the random salt differs.
  ASSERT_OK_AND_ASSIGN(std::string other,
                       ChunkedEncrypt(key_, kContext, plaintext_, aead_));
  ASSERT_NE(other.substr(0, 24), Header().substr(0, 24));
  const std::string other_chunk1 = other.substr(ChunkOffset(1), 16400);
  ExpectRejected(Header() + Chunk(0) + other_chunk1 + Chunk(2) + Chunk(3));
}

TEST_P(ChunkedFormatTest, HeaderOfAnotherMessageFails) {
  ASSERT_OK_AND_ASSIGN(std::string other,
                       ChunkedEncrypt(key_, kContext, plaintext_, aead_));
  ExpectRejected(other.substr(0, 56) + ciphertext_.substr(56));
}

TEST_P(ChunkedFormatTest, ShortChunkBeforeTheFinalOneFails) {
  // Correctly derived keys, but chunk 0 is short and an empty chunk 1
  // follows: the reader sees one final chunk that does not authenticate.
  ASSERT_OK_AND_ASSIGN(DerivedKeys derived,
                       Derive(key_, aead_, Header().substr(0, 24), kContext));
  ASSERT_OK_AND_ASSIGN(
      ChunkCipher cipher,
      ChunkCipher::Create(derived.aead_key, derived.base_nonce));
  std::string ct = Header();
  ASSERT_OK(cipher.SealChunk(0, plaintext_.substr(0, 100), &ct));
  ASSERT_OK(cipher.SealChunk(1, "", &ct));
  ExpectRejected(ct);
}

TEST_P(ChunkedFormatTest, FinalChunkSealedAtWrongIndexFails) {
  ASSERT_OK_AND_ASSIGN(DerivedKeys derived,
                       Derive(key_, aead_, Header().substr(0, 24), kContext));
  ASSERT_OK_AND_ASSIGN(
      ChunkCipher cipher,
      ChunkCipher::Create(derived.aead_key, derived.base_nonce));
  for (uint64_t index : {uint64_t{2}, uint64_t{4}, uint64_t{3} << 32}) {
    std::string ct = ciphertext_.substr(0, ChunkOffset(3));
    ASSERT_OK(cipher.SealChunk(index, plaintext_.substr(3 * 16384), &ct));
    SCOPED_TRACE(absl::StrCat("final chunk sealed as chunk ", index));
    ExpectRejected(ct);
  }
}

TEST_P(ChunkedFormatTest, ContextIsBound) {
  ASSERT_OK_AND_ASSIGN(std::string ct,
                       ChunkedEncrypt(key_, "a", plaintext_, aead_));
  ASSERT_OK_AND_ASSIGN(std::string pt, ChunkedDecrypt(key_, "a", ct, aead_));
  EXPECT_TRUE(SameBytes(pt, plaintext_));
  for (absl::string_view wrong :
       {absl::string_view(""), absl::string_view("b"), absl::string_view("A"),
        absl::string_view("a\0", 2), absl::string_view("aa")}) {
    ::residency::crypto::ExpectRejected(key_, wrong, ct, aead_, "");
    EXPECT_THAT(ChunkedDecrypt(key_, wrong, ct, aead_), StatusIs(kDataLoss));
  }
}

TEST_P(ChunkedFormatTest, LongContextRoundTrips) {
  // The context is an encoding of owner, object id and version; object ids
  // are not short by contract. Binding must hold at any length.
  for (size_t size : {size_t{1000}, size_t{1100}, kMaxChunkedContextSize}) {
    SCOPED_TRACE(absl::StrCat("context of ", size, " bytes"));
    std::string context(size, 'c');
    ASSERT_OK_AND_ASSIGN(std::string ct,
                         ChunkedEncrypt(key_, context, plaintext_, aead_));
    ASSERT_OK_AND_ASSIGN(std::string pt,
                         ChunkedDecrypt(key_, context, ct, aead_));
    EXPECT_TRUE(SameBytes(pt, plaintext_));
    context.back() = 'd';
    EXPECT_THAT(ChunkedDecrypt(key_, context, ct, aead_), StatusIs(kDataLoss));
  }
}

TEST_P(ChunkedFormatTest, HeaderFailureReleasesNothing) {
  // Wrong key, fed one byte at a time: the commitment check must fail before
  // any chunk is opened.
  ASSERT_OK_AND_ASSIGN(
      ChunkedDecryptor decryptor,
      ChunkedDecryptor::Create(TestKey(aead_, 'w'), kContext, aead_));
  std::string out;
  absl::Status status;
  size_t fed = 0;
  for (; fed < ciphertext_.size() && status.ok(); ++fed) {
    status =
        decryptor.Update(absl::string_view(ciphertext_).substr(fed, 1), &out);
    ASSERT_TRUE(out.empty()) << "released plaintext after " << fed + 1;
  }
  if (status.ok()) status = decryptor.Finish(&out);
  EXPECT_THAT(status, StatusIs(kDataLoss));
  EXPECT_TRUE(out.empty());
  // It fails no later than when the first chunk could be opened.
  EXPECT_LE(fed, ChunkOffset(1) + 1) << "commitment checked too late";
}

TEST_P(ChunkedFormatTest, FailedDecryptorKeepsFailing) {
  const std::string tampered = FlipBit(ciphertext_, ChunkOffset(1) + 10);
  ASSERT_OK_AND_ASSIGN(ChunkedDecryptor decryptor,
                       ChunkedDecryptor::Create(key_, kContext, aead_));
  std::string out;
  absl::Status first = decryptor.Update(tampered, &out);
  if (first.ok()) first = decryptor.Finish(&out);
  ASSERT_THAT(first, StatusIs(kDataLoss));
  const std::string released = out;
  EXPECT_TRUE(IsPrefixOf(released, plaintext_));

  // "After a DATA_LOSS a decryptor returns that same error to every later
  // call": same code and same message, and never more output.
  for (int round = 0; round < 3; ++round) {
    const absl::Status update =
        decryptor.Update(ciphertext_.substr(ChunkOffset(2)), &out);
    EXPECT_EQ(update, first);
    const absl::Status finish = decryptor.Finish(&out);
    EXPECT_EQ(finish, first);
    std::vector<uint8_t> buffer(4 * 16384);
    EXPECT_EQ(decryptor.Update(Chunk(2), absl::MakeSpan(buffer)).status(),
              first);
    EXPECT_EQ(decryptor.Finish(absl::MakeSpan(buffer)).status(), first);
    EXPECT_EQ(out.size(), released.size());
  }
}

TEST_P(ChunkedFormatTest, PlaintextReleasedBeforeFailureIsAPrefix) {
  // Chunk 2 is forged: chunks 0 and 1 authenticate and may be released.
  const std::string tampered = FlipBit(ciphertext_, ChunkOffset(3) - 1);
  StreamResult stream =
      StreamDecrypt(key_, kContext, tampered, /*piece=*/1000, aead_);
  EXPECT_THAT(stream.status, StatusIs(kDataLoss));
  EXPECT_TRUE(IsPrefixOf(stream.released, plaintext_));
  // "each full chunk's plaintext is released as soon as it authenticates":
  // both good chunks are out by the time chunk 2 fails.
  EXPECT_EQ(stream.released.size(), 2u * 16384);
}

TEST_P(ChunkedFormatTest, DecryptorUseAfterFinishFails) {
  ASSERT_OK_AND_ASSIGN(ChunkedDecryptor decryptor,
                       ChunkedDecryptor::Create(key_, kContext, aead_));
  std::string out;
  ASSERT_OK(decryptor.Update(ciphertext_, &out));
  ASSERT_OK(decryptor.Finish(&out));
  ASSERT_TRUE(SameBytes(out, plaintext_));
  EXPECT_THAT(decryptor.Update("x", &out), StatusIs(kFailedPrecondition));
  EXPECT_THAT(decryptor.Update(Chunk(0), &out), StatusIs(kFailedPrecondition));
  EXPECT_THAT(decryptor.Finish(&out), StatusIs(kFailedPrecondition));
  EXPECT_EQ(out.size(), plaintext_.size());
}

TEST_P(ChunkedFormatTest, EncryptorUseAfterFinishFails) {
  ASSERT_OK_AND_ASSIGN(ChunkedEncryptor encryptor,
                       ChunkedEncryptor::Create(key_, kContext, aead_));
  std::string out = encryptor.header();
  ASSERT_OK(encryptor.Update("hello", &out));
  ASSERT_OK(encryptor.Finish(&out));
  const std::string finished = out;
  EXPECT_THAT(encryptor.Update("more", &out), StatusIs(kFailedPrecondition));
  EXPECT_THAT(encryptor.Finish(&out), StatusIs(kFailedPrecondition));
  EXPECT_EQ(out, finished);
  ASSERT_OK_AND_ASSIGN(std::string pt,
                       ChunkedDecrypt(key_, kContext, finished, aead_));
  EXPECT_EQ(pt, "hello");
}

TEST_P(ChunkedFormatTest, SpanEncryptorUseAfterFinishFails) {
  ASSERT_OK_AND_ASSIGN(ChunkedEncryptor encryptor,
                       ChunkedEncryptor::Create(key_, kContext, aead_));
  std::vector<uint8_t> buffer(2 * 16400);
  ASSERT_OK_AND_ASSIGN(size_t written,
                       encryptor.Finish(absl::MakeSpan(buffer)));
  EXPECT_EQ(written, 16u);
  EXPECT_THAT(encryptor.Update("more", absl::MakeSpan(buffer)),
              StatusIs(kFailedPrecondition));
  EXPECT_THAT(encryptor.Finish(absl::MakeSpan(buffer)),
              StatusIs(kFailedPrecondition));
}

TEST_P(ChunkedFormatTest, EncryptorFailureIsSticky) {
  // Each order: the first failure after Finish is returned, code and
  // message, by every later call, whichever it is and through either API.
  for (bool update_first : {true, false}) {
    SCOPED_TRACE(update_first ? "Update after Finish first"
                              : "Finish after Finish first");
    ASSERT_OK_AND_ASSIGN(ChunkedEncryptor encryptor,
                         ChunkedEncryptor::Create(key_, kContext, aead_));
    std::string out = encryptor.header();
    ASSERT_OK(encryptor.Update("hello", &out));
    ASSERT_OK(encryptor.Finish(&out));
    const std::string finished = out;
    const absl::Status first =
        update_first ? encryptor.Update("more", &out) : encryptor.Finish(&out);
    ASSERT_THAT(first, StatusIs(kFailedPrecondition));
    std::vector<uint8_t> buffer(2 * 16400);
    for (int round = 0; round < 2; ++round) {
      EXPECT_EQ(encryptor.Finish(&out), first);
      EXPECT_EQ(encryptor.Update("more", &out), first);
      EXPECT_EQ(encryptor.Update(plaintext_.substr(0, 16384), &out), first);
      EXPECT_EQ(encryptor.Update("", &out), first);
      EXPECT_EQ(encryptor.Update("x", absl::MakeSpan(buffer)).status(), first);
      EXPECT_EQ(encryptor.Finish(absl::MakeSpan(buffer)).status(), first);
    }
    EXPECT_EQ(out, finished);
  }
}

TEST_P(ChunkedFormatTest, SpanOutputTooSmallLeavesTheEncryptorUsable) {
  // "Output buffer too small" is refused before any state changes: not
  // sticky, nothing counted, and a retry with a big enough buffer produces a
  // ciphertext that decrypts to the whole message.
  ASSERT_OK_AND_ASSIGN(ChunkedEncryptor encryptor,
                       ChunkedEncryptor::Create(key_, kContext, aead_));
  std::string ct = encryptor.header();
  const absl::string_view pt(plaintext_);
  const auto append = [&ct](const std::vector<uint8_t>& buffer, size_t n) {
    ct.append(reinterpret_cast<const char*>(buffer.data()), n);
  };

  // Update: first a span one byte short, then a right-sized one.
  const absl::string_view first_part = pt.substr(0, 2 * 16384 + 7);
  const size_t needed = encryptor.UpdateOutputSize(first_part.size());
  ASSERT_EQ(needed, 2u * 16400);
  std::vector<uint8_t> small(needed - 1, 0xaa);
  EXPECT_THAT(encryptor.Update(first_part, absl::MakeSpan(small)),
              StatusIs(kInvalidArgument));
  EXPECT_EQ(encryptor.plaintext_length(), 0u);
  EXPECT_EQ(encryptor.UpdateOutputSize(first_part.size()), needed);
  std::vector<uint8_t> buffer(needed);
  ASSERT_OK_AND_ASSIGN(size_t written,
                       encryptor.Update(first_part, absl::MakeSpan(buffer)));
  ASSERT_EQ(written, needed);
  append(buffer, written);
  EXPECT_EQ(encryptor.plaintext_length(), first_part.size());

  // Again with an empty span, then the rest of the message.
  const absl::string_view rest = pt.substr(first_part.size());
  EXPECT_THAT(encryptor.Update(rest, absl::Span<uint8_t>()),
              StatusIs(kInvalidArgument));
  ASSERT_OK(encryptor.Update(rest, &ct));

  // Finish: a span one byte short, then a right-sized one.
  const size_t final_size = encryptor.FinishOutputSize();
  ASSERT_EQ(final_size, kSize % 16384 + 16);
  small.assign(final_size - 1, 0xaa);
  EXPECT_THAT(encryptor.Finish(absl::MakeSpan(small)),
              StatusIs(kInvalidArgument));
  EXPECT_EQ(encryptor.FinishOutputSize(), final_size);
  buffer.assign(final_size, 0);
  ASSERT_OK_AND_ASSIGN(written, encryptor.Finish(absl::MakeSpan(buffer)));
  ASSERT_EQ(written, final_size);
  append(buffer, written);

  EXPECT_EQ(ct.size(), ciphertext_.size());
  ASSERT_OK_AND_ASSIGN(std::string decrypted,
                       ChunkedDecrypt(key_, kContext, ct, aead_));
  EXPECT_TRUE(SameBytes(decrypted, plaintext_));
}

TEST_P(ChunkedFormatTest, ContextAtTheLimitRoundTripsThroughEveryClass) {
  const std::string context(kMaxChunkedContextSize, '\x07');
  ASSERT_OK_AND_ASSIGN(ChunkedEncryptor encryptor,
                       ChunkedEncryptor::Create(key_, context, aead_));
  std::string ct = encryptor.header();
  ASSERT_OK(encryptor.Update(plaintext_, &ct));
  ASSERT_OK(encryptor.Finish(&ct));

  ASSERT_OK_AND_ASSIGN(ChunkedDecryptor decryptor,
                       ChunkedDecryptor::Create(key_, context, aead_));
  std::string pt;
  ASSERT_OK(decryptor.Update(ct, &pt));
  ASSERT_OK(decryptor.Finish(&pt));
  EXPECT_TRUE(SameBytes(pt, plaintext_));

  ASSERT_OK_AND_ASSIGN(ChunkedRangeDecryptor reader,
                       ChunkedRangeDecryptor::Create(
                           key_, context, ct.substr(0, 56), ct.size(), aead_));
  ASSERT_OK_AND_ASSIGN(std::string all,
                       reader.DecryptRange(0, kSize, ct.substr(56)));
  EXPECT_TRUE(SameBytes(all, plaintext_));

  // Still bound: one changed byte at the end of the context fails.
  std::string other = context;
  other.back() = '\x08';
  EXPECT_THAT(ChunkedDecrypt(key_, other, ct, aead_), StatusIs(kDataLoss));
}

TEST_P(ChunkedFormatTest, ContextAboveTheLimitIsInvalidArgument) {
  for (size_t size : {kMaxChunkedContextSize + 1, kMaxChunkedContextSize + 16,
                      size_t{1} << 20}) {
    SCOPED_TRACE(absl::StrCat("context of ", size, " bytes"));
    ExpectEveryEntryPointRejects(key_, std::string(size, '\x07'));
  }
}

TEST_P(ChunkedFormatTest, EncryptorHeaderIs56BytesAndSaltsDiffer) {
  ASSERT_OK_AND_ASSIGN(ChunkedEncryptor a,
                       ChunkedEncryptor::Create(key_, kContext, aead_));
  ASSERT_OK_AND_ASSIGN(ChunkedEncryptor b,
                       ChunkedEncryptor::Create(key_, kContext, aead_));
  ASSERT_EQ(a.header().size(), kChunkedHeaderSize);
  ASSERT_EQ(b.header().size(), kChunkedHeaderSize);
  EXPECT_NE(a.header().substr(0, 24), b.header().substr(0, 24));
  EXPECT_NE(a.header().substr(24), b.header().substr(24));
  EXPECT_EQ(a.plaintext_length(), 0u);
  // The header is the commitment for that salt.
  ASSERT_OK_AND_ASSIGN(DerivedKeys derived,
                       Derive(key_, aead_, a.header().substr(0, 24), kContext));
  EXPECT_EQ(a.header().substr(24), derived.commitment);
}

// Salts come from a per-thread batch (crypto/chunked.cc); across several
// batches, across threads and across a fork, none repeats.
std::string NextSalt(const SecretBytes& key, ChunkedAead aead) {
  absl::StatusOr<ChunkedEncryptor> enc =
      ChunkedEncryptor::Create(key, kContext, aead);
  return enc.ok() ? enc->header().substr(0, kChunkedSaltSize) : "";
}

TEST_P(ChunkedFormatTest, SaltsDoNotRepeatAcrossBatches) {
  absl::flat_hash_set<std::string> seen;
  for (int i = 0; i < 200; ++i) {
    const std::string salt = NextSalt(key_, aead_);
    ASSERT_EQ(salt.size(), kChunkedSaltSize);
    EXPECT_TRUE(seen.insert(salt).second) << "salt " << i << " repeated";
  }
}

TEST_P(ChunkedFormatTest, ThreadsDrawDistinctSalts) {
  constexpr int kThreads = 4, kEach = 50;
  std::vector<std::vector<std::string>> salts(kThreads);
  std::vector<std::thread> threads;
  for (int t = 0; t < kThreads; ++t) {
    threads.emplace_back([&, t] {
      for (int i = 0; i < kEach; ++i) salts[t].push_back(NextSalt(key_, aead_));
    });
  }
  for (std::thread& t : threads) t.join();
  absl::flat_hash_set<std::string> seen;
  for (const std::vector<std::string>& each : salts) {
    for (const std::string& salt : each) {
      ASSERT_EQ(salt.size(), kChunkedSaltSize);
      EXPECT_TRUE(seen.insert(salt).second) << "a salt repeated across threads";
    }
  }
}

// A child forked while its parent holds salts it has not used yet must not
// hand out those same salts. Two forks, one salt apart: whatever position
// earlier tests left the thread's batch in, at most one of them can fall
// exactly at the end of a batch, so at least one fork leaves salts behind.
TEST_P(ChunkedFormatTest, ForkedChildDoesNotReuseItsParentsSalts) {
  constexpr int kDraws = 8;
  for (int round = 0; round < 2; ++round) {
    SCOPED_TRACE(absl::StrCat("fork ", round + 1));
    NextSalt(key_, aead_);
    int pipe_fds[2];
    ASSERT_EQ(pipe(pipe_fds), 0);
    const pid_t child = fork();
    ASSERT_GE(child, 0);
    if (child == 0) {
      close(pipe_fds[0]);
      std::string salts;
      for (int i = 0; i < kDraws; ++i) salts += NextSalt(key_, aead_);
      const bool ok = write(pipe_fds[1], salts.data(), salts.size()) ==
                      static_cast<ssize_t>(salts.size());
      _exit(ok ? 0 : 1);
    }
    close(pipe_fds[1]);
    std::string from_child(kDraws * kChunkedSaltSize, '\0');
    size_t got = 0;
    while (got < from_child.size()) {
      const ssize_t n =
          read(pipe_fds[0], from_child.data() + got, from_child.size() - got);
      if (n <= 0) break;
      got += static_cast<size_t>(n);
    }
    close(pipe_fds[0]);
    int status = 0;
    ASSERT_EQ(waitpid(child, &status, 0), child);
    ASSERT_TRUE(WIFEXITED(status) && WEXITSTATUS(status) == 0);
    ASSERT_EQ(got, from_child.size());
    absl::flat_hash_set<std::string> seen;
    for (size_t i = 0; i < kDraws; ++i) {
      seen.insert(from_child.substr(i * kChunkedSaltSize, kChunkedSaltSize));
    }
    for (int i = 0; i < kDraws; ++i) {
      EXPECT_FALSE(seen.contains(NextSalt(key_, aead_)))
          << "parent and child drew the same salt";
    }
  }
}

TEST_P(ChunkedFormatTest, TwoEncryptionsOfTheSameMessageDiffer) {
  ASSERT_OK_AND_ASSIGN(std::string again,
                       ChunkedEncrypt(key_, kContext, plaintext_, aead_));
  EXPECT_EQ(again.size(), ciphertext_.size());
  EXPECT_NE(again.substr(0, 24), ciphertext_.substr(0, 24));
  EXPECT_NE(again.substr(56, 64), ciphertext_.substr(56, 64));
  ASSERT_OK_AND_ASSIGN(std::string pt,
                       ChunkedDecrypt(key_, kContext, again, aead_));
  EXPECT_TRUE(SameBytes(pt, plaintext_));
}

TEST_P(ChunkedFormatTest, WrongKeySizeIsInvalidArgument) {
  const size_t right = ChunkedKeySize(aead_);
  const size_t other = right == 32 ? 16 : 32;
  for (size_t size : {size_t{0}, right - 1, right + 1, other, size_t{64}}) {
    SCOPED_TRACE(absl::StrCat("key size ", size));
    ExpectEveryEntryPointRejects(SecretBytes::CopyFrom(std::string(size, 'k')),
                                 kContext);
  }
}

TEST_P(ChunkedFormatTest, RangeWithChunkFromAnotherPositionFails) {
  ASSERT_OK_AND_ASSIGN(
      ChunkedRangeDecryptor reader,
      ChunkedRangeDecryptor::Create(key_, kContext, Header(),
                                    ciphertext_.size(), aead_));
  EXPECT_THAT(reader.DecryptChunk(1, Chunk(2)), StatusIs(kDataLoss));
  EXPECT_THAT(reader.DecryptChunk(0, Chunk(1)), StatusIs(kDataLoss));
  EXPECT_THAT(reader.DecryptRange(16384, 16384, Chunk(2)), StatusIs(kDataLoss));
  EXPECT_THAT(reader.DecryptRange(0, 2 * 16384, Chunk(1) + Chunk(0)),
              StatusIs(kDataLoss));
  // The right chunks at the right places still decrypt.
  ASSERT_OK_AND_ASSIGN(std::string pt,
                       reader.DecryptRange(16384, 16384, Chunk(1)));
  EXPECT_TRUE(
      SameBytes(pt, absl::string_view(plaintext_).substr(16384, 16384)));
}

TEST_P(ChunkedFormatTest, RangeRejectsFullChunkAsFinalChunk) {
  // Claiming a shorter message does not turn a full chunk into a final one.
  ASSERT_OK_AND_ASSIGN(
      ChunkedRangeDecryptor reader,
      ChunkedRangeDecryptor::Create(key_, kContext, Header(),
                                    ChunkOffset(1) + 16, aead_));
  EXPECT_EQ(reader.plaintext_length(), 16384u);
  // Chunk 1 of this claimed message is its 16-byte final chunk: a full
  // sealed chunk is refused by its size, before any authentication.
  EXPECT_THAT(reader.DecryptChunk(1, Chunk(1)), StatusIs(kInvalidArgument));
  // Cut to the final chunk's size, it reaches authentication and fails
  // there: a full chunk's bytes do not open as a final chunk.
  EXPECT_THAT(reader.DecryptChunk(1, Chunk(1).substr(0, 16)),
              StatusIs(kDataLoss));
  EXPECT_THAT(reader.DecryptChunk(1, Chunk(1).substr(16384, 16)),
              StatusIs(kDataLoss));
  EXPECT_THAT(reader.DecryptRange(0, 16384, Chunk(0) + Chunk(1).substr(0, 16)),
              StatusIs(kDataLoss));
  // The claimed message has no chunk 2: refused by its index.
  EXPECT_THAT(reader.DecryptChunk(2, Chunk(2)), StatusIs(kInvalidArgument));
  // Chunk 0 is a full chunk in the claimed message too, and still opens.
  ASSERT_OK_AND_ASSIGN(std::string pt, reader.DecryptChunk(0, Chunk(0)));
  EXPECT_TRUE(SameBytes(pt, absl::string_view(plaintext_).substr(0, 16384)));
}

TEST_P(ChunkedFormatTest, SpanEncryptorWritesExactlyTheAnnouncedSizes) {
  ASSERT_OK_AND_ASSIGN(ChunkedEncryptor encryptor,
                       ChunkedEncryptor::Create(key_, kContext, aead_));
  std::string ct = encryptor.header();
  std::vector<uint8_t> buffer;
  for (size_t i = 0; i < kSize; i += 5000) {
    const absl::string_view part =
        absl::string_view(plaintext_).substr(i, 5000);
    const size_t announced = encryptor.UpdateOutputSize(part.size());
    buffer.assign(announced + 7, 0xee);  // room to spare: must not be used
    ASSERT_OK_AND_ASSIGN(size_t written,
                         encryptor.Update(part, absl::MakeSpan(buffer)));
    ASSERT_EQ(written, announced);
    EXPECT_EQ(buffer[announced], 0xee) << "wrote past the announced size";
    ct.append(reinterpret_cast<const char*>(buffer.data()), written);
  }
  const size_t announced = encryptor.FinishOutputSize();
  EXPECT_EQ(announced, kSize % 16384 + 16);
  buffer.assign(announced, 0);
  ASSERT_OK_AND_ASSIGN(size_t written,
                       encryptor.Finish(absl::MakeSpan(buffer)));
  ASSERT_EQ(written, announced);
  ct.append(reinterpret_cast<const char*>(buffer.data()), written);
  ASSERT_OK_AND_ASSIGN(std::string pt,
                       ChunkedDecrypt(key_, kContext, ct, aead_));
  EXPECT_TRUE(SameBytes(pt, plaintext_));
}

TEST_P(ChunkedFormatTest, SpanDecryptorWritesExactlyTheAnnouncedSizes) {
  ASSERT_OK_AND_ASSIGN(ChunkedDecryptor decryptor,
                       ChunkedDecryptor::Create(key_, kContext, aead_));
  std::string pt;
  std::vector<uint8_t> buffer;
  for (size_t i = 0; i < ciphertext_.size(); i += 7001) {
    const absl::string_view part =
        absl::string_view(ciphertext_).substr(i, 7001);
    const size_t announced = decryptor.UpdateOutputSize(part.size());
    buffer.assign(announced, 0);
    ASSERT_OK_AND_ASSIGN(size_t written,
                         decryptor.Update(part, absl::MakeSpan(buffer)));
    ASSERT_EQ(written, announced);
    pt.append(reinterpret_cast<const char*>(buffer.data()), written);
    ASSERT_TRUE(IsPrefixOf(pt, plaintext_));
  }
  buffer.assign(decryptor.FinishOutputSize(), 0);
  EXPECT_EQ(buffer.size(), 1000u);
  ASSERT_OK_AND_ASSIGN(size_t written,
                       decryptor.Finish(absl::MakeSpan(buffer)));
  pt.append(reinterpret_cast<const char*>(buffer.data()), written);
  EXPECT_TRUE(SameBytes(pt, plaintext_));
}

TEST_P(ChunkedFormatTest, SpanOutputTooSmallIsRejected) {
  ASSERT_OK_AND_ASSIGN(ChunkedEncryptor encryptor,
                       ChunkedEncryptor::Create(key_, kContext, aead_));
  std::vector<uint8_t> small(16399);
  EXPECT_THAT(encryptor.Update(plaintext_, absl::MakeSpan(small)),
              StatusIs(kInvalidArgument));
  ASSERT_OK_AND_ASSIGN(ChunkedDecryptor decryptor,
                       ChunkedDecryptor::Create(key_, kContext, aead_));
  EXPECT_THAT(decryptor.Update(ciphertext_, absl::MakeSpan(small)),
              StatusIs(kInvalidArgument));
}

TEST_P(ChunkedFormatTest, SpanDecryptorFailureWipesWhatTheCallWrote) {
  // Chunk 0 authenticates and chunk 1 does not, in the same call: neither
  // plaintext may be left in the caller's buffer.
  const std::string tampered = FlipBit(ciphertext_, ChunkOffset(2) - 1);
  ASSERT_OK_AND_ASSIGN(ChunkedDecryptor decryptor,
                       ChunkedDecryptor::Create(key_, kContext, aead_));
  const size_t announced = decryptor.UpdateOutputSize(tampered.size());
  ASSERT_EQ(announced, 3u * 16384);
  std::vector<uint8_t> buffer(announced, 0xaa);
  EXPECT_THAT(decryptor.Update(tampered, absl::MakeSpan(buffer)),
              StatusIs(kDataLoss));
  const std::string written(reinterpret_cast<const char*>(buffer.data()),
                            2 * 16384);
  EXPECT_EQ(written.find(plaintext_.substr(0, 64)), std::string::npos)
      << "plaintext of chunk 0 left behind";
  EXPECT_TRUE(SameBytes(written, std::string(2 * 16384, '\0')));
}

TEST_P(ChunkedFormatTest, StringDecryptorFailureRemovesWhatTheCallAppended) {
  const std::string tampered = FlipBit(ciphertext_, ChunkOffset(2) - 1);
  ASSERT_OK_AND_ASSIGN(ChunkedDecryptor decryptor,
                       ChunkedDecryptor::Create(key_, kContext, aead_));
  std::string out = "earlier output";
  EXPECT_THAT(decryptor.Update(tampered, &out), StatusIs(kDataLoss));
  EXPECT_EQ(out, "earlier output");
}

INSTANTIATE_TEST_SUITE_P(Instances, ChunkedFormatTest,
                         ::testing::Values(ChunkedAead::kAes256Gcm,
                                           ChunkedAead::kAes128Gcm),
                         [](const ::testing::TestParamInfo<ChunkedAead>& info) {
                           return ParamName(info.param);
                         });

// ---------------------------------------------------------------------------
// internal::ChunkCipher, the raw mode.

class ChunkCipherTest : public ::testing::TestWithParam<size_t> {
 protected:
  std::string AeadKey() const { return std::string(GetParam(), 'K'); }
  static constexpr absl::string_view kBaseNonce =
      "\x01\x02\x03\x04\x05\x06\x07\x08\x09\x0a\x0b\x0c";
};

TEST_P(ChunkCipherTest, NonceIsBaseNonceXorBigEndianIndex) {
  ASSERT_OK_AND_ASSIGN(ChunkCipher cipher,
                       ChunkCipher::Create(AeadKey(), kBaseNonce));
  ASSERT_OK_AND_ASSIGN(
      AeadCipher aead,
      AeadCipher::Create(AeadCipher::Kind::kAesGcm, AeadKey()));
  const std::string plaintext = "chunk plaintext";
  for (uint64_t index : {uint64_t{0}, uint64_t{1}, uint64_t{255}, uint64_t{256},
                         uint64_t{65536}, (uint64_t{1} << 32) + 5, kMax64}) {
    std::array<uint8_t, 12> nonce;
    for (size_t i = 0; i < 12; ++i)
      nonce[i] = static_cast<uint8_t>(kBaseNonce[i]);
    for (size_t i = 0; i < 8; ++i) {
      nonce[11 - i] ^= static_cast<uint8_t>(index >> (8 * i));
    }
    std::string expected(plaintext.size() + 16, '\0');
    ASSERT_OK(aead.Seal(
        nonce, plaintext, "",
        absl::Span<uint8_t>(reinterpret_cast<uint8_t*>(expected.data()),
                            expected.size())));
    std::string sealed = "prefix";
    ASSERT_OK(cipher.SealChunk(index, plaintext, &sealed));
    EXPECT_EQ(sealed, "prefix" + expected) << "index " << index;

    std::string opened = "before";
    ASSERT_OK(cipher.OpenChunk(index, expected, &opened));
    EXPECT_EQ(opened, "before" + plaintext);
  }
}

TEST_P(ChunkCipherTest, OpenAtWrongIndexFailsAndLeavesOutputAlone) {
  ASSERT_OK_AND_ASSIGN(ChunkCipher cipher,
                       ChunkCipher::Create(AeadKey(), kBaseNonce));
  std::string sealed;
  ASSERT_OK(cipher.SealChunk(7, Plaintext(100), &sealed));
  for (uint64_t wrong : {uint64_t{6}, uint64_t{8}, uint64_t{7} << 32}) {
    std::string out = "unchanged";
    EXPECT_THAT(cipher.OpenChunk(wrong, sealed, &out), StatusIs(kDataLoss));
    EXPECT_EQ(out, "unchanged");
  }
  std::string out = "unchanged";
  EXPECT_THAT(cipher.OpenChunk(7, FlipBit(sealed, 99), &out),
              StatusIs(kDataLoss));
  EXPECT_EQ(out, "unchanged");
  ASSERT_OK(cipher.OpenChunk(7, sealed, &out));
  EXPECT_EQ(out, "unchanged" + Plaintext(100));
}

TEST_P(ChunkCipherTest, CreateRejectsBadSizes) {
  EXPECT_THAT(ChunkCipher::Create(AeadKey(), kBaseNonce.substr(0, 11)),
              StatusIs(kInvalidArgument));
  EXPECT_THAT(ChunkCipher::Create(AeadKey(), std::string(kBaseNonce) + "x"),
              StatusIs(kInvalidArgument));
  EXPECT_THAT(ChunkCipher::Create(AeadKey() + "x", kBaseNonce),
              StatusIs(kInvalidArgument));
  EXPECT_THAT(ChunkCipher::Create(std::string(24, 'K'), kBaseNonce),
              StatusIs(kInvalidArgument));
}

INSTANTIATE_TEST_SUITE_P(KeySizes, ChunkCipherTest,
                         ::testing::Values(size_t{16}, size_t{32}),
                         [](const ::testing::TestParamInfo<size_t>& info) {
                           return absl::StrCat("Aes", info.param * 8, "Gcm");
                         });

}  // namespace
}  // namespace residency::crypto
