#ifndef RESIDENCY_CRYPTO_INTERNAL_AEAD_CIPHER_H_
#define RESIDENCY_CRYPTO_INTERNAL_AEAD_CIPHER_H_

#include <cstddef>
#include <cstdint>
#include <memory>

#include "absl/status/status.h"
#include "absl/status/statusor.h"
#include "absl/strings/string_view.h"
#include "absl/types/span.h"
#include "crypto/secret_bytes.h"

namespace residency::crypto::internal {

// The provider functions behind one cipher (defined in aead_cipher.cc).
struct AeadImplementation;

// A keyed AEAD with caller-chosen nonces: the building block under Aead
// (random nonces) and chunked encryption (counter nonces). Not for use outside
// crypto/: a caller that picks nonces can reuse one, which breaks GCM.
//
// The key schedule is computed once in Create; each Seal/Open only sets the
// nonce, which keeps per-chunk overhead small. For the same reason the cipher
// is driven through the functions of the OpenSSL provider that
// EVP_CIPHER_fetch picks for it (provider-cipher(7)), not through EVP: at one
// call per 16 KiB chunk, EVP's own work per call (it asks the provider for
// the IV length on every init, among others) costs a few percent of the
// throughput. With the default or FIPS provider the implementation, and so
// its assembly, is the one EVP uses.
//
// Thread safety: NOT thread-safe (it owns one cipher context). Use one per
// thread or per stream.
class AeadCipher {
 public:
  enum class Kind { kAesGcm, kChaCha20Poly1305 };
  static constexpr size_t kNonceSize = 12;
  static constexpr size_t kTagSize = 16;
  // The most plaintext that one nonce may encrypt: 2^39 - 256 bits for GCM
  // (NIST SP 800-38D, 5.2.1.1), 2^32 - 1 blocks of 64 bytes for
  // ChaCha20-Poly1305 (RFC 8439, 2.8; its block counter is 32 bits, and
  // OpenSSL would carry it into the nonce). Seal refuses a longer plaintext
  // and Open a longer ciphertext, with INVALID_ARGUMENT.
  static constexpr uint64_t kMaxAesGcmMessage = (uint64_t{1} << 36) - 32;
  static constexpr uint64_t kMaxChaCha20Poly1305Message =
      (uint64_t{1} << 38) - 64;
  static constexpr uint64_t MaxMessage(Kind kind) {
    return kind == Kind::kAesGcm ? kMaxAesGcmMessage
                                 : kMaxChaCha20Poly1305Message;
  }

  // AES-GCM takes 16- or 32-byte keys (AES-128/AES-256, the sizes chunked
  // encryption defines), ChaCha20-Poly1305 32-byte keys. Anything else is
  // INVALID_ARGUMENT.
  static absl::StatusOr<AeadCipher> Create(Kind kind, absl::string_view key);

  AeadCipher(AeadCipher&&) noexcept;
  AeadCipher& operator=(AeadCipher&&) noexcept;
  ~AeadCipher();

  // Writes ciphertext || tag (plaintext.size() + kTagSize bytes) to `out`,
  // which must have exactly that size. `out` may alias `plaintext` exactly
  // (in-place) but must not overlap it otherwise. INVALID_ARGUMENT for a
  // wrong nonce or output size or a plaintext over MaxMessage.
  absl::Status Seal(absl::Span<const uint8_t> nonce,
                    absl::string_view plaintext,
                    absl::string_view associated_data, absl::Span<uint8_t> out);

  // Verifies and decrypts ciphertext || tag into `out` (ciphertext.size() -
  // kTagSize bytes). On DATA_LOSS (authentication failure) `out` is wiped:
  // no unauthenticated byte is left behind. INVALID_ARGUMENT for a wrong
  // nonce or output size, a ciphertext shorter than the tag, or one longer
  // than MaxMessage plus the tag.
  absl::Status Open(absl::Span<const uint8_t> nonce,
                    absl::string_view ciphertext_and_tag,
                    absl::string_view associated_data, absl::Span<uint8_t> out);

 private:
  AeadCipher(const AeadImplementation* impl, void* ctx)
      : impl_(impl), ctx_(ctx) {}

  const AeadImplementation* impl_;  // lives as long as the process
  void* ctx_;  // owned provider context; the key is set, the nonce per call
};

}  // namespace residency::crypto::internal

#endif  // RESIDENCY_CRYPTO_INTERNAL_AEAD_CIPHER_H_
