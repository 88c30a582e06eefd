// key_service: the offshore key custodian as a standalone gRPC server.
//
//   key_service --jurisdiction=US --policy=us.textproto --data_dir=/var/ks
//       --tls_ca=ca.crt --tls_cert=ks.crt --tls_key=ks.key
//
// Exit codes: 0 after a clean shutdown (SIGINT/SIGTERM), 1 when start-up
// fails (the message says why), 2 for usage errors.
#include <cstdio>
#include <string>

#include "absl/flags/flag.h"
#include "absl/flags/parse.h"
#include "absl/flags/usage.h"
#include "absl/strings/str_cat.h"
#include "absl/synchronization/mutex.h"
#include "key_service/server.h"
#include "rpc/server.h"
#include "tls/credentials.h"
#include "tls/flags.h"

ABSL_FLAG(std::string, listen, "127.0.0.1:7443",
          "host:port to listen on; port 0 picks a free port (see --port_file)");
ABSL_FLAG(std::string, jurisdiction, "",
          "the custodian's home jurisdiction, e.g. US (required)");
ABSL_FLAG(std::string, policy, "",
          "policy file, text-format residency.v1.Policy (required); see "
          "proto/residency/v1/policy.proto for the rules");
ABSL_FLAG(std::string, data_dir, "",
          "directory for keys, the audit log and the audit public key "
          "(required; created with mode 0700)");
ABSL_FLAG(std::string, root_key_file, "",
          "root key sealing every KEK; default DATA_DIR/root.key, created "
          "with mode 0600 on first start and refused if group/world "
          "readable");
ABSL_FLAG(int64_t, max_request_bytes, 64 * 1024,
          "requests larger than this are refused (RESOURCE_EXHAUSTED)");
ABSL_FLAG(int64_t, audit_checkpoint_every, 1024,
          "store a signed audit checkpoint every N entries");
ABSL_FLAG(std::string, port_file, "",
          "if set, write the bound port here once serving (for --listen "
          "with port 0)");

namespace {

int Usage(const std::string& message) {
  std::fprintf(stderr, "key_service: %s\nRun key_service --help for usage.\n",
               message.c_str());
  return 2;
}

}  // namespace

int main(int argc, char** argv) {
  absl::SetProgramUsageMessage(
      "the residency key custodian: holds per-owner KEKs, decides every "
      "request against a policy, and records each decision in a "
      "hash-chained, signed audit log.\n\n"
      "  key_service --jurisdiction=US --policy=FILE --data_dir=DIR \\\n"
      "      --tls_ca=ca.crt --tls_cert=ks.crt --tls_key=ks.key");
  residency::tls::HelpShowsTlsFlags(__FILE__);
  std::vector<char*> rest = absl::ParseCommandLine(argc, argv);
  // Abseil's mutex deadlock detection is a debugging aid that costs every
  // lock (gRPC's included) a graph update; the service runs without it.
  absl::SetMutexDeadlockDetectionMode(absl::OnDeadlockCycle::kIgnore);
  if (rest.size() > 1) {
    return Usage(absl::StrCat("unexpected argument '", rest[1], "'"));
  }
  for (const auto& [name, value] :
       {std::pair{"--jurisdiction", absl::GetFlag(FLAGS_jurisdiction)},
        std::pair{"--policy", absl::GetFlag(FLAGS_policy)},
        std::pair{"--data_dir", absl::GetFlag(FLAGS_data_dir)}}) {
    if (value.empty()) return Usage(absl::StrCat(name, " is required"));
  }
  if (const std::string missing = residency::tls::MissingTlsFlag();
      !missing.empty()) {
    return Usage(absl::StrCat(missing, " is required"));
  }
  if (absl::GetFlag(FLAGS_max_request_bytes) < 1024 ||
      absl::GetFlag(FLAGS_max_request_bytes) > (64 << 20)) {
    return Usage("--max_request_bytes must be between 1024 and 67108864");
  }
  if (absl::GetFlag(FLAGS_audit_checkpoint_every) < 1) {
    return Usage("--audit_checkpoint_every must be at least 1");
  }

  // Signals are taken by a dedicated thread; block them before gRPC starts
  // threads of its own so none of those receives them.
  residency::rpc::BlockShutdownSignals();
  // The process holds the root key and unsealed KEKs: no core dumps.
  if (absl::Status s = residency::rpc::ForbidCoreDumps(); !s.ok()) {
    std::fprintf(stderr, "key_service: cannot start: %s\n",
                 std::string(s.message()).c_str());
    return 1;
  }

  absl::StatusOr<residency::key_service::PolicyEngine> policy =
      residency::key_service::PolicyEngine::LoadFile(
          absl::GetFlag(FLAGS_policy));
  if (!policy.ok()) {
    std::fprintf(stderr, "key_service: cannot start: %s\n",
                 std::string(policy.status().message()).c_str());
    return 1;
  }
  absl::StatusOr<residency::tls::TlsMaterial> tls =
      residency::tls::LoadTlsMaterialFromFlags();
  if (!tls.ok()) {
    std::fprintf(stderr, "key_service: cannot start: %s\n",
                 std::string(tls.status().message()).c_str());
    return 1;
  }
  residency::key_service::KeyServiceServerOptions options;
  options.listen_address = absl::GetFlag(FLAGS_listen);
  options.tls = *std::move(tls);
  options.jurisdiction = absl::GetFlag(FLAGS_jurisdiction);
  options.data_dir = absl::GetFlag(FLAGS_data_dir);
  options.root_key_file = absl::GetFlag(FLAGS_root_key_file);
  options.max_request_bytes =
      static_cast<size_t>(absl::GetFlag(FLAGS_max_request_bytes));
  options.audit.checkpoint_every =
      static_cast<uint64_t>(absl::GetFlag(FLAGS_audit_checkpoint_every));
  absl::StatusOr<std::unique_ptr<residency::key_service::KeyServiceServer>>
      server = residency::key_service::KeyServiceServer::Start(
          std::move(options), *std::move(policy));
  if (!server.ok()) {
    std::fprintf(stderr, "key_service: cannot start: %s\n",
                 std::string(server.status().message()).c_str());
    return 1;
  }
  std::fprintf(stderr,
               "key_service: %s serving on %s (jurisdiction %s, %zu keys, "
               "audit log at entry %llu)\n",
               (*server)->principal().c_str(), (*server)->address().c_str(),
               absl::GetFlag(FLAGS_jurisdiction).c_str(),
               (*server)->custodian().keys().key_count(),
               static_cast<unsigned long long>(
                   (*server)->custodian().audit().last_sequence()));

  absl::Status served = residency::rpc::ServeUntilSignal(
      (*server)->rpc_server(), absl::GetFlag(FLAGS_port_file), "key_service");
  server->reset();
  if (!served.ok()) {
    std::fprintf(stderr, "key_service: %s\n",
                 std::string(served.message()).c_str());
    return 1;
  }
  return 0;
}
