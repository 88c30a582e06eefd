#ifndef RESIDENCY_CRYPTO_OBJECT_CONTEXT_H_
#define RESIDENCY_CRYPTO_OBJECT_CONTEXT_H_

// The canonical encoding of one object version (residency.v1.ObjectRef):
// the Cobblestone chunked-encryption context of the payload (crypto/chunked.h)
// and the tail of a wrapped DEK's associated data (key_service/wrapped_key.h).
// Binding both to these bytes means a ciphertext or wrapped key copied to
// another owner, object id or version no longer decrypts.
//
// Layout, for an owner of A bytes and an object id of B bytes:
//
//   offset      size  field
//   0           4     A, unsigned 32-bit big-endian
//   4           A     owner
//   4+A         4     B, unsigned 32-bit big-endian
//   8+A         B     object_id
//   8+A+B       8     version, unsigned 64-bit big-endian
//
// for a total of 16 + A + B bytes (18 to 1168). Every variable-length field
// is preceded by its length, so the encoding is injective: ("ab", "c", 1) and
// ("a", "bc", 1) encode differently, and no encoding is a prefix of another.
//
// Example, owner "alice", object id "a/b", version 3 (hex):
//
//   00000005 616c696365 00000003 612f62 0000000000000003

#include <cstddef>
#include <cstdint>
#include <string>

#include "absl/status/statusor.h"
#include "absl/strings/string_view.h"

namespace residency::crypto {

// Limits from residency.v1.ObjectRef (proto/residency/v1/common.proto).
inline constexpr size_t kMaxObjectOwnerSize = 128;
inline constexpr size_t kMaxObjectIdSize = 1024;
// The largest encoding EncodeObjectContext returns.
inline constexpr size_t kMaxObjectContextSize =
    4 + kMaxObjectOwnerSize + 4 + kMaxObjectIdSize + 8;

// Returns the encoding above, or INVALID_ARGUMENT naming the field and its
// length when: owner is not 1-128 bytes; object_id is not 1-1024 bytes or
// contains a NUL byte; version is 0 ("latest" is meaningful only in requests,
// never in what a ciphertext is bound to). The bytes are not otherwise
// interpreted: UTF-8 validity of object_id is the caller's (protobuf's) check.
//
// Thread-safe (a pure function).
absl::StatusOr<std::string> EncodeObjectContext(absl::string_view owner,
                                                absl::string_view object_id,
                                                uint64_t version);

}  // namespace residency::crypto

#endif  // RESIDENCY_CRYPTO_OBJECT_CONTEXT_H_
