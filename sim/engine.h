#ifndef RESIDENCY_SIM_ENGINE_H_
#define RESIDENCY_SIM_ENGINE_H_

// Runs a scenario against real services: every key service and storage node
// of its world in-process on its own loopback port (or each its own process,
// or already running elsewhere: RunOptions::world), real gRPC and mTLS,
// certificates from a throwaway CA; users through the client library;
// adversaries with their own certificates. What each party obtains is
// measured, not assumed: the authority's plaintext is what it could really
// decrypt, compared byte for byte with what users stored.

#include <cstdint>
#include <functional>
#include <ostream>
#include <string>

#include "absl/status/statusor.h"
#include "residency/v1/scenario.pb.h"
#include "sim/report.h"
#include "sim/world.h"

namespace residency::sim {

struct RunOptions {
  // Holds data directories, keys and certificates; must exist and be empty.
  std::string work_dir;
  // Progress lines ("phase 2/4 compel: ..."), or nullptr for none.
  std::ostream* progress = nullptr;
  // Replaces population.seed when non-zero.
  uint64_t seed = 0;
  // Runs after the phases and the audit-log reads, while every service
  // still runs: tests read the world's keys here.
  std::function<void(World& world)> before_stop;
  // Runs once every service has stopped and closed its stores, before the
  // stored audit logs are verified offline: tests tamper with them here.
  std::function<void(const std::string& work_dir)> after_stop;
  // Where the services run (in-process by default).
  WorldOptions world;
};

// Runs every phase in order and returns the report with expectations
// evaluated. Fails (without a report) only when the world cannot start or a
// phase cannot run at all; what parties are refused is part of the report.
absl::StatusOr<Report> RunScenario(const residency::v1::Scenario& scenario,
                                   const RunOptions& options);

}  // namespace residency::sim

#endif  // RESIDENCY_SIM_ENGINE_H_
