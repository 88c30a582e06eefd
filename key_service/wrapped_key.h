#ifndef RESIDENCY_KEY_SERVICE_WRAPPED_KEY_H_
#define RESIDENCY_KEY_SERVICE_WRAPPED_KEY_H_

// The wrapped-DEK format: the `wrapped` bytes of residency.v1.WrappedKey.
// A 32-byte data key (DEK) is sealed under a 32-byte key-encryption key (KEK)
// with crypto::Aead AES-256-GCM (NIST SP 800-38D), random 96-bit nonce.
//
// Wrapped value, always exactly 60 bytes:
//
//   offset  size  field
//   0       12    nonce, fresh for every wrap
//   12      32    the DEK, encrypted
//   44      16    GCM authentication tag
//
// Associated data (authenticated, not stored), for a key id of K bytes and an
// object context of C bytes:
//
//   offset  size  field
//   0       24    the ASCII label "residency/wrapped-dek/v1"
//   24      1     0x00
//   25      4     K, unsigned 32-bit big-endian
//   29      K     key_id
//   29+K    4     key_version, unsigned 32-bit big-endian
//   33+K    C     object_context: crypto::EncodeObjectContext(owner,
//                 object_id, version) of the object the DEK encrypts
//
// The label separates this use of a KEK from any other; the key id and
// version name the KEK the wrap belongs to; the object context binds it to
// one object version. A wrap replayed onto another object or version, or
// presented as another key or key version, fails to authenticate. The key id
// is length-prefixed, the version fixed-size and the object context takes the
// rest, so no two (key_id, key_version, object_context) triples share
// associated data.
//
// Errors (both functions; no message ever contains key bytes):
//   INVALID_ARGUMENT  a KEK or DEK that is not 32 bytes; a key_id that is not
//                     1-128 bytes of printable ASCII (0x20-0x7e); key_version
//                     0; an empty or over-long (>
//                     crypto::kMaxObjectContextSize) object context; a wrapped
//                     value that is not 60 bytes
//                     ("wrapped key is N bytes, expected 60"); a wrapped
//                     value that does not authenticate ("wrapped key does not
//                     authenticate under key 'ID' version V for this context
//                     (tampered, wrong key version or wrong object)").
//   INTERNAL          OpenSSL failed.
//
// Thread-safe: pure functions of their arguments.
//
// Example:
//   ASSIGN_OR_RETURN(std::string context,
//                    crypto::EncodeObjectContext(owner, object_id, version));
//   ASSIGN_OR_RETURN(std::string wrapped,
//                    WrapDataKey(kek, "alice-photos", /*key_version=*/2,
//                                context, dek));
//   ASSIGN_OR_RETURN(crypto::SecretBytes same_dek,
//                    UnwrapDataKey(kek, "alice-photos", /*key_version=*/2,
//                                  context, wrapped));

#include <cstddef>
#include <cstdint>
#include <string>

#include "absl/status/statusor.h"
#include "absl/strings/string_view.h"
#include "crypto/secret_bytes.h"

namespace residency::key_service {

inline constexpr size_t kKekSize = 32;
inline constexpr size_t kDataKeySize = 32;
inline constexpr size_t kWrappedDataKeySize = 12 + kDataKeySize + 16;
inline constexpr size_t kMaxKeyIdSize = 128;
// The label that starts the associated data (without its 0x00 terminator).
inline constexpr absl::string_view kWrappedDekLabel =
    "residency/wrapped-dek/v1";

// Seals `dek` under `kek` for the given key id, key version and object
// context. Returns the 60-byte wrapped value.
absl::StatusOr<std::string> WrapDataKey(const crypto::SecretBytes& kek,
                                        absl::string_view key_id,
                                        uint32_t key_version,
                                        absl::string_view object_context,
                                        const crypto::SecretBytes& dek);

// Opens a value made by WrapDataKey with the same KEK, key id, key version
// and object context, and returns the 32-byte DEK.
absl::StatusOr<crypto::SecretBytes> UnwrapDataKey(
    const crypto::SecretBytes& kek, absl::string_view key_id,
    uint32_t key_version, absl::string_view object_context,
    absl::string_view wrapped);

}  // namespace residency::key_service

#endif  // RESIDENCY_KEY_SERVICE_WRAPPED_KEY_H_
