#ifndef RESIDENCY_SIM_SCENARIO_H_
#define RESIDENCY_SIM_SCENARIO_H_

// Loading scenarios (proto/residency/v1/scenario.proto): the built-ins
// compiled in from sim/scenarios/*.textproto, and users' own files.

#include <string>
#include <vector>

#include "absl/status/statusor.h"
#include "absl/strings/string_view.h"
#include "residency/v1/scenario.pb.h"

namespace residency::sim {

// Files larger than this are refused before parsing.
inline constexpr size_t kMaxScenarioFileSize = 1 << 20;

// Parses and validates a text-format scenario. `source` names it in errors
// ("scenario gov_request", "scenario file my.textproto").
//
// Errors (INVALID_ARGUMENT): a parse error as "SOURCE:LINE:COL: what"; a
// scenario that parses but cannot run, naming the field: an unknown
// jurisdiction, node or key service name, a duplicate name, a name outside
// [a-z0-9-]{1,64}, a key service policy of another jurisdiction or one the
// key service would refuse, split custody without two key services in two
// jurisdictions, an empty population, min_bytes > max_bytes, a phase with
// no action, an expectation without metric or operator.
absl::StatusOr<residency::v1::Scenario> ParseScenario(absl::string_view text,
                                                      absl::string_view source);

// Reads and parses a file; NOT_FOUND / INVALID_ARGUMENT name the path.
absl::StatusOr<residency::v1::Scenario> LoadScenarioFile(
    const std::string& path);

struct BuiltinScenario {
  std::string name;
  std::string text;
};

// Every built-in, in name order.
const std::vector<BuiltinScenario>& BuiltinScenarios();

// The built-in `name`, parsed; NOT_FOUND listing the known names.
absl::StatusOr<residency::v1::Scenario> LoadBuiltinScenario(
    absl::string_view name);

}  // namespace residency::sim

#endif  // RESIDENCY_SIM_SCENARIO_H_
