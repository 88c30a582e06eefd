// Scenario text-format parsing and validation (sim::ParseScenario) of
// arbitrary text, as `sim --scenario_file` reads a user's file.
//
// Input: a text-format residency.v1.Scenario.
//
// Invariants: a failure is INVALID_ARGUMENT and names the source; a scenario
// that loads prints to text that loads to the same scenario.

#include <cstddef>
#include <cstdint>
#include <string>

#include "absl/strings/match.h"
#include "google/protobuf/text_format.h"
#include "google/protobuf/util/message_differencer.h"
#include "sim/scenario.h"
#include "tests/fuzz/fuzz_util.h"

extern "C" int LLVMFuzzerTestOneInput(const uint8_t* data, size_t size) {
  using namespace residency;
  const absl::string_view text(reinterpret_cast<const char*>(data), size);
  absl::StatusOr<v1::Scenario> scenario = sim::ParseScenario(text, "fuzz");
  if (!scenario.ok()) {
    FUZZ_CHECK(scenario.status().code() == absl::StatusCode::kInvalidArgument);
    FUZZ_CHECK(absl::StrContains(scenario.status().message(), "fuzz"));
    FUZZ_CHECK(residency::fuzz::ErrorLineIsInText(scenario.status().message(),
                                                  "fuzz", text));
    return 0;
  }
  std::string printed;
  FUZZ_CHECK(google::protobuf::TextFormat::PrintToString(*scenario, &printed));
  absl::StatusOr<v1::Scenario> again = sim::ParseScenario(printed, "printed");
  FUZZ_CHECK(again.ok());
  FUZZ_CHECK(
      google::protobuf::util::MessageDifferencer::Equals(*scenario, *again));
  return 0;
}
