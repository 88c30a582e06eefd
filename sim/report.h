#ifndef RESIDENCY_SIM_REPORT_H_
#define RESIDENCY_SIM_REPORT_H_

// What a scenario run found: per actor what it obtained, exposure per user,
// latencies and errors per operation, and every figure as a named metric
// that expectations test (metric names: sim/README.md).

#include <cstdint>
#include <map>
#include <ostream>
#include <string>
#include <vector>

#include "absl/status/statusor.h"
#include "absl/strings/string_view.h"
#include "residency/v1/scenario.pb.h"
#include "sim/tap_stats.h"

namespace residency::sim {

// What one actor ended up holding.
struct Obtained {
  uint64_t objects = 0;
  uint64_t ciphertext_bytes = 0;
  uint64_t wrapped_keys = 0;
  // Data keys (or shares) it unwrapped, or unwrapped itself with a KEK.
  uint64_t data_keys = 0;
  uint64_t keks = 0;
  // Plaintext it holds, checked byte for byte against what users stored.
  uint64_t plaintext_bytes = 0;
  // Refusals it met (policy denials, key state), by who refused and why.
  std::map<std::string, uint64_t> refusals;
};

struct OperationStats {
  uint64_t ok = 0;
  // By status code name ("UNAVAILABLE").
  std::map<std::string, uint64_t> errors;
  // The first error ("UNAVAILABLE: failed to connect ..."), so a report
  // says why calls failed and not only how many; C-escaped, and cut after
  // 240 characters.
  std::string first_error;
  std::vector<double> latencies_ms;
};

// What an auditor found in one key service's audit log after the last phase
// (sim/audit_trail.h): read as an auditor would, and verified with the key
// service's own verifier (key_service/audit_verifier.h).
struct AuditLogFindings {
  std::string jurisdiction;  // the key service's
  // "ReadAuditLog as operator/auditor (SECURITY_AUDIT)", or "in-process: ..."
  // when the service's policy lets no auditor read it.
  std::string read_by;
  uint64_t entries = 0;
  uint64_t checkpoints = 0;
  // Both the stream the auditor read and the stored log, checked offline
  // after the service closed it against the stream's last checkpoint:
  // entry hashes, the hash chain and every Ed25519 checkpoint signature.
  bool verified = false;
  // "OK: 40 entries, ..." or the first problem the verifier found.
  std::string verification;
  // Third-party requests (justification THIRD_PARTY_DATA_REQUEST, or any
  // request of an authority): principal ("authority/cn") -> "ALLOW"/"DENY"
  // -> deciding rule -> entries.
  std::map<std::string, std::map<std::string, std::map<std::string, uint64_t>>>
      third_party;
  // Principal -> operation ("unwrap", "export_key") -> outcome -> entries,
  // where the outcome is "granted" (allowed and answered OK), "failed"
  // (allowed, then refused by key state) or "denied" (by policy).
  std::map<std::string, std::map<std::string, std::map<std::string, uint64_t>>>
      operations;
  // Allowed third-party requests from an authority of another jurisdiction
  // than the key service's.
  uint64_t foreign_allowed = 0;
};

// Availability over time of one MIXED workload phase (sim/mixed.cc): what
// the operations that started in each bucket got.
struct TimelineBucket {
  uint64_t get_ok = 0;
  uint64_t get_failed = 0;
  uint64_t put_ok = 0;
  uint64_t put_failed = 0;
  // The bucket's time meets a partition window of a link the phase's
  // operations cross.
  bool partitioned = false;
};

struct Timeline {
  std::string phase;
  // Its operations ("get@no-cache", "put@no-cache").
  std::string get_op;
  std::string put_op;
  // When the phase began, in ms since the first phase began (the clock of
  // partition windows).
  double start_ms = 0;
  double bucket_ms = 250;
  std::vector<TimelineBucket> buckets;
};

struct ExpectationResult {
  residency::v1::Expectation expectation;
  bool found = false;  // the metric exists in this report
  double actual = 0;
  bool passed = false;
};

struct Report {
  std::string scenario;
  std::string title;
  std::string description;
  std::vector<std::string> models;
  uint64_t seed = 0;
  double seconds = 0;

