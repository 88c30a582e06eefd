#ifndef RESIDENCY_KEY_SERVICE_AUDIT_SIGNER_H_
#define RESIDENCY_KEY_SERVICE_AUDIT_SIGNER_H_

#include <cstddef>
#include <memory>
#include <string>

#include "absl/status/status.h"
#include "absl/status/statusor.h"
#include "absl/strings/string_view.h"
#include "crypto/secret_bytes.h"

// OpenSSL's key type, kept out of this header.
typedef struct evp_pkey_st EVP_PKEY;

namespace residency::key_service {

// Signs audit checkpoints with Ed25519 (RFC 8032, pure Ed25519: no
// pre-hashing, no context) through OpenSSL's EVP_PKEY_ED25519.
//
// The private key is its 32-byte RFC 8032 seed, held in SecretBytes; seed()
// exists so the key service can persist it and later rebuild the same signer
// with FromSeed. The public key may be published freely: verifiers receive it
// out of band (PublicKeyPem) and never from the log itself.
//
// Thread safety: immutable after creation; Sign and the accessors may be
// called concurrently.
//
// Errors: FromSeed returns INVALID_ARGUMENT for a seed that is not 32 bytes;
// Generate returns INTERNAL when the DRBG fails; Sign returns INTERNAL only if
// OpenSSL fails.
//
// Example:
//   ASSIGN_OR_RETURN(AuditSigner signer, AuditSigner::Generate());
//   ASSIGN_OR_RETURN(std::string sig, signer.Sign(message));
//   RETURN_IF_ERROR(VerifyEd25519(signer.public_key(), message, sig));
class AuditSigner {
 public:
  static constexpr size_t kSeedSize = 32;
  static constexpr size_t kPublicKeySize = 32;
  static constexpr size_t kSignatureSize = 64;

  // A fresh key from the OpenSSL DRBG.
  static absl::StatusOr<AuditSigner> Generate();
  // The key whose RFC 8032 private key (seed) is `seed32`.
  static absl::StatusOr<AuditSigner> FromSeed(
      const crypto::SecretBytes& seed32);

  AuditSigner(AuditSigner&& other) noexcept;
  AuditSigner& operator=(AuditSigner&& other) noexcept;
  AuditSigner(const AuditSigner&) = delete;
  AuditSigner& operator=(const AuditSigner&) = delete;
  ~AuditSigner();

  // The 32-byte private seed. Secret: persist it only in sealed storage.
  const crypto::SecretBytes& seed() const { return seed_; }
  // The raw 32-byte public key (RFC 8032 encoding).
  std::string public_key() const { return public_key_; }
  // Lower-case hex SHA-256 of public_key(): what AuditCheckpoint
  // .public_key_id holds. Safe to log.
  std::string public_key_id() const;
  // The public key as a PEM "PUBLIC KEY" (SubjectPublicKeyInfo, RFC 8410),
  // for the verifier's --public_key file.
  std::string PublicKeyPem() const;

  // The 64-byte Ed25519 signature of `message`.
  absl::StatusOr<std::string> Sign(absl::string_view message) const;

 private:
  struct PkeyFree {
    void operator()(EVP_PKEY* pkey) const;
  };

  AuditSigner(crypto::SecretBytes seed, std::string public_key,
              std::unique_ptr<EVP_PKEY, PkeyFree> pkey);

  crypto::SecretBytes seed_;
  std::string public_key_;
  std::unique_ptr<EVP_PKEY, PkeyFree> pkey_;
};

// OK if `signature` is a valid Ed25519 signature of `message` under the raw
// 32-byte `public_key_raw32`. INVALID_ARGUMENT if the public key is not 32
// bytes or not a valid encoding; DATA_LOSS if the signature is not 64 bytes
// or does not verify.
absl::Status VerifyEd25519(absl::string_view public_key_raw32,
                           absl::string_view message,
                           absl::string_view signature);

// The raw 32-byte key from a PEM "PUBLIC KEY" block holding an Ed25519
// SubjectPublicKeyInfo. INVALID_ARGUMENT if the text holds no such block or
// the key is of another algorithm.
absl::StatusOr<std::string> ParsePublicKeyPem(absl::string_view pem);

// Lower-case hex SHA-256 of a raw public key, as in public_key_id().
std::string PublicKeyId(absl::string_view public_key_raw32);

}  // namespace residency::key_service

#endif  // RESIDENCY_KEY_SERVICE_AUDIT_SIGNER_H_
