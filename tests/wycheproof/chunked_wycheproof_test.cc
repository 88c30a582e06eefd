// Wycheproof C2SP chunked-encryption (Cobblestone) vectors against
// crypto/chunked.h, for both instances, and against the raw mode
// (internal::ChunkCipher) from each vector's aeadKey and baseNonce.
//
// How to apply the vectors: C2SP/wycheproof doc/c2sp_chunked_encryption.md,
// summarised in the notes of the vector files (HeaderFailure,
// PartialPlaintext, ValidFinalChunk, ...).

#include <algorithm>
#include <cstddef>
#include <cstdint>
#include <optional>
#include <ostream>
#include <string>
#include <utility>
#include <vector>

#include "absl/status/status.h"
#include "absl/strings/str_cat.h"
#include "absl/strings/str_join.h"
#include "absl/strings/string_view.h"
#include "crypto/chunked.h"
#include "crypto/hkdf.h"
#include "crypto/internal/chunk_cipher.h"
#include "crypto/secret_bytes.h"
#include "gtest/gtest.h"
#include "tests/status_matchers.h"
#include "tests/wycheproof/wycheproof_util.h"

namespace residency::wycheproof {
namespace {

using ::residency::crypto::ChunkedAead;
using ::residency::crypto::ChunkedDecrypt;
using ::residency::crypto::ChunkedDecryptor;
using ::residency::crypto::ChunkedEncryptor;
using ::residency::crypto::ChunkedRangeDecryptor;
using ::residency::crypto::HkdfExpand;
using ::residency::crypto::HkdfHash;
using ::residency::crypto::SecretBytes;
using ::residency::crypto::internal::ChunkCipher;
using ::residency::testing::StatusIs;

constexpr absl::StatusCode kDataLoss = absl::StatusCode::kDataLoss;
constexpr absl::StatusCode kInvalidArgument =
    absl::StatusCode::kInvalidArgument;

constexpr size_t kHeaderSize = 56;
constexpr size_t kChunk = 16384;
constexpr size_t kSealed = 16400;

bool IsPossibleLength(uint64_t length) {
  return length >= kHeaderSize && (length - kHeaderSize) % kSealed >= 16;
}
uint64_t PlaintextLengthOf(uint64_t ciphertext_length) {
  const uint64_t body = ciphertext_length - kHeaderSize;
  return body - 16 * (body / kSealed + 1);
}

struct ChunkedVector {
  int64_t tc_id = 0;
  std::string comment;
  bool valid = false;
  std::vector<std::string> flags;
  SecretBytes key;
  std::string ctx;
  std::string ct;  // inflated
  std::optional<std::string> aead_key;
  std::optional<std::string> base_nonce;
  std::optional<uint64_t> msg_length;
  std::optional<std::string> msg_sha512;  // lower-case hex

