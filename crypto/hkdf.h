#ifndef RESIDENCY_CRYPTO_HKDF_H_
#define RESIDENCY_CRYPTO_HKDF_H_

#include <cstddef>

#include "absl/status/statusor.h"
#include "absl/strings/string_view.h"
#include "crypto/secret_bytes.h"

namespace residency::crypto {

// HKDF (RFC 5869) through OpenSSL's EVP_KDF "HKDF". Thread-safe.
//
// Errors: INVALID_ARGUMENT when `length` is 0 or above 255 * HashLen (the RFC
// limit: 8160 bytes for SHA-256, 16320 for SHA-512), or when a required key
// is empty; INTERNAL if OpenSSL fails.

enum class HkdfHash { kSha256, kSha512 };

// Output size of the hash, in bytes (32 or 64).
size_t HkdfHashLength(HkdfHash hash);

// Extract-then-Expand: OKM = HKDF(IKM, salt, info, L). An empty salt means a
// string of HashLen zeros, as the RFC specifies.
absl::StatusOr<SecretBytes> Hkdf(HkdfHash hash, const SecretBytes& ikm,
                                 absl::string_view salt, absl::string_view info,
                                 size_t length);

// HKDF-Extract alone: PRK = HMAC-Hash(salt, IKM).
absl::StatusOr<SecretBytes> HkdfExtract(HkdfHash hash, const SecretBytes& ikm,
                                        absl::string_view salt);

// HKDF-Expand alone, with `prk` used as the PRK whatever its length (this is
// how chunked encryption uses its input key).
absl::StatusOr<SecretBytes> HkdfExpand(HkdfHash hash, const SecretBytes& prk,
                                       absl::string_view info, size_t length);

}  // namespace residency::crypto

#endif  // RESIDENCY_CRYPTO_HKDF_H_
