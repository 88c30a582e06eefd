#ifndef RESIDENCY_CRYPTO_CHUNKED_H_
#define RESIDENCY_CRYPTO_CHUNKED_H_

// Chunked encryption: C2SP "Cobblestone" (c2sp.org/chunked-encryption), the
// format of every object payload. Cobblestone-256 (AEAD_AES_256_GCM, HKDF
// over SHA-512) is the default; AEAD_AES_128_GCM is the other instance the
// specification defines.
//
// Key schedule, with the input key used directly as the HKDF PRK:
//
//   key || base_nonce || commitment = HKDF-Expand-SHA-512(
//       prk  = input_key,
//       info = "c2sp.org/chunked-encryption@v1+" || AEAD name || 0x00 ||
//              salt || context,
//       L    = Nk + 12 + 32)        Nk = 32 (AES-256-GCM) or 16 (AES-128-GCM)
//
// Ciphertext layout:
//
//   offset                 size          field
//   0                      24            salt, random per message
//   24                     32            commitment (from the key schedule)
//   56 + k * 16400         16400         chunk k, for each full chunk k < n:
//                                        16384 bytes of ciphertext + 16-byte
//                                        GCM tag
//   56 + n * 16400         r + 16        final chunk n: r < 16384 bytes of
//                                        ciphertext + tag (r may be 0)
//
// A message of P bytes has n = floor(P / 16384) full chunks and a final chunk
// of r = P mod 16384 bytes, so the final chunk is always short and a 16 KiB
// message is one full chunk plus one empty chunk. The ciphertext length is
// 56 + P + 16 * (n + 1).
//
// Chunk i is sealed with AEAD(key, nonce = base_nonce XOR BE96(i), AD = ""):
// the counter is XORed big-endian into the low-order bytes of the nonce.
//
// Decryption checks the commitment (constant time) before any chunk, so a
// wrong key or wrong context fails before a chunk is touched; it rejects a
// message whose last chunk is not short (truncation) and any byte after the
// short chunk (trailing data). A decryptor that has failed keeps failing.
//
// Errors: INVALID_ARGUMENT for a bad key size, an output buffer that is too
// small, or (where the length is known up front, as in ChunkedPlaintextLength
// and ChunkedRangeDecryptor) an impossible ciphertext length; DATA_LOSS for a
// commitment or authentication failure, truncation or trailing data found
// while decrypting; FAILED_PRECONDITION for Update or Finish after a
// successful Finish. After a DATA_LOSS a decryptor returns that same error
// to every later call.

#include <cstddef>
#include <cstdint>
#include <optional>
#include <string>

#include "absl/status/status.h"
#include "absl/status/statusor.h"
#include "absl/strings/string_view.h"
#include "absl/types/span.h"
#include "crypto/internal/chunk_cipher.h"
#include "crypto/secret_bytes.h"

namespace residency::crypto {

enum class ChunkedAead {
  kAes256Gcm,  // Cobblestone-256, the default
  kAes128Gcm,
};

inline constexpr size_t kChunkSize = 16384;
inline constexpr size_t kChunkTagSize = 16;
inline constexpr size_t kSealedChunkSize = kChunkSize + kChunkTagSize;
inline constexpr size_t kChunkedSaltSize = 24;
inline constexpr size_t kChunkedCommitmentSize = 32;
inline constexpr size_t kChunkedHeaderSize =
    kChunkedSaltSize + kChunkedCommitmentSize;

// Limits. A context is a short encoding of where a ciphertext belongs; longer
// ones are refused with INVALID_ARGUMENT rather than reaching OpenSSL's own
// HKDF info limit. Messages are capped at 2^60 bytes so that length
// arithmetic can never wrap.
inline constexpr size_t kMaxChunkedContextSize = 4096;
inline constexpr uint64_t kMaxChunkedPlaintextLength = uint64_t{1} << 60;

// Input key size for an instance: 32 for kAes256Gcm, 16 for kAes128Gcm.
size_t ChunkedKeySize(ChunkedAead aead);

// Number of chunks (full chunks plus the short final one) for a message.
uint64_t ChunkCount(uint64_t plaintext_length);

// The exact ciphertext length of a plaintext_length-byte message. Above
// kMaxChunkedPlaintextLength it returns UINT64_MAX, which is never a valid
// ciphertext length (ChunkedPlaintextLength rejects it), so comparing a
// declared pair of lengths through these two functions cannot be fooled by
// wrap-around.
uint64_t ChunkedCiphertextLength(uint64_t plaintext_length);

// The plaintext length for a ciphertext length, or INVALID_ARGUMENT when no
// message has that ciphertext length (too short, a truncated tag, a last
// chunk that is not short, or above the length of a message of
// kMaxChunkedPlaintextLength bytes).
absl::StatusOr<uint64_t> ChunkedPlaintextLength(uint64_t ciphertext_length);

// Streaming encryption. Emits the 56-byte header from Create on, then every
// full chunk as soon as its plaintext is in, and the final short chunk in
// Finish. Memory use is one chunk, whatever the message size.
//
// Thread safety: none; one encryptor per stream.
//
// Example:
//   ASSIGN_OR_RETURN(ChunkedEncryptor enc, ChunkedEncryptor::Create(key, ctx));
//   std::string out = enc.header();
//   RETURN_IF_ERROR(enc.Update(part1, &out));
//   RETURN_IF_ERROR(enc.Update(part2, &out));
//   RETURN_IF_ERROR(enc.Finish(&out));
class ChunkedEncryptor {
 public:
  // Draws a random salt.
  static absl::StatusOr<ChunkedEncryptor> Create(
      const SecretBytes& key, absl::string_view context,
      ChunkedAead aead = ChunkedAead::kAes256Gcm);

