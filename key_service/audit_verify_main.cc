// audit_verify: checks a key service's audit log directory offline.
//
//   audit_verify --data_dir=/var/lib/residency/audit
//                --public_key=audit_public.pem [--checkpoint=trusted.txtpb]
//
// Exit status: 0 the log verifies; 1 it does not, or the directory holds no
// readable log; 2 usage error (missing flag, unreadable key or checkpoint
// file).

#include <cstdio>
#include <optional>
#include <string>
#include <utility>
#include <vector>

#include "absl/flags/flag.h"
#include "absl/flags/parse.h"
#include "absl/flags/usage.h"
#include "absl/status/status.h"
#include "absl/status/statusor.h"
#include "absl/strings/str_cat.h"
#include "key_service/audit_verifier.h"
#include "rpc/printable.h"

ABSL_FLAG(std::string, data_dir, "",
          "Required. The AuditLog directory (a RocksDB database) to verify. "
          "Opened read-only as a RocksDB secondary, so the service may be "
          "running or stopped.");
ABSL_FLAG(std::string, public_key, "",
          "Required. PEM file with the audit log's Ed25519 public key "
          "(\"-----BEGIN PUBLIC KEY-----\"), obtained out of band, never from "
          "the log.");
ABSL_FLAG(std::string, checkpoint, "",
          "Optional. A trusted AuditCheckpoint from an earlier read, in "
          "text-format protobuf. The log must still hold that sequence with "
          "that head hash, which proves it was neither truncated nor "
          "rewritten since.");

namespace {

constexpr int kVerified = 0;
constexpr int kNotVerified = 1;
constexpr int kUsage = 2;

int UsageError(const std::string& message) {
  std::fprintf(stderr, "audit_verify: %s\nTry --help.\n", message.c_str());
  return kUsage;
}

}  // namespace

int main(int argc, char** argv) {
  absl::SetProgramUsageMessage(
      "Verifies a key service audit log: every entry's hash, the hash chain, "
      "contiguous sequences from 1, and every signed checkpoint, ending with "
      "one that covers the last entry.\n\n"
      "  audit_verify --data_dir=DIR --public_key=FILE [--checkpoint=FILE]\n\n"
      "Prints \"OK: N entries, head <hex> at <seq>, K checkpoints verified\" "
      "and exits 0, or prints the first problem (\"audit entry 17: ...\") and "
      "exits 1 (also when DIR holds no readable audit log). Exits 2 on usage "
      "errors.");
  std::vector<char*> rest = absl::ParseCommandLine(argc, argv);
  if (rest.size() > 1) {
    return UsageError(absl::StrCat("unexpected argument '", rest[1], "'"));
  }
  const std::string data_dir = absl::GetFlag(FLAGS_data_dir);
  const std::string public_key_file = absl::GetFlag(FLAGS_public_key);
  const std::string checkpoint_file = absl::GetFlag(FLAGS_checkpoint);
  if (data_dir.empty()) return UsageError("--data_dir is required");
  if (public_key_file.empty()) return UsageError("--public_key is required");

  absl::StatusOr<std::string> public_key =
      residency::key_service::ReadPublicKeyPemFile(public_key_file);
  if (!public_key.ok()) {
    return UsageError(std::string(public_key.status().message()));
  }
  std::optional<residency::v1::AuditCheckpoint> trusted;
  if (!checkpoint_file.empty()) {
    absl::StatusOr<residency::v1::AuditCheckpoint> checkpoint =
        residency::key_service::ReadCheckpointTextFile(checkpoint_file);
    if (!checkpoint.ok()) {
      return UsageError(std::string(checkpoint.status().message()));
    }
    trusted = *std::move(checkpoint);
  }

  absl::StatusOr<residency::key_service::AuditVerification> result =
      residency::key_service::VerifyAuditDirectory(data_dir, *public_key,
                                                   std::move(trusted));
  if (!result.ok()) {
    // The message may quote what the verified log holds.
    std::fprintf(
        stderr, "FAILED: %s\n",
        residency::rpc::PrintableMessage(result.status().message()).c_str());
    return kNotVerified;
  }
  std::printf("%s\n", result->Summary().c_str());
  return kVerified;
}
