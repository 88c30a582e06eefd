#ifndef RESIDENCY_SIM_AUDIT_TRAIL_H_
#define RESIDENCY_SIM_AUDIT_TRAIL_H_

// After the last phase an auditor reads every key service's audit log and
// checks it with the key service's own verifier (key_service/
// audit_verifier.h), in two steps:
//
//  1. While the world runs: the auditor (residency://operator/auditor,
//     justification SECURITY_AUDIT) calls ReadAuditLog over mTLS from inside
//     the service's jurisdiction, when the service's policy lets it; if the
//     policy does not, the log is read as the custodian itself could
//     (World::ReadStoredAuditLog: the in-process log, or a spawned
//     service's files; a --topology run fails). The stream is verified as
//     it arrives with the service's audit public key, obtained out of band
//     (World::AuditPublicKeyPem), and counted: entries by decision and
//     principal, third-party requests by deciding rule.
//  2. After the world has stopped and every log is closed: the stored log
//     is verified offline (VerifyAuditDirectory), trusting the last
//     checkpoint of the stream, so an entry edited, deleted or truncated
//     after the read is caught. A --topology run cannot reach the stored
//     log: the stream's verification stands alone, and the report says so.
//
// The report's audit_log_verified{key_service=K} is 1 only when both pass.

#include <optional>
#include <string>
#include <vector>

#include "absl/status/status.h"
#include "absl/status/statusor.h"
#include "residency/v1/key_service.pb.h"
#include "sim/ledger.h"
#include "sim/report.h"
#include "sim/world.h"

namespace residency::sim {

// The auditor's identity and the policy rule that built-in scenarios give it.
inline constexpr char kAuditorPrincipal[] = "residency://operator/auditor";

// What step 1 leaves for step 2, per key service.
struct AuditRead {
  std::string key_service;
  // The AuditLog directory (<key service data dir>/audit); empty when out
  // of reach (--topology).
  std::string store_dir;
  // Raw 32-byte Ed25519 key that verifies the checkpoints.
  std::string public_key;
  // The stream's last checkpoint, if it verified: trusted offline.
  std::optional<residency::v1::AuditCheckpoint> checkpoint;
  // The stream's verification (OK, or the first problem).
  absl::Status stream;
};

// Step 1: reads and verifies every key service's log and fills
// report.audit and report.audit_logs. Fails only when the reading itself
// cannot be set up (no identity for the auditor, no audit public key, a
// --topology log the auditor may not read); a log that does not verify is
// a finding, not an error.
absl::StatusOr<std::vector<AuditRead>> ReadAuditLogs(World& world,
                                                     Ledger& ledger);

// Step 2, once the world is stopped and destroyed (its logs closed): checks
// each stored log offline against its read, sets verified and verification,
// and adds a finding for every log that does not verify and for every key
// service that allowed an authority of another jurisdiction (naming the
// rule).
void VerifyStoredAuditLogs(const std::vector<AuditRead>& reads, Report& report);

}  // namespace residency::sim

#endif  // RESIDENCY_SIM_AUDIT_TRAIL_H_