  // salt || commitment: the first kChunkedHeaderSize bytes of the ciphertext.
  const std::string& header() const { return header_; }

  // Appends the sealed chunks that `plaintext` completes to `out`.
  absl::Status Update(absl::string_view plaintext, std::string* out);
  // Appends the final short chunk. No Update may follow.
  absl::Status Finish(std::string* out);

  // The same operations into caller-owned memory, for callers that reuse
  // their buffers: `out` must hold at least UpdateOutputSize(plaintext.size())
  // (or FinishOutputSize()) bytes, and the number of bytes written, always
  // exactly that size, is returned.
  size_t UpdateOutputSize(size_t plaintext_size) const;
  size_t FinishOutputSize() const;
  absl::StatusOr<size_t> Update(absl::string_view plaintext,
                                absl::Span<uint8_t> out);
  absl::StatusOr<size_t> Finish(absl::Span<uint8_t> out);

  // Plaintext bytes accepted so far.
  uint64_t plaintext_length() const { return plaintext_length_; }

 private:
  ChunkedEncryptor(internal::ChunkCipher cipher, std::string header);
  absl::Status Fail(absl::Status status);

  internal::ChunkCipher cipher_;
  std::string header_;
  // Plaintext of the chunk being filled, < kChunkSize. Its capacity is
  // reserved up front so that it never reallocates (which would leave an
  // unwiped copy behind); it is wiped after every use and on destruction.
  std::string pending_;
  uint64_t next_chunk_ = 0;
  uint64_t plaintext_length_ = 0;
  absl::Status status_;  // first error, sticky
  bool finished_ = false;

 public:
  ~ChunkedEncryptor();
  ChunkedEncryptor(ChunkedEncryptor&&) = default;
  ChunkedEncryptor& operator=(ChunkedEncryptor&&) = default;
};

// Streaming decryption. Feed the ciphertext in pieces of any size; each full
// chunk's plaintext is released as soon as it authenticates. The final chunk
// is only known at Finish (it is the short one), so Finish releases it and
// checks that nothing follows.
//
// A failed decryptor keeps failing: every later call returns the first error.
// Plaintext released before a failure is a valid prefix of the message, but
// the caller must discard it if Finish does not return OK.
//
// Thread safety: none; one decryptor per stream.
class ChunkedDecryptor {
 public:
  static absl::StatusOr<ChunkedDecryptor> Create(
      const SecretBytes& key, absl::string_view context,
      ChunkedAead aead = ChunkedAead::kAes256Gcm);

  // Appends the plaintext of every chunk completed by `ciphertext` to `out`.
  // On failure, what this call appended is removed and wiped.
  absl::Status Update(absl::string_view ciphertext, std::string* out);
  // Appends the final chunk's plaintext and checks that the message ended
  // there. No Update may follow.
  absl::Status Finish(std::string* out);

  // The same operations into caller-owned memory: `out` must hold at least
  // UpdateOutputSize(ciphertext.size()) (or FinishOutputSize()) bytes; the
  // number of plaintext bytes written is returned. On failure what this call
  // wrote is wiped.
  size_t UpdateOutputSize(size_t ciphertext_size) const;
  size_t FinishOutputSize() const;
  absl::StatusOr<size_t> Update(absl::string_view ciphertext,
                                absl::Span<uint8_t> out);
  absl::StatusOr<size_t> Finish(absl::Span<uint8_t> out);

