#ifndef RESIDENCY_KEY_SERVICE_CUSTODIAN_H_
#define RESIDENCY_KEY_SERVICE_CUSTODIAN_H_

#include <cstdint>
#include <functional>
#include <memory>
#include <optional>
#include <string>

#include "absl/functional/any_invocable.h"
#include "absl/status/status.h"
#include "absl/status/statusor.h"
#include "absl/strings/string_view.h"
#include "key_service/audit_log.h"
#include "key_service/key_store.h"
#include "key_service/policy.h"
#include "residency/v1/key_service.pb.h"

namespace residency::key_service {

struct CustodianOptions {
  // This service's own principal and jurisdiction, written into every
  // WrappedKey it makes so a reader knows whom to ask and whose law reaches
  // the custodian.
  std::string service_principal;
  std::string jurisdiction;
};

// The key custodian without its transport: decides every KeyService request
// against the policy, acts on the key store, and records the decision in the
// audit log before answering. The gRPC service (grpc_service.h) is a thin
// adapter over it; the simulator and tests may call it directly.
//
// `principal` is always the verified mTLS identity of the caller; nothing in
// a request can change who the caller is.
//
// Each unary method fills `response` and then calls `done` exactly once, with
// the final status, after the audit entry of the decision is durable. `done`
// may run on the audit log's writer thread, so it must not block. On any
// error the response holds no secret. When the audit entry cannot be written
// the answer is UNAVAILABLE and nothing is returned: no key leaves without a
// durable record.
//
// Order of checks, so that callers learn nothing they may not know: metadata
// (INVALID_ARGUMENT), then policy (PERMISSION_DENIED naming the rule; an
// unknown key has no owner, so it is denied exactly like a key the caller
// may not use), then the legal process's target owner, then the key's
// existence (NOT_FOUND) and state (FAILED_PRECONDITION), then the operation.
//
// Thread safety: every method may be called concurrently.
class Custodian {
 public:
  using Done = absl::AnyInvocable<void(absl::Status) &&>;
  // Receives ReadAuditLog items in order; returns false to stop (the client
  // went away).
  using AuditSink =
      std::function<bool(const residency::v1::ReadAuditLogResponse&)>;

  Custodian(CustodianOptions options, PolicyEngine policy,
            std::unique_ptr<KeyStore> keys, std::unique_ptr<AuditLog> audit);
  ~Custodian();
  Custodian(const Custodian&) = delete;
  Custodian& operator=(const Custodian&) = delete;

  void CreateKey(absl::string_view principal,
                 const residency::v1::CreateKeyRequest& request,
                 residency::v1::CreateKeyResponse* response, Done done);
  void GenerateDataKey(absl::string_view principal,
                       const residency::v1::GenerateDataKeyRequest& request,
                       residency::v1::GenerateDataKeyResponse* response,
                       Done done);
  void Unwrap(absl::string_view principal,
              const residency::v1::UnwrapRequest& request,
              residency::v1::UnwrapResponse* response, Done done);
  void Rewrap(absl::string_view principal,
              const residency::v1::RewrapRequest& request,
              residency::v1::RewrapResponse* response, Done done);
  void RotateKey(absl::string_view principal,
                 const residency::v1::RotateKeyRequest& request,
                 residency::v1::RotateKeyResponse* response, Done done);
  void SetMinDecryptionVersion(
      absl::string_view principal,
      const residency::v1::SetMinDecryptionVersionRequest& request,
      residency::v1::SetMinDecryptionVersionResponse* response, Done done);
  void DisableKey(absl::string_view principal,
                  const residency::v1::DisableKeyRequest& request,
                  residency::v1::DisableKeyResponse* response, Done done);
  void EnableKey(absl::string_view principal,
                 const residency::v1::EnableKeyRequest& request,
                 residency::v1::EnableKeyResponse* response, Done done);
  void DestroyKey(absl::string_view principal,
                  const residency::v1::DestroyKeyRequest& request,
                  residency::v1::DestroyKeyResponse* response, Done done);
  void GetKeyInfo(absl::string_view principal,
                  const residency::v1::GetKeyInfoRequest& request,
                  residency::v1::GetKeyInfoResponse* response, Done done);
  void ExportKey(absl::string_view principal,
                 const residency::v1::ExportKeyRequest& request,
                 residency::v1::ExportKeyResponse* response, Done done);

  // Audits the read (durably) and, if allowed, streams the log through
  // `sink`. Blocks; returns the status to end the stream with.
  absl::Status ReadAuditLog(absl::string_view principal,
                            const residency::v1::ReadAuditLogRequest& request,
                            const AuditSink& sink);

  const CustodianOptions& options() const { return options_; }
  const PolicyEngine& policy() const { return policy_; }
  KeyStore& keys() { return *keys_; }
  AuditLog& audit() { return *audit_; }

 private:
  struct Call;

  // Validates metadata, looks the key up and asks the policy. On return
  // call->status says whether the operation may proceed.
  void Begin(Call* call, absl::string_view principal,
             residency::v1::Operation operation,
             const residency::v1::RequestMetadata* metadata,
             absl::string_view key_id, const residency::v1::ObjectRef* object,
             std::optional<absl::string_view> new_key_owner = std::nullopt);
  // Applies the policy to the facts Begin gathered.
  void Decide(Call* call, const PolicyRequest& facts,
              const residency::v1::Justification& justification);
  // Records the decision and answers once it is durable. `wipe` clears any
  // secret from the response when the answer is not OK.
  void Finish(Call* call, std::function<void()> wipe, Done done);

  // Key state checks shared by the operations that use key material.
  absl::Status CheckUsable(const KeySnapshot& key) const;
  absl::StatusOr<const crypto::SecretBytes*> DecryptionKek(
      const KeySnapshot& key, uint32_t version) const;
  absl::StatusOr<crypto::SecretBytes> UnwrapChecked(
      const KeySnapshot& key, const residency::v1::WrappedKey& wrapped,
      const residency::v1::ObjectRef& context) const;
  residency::v1::WrappedKey MakeWrappedKey(const KeySnapshot& key,
                                           std::string wrapped) const;

  const CustodianOptions options_;
  const PolicyEngine policy_;
  std::unique_ptr<KeyStore> keys_;
  std::unique_ptr<AuditLog> audit_;
};

// Blocking form of the unary methods, for tests and in-process callers:
//   absl::Status s = CallAndWait([&](Custodian::Done d) {
//     custodian.Unwrap(principal, request, &response, std::move(d));
//   });
absl::Status CallAndWait(const std::function<void(Custodian::Done)>& start);

}  // namespace residency::key_service

#endif  // RESIDENCY_KEY_SERVICE_CUSTODIAN_H_
