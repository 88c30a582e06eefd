#ifndef RESIDENCY_SIM_PHASES_H_
#define RESIDENCY_SIM_PHASES_H_

// The phases a scenario can run (residency.v1.Phase), each against the
// running world, writing what happened to the ledger. A phase fails (with a
// status) only when it cannot run at all; refusals and errors the parties
// meet are results, recorded in the ledger.

#include <cstdint>
#include <optional>
#include <string>

#include "absl/status/status.h"
#include "residency/v1/scenario.pb.h"
#include "sim/ledger.h"
#include "sim/world.h"

namespace residency::sim {

// The data-key cache a workload phase asks for: workload.data_key_cache, or
// nullopt (the population's) when it is 0 (workload.cc).
std::optional<uint32_t> CacheOf(const residency::v1::Workload& workload);

// Users through the client library (workload.cc).
absl::Status RunWorkload(const residency::v1::Workload& workload, World& world,
                         Ledger& ledger);

// MIXED: users read and write for workload.duration_ms (mixed.cc). Records
// operations "get@<label>" and "put@<label>", a Timeline, and per operation
// ops_, ok_ and availability_ figures _during_partition (wholly inside a
// partition window of a link it crosses), _outside_partition (meeting
// none) and _at_partition_edge (the rest).
absl::Status RunMixed(const std::string& label,
                      const residency::v1::Workload& workload, World& world,
                      Ledger& ledger);

// Arms a tap on a link, first collecting any tap an earlier phase armed
// (tap.cc).
absl::Status RunTap(const residency::v1::NetworkTap& tap, World& world,
                    Ledger& ledger);
// Collects every armed tap into the report: actor "tap/<link>", tap_*
// metrics, a note (tap.cc). The engine calls it after the last phase.
absl::Status FinishTaps(World& world, Ledger& ledger);

// An authority compels operators in its jurisdiction and asks every key
// service; decrypts whatever opens (compulsion.cc).
absl::Status RunCompulsion(const residency::v1::Compulsion& compulsion,
                           World& world, Ledger& ledger);

// Owners disable, enable or destroy their KEKs (key_action.cc).
absl::Status RunKeyAction(const residency::v1::KeyAction& action, World& world,
                          Ledger& ledger);

// A "secure and controllable" review: scans every file of a storage node's
// data directory, while it runs, for the users' canary and for key bytes
// (audit.cc).
absl::Status RunAudit(const residency::v1::Audit& audit, World& world,
                      Ledger& ledger);

// An insider copies a storage node's data directory and, with `tamper`,
// serves tampered answers to every user's reads (insider.cc).
absl::Status RunInsiderDump(const residency::v1::InsiderDump& insider,
                            World& world, Ledger& ledger);

// After the last phase: what each storage operator holds without being
// compelled (compulsion.cc).
absl::Status RecordOperatorHoldings(World& world, Ledger& ledger);

}  // namespace residency::sim

#endif  // RESIDENCY_SIM_PHASES_H_
