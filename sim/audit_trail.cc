// An auditor reads every key service's audit log after the last phase and
// verifies it with the key service's own verifier (see audit_trail.h).
#include "sim/audit_trail.h"

#include <memory>
#include <utility>

#include "absl/strings/ascii.h"
#include "absl/strings/match.h"
#include "absl/strings/str_cat.h"
#include "absl/strings/str_join.h"
#include "absl/time/clock.h"
#include "google/protobuf/text_format.h"
#include "key_service/audit_signer.h"
#include "key_service/audit_verifier.h"
#include "key_service/policy.h"
#include "key_service/server.h"
#include "residency/v1/key_service.grpc.pb.h"
#include "rpc/status.h"

namespace residency::sim {
namespace {

using ::residency::v1::AuditEntry;
using ::residency::v1::ReadAuditLogResponse;

constexpr absl::string_view kScheme = "residency://";
constexpr absl::string_view kAuthority = "residency://authority/";

std::string ShortPrincipal(absl::string_view principal) {
  if (absl::StartsWith(principal, kScheme))
    principal.remove_prefix(kScheme.size());
  return std::string(principal);
}

// "OPERATION_EXPORT_KEY" -> "export_key".
std::string OperationName(residency::v1::Operation operation) {
  std::string name = residency::v1::Operation_Name(operation);
  if (absl::StartsWith(name, "OPERATION_")) name = name.substr(10);
  return absl::AsciiStrToLower(name);
}

// The jurisdiction of an authority's principal ("CN"), or "" for others.
std::string AuthorityJurisdiction(absl::string_view principal) {
  if (!absl::StartsWith(principal, kAuthority)) return "";
  return absl::AsciiStrToUpper(principal.substr(kAuthority.size()));
}

// Counts what one entry shows.
void Count(const AuditEntry& entry, const std::string& key_service,
           Report& report) {
  AuditLogFindings& f = report.audit_logs[key_service];
  const std::string principal = ShortPrincipal(entry.principal());
  const std::string decision = entry.decision() == AuditEntry::ALLOW ? "ALLOW"
                               : entry.decision() == AuditEntry::DENY
                                   ? "DENY"
                                   : "UNSPECIFIED";
  ++f.entries;
  ++report.audit[key_service][decision][principal];
  const char* outcome = entry.decision() != AuditEntry::ALLOW ? "denied"
                        : entry.status_code() == 0            ? "granted"
                                                              : "failed";
  ++f.operations[principal][OperationName(entry.operation())][outcome];
  const std::string authority = AuthorityJurisdiction(entry.principal());
  const bool third_party =
      entry.justification().reason() ==
          residency::v1::Justification::THIRD_PARTY_DATA_REQUEST ||
      !authority.empty();
  if (!third_party) return;
  ++f.third_party[principal][decision][entry.rule()];
  if (entry.decision() == AuditEntry::ALLOW && !authority.empty() &&
      authority != f.jurisdiction) {
    ++f.foreign_allowed;
  }
}

// The policy `ks` decides with: the in-process service's own, else the
// scenario's (which a spawned service reads from a file of it).
absl::StatusOr<key_service::PolicyDecision> AuditorDecision(
    World& world, const Endpoint& ks) {
  key_service::PolicyRequest ask;
  ask.principal = kAuditorPrincipal;
  ask.operation = residency::v1::OPERATION_READ_AUDIT_LOG;
  ask.reason = residency::v1::Justification::SECURITY_AUDIT;
  if (key_service::KeyServiceServer* server = world.KeyServiceServer(ks.name)) {
    return server->custodian().policy().Decide(ask);
  }
  for (const auto& spec : world.scenario().world().key_services()) {
    if (spec.name() != ks.name) continue;
    std::string text;
    google::protobuf::TextFormat::PrintToString(spec.policy(), &text);
    absl::StatusOr<key_service::PolicyEngine> policy =
        key_service::PolicyEngine::Parse(text, spec.name());
    if (!policy.ok()) return policy.status();
    return policy->Decide(ask);
  }
  return absl::NotFoundError(absl::StrCat("no key service '", ks.name, "'"));
}

// Reads `name`'s log into `sink`: through ReadAuditLog as the auditor when
// the policy allows it, else from the service's own log (in-process, or its
// files). Sets `read_by`; sets `unreadable` when this run cannot read the
// log at all (the policy denies the auditor and the files are out of
// reach).
absl::Status ReadLog(World& world, const Endpoint& ks,
                     const key_service::AuditSink& sink, std::string* read_by,
                     bool* unreadable) {
  absl::StatusOr<key_service::PolicyDecision> decided =
      AuditorDecision(world, ks);
  if (!decided.ok()) return decided.status();
  const key_service::PolicyDecision& decision = *decided;
  if (!decision.allowed) {
    if (absl::Status s = world.NeedDataDirs(absl::StrCat(
            "reading the audit log of ", ks.name,
            " (its policy lets no auditor call ReadAuditLog: ", decision.rule,
            ")"));
        !s.ok()) {
      *unreadable = true;
      return s;
    }
    *read_by = absl::StrCat(
        world.mode() == ServiceMode::kInProcess
            ? "in-process"
            : "the custodian's own files (RocksDB secondary)",
        " (the policy lets no auditor call ReadAuditLog: ", decision.rule, ")");
    return world.ReadStoredAuditLog(ks.name, sink);
  }
  *read_by = absl::StrCat("ReadAuditLog as ", ShortPrincipal(kAuditorPrincipal),
                          " (SECURITY_AUDIT, rule ", decision.rule, ")");
  // The auditor works inside the service's jurisdiction: no link crossed.
  absl::StatusOr<std::shared_ptr<grpc::Channel>> channel =
      world.Channel(ks.jurisdiction, ks, kAuditorPrincipal);
  if (!channel.ok()) return channel.status();
  auto stub = residency::v1::KeyService::NewStub(*channel);
  residency::v1::ReadAuditLogRequest request;
  request.mutable_metadata()->set_request_id("audit-" + ks.name);
  request.mutable_metadata()->mutable_justification()->set_reason(
      residency::v1::Justification::SECURITY_AUDIT);
  request.set_start_sequence(1);
  grpc::ClientContext context;
  context.set_deadline(absl::ToChronoTime(absl::Now() + absl::Minutes(2)));
  auto reader = stub->ReadAuditLog(&context, request);
  ReadAuditLogResponse item;
  bool more = true;
  while (more && reader->Read(&item)) more = sink(item);
  if (!more) context.TryCancel();
  absl::Status status = rpc::FromGrpcStatus(reader->Finish());
  if (!more && status.ok()) status = absl::CancelledError("read stopped");
  return status;
}

}  // namespace

absl::StatusOr<std::vector<AuditRead>> ReadAuditLogs(World& world,
                                                     Ledger& ledger) {
  std::vector<AuditRead> reads;
  for (const Endpoint& ks : world.key_services()) {
    AuditRead read;
    read.key_service = ks.name;
    // Empty when the files are out of reach (--topology).
    if (!ks.data_dir.empty()) read.store_dir = ks.data_dir + "/audit";
    absl::StatusOr<std::string> pem = world.AuditPublicKeyPem(ks.name);
    if (!pem.ok()) {
      return absl::Status(pem.status().code(),
                          absl::StrCat("audit trail: no audit public key for ",
                                       ks.name, ": ", pem.status().message()));
    }
    absl::StatusOr<std::string> key = key_service::ParsePublicKeyPem(*pem);
    if (!key.ok()) return key.status();
    read.public_key = *key;

    Report counted;  // filled by the sink, merged under the ledger's lock
    counted.audit_logs[ks.name].jurisdiction = ks.jurisdiction;
    key_service::AuditVerifier verifier(read.public_key);
    absl::Status verified;
    const key_service::AuditSink sink = [&](const ReadAuditLogResponse& item) {
      if (verified.ok()) verified = verifier.Add(item);
      if (item.has_entry()) Count(item.entry(), ks.name, counted);
      if (item.has_checkpoint()) read.checkpoint = item.checkpoint();
      return true;
    };
    std::string read_by;
    const absl::Time start = absl::Now();
    bool unreadable = false;
    absl::Status status = ReadLog(world, ks, sink, &read_by, &unreadable);
    if (unreadable) {
      // Not a finding about the log: this run cannot read it at all.
      return absl::Status(status.code(),
                          absl::StrCat("audit trail: ", status.message()));
    }
    ledger.Record("read_audit_log", status, absl::Now() - start);
    if (verified.ok()) verified = verifier.Finish();
    read.stream =
        !status.ok()
            ? absl::Status(status.code(),
                           absl::StrCat("reading the log: ", status.message()))
            : verified;
    if (!read.stream.ok()) read.checkpoint.reset();
    AuditLogFindings& f = counted.audit_logs[ks.name];
    f.read_by = read_by;
    f.checkpoints = verifier.checkpoints_verified();
    ledger.Update([&](Report& report) {
      report.audit_logs[ks.name] = f;
      for (const auto& [decision, principals] : counted.audit[ks.name]) {
        for (const auto& [principal, n] : principals) {
          report.audit[ks.name][decision][principal] += n;
        }
      }
    });
    ledger.Progress(absl::StrCat("  auditor read ", f.entries,
                                 " audit entries of ", ks.name, " (", read_by,
                                 ")"));
    reads.push_back(std::move(read));
  }
  return reads;
}

void VerifyStoredAuditLogs(const std::vector<AuditRead>& reads,
                           Report& report) {
  for (const AuditRead& read : reads) {
    AuditLogFindings& f = report.audit_logs[read.key_service];
    if (!read.stream.ok()) {
      f.verified = false;
      f.verification = absl::StrCat("the log as read does not verify: ",
                                    read.stream.message());
    } else if (read.store_dir.empty()) {
      // --topology: the stored log is out of reach; the stream verified.
      f.verified = true;
      f.verification = absl::StrCat(
          "the log as read verifies (", f.checkpoints,
          " signed checkpoints); the stored log is out of reach (--topology) "
          "and was not checked offline");
    } else {
      absl::StatusOr<key_service::AuditVerification> stored =
          key_service::VerifyAuditDirectory(read.store_dir, read.public_key,
                                            read.checkpoint);
      f.verified = stored.ok();
      if (stored.ok()) {
        f.checkpoints = stored->checkpoints;
        f.verification = stored->Summary();
      } else {
        f.verification = absl::StrCat("the stored log does not verify: ",
                                      stored.status().message());
      }
    }
    if (!f.verified) {
      report.findings.push_back(
          absl::StrCat("the audit log of ", read.key_service,
                       " does NOT verify: ", f.verification));
    }
    if (f.foreign_allowed == 0) continue;
    for (const auto& [principal, decisions] : f.third_party) {
      const std::string j =
          AuthorityJurisdiction(absl::StrCat(kScheme, principal));
      auto allowed = decisions.find("ALLOW");
      if (j.empty() || j == f.jurisdiction || allowed == decisions.end()) {
        continue;
      }
      uint64_t n = 0;
      std::vector<std::string> rules;
      for (const auto& [rule, count] : allowed->second) {
        n += count;
        rules.push_back(absl::StrCat("\"", rule, "\""));
      }
      std::vector<std::string> what;
      auto ops = f.operations.find(principal);
      if (ops != f.operations.end()) {
        for (const auto& [op, outcomes] : ops->second) {
          auto granted = outcomes.find("granted");
          if (granted != outcomes.end()) {
            what.push_back(absl::StrCat(op, " ", granted->second));
          }
        }
      }
      report.findings.push_back(absl::StrCat(
          read.key_service, " (", f.jurisdiction, ") ALLOWED ", n,
          " request(s) of ", principal, " under rule ",
          absl::StrJoin(rules, ", "),
          what.empty()
              ? ""
              : absl::StrCat(" (granted: ", absl::StrJoin(what, ", "), ")"),
          ": a custodian in ", f.jurisdiction, " obeys the authority of ", j,
          ", and its audit log says so"));
    }
  }
}

}  // namespace residency::sim
