// Wrapped-DEK parsing (key_service::UnwrapDataKey) of arbitrary wrapped
// values, key ids, key versions and object contexts.
//
// Input: the key version (4 bytes, big-endian), the key id (a length byte
// and the bytes), the object context (a 2-byte big-endian length and the
// bytes), then the wrapped value. The KEK is the throwaway one in
// fuzz_util.h.
//
// Invariants: a failure is INVALID_ARGUMENT and its message does not depend
// on the wrapped bytes (so it cannot carry them); a success is a 32-byte DEK
// from a 60-byte value, does not open under another KEK, key version or
// context, and round-trips: wrapping the DEK again opens to the same DEK.

#include <cstddef>
#include <cstdint>
#include <string>

#include "absl/status/status.h"
#include "key_service/wrapped_key.h"
#include "tests/fuzz/fuzz_util.h"

extern "C" int LLVMFuzzerTestOneInput(const uint8_t* data, size_t size) {
  using namespace residency;
  using namespace residency::fuzz;
  InputReader in(data, size);
  const uint32_t key_version = static_cast<uint32_t>(in.UInt(4));
  const absl::string_view key_id = in.ShortString();
  const absl::string_view context = in.Take(in.UInt(2));
  const absl::string_view wrapped = in.rest();

  const crypto::SecretBytes kek = ThrowawayKey(key_service::kKekSize, kKekFill);
  absl::StatusOr<crypto::SecretBytes> dek =
      key_service::UnwrapDataKey(kek, key_id, key_version, context, wrapped);
  if (!dek.ok()) {
    FUZZ_CHECK(dek.status().code() == absl::StatusCode::kInvalidArgument);
    // No message ever carries the wrapped bytes: it is the same for any
    // other value of the same length. (Comparing messages rather than
    // searching them for the bytes: the bytes may spell out the message.)
    std::string flipped(wrapped);
    for (char& c : flipped) c = static_cast<char>(c ^ 0x5a);
    absl::StatusOr<crypto::SecretBytes> other_dek =
        key_service::UnwrapDataKey(kek, key_id, key_version, context, flipped);
    if (!other_dek.ok()) FUZZ_CHECK(other_dek.status() == dek.status());
    return 0;
  }
  FUZZ_CHECK(wrapped.size() == key_service::kWrappedDataKeySize);
  FUZZ_CHECK(dek->size() == key_service::kDataKeySize);

  const crypto::SecretBytes other =
      ThrowawayKey(key_service::kKekSize, kOtherKeyFill);
  FUZZ_CHECK(
      !key_service::UnwrapDataKey(other, key_id, key_version, context, wrapped)
           .ok());
  FUZZ_CHECK(!key_service::UnwrapDataKey(kek, key_id, key_version + 1, context,
                                         wrapped)
                  .ok());
  FUZZ_CHECK(!key_service::UnwrapDataKey(kek, key_id, key_version,
                                         std::string(context) + "x", wrapped)
                  .ok());

  absl::StatusOr<std::string> rewrapped =
      key_service::WrapDataKey(kek, key_id, key_version, context, *dek);
  FUZZ_CHECK(rewrapped.ok());
  FUZZ_CHECK(rewrapped->size() == key_service::kWrappedDataKeySize);
  absl::StatusOr<crypto::SecretBytes> same =
      key_service::UnwrapDataKey(kek, key_id, key_version, context, *rewrapped);
  FUZZ_CHECK(same.ok());
  FUZZ_CHECK(*same == *dek);
  return 0;
}