  // By actor principal ("authority/cn", "operator/cn-telecom").
  std::map<std::string, Obtained> actors;
  // User -> bytes the user stored (latest versions).
  std::map<std::string, uint64_t> user_bytes;
  // Actor -> user -> plaintext bytes of that user the actor obtained.
  std::map<std::string, std::map<std::string, uint64_t>> exposed;
  // "put", "get", "export", "unwrap", ...
  std::map<std::string, OperationStats> operations;
  // Key service -> "ALLOW"/"DENY" -> principal -> audit entries.
  std::map<std::string, std::map<std::string, std::map<std::string, uint64_t>>>
      audit;
  // Reads that returned bytes differing from what was stored: must be 0.
  uint64_t wrong_plaintext = 0;
  // Per link ("CN-US"): calls, lost, partitioned, request_bytes,
  // response_bytes.
  std::map<std::string, std::map<std::string, double>> links;
  // One per MIXED workload phase, in phase order.
  std::vector<Timeline> timelines;
  // One per tap, in the order they were collected (sim/tap.cc).
  std::vector<TapStats> taps;
  // Figures phases add under their own names (see sim/README.md).
  std::map<std::string, double> extra;
  // Free-form findings, one line each ("what metadata alone reveals").
  std::vector<std::string> notes;

  std::vector<ExpectationResult> expectations;

  // --- Audit logs, findings and the world, for reports and comparisons ---
  // Key service -> what its audit log shows (also summed up in `audit`).
  std::map<std::string, AuditLogFindings> audit_logs;
  // Findings that need attention, one line each ("us-custodian (US) ALLOWED
  // 8 requests of authority/cn under rule maintenance-access").
  std::vector<std::string> findings;
  // The scenario's world and population: diagrams and --compare.
  residency::v1::World world;
  residency::v1::Population population;

  // Every figure as name -> value (see sim/README.md for the names).
  std::map<std::string, double> Metrics() const;
  // Evaluates `expectations` into this->expectations; true if all pass.
  bool Check(
      const google::protobuf::RepeatedPtrField<residency::v1::Expectation>&
          expectations);
};

// A JSON string literal of `s`: quotes, backslashes and control characters
// escaped.
std::string JsonQuote(absl::string_view s);
// "==", "<=", ">=", "<", ">" ("?" for an unset operator).
const char* ExpectationOpSymbol(residency::v1::Expectation::Op op);

// Percentile (0-100) of `values` by nearest rank; 0 when empty.
double Percentile(std::vector<double> values, double p);

void WriteTextReport(const Report& report, std::ostream& out);
void WriteJsonReport(const Report& report, std::ostream& out);
// One self-contained page (inline CSS and SVG, no scripts or external
// assets): tables, a data-flow diagram across jurisdictions and latency
// charts. Every string from the scenario is HTML-escaped.
void WriteHtmlReport(const Report& report, std::ostream& out);
// Markdown for a pull request, with a Mermaid flowchart of the data flow.
void WriteMarkdownReport(const Report& report, std::ostream& out);

// The parts of both reports on timelines and taps (report_traffic.cc).
// Text: an availability-over-time line per MIXED phase, a summary per tap;
// nothing when there are none.
void WriteTimelinesText(const Report& report, std::ostream& out);
void WriteTapsText(const Report& report, std::ostream& out);
// JSON: `"timelines": [...], "taps": [...]` members (no leading or
// trailing comma), for WriteJsonReport's object.
void WriteTrafficJson(const Report& report, std::ostream& out);

}  // namespace residency::sim

#endif  // RESIDENCY_SIM_REPORT_H_
