// Random-access Cobblestone decryption (crypto::ChunkedRangeDecryptor and
// ChunkedCiphertextSpan) of arbitrary ciphertext and ranges.
//
// Input: one control byte (bit 0: AES-128-GCM; bit 1: declare the 8-byte
// big-endian ciphertext length that follows instead of the real one), the
// range as 8-byte big-endian offset and length, then the ciphertext. The key
// and context are the throwaway ones in fuzz_util.h.
//
// Invariants: the span lies inside the declared ciphertext and covers the
// range; a read succeeds only with exactly the span's bytes, returns the
// range clamped to the message, and agrees with streaming decryption of the
// whole ciphertext when that succeeds; DecryptChunk agrees with DecryptRange.

#include <algorithm>
#include <cstddef>
#include <cstdint>
#include <string>

#include "absl/status/status.h"
#include "crypto/chunked.h"
#include "tests/fuzz/fuzz_util.h"

extern "C" int LLVMFuzzerTestOneInput(const uint8_t* data, size_t size) {
  using namespace residency;
  using namespace residency::fuzz;
  InputReader in(data, size);
  const uint8_t control = in.U8();
  const uint64_t declared = (control & 2) ? in.UInt(8) : 0;
  const uint64_t offset = in.UInt(8);
  const uint64_t length = in.UInt(8);
  const absl::string_view ciphertext = in.rest();
  const uint64_t ciphertext_length =
      (control & 2) ? declared : ciphertext.size();
  const crypto::ChunkedAead aead = (control & 1)
                                       ? crypto::ChunkedAead::kAes128Gcm
                                       : crypto::ChunkedAead::kAes256Gcm;
  const crypto::SecretBytes key =
      ThrowawayKey(crypto::ChunkedKeySize(aead), kChunkedKeyFill);

  absl::StatusOr<crypto::ChunkedRangeDecryptor> reader =
      crypto::ChunkedRangeDecryptor::Create(
          key, kChunkedContext,
          ciphertext.substr(0, crypto::kChunkedHeaderSize), ciphertext_length,
          aead);
  if (!reader.ok()) {
    FUZZ_CHECK(reader.status().code() == absl::StatusCode::kInvalidArgument ||
               reader.status().code() == absl::StatusCode::kDataLoss);
    return 0;
  }
  const uint64_t plaintext_length = reader->plaintext_length();
  FUZZ_CHECK(crypto::ChunkedCiphertextLength(plaintext_length) ==
             ciphertext_length);

  const crypto::ChunkSpan span = reader->CiphertextSpan(offset, length);
  FUZZ_CHECK(span.offset >= crypto::kChunkedHeaderSize);
  FUZZ_CHECK(span.offset <= ciphertext_length);
  FUZZ_CHECK(span.length <= ciphertext_length - span.offset);
  FUZZ_CHECK(span.first_chunk + span.chunk_count <=
             crypto::ChunkCount(plaintext_length));
  const uint64_t start = std::min(offset, plaintext_length);
  const uint64_t want = std::min(length, plaintext_length - start);
  if (want > 0) {
    // The chunks hold every byte of the range.
    FUZZ_CHECK(span.first_chunk * crypto::kChunkSize <= start);
    FUZZ_CHECK(start + want <=
               (span.first_chunk + span.chunk_count) * crypto::kChunkSize);
  }

  // The sealed bytes of the span, as a storage node would return them; the
  // ciphertext may be shorter than declared.
  if (span.offset > ciphertext.size()) return 0;
  const absl::string_view sealed = ciphertext.substr(span.offset, span.length);
  absl::StatusOr<std::string> range =
      reader->DecryptRange(offset, length, sealed);
  if (sealed.size() != span.length) {
    FUZZ_CHECK(range.status().code() == absl::StatusCode::kInvalidArgument);
    return 0;
  }
  // One byte short is always refused.
  if (!sealed.empty()) {
    FUZZ_CHECK(
        reader
            ->DecryptRange(offset, length, sealed.substr(0, sealed.size() - 1))
            .status()
            .code() == absl::StatusCode::kInvalidArgument);
  }
  if (!range.ok()) {
    FUZZ_CHECK(range.status().code() == absl::StatusCode::kDataLoss);
    return 0;
  }
  FUZZ_CHECK(range->size() == want);

  // Chunk by chunk gives the same bytes.
  std::string chunks;
  uint64_t at = 0;
  for (uint64_t k = 0; k < span.chunk_count; ++k) {
    const uint64_t n =
        std::min<uint64_t>(crypto::kSealedChunkSize, sealed.size() - at);
    absl::StatusOr<std::string> chunk =
        reader->DecryptChunk(span.first_chunk + k, sealed.substr(at, n));
    FUZZ_CHECK(chunk.ok());
    chunks += *chunk;
    at += n;
  }
  if (want > 0) {
    FUZZ_CHECK(chunks.substr(start - span.first_chunk * crypto::kChunkSize,
                             want) == *range);
  }

  if (ciphertext.size() == ciphertext_length) {
    absl::StatusOr<std::string> whole =
        crypto::ChunkedDecrypt(key, kChunkedContext, ciphertext, aead);
    if (whole.ok()) FUZZ_CHECK(whole->substr(start, want) == *range);
  }
  return 0;
}
