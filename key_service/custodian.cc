#include "key_service/custodian.h"

#include <algorithm>
#include <optional>
#include <utility>
#include <vector>

#include "absl/strings/match.h"
#include "absl/strings/str_cat.h"
#include "absl/synchronization/notification.h"
#include "crypto/object_context.h"
#include "crypto/random.h"
#include "key_service/wrapped_key.h"
#include "rpc/printable.h"
#include "tls/principal.h"

namespace residency::key_service {

using ::residency::crypto::SecretBytes;
using ::residency::v1::AuditEntry;
using ::residency::v1::Justification;
using ::residency::v1::KeyInfo;
using ::residency::v1::LegalProcess;
using ::residency::v1::ObjectRef;
using ::residency::v1::Operation;
using ::residency::v1::RequestMetadata;
using ::residency::v1::WrappedKey;

struct Custodian::Call {
  AuditEntry entry;
  KeyStore::Snapshot key;
  absl::Status status;
};

namespace {

// Limits on everything a request may carry into an audit entry, so that an
// entry always fits the log (kMaxAuditEntryBytes) and a refusal is recorded
// like any other decision.
constexpr size_t kMaxRequestIdSize = 128;
constexpr size_t kMaxDetailSize = 1024;
constexpr size_t kMaxLegalTextSize = 512;
constexpr size_t kMaxJurisdictionSize = 16;
constexpr size_t kMaxOwnerSize = crypto::kMaxObjectOwnerSize;
constexpr size_t kMaxStatusMessageSize = 1024;
constexpr size_t kMaxPrincipalSize = 256;
static_assert(kMaxRequestIdSize + kMaxDetailSize + 6 * kMaxLegalTextSize +
                      kMaxJurisdictionSize + kMaxOwnerSize +
                      crypto::kMaxObjectIdSize + kMaxKeyIdSize +
                      kMaxStatusMessageSize + kMaxPrincipalSize + 1024 <
                  kMaxAuditEntryBytes,
              "a bounded request must always fit one audit entry");

// Rule names recorded for refusals that no policy rule made.
constexpr absl::string_view kInvalidRequestRule = "invalid-request";
constexpr absl::string_view kLegalProcessTargetRule = "legal-process-target";
constexpr absl::string_view kLegalProcessIssuerRule = "legal-process-issuer";

// Request text echoed in a message: quoted, escaped and cut short.
std::string Quote(absl::string_view s) {
  constexpr size_t kShown = 128;
  return absl::StrCat("'", rpc::Printable(rpc::CutAtCharacter(s, kShown)),
                      s.size() > kShown ? "...'" : "'");
}

absl::Status TooLong(absl::string_view field, size_t size, size_t limit) {
  return absl::InvalidArgumentError(
      absl::StrCat(field, " is ", size, " bytes; the limit is ", limit));
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
      return absl::InvalidArgumentError(
          absl::StrCat(field,
                       " may contain only printable ASCII without "
                       "spaces",
                       allow_slash ? "" : " or '/'"));
    }
  }
  return absl::OkStatus();
}

absl::Status CheckLegalProcess(const LegalProcess& lp) {
  if (lp.jurisdiction().empty()) {
    return absl::InvalidArgumentError(
        "legal_process.jurisdiction is empty: whose law does it invoke?");
  }
  if (lp.target_owner().empty()) {
    return absl::InvalidArgumentError(
        "legal_process.target_owner is empty: whose data does it demand?");
  }
  if (lp.jurisdiction().size() > kMaxJurisdictionSize) {
    return TooLong("legal_process.jurisdiction", lp.jurisdiction().size(),
                   kMaxJurisdictionSize);
  }
  if (lp.target_owner().size() > kMaxOwnerSize) {
    return TooLong("legal_process.target_owner", lp.target_owner().size(),
                   kMaxOwnerSize);
  }
  for (const auto& [field, value] :
       {std::pair{"legal_process.issuing_authority", &lp.issuing_authority()},
        std::pair{"legal_process.legal_basis", &lp.legal_basis()},
        std::pair{"legal_process.scope", &lp.scope()},
        std::pair{"legal_process.reference_id", &lp.reference_id()}}) {
    if (value->size() > kMaxLegalTextSize) {
      return TooLong(field, value->size(), kMaxLegalTextSize);
    }
  }
  return absl::OkStatus();
}

