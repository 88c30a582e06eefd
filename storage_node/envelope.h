#ifndef RESIDENCY_STORAGE_NODE_ENVELOPE_H_
#define RESIDENCY_STORAGE_NODE_ENVELOPE_H_

#include "absl/status/status.h"
#include "absl/strings/string_view.h"
#include "residency/v1/common.pb.h"

namespace residency::storage_node {

// Checks that an ObjectHeader describes a well-formed envelope before a
// single ciphertext byte is stored, so the node holds ciphertext only:
//   - object: owner 1-128 bytes without NUL or '/', object id 1-1024 bytes
//     without NUL, version >= 1;
//   - a known payload algorithm and custody mode;
//   - wrapped keys matching the custody mode (CUSTODIAN: one KEY_SERVICE
//     key, share 0; E2E: one KEY_SERVICE and one DEVICE key, shares 1 and
//     2; SPLIT: two KEY_SERVICE keys of different jurisdictions, shares 1
//     and 2), each with a key id, a version >= 1 and a 60-byte wrap;
//   - ciphertext_length equal to the chunked-encryption length for
//     plaintext_length.
// INVALID_ARGUMENT naming the object and what is wrong, e.g.
// "object 'alice/a.jpg' v3: ciphertext length 70000 is not a valid
// chunked-encryption length for 69000 plaintext bytes (expected 69128)".
absl::Status ValidateEnvelope(const residency::v1::ObjectHeader& header);

// FAILED_PRECONDITION naming both jurisdictions when the header's residency
// rule does not allow `node_jurisdiction` (an empty rule allows anywhere).
absl::Status CheckResidency(const residency::v1::ObjectHeader& header,
                            absl::string_view node_jurisdiction);

// "'owner/object_id' vN", quoted and cut short, for messages.
std::string DescribeObject(const residency::v1::ObjectRef& object);

}  // namespace residency::storage_node

#endif  // RESIDENCY_STORAGE_NODE_ENVELOPE_H_
