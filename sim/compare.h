#ifndef RESIDENCY_SIM_COMPARE_H_
#define RESIDENCY_SIM_COMPARE_H_

// Two regimes side by side (sim/run --compare=gov_request,key_relocation):
// what changed in the world (key services and their jurisdictions, custody
// mode, the rules that let others than the owners at keys), every metric
// that differs (exposure first, timing last), and why exposure changed: how
// each key service answered each authority, by rule, from its audit log.

#include <optional>
#include <ostream>
#include <string>
#include <vector>

#include "sim/report.h"

namespace residency::sim {

struct Comparison {
  struct Aspect {
    std::string name;  // "key services"
    std::string a, b;  // each side, one line
  };
  struct Row {
    std::string metric;
    // Absent when the metric exists on one side only.
    std::optional<double> a, b;
    // Index into Groups(): exposure first, timing last.
    int group = 0;
  };
  static const std::vector<std::string>& Groups();

  const Report* a = nullptr;
  const Report* b = nullptr;
  std::vector<Aspect> changed;         // world aspects that differ
  std::vector<std::string> unchanged;  // names of aspects that do not
  std::vector<std::string> why;        // lines, per authority
  std::vector<Row> rows;               // differing metrics, grouped
};

// Both reports must outlive the result.
Comparison Compare(const Report& a, const Report& b);

void WriteTextComparison(const Comparison& c, std::ostream& out);
void WriteJsonComparison(const Comparison& c, std::ostream& out);
void WriteMarkdownComparison(const Comparison& c, std::ostream& out);
void WriteHtmlComparison(const Comparison& c, std::ostream& out);

}  // namespace residency::sim

#endif  // RESIDENCY_SIM_COMPARE_H_