absl::Status CheckMetadata(const RequestMetadata* metadata) {
  if (metadata == nullptr) {
    return absl::InvalidArgumentError(
        "request has no metadata: every request needs a request_id and a "
        "justification");
  }
  if (metadata->request_id().empty()) {
    return absl::InvalidArgumentError("metadata.request_id is empty");
  }
  if (metadata->request_id().size() > kMaxRequestIdSize) {
    return TooLong("metadata.request_id", metadata->request_id().size(),
                   kMaxRequestIdSize);
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
  if (j.detail().size() > kMaxDetailSize) {
    return TooLong("metadata.justification.detail", j.detail().size(),
                   kMaxDetailSize);
  }
  if (j.reason() == Justification::THIRD_PARTY_DATA_REQUEST) {
    if (!j.has_legal_process()) {
      return absl::InvalidArgumentError(
          "THIRD_PARTY_DATA_REQUEST needs a legal_process");
    }
    return CheckLegalProcess(j.legal_process());
  }
  return absl::OkStatus();
}

absl::Status CheckObjectSizes(const ObjectRef* object) {
  if (object == nullptr) return absl::OkStatus();
  if (object->owner().size() > kMaxOwnerSize) {
    return TooLong("context.owner", object->owner().size(), kMaxOwnerSize);
  }
  if (object->object_id().size() > crypto::kMaxObjectIdSize) {
    return TooLong("context.object_id", object->object_id().size(),
                   crypto::kMaxObjectIdSize);
  }
  return absl::OkStatus();
}

// What the audit entry keeps of a justification: every field, cut to its
// limit (only a refused request can exceed one).
Justification Bounded(const Justification& j) {
  Justification out;
  out.set_reason(j.reason());
  out.set_detail(j.detail().substr(0, kMaxDetailSize));
  if (j.has_legal_process()) {
    const LegalProcess& in = j.legal_process();
    LegalProcess* lp = out.mutable_legal_process();
    lp->set_issuing_authority(
        in.issuing_authority().substr(0, kMaxLegalTextSize));
    lp->set_jurisdiction(in.jurisdiction().substr(0, kMaxJurisdictionSize));
    lp->set_legal_basis(in.legal_basis().substr(0, kMaxLegalTextSize));
    lp->set_target_owner(in.target_owner().substr(0, kMaxOwnerSize));
    lp->set_scope(in.scope().substr(0, kMaxLegalTextSize));
    lp->set_reference_id(in.reference_id().substr(0, kMaxLegalTextSize));
    if (in.has_issued_at()) *lp->mutable_issued_at() = in.issued_at();
  }
  return out;
}

ObjectRef Bounded(const ObjectRef& o) {
  ObjectRef out;
  out.set_owner(o.owner().substr(0, kMaxOwnerSize));
  out.set_object_id(o.object_id().substr(0, crypto::kMaxObjectIdSize));
  out.set_version(o.version());
  return out;
}

// The operations that act on no key.
bool IsKeyless(Operation operation) {
  return operation == residency::v1::OPERATION_READ_AUDIT_LOG;
}

// Legal process binds only the authority of the jurisdiction it invokes: a
// certificate for residency://authority/cn may present CN process and
// nothing else, and no other kind of principal may present any.
absl::Status CheckIssuer(absl::string_view principal,
                         const LegalProcess& legal_process) {
  absl::StatusOr<tls::Principal> caller = tls::ParsePrincipal(principal);
  if (!caller.ok() || caller->kind != tls::Principal::Kind::kAuthority) {
    return absl::PermissionDeniedError(absl::StrCat(
        "denied by rule '", kLegalProcessIssuerRule, "': only an authority ",
        "(residency://authority/JURISDICTION) may present legal process, "
        "not ",
        Quote(principal)));
  }
  if (!absl::EqualsIgnoreCase(caller->name, legal_process.jurisdiction())) {
    return absl::PermissionDeniedError(absl::StrCat(
        "denied by rule '", kLegalProcessIssuerRule, "': ", principal,
        " may present legal process of its own jurisdiction only, not of ",
        Quote(legal_process.jurisdiction())));
  }
  return absl::OkStatus();
}

std::string DenialMessage(absl::string_view rule, absl::string_view principal,
                          Operation operation, absl::string_view key_id,
                          const Justification& j) {
  std::string message =
      absl::StrCat("denied by policy rule '", rule, "': ", principal,
                   " may not ", residency::v1::Operation_Name(operation));
  if (!key_id.empty()) absl::StrAppend(&message, " on key ", Quote(key_id));
  absl::StrAppend(&message, " with justification ",
                  Justification::Reason_Name(j.reason()));
  if (j.reason() == Justification::THIRD_PARTY_DATA_REQUEST) {
    absl::StrAppend(&message, " (legal process of jurisdiction ",
                    Quote(j.legal_process().jurisdiction()), ")");
  }
  return message;
}

// Clears a response that carries a plaintext data key, wiping the key.
std::function<void()> WipePlaintextKey(auto* response) {
  return [response] {
    crypto::WipeString(response->mutable_plaintext_key());
    response->Clear();
  };
}

const RequestMetadata* MetadataOf(const auto& request) {
  return request.has_metadata() ? &request.metadata() : nullptr;
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
                      Operation operation, const RequestMetadata* metadata,
                      absl::string_view key_id, const ObjectRef* object,
                      std::optional<absl::string_view> new_key_owner) {
  AuditEntry& entry = call->entry;
  entry.set_principal(std::string(principal.substr(0, kMaxPrincipalSize)));
  entry.set_operation(operation);
  entry.set_decision(AuditEntry::DENY);
  if (metadata != nullptr) {
    entry.set_request_id(metadata->request_id().substr(0, kMaxRequestIdSize));
    if (metadata->has_justification()) {
      *entry.mutable_justification() = Bounded(metadata->justification());
    }
  }
  entry.set_key_id(std::string(key_id.substr(0, kMaxKeyIdSize)));
  if (object != nullptr) *entry.mutable_object() = Bounded(*object);

  call->status = CheckMetadata(metadata);
  if (call->status.ok()) call->status = CheckObjectSizes(object);
  if (call->status.ok() && !IsKeyless(operation)) {
    call->status = CheckName("key_id", key_id, kMaxKeyIdSize,
                             /*allow_slash=*/true);
  }
  if (call->status.ok() && operation == residency::v1::OPERATION_CREATE_KEY) {
    call->status = CheckName("owner", new_key_owner.value_or(""), kMaxOwnerSize,
                             /*allow_slash=*/false);
  }
  if (!call->status.ok()) {
    entry.set_rule(std::string(kInvalidRequestRule));
    return;
  }

  const Justification& j = metadata->justification();
  const bool legal = j.reason() == Justification::THIRD_PARTY_DATA_REQUEST;
  if (legal) {
    call->status = CheckIssuer(principal, j.legal_process());
    if (!call->status.ok()) {
      entry.set_rule(std::string(kLegalProcessIssuerRule));
      return;
    }
  }

  std::optional<absl::string_view> owner;
  if (!IsKeyless(operation)) {
    call->key = keys_->Find(key_id);
    if (call->key != nullptr) owner = call->key->info.owner();
  }
  // A key being created has no record yet: the owner it is created for is
  // the one policy's caller_is_owner compares with.
  if (operation == residency::v1::OPERATION_CREATE_KEY) owner = new_key_owner;

  PolicyRequest facts;
  facts.principal = principal;
  facts.operation = operation;
  if (!IsKeyless(operation)) facts.key_id = key_id;
  facts.key_owner = owner;
  facts.reason = j.reason();
  if (legal)
    facts.legal_process_jurisdiction = j.legal_process().jurisdiction();
  const PolicyDecision decision = policy_.Decide(facts);
  entry.set_rule(decision.rule);
  if (!decision.allowed) {
    call->status = absl::PermissionDeniedError(
        DenialMessage(decision.rule, principal, operation, key_id, j));
    return;
  }
  // One order cannot unlock another owner's data, whatever the policy says.
  // An unknown key is refused alike, so legal process cannot probe which
  // keys exist.
  if (legal && !IsKeyless(operation) &&
      (!owner.has_value() || j.legal_process().target_owner() != *owner)) {
    entry.set_rule(std::string(kLegalProcessTargetRule));
    call->status = absl::PermissionDeniedError(
        absl::StrCat("denied by rule '", kLegalProcessTargetRule,
                     "': the legal process targets owner ",
                     Quote(j.legal_process().target_owner()), ", and key ",
                     Quote(key_id), " does not serve that owner"));
    return;
  }
  entry.set_decision(AuditEntry::ALLOW);
  if (!IsKeyless(operation) &&
      operation != residency::v1::OPERATION_CREATE_KEY &&
      call->key == nullptr) {
    call->status = absl::NotFoundError(absl::StrCat("no key ", Quote(key_id)));
  }
}

void Custodian::Record(Call* call) {
  call->entry.set_status_code(static_cast<int32_t>(call->status.code()));
  // Cut between characters: the entry's string must stay UTF-8.
  call->entry.set_status_message(std::string(
      rpc::CutAtCharacter(call->status.message(), kMaxStatusMessageSize)));
}

void Custodian::Finish(Call* call, std::function<void()> wipe, Done done) {
  Record(call);
  if (!call->status.ok()) wipe();
  audit_->Append(std::move(call->entry),
                 [status = call->status, wipe = std::move(wipe),
                  done = std::move(done)](absl::Status audited) mutable {
                   if (!audited.ok()) {
                     wipe();
                     std::move(done)(Unrecorded(audited));
                     return;
                   }
                   std::move(done)(status);
                 });
}

absl::Status Custodian::Unrecorded(const absl::Status& audited) {
  // Apart from an entry too large to record, a failure stops the log until
  // it is opened again: the write that failed, and every entry after it.
  return absl::UnavailableError(absl::StrCat(
      "the audit log could not record this request, so it is not answered: ",
      audited.message(),
      absl::IsInvalidArgument(audited)
          ? ""
          : "; restart the key service (once its disk is sound, if the disk "
            "failed)"));
}

void Custodian::ChangeKey(absl::string_view principal, Operation operation,
                          const RequestMetadata* metadata,
                          absl::string_view key_id,
                          std::optional<absl::string_view> new_key_owner,
                          const Change& change, KeyInfo* out, Done done) {
  Call call;
  auto clear = [out] { out->Clear(); };
  // Exclusive: no request that uses a key is between its look-up and its
  // audit entry while the key changes, so once a change is acknowledged
  // (a disable, say) nothing decided on the old state can still be answered
  // after it.
  absl::MutexLock lock(&state_mu_);
  Begin(&call, principal, operation, metadata, key_id, nullptr, new_key_owner);
  if (call.status.ok()) call.status = change.check(call.key.get(), &call.entry);
  if (!call.status.ok()) return Finish(&call, clear, std::move(done));

  // The decision is durable before the change is made: a change the log
  // does not show never happens, and a crash in between leaves an entry for
  // a change that did not happen rather than the reverse.
  Record(&call);
  if (absl::Status audited = audit_->AppendAndWait(call.entry); !audited.ok()) {
    clear();
    return std::move(done)(Unrecorded(audited));
  }
  absl::StatusOr<KeyStore::Snapshot> changed = change.apply();
  if (!changed.ok()) {
    // The first entry said OK; this one says what actually happened.
    call.status = changed.status();
    Record(&call);
    clear();
    absl::Status audited = audit_->AppendAndWait(std::move(call.entry));
    return std::move(done)(audited.ok() ? call.status : Unrecorded(audited));
  }
  *out = (*changed)->info;
  std::move(done)(absl::OkStatus());
}

absl::Status Custodian::CheckUsable(const KeySnapshot& key) const {
  switch (key.info.state()) {
    case KeyInfo::ENABLED:
      return absl::OkStatus();
    case KeyInfo::DISABLED:
      return absl::FailedPreconditionError(absl::StrCat(
          "key ", Quote(key.info.key_id()), " is disabled (kill switch)"));
    case KeyInfo::DESTROYED:
      return absl::FailedPreconditionError(absl::StrCat(
          "key ", Quote(key.info.key_id()),
          " is destroyed; data wrapped under it cannot be recovered"));
    default:
      return absl::InternalError(absl::StrCat("key ", Quote(key.info.key_id()),
                                              " has an unknown state"));
  }
}

absl::StatusOr<std::string> Custodian::OwnContext(
    const KeySnapshot& key, const ObjectRef& context) const {
  if (context.owner() != key.info.owner()) {
    return absl::InvalidArgumentError(
        absl::StrCat("context owner ", Quote(context.owner()),
                     " is not the owner of key ", Quote(key.info.key_id())));
  }
  return crypto::EncodeObjectContext(context.owner(), context.object_id(),
                                     context.version());
}

absl::StatusOr<SecretBytes> Custodian::UnwrapChecked(
    const KeySnapshot& key, const WrappedKey& wrapped,
    absl::string_view encoded_context) const {
  if (wrapped.wrapper() != WrappedKey::KEY_SERVICE) {
    return absl::InvalidArgumentError(
        "wrapped_key.wrapper must be KEY_SERVICE for a key service to unwrap "
        "it");
  }
  if (absl::Status s = CheckUsable(key); !s.ok()) return s;
  const uint32_t version = wrapped.key_version();
  if (version == 0) {
    return absl::InvalidArgumentError("wrapped_key.key_version is 0");
  }
  if (version < key.info.min_decryption_version()) {
    return absl::FailedPreconditionError(
        absl::StrCat("key ", Quote(key.info.key_id()), " version ", version,
                     " is below the minimum decryption version ",
                     key.info.min_decryption_version()));
  }
  const SecretBytes* kek = key.Material(version);
  if (kek == nullptr) {
    return absl::NotFoundError(absl::StrCat("key ", Quote(key.info.key_id()),
                                            " has no version ", version));
  }
  return UnwrapDataKey(*kek, key.info.key_id(), version, encoded_context,
                       wrapped.wrapped());
}

absl::StatusOr<WrappedKey> Custodian::WrapCurrent(
    const KeySnapshot& key, absl::string_view encoded_context,
    const SecretBytes& dek) const {
  const uint32_t version = key.info.current_version();
  const SecretBytes* kek = key.Material(version);
  if (kek == nullptr) {
    return absl::InternalError(absl::StrCat("key ", Quote(key.info.key_id()),
                                            " lacks its current version"));
  }
  absl::StatusOr<std::string> wrapped =
      WrapDataKey(*kek, key.info.key_id(), version, encoded_context, dek);
  if (!wrapped.ok()) return wrapped.status();
  WrappedKey result;
  result.set_wrapper(WrappedKey::KEY_SERVICE);
  result.set_key_id(key.info.key_id());
  result.set_key_version(version);
  result.set_wrapped(*std::move(wrapped));
  result.set_key_service(options_.service_principal);
  result.set_jurisdiction(options_.jurisdiction);
  return result;
}

// ------------------------------------------------------------------- RPCs

void Custodian::CreateKey(absl::string_view principal,
                          const residency::v1::CreateKeyRequest& request,
                          residency::v1::CreateKeyResponse* response,
                          Done done) {
  ChangeKey(
      principal, residency::v1::OPERATION_CREATE_KEY, MetadataOf(request),
      request.key_id(), request.owner(),
      {.check = [&](const KeySnapshot* key, AuditEntry* entry) -> absl::Status {
         if (key != nullptr) {
           return absl::AlreadyExistsError(absl::StrCat(
               "key ", Quote(request.key_id()), " already exists"));
         }
         entry->set_key_version(1);
         return absl::OkStatus();
       },
       .apply =
           [&] { return keys_->Create(request.key_id(), request.owner()); }},
      response->mutable_key(), std::move(done));
}

void Custodian::RotateKey(absl::string_view principal,
                          const residency::v1::RotateKeyRequest& request,
                          residency::v1::RotateKeyResponse* response,
                          Done done) {
  ChangeKey(
      principal, residency::v1::OPERATION_ROTATE_KEY, MetadataOf(request),
      request.key_id(), std::nullopt,
      {.check = [&](const KeySnapshot* key, AuditEntry* entry) -> absl::Status {
         if (key->info.state() == KeyInfo::DESTROYED) {
           return absl::FailedPreconditionError(
               absl::StrCat("key ", Quote(request.key_id()),
                            " is destroyed and cannot rotate"));
         }
         entry->set_key_version(key->info.current_version() + 1);
         return absl::OkStatus();
       },
       .apply = [&] { return keys_->Rotate(request.key_id()); }},
      response->mutable_key(), std::move(done));
}

void Custodian::SetMinDecryptionVersion(
    absl::string_view principal,
    const residency::v1::SetMinDecryptionVersionRequest& request,
    residency::v1::SetMinDecryptionVersionResponse* response, Done done) {
  const uint32_t version = request.min_decryption_version();
  ChangeKey(
      principal, residency::v1::OPERATION_SET_MIN_DECRYPTION_VERSION,
      MetadataOf(request), request.key_id(), std::nullopt,
      {.check = [&](const KeySnapshot* key, AuditEntry* entry) -> absl::Status {
         entry->set_key_version(version);
         if (key->info.state() == KeyInfo::DESTROYED) {
           return absl::FailedPreconditionError(
               absl::StrCat("key ", Quote(request.key_id()), " is destroyed"));
         }
         if (version == 0 || version > key->info.current_version()) {
           return absl::InvalidArgumentError(
               absl::StrCat("minimum decryption version ", version, " for key ",
                            Quote(request.key_id()),
                            " must be between 1 and the current version ",
                            key->info.current_version()));
         }
         return absl::OkStatus();
       },
       .apply =
           [&] {
             return keys_->SetMinDecryptionVersion(request.key_id(), version);
           }},
      response->mutable_key(), std::move(done));
}

Custodian::Change Custodian::SetEnabledChange(absl::string_view key_id,
                                              bool enabled) {
  return {.check = [key_id, enabled](const KeySnapshot* key,
                                     AuditEntry*) -> absl::Status {
            if (key->info.state() == KeyInfo::DESTROYED) {
              return absl::FailedPreconditionError(absl::StrCat(
                  "key ", Quote(key_id), " is destroyed and cannot be ",
                  enabled ? "enabled" : "disabled"));
            }
            return absl::OkStatus();
          },
          .apply = [this, key_id,
                    enabled] { return keys_->SetEnabled(key_id, enabled); }};
}

void Custodian::DisableKey(absl::string_view principal,
                           const residency::v1::DisableKeyRequest& request,
                           residency::v1::DisableKeyResponse* response,
                           Done done) {
  ChangeKey(principal, residency::v1::OPERATION_DISABLE_KEY,
            MetadataOf(request), request.key_id(), std::nullopt,
            SetEnabledChange(request.key_id(), /*enabled=*/false),
            response->mutable_key(), std::move(done));
}

void Custodian::EnableKey(absl::string_view principal,
                          const residency::v1::EnableKeyRequest& request,
                          residency::v1::EnableKeyResponse* response,
                          Done done) {
  ChangeKey(principal, residency::v1::OPERATION_ENABLE_KEY, MetadataOf(request),
            request.key_id(), std::nullopt,
            SetEnabledChange(request.key_id(), /*enabled=*/true),
            response->mutable_key(), std::move(done));
}

void Custodian::DestroyKey(absl::string_view principal,
                           const residency::v1::DestroyKeyRequest& request,
                           residency::v1::DestroyKeyResponse* response,
                           Done done) {
  ChangeKey(principal, residency::v1::OPERATION_DESTROY_KEY,
            MetadataOf(request), request.key_id(), std::nullopt,
            {.check = [](const KeySnapshot*,
                         AuditEntry*) { return absl::OkStatus(); },
             .apply = [&] { return keys_->Destroy(request.key_id()); }},
            response->mutable_key(), std::move(done));
}

void Custodian::GenerateDataKey(
    absl::string_view principal,
    const residency::v1::GenerateDataKeyRequest& request,
    residency::v1::GenerateDataKeyResponse* response, Done done) {
  absl::ReaderMutexLock lock(&state_mu_);
  Call call;
  Begin(&call, principal, residency::v1::OPERATION_GENERATE_DATA_KEY,
        MetadataOf(request), request.key_id(), &request.context());
  if (call.status.ok()) {
    call.status = [&]() -> absl::Status {
      const KeySnapshot& key = *call.key;
      if (absl::Status s = CheckUsable(key); !s.ok()) return s;
      absl::StatusOr<std::string> context = OwnContext(key, request.context());
      if (!context.ok()) return context.status();
      call.entry.set_key_version(key.info.current_version());
      absl::StatusOr<SecretBytes> dek = crypto::RandomSecret(kDataKeySize);
      if (!dek.ok()) return dek.status();
      absl::StatusOr<WrappedKey> wrapped = WrapCurrent(key, *context, *dek);
      if (!wrapped.ok()) return wrapped.status();
      response->set_plaintext_key(dek->data(), dek->size());
      *response->mutable_wrapped_key() = *std::move(wrapped);
      return absl::OkStatus();
    }();
  }
  Finish(&call, WipePlaintextKey(response), std::move(done));
}

void Custodian::Unwrap(absl::string_view principal,
                       const residency::v1::UnwrapRequest& request,
                       residency::v1::UnwrapResponse* response, Done done) {
  absl::ReaderMutexLock lock(&state_mu_);
  Call call;
  Begin(&call, principal, residency::v1::OPERATION_UNWRAP, MetadataOf(request),
        request.wrapped_key().key_id(), &request.context());
  call.entry.set_key_version(request.wrapped_key().key_version());
  if (call.status.ok()) {
    call.status = [&]() -> absl::Status {
      absl::StatusOr<std::string> context =
          OwnContext(*call.key, request.context());
      if (!context.ok()) return context.status();
      absl::StatusOr<SecretBytes> dek =
          UnwrapChecked(*call.key, request.wrapped_key(), *context);
      if (!dek.ok()) return dek.status();
      response->set_plaintext_key(dek->data(), dek->size());
      return absl::OkStatus();
    }();
  }
  Finish(&call, WipePlaintextKey(response), std::move(done));
}

void Custodian::Rewrap(absl::string_view principal,
                       const residency::v1::RewrapRequest& request,
                       residency::v1::RewrapResponse* response, Done done) {
  absl::ReaderMutexLock lock(&state_mu_);
  Call call;
  Begin(&call, principal, residency::v1::OPERATION_REWRAP, MetadataOf(request),
        request.wrapped_key().key_id(), &request.context());
  call.entry.set_key_version(request.wrapped_key().key_version());
  if (call.status.ok()) {
    call.status = [&]() -> absl::Status {
      const KeySnapshot& key = *call.key;
      absl::StatusOr<std::string> context = OwnContext(key, request.context());
      if (!context.ok()) return context.status();
      absl::StatusOr<SecretBytes> dek =
          UnwrapChecked(key, request.wrapped_key(), *context);
      if (!dek.ok()) return dek.status();
      absl::StatusOr<WrappedKey> wrapped = WrapCurrent(key, *context, *dek);
      if (!wrapped.ok()) return wrapped.status();
      wrapped->set_share_index(request.wrapped_key().share_index());
      *response->mutable_wrapped_key() = *std::move(wrapped);
      return absl::OkStatus();
    }();
  }
  Finish(
      &call, [response] { response->Clear(); }, std::move(done));
}

void Custodian::GetKeyInfo(absl::string_view principal,
                           const residency::v1::GetKeyInfoRequest& request,
                           residency::v1::GetKeyInfoResponse* response,
                           Done done) {
  absl::ReaderMutexLock lock(&state_mu_);
  Call call;
  Begin(&call, principal, residency::v1::OPERATION_GET_KEY_INFO,
        MetadataOf(request), request.key_id(), nullptr);
  if (call.status.ok()) *response->mutable_key() = call.key->info;
  Finish(
      &call, [response] { response->Clear(); }, std::move(done));
}

void Custodian::ExportKey(absl::string_view principal,
                          const residency::v1::ExportKeyRequest& request,
                          residency::v1::ExportKeyResponse* response,
                          Done done) {
  absl::ReaderMutexLock lock(&state_mu_);
  Call call;
  Begin(&call, principal, residency::v1::OPERATION_EXPORT_KEY,
        MetadataOf(request), request.key_id(), nullptr);
  if (call.status.ok()) {
    call.status = [&]() -> absl::Status {
      const KeySnapshot& key = *call.key;
      // The kill switch stops hand-overs too.
      if (absl::Status s = CheckUsable(key); !s.ok()) return s;
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
              "key ", Quote(key.info.key_id()), " has no version ", version));
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
  }
  Finish(
      &call,
      [response] {
        for (auto& v : *response->mutable_versions()) {
          crypto::WipeString(v.mutable_material());
        }
        response->Clear();
      },
      std::move(done));
}

absl::Status Custodian::ReadAuditLog(
    absl::string_view principal,
    const residency::v1::ReadAuditLogRequest& request, const AuditSink& sink) {
  Call call;
  Begin(&call, principal, residency::v1::OPERATION_READ_AUDIT_LOG,
        MetadataOf(request), /*key_id=*/"", nullptr);
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
