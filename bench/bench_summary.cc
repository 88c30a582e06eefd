#include "bench/bench_summary.h"

#include <cstdio>
#include <ostream>

#include "absl/strings/str_format.h"

namespace residency::bench {
namespace {

using Rate = SummaryReporter::Rate;

bool RateOf(const benchmark::BenchmarkReporter::Run& run, Rate* rate) {
  for (const char* name : {"bytes_per_second", "items_per_second"}) {
    auto it = run.counters.find(name);
    if (it != run.counters.end()) {
      *rate = {it->second.value, /*bytes=*/name[0] == 'b'};
      return true;
    }
  }
  return false;
}

std::string FormatRate(const Rate& rate) {
  if (!rate.bytes) return absl::StrFormat("%.0f /s", rate.value);
  if (rate.value >= 1e6) return absl::StrFormat("%.1f MB/s", rate.value / 1e6);
  return absl::StrFormat("%.1f kB/s", rate.value / 1e3);
}

}  // namespace

void SummaryReporter::ReportRuns(const std::vector<Run>& runs) {
  for (const Run& run : runs) {
    if (run.error_occurred) continue;
    const std::string name = run.run_name.str();
    auto ratio = run.counters.find("ratio");
    if (ratio != run.counters.end() &&
        (run.run_type != Run::RT_Aggregate || run.aggregate_name == "median")) {
      ratios_[name] = ratio->second.value;
    }
    Rate rate;
    if (!RateOf(run, &rate)) continue;
    if (run.run_type == Run::RT_Aggregate) {
      if (run.aggregate_name == "median") median_rates_[name] = rate;
    } else {
      rates_[name] = rate;
    }
  }
  ConsoleReporter::ReportRuns(runs);
}

void SummaryReporter::Finalize() {
  ConsoleReporter::Finalize();
  std::ostream& out = GetOutputStream();
  auto lookup = [&](const std::string& name, Rate* rate) {
    auto m = median_rates_.find(name);
    if (m != median_rates_.end()) {
      *rate = m->second;
      return true;
    }
    auto r = rates_.find(name);
    if (r == rates_.end()) return false;
    *rate = r->second;
    return true;
  };
  out << "\nSummary (each figure beside its same-run baseline; \"paired\": "
         "ratio timed\nalternately with the baseline in one loop)\n";
  out << absl::StrFormat("%-40s %14s %14s %7s %7s\n", "figure", "measured",
                         "baseline", "ratio", "target");
  for (const Comparison& c : comparisons_) {
    Rate subject, baseline;
    if (!lookup(c.subject, &subject) || !lookup(c.baseline, &baseline) ||
        baseline.value <= 0) {
      out << absl::StrFormat("%-40s %14s\n", c.label, "(not run)");
      continue;
    }
    double ratio = subject.value / baseline.value;
    std::string how;
    if (auto paired = ratios_.find(c.paired);
        !c.paired.empty() && paired != ratios_.end()) {
      ratio = paired->second;
      how = " (paired)";
    }
    std::string target = "-";
    if (c.target > 0) {
      target = absl::StrFormat("%.2f%s", c.target,
                               ratio >= c.target ? "" : " BELOW");
    }
    out << absl::StrFormat("%-40s %14s %14s %7.3f %7s%s\n", c.label,
                           FormatRate(subject), FormatRate(baseline), ratio,
                           target, how);
  }
  out.flush();
}

int RunWithSummary(int argc, char** argv, std::vector<Comparison> comparisons) {
  benchmark::Initialize(&argc, argv);
  if (benchmark::ReportUnrecognizedArguments(argc, argv)) return 1;
  SummaryReporter reporter(std::move(comparisons));
  benchmark::RunSpecifiedBenchmarks(&reporter);
  benchmark::Shutdown();
  return 0;
}

}  // namespace residency::bench
