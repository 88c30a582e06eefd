#ifndef RESIDENCY_CRYPTO_AEAD_H_
#define RESIDENCY_CRYPTO_AEAD_H_

#include <cstddef>
#include <cstdint>
#include <string>

#include "absl/status/statusor.h"
#include "absl/strings/string_view.h"
#include "absl/types/span.h"
#include "crypto/internal/aead_cipher.h"
#include "crypto/secret_bytes.h"

namespace residency::crypto {

enum class AeadAlgorithm {
  kAes256Gcm,         // AES-256-GCM (NIST SP 800-38D); the default
  kChaCha20Poly1305,  // ChaCha20-Poly1305 (RFC 8439)
};

// Stable lower-case name ("aes-256-gcm", "chacha20-poly1305") for logs and
// reports.
absl::string_view AeadAlgorithmName(AeadAlgorithm algorithm);

// Authenticated encryption with associated data and a random nonce per
// message. The only operations are Encrypt and Decrypt: nonces are made
// inside, so a caller cannot reuse one.
//
// Ciphertext layout (both algorithms):
//
//   offset  size  field
//   0       12    nonce, fresh from RandomBytes for every Encrypt
//   12      n     ciphertext (same length n as the plaintext)
//   12+n    16    authentication tag
//
// so a ciphertext is always exactly plaintext size + 28 bytes (kOverhead).
//
// Random 96-bit nonces keep the collision probability under 2^-32 for up to
// 2^32 messages per key (SP 800-38D 8.3); keys that may see more must be
// rotated.
//
// Thread safety: an Aead is immutable after Create; Encrypt and Decrypt may
// be called concurrently.
//
// One message may hold at most 64 GiB - 32 bytes of plaintext under
// AES-256-GCM and 256 GiB - 64 bytes under ChaCha20-Poly1305, the limits for
// one nonce (internal::AeadCipher); longer is INVALID_ARGUMENT.
//
// Errors: Create returns INVALID_ARGUMENT for a key that is not 32 bytes.
// Encrypt returns INVALID_ARGUMENT for a plaintext over the limit above,
// Decrypt and DecryptToSecret for a ciphertext shorter than kOverhead or
// longer than the limit plus kOverhead (all before allocating), and DATA_LOSS
// when authentication fails (wrong key, wrong associated data, or any modified
// byte); they never return unauthenticated plaintext.
//
// Example:
//   ASSIGN_OR_RETURN(SecretBytes key, RandomSecret(Aead::kKeySize));
//   ASSIGN_OR_RETURN(Aead aead, Aead::Create(AeadAlgorithm::kAes256Gcm,
//                                             std::move(key)));
//   ASSIGN_OR_RETURN(std::string ct, aead.Encrypt("hello", "header"));
//   ASSIGN_OR_RETURN(std::string pt, aead.Decrypt(ct, "header"));
class Aead {
 public:
  static constexpr size_t kKeySize = 32;
  static constexpr size_t kNonceSize = internal::AeadCipher::kNonceSize;
  static constexpr size_t kTagSize = internal::AeadCipher::kTagSize;
  static constexpr size_t kOverhead = kNonceSize + kTagSize;

  static absl::StatusOr<Aead> Create(AeadAlgorithm algorithm, SecretBytes key);

  Aead(Aead&&) = default;
  Aead& operator=(Aead&&) = default;

  absl::StatusOr<std::string> Encrypt(absl::string_view plaintext,
                                      absl::string_view associated_data) const;
  absl::StatusOr<std::string> Decrypt(absl::string_view ciphertext,
                                      absl::string_view associated_data) const;

  // As Decrypt (same statuses, same messages), for a plaintext that is key
  // material: it is decrypted straight into the returned SecretBytes, so no
  // std::string copy of it is left on the heap. To encrypt a secret, pass
  // its view() to Encrypt.
  absl::StatusOr<SecretBytes> DecryptToSecret(
      absl::string_view ciphertext, absl::string_view associated_data) const;

  AeadAlgorithm algorithm() const { return algorithm_; }

 private:
  Aead(AeadAlgorithm algorithm, SecretBytes key)
      : algorithm_(algorithm), key_(std::move(key)) {}

  // Checks the length, then opens `ciphertext` into `out`, which must be
  // ciphertext.size() - kOverhead bytes. The shared body of Decrypt and
  // DecryptToSecret.
  absl::Status DecryptInto(absl::string_view ciphertext,
                           absl::string_view associated_data,
                           absl::Span<uint8_t> out) const;
  // INVALID_ARGUMENT for a message (`what`: "plaintext" or "ciphertext",
  // nonce and tag left out) over the algorithm's limit for one nonce.
  absl::Status CheckMessageSize(absl::string_view what, uint64_t size) const;
  // INVALID_ARGUMENT for a ciphertext too short to hold nonce and tag, or
  // over the limit.
  absl::Status CheckCiphertextSize(absl::string_view ciphertext) const;

  AeadAlgorithm algorithm_;
  SecretBytes key_;
};

}  // namespace residency::crypto

#endif  // RESIDENCY_CRYPTO_AEAD_H_
