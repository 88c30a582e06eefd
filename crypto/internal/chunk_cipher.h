#ifndef RESIDENCY_CRYPTO_INTERNAL_CHUNK_CIPHER_H_
#define RESIDENCY_CRYPTO_INTERNAL_CHUNK_CIPHER_H_

#include <array>
#include <cstddef>
#include <cstdint>
#include <string>

#include "absl/status/status.h"
#include "absl/status/statusor.h"
#include "absl/strings/string_view.h"
#include "absl/types/span.h"
#include "crypto/internal/aead_cipher.h"
#include "crypto/secret_bytes.h"

namespace residency::crypto::internal {

// The "raw mode" of chunked encryption: seals and opens chunk i under a
// derived AEAD key and base nonce, with nonce = base_nonce XOR BE96(i) and
// empty associated data. It knows nothing of salts, commitments or which
// chunk is final; crypto/chunked.h builds the format on it. Tests use it
// directly to re-encrypt test vectors from their aeadKey and baseNonce.
//
// Thread safety: none (one AEAD context).
class ChunkCipher {
 public:
  // `aead_key` is 16 or 32 bytes (AES-128/256-GCM); `base_nonce` 12 bytes.
  static absl::StatusOr<ChunkCipher> Create(absl::string_view aead_key,
                                            absl::string_view base_nonce);

  // Appends chunk `index` sealed (plaintext.size() + 16 bytes) to `out`.
  absl::Status SealChunk(uint64_t index, absl::string_view plaintext,
                         std::string* out);
  // As above, into `out`, which must be exactly plaintext.size() + 16 bytes.
  absl::Status SealChunk(uint64_t index, absl::string_view plaintext,
                         absl::Span<uint8_t> out);
  // Appends the plaintext of sealed chunk `index` to `out`; on failure `out`
  // is left as it was.
  absl::Status OpenChunk(uint64_t index, absl::string_view sealed,
                         std::string* out);
  // As above, into `out`, which must be exactly sealed.size() - 16 bytes; on
  // failure `out` is wiped.
  absl::Status OpenChunk(uint64_t index, absl::string_view sealed,
                         absl::Span<uint8_t> out);

 private:
  ChunkCipher(AeadCipher aead, std::array<uint8_t, 12> base_nonce)
      : aead_(std::move(aead)), base_nonce_(base_nonce) {}
  std::array<uint8_t, 12> NonceFor(uint64_t index) const;

  AeadCipher aead_;
  std::array<uint8_t, 12> base_nonce_;
};

}  // namespace residency::crypto::internal

#endif  // RESIDENCY_CRYPTO_INTERNAL_CHUNK_CIPHER_H_