 private:
  ChunkedDecryptor(SecretBytes key, std::string context, ChunkedAead aead);
  absl::Status Fail(absl::Status status);
  absl::Status ReadHeader();
  // Opens the next chunk into `out` (exactly its plaintext size).
  absl::Status OpenChunk(absl::string_view sealed, bool final_chunk,
                         absl::Span<uint8_t> out);

  SecretBytes key_;  // wiped once the header is read: the cipher holds the
                     // derived key from then on
  std::string context_;
  ChunkedAead aead_;
  std::optional<internal::ChunkCipher> cipher_;  // set once the header checks
  std::string pending_;                          // ciphertext not yet consumed
  uint64_t next_chunk_ = 0;
  absl::Status status_;  // first error, sticky
  bool finished_ = false;
};

// Random-access decryption of one stored message: reads decrypt only the
// chunks that cover the plaintext range they ask for. Built from the header
// (salt || commitment) and the total ciphertext length, both of which a
// storage node returns without the chunks.
//
// Thread safety: none (it owns a cipher context); cheap to create per read.
//
// Example:
//   ASSIGN_OR_RETURN(auto reader, ChunkedRangeDecryptor::Create(
//                                     key, ctx, header, ciphertext_length));
//   ChunkedRangeDecryptor::ChunkSpan span = reader.CiphertextSpan(offset,
//   length); std::string sealed = Fetch(span.offset, span.length);
//   ASSIGN_OR_RETURN(std::string pt, reader.DecryptRange(offset, length,
//                                                        sealed));
// Which sealed chunks cover a plaintext range.
struct ChunkSpan {
  uint64_t first_chunk = 0;
  uint64_t chunk_count = 0;
  uint64_t offset = 0;  // byte offset of first_chunk in the ciphertext
  uint64_t length = 0;  // bytes of sealed chunks to fetch
};

// The chunks covering plaintext [offset, offset + length) of a message of
// `plaintext_length` bytes, clamped to the message. A range that reaches the
// end of the message (including one that starts at or past it, and any
// range of an empty message) also takes the final chunk, whose
// authentication proves where the message ends. An empty range before the
// end covers no chunk (chunk_count == 0). Needs no key: a storage node uses
// it to serve ranged reads.
ChunkSpan ChunkedCiphertextSpan(uint64_t plaintext_length, uint64_t offset,
                                uint64_t length);

class ChunkedRangeDecryptor {
 public:
  using ChunkSpan = ::residency::crypto::ChunkSpan;

  // Checks the commitment and the length. `header` is the first
  // kChunkedHeaderSize ciphertext bytes.
  static absl::StatusOr<ChunkedRangeDecryptor> Create(
      const SecretBytes& key, absl::string_view context,
      absl::string_view header, uint64_t ciphertext_length,
      ChunkedAead aead = ChunkedAead::kAes256Gcm);

  uint64_t plaintext_length() const { return plaintext_length_; }

  // ChunkedCiphertextSpan for this message.
  ChunkSpan CiphertextSpan(uint64_t offset, uint64_t length) const {
    return ChunkedCiphertextSpan(plaintext_length_, offset, length);
  }

  // Decrypts the sealed chunks of CiphertextSpan(offset, length), given
  // exactly as stored, and returns plaintext [offset, offset + length)
  // clamped to the message. INVALID_ARGUMENT if `sealed` is not exactly the
  // span's bytes; DATA_LOSS if a chunk fails to authenticate.
  absl::StatusOr<std::string> DecryptRange(uint64_t offset, uint64_t length,
                                           absl::string_view sealed);

  // Decrypts chunk `index` given its sealed bytes.
  absl::StatusOr<std::string> DecryptChunk(uint64_t index,
                                           absl::string_view sealed);

 private:
  ChunkedRangeDecryptor(internal::ChunkCipher cipher, uint64_t plaintext_length)
      : cipher_(std::move(cipher)), plaintext_length_(plaintext_length) {}

  internal::ChunkCipher cipher_;
  uint64_t plaintext_length_;
};

// One-shot helpers over the streaming classes, for small messages.
absl::StatusOr<std::string> ChunkedEncrypt(
    const SecretBytes& key, absl::string_view context,
    absl::string_view plaintext, ChunkedAead aead = ChunkedAead::kAes256Gcm);
absl::StatusOr<std::string> ChunkedDecrypt(
    const SecretBytes& key, absl::string_view context,
    absl::string_view ciphertext, ChunkedAead aead = ChunkedAead::kAes256Gcm);

}  // namespace residency::crypto

#endif  // RESIDENCY_CRYPTO_CHUNKED_H_
