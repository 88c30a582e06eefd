#include "bench/bench_summary.h"

#include <sys/resource.h>

#include <cstdio>
#include <cstdlib>
#include <fstream>
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

// The largest resident set this process has had, in MiB (servers that a
// suite runs in-process included).
double PeakRssMiB() {
  struct rusage usage;
  if (getrusage(RUSAGE_SELF, &usage) != 0) return 0;
  return static_cast<double>(usage.ru_maxrss) / 1024.0;  // ru_maxrss is KiB
}

std::string FormatRate(const Rate& rate) {
  if (!rate.bytes) return absl::StrFormat("%.0f /s", rate.value);
  if (rate.value >= 1e6) return absl::StrFormat("%.1f MB/s", rate.value / 1e6);
  return absl::StrFormat("%.1f kB/s", rate.value / 1e3);
}

}  // namespace

void SummaryReporter::ReportRuns(const std::vector<Run>& runs) {
  for (const Run& run : runs) {
    if (run.error_occurred) {
      ++errors_;
      continue;
    }
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
  std::ofstream rows;
  if (const char* path = std::getenv("RESIDENCY_BENCH_SUMMARY")) {
    rows.open(path, std::ios::app);
    if (!rows) {
      std::fprintf(stderr, "cannot append to RESIDENCY_BENCH_SUMMARY=%s\n",
                   path);
      ++errors_;
    }
  }
  out << "\nSummary (each figure beside its same-run baseline; \"paired\": "
         "ratio timed\nalternately with the baseline in one loop)\n";
  out << absl::StrFormat("%-40s %14s %14s %7s %7s\n", "figure", "measured",
                         "baseline", "ratio", "target");
  for (const Comparison& c : comparisons_) {
    Rate subject, baseline;
    if (!lookup(c.subject, &subject) || !lookup(c.baseline, &baseline) ||
        baseline.value <= 0) {
      out << absl::StrFormat("%-40s %14s\n", c.label, "(not run)");
      if (rows) rows << suite_ << '\t' << c.label << "\t(not run)\n";
      continue;
    }
    double ratio = subject.value / baseline.value;
    std::string how;
    if (!c.paired.empty()) {
      // A figure with a paired run takes that run's ratio. Without it (a
      // --benchmark_filter left it out, or its name no longer matches) the
      // ratio of the two separate figures is shown, and says so.
      if (auto paired = ratios_.find(c.paired); paired != ratios_.end()) {
        ratio = paired->second;
        how = "paired";
      } else {
        how = "unpaired";
      }
    }
    std::string target = "-";
    if (c.target > 0) {
      target = absl::StrFormat("%.2f%s", c.target,
                               ratio >= c.target ? "" : " BELOW");
    }
    out << absl::StrFormat("%-40s %14s %14s %7.3f %7s%s\n", c.label,
                           FormatRate(subject), FormatRate(baseline), ratio,
                           target, how.empty() ? "" : " (" + how + ")");
    if (rows) {
      rows << absl::StrFormat("%s\t%s\t%s\t%s\t%.3f\t%s\t%s\n", suite_, c.label,
                              FormatRate(subject), FormatRate(baseline), ratio,
                              target, how);
    }
  }
  const double rss = PeakRssMiB();
  out << absl::StrFormat("peak RSS of %s: %.1f MiB\n", suite_, rss);
  if (errors_ > 0) {
    out << absl::StrFormat("%d case(s) reported an error (see above)\n",
                           errors_);
  }
  if (rows) rows << absl::StrFormat("%s\tpeak RSS\t%.1f MiB\n", suite_, rss);
  out.flush();
}

int RunWithSummary(int argc, char** argv, std::vector<Comparison> comparisons) {
  benchmark::Initialize(&argc, argv);
  if (benchmark::ReportUnrecognizedArguments(argc, argv)) return 1;
  std::string suite = argc > 0 ? argv[0] : "bench";
  if (size_t slash = suite.rfind('/'); slash != std::string::npos) {
    suite.erase(0, slash + 1);
  }
  SummaryReporter reporter(std::move(suite), std::move(comparisons));
  benchmark::RunSpecifiedBenchmarks(&reporter);
  benchmark::Shutdown();
  return reporter.errors() > 0 ? 1 : 0;
}

}  // namespace residency::bench
