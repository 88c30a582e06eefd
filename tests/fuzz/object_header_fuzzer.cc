// ObjectHeader parsing and envelope validation, as a storage node does to
// the header of every Put (storage_node::ValidateEnvelope), then the
// reader's side: the object context and the unwrapping of its wrapped keys.
//
// Input: a residency.v1.ObjectHeader in protobuf wire format.
//
// Invariants: a header that validates names an object with a valid context,
// has a ciphertext length that maps back to its plaintext length,
// re-serializes to bytes that parse to an equal header that validates again,
// and has a residency decision; a wrapped key that opens under the
// throwaway KEK opens to a 32-byte DEK only for the header's own context.

#include <cstddef>
#include <cstdint>
#include <string>

#include "crypto/chunked.h"
#include "crypto/object_context.h"
#include "google/protobuf/util/message_differencer.h"
#include "key_service/wrapped_key.h"
#include "residency/v1/common.pb.h"
#include "storage_node/envelope.h"
#include "tests/fuzz/fuzz_util.h"

extern "C" int LLVMFuzzerTestOneInput(const uint8_t* data, size_t size) {
  using namespace residency;
  using namespace residency::fuzz;
  v1::ObjectHeader header;
  if (!header.ParseFromArray(data, static_cast<int>(size))) return 0;
  // Names for messages must never fail, whatever the bytes.
  (void)storage_node::DescribeObject(header.object());
  const absl::Status valid = storage_node::ValidateEnvelope(header);
  if (!valid.ok()) {
    FUZZ_CHECK(valid.code() == absl::StatusCode::kInvalidArgument);
    return 0;
  }

  absl::StatusOr<std::string> context = crypto::EncodeObjectContext(
      header.object().owner(), header.object().object_id(),
      header.object().version());
  FUZZ_CHECK(context.ok());
  absl::StatusOr<uint64_t> plaintext_length =
      crypto::ChunkedPlaintextLength(header.ciphertext_length());
  FUZZ_CHECK(plaintext_length.ok());
  FUZZ_CHECK(*plaintext_length == header.plaintext_length());

  std::string bytes;
  FUZZ_CHECK(header.SerializeToString(&bytes));
  v1::ObjectHeader again;
  FUZZ_CHECK(again.ParseFromString(bytes));
  FUZZ_CHECK(google::protobuf::util::MessageDifferencer::Equals(header, again));
  FUZZ_CHECK(storage_node::ValidateEnvelope(again).ok());

  const absl::Status here = storage_node::CheckResidency(header, "CN");
  FUZZ_CHECK(here.ok() || here.code() == absl::StatusCode::kFailedPrecondition);
  if (header.residency().allowed_jurisdictions().empty()) {
    FUZZ_CHECK(here.ok());
  }

  const crypto::SecretBytes kek = ThrowawayKey(key_service::kKekSize, kKekFill);
  for (const v1::WrappedKey& k : header.wrapped_keys()) {
    absl::StatusOr<crypto::SecretBytes> dek = key_service::UnwrapDataKey(
        kek, k.key_id(), k.key_version(), *context, k.wrapped());
    if (!dek.ok()) {
      FUZZ_CHECK(dek.status().code() == absl::StatusCode::kInvalidArgument);
      continue;
    }
    FUZZ_CHECK(dek->size() == key_service::kDataKeySize);
    // Bound to this object version: the next version's context fails.
    absl::StatusOr<std::string> next = crypto::EncodeObjectContext(
        header.object().owner(), header.object().object_id(),
        header.object().version() + 1);
    if (next.ok()) {
      FUZZ_CHECK(!key_service::UnwrapDataKey(kek, k.key_id(), k.key_version(),
                                             *next, k.wrapped())
                      .ok());
    }
  }
  return 0;
}
