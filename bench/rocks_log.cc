#include "bench/rocks_log.h"

#include <fstream>
#include <iterator>
#include <string>

#include "absl/strings/match.h"
#include "absl/strings/numbers.h"
#include "absl/strings/str_cat.h"
#include "absl/strings/str_split.h"

namespace residency::bench {

RocksLog RocksLog::Minus(const RocksLog& before) const {
  RocksLog d = *this;
  d.flushes -= before.flushes;
  d.compactions -= before.compactions;
  d.compaction_seconds -= before.compaction_seconds;
  d.compaction_cpu_seconds -= before.compaction_cpu_seconds;
  d.compaction_output_bytes -= before.compaction_output_bytes;
  d.stalls -= before.stalls;
  return d;
}

double JsonNumber(absl::string_view line, absl::string_view key) {
  const std::string needle = absl::StrCat("\"", key, "\": ");
  const size_t at = line.find(needle);
  if (at == absl::string_view::npos) return 0;
  absl::string_view rest = line.substr(at + needle.size());
  const size_t end = rest.find_first_not_of("0123456789.");
  double value = 0;
  if (!absl::SimpleAtod(rest.substr(0, end), &value)) return 0;
  return value;
}

RocksLog ParseRocksLog(absl::string_view text) {
  RocksLog log;
  for (absl::string_view line : absl::StrSplit(text, '\n')) {
    if (absl::StrContains(line, "Stalling writes") ||
        absl::StrContains(line, "Stopping writes")) {
      ++log.stalls;
    }
    if (!absl::StrContains(line, "EVENT_LOG_v1")) continue;
    if (absl::StrContains(line, "\"event\": \"flush_finished\"")) {
      ++log.flushes;
    } else if (absl::StrContains(line, "\"event\": \"compaction_finished\"")) {
      ++log.compactions;
      log.compaction_seconds +=
          JsonNumber(line, "compaction_time_micros") / 1e6;
      log.compaction_cpu_seconds +=
          JsonNumber(line, "compaction_time_cpu_micros") / 1e6;
      log.compaction_output_bytes +=
          static_cast<uint64_t>(JsonNumber(line, "total_output_size"));
      constexpr absl::string_view kLsmState = "\"lsm_state\": [";
      const size_t at = line.find(kLsmState);
      if (at != absl::string_view::npos) {
        const size_t from = at + kLsmState.size();
        const size_t end = line.find(']', from);
        if (end != absl::string_view::npos) {
          log.lsm_state = std::string(line.substr(from, end - from));
        }
      }
    }
  }
  return log;
}

absl::StatusOr<RocksLog> ReadRocksLog(const std::string& path) {
  std::ifstream in(path, std::ios::binary);
  if (!in) {
    return absl::NotFoundError(absl::StrCat("cannot read RocksDB LOG ", path));
  }
  const std::string text((std::istreambuf_iterator<char>(in)),
                         std::istreambuf_iterator<char>());
  if (in.bad()) {
    return absl::NotFoundError(
        absl::StrCat("cannot read RocksDB LOG ", path, " to its end"));
  }
  return ParseRocksLog(text);
}

}  // namespace residency::bench
