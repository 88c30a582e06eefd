# Writes OUT: a C++ file defining residency::sim::GeneratedBuiltinScenarios()
# with the name and text of every DIR/*.textproto, in name order.
file(GLOB files "${DIR}/*.textproto")
list(SORT files)
set(body "")
foreach(f IN LISTS files)
  get_filename_component(name "${f}" NAME_WE)
  file(READ "${f}" text)
  string(APPEND body "      {\"${name}\", R\"scenario(${text})scenario\"},\n")
endforeach()
file(WRITE "${OUT}.tmp"
"// Generated from sim/scenarios/*.textproto by sim/embed_scenarios.cmake.
#include <vector>

#include \"sim/scenario.h\"

namespace residency::sim {

const std::vector<BuiltinScenario>& GeneratedBuiltinScenarios() {
  static const auto* const scenarios = new std::vector<BuiltinScenario>{
${body}  };
  return *scenarios;
}

}  // namespace residency::sim
")
execute_process(COMMAND ${CMAKE_COMMAND} -E copy_if_different "${OUT}.tmp" "${OUT}")
