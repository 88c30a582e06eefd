#ifndef RESIDENCY_KEY_SERVICE_AUDIT_VERIFIER_H_
#define RESIDENCY_KEY_SERVICE_AUDIT_VERIFIER_H_

#include <cstdint>
#include <optional>
#include <string>

#include "absl/status/status.h"
#include "absl/status/statusor.h"
#include "absl/strings/string_view.h"
#include "residency/v1/key_service.pb.h"

namespace residency::key_service {

// Checks an audit log read (the items of ReadAuditLog, or of
// AuditLogReader::Read) one item at a time, in constant memory, against the
// layouts in audit_format.h:
//
//  - entries are contiguous, starting at the read's start sequence;
//  - each entry's entry_hash matches its contents, and its prev_hash equals
//    the entry_hash of the entry before it (32 zero bytes for entry 1);
//  - each checkpoint verifies under the given Ed25519 public key, comes right
//    after the entry it covers and holds that entry's entry_hash;
//  - the stream ends with a checkpoint covering its last entry;
//  - with a trusted checkpoint (one kept from an earlier read), the log still
//    holds that sequence with that head hash: this catches a tail truncated
//    or rewritten after the trusted checkpoint was signed, which a fresh
//    signature alone cannot.
//
// A checkpoint alone, without entries, is accepted when it covers only
// entries before the read's start (a read past the head); if it covers the
// entry just before the start, the entries that follow must link to it.
//
// Pass a trusted checkpoint only when the read runs to the end of the log
// (max_entries 0): a bounded read legitimately ends before it.
//
// Errors name the first bad item. DATA_LOSS for anything wrong with the log:
//   "audit entry 17: entry_hash does not match its contents (edited)"
//   "audit entry 17: prev_hash does not link to entry 16 (entry 16
//    rewritten, reordered or an entry deleted)"
//   "audit log jumps from entry 15 to 17: entry 16 missing"
//   "audit log ends at entry 38 but trusted checkpoint covers 40 (truncated)"
//   "checkpoint at 20: bad signature"
// INVALID_ARGUMENT for a public key that is not 32 bytes, FAILED_PRECONDITION
// for a trusted checkpoint this read cannot reach (it precedes the read's
// start by more than one entry). After the first error every call returns
// it again.
//
// Thread safety: not thread-safe; one verifier per stream.
//
// Example:
//   AuditVerifier verifier(public_key, trusted_checkpoint);
//   while (reader->Read(&item)) RETURN_IF_ERROR(verifier.Add(item));
//   RETURN_IF_ERROR(verifier.Finish());
class AuditVerifier {
 public:
  // `start_sequence` is the read's start_sequence (0 and 1 both mean the
  // start of the log, where entry 1 must chain from 32 zero bytes).
  explicit AuditVerifier(
      std::string public_key_raw32,
      std::optional<residency::v1::AuditCheckpoint> trusted = {},
      uint64_t start_sequence = 1);

  absl::Status Add(const residency::v1::ReadAuditLogResponse& item);
  // Checks what can only be judged at the end of the stream.
  absl::Status Finish();

  uint64_t entries_verified() const { return entries_; }
  uint64_t checkpoints_verified() const { return checkpoints_; }
  // The last checkpoint verified: its sequence and head hash.
  uint64_t head_sequence() const { return head_sequence_; }
  const std::string& head_hash() const { return head_hash_; }

 private:
  absl::Status AddEntry(const residency::v1::AuditEntry& entry);
  absl::Status AddCheckpoint(const residency::v1::AuditCheckpoint& checkpoint);
  absl::Status Fail(absl::Status status);

  const std::string public_key_;
  const std::optional<residency::v1::AuditCheckpoint> trusted_;
  const uint64_t start_;

  absl::Status status_;
  uint64_t entries_ = 0;
  uint64_t checkpoints_ = 0;
  // The last entry received (start - 1 before the first), and its
  // entry_hash, empty while unknown (a read from the middle, before any
  // entry or anchoring checkpoint).
  uint64_t last_sequence_;
  std::string last_hash_;
  bool anchored_by_trusted_ = false;
  bool covered_ = false;  // the last item was a checkpoint of the last entry
  uint64_t head_sequence_ = 0;
  std::string head_hash_;
};

// What VerifyAuditDirectory proved.
struct AuditVerification {
  uint64_t entries = 0;
  uint64_t checkpoints = 0;
  uint64_t head_sequence = 0;
  std::string head_hash;  // raw 32 bytes

  // "OK: 40 entries, head 3f9a... at 40, 5 checkpoints verified"
  std::string Summary() const;
};

// Verifies everything stored in an AuditLog directory, from entry 1, with
// AuditLogReader (RocksDB secondary: works offline, and alongside a running
// service, and needs no private key). Errors as AuditVerifier, plus the
// reader's (NOT_FOUND: no log there). A log whose last entries no stored
// checkpoint covers (the service stopped without closing it and has not
// been reopened) fails: nothing signed vouches for those entries yet.
absl::StatusOr<AuditVerification> VerifyAuditDirectory(
    const std::string& dir, absl::string_view public_key_raw32,
    std::optional<residency::v1::AuditCheckpoint> trusted = {});

// The raw Ed25519 key in a PEM public key file. NOT_FOUND if the file
// cannot be read, INVALID_ARGUMENT if it holds no Ed25519 public key.
absl::StatusOr<std::string> ReadPublicKeyPemFile(const std::string& path);

// An AuditCheckpoint in text-format protobuf, e.g.
//   sequence: 40
//   head_hash: "\x3f\x9a..."
//   time { seconds: 1700000000 }
//   signature: "..."
//   public_key_id: "..."
// NOT_FOUND if the file cannot be read, INVALID_ARGUMENT if it does not
// parse.
absl::StatusOr<residency::v1::AuditCheckpoint> ReadCheckpointTextFile(
    const std::string& path);

}  // namespace residency::key_service

#endif  // RESIDENCY_KEY_SERVICE_AUDIT_VERIFIER_H_
