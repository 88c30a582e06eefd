#ifndef RESIDENCY_SIM_TOPOLOGY_H_
#define RESIDENCY_SIM_TOPOLOGY_H_

// `sim --topology=FILE`: a scenario run against services already running
// elsewhere. The file is a text-format residency.v1.Topology
// (proto/residency/v1/scenario.proto).

#include <string>

#include "absl/status/statusor.h"
#include "residency/v1/scenario.pb.h"

namespace residency::sim {

// Reads and checks the topology in `path` for `scenario`'s world, and
// returns it with every relative path made relative to the file's
// directory. INVALID_ARGUMENT, as "topology file PATH:LINE:COL: ..." (the
// line and column of the mistake), for text that does not parse, a service
// listed twice or not in the world, an empty address, a key service
// without audit_public_key_file, or a missing ca_file or identity_dir; and,
// naming it, for every key service or storage node of the world the file
// does not list. NOT_FOUND when the file cannot be read.
absl::StatusOr<residency::v1::Topology> LoadTopology(
    const std::string& path, const residency::v1::Scenario& scenario);

// The same for `text` read from `path` (which only resolves relative paths
// and names the file in messages).
absl::StatusOr<residency::v1::Topology> ParseTopology(
    const std::string& text, const std::string& path,
    const residency::v1::Scenario& scenario);

}  // namespace residency::sim

#endif  // RESIDENCY_SIM_TOPOLOGY_H_