  bool HasFlag(absl::string_view flag) const {
    return std::find(flags.begin(), flags.end(), flag) != flags.end();
  }
  std::string Trace() const {
    return absl::StrCat("tcId ", tc_id, " (", comment, ") flags [",
                        absl::StrJoin(flags, ","), "]");
  }
};

struct ChunkedFile {
  const char* name;
  const char* file;
  const char* algorithm;
  const char* aead_name;
  ChunkedAead aead;
};
void PrintTo(const ChunkedFile& file, std::ostream* os) { *os << file.file; }

struct StreamResult {
  absl::Status status;
  std::string released;
  std::optional<ChunkedDecryptor> decryptor;  // for use after failure
};

StreamResult StreamDecrypt(const ChunkedVector& v, size_t piece,
                           ChunkedAead aead) {
  StreamResult result;
  absl::StatusOr<ChunkedDecryptor> decryptor =
      ChunkedDecryptor::Create(v.key, v.ctx, aead);
  if (!decryptor.ok()) {
    result.status = decryptor.status();
    return result;
  }
  result.decryptor.emplace(*std::move(decryptor));
  for (size_t i = 0; i < v.ct.size(); i += piece) {
    result.status = result.decryptor->Update(
        absl::string_view(v.ct).substr(i, piece), &result.released);
    if (!result.status.ok()) return result;
  }
  result.status = result.decryptor->Finish(&result.released);
  return result;
}

// The error an invalid vector may fail with. The header documents
// INVALID_ARGUMENT for a bad key size and for an impossible ciphertext
// length, DATA_LOSS for everything that fails authentication, truncation or
// trailing data; a truncation to an impossible length may be either.
bool IsExpectedError(const ChunkedVector& v, const absl::Status& status) {
  if (status.ok()) return false;
  if (v.HasFlag("InvalidKeySize")) return status.code() == kInvalidArgument;
  if (!IsPossibleLength(v.ct.size())) {
    return status.code() == kDataLoss || status.code() == kInvalidArgument;
  }
  return status.code() == kDataLoss;
}

class ChunkedWycheproofTest : public ::testing::TestWithParam<ChunkedFile> {
 protected:
  void SetUp() override {
    const ChunkedFile& param = GetParam();
    ASSERT_OK_AND_ASSIGN(TestFile file, TestFile::Load(param.file));
    ASSERT_EQ(file.algorithm(), param.algorithm);
    ASSERT_EQ(file.number_of_tests(), 35);
    ASSERT_EQ(file.test_count(), 35u);
    for (const TestGroup& group : file.groups()) {
      ASSERT_EQ(group.params.String("type"), "ChunkedEncryption");
      ASSERT_EQ(group.params.String("aead"), param.aead_name);
      ASSERT_EQ(group.params.String("sha"), "SHA-512");
      for (const JsonObject& test : group.tests) {
        ChunkedVector v;
        v.tc_id = test.tc_id();
        v.comment = test.String("comment");
        v.valid = test.IsValid();
        v.flags = test.Strings("flags");
        v.key = SecretBytes::CopyFrom(test.Bytes("key"));
        v.ctx = test.Bytes("ctx");
        ASSERT_OK_AND_ASSIGN(v.ct, ZlibInflate(test.Bytes("ct")));
        if (test.Has("aeadKey")) v.aead_key = test.Bytes("aeadKey");
        if (test.Has("baseNonce")) v.base_nonce = test.Bytes("baseNonce");
        if (test.Has("msgLength")) {
          const int64_t length = test.Int("msgLength");
          ASSERT_GE(length, 0);
          v.msg_length = static_cast<uint64_t>(length);
        }
        if (test.Has("msgSha512")) {
          v.msg_sha512 = HexEncode(test.Bytes("msgSha512"));
        }
        vectors_.push_back(std::move(v));
      }
    }
    ASSERT_EQ(vectors_.size(), 35u);
  }

  ChunkedAead aead() const { return GetParam().aead; }

  // One-shot decryption of a valid vector, checked against msgLength and
  // msgSha512.
  void DecryptValid(const ChunkedVector& v, std::string* plaintext) const {
    ASSERT_TRUE(v.valid);
    ASSERT_TRUE(v.msg_length.has_value() && v.msg_sha512.has_value());
    ASSERT_OK_AND_ASSIGN(*plaintext,
                         ChunkedDecrypt(v.key, v.ctx, v.ct, aead()));
    ASSERT_EQ(plaintext->size(), *v.msg_length);
    ASSERT_EQ(Sha512Hex(*plaintext), *v.msg_sha512);
  }

