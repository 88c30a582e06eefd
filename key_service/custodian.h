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
#include "absl/synchronization/mutex.h"
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
// may run on one of the audit log's threads, so it must not block. On any
// error the response holds no secret. When the audit entry cannot be written
// the answer is UNAVAILABLE and nothing is returned: no key leaves, and no
// key changes, without a durable record. Everything a request may carry into
// the audit entry is bounded (request id 128 bytes, justification detail
// 1024, legal process texts 512, jurisdiction 16, key id and owner 128,
// object id 1024); a request over a bound is INVALID_ARGUMENT, and recorded.
//
// Legal process (THIRD_PARTY_DATA_REQUEST) is honoured only from an
// authority of the jurisdiction it invokes: residency://authority/cn may
// present CN process and nothing else; any other caller is refused by rule
// "legal-process-issuer". It must also target the key's owner, and an
// unknown key is refused alike ("legal-process-target"), so an authority
// cannot probe which keys exist.
//
// Order of checks, so that callers learn nothing they may not know: request
// form and bounds (INVALID_ARGUMENT), the legal process's issuer, policy
// (PERMISSION_DENIED naming the rule; an unknown key has no owner, so it is
// denied exactly like a key the caller may not use), the legal process's
// target owner, then the key's existence (NOT_FOUND) and state
// (FAILED_PRECONDITION), then the operation.
//
// Kill switch and destruction are immediate: once DisableKey or DestroyKey
// has answered, no request decided on the key's earlier state is answered
// after it (uses hold a shared lock from look-up until their entry is
// queued; changes hold it exclusively).
//
// Thread safety: every method may be called concurrently.
class Custodian {
 public:
  using Done = absl::AnyInvocable<void(absl::Status) &&>;

  Custodian(CustodianOptions options, PolicyEngine policy,
            std::unique_ptr<KeyStore> keys, std::unique_ptr<AuditLog> audit);
  ~Custodian();
  Custodian(const Custodian&) = delete;
  Custodian& operator=(const Custodian&) = delete;

  // Key changes. These block until the change is durable (the audit entry
  // first, then the key store), and call `done` before they return.
  void CreateKey(absl::string_view principal,
                 const residency::v1::CreateKeyRequest& request,
                 residency::v1::CreateKeyResponse* response, Done done);
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

  // Key uses. These return once the audit entry is queued; `done` runs when
  // it is durable, typically on one of the audit log's threads.
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
  // Read-only views: changes go through the RPCs, which apply policy and
  // audit them.
  const KeyStore& keys() const { return *keys_; }
  const AuditLog& audit() const { return *audit_; }

 private:
  struct Call;
  // A key change: `check` refuses it against the key's current snapshot
  // (nullptr only for CreateKey of a new id) and may fill the audit entry's
  // key version; `apply` makes it durable.
  struct Change {
    std::function<absl::Status(const KeySnapshot*, residency::v1::AuditEntry*)>
        check;
    std::function<absl::StatusOr<KeyStore::Snapshot>()> apply;
  };

  // Fills the audit entry with what the request says (bounded), validates
  // the request, looks the key up and applies the policy. On return
  // call->status says whether the operation may proceed.
  void Begin(Call* call, absl::string_view principal,
             residency::v1::Operation operation,
             const residency::v1::RequestMetadata* metadata,
             absl::string_view key_id, const residency::v1::ObjectRef* object,
             std::optional<absl::string_view> new_key_owner = std::nullopt);
  // Copies call->status into the audit entry.
  void Record(Call* call);
  // Records the decision and answers once it is durable. `wipe` clears any
  // secret from the response when the answer is not OK.
  void Finish(Call* call, std::function<void()> wipe, Done done);
  static absl::Status Unrecorded(const absl::Status& audited);
  void ChangeKey(absl::string_view principal,
                 residency::v1::Operation operation,
                 const residency::v1::RequestMetadata* metadata,
                 absl::string_view key_id,
                 std::optional<absl::string_view> new_key_owner,
                 const Change& change, residency::v1::KeyInfo* out, Done done);
  Change SetEnabledChange(absl::string_view key_id, bool enabled);

  absl::Status CheckUsable(const KeySnapshot& key) const;
  // The encoded context, if it names the key's owner.
  absl::StatusOr<std::string> OwnContext(
      const KeySnapshot& key, const residency::v1::ObjectRef& context) const;
  absl::StatusOr<crypto::SecretBytes> UnwrapChecked(
      const KeySnapshot& key, const residency::v1::WrappedKey& wrapped,
      absl::string_view encoded_context) const;
  absl::StatusOr<residency::v1::WrappedKey> WrapCurrent(
      const KeySnapshot& key, absl::string_view encoded_context,
      const crypto::SecretBytes& dek) const;

  const CustodianOptions options_;
  const PolicyEngine policy_;
  std::unique_ptr<KeyStore> keys_;
  std::unique_ptr<AuditLog> audit_;
  // Key uses hold it shared from their key look-up until their audit entry
  // is queued; key changes hold it exclusively from their check until they
  // are durable.
  absl::Mutex state_mu_;
};

// Blocking form of the unary methods, for tests and in-process callers:
//   absl::Status s = CallAndWait([&](Custodian::Done d) {
//     custodian.Unwrap(principal, request, &response, std::move(d));
//   });
absl::Status CallAndWait(const std::function<void(Custodian::Done)>& start);

}  // namespace residency::key_service

#endif  // RESIDENCY_KEY_SERVICE_CUSTODIAN_H_
