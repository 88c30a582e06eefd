#ifndef RESIDENCY_SIM_LEDGER_H_
#define RESIDENCY_SIM_LEDGER_H_

// Where phases write what happened, from any thread: operations and their
// latencies, refusals, what each actor obtained, and exposure, which is
// counted only for plaintext that matches what a user stored.

#include <mutex>
#include <ostream>
#include <set>
#include <string>

#include "absl/status/status.h"
#include "absl/time/time.h"
#include "sim/report.h"
#include "sim/world.h"

namespace residency::sim {

class Ledger {
 public:
  // `progress` may be nullptr.
  Ledger(World& world, Report& report, std::ostream* progress)
      : world_(world), report_(report), progress_(progress) {}

  // One call of `operation` ("put", "unwrap"): its outcome and, when it
  // succeeded, its latency.
  void Record(const std::string& operation, const absl::Status& status,
              absl::Duration elapsed);
  // `by` ("service/us-custodian") refused `actor`.
  void Refused(const std::string& actor, const std::string& by,
               const absl::Status& status);
  // Counts `plaintext` as exposed to `actor` when it is exactly what `owner`
  // stored under `object_id` (`version` 0: the latest), once per object
  // version and actor. Returns whether it counted.
  bool Exposed(const std::string& actor, const std::string& owner,
               const std::string& object_id, uint64_t version,
               const std::string& plaintext);
  // Runs `fn(report)` under the ledger's lock.
  template <typename Fn>
  void Update(Fn&& fn) {
    std::lock_guard<std::mutex> lock(mu_);
    fn(report_);
  }
  // One progress line ("[sim] ...") on the progress stream.
  void Progress(const std::string& line);

 private:
  World& world_;
  Report& report_;
  std::ostream* const progress_;
  std::mutex mu_;
  std::map<std::string, std::set<std::string>> counted_;
};

std::string Sha256(absl::string_view data);

}  // namespace residency::sim

#endif  // RESIDENCY_SIM_LEDGER_H_
