#ifndef RESIDENCY_SIM_DATA_DIR_H_
#define RESIDENCY_SIM_DATA_DIR_H_

// What parties with access to a storage node's files (an on-site auditor,
// an insider with a copy) can do with them, shared by sim/audit.cc and
// sim/insider.cc.

#include <cstdint>
#include <string>
#include <vector>

#include "absl/status/statusor.h"
#include "sim/ledger.h"
#include "sim/world.h"

namespace residency::sim {

// Counts as exposed to `actor` every file among `files` (relative to
// `root`) whose bytes are exactly an object version a user stored, compared
// by SHA-256 with every user's latest versions (Ledger::Exposed). Returns
// those files. A file that cannot be read is skipped. Call it between
// workloads: it reads the users' records without the ledger's lock.
std::vector<std::string> RecordReadablePlaintext(
    World& world, Ledger& ledger, const std::string& actor,
    const std::string& root, const std::vector<std::string>& files);

struct CopyStats {
  uint64_t files = 0;
  uint64_t bytes = 0;
};

// Copies every regular file under `from` to the same place under `to`
// (created; whatever `to` held before is removed first), as `cp -r` would
// while the service writing `from` runs: a file that vanishes before it is
// copied is skipped. INTERNAL, naming the path, for any other failure.
absl::StatusOr<CopyStats> CopyTree(const std::string& from,
                                   const std::string& to);

// "a, b, c and 5 more": at most `n` items.
std::string FirstFew(const std::vector<std::string>& items, size_t n = 4);

}  // namespace residency::sim

#endif  // RESIDENCY_SIM_DATA_DIR_H_
