#include "key_service/custodian.h"

#include <openssl/crypto.h>

#include <algorithm>
#include <optional>
#include <utility>
#include <vector>

#include "absl/strings/str_cat.h"
#include "absl/synchronization/notification.h"
#include "crypto/object_context.h"
#include "crypto/random.h"
#include "key_service/wrapped_key.h"

namespace residency::key_service {

using ::residency::crypto::SecretBytes;
using ::residency::v1::AuditEntry;
using ::residency::v1::Justification;
using ::residency::v1::KeyInfo;
using ::residency::v1::ObjectRef;
using ::residency::v1::Operation;
using ::residency::v1::WrappedKey;

struct Custodian::Call {
  AuditEntry entry;
  KeyStore::Snapshot key;
  absl::Status status;
};

namespace {

constexpr size_t kMaxRequestIdSize = 128;
constexpr size_t kMaxOwnerSize = 128;

// Rule names recorded for refusals that no policy rule made.
constexpr absl::string_view kInvalidRequestRule = "invalid-request";
constexpr absl::string_view kLegalProcessTargetRule = "legal-process-target";

void WipeString(std::string* s) {
  OPENSSL_cleanse(s->data(), s->size());
  s->clear();
}

// Key ids and owners: printable ASCII without spaces; owners also without
// '/', since they are the last segment of a user principal.
absl::Status CheckName(absl::string_view field, absl::string_view value,
                       size_t max_size, bool allow_slash) {
  if (value.empty() || value.size() > max_size) {
    return absl::InvalidArgumentError(absl::StrCat(
        field, " must be 1-", max_size, " bytes, got ", value.size()));
  }
  for (char c : value) {
    if (c < 0x21 || c > 0x7e || (!allow_slash && c == '/')) {
      return absl::InvalidArgumentError(absl::StrCat(
          field, " may contain only printable ASCII without spaces",
          allow_slash ? "" : " or '/'"));
    }
  }
  return absl::OkStatus();
}

absl::Status CheckMetadata(const residency::v1::RequestMetadata* metadata) {
  if (metadata == nullptr) {
    return absl::InvalidArgumentError(
        "request has no metadata: every request needs a request_id and a "
        "justification");
  }
  if (metadata->request_id().empty()) {
    return absl::InvalidArgumentError("metadata.request_id is empty");
  }
  if (metadata->request_id().size() > kMaxRequestIdSize) {
    return absl::InvalidArgumentError(
        absl::StrCat("metadata.request_id is ", metadata->request_id().size(),
                     " bytes; the limit is ", kMaxRequestIdSize));
  }
  if (!metadata->has_justification()) {
    return absl::InvalidArgumentError(
        "metadata.justification is missing: every request must say why it "
        "needs the key (for example CUSTOMER_INITIATED_ACCESS)");
  }
  const Justification& j = metadata->justification();
  if (!Justification::Reason_IsValid(j.reason())) {
    return absl::InvalidArgumentError(
        absl::StrCat("metadata.justification.reason ", j.reason(),
                     " is not a known reason"));
  }
  if (j.reason() == Justification::THIRD_PARTY_DATA_REQUEST) {
    if (!j.has_legal_process()) {
      return absl::InvalidArgumentError(
          "THIRD_PARTY_DATA_REQUEST needs a legal_process");
    }
    if (j.legal_process().jurisdiction().empty()) {
      return absl::InvalidArgumentError(
          "legal_process.jurisdiction is empty: whose law does it invoke?");
    }
    if (j.legal_process().target_owner().empty()) {
      return absl::InvalidArgumentError(
          "legal_process.target_owner is empty: whose data does it demand?");
    }
  }
  return absl::OkStatus();
}

// The operations that act on no key.
bool IsKeyless(Operation operation) {
  return operation == residency::v1::OPERATION_READ_AUDIT_LOG;
}

std::string DenialMessage(absl::string_view rule, absl::string_view principal,
                          Operation operation, absl::string_view key_id,
                          const Justification& j) {
  std::string message =
      absl::StrCat("denied by policy rule '", rule, "': ", principal,
                   " may not ", residency::v1::Operation_Name(operation));
  if (!key_id.empty()) absl::StrAppend(&message, " on key '", key_id, "'");
  absl::StrAppend(&message, " with justification ",
                  Justification::Reason_Name(j.reason()));
  if (j.reason() == Justification::THIRD_PARTY_DATA_REQUEST) {
    absl::StrAppend(&message, " (legal process of jurisdiction ",
                    j.legal_process().jurisdiction(), ")");
  }
  return message;
}

}  // namespace

Custodian::Custodian(CustodianOptions options, PolicyEngine policy,
                     std::unique_ptr<KeyStore> keys,
                     std::unique_ptr<AuditLog> audit)
    : options_(std::move(options)),
      policy_(std::move(policy)),
      keys_(std::move(keys)),
      audit_(std::move(audit)) {}

Custodian::~Custodian() = default;

void Custodian::Begin(Call* call, absl::string_view principal,
                      Operation operation,
                      const residency::v1::RequestMetadata* metadata,
                      absl::string_view key_id, const ObjectRef* object,
                      std::optional<absl::string_view> new_key_owner) {
  AuditEntry& entry = call->entry;
  entry.set_principal(std::string(principal));
  entry.set_operation(operation);
  entry.set_decision(AuditEntry::DENY);
  if (metadata != nullptr) {
    entry.set_request_id(metadata->request_id().substr(0, kMaxRequestIdSize));
    if (metadata->has_justification()) {
      *entry.mutable_justification() = metadata->justification();
    }
  }
  entry.set_key_id(std::string(key_id.substr(0, kMaxKeyIdSize)));
  if (object != nullptr) *entry.mutable_object() = *object;

  call->status = CheckMetadata(metadata);
  if (call->status.ok() && !IsKeyless(operation) && key_id.empty()) {
    call->status = absl::InvalidArgumentError("key_id is empty");
  }
  if (call->status.ok() && operation == residency::v1::OPERATION_CREATE_KEY) {
    call->status =
        CheckName("key_id", key_id, kMaxKeyIdSize, /*allow_slash=*/true);
    if (call->status.ok()) {
      call->status = CheckName("owner", new_key_owner.value_or(""),
                               kMaxOwnerSize, /*allow_slash=*/false);
    }
  }
  if (!call->status.ok()) {
    entry.set_rule(std::string(kInvalidRequestRule));
    return;
  }

  const Justification& j = metadata->justification();
  std::optional<absl::string_view> policy_key_id;
  std::optional<absl::string_view> owner;
  if (!IsKeyless(operation)) {
    policy_key_id = key_id;
    call->key = keys_->Find(key_id);
    if (call->key != nullptr) owner = call->key->info.owner();
  }
  // A key being created has no record yet: the owner it is created for is
  // the one policy's caller_is_owner compares with.
  if (operation == residency::v1::OPERATION_CREATE_KEY) owner = new_key_owner;
  PolicyRequest facts;
  facts.principal = principal;
  facts.operation = operation;
  facts.key_id = policy_key_id;
  facts.key_owner = owner;
  facts.reason = j.reason();
  if (j.reason() == Justification::THIRD_PARTY_DATA_REQUEST) {
    facts.legal_process_jurisdiction = j.legal_process().jurisdiction();
  }
  return Decide(call, facts, j);
}

void Custodian::Decide(Call* call, const PolicyRequest& facts,
                       const Justification& j) {
  AuditEntry& entry = call->entry;
  PolicyDecision decision = policy_.Decide(facts);
  entry.set_rule(decision.rule);
  if (!decision.allowed) {
    call->status = absl::PermissionDeniedError(
        DenialMessage(decision.rule, facts.principal, facts.operation,
                      facts.key_id.value_or(""), j));
    return;
  }
  // One order cannot unlock another owner's data, whatever the policy says.
  if (j.reason() == Justification::THIRD_PARTY_DATA_REQUEST &&
      facts.key_owner.has_value() &&
      j.legal_process().target_owner() != *facts.key_owner) {
    entry.set_rule(std::string(kLegalProcessTargetRule));
    call->status = absl::PermissionDeniedError(absl::StrCat(
        "denied by rule '", kLegalProcessTargetRule, "': the legal process ",
        "targets owner '", j.legal_process().target_owner(), "', but key '",
        *facts.key_id, "' serves another owner"));
    return;
  }
  entry.set_decision(AuditEntry::ALLOW);
  if (!IsKeyless(facts.operation) &&
      facts.operation != residency::v1::OPERATION_CREATE_KEY &&
      call->key == nullptr) {
    call->status =
        absl::NotFoundError(absl::StrCat("no key '", *facts.key_id, "'"));
  }
}

void Custodian::Finish(Call* call, std::function<void()> wipe, Done done) {
  call->entry.set_status_code(static_cast<int32_t>(call->status.code()));
  call->entry.set_status_message(std::string(call->status.message()));
  if (!call->status.ok()) wipe();
  audit_->Append(
      std::move(call->entry),
      [status = call->status, wipe = std::move(wipe),
       done = std::move(done)](absl::Status audited) mutable {
        if (!audited.ok()) {
          wipe();
          std::move(done)(absl::UnavailableError(absl::StrCat(
              "the audit log could not record this request, so it is not "
              "answered: ",
              audited.message())));
          return;
        }
        std::move(done)(status);
      });
}

absl::Status Custodian::CheckUsable(const KeySnapshot& key) const {
  switch (key.info.state()) {
    case KeyInfo::ENABLED:
      return absl::OkStatus();
    case KeyInfo::DISABLED:
      return absl::FailedPreconditionError(absl::StrCat(
          "key '", key.info.key_id(), "' is disabled (kill switch)"));
    case KeyInfo::DESTROYED:
      return absl::FailedPreconditionError(
          absl::StrCat("key '", key.info.key_id(),
                       "' is destroyed; data wrapped under "
                       "it cannot be recovered"));
    default:
      return absl::InternalError(
          absl::StrCat("key '", key.info.key_id(), "' has an unknown state"));
  }
}

absl::StatusOr<const SecretBytes*> Custodian::DecryptionKek(
    const KeySnapshot& key, uint32_t version) const {
  if (absl::Status s = CheckUsable(key); !s.ok()) return s;
  if (version == 0) {
    return absl::InvalidArgumentError("wrapped_key.key_version is 0");
  }
  if (version < key.info.min_decryption_version()) {
    return absl::FailedPreconditionError(
        absl::StrCat("key '", key.info.key_id(), "' version ", version,
                     " is below the minimum decryption version ",
                     key.info.min_decryption_version()));
  }
  const SecretBytes* kek = key.Material(version);
  if (kek == nullptr) {
    return absl::NotFoundError(
        absl::StrCat("key '", key.info.key_id(), "' has no version ", version));
  }
  return kek;
}

absl::StatusOr<SecretBytes> Custodian::UnwrapChecked(
    const KeySnapshot& key, const WrappedKey& wrapped,
    const ObjectRef& context) const {
  if (wrapped.wrapper() != WrappedKey::KEY_SERVICE) {
    return absl::InvalidArgumentError(
        "wrapped_key.wrapper must be KEY_SERVICE for a key service to unwrap "
        "it");
  }
  if (context.owner() != key.info.owner()) {
    return absl::InvalidArgumentError(
        absl::StrCat("context owner '", context.owner(),
                     "' is not the owner of key '", key.info.key_id(), "'"));
  }
  absl::StatusOr<std::string> encoded = crypto::EncodeObjectContext(
      context.owner(), context.object_id(), context.version());
  if (!encoded.ok()) return encoded.status();
  absl::StatusOr<const SecretBytes*> kek =
      DecryptionKek(key, wrapped.key_version());
  if (!kek.ok()) return kek.status();
  return UnwrapDataKey(**kek, key.info.key_id(), wrapped.key_version(),
                       *encoded, wrapped.wrapped());
}

WrappedKey Custodian::MakeWrappedKey(const KeySnapshot& key,
                                     std::string wrapped) const {
  WrappedKey result;
  result.set_wrapper(WrappedKey::KEY_SERVICE);
  result.set_key_id(key.info.key_id());
  result.set_key_version(key.info.current_version());
  result.set_wrapped(std::move(wrapped));
  result.set_key_service(options_.service_principal);
  result.set_jurisdiction(options_.jurisdiction);
  return result;
}

// ------------------------------------------------------------------- RPCs

void Custodian::CreateKey(absl::string_view principal,
                          const residency::v1::CreateKeyRequest& request,
                          residency::v1::CreateKeyResponse* response,
                          Done done) {
  Call call;
  Begin(&call, principal, residency::v1::OPERATION_CREATE_KEY,
        request.has_metadata() ? &request.metadata() : nullptr,
        request.key_id(), nullptr, request.owner());
  if (call.status.ok()) {
    absl::StatusOr<KeyStore::Snapshot> created =
        keys_->Create(request.key_id(), request.owner());
    if (created.ok()) {
      *response->mutable_key() = (*created)->info;
      call.entry.set_key_version(1);
    } else {
      call.status = created.status();
    }
  }
  Finish(
      &call, [response] { response->Clear(); }, std::move(done));
}

void Custodian::GenerateDataKey(
    absl::string_view principal,
    const residency::v1::GenerateDataKeyRequest& request,
    residency::v1::GenerateDataKeyResponse* response, Done done) {
  Call call;
  Begin(&call, principal, residency::v1::OPERATION_GENERATE_DATA_KEY,
        request.has_metadata() ? &request.metadata() : nullptr,
        request.key_id(), &request.context());
  auto wipe = [response] {
    WipeString(response->mutable_plaintext_key());
    response->Clear();
  };
  if (call.status.ok())
    call.status = [&]() -> absl::Status {
      const KeySnapshot& key = *call.key;
      if (absl::Status s = CheckUsable(key); !s.ok()) return s;
      const ObjectRef& context = request.context();
      if (context.owner() != key.info.owner()) {
        return absl::InvalidArgumentError(absl::StrCat(
            "context owner '", context.owner(), "' is not the owner of key '",
            key.info.key_id(), "'"));
      }
      absl::StatusOr<std::string> encoded = crypto::EncodeObjectContext(
          context.owner(), context.object_id(), context.version());
      if (!encoded.ok()) return encoded.status();
      const uint32_t version = key.info.current_version();
      call.entry.set_key_version(version);
      const SecretBytes* kek = key.Material(version);
      if (kek == nullptr) {
        return absl::InternalError(absl::StrCat("key '", key.info.key_id(),
                                                "' lacks its current version"));
      }
      absl::StatusOr<SecretBytes> dek = crypto::RandomSecret(kDataKeySize);
      if (!dek.ok()) return dek.status();
      absl::StatusOr<std::string> wrapped =
          WrapDataKey(*kek, key.info.key_id(), version, *encoded, *dek);
      if (!wrapped.ok()) return wrapped.status();
      response->set_plaintext_key(dek->data(), dek->size());
      *response->mutable_wrapped_key() =
          MakeWrappedKey(key, *std::move(wrapped));
      return absl::OkStatus();
    }();
  Finish(&call, std::move(wipe), std::move(done));
}

void Custodian::Unwrap(absl::string_view principal,
                       const residency::v1::UnwrapRequest& request,
                       residency::v1::UnwrapResponse* response, Done done) {
  Call call;
  Begin(&call, principal, residency::v1::OPERATION_UNWRAP,
        request.has_metadata() ? &request.metadata() : nullptr,
        request.wrapped_key().key_id(), &request.context());
  call.entry.set_key_version(request.wrapped_key().key_version());
  if (call.status.ok()) {
    absl::StatusOr<SecretBytes> dek =
        UnwrapChecked(*call.key, request.wrapped_key(), request.context());
    if (dek.ok()) {
      response->set_plaintext_key(dek->data(), dek->size());
    } else {
      call.status = dek.status();
    }
  }
  Finish(
      &call,
      [response] {
        WipeString(response->mutable_plaintext_key());
        response->Clear();
      },
      std::move(done));
}

void Custodian::Rewrap(absl::string_view principal,
                       const residency::v1::RewrapRequest& request,
                       residency::v1::RewrapResponse* response, Done done) {
  Call call;
  Begin(&call, principal, residency::v1::OPERATION_REWRAP,
        request.has_metadata() ? &request.metadata() : nullptr,
        request.wrapped_key().key_id(), &request.context());
  call.entry.set_key_version(request.wrapped_key().key_version());
  if (call.status.ok())
    call.status = [&]() -> absl::Status {
      const KeySnapshot& key = *call.key;
      absl::StatusOr<SecretBytes> dek =
          UnwrapChecked(key, request.wrapped_key(), request.context());
      if (!dek.ok()) return dek.status();
      absl::StatusOr<std::string> encoded = crypto::EncodeObjectContext(
          request.context().owner(), request.context().object_id(),
          request.context().version());
      if (!encoded.ok()) return encoded.status();
      const uint32_t version = key.info.current_version();
      const SecretBytes* kek = key.Material(version);
      if (kek == nullptr) {
        return absl::InternalError(absl::StrCat("key '", key.info.key_id(),
                                                "' lacks its current version"));
      }
      absl::StatusOr<std::string> wrapped =
          WrapDataKey(*kek, key.info.key_id(), version, *encoded, *dek);
      if (!wrapped.ok()) return wrapped.status();
      WrappedKey result = MakeWrappedKey(key, *std::move(wrapped));
      result.set_share_index(request.wrapped_key().share_index());
      *response->mutable_wrapped_key() = std::move(result);
      return absl::OkStatus();
    }();
  Finish(
      &call, [response] { response->Clear(); }, std::move(done));
}

void Custodian::RotateKey(absl::string_view principal,
                          const residency::v1::RotateKeyRequest& request,
                          residency::v1::RotateKeyResponse* response,
                          Done done) {
  Call call;
  Begin(&call, principal, residency::v1::OPERATION_ROTATE_KEY,
        request.has_metadata() ? &request.metadata() : nullptr,
        request.key_id(), nullptr);
  if (call.status.ok()) {
    absl::StatusOr<KeyStore::Snapshot> next = keys_->Rotate(request.key_id());
    if (next.ok()) {
      *response->mutable_key() = (*next)->info;
      call.entry.set_key_version((*next)->info.current_version());
    } else {
      call.status = next.status();
    }
  }
  Finish(
      &call, [response] { response->Clear(); }, std::move(done));
}

void Custodian::SetMinDecryptionVersion(
    absl::string_view principal,
    const residency::v1::SetMinDecryptionVersionRequest& request,
    residency::v1::SetMinDecryptionVersionResponse* response, Done done) {
  Call call;
  Begin(&call, principal, residency::v1::OPERATION_SET_MIN_DECRYPTION_VERSION,
        request.has_metadata() ? &request.metadata() : nullptr,
        request.key_id(), nullptr);
  call.entry.set_key_version(request.min_decryption_version());
  if (call.status.ok()) {
    absl::StatusOr<KeyStore::Snapshot> next = keys_->SetMinDecryptionVersion(
        request.key_id(), request.min_decryption_version());
    if (next.ok()) {
      *response->mutable_key() = (*next)->info;
    } else {
      call.status = next.status();
    }
  }
  Finish(
      &call, [response] { response->Clear(); }, std::move(done));
}

void Custodian::DisableKey(absl::string_view principal,
                           const residency::v1::DisableKeyRequest& request,
                           residency::v1::DisableKeyResponse* response,
                           Done done) {
  Call call;
  Begin(&call, principal, residency::v1::OPERATION_DISABLE_KEY,
        request.has_metadata() ? &request.metadata() : nullptr,
        request.key_id(), nullptr);
  if (call.status.ok()) {
    absl::StatusOr<KeyStore::Snapshot> next =
        keys_->SetEnabled(request.key_id(), /*enabled=*/false);
    if (next.ok()) {
      *response->mutable_key() = (*next)->info;
    } else {
      call.status = next.status();
    }
  }
  Finish(
      &call, [response] { response->Clear(); }, std::move(done));
}

void Custodian::EnableKey(absl::string_view principal,
                          const residency::v1::EnableKeyRequest& request,
                          residency::v1::EnableKeyResponse* response,
                          Done done) {
  Call call;
  Begin(&call, principal, residency::v1::OPERATION_ENABLE_KEY,
        request.has_metadata() ? &request.metadata() : nullptr,
        request.key_id(), nullptr);
  if (call.status.ok()) {
    absl::StatusOr<KeyStore::Snapshot> next =
        keys_->SetEnabled(request.key_id(), /*enabled=*/true);
    if (next.ok()) {
      *response->mutable_key() = (*next)->info;
    } else {
      call.status = next.status();
    }
  }
  Finish(
      &call, [response] { response->Clear(); }, std::move(done));
}

void Custodian::DestroyKey(absl::string_view principal,
                           const residency::v1::DestroyKeyRequest& request,
                           residency::v1::DestroyKeyResponse* response,
                           Done done) {
  Call call;
  Begin(&call, principal, residency::v1::OPERATION_DESTROY_KEY,
        request.has_metadata() ? &request.metadata() : nullptr,
        request.key_id(), nullptr);
  if (call.status.ok()) {
    absl::StatusOr<KeyStore::Snapshot> next = keys_->Destroy(request.key_id());
    if (next.ok()) {
      *response->mutable_key() = (*next)->info;
    } else {
      call.status = next.status();
    }
  }
  Finish(
      &call, [response] { response->Clear(); }, std::move(done));
}

void Custodian::GetKeyInfo(absl::string_view principal,
                           const residency::v1::GetKeyInfoRequest& request,
                           residency::v1::GetKeyInfoResponse* response,
                           Done done) {
  Call call;
  Begin(&call, principal, residency::v1::OPERATION_GET_KEY_INFO,
        request.has_metadata() ? &request.metadata() : nullptr,
        request.key_id(), nullptr);
  if (call.status.ok()) *response->mutable_key() = call.key->info;
  Finish(
      &call, [response] { response->Clear(); }, std::move(done));
}

void Custodian::ExportKey(absl::string_view principal,
                          const residency::v1::ExportKeyRequest& request,
                          residency::v1::ExportKeyResponse* response,
                          Done done) {
  Call call;
  Begin(&call, principal, residency::v1::OPERATION_EXPORT_KEY,
        request.has_metadata() ? &request.metadata() : nullptr,
        request.key_id(), nullptr);
  auto wipe = [response] {
    for (auto& v : *response->mutable_versions()) {
      WipeString(v.mutable_material());
    }
    response->Clear();
  };
  if (call.status.ok())
    call.status = [&]() -> absl::Status {
      const KeySnapshot& key = *call.key;
      if (key.info.state() == KeyInfo::DESTROYED) {
        return absl::FailedPreconditionError(absl::StrCat(
            "key '", key.info.key_id(), "' is destroyed: nothing to export"));
      }
      std::vector<uint32_t> versions(request.versions().begin(),
                                     request.versions().end());
      if (versions.empty()) {
        for (const auto& [version, material] : key.material) {
          versions.push_back(version);
        }
      }
      std::sort(versions.begin(), versions.end());
      versions.erase(std::unique(versions.begin(), versions.end()),
                     versions.end());
      *response->mutable_key() = key.info;
      for (uint32_t version : versions) {
        const SecretBytes* material = key.Material(version);
        if (material == nullptr) {
          return absl::NotFoundError(absl::StrCat(
              "key '", key.info.key_id(), "' has no version ", version));
        }
        auto* out = response->add_versions();
        out->set_version(version);
        out->set_material(material->data(), material->size());
        for (const KeyInfo::Version& meta : key.info.versions()) {
          if (meta.version() == version) {
            *out->mutable_created_at() = meta.created_at();
          }
        }
      }
      // The audit entry names the newest version handed over.
      call.entry.set_key_version(versions.empty() ? 0 : versions.back());
      return absl::OkStatus();
    }();
  Finish(&call, std::move(wipe), std::move(done));
}

absl::Status Custodian::ReadAuditLog(
    absl::string_view principal,
    const residency::v1::ReadAuditLogRequest& request, const AuditSink& sink) {
  Call call;
  Begin(&call, principal, residency::v1::OPERATION_READ_AUDIT_LOG,
        request.has_metadata() ? &request.metadata() : nullptr,
        /*key_id=*/"", nullptr);
  const absl::Status decided = call.status;
  absl::Status recorded = CallAndWait([&](Done done) {
    Finish(
        &call, [] {}, std::move(done));
  });
  if (!recorded.ok()) return recorded;
  if (!decided.ok()) return decided;
  return audit_->Read(request.start_sequence(), request.max_entries(), sink);
}

absl::Status CallAndWait(const std::function<void(Custodian::Done)>& start) {
  absl::Notification finished;
  absl::Status result;
  start([&](absl::Status status) {
    result = std::move(status);
    finished.Notify();
  });
  finished.WaitForNotification();
  return result;
}

}  // namespace residency::key_service
