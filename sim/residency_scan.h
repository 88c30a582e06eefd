#ifndef RESIDENCY_SIM_RESIDENCY_SCAN_H_
#define RESIDENCY_SIM_RESIDENCY_SCAN_H_

// What a residency auditor needs: a scan of every file under a directory
// for known byte strings (the users' plaintext canary, key material), and
// the honest way to know which keys to look for: each object's data key
// recovered as its owner would recover it.
//
// Used by the simulator's audit and insider phases (sim/audit.cc,
// sim/insider.cc) and by client/residency_audit_test.cc.
//
// Example:
//   std::vector<Needle> needles;
//   needles.push_back(Needle::Of("canary", world.canary()));
//   ASSIGN_OR_RETURN(ScanResult scan, ScanTree(node_dir, needles));
//   for (const std::string& line : scan.Describe("canary")) ...

#include <cstdint>
#include <functional>
#include <string>
#include <utility>
#include <vector>

#include "absl/status/statusor.h"
#include "absl/strings/string_view.h"
#include "absl/time/time.h"
#include "client/client.h"
#include "crypto/secret_bytes.h"
#include "residency/v1/common.pb.h"
#include "residency/v1/key_service.grpc.pb.h"

namespace residency::sim {

// Bytes a scan looks for, with a name for the findings ("dek user-1/obj-3
// v1"). The bytes may be key material: they live in SecretBytes and are
// never printed; findings carry only the name.
struct Needle {
  std::string name;
  crypto::SecretBytes bytes;

  static Needle Of(std::string name, absl::string_view bytes) {
    return Needle{std::move(name), crypto::SecretBytes::CopyFrom(bytes)};
  }
};

// One needle found in one file.
struct Hit {
  std::string needle;
  std::string file;  // relative to the scanned root
  uint64_t offset = 0;
};

struct ScanResult {
  // In the order files were read, then by offset within a file.
  std::vector<Hit> hits;
  // Every regular file read, relative to the root.
  std::vector<std::string> files;
  uint64_t bytes = 0;

  std::vector<Hit> HitsOf(absl::string_view needle) const;
  bool Found(absl::string_view needle) const { return !HitsOf(needle).empty(); }
  // Hits whose needle name starts with `prefix`.
  uint64_t CountWithPrefix(absl::string_view prefix) const;
  // Hits whose needle name starts with `prefix`, as "needle in file@offset".
  std::vector<std::string> Describe(absl::string_view prefix) const;
  // The files holding a hit whose needle name starts with `prefix`, each
  // once, in scan order.
  std::vector<std::string> FilesWith(absl::string_view prefix) const;
  // "14 files, 61.2 MB: blob 3, info-log 1, ..." (file kinds by FileKind).
  std::string Summary() const;
  bool HasFileMatching(
      const std::function<bool(const std::string&)>& pred) const;
};

// What kind of file a path under a storage node or key service directory
// is, from its name: "wal", "sst", "blob", "manifest", "options",
// "info-log", "plaintext" (a provider's readable copy, under plaintext/),
// or "other".
std::string FileKind(const std::string& relative);

// Reads every regular file under `root` as raw bytes, recursively and
// without following symbolic links, and reports every occurrence of every
// needle (overlapping ones too), with its file and offset. Files are read in
// blocks, so memory stays bounded whatever their size; an occurrence that
// straddles two blocks is found once.
//
// A file or directory that vanishes while the walk runs (RocksDB deletes
// obsolete files as it works) is skipped: the scan sees the tree as a
// running service leaves it.
//
// Errors: INVALID_ARGUMENT for a needle with no bytes; NOT_FOUND when
// `root` is not a directory; INTERNAL, naming the path, when a file that
// still exists cannot be read or the walk fails otherwise.
absl::StatusOr<ScanResult> ScanTree(const std::string& root,
                                    const std::vector<Needle>& needles);

// The keys that protect one stored object version.
struct RecoveredKeys {
  // The data key that opens the ciphertext.
  crypto::SecretBytes dek;
  // E2E and split custody: (share index, share) for shares 1 and 2, from
  // which `dek` is derived (client::DeriveDataKey). Empty in custodian
  // custody.
  std::vector<std::pair<uint32_t, crypto::SecretBytes>> shares;
};

// Unwraps one key-service wrap of `header`'s data key (or share) at the key
// service that made it; see UnwrapAsOwner.
using UnwrapFn = std::function<absl::StatusOr<crypto::SecretBytes>(
    const residency::v1::ObjectHeader& header,
    const residency::v1::WrappedKey& wrapped)>;

// The data key of the object version `header` describes, recovered as its
// owner would: every KEY_SERVICE wrap through `unwrap`, the DEVICE wrap of
// E2E custody with `device_key`, and the two shares of E2E and split
// custody combined with client::DeriveDataKey. Follows the custody mode the
// header records.
//
// Errors: DATA_LOSS when the header's wraps do not fit its custody mode
// (custodian: exactly one wrap, share 0; E2E and split: shares 1 and 2) or
// a wrap does not open; FAILED_PRECONDITION when a device wrap needs a
// `device_key` (nullptr) or another one than given; whatever `unwrap`
// returns.
absl::StatusOr<RecoveredKeys> RecoverDataKey(
    const residency::v1::ObjectHeader& header, const UnwrapFn& unwrap,
    const client::DeviceKey* device_key);

// One Unwrap of `wrapped` for `header`'s object through `stub`, with the
// CUSTOMER_INITIATED_ACCESS justification: on a channel presenting the
// owner's certificate, the call the owner's own client makes, audited as
// such by the key service. Returns the key service's status as it comes.
absl::StatusOr<crypto::SecretBytes> UnwrapAsOwner(
    residency::v1::KeyService::Stub& stub,
    const residency::v1::ObjectHeader& header,
    const residency::v1::WrappedKey& wrapped, absl::string_view request_id,
    absl::Duration deadline = absl::Seconds(20));

// Decrypts the whole `ciphertext` of `header`'s object with `dek` (the
// object's context bound in). DATA_LOSS when it does not authenticate: the
// check that a recovered key is the one that protects the object.
absl::StatusOr<std::string> OpenObject(
    const crypto::SecretBytes& dek, const residency::v1::ObjectHeader& header,
    absl::string_view ciphertext);

}  // namespace residency::sim

#endif  // RESIDENCY_SIM_RESIDENCY_SCAN_H_
