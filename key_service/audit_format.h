#ifndef RESIDENCY_KEY_SERVICE_AUDIT_FORMAT_H_
#define RESIDENCY_KEY_SERVICE_AUDIT_FORMAT_H_

// The byte layouts that make the audit log tamper-evident: the canonical
// encoding that an AuditEntry's hash covers, and the message an
// AuditCheckpoint's Ed25519 signature covers.
//
// Protobuf wire bytes are not canonical (field order, unknown fields and
// varint widths may vary between serializers), so neither hash nor signature
// is ever computed over them. Both layouts below are fixed: integers are
// big-endian and fixed-width, strings are a u32 big-endian byte count followed
// by the bytes, and every field is always present, in the order shown. An
// unset message field (time, justification, legal_process, issued_at, object)
// encodes exactly like one holding default values: the log gives the two no
// different meaning. Unknown fields are not covered.
//
// Canonical entry encoding (AuditEntry fields 1-13):
//
//   offset  size   field
//   0       25     domain label "residency/audit-entry/v1\0" (NUL included)
//   25      8      sequence                        u64
//   33      8      time.seconds                    i64
//   41      4      time.nanos                      i32
//   45      4+n    principal                       string
//   then, each starting where the previous one ends:
//           4      operation                       i32 (enum value)
//           4+n    request_id                      string
//           4      justification.reason            i32 (enum value)
//           4+n    justification.legal_process.issuing_authority  string
//           4+n    justification.legal_process.jurisdiction       string
//           4+n    justification.legal_process.legal_basis        string
//           4+n    justification.legal_process.target_owner       string
//           4+n    justification.legal_process.scope              string
//           4+n    justification.legal_process.reference_id       string
//           8      justification.legal_process.issued_at.seconds  i64
//           4      justification.legal_process.issued_at.nanos    i32
//           4+n    justification.detail            string
//           4+n    key_id                          string
//           4      key_version                     u32
//           4+n    object.owner                    string
//           4+n    object.object_id                string
//           8      object.version                  u64
//           4      decision                        i32 (enum value)
//           4+n    rule                            string
//           4      status_code                     i32
//           4+n    status_message                  string
//
// where "string" is a u32 big-endian length n followed by n bytes. An entry
// whose strings are all empty encodes to exactly kMinCanonicalEntrySize
// bytes.
//
// The chain:
//
//   entry_hash = SHA-256(prev_hash || canonical encoding)
//
// with prev_hash (32 bytes) the entry_hash of the entry before, or 32 zero
// bytes for entry 1. prev_hash and entry_hash themselves (fields 14, 15) are
// not part of the canonical encoding.
//
// Checkpoint signing input (82 bytes; signed with Ed25519, RFC 8032):
//
//   offset  size   field
//   0       30     domain label "residency/audit-checkpoint/v1\0" (NUL
//                  included)
//   30      8      sequence                        u64
//   38      32     head_hash (entry_hash of the entry at sequence)
//   70      8      time.seconds                    i64
//   78      4      time.nanos                      i32
//
// The two domain labels differ, so an entry encoding can never be presented
// as a checkpoint signing input or the other way round.
//
// These functions are total: they encode whatever the message holds. A
// well-formed entry's prev_hash and a checkpoint's head_hash are 32 bytes;
// AuditVerifier checks those lengths before it compares anything.

#include <cstddef>
#include <cstdint>
#include <string>

#include "absl/strings/string_view.h"
#include "absl/time/time.h"
#include "residency/v1/key_service.pb.h"

namespace residency::key_service {

inline constexpr size_t kAuditHashSize = 32;

// The domain labels, NUL included.
inline constexpr absl::string_view kAuditEntryDomain{
    "residency/audit-entry/v1\0", 25};
inline constexpr absl::string_view kAuditCheckpointDomain{
    "residency/audit-checkpoint/v1\0", 30};

// Size of the encoding of an entry whose 14 strings are all empty: the label,
// the fixed-width fields and 14 zero length prefixes (141 bytes).
inline constexpr size_t kMinCanonicalEntrySize =
    25 /*label*/ + 8 /*sequence*/ + 12 /*time*/ + 4 /*operation*/ +
    4 /*reason*/ + 12 /*issued_at*/ + 4 /*key_version*/ + 8 /*version*/ +
    4 /*decision*/ + 4 /*status_code*/ + 14 * 4 /*string lengths*/;

inline constexpr size_t kCheckpointSigningInputSize = 30 + 8 + 32 + 8 + 4;

// The canonical encoding of `entry`'s fields 1-13, as laid out above.
std::string CanonicalAuditEntry(const residency::v1::AuditEntry& entry);

// SHA-256(entry.prev_hash() || CanonicalAuditEntry(entry)): the value
// entry.entry_hash() must hold.
std::string ComputeAuditEntryHash(const residency::v1::AuditEntry& entry);

// The 82-byte message an AuditCheckpoint's signature covers.
std::string CheckpointSigningInput(
    const residency::v1::AuditCheckpoint& checkpoint);

// SHA-256 of `data` (32 bytes).
std::string Sha256(absl::string_view data);

// 32 zero bytes: the prev_hash of entry 1 and the head of an empty log.
std::string ZeroAuditHash();

// Conversions between absl::Time and google.protobuf.Timestamp. ToTimestamp
// keeps nanos in [0, 1e9) for times before the epoch too, as Timestamp
// requires.
google::protobuf::Timestamp ToTimestamp(absl::Time time);
absl::Time FromTimestamp(const google::protobuf::Timestamp& timestamp);

}  // namespace residency::key_service

#endif  // RESIDENCY_KEY_SERVICE_AUDIT_FORMAT_H_
