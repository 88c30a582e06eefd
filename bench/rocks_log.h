#ifndef RESIDENCY_BENCH_ROCKS_LOG_H_
#define RESIDENCY_BENCH_ROCKS_LOG_H_

#include <cstdint>
#include <string>

#include "absl/status/statusor.h"
#include "absl/strings/string_view.h"

namespace residency::bench {

// Flushes, compactions and write stalls so far, read from the event log
// lines (EVENT_LOG_v1, one JSON object each) and warning lines of a RocksDB
// info LOG file. scale_bench reads the storage node's LOG before and after
// each step and reports the difference.
struct RocksLog {
  int flushes = 0;                    // "flush_finished" events
  int compactions = 0;                // "compaction_finished" events
  double compaction_seconds = 0;      // wall time of compaction jobs
  double compaction_cpu_seconds = 0;  // their CPU time
  uint64_t compaction_output_bytes = 0;
  int stalls = 0;         // "Stalling writes" / "Stopping writes" lines
  std::string lsm_state;  // files per level after the last compaction

  // This minus `before`, for every count; lsm_state stays this one's.
  RocksLog Minus(const RocksLog& before) const;
};

// The number after `"key": ` in an event log line; 0 when the key is
// missing or its value is not a number.
double JsonNumber(absl::string_view line, absl::string_view key);

// Parses a whole LOG's text. Lines of other kinds are skipped.
RocksLog ParseRocksLog(absl::string_view text);

// Reads and parses the LOG at `path`. NOT_FOUND if it cannot be read (a
// missing LOG must not pass for a quiet one).
absl::StatusOr<RocksLog> ReadRocksLog(const std::string& path);

}  // namespace residency::bench

#endif  // RESIDENCY_BENCH_ROCKS_LOG_H_
