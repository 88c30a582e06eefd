#ifndef RESIDENCY_BENCH_BENCH_SUMMARY_H_
#define RESIDENCY_BENCH_BENCH_SUMMARY_H_

#include <map>
#include <string>
#include <utility>
#include <vector>

#include "benchmark/benchmark.h"

namespace residency::bench {

// One line of the summary: a figure beside its baseline measured in the same
// run. Names are Google Benchmark run names ("BM_X/1048576"); the figure
// compared is bytes_per_second, or items_per_second when a run has no byte
// rate.
struct Comparison {
  std::string label;     // what a reader sees, e.g. "Cobblestone encrypt 1 MiB"
  std::string subject;   // the benchmark measured
  std::string baseline;  // its same-run baseline
  double target = 0;     // minimum subject/baseline ratio; 0 = none stated
  // Optional: a benchmark that times subject and baseline alternately and
  // reports their ratio in a "ratio" counter. When it ran, its ratio is the
  // one printed (and checked against the target), with the two separate
  // figures beside it for scale.
  std::string paired;
};

// A console reporter that also collects rates and, at the end, prints a
// summary table with the ratio of each comparison and the process's peak
// RSS. With repetitions, the median aggregate is used. Numbers never change
// the exit code: a ratio below target is marked, not failed; a case that
// could not run (an error) is counted.
//
// When RESIDENCY_BENCH_SUMMARY names a file, the summary rows are also
// appended to it as tab-separated lines, which bench/run gathers into one
// table for all suites:
//   suite  figure  measured  baseline  ratio  target  note
//   suite  peak RSS  <MiB>
class SummaryReporter : public benchmark::ConsoleReporter {
 public:
  SummaryReporter(std::string suite, std::vector<Comparison> comparisons)
      : suite_(std::move(suite)), comparisons_(std::move(comparisons)) {}

  // A rate as Google Benchmark reports it: bytes or items per second.
  struct Rate {
    double value = 0;
    bool bytes = false;
  };

  void ReportRuns(const std::vector<Run>& runs) override;
  void Finalize() override;

  // Cases that reported an error instead of a figure.
  int errors() const { return errors_; }

 private:
  std::string suite_;
  std::vector<Comparison> comparisons_;
  int errors_ = 0;
  std::map<std::string, Rate> rates_;         // single runs, by name
  std::map<std::string, Rate> median_rates_;  // median aggregates
  std::map<std::string, double> ratios_;      // "ratio" counters, by name
};

// Runs the registered benchmarks with a SummaryReporter; call from main.
// Returns 1 when a case reported an error or an argument was not
// understood, 0 otherwise (whatever the numbers).
int RunWithSummary(int argc, char** argv, std::vector<Comparison> comparisons);

}  // namespace residency::bench

#endif  // RESIDENCY_BENCH_BENCH_SUMMARY_H_
