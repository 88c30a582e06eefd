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
  std::vector<double> latencies_ms;
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
  bool found = false;    // the metric exists in this report
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

  // Every figure as name -> value (see sim/README.md for the names).
  std::map<std::string, double> Metrics() const;
  // Evaluates `expectations` into this->expectations; true if all pass.
  bool Check(const google::protobuf::RepeatedPtrField<
             residency::v1::Expectation>& expectations);
};

// Percentile (0-100) of `values` by nearest rank; 0 when empty.
double Percentile(std::vector<double> values, double p);

void WriteTextReport(const Report& report, std::ostream& out);
void WriteJsonReport(const Report& report, std::ostream& out);

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