  std::vector<ChunkedVector> vectors_;
};

TEST_P(ChunkedWycheproofTest, FileHasTheExpectedVectors) {
  int valid = 0, invalid = 0, header_failure = 0, partial = 0,
      invalid_key_size = 0, valid_final_chunk = 0, raw = 0;
  for (const ChunkedVector& v : vectors_) {
    SCOPED_TRACE(v.Trace());
    ++(v.valid ? valid : invalid);
    header_failure += v.HasFlag("HeaderFailure");
    partial += v.HasFlag("PartialPlaintext");
    invalid_key_size += v.HasFlag("InvalidKeySize");
    valid_final_chunk += v.HasFlag("ValidFinalChunk");
    raw += v.aead_key.has_value();
    EXPECT_EQ(v.aead_key.has_value(), v.base_nonce.has_value());
    EXPECT_EQ(v.msg_length.has_value(), v.msg_sha512.has_value());
    if (v.valid || v.HasFlag("PartialPlaintext")) {
      EXPECT_TRUE(v.msg_length.has_value());
      EXPECT_TRUE(v.aead_key.has_value());
    }
  }
  EXPECT_EQ(valid, 10);
  EXPECT_EQ(invalid, 25);
  EXPECT_EQ(header_failure, 10);
  EXPECT_EQ(partial, 9);
  EXPECT_EQ(invalid_key_size, 2);
  EXPECT_EQ(valid_final_chunk, 4);
  EXPECT_EQ(raw, 25);
}

TEST_P(ChunkedWycheproofTest, ValidVectorsDecryptOneShot) {
  int checked = 0;
  for (const ChunkedVector& v : vectors_) {
    if (!v.valid) continue;
    SCOPED_TRACE(v.Trace());
    std::string plaintext;
    DecryptValid(v, &plaintext);
    ++checked;
  }
  EXPECT_EQ(checked, 10);
}

TEST_P(ChunkedWycheproofTest, ValidVectorsDecryptStreamingInOddPieces) {
  int checked = 0;
  for (const ChunkedVector& v : vectors_) {
    if (!v.valid) continue;
    std::vector<size_t> pieces = {4099, 16401, 65537, v.ct.size()};
    if (v.ct.size() <= 40000) pieces.push_back(1);
    if (v.ct.size() <= 100000) pieces.push_back(7);
    for (size_t piece : pieces) {
      SCOPED_TRACE(absl::StrCat(v.Trace(), ", pieces of ", piece));
      StreamResult stream =
          StreamDecrypt(v, std::max<size_t>(piece, 1), aead());
      ASSERT_OK(stream.status);
      EXPECT_EQ(stream.released.size(), *v.msg_length);
      EXPECT_EQ(Sha512Hex(stream.released), *v.msg_sha512);
    }
    ++checked;
  }
  EXPECT_EQ(checked, 10);
}

TEST_P(ChunkedWycheproofTest,
       KeyScheduleReproducesAeadKeyBaseNonceAndCommitment) {
  // key || base_nonce || commitment = HKDF-Expand-SHA-512(key, "c2sp.org/
  // chunked-encryption@v1+" || aead || 0x00 || salt || ctx, Nk + 12 + 32).
  int checked = 0;
  for (const ChunkedVector& v : vectors_) {
    if (!v.aead_key.has_value()) continue;
    SCOPED_TRACE(v.Trace());
    ASSERT_GE(v.ct.size(), kHeaderSize);
    const size_t nk = v.aead_key->size();
    ASSERT_EQ(nk, GetParam().aead == ChunkedAead::kAes256Gcm ? 32u : 16u);
    const std::string info =
        absl::StrCat("c2sp.org/chunked-encryption@v1+", GetParam().aead_name,
                     absl::string_view("\0", 1), v.ct.substr(0, 24), v.ctx);
    ASSERT_OK_AND_ASSIGN(SecretBytes okm, HkdfExpand(HkdfHash::kSha512, v.key,
                                                     info, nk + 12 + 32));
    EXPECT_EQ(HexEncode(okm.view().substr(0, nk)), HexEncode(*v.aead_key));
    EXPECT_EQ(HexEncode(okm.view().substr(nk, 12)), HexEncode(*v.base_nonce));
    EXPECT_EQ(HexEncode(okm.view().substr(nk + 12)),
              HexEncode(v.ct.substr(24, 32)));
    ++checked;
  }
  EXPECT_EQ(checked, 25);
}

TEST_P(ChunkedWycheproofTest, RawModeReencryptionReproducesCiphertext) {
  // Chunk i of the decrypted message, sealed with index i (16384-byte chunks
  // and a short final one), gives back ct[56:] byte for byte.
  int checked = 0;
  for (const ChunkedVector& v : vectors_) {
    if (!v.valid) continue;
    SCOPED_TRACE(v.Trace());
    std::string plaintext;
    DecryptValid(v, &plaintext);
    if (HasFatalFailure()) return;
    ASSERT_OK_AND_ASSIGN(ChunkCipher cipher,
                         ChunkCipher::Create(*v.aead_key, *v.base_nonce));
    std::string sealed;
    const size_t chunks = plaintext.size() / kChunk + 1;
    for (size_t i = 0; i < chunks; ++i) {
      ASSERT_OK(cipher.SealChunk(
          i, absl::string_view(plaintext).substr(i * kChunk, kChunk), &sealed));
    }
    ASSERT_EQ(sealed.size(), v.ct.size() - kHeaderSize);
    EXPECT_TRUE(sealed == absl::string_view(v.ct).substr(kHeaderSize))
        << "re-encryption differs";
    // And the raw mode opens every chunk of the vector.
    std::string opened;
    for (size_t i = 0; i < chunks; ++i) {
      const size_t offset = i * kSealed;
      ASSERT_OK(cipher.OpenChunk(
          i, absl::string_view(v.ct).substr(kHeaderSize + offset, kSealed),
          &opened));
    }
    EXPECT_TRUE(opened == plaintext);
    ++checked;
  }
  EXPECT_EQ(checked, 10);
}

TEST_P(ChunkedWycheproofTest, RangeDecryptionOfValidVectorsMatchesSlices) {
  int checked = 0;
  for (const ChunkedVector& v : vectors_) {
    if (!v.valid) continue;
    SCOPED_TRACE(v.Trace());
    std::string plaintext;
    DecryptValid(v, &plaintext);
    if (HasFatalFailure()) return;
    ASSERT_OK_AND_ASSIGN(
        ChunkedRangeDecryptor reader,
        ChunkedRangeDecryptor::Create(v.key, v.ctx, v.ct.substr(0, kHeaderSize),
                                      v.ct.size(), aead()));
    const uint64_t size = plaintext.size();
    ASSERT_EQ(reader.plaintext_length(), size);
    const std::vector<std::pair<uint64_t, uint64_t>> ranges = {
        {0, size},
        {0, 1},
        {3, 4},
        {16383, 1},
        {16383, 2},
        {16384, 16384},
        {16380, 16400},
        {size / 2, 40000},
        {255 * kChunk - 7, 3 * kChunk},  // across the 0xff -> 0x100 counter
        {size - std::min<uint64_t>(size, 5), 5},
        {size, 1}};
    for (const auto& [offset, length] : ranges) {
      SCOPED_TRACE(absl::StrCat("range ", offset, "+", length));
      const uint64_t begin = std::min(offset, size);
      const uint64_t end = std::min(size, begin + length);
      const ChunkedRangeDecryptor::ChunkSpan span =
          reader.CiphertextSpan(offset, length);
      absl::string_view sealed;
      if (span.chunk_count > 0) {
        EXPECT_EQ(span.offset, kHeaderSize + span.first_chunk * kSealed);
        ASSERT_LE(span.offset + span.length, v.ct.size());
        sealed = absl::string_view(v.ct).substr(span.offset, span.length);
      }
      ASSERT_OK_AND_ASSIGN(std::string got,
                           reader.DecryptRange(offset, length, sealed));
      EXPECT_TRUE(got ==
                  absl::string_view(plaintext).substr(begin, end - begin))
          << "got " << got.size() << " bytes, want " << end - begin;
    }
    ++checked;
  }
  EXPECT_EQ(checked, 10);
}

TEST_P(ChunkedWycheproofTest, InvalidVectorsFail) {
  int checked = 0, range_checked = 0, range_reached_chunks = 0;
  for (const ChunkedVector& v : vectors_) {
    if (v.valid) continue;
    SCOPED_TRACE(v.Trace());
    absl::StatusOr<std::string> one_shot =
        ChunkedDecrypt(v.key, v.ctx, v.ct, aead());
    EXPECT_FALSE(one_shot.ok()) << "one-shot accepted an invalid vector";
    EXPECT_TRUE(IsExpectedError(v, one_shot.status())) << one_shot.status();

    for (size_t piece :
         {std::max<size_t>(v.ct.size(), 1), size_t{1000}, size_t{16401}}) {
      StreamResult stream = StreamDecrypt(v, piece, aead());
      EXPECT_FALSE(stream.status.ok()) << "streaming, pieces of " << piece;
      EXPECT_TRUE(IsExpectedError(v, stream.status))
          << stream.status << ", pieces of " << piece;
      EXPECT_LE(stream.released.size(), v.msg_length.value_or(0))
          << "pieces of " << piece;
    }

    // Range decryption of the whole message.
    if (v.ct.size() >= kHeaderSize) {
      absl::StatusOr<ChunkedRangeDecryptor> reader =
          ChunkedRangeDecryptor::Create(
              v.key, v.ctx, v.ct.substr(0, kHeaderSize), v.ct.size(), aead());
      if (v.HasFlag("InvalidKeySize") || !IsPossibleLength(v.ct.size())) {
        EXPECT_THAT(reader, StatusIs(kInvalidArgument));
      } else if (v.HasFlag("HeaderFailure")) {
        EXPECT_THAT(reader, StatusIs(kDataLoss));
      } else {
        ASSERT_OK(reader);
        const uint64_t size = PlaintextLengthOf(v.ct.size());
        ASSERT_EQ(reader->plaintext_length(), size);
        ASSERT_GT(size, 0u);
        // The bytes the reader asks for, as a storage node would serve them.
        const ChunkedRangeDecryptor::ChunkSpan span =
            reader->CiphertextSpan(0, size);
        ASSERT_EQ(span.offset, kHeaderSize);
        ASSERT_LE(span.offset + span.length, v.ct.size());
        EXPECT_THAT(reader->DecryptRange(0, size,
                                         absl::string_view(v.ct).substr(
                                             span.offset, span.length)),
                    StatusIs(kDataLoss))
            << "whole-message range read of " << span.chunk_count
            << " chunk(s) accepted an invalid message";
        ++range_reached_chunks;
      }
      ++range_checked;
    }
    ++checked;
  }
  EXPECT_EQ(checked, 25);
  EXPECT_EQ(range_checked, 21);
  EXPECT_EQ(range_reached_chunks, 10);
}

TEST_P(ChunkedWycheproofTest, InvalidKeySizeVectorsAreRejectedAtCreate) {
  int checked = 0;
  for (const ChunkedVector& v : vectors_) {
    if (!v.HasFlag("InvalidKeySize")) continue;
    SCOPED_TRACE(v.Trace());
    ASSERT_NE(v.key.size(),
              GetParam().aead == ChunkedAead::kAes256Gcm ? 32u : 16u);
    EXPECT_THAT(ChunkedDecryptor::Create(v.key, v.ctx, aead()),
                StatusIs(kInvalidArgument));
    EXPECT_THAT(ChunkedEncryptor::Create(v.key, v.ctx, aead()),
                StatusIs(kInvalidArgument));
    EXPECT_THAT(
        ChunkedRangeDecryptor::Create(v.key, v.ctx, v.ct.substr(0, kHeaderSize),
                                      v.ct.size(), aead()),
        StatusIs(kInvalidArgument));
    EXPECT_THAT(ChunkedDecrypt(v.key, v.ctx, v.ct, aead()),
                StatusIs(kInvalidArgument));
    ++checked;
  }
  EXPECT_EQ(checked, 2);
}

TEST_P(ChunkedWycheproofTest, HeaderFailureVectorsReleaseNoPlaintext) {
  int checked = 0;
  for (const ChunkedVector& v : vectors_) {
    if (!v.HasFlag("HeaderFailure")) continue;
    SCOPED_TRACE(v.Trace());
    EXPECT_FALSE(v.valid);
    EXPECT_FALSE(v.aead_key.has_value());
    // One byte at a time: no call may release anything.
    absl::StatusOr<ChunkedDecryptor> decryptor =
        ChunkedDecryptor::Create(v.key, v.ctx, aead());
    absl::Status status = decryptor.status();
    std::string out;
    for (size_t i = 0; status.ok() && i < v.ct.size(); ++i) {
      status = decryptor->Update(absl::string_view(v.ct).substr(i, 1), &out);
      ASSERT_TRUE(out.empty())
          << "released plaintext after " << i + 1 << " bytes";
    }
    if (status.ok()) status = decryptor->Finish(&out);
    EXPECT_TRUE(IsExpectedError(v, status)) << status;
    EXPECT_TRUE(out.empty());
    ++checked;
  }
  EXPECT_EQ(checked, 10);
}

// Plaintext of the leading full chunks that authenticate, opened in raw mode
// from the vector's own aeadKey and baseNonce: the longest valid prefix, as
// the vector's msgLength / msgSha512 describe it.
std::string ValidPrefix(const ChunkedVector& v) {
  std::string prefix;
  absl::StatusOr<ChunkCipher> cipher =
      ChunkCipher::Create(*v.aead_key, *v.base_nonce);
  if (!cipher.ok()) {
    ADD_FAILURE() << cipher.status();
    return prefix;
  }
  const absl::string_view body = absl::string_view(v.ct).substr(kHeaderSize);
  for (uint64_t i = 0; (i + 1) * kSealed <= body.size(); ++i) {
    if (!cipher->OpenChunk(i, body.substr(i * kSealed, kSealed), &prefix)
             .ok()) {
      break;
    }
  }
  return prefix;
}

TEST_P(ChunkedWycheproofTest,
       PartialPlaintextVectorsReleaseOnlyTheValidPrefix) {
  int checked = 0, released_whole_prefix = 0;
  for (const ChunkedVector& v : vectors_) {
    if (!v.HasFlag("PartialPlaintext")) continue;
    SCOPED_TRACE(v.Trace());
    ASSERT_FALSE(v.valid);
    ASSERT_TRUE(v.msg_length.has_value() && v.aead_key.has_value());
    const std::string reference = ValidPrefix(v);
    ASSERT_GE(reference.size(), *v.msg_length);
    ASSERT_EQ(Sha512Hex(reference.substr(0, *v.msg_length)), *v.msg_sha512);

    for (size_t piece :
         {v.ct.size(), size_t{1000}, size_t{16400}, size_t{16401}}) {
      SCOPED_TRACE(absl::StrCat("pieces of ", piece));
      StreamResult stream = StreamDecrypt(v, piece, aead());
      ASSERT_FALSE(stream.status.ok());
      EXPECT_TRUE(IsExpectedError(v, stream.status)) << stream.status;
      ASSERT_LE(stream.released.size(), *v.msg_length);
      EXPECT_TRUE(stream.released == absl::string_view(reference).substr(
                                         0, stream.released.size()))
          << "released bytes are not a prefix of the message";
      if (stream.released.size() == *v.msg_length) {
        EXPECT_EQ(Sha512Hex(stream.released), *v.msg_sha512);
        ++released_whole_prefix;
      }
      // A failed decryptor keeps failing with the same error (code and
      // message) and releases nothing more.
      ASSERT_TRUE(stream.decryptor.has_value());
      const size_t released = stream.released.size();
      for (int round = 0; round < 2; ++round) {
        const absl::Status update =
            stream.decryptor->Update(v.ct, &stream.released);
        EXPECT_EQ(update, stream.status);
        const absl::Status finish = stream.decryptor->Finish(&stream.released);
        EXPECT_EQ(finish, stream.status);
      }
      EXPECT_EQ(stream.released.size(), released);
    }
    ++checked;
  }
  EXPECT_EQ(checked, 9);
  // Streaming releases each full chunk once it authenticates, so in most
  // runs the whole valid prefix comes out before the failure.
  EXPECT_GT(released_whole_prefix, 0);
}

TEST_P(ChunkedWycheproofTest, FinalChunkFailsUnlessFlaggedValidFinalChunk) {
  // Decrypting just the final chunk (to authenticate the length, or to seek
  // from the end) may succeed only for ValidFinalChunk vectors.
  int must_fail = 0, valid_final = 0;
  for (const ChunkedVector& v : vectors_) {
    if (v.valid || v.HasFlag("HeaderFailure") ||
        !IsPossibleLength(v.ct.size())) {
      continue;
    }
    SCOPED_TRACE(v.Trace());
    ASSERT_OK_AND_ASSIGN(
        ChunkedRangeDecryptor reader,
        ChunkedRangeDecryptor::Create(v.key, v.ctx, v.ct.substr(0, kHeaderSize),
                                      v.ct.size(), aead()));
    const uint64_t last = (v.ct.size() - kHeaderSize) / kSealed;
    const absl::string_view sealed =
        absl::string_view(v.ct).substr(kHeaderSize + last * kSealed);
    absl::StatusOr<std::string> final_chunk = reader.DecryptChunk(last, sealed);
    if (v.HasFlag("ValidFinalChunk")) {
      // The vector's claim, checked in raw mode.
      ASSERT_OK_AND_ASSIGN(ChunkCipher cipher,
                           ChunkCipher::Create(*v.aead_key, *v.base_nonce));
      std::string out;
      EXPECT_OK(cipher.OpenChunk(last, sealed, &out));
      // The subject agrees, and returns the same plaintext.
      ASSERT_OK(final_chunk);
      EXPECT_EQ(*final_chunk, out);
      ++valid_final;
    } else {
      EXPECT_THAT(final_chunk, StatusIs(kDataLoss));
      ++must_fail;
    }
  }
  EXPECT_EQ(must_fail, 6);
  EXPECT_EQ(valid_final, 4);
}

INSTANTIATE_TEST_SUITE_P(
    Instances, ChunkedWycheproofTest,
    ::testing::Values(
        ChunkedFile{
            "Aes256Gcm", "c2sp_chunked_encryption_aes_256_gcm_test.json",
            "Cobblestone-256", "AEAD_AES_256_GCM", ChunkedAead::kAes256Gcm},
        ChunkedFile{
            "Aes128Gcm", "c2sp_chunked_encryption_aes_128_gcm_test.json",
            "Cobblestone-128", "AEAD_AES_128_GCM", ChunkedAead::kAes128Gcm}),
    [](const ::testing::TestParamInfo<ChunkedFile>& info) {
      return info.param.name;
    });

}  // namespace
}  // namespace residency::wycheproof
