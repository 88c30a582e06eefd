#ifndef RESIDENCY_CRYPTO_RANDOM_H_
#define RESIDENCY_CRYPTO_RANDOM_H_

#include <cstddef>
#include <string>

#include "absl/status/statusor.h"
#include "crypto/secret_bytes.h"

namespace residency::crypto {

// Cryptographically secure random bytes from OpenSSL's DRBG (RAND_bytes).
// Thread-safe. Returns INTERNAL if the DRBG cannot produce output (for
// example when it failed to seed); callers must not fall back to anything
// weaker.
absl::StatusOr<std::string> RandomBytes(size_t size);

// As RandomBytes, for key material.
absl::StatusOr<SecretBytes> RandomSecret(size_t size);

}  // namespace residency::crypto

#endif  // RESIDENCY_CRYPTO_RANDOM_H_
