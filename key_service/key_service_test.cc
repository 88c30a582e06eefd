// The key service end to end over gRPC and mTLS: a real server in-process
// on an ephemeral loopback port, real certificates from a throwaway CA, and
// one client identity per actor.
#include <sys/stat.h>

#include <filesystem>
#include <fstream>
#include <iterator>
#include <memory>
#include <optional>
#include <string>
#include <vector>

#include "absl/strings/escaping.h"
#include "absl/strings/match.h"
#include "absl/strings/str_cat.h"
#include "absl/strings/str_replace.h"
#include "gmock/gmock.h"
#include "gtest/gtest.h"
#include "key_service/audit_signer.h"
#include "key_service/audit_verifier.h"
#include "key_service/server.h"
#include "residency/v1/key_service.grpc.pb.h"
#include "residency/v1/key_store.pb.h"
#include "rocksdb/db.h"
#include "rpc/health.h"
#include "rpc/status.h"
#include "tests/fault_file_system.h"
#include "tests/status_matchers.h"
#include "tests/temp_dir.h"
#include "tls/credentials.h"
#include "tls/pki.h"

namespace residency::key_service {
namespace {

using ::residency::testing::IsOkAndHolds;
using ::residency::testing::StatusIs;
using ::residency::testing::TempDir;
using ::residency::v1::AuditEntry;
using ::residency::v1::Justification;
using ::residency::v1::KeyInfo;
using ::residency::v1::KeyService;
using ::residency::v1::ObjectRef;
using ::residency::v1::RequestMetadata;
using ::residency::v1::WrappedKey;
using ::testing::HasSubstr;

constexpr char kPolicy[] = R"pb(
  jurisdiction: "US"
  rules {
    name: "owners-use-own-keys"
    effect: ALLOW
    caller_is_owner: true
    operations: [
      OPERATION_CREATE_KEY,
      OPERATION_GENERATE_DATA_KEY,
      OPERATION_UNWRAP,
      OPERATION_GET_KEY_INFO
    ]
    justifications: CUSTOMER_INITIATED_ACCESS
  }
  rules {
    name: "obey-us-legal-process"
    effect: ALLOW
    principals: "residency://authority/*"
    operations: [ OPERATION_UNWRAP, OPERATION_EXPORT_KEY ]
    justifications: THIRD_PARTY_DATA_REQUEST
    legal_process_jurisdictions: "US"
  }
  rules {
    name: "custodian-operations"
    effect: ALLOW
    principals: "residency://operator/us-ops"
    operations: [
      OPERATION_CREATE_KEY,
      OPERATION_ROTATE_KEY,
      OPERATION_REWRAP,
      OPERATION_SET_MIN_DECRYPTION_VERSION,
      OPERATION_DISABLE_KEY,
      OPERATION_ENABLE_KEY,
      OPERATION_DESTROY_KEY,
      OPERATION_GET_KEY_INFO
    ]
    justifications: CUSTODIAN_INITIATED_SERVICE
  }
  rules {
    name: "auditor-reads-log"
    effect: ALLOW
    principals: "residency://operator/auditor"
    operations: OPERATION_READ_AUDIT_LOG
    justifications: SECURITY_AUDIT
  }
)pb";

constexpr char kAlice[] = "residency://user/alice";
constexpr char kBob[] = "residency://user/bob";
constexpr char kOps[] = "residency://operator/us-ops";
constexpr char kAuditor[] = "residency://operator/auditor";
constexpr char kUsAuthority[] = "residency://authority/us";
constexpr char kCnAuthority[] = "residency://authority/cn";

RequestMetadata Meta(Justification::Reason reason) {
  static int counter = 0;
  RequestMetadata m;
  m.set_request_id(absl::StrCat("req-", ++counter));
  m.mutable_justification()->set_reason(reason);
  return m;
}

RequestMetadata LegalMeta(absl::string_view jurisdiction,
                          absl::string_view target_owner) {
  RequestMetadata m = Meta(Justification::THIRD_PARTY_DATA_REQUEST);
  auto* lp = m.mutable_justification()->mutable_legal_process();
  lp->set_issuing_authority(absl::StrCat(jurisdiction, " court"));
  lp->set_jurisdiction(std::string(jurisdiction));
  lp->set_legal_basis("test order");
  lp->set_target_owner(std::string(target_owner));
  lp->set_scope("all data");
  lp->set_reference_id("order-1");
  return m;
}

ObjectRef Object(absl::string_view owner, absl::string_view id,
                 uint64_t version = 1) {
  ObjectRef o;
  o.set_owner(std::string(owner));
  o.set_object_id(std::string(id));
  o.set_version(version);
  return o;
}

// One actor's connection: its own certificate, its own channel.
class Client {
 public:
  Client(std::shared_ptr<grpc::Channel> channel)
      : stub_(KeyService::NewStub(std::move(channel))) {}

  template <typename Request, typename Response>
  absl::Status Call(grpc::Status (KeyService::Stub::*method)(
                        grpc::ClientContext*, const Request&, Response*),
                    const Request& request, Response* response) {
    grpc::ClientContext context;
    context.set_deadline(std::chrono::system_clock::now() +
                         std::chrono::seconds(20));
    return rpc::FromGrpcStatus(
        (stub_.get()->*method)(&context, request, response));
  }

  absl::StatusOr<KeyInfo> CreateKey(absl::string_view key_id,
                                    absl::string_view owner,
                                    RequestMetadata meta) {
    v1::CreateKeyRequest request;
    *request.mutable_metadata() = std::move(meta);
    request.set_key_id(std::string(key_id));
    request.set_owner(std::string(owner));
    v1::CreateKeyResponse response;
    absl::Status s = Call(&KeyService::Stub::CreateKey, request, &response);
    if (!s.ok()) return s;
    return response.key();
  }

  absl::StatusOr<v1::GenerateDataKeyResponse> GenerateDataKey(
      absl::string_view key_id, const ObjectRef& context,
      RequestMetadata meta) {
    v1::GenerateDataKeyRequest request;
    *request.mutable_metadata() = std::move(meta);
    request.set_key_id(std::string(key_id));
    *request.mutable_context() = context;
    v1::GenerateDataKeyResponse response;
    absl::Status s =
        Call(&KeyService::Stub::GenerateDataKey, request, &response);
    if (!s.ok()) return s;
    return response;
  }

  absl::StatusOr<std::string> Unwrap(const WrappedKey& wrapped,
                                     const ObjectRef& context,
                                     RequestMetadata meta) {
    v1::UnwrapRequest request;
    *request.mutable_metadata() = std::move(meta);
    *request.mutable_wrapped_key() = wrapped;
    *request.mutable_context() = context;
    v1::UnwrapResponse response;
    absl::Status s = Call(&KeyService::Stub::Unwrap, request, &response);
    if (!s.ok()) return s;
    return response.plaintext_key();
  }

  absl::StatusOr<WrappedKey> Rewrap(const WrappedKey& wrapped,
                                    const ObjectRef& context,
                                    RequestMetadata meta) {
    v1::RewrapRequest request;
    *request.mutable_metadata() = std::move(meta);
    *request.mutable_wrapped_key() = wrapped;
    *request.mutable_context() = context;
    v1::RewrapResponse response;
    absl::Status s = Call(&KeyService::Stub::Rewrap, request, &response);
    if (!s.ok()) return s;
    return response.wrapped_key();
  }

  // The lifecycle RPCs share a shape: metadata and key id in, KeyInfo out.
  template <typename Request, typename Response>
  absl::StatusOr<KeyInfo> Lifecycle(
      grpc::Status (KeyService::Stub::*method)(grpc::ClientContext*,
                                               const Request&, Response*),
      absl::string_view key_id, RequestMetadata meta) {
    Request request;
    *request.mutable_metadata() = std::move(meta);
    request.set_key_id(std::string(key_id));
    Response response;
    absl::Status s = Call(method, request, &response);
    if (!s.ok()) return s;
    return response.key();
  }

#define RESIDENCY_LIFECYCLE_RPC(Name)                        \
  absl::StatusOr<KeyInfo> Name(absl::string_view key_id,     \
                               RequestMetadata meta) {       \
    return Lifecycle<v1::Name##Request, v1::Name##Response>( \
        &KeyService::Stub::Name, key_id, std::move(meta));   \
  }
  RESIDENCY_LIFECYCLE_RPC(RotateKey)
  RESIDENCY_LIFECYCLE_RPC(DisableKey)
  RESIDENCY_LIFECYCLE_RPC(EnableKey)
  RESIDENCY_LIFECYCLE_RPC(DestroyKey)
  RESIDENCY_LIFECYCLE_RPC(GetKeyInfo)
#undef RESIDENCY_LIFECYCLE_RPC

  absl::StatusOr<KeyInfo> SetMinDecryptionVersion(absl::string_view key_id,
                                                  uint32_t version,
                                                  RequestMetadata meta) {
    v1::SetMinDecryptionVersionRequest request;
    *request.mutable_metadata() = std::move(meta);
    request.set_key_id(std::string(key_id));
    request.set_min_decryption_version(version);
    v1::SetMinDecryptionVersionResponse response;
    absl::Status s =
        Call(&KeyService::Stub::SetMinDecryptionVersion, request, &response);
    if (!s.ok()) return s;
    return response.key();
  }

  absl::StatusOr<v1::ExportKeyResponse> ExportKey(absl::string_view key_id,
                                                  RequestMetadata meta) {
    v1::ExportKeyRequest request;
    *request.mutable_metadata() = std::move(meta);
    request.set_key_id(std::string(key_id));
    v1::ExportKeyResponse response;
    absl::Status s = Call(&KeyService::Stub::ExportKey, request, &response);
    if (!s.ok()) return s;
    return response;
  }

  absl::Status ReadAuditLog(RequestMetadata meta,
                            std::vector<v1::ReadAuditLogResponse>* items,
                            uint64_t start = 0, uint64_t max = 0) {
    v1::ReadAuditLogRequest request;
    *request.mutable_metadata() = std::move(meta);
    request.set_start_sequence(start);
    request.set_max_entries(max);
    grpc::ClientContext context;
    context.set_deadline(std::chrono::system_clock::now() +
                         std::chrono::seconds(20));
    auto reader = stub_->ReadAuditLog(&context, request);
    v1::ReadAuditLogResponse item;
    while (reader->Read(&item)) items->push_back(item);
    return rpc::FromGrpcStatus(reader->Finish());
  }

 private:
  std::unique_ptr<KeyService::Stub> stub_;
};

class KeyServiceTest : public ::testing::Test {
 protected:
  void SetUp() override {
    ASSERT_OK_AND_ASSIGN(dir_, temp_.Make("key_service_test"));
    ASSERT_OK_AND_ASSIGN(tls::CertificateAuthority ca,
                         tls::CertificateAuthority::Create("test-ca"));
    ca_.emplace(std::move(ca));
    ASSERT_OK_AND_ASSIGN(server_identity_,
                         ca_->Issue("residency://service/us-custodian"));
    StartServer();
  }

  void TearDown() override { server_.reset(); }

  KeyServiceServerOptions Options() const {
    KeyServiceServerOptions options;
    options.tls = server_identity_.Material();
    options.jurisdiction = "US";
    options.data_dir = dir_ + "/ks";
    options.audit.checkpoint_every = 8;
    return options;
  }

  void StartServer() { StartServer(Options()); }
  void StartServer(KeyServiceServerOptions options) {
    ASSERT_OK_AND_ASSIGN(PolicyEngine policy,
                         PolicyEngine::Parse(kPolicy, "test policy"));
    ASSERT_OK_AND_ASSIGN(server_, KeyServiceServer::Start(std::move(options),
                                                          std::move(policy)));
  }

  // Whether the server's health service reports SERVING.
  absl::StatusOr<bool> Serving() {
    absl::StatusOr<tls::Identity> identity = ca_->Issue(kAlice);
    if (!identity.ok()) return identity.status();
    absl::StatusOr<std::shared_ptr<grpc::Channel>> channel =
        tls::MakeChannel(server_->address(), identity->Material());
    if (!channel.ok()) return channel.status();
    return rpc::IsServing(*channel, "residency.v1.KeyService");
  }

  void RestartServer() {
    server_.reset();
    StartServer();
  }

  Client& As(const std::string& principal) {
    auto it = clients_.find(principal);
    if (it != clients_.end() && it->second.first == server_->port()) {
      return *it->second.second;
    }
    absl::StatusOr<tls::Identity> identity = ca_->Issue(principal);
    EXPECT_OK(identity.status());
    absl::StatusOr<std::shared_ptr<grpc::Channel>> channel =
        tls::MakeChannel(server_->address(), identity->Material());
    EXPECT_OK(channel.status());
    auto client = std::make_unique<Client>(*channel);
    Client& ref = *client;
    clients_[principal] = {server_->port(), std::move(client)};
    return ref;
  }

  // Alice's key and one data key wrapped under it.
  struct AliceData {
    std::string dek;
    WrappedKey wrapped;
    ObjectRef object;
  };
  AliceData MakeAliceData() {
    AliceData data;
    EXPECT_OK(As(kAlice)
                  .CreateKey("alice-key", "alice",
                             Meta(Justification::CUSTOMER_INITIATED_ACCESS))
                  .status());
    data.object = Object("alice", "photos/2014.jpg");
    absl::StatusOr<v1::GenerateDataKeyResponse> generated =
        As(kAlice).GenerateDataKey(
            "alice-key", data.object,
            Meta(Justification::CUSTOMER_INITIATED_ACCESS));
    EXPECT_OK(generated.status());
    if (generated.ok()) {
      data.dek = generated->plaintext_key();
      data.wrapped = generated->wrapped_key();
    }
    return data;
  }

  std::vector<AuditEntry> AuditEntries() {
    std::vector<v1::ReadAuditLogResponse> items;
    EXPECT_OK(
        As(kAuditor).ReadAuditLog(Meta(Justification::SECURITY_AUDIT), &items));
    std::vector<AuditEntry> entries;
    for (const auto& item : items) {
      if (item.has_entry()) entries.push_back(item.entry());
    }
    return entries;
  }

  TempDir temp_;
  std::string dir_;
  std::optional<tls::CertificateAuthority> ca_;
  tls::Identity server_identity_;
  std::unique_ptr<KeyServiceServer> server_;
  std::map<std::string, std::pair<int, std::unique_ptr<Client>>> clients_;
};

// ------------------------------------------------------------ success paths

TEST_F(KeyServiceTest, OwnerCreatesKeyAndReadsItsInfo) {
  ASSERT_OK_AND_ASSIGN(
      KeyInfo created,
      As(kAlice).CreateKey("alice-key", "alice",
                           Meta(Justification::CUSTOMER_INITIATED_ACCESS)));
  EXPECT_EQ(created.key_id(), "alice-key");
  EXPECT_EQ(created.owner(), "alice");
  EXPECT_EQ(created.state(), KeyInfo::ENABLED);
  EXPECT_EQ(created.current_version(), 1u);
  EXPECT_EQ(created.min_decryption_version(), 1u);
  ASSERT_OK_AND_ASSIGN(
      KeyInfo info,
      As(kAlice).GetKeyInfo("alice-key",
                            Meta(Justification::CUSTOMER_INITIATED_ACCESS)));
  EXPECT_EQ(info.SerializeAsString(), created.SerializeAsString());
}

TEST_F(KeyServiceTest, CreatingAnExistingKeyIsAlreadyExists) {
  MakeAliceData();
  EXPECT_THAT(As(kAlice)
                  .CreateKey("alice-key", "alice",
                             Meta(Justification::CUSTOMER_INITIATED_ACCESS))
                  .status(),
              StatusIs(absl::StatusCode::kAlreadyExists));
}

TEST_F(KeyServiceTest, UserCannotCreateAKeyForAnotherOwner) {
  EXPECT_THAT(
      As(kBob)
          .CreateKey("alice-key", "alice",
                     Meta(Justification::CUSTOMER_INITIATED_ACCESS))
          .status(),
      StatusIs(absl::StatusCode::kPermissionDenied, HasSubstr("default-deny")));
}

TEST_F(KeyServiceTest, GeneratedDataKeyUnwrapsToTheSameBytes) {
  AliceData data = MakeAliceData();
  EXPECT_EQ(data.dek.size(), 32u);
  EXPECT_EQ(data.wrapped.wrapper(), WrappedKey::KEY_SERVICE);
  EXPECT_EQ(data.wrapped.key_id(), "alice-key");
  EXPECT_EQ(data.wrapped.key_version(), 1u);
  EXPECT_EQ(data.wrapped.key_service(), "residency://service/us-custodian");
  EXPECT_EQ(data.wrapped.jurisdiction(), "US");
  EXPECT_EQ(data.wrapped.wrapped().size(), 60u);
  ASSERT_OK_AND_ASSIGN(
      std::string dek,
      As(kAlice).Unwrap(data.wrapped, data.object,
                        Meta(Justification::CUSTOMER_INITIATED_ACCESS)));
  EXPECT_EQ(dek, data.dek);
}

TEST_F(KeyServiceTest, EachGenerateDataKeyDrawsAFreshKey) {
  AliceData data = MakeAliceData();
  ASSERT_OK_AND_ASSIGN(v1::GenerateDataKeyResponse second,
                       As(kAlice).GenerateDataKey(
                           "alice-key", data.object,
                           Meta(Justification::CUSTOMER_INITIATED_ACCESS)));
  EXPECT_NE(second.plaintext_key(), data.dek);
  EXPECT_NE(second.wrapped_key().wrapped(), data.wrapped.wrapped());
}

TEST_F(KeyServiceTest, RotationKeepsOlderWrapsUsableUntilMinimumIsRaised) {
  AliceData data = MakeAliceData();
  ASSERT_OK_AND_ASSIGN(
      KeyInfo rotated,
      As(kOps).RotateKey("alice-key",
                         Meta(Justification::CUSTODIAN_INITIATED_SERVICE)));
  EXPECT_EQ(rotated.current_version(), 2u);
  ASSERT_EQ(rotated.versions_size(), 2);

  ASSERT_OK_AND_ASSIGN(v1::GenerateDataKeyResponse fresh,
                       As(kAlice).GenerateDataKey(
                           "alice-key", Object("alice", "new"),
                           Meta(Justification::CUSTOMER_INITIATED_ACCESS)));
  EXPECT_EQ(fresh.wrapped_key().key_version(), 2u);

  // Version 1 still unwraps.
  EXPECT_THAT(As(kAlice).Unwrap(data.wrapped, data.object,
                                Meta(Justification::CUSTOMER_INITIATED_ACCESS)),
              IsOkAndHolds(data.dek));

  // Rewrap moves the DEK to version 2 without changing it.
  ASSERT_OK_AND_ASSIGN(
      WrappedKey rewrapped,
      As(kOps).Rewrap(data.wrapped, data.object,
                      Meta(Justification::CUSTODIAN_INITIATED_SERVICE)));
  EXPECT_EQ(rewrapped.key_version(), 2u);

  ASSERT_OK(
      As(kOps)
          .SetMinDecryptionVersion(
              "alice-key", 2, Meta(Justification::CUSTODIAN_INITIATED_SERVICE))
          .status());
  EXPECT_THAT(As(kAlice)
                  .Unwrap(data.wrapped, data.object,
                          Meta(Justification::CUSTOMER_INITIATED_ACCESS))
                  .status(),
              StatusIs(absl::StatusCode::kFailedPrecondition,
                       HasSubstr("below the minimum decryption version 2")));
  EXPECT_THAT(As(kAlice).Unwrap(rewrapped, data.object,
                                Meta(Justification::CUSTOMER_INITIATED_ACCESS)),
              IsOkAndHolds(data.dek));

  // Lowering the minimum again restores version 1.
  ASSERT_OK(
      As(kOps)
          .SetMinDecryptionVersion(
              "alice-key", 1, Meta(Justification::CUSTODIAN_INITIATED_SERVICE))
          .status());
  EXPECT_THAT(As(kAlice).Unwrap(data.wrapped, data.object,
                                Meta(Justification::CUSTOMER_INITIATED_ACCESS)),
              IsOkAndHolds(data.dek));
}

TEST_F(KeyServiceTest, MinimumDecryptionVersionOutsideTheVersionsIsInvalid) {
  MakeAliceData();
  for (uint32_t version : {0u, 2u}) {
    EXPECT_THAT(As(kOps)
                    .SetMinDecryptionVersion(
                        "alice-key", version,
                        Meta(Justification::CUSTODIAN_INITIATED_SERVICE))
                    .status(),
                StatusIs(absl::StatusCode::kInvalidArgument,
                         HasSubstr("between 1 and the current version 1")))
        << version;
  }
}

TEST_F(KeyServiceTest, DisabledKeyRefusesEveryUseUntilEnabled) {
  AliceData data = MakeAliceData();
  ASSERT_OK_AND_ASSIGN(
      KeyInfo disabled,
      As(kOps).DisableKey("alice-key",
                          Meta(Justification::CUSTODIAN_INITIATED_SERVICE)));
  EXPECT_EQ(disabled.state(), KeyInfo::DISABLED);
  EXPECT_THAT(
      As(kAlice)
          .Unwrap(data.wrapped, data.object,
                  Meta(Justification::CUSTOMER_INITIATED_ACCESS))
          .status(),
      StatusIs(absl::StatusCode::kFailedPrecondition, HasSubstr("disabled")));
  EXPECT_THAT(
      As(kAlice)
          .GenerateDataKey("alice-key", data.object,
                           Meta(Justification::CUSTOMER_INITIATED_ACCESS))
          .status(),
      StatusIs(absl::StatusCode::kFailedPrecondition, HasSubstr("disabled")));
  EXPECT_THAT(As(kOps)
                  .Rewrap(data.wrapped, data.object,
                          Meta(Justification::CUSTODIAN_INITIATED_SERVICE))
                  .status(),
              StatusIs(absl::StatusCode::kFailedPrecondition));
  ASSERT_OK(As(kOps)
                .EnableKey("alice-key",
                           Meta(Justification::CUSTODIAN_INITIATED_SERVICE))
                .status());
  EXPECT_THAT(As(kAlice).Unwrap(data.wrapped, data.object,
                                Meta(Justification::CUSTOMER_INITIATED_ACCESS)),
              IsOkAndHolds(data.dek));
}

TEST_F(KeyServiceTest, DestroyedKeyIsGoneForEveryoneAndCannotComeBack) {
  AliceData data = MakeAliceData();
  ASSERT_OK_AND_ASSIGN(
      KeyInfo destroyed,
      As(kOps).DestroyKey("alice-key",
                          Meta(Justification::CUSTODIAN_INITIATED_SERVICE)));
  EXPECT_EQ(destroyed.state(), KeyInfo::DESTROYED);
  EXPECT_EQ(destroyed.versions_size(), 0);
  EXPECT_THAT(
      As(kAlice)
          .Unwrap(data.wrapped, data.object,
                  Meta(Justification::CUSTOMER_INITIATED_ACCESS))
          .status(),
      StatusIs(absl::StatusCode::kFailedPrecondition, HasSubstr("destroyed")));
  EXPECT_THAT(
      As(kUsAuthority)
          .ExportKey("alice-key", LegalMeta("US", "alice"))
          .status(),
      StatusIs(absl::StatusCode::kFailedPrecondition, HasSubstr("destroyed")));
  EXPECT_THAT(As(kOps)
                  .EnableKey("alice-key",
                             Meta(Justification::CUSTODIAN_INITIATED_SERVICE))
                  .status(),
              StatusIs(absl::StatusCode::kFailedPrecondition));
  EXPECT_THAT(As(kOps)
                  .RotateKey("alice-key",
                             Meta(Justification::CUSTODIAN_INITIATED_SERVICE))
                  .status(),
              StatusIs(absl::StatusCode::kFailedPrecondition));
  // The id stays taken.
  EXPECT_THAT(As(kAlice)
                  .CreateKey("alice-key", "alice",
                             Meta(Justification::CUSTOMER_INITIATED_ACCESS))
                  .status(),
              StatusIs(absl::StatusCode::kAlreadyExists));
}

TEST_F(KeyServiceTest, DestroyedMaterialIsGoneAfterRestart) {
  AliceData data = MakeAliceData();
  ASSERT_OK(As(kOps)
                .DestroyKey("alice-key",
                            Meta(Justification::CUSTODIAN_INITIATED_SERVICE))
                .status());
  RestartServer();
  EXPECT_THAT(
      As(kAlice)
          .Unwrap(data.wrapped, data.object,
                  Meta(Justification::CUSTOMER_INITIATED_ACCESS))
          .status(),
      StatusIs(absl::StatusCode::kFailedPrecondition, HasSubstr("destroyed")));
}

// ------------------------------------------------------------- refusals

TEST_F(KeyServiceTest, UnwrapByAnotherUserIsDeniedNamingTheRule) {
  AliceData data = MakeAliceData();
  EXPECT_THAT(As(kBob)
                  .Unwrap(data.wrapped, data.object,
                          Meta(Justification::CUSTOMER_INITIATED_ACCESS))
                  .status(),
              StatusIs(absl::StatusCode::kPermissionDenied,
                       HasSubstr("denied by policy rule 'default-deny'")));
}

TEST_F(KeyServiceTest, OwnerWithUnhonouredJustificationIsDenied) {
  AliceData data = MakeAliceData();
  EXPECT_THAT(
      As(kAlice)
          .Unwrap(data.wrapped, data.object,
                  Meta(Justification::REASON_UNSPECIFIED))
          .status(),
      StatusIs(absl::StatusCode::kPermissionDenied, HasSubstr("default-deny")));
}

TEST_F(KeyServiceTest, UnwrapWithForeignLegalProcessIsDenied) {
  AliceData data = MakeAliceData();
  EXPECT_THAT(As(kCnAuthority)
                  .Unwrap(data.wrapped, data.object, LegalMeta("CN", "alice"))
                  .status(),
              StatusIs(absl::StatusCode::kPermissionDenied,
                       HasSubstr("legal process of jurisdiction 'CN'")));
}

TEST_F(KeyServiceTest, UnwrapWithHonouredLegalProcessSucceeds) {
  AliceData data = MakeAliceData();
  EXPECT_THAT(As(kUsAuthority)
                  .Unwrap(data.wrapped, data.object, LegalMeta("US", "alice")),
              IsOkAndHolds(data.dek));
}

TEST_F(KeyServiceTest, LegalProcessAgainstAnotherOwnerIsDenied) {
  AliceData data = MakeAliceData();
  EXPECT_THAT(As(kUsAuthority)
                  .Unwrap(data.wrapped, data.object, LegalMeta("US", "bob"))
                  .status(),
              StatusIs(absl::StatusCode::kPermissionDenied,
                       HasSubstr("legal-process-target")));
}

TEST_F(KeyServiceTest, AuthorityPresentingAnotherJurisdictionsProcessIsDenied) {
  AliceData data = MakeAliceData();
  // The CN authority's certificate cannot carry US legal process, even
  // though the policy obeys US process from residency://authority/*.
  EXPECT_THAT(As(kCnAuthority)
                  .Unwrap(data.wrapped, data.object, LegalMeta("US", "alice"))
                  .status(),
              StatusIs(absl::StatusCode::kPermissionDenied,
                       HasSubstr("legal-process-issuer")));
  EXPECT_THAT(As(kCnAuthority)
                  .ExportKey("alice-key", LegalMeta("US", "alice"))
                  .status(),
              StatusIs(absl::StatusCode::kPermissionDenied,
                       HasSubstr("legal-process-issuer")));
  // Case does not matter: authority/us may present "us" process.
  EXPECT_THAT(
      As(kUsAuthority)
          .Unwrap(data.wrapped, data.object, LegalMeta("us", "alice"))
          .status(),
      StatusIs(absl::StatusCode::kPermissionDenied, HasSubstr("default-deny")));
}

TEST_F(KeyServiceTest, OnlyAuthoritiesMayPresentLegalProcess) {
  AliceData data = MakeAliceData();
  EXPECT_THAT(As(kOps)
                  .Unwrap(data.wrapped, data.object, LegalMeta("US", "alice"))
                  .status(),
              StatusIs(absl::StatusCode::kPermissionDenied,
                       HasSubstr("only an authority")));
}

TEST_F(KeyServiceTest, LegalProcessCannotTellUnknownKeysFromOthersKeys) {
  AliceData data = MakeAliceData();
  WrappedKey unknown = data.wrapped;
  unknown.set_key_id("no-such-key");
  absl::Status for_unknown =
      As(kUsAuthority)
          .Unwrap(unknown, data.object, LegalMeta("US", "bob"))
          .status();
  absl::Status for_existing =
      As(kUsAuthority)
          .Unwrap(data.wrapped, data.object, LegalMeta("US", "bob"))
          .status();
  EXPECT_THAT(for_unknown, StatusIs(absl::StatusCode::kPermissionDenied,
                                    HasSubstr("legal-process-target")));
  EXPECT_EQ(for_existing.code(), for_unknown.code());
  EXPECT_EQ(
      absl::StrReplaceAll(for_existing.message(), {{"alice-key", "KEY"}}),
      absl::StrReplaceAll(for_unknown.message(), {{"no-such-key", "KEY"}}));
}

TEST_F(KeyServiceTest, UnknownKeyInAWrappedKeyIsDeniedToUsersAndNotFoundToOps) {
  AliceData data = MakeAliceData();
  WrappedKey unknown = data.wrapped;
  unknown.set_key_id("no-such-key");
  EXPECT_THAT(As(kAlice)
                  .Unwrap(unknown, data.object,
                          Meta(Justification::CUSTOMER_INITIATED_ACCESS))
                  .status(),
              StatusIs(absl::StatusCode::kPermissionDenied));
  EXPECT_THAT(
      As(kAlice)
          .GenerateDataKey("no-such-key", data.object,
                           Meta(Justification::CUSTOMER_INITIATED_ACCESS))
          .status(),
      StatusIs(absl::StatusCode::kPermissionDenied));
  EXPECT_THAT(As(kOps)
                  .Rewrap(unknown, data.object,
                          Meta(Justification::CUSTODIAN_INITIATED_SERVICE))
                  .status(),
              StatusIs(absl::StatusCode::kNotFound, HasSubstr("no-such-key")));
}

TEST_F(KeyServiceTest, OversizedFieldsAreRefusedRecordedAndChangeNothing) {
  MakeAliceData();
  RequestMetadata meta = Meta(Justification::CUSTODIAN_INITIATED_SERVICE);
  meta.mutable_justification()->set_detail(std::string(2000, 'd'));
  EXPECT_THAT(As(kOps).RotateKey("alice-key", meta).status(),
              StatusIs(absl::StatusCode::kInvalidArgument,
                       HasSubstr("detail is 2000 bytes")));
  RequestMetadata legal = LegalMeta("US", "alice");
  legal.mutable_justification()->mutable_legal_process()->set_scope(
      std::string(600, 's'));
  EXPECT_THAT(As(kUsAuthority).ExportKey("alice-key", legal).status(),
              StatusIs(absl::StatusCode::kInvalidArgument,
                       HasSubstr("legal_process.scope")));
  ASSERT_OK_AND_ASSIGN(
      KeyInfo info,
      As(kOps).GetKeyInfo("alice-key",
                          Meta(Justification::CUSTODIAN_INITIATED_SERVICE)));
  EXPECT_EQ(info.current_version(), 1u);
  // Both refusals are in the log, cut to size.
  std::vector<AuditEntry> entries = AuditEntries();
  int refused = 0;
  for (const AuditEntry& e : entries) {
    if (e.rule() == "invalid-request") {
      ++refused;
      EXPECT_LE(e.justification().detail().size(), 1024u);
      EXPECT_LE(e.justification().legal_process().scope().size(), 512u);
    }
  }
  EXPECT_EQ(refused, 2);
}

TEST_F(KeyServiceTest, ExportOfADisabledKeyIsRefused) {
  MakeAliceData();
  ASSERT_OK(As(kOps)
                .DisableKey("alice-key",
                            Meta(Justification::CUSTODIAN_INITIATED_SERVICE))
                .status());
  EXPECT_THAT(
      As(kUsAuthority)
          .ExportKey("alice-key", LegalMeta("US", "alice"))
          .status(),
      StatusIs(absl::StatusCode::kFailedPrecondition, HasSubstr("disabled")));
}

TEST_F(KeyServiceTest, KeyChangesAreAuditedBeforeTheyAnswer) {
  MakeAliceData();
  ASSERT_OK(As(kOps)
                .RotateKey("alice-key",
                           Meta(Justification::CUSTODIAN_INITIATED_SERVICE))
                .status());
  const uint64_t durable = server_->custodian().audit().durable_sequence();
  // create, generate, rotate: all durable by the time the rotation answered.
  EXPECT_EQ(durable, 3u);
  std::vector<AuditEntry> entries = AuditEntries();
  ASSERT_GE(entries.size(), 3u);
  EXPECT_EQ(entries[2].operation(), v1::OPERATION_ROTATE_KEY);
  EXPECT_EQ(entries[2].key_version(), 2u);
  EXPECT_EQ(entries[2].status_code(), 0);
}

// Reads the sealed material of a key straight from the stopped service's
// store.
std::vector<std::string> SealedCopies(const std::string& keys_dir,
                                      const std::string& key_id) {
  std::vector<std::string> sealed;
  rocksdb::DB* raw = nullptr;
  rocksdb::Status s =
      rocksdb::DB::OpenForReadOnly(rocksdb::Options(), keys_dir, &raw);
  EXPECT_TRUE(s.ok()) << s.ToString();
  if (!s.ok()) return sealed;
  std::unique_ptr<rocksdb::DB> db(raw);
  std::string value;
  EXPECT_TRUE(db->Get(rocksdb::ReadOptions(), "k/" + key_id, &value).ok());
  v1::StoredKey stored;
  EXPECT_TRUE(stored.ParseFromString(value));
  for (const auto& v : stored.sealed_versions()) {
    sealed.push_back(v.sealed_material());
  }
  return sealed;
}

std::vector<std::string> FilesContaining(
    const std::string& dir, const std::vector<std::string>& needles) {
  std::vector<std::string> found;
  for (const auto& entry : std::filesystem::recursive_directory_iterator(dir)) {
    if (!entry.is_regular_file()) continue;
    std::ifstream in(entry.path(), std::ios::binary);
    std::string bytes((std::istreambuf_iterator<char>(in)),
                      std::istreambuf_iterator<char>());
    for (const std::string& needle : needles) {
      if (absl::StrContains(bytes, needle)) {
        found.push_back(entry.path().string());
      }
    }
  }
  return found;
}

TEST_F(KeyServiceTest, DestroyLeavesNoSealedCopyInTheStore) {
  MakeAliceData();
  ASSERT_OK(As(kOps)
                .RotateKey("alice-key",
                           Meta(Justification::CUSTODIAN_INITIATED_SERVICE))
                .status());
  server_.reset();
  const std::string keys_dir = dir_ + "/ks/keys";
  std::vector<std::string> sealed = SealedCopies(keys_dir, "alice-key");
  ASSERT_EQ(sealed.size(), 2u);
  // Control: the sealed bytes are findable in the files before destruction.
  EXPECT_FALSE(FilesContaining(keys_dir, sealed).empty());
  StartServer();
  ASSERT_OK(As(kOps)
                .DestroyKey("alice-key",
                            Meta(Justification::CUSTODIAN_INITIATED_SERVICE))
                .status());
  EXPECT_THAT(FilesContaining(keys_dir, sealed), ::testing::IsEmpty());
  server_.reset();
  EXPECT_THAT(FilesContaining(keys_dir, sealed), ::testing::IsEmpty());
}

TEST_F(KeyServiceTest, KeyMetadataEditedOnDiskIsRefused) {
  MakeAliceData();
  ASSERT_OK(As(kOps)
                .DisableKey("alice-key",
                            Meta(Justification::CUSTODIAN_INITIATED_SERVICE))
                .status());
  server_.reset();
  {
    // Someone with write access to the store flips the kill switch back.
    rocksdb::DB* raw = nullptr;
    ASSERT_TRUE(
        rocksdb::DB::Open(rocksdb::Options(), dir_ + "/ks/keys", &raw).ok());
    std::unique_ptr<rocksdb::DB> db(raw);
    std::string value;
    ASSERT_TRUE(db->Get(rocksdb::ReadOptions(), "k/alice-key", &value).ok());
    v1::StoredKey stored;
    ASSERT_TRUE(stored.ParseFromString(value));
    KeyInfo info;
    ASSERT_TRUE(info.ParseFromString(stored.info()));
    ASSERT_EQ(info.state(), KeyInfo::DISABLED);
    info.set_state(KeyInfo::ENABLED);
    stored.set_info(info.SerializeAsString());
    ASSERT_TRUE(db->Put(rocksdb::WriteOptions(), "k/alice-key",
                        stored.SerializeAsString())
                    .ok());
  }
  ASSERT_OK_AND_ASSIGN(PolicyEngine policy,
                       PolicyEngine::Parse(kPolicy, "test policy"));
  EXPECT_THAT(
      KeyServiceServer::Start(Options(), std::move(policy)).status(),
      StatusIs(absl::StatusCode::kDataLoss, HasSubstr("record was modified")));
}

TEST_F(KeyServiceTest, PolicyOfAnotherJurisdictionStopsStartup) {
  server_.reset();
  KeyServiceServerOptions options = Options();
  options.jurisdiction = "CN";
  ASSERT_OK_AND_ASSIGN(PolicyEngine policy,
                       PolicyEngine::Parse(kPolicy, "test policy"));
  EXPECT_THAT(
      KeyServiceServer::Start(std::move(options), std::move(policy)).status(),
      StatusIs(absl::StatusCode::kInvalidArgument,
               HasSubstr("jurisdiction 'US'")));
}

TEST_F(KeyServiceTest, MissingRootKeyForAnExistingStoreStopsStartup) {
  MakeAliceData();
  server_.reset();
  ASSERT_EQ(::unlink((dir_ + "/ks/root.key").c_str()), 0);
  ASSERT_OK_AND_ASSIGN(PolicyEngine policy,
                       PolicyEngine::Parse(kPolicy, "test policy"));
  EXPECT_THAT(KeyServiceServer::Start(Options(), std::move(policy)).status(),
              StatusIs(absl::StatusCode::kFailedPrecondition,
                       HasSubstr("restore that file")));
  // And no new root key was made in its place.
  EXPECT_FALSE(std::filesystem::exists(dir_ + "/ks/root.key"));
}

TEST_F(KeyServiceTest, ExportKeyIsDeniedUnlessPolicyAllows) {
  MakeAliceData();
  EXPECT_THAT(As(kAlice)
                  .ExportKey("alice-key",
                             Meta(Justification::CUSTOMER_INITIATED_ACCESS))
                  .status(),
              StatusIs(absl::StatusCode::kPermissionDenied));
  EXPECT_THAT(As(kCnAuthority)
                  .ExportKey("alice-key", LegalMeta("CN", "alice"))
                  .status(),
              StatusIs(absl::StatusCode::kPermissionDenied));
  ASSERT_OK_AND_ASSIGN(
      v1::ExportKeyResponse exported,
      As(kUsAuthority).ExportKey("alice-key", LegalMeta("US", "alice")));
  ASSERT_EQ(exported.versions_size(), 1);
  EXPECT_EQ(exported.versions(0).version(), 1u);
  EXPECT_EQ(exported.versions(0).material().size(), 32u);
  EXPECT_EQ(exported.key().key_id(), "alice-key");
}

TEST_F(KeyServiceTest, MissingJustificationIsInvalid) {
  AliceData data = MakeAliceData();
  RequestMetadata meta;
  meta.set_request_id("no-justification");
  EXPECT_THAT(As(kAlice).Unwrap(data.wrapped, data.object, meta).status(),
              StatusIs(absl::StatusCode::kInvalidArgument,
                       HasSubstr("justification is missing")));
}

TEST_F(KeyServiceTest, MissingMetadataOrRequestIdIsInvalid) {
  AliceData data = MakeAliceData();
  EXPECT_THAT(
      As(kAlice).Unwrap(data.wrapped, data.object, RequestMetadata()).status(),
      StatusIs(absl::StatusCode::kInvalidArgument));
  v1::UnwrapRequest request;
  *request.mutable_wrapped_key() = data.wrapped;
  *request.mutable_context() = data.object;
  v1::UnwrapResponse response;
  EXPECT_THAT(
      As(kAlice).Call(&KeyService::Stub::Unwrap, request, &response),
      StatusIs(absl::StatusCode::kInvalidArgument, HasSubstr("no metadata")));
  RequestMetadata no_id = Meta(Justification::CUSTOMER_INITIATED_ACCESS);
  no_id.clear_request_id();
  EXPECT_THAT(As(kAlice).Unwrap(data.wrapped, data.object, no_id).status(),
              StatusIs(absl::StatusCode::kInvalidArgument,
                       HasSubstr("request_id is empty")));
}

TEST_F(KeyServiceTest, ThirdPartyRequestWithoutLegalProcessIsInvalid) {
  AliceData data = MakeAliceData();
  EXPECT_THAT(As(kUsAuthority)
                  .Unwrap(data.wrapped, data.object,
                          Meta(Justification::THIRD_PARTY_DATA_REQUEST))
                  .status(),
              StatusIs(absl::StatusCode::kInvalidArgument,
                       HasSubstr("needs a legal_process")));
}

TEST_F(KeyServiceTest, UnknownKeyIsNotFoundForOperatorAndDeniedForUsers) {
  EXPECT_THAT(As(kOps)
                  .GetKeyInfo("no-such-key",
                              Meta(Justification::CUSTODIAN_INITIATED_SERVICE))
                  .status(),
              StatusIs(absl::StatusCode::kNotFound, HasSubstr("no-such-key")));
  // A user cannot tell an unknown key from someone else's.
  EXPECT_THAT(As(kAlice)
                  .GetKeyInfo("no-such-key",
                              Meta(Justification::CUSTOMER_INITIATED_ACCESS))
                  .status(),
              StatusIs(absl::StatusCode::kPermissionDenied));
}

TEST_F(KeyServiceTest, TamperedWrappedKeyIsInvalid) {
  AliceData data = MakeAliceData();
  for (size_t at : {0u, 20u, 59u}) {
    WrappedKey tampered = data.wrapped;
    (*tampered.mutable_wrapped())[at] ^= 0x01;
    EXPECT_THAT(As(kAlice)
                    .Unwrap(tampered, data.object,
                            Meta(Justification::CUSTOMER_INITIATED_ACCESS))
                    .status(),
                StatusIs(absl::StatusCode::kInvalidArgument,
                         HasSubstr("does not authenticate")))
        << "byte " << at;
  }
}

TEST_F(KeyServiceTest, MalformedWrappedKeyIsInvalid) {
  AliceData data = MakeAliceData();
  WrappedKey truncated = data.wrapped;
  truncated.mutable_wrapped()->resize(59);
  EXPECT_THAT(As(kAlice)
                  .Unwrap(truncated, data.object,
                          Meta(Justification::CUSTOMER_INITIATED_ACCESS))
                  .status(),
              StatusIs(absl::StatusCode::kInvalidArgument, HasSubstr("59")));
  WrappedKey device = data.wrapped;
  device.set_wrapper(WrappedKey::DEVICE);
  EXPECT_THAT(
      As(kAlice)
          .Unwrap(device, data.object,
                  Meta(Justification::CUSTOMER_INITIATED_ACCESS))
          .status(),
      StatusIs(absl::StatusCode::kInvalidArgument, HasSubstr("KEY_SERVICE")));
}

TEST_F(KeyServiceTest, WrongContextIsInvalid) {
  AliceData data = MakeAliceData();
  for (const ObjectRef& other :
       {Object("alice", "photos/2015.jpg"), Object("alice", "photos/2014.jpg",
                                                   /*version=*/2)}) {
    EXPECT_THAT(As(kAlice)
                    .Unwrap(data.wrapped, other,
                            Meta(Justification::CUSTOMER_INITIATED_ACCESS))
                    .status(),
                StatusIs(absl::StatusCode::kInvalidArgument,
                         HasSubstr("does not authenticate")))
        << other.ShortDebugString();
  }
  EXPECT_THAT(
      As(kAlice)
          .Unwrap(data.wrapped, Object("bob", "photos/2014.jpg"),
                  Meta(Justification::CUSTOMER_INITIATED_ACCESS))
          .status(),
      StatusIs(absl::StatusCode::kInvalidArgument, HasSubstr("not the owner")));
}

TEST_F(KeyServiceTest, UnknownKeyVersionIsNotFound) {
  AliceData data = MakeAliceData();
  WrappedKey future = data.wrapped;
  future.set_key_version(7);
  EXPECT_THAT(As(kAlice)
                  .Unwrap(future, data.object,
                          Meta(Justification::CUSTOMER_INITIATED_ACCESS))
                  .status(),
              StatusIs(absl::StatusCode::kNotFound, HasSubstr("version 7")));
}

TEST_F(KeyServiceTest, OversizedRequestIsRefused) {
  AliceData data = MakeAliceData();
  RequestMetadata meta = Meta(Justification::CUSTOMER_INITIATED_ACCESS);
  meta.mutable_justification()->set_detail(std::string(100 * 1024, 'x'));
  EXPECT_THAT(As(kAlice).Unwrap(data.wrapped, data.object, meta).status(),
              StatusIs(absl::StatusCode::kResourceExhausted));
}

TEST_F(KeyServiceTest, ClientWithoutCertificateIsRefused) {
  // Control: the server answers a client with a proper certificate.
  ASSERT_FALSE(MakeAliceData().dek.empty());
  grpc::SslCredentialsOptions ssl;
  ssl.pem_root_certs = ca_->certificate_pem();
  auto channel =
      grpc::CreateChannel(server_->address(), grpc::SslCredentials(ssl));
  Client anonymous(channel);
  v1::GetKeyInfoRequest request;
  *request.mutable_metadata() = Meta(Justification::CUSTOMER_INITIATED_ACCESS);
  request.set_key_id("alice-key");
  v1::GetKeyInfoResponse response;
  EXPECT_THAT(anonymous.Call(&KeyService::Stub::GetKeyInfo, request, &response),
              StatusIs(absl::StatusCode::kUnavailable));
}

TEST_F(KeyServiceTest, ClientFromAnotherCaIsRefused) {
  // Control: the server answers a client with a proper certificate.
  ASSERT_FALSE(MakeAliceData().dek.empty());
  ASSERT_OK_AND_ASSIGN(tls::CertificateAuthority rogue,
                       tls::CertificateAuthority::Create("rogue-ca"));
  ASSERT_OK_AND_ASSIGN(tls::Identity mallory, rogue.Issue(kAlice));
  // The rogue client trusts the real CA for the server, but presents a
  // certificate the server's CA never signed.
  tls::TlsMaterial material = mallory.Material();
  material.ca_certificate_pem = ca_->certificate_pem();
  grpc::SslCredentialsOptions ssl;
  ssl.pem_root_certs = ca_->certificate_pem();
  ssl.pem_cert_chain = material.certificate_pem;
  ssl.pem_private_key = std::string(material.private_key_pem.view());
  Client client(
      grpc::CreateChannel(server_->address(), grpc::SslCredentials(ssl)));
  v1::GetKeyInfoRequest request;
  *request.mutable_metadata() = Meta(Justification::CUSTOMER_INITIATED_ACCESS);
  request.set_key_id("alice-key");
  v1::GetKeyInfoResponse response;
  EXPECT_THAT(client.Call(&KeyService::Stub::GetKeyInfo, request, &response),
              StatusIs(absl::StatusCode::kUnavailable));
}

// Certificates that still must not get through: an expired one from our
// CA, and ones of our CA whose SAN gives alice's name under another kind of
// principal. A client expecting another server name refuses the service.
// The service keeps serving alice.
TEST_F(KeyServiceTest, HostileCertificatesAreRefusedAndOthersServed) {
  AliceData data = MakeAliceData();
  ASSERT_FALSE(data.dek.empty());
  // Straight gRPC credentials: tls::MakeChannel would refuse to present
  // an expired certificate at all.
  auto client_with = [&](const tls::Identity& identity) {
    grpc::SslCredentialsOptions ssl;
    ssl.pem_root_certs = ca_->certificate_pem();
    ssl.pem_cert_chain = identity.certificate_pem;
    ssl.pem_private_key = std::string(identity.private_key_pem.view());
    return std::make_unique<Client>(
        grpc::CreateChannel(server_->address(), grpc::SslCredentials(ssl)));
  };
  const RequestMetadata meta = Meta(Justification::CUSTOMER_INITIATED_ACCESS);

  // Expired: the handshake fails.
  ASSERT_OK_AND_ASSIGN(tls::Identity expired,
                       ca_->Issue(kAlice, {.expired = true}));
  EXPECT_THAT(
      client_with(expired)->Unwrap(data.wrapped, data.object, meta).status(),
      StatusIs(absl::StatusCode::kUnavailable));

  // Signed by our CA, but alice's name under another kind of principal:
  // the call arrives and is denied, naming no rule that lets it through.
  for (const std::string principal :
       {"residency://service/alice", "residency://operator/alice",
        "residency://authority/alice"}) {
    ASSERT_OK_AND_ASSIGN(tls::Identity identity, ca_->Issue(principal));
    EXPECT_THAT(
        client_with(identity)->Unwrap(data.wrapped, data.object, meta).status(),
        StatusIs(absl::StatusCode::kPermissionDenied))
        << principal;
  }

  // The client checks the server's name: a client that expects another
  // host name than the service's certificate carries refuses to go on.
  {
    ASSERT_OK_AND_ASSIGN(tls::Identity alice, ca_->Issue(kAlice));
    grpc::SslCredentialsOptions ssl;
    ssl.pem_root_certs = ca_->certificate_pem();
    ssl.pem_cert_chain = alice.certificate_pem;
    ssl.pem_private_key = std::string(alice.private_key_pem.view());
    grpc::ChannelArguments args;
    args.SetSslTargetNameOverride("not-the-custodian.example");
    Client client(grpc::CreateCustomChannel(server_->address(),
                                            grpc::SslCredentials(ssl), args));
    EXPECT_THAT(client.Unwrap(data.wrapped, data.object, meta).status(),
                StatusIs(absl::StatusCode::kUnavailable));
  }

  // None of it disturbed the service.
  EXPECT_THAT(As(kAlice).Unwrap(data.wrapped, data.object, meta),
              IsOkAndHolds(data.dek));
}

// ----------------------------------------------------------------- audit

TEST_F(KeyServiceTest, EveryDecisionIsAuditedAndTheLogVerifies) {
  AliceData data = MakeAliceData();
  ASSERT_FALSE(As(kBob)
                   .Unwrap(data.wrapped, data.object,
                           Meta(Justification::CUSTOMER_INITIATED_ACCESS))
                   .ok());
  ASSERT_FALSE(As(kCnAuthority)
                   .Unwrap(data.wrapped, data.object, LegalMeta("CN", "alice"))
                   .ok());
  std::vector<v1::ReadAuditLogResponse> items;
  ASSERT_OK(
      As(kAuditor).ReadAuditLog(Meta(Justification::SECURITY_AUDIT), &items));
  ASSERT_OK_AND_ASSIGN(std::string public_key,
                       ParsePublicKeyPem(server_->audit_public_key_pem()));
  AuditVerifier verifier(public_key);
  for (const auto& item : items) ASSERT_OK(verifier.Add(item));
  ASSERT_OK(verifier.Finish());

  std::vector<AuditEntry> entries;
  for (const auto& item : items) {
    if (item.has_entry()) entries.push_back(item.entry());
  }
  // create, generate, bob's unwrap, the CN unwrap, and this read.
  ASSERT_EQ(entries.size(), 5u);
  EXPECT_EQ(entries[0].operation(), v1::OPERATION_CREATE_KEY);
  EXPECT_EQ(entries[1].operation(), v1::OPERATION_GENERATE_DATA_KEY);
  EXPECT_EQ(entries[1].key_version(), 1u);
  EXPECT_EQ(entries[1].object().object_id(), "photos/2014.jpg");
  EXPECT_EQ(entries[2].principal(), kBob);
  EXPECT_EQ(entries[2].decision(), AuditEntry::DENY);
  EXPECT_EQ(entries[2].rule(), "default-deny");
  EXPECT_EQ(entries[2].status_code(),
            static_cast<int>(absl::StatusCode::kPermissionDenied));
  EXPECT_EQ(entries[3].principal(), kCnAuthority);
  EXPECT_EQ(entries[3].justification().legal_process().jurisdiction(), "CN");
  EXPECT_EQ(entries[4].operation(), v1::OPERATION_READ_AUDIT_LOG);
  EXPECT_EQ(entries[4].decision(), AuditEntry::ALLOW);
  EXPECT_EQ(entries[4].rule(), "auditor-reads-log");
  EXPECT_TRUE(items.back().has_checkpoint());
}

TEST_F(KeyServiceTest, ReadingTheLogIsItselfPolicyChecked) {
  std::vector<v1::ReadAuditLogResponse> items;
  EXPECT_THAT(As(kAlice).ReadAuditLog(
                  Meta(Justification::CUSTOMER_INITIATED_ACCESS), &items),
              StatusIs(absl::StatusCode::kPermissionDenied));
  EXPECT_TRUE(items.empty());
  // The refusal was recorded.
  std::vector<AuditEntry> entries = AuditEntries();
  ASSERT_GE(entries.size(), 1u);
  EXPECT_EQ(entries[0].principal(), kAlice);
  EXPECT_EQ(entries[0].decision(), AuditEntry::DENY);
}

TEST_F(KeyServiceTest, AuditLogNeverContainsKeyMaterial) {
  AliceData data = MakeAliceData();
  ASSERT_OK_AND_ASSIGN(
      std::string unwrapped,
      As(kUsAuthority)
          .Unwrap(data.wrapped, data.object, LegalMeta("US", "alice")));
  ASSERT_OK_AND_ASSIGN(
      v1::ExportKeyResponse exported,
      As(kUsAuthority).ExportKey("alice-key", LegalMeta("US", "alice")));
  std::vector<std::string> secrets = {data.dek,
                                      exported.versions(0).material()};
  // Also the wrapped bytes: the log keeps only the redacted view.
  secrets.push_back(data.wrapped.wrapped());
  std::vector<std::string> needles;
  for (const std::string& s : secrets) {
    needles.push_back(s);
    needles.push_back(absl::BytesToHexString(s));
    needles.push_back(absl::Base64Escape(s));
  }

  std::vector<v1::ReadAuditLogResponse> items;
  ASSERT_OK(
      As(kAuditor).ReadAuditLog(Meta(Justification::SECURITY_AUDIT), &items));
  ASSERT_GE(items.size(), 4u);
  std::string streamed;
  for (const auto& item : items) {
    streamed += item.SerializeAsString();
    streamed += item.DebugString();
  }
  for (const std::string& needle : needles) {
    EXPECT_FALSE(absl::StrContains(streamed, needle));
  }
  // And the files of the audit database themselves.
  server_.reset();
  size_t files = 0;
  for (const auto& entry :
       std::filesystem::recursive_directory_iterator(dir_ + "/ks/audit")) {
    if (!entry.is_regular_file()) continue;
    std::ifstream in(entry.path(), std::ios::binary);
    std::string bytes((std::istreambuf_iterator<char>(in)),
                      std::istreambuf_iterator<char>());
    ++files;
    for (const std::string& needle : needles) {
      EXPECT_FALSE(absl::StrContains(bytes, needle)) << entry.path();
    }
  }
  EXPECT_GT(files, 0u);
}

// ------------------------------------------------------- persistence, files

TEST_F(KeyServiceTest, KeysAndAuditLogSurviveRestart) {
  AliceData data = MakeAliceData();
  ASSERT_OK(As(kOps)
                .RotateKey("alice-key",
                           Meta(Justification::CUSTODIAN_INITIATED_SERVICE))
                .status());
  const std::string public_key = server_->audit_public_key_pem();
  RestartServer();
  EXPECT_EQ(server_->audit_public_key_pem(), public_key);
  EXPECT_THAT(As(kAlice).Unwrap(data.wrapped, data.object,
                                Meta(Justification::CUSTOMER_INITIATED_ACCESS)),
              IsOkAndHolds(data.dek));
  ASSERT_OK_AND_ASSIGN(
      KeyInfo info,
      As(kAlice).GetKeyInfo("alice-key",
                            Meta(Justification::CUSTOMER_INITIATED_ACCESS)));
  EXPECT_EQ(info.current_version(), 2u);
  // The chain continues across the restart.
  std::vector<v1::ReadAuditLogResponse> items;
  ASSERT_OK(
      As(kAuditor).ReadAuditLog(Meta(Justification::SECURITY_AUDIT), &items));
  ASSERT_OK_AND_ASSIGN(std::string raw, ParsePublicKeyPem(public_key));
  AuditVerifier verifier(raw);
  for (const auto& item : items) ASSERT_OK(verifier.Add(item));
  ASSERT_OK(verifier.Finish());
  EXPECT_EQ(verifier.entries_verified(), 6u);
}

TEST_F(KeyServiceTest, RootKeyFileIsCreatedPrivate) {
  struct stat st;
  ASSERT_EQ(::stat((dir_ + "/ks/root.key").c_str(), &st), 0);
  EXPECT_EQ(st.st_mode & 0777, 0600);
  EXPECT_EQ(st.st_size, 32);
}

TEST_F(KeyServiceTest, RootKeyReadableByOthersIsRefused) {
  server_.reset();
  ASSERT_EQ(::chmod((dir_ + "/ks/root.key").c_str(), 0644), 0);
  ASSERT_OK_AND_ASSIGN(PolicyEngine policy,
                       PolicyEngine::Parse(kPolicy, "test policy"));
  EXPECT_THAT(KeyServiceServer::Start(Options(), std::move(policy)).status(),
              StatusIs(absl::StatusCode::kFailedPrecondition,
                       HasSubstr("group or others")));
}

TEST_F(KeyServiceTest, WrongRootKeyCannotOpenTheKeys) {
  MakeAliceData();
  server_.reset();
  // Another (valid, private) root key: the sealed KEKs must not open.
  const std::string other = dir_ + "/other.key";
  ASSERT_OK(LoadOrCreateRootKey(other).status());
  KeyServiceServerOptions options = Options();
  options.root_key_file = other;
  ASSERT_OK_AND_ASSIGN(PolicyEngine policy,
                       PolicyEngine::Parse(kPolicy, "test policy"));
  EXPECT_THAT(
      KeyServiceServer::Start(std::move(options), std::move(policy)).status(),
      StatusIs(absl::StatusCode::kDataLoss, HasSubstr("root key")));
}

TEST_F(KeyServiceTest, ServiceCertificateMustNameAService) {
  server_.reset();
  KeyServiceServerOptions options = Options();
  ASSERT_OK_AND_ASSIGN(tls::Identity user, ca_->Issue(kAlice));
  options.tls = user.Material();
  ASSERT_OK_AND_ASSIGN(PolicyEngine policy,
                       PolicyEngine::Parse(kPolicy, "test policy"));
  EXPECT_THAT(
      KeyServiceServer::Start(std::move(options), std::move(policy)).status(),
      StatusIs(absl::StatusCode::kInvalidArgument,
               HasSubstr("residency://service/")));
}

TEST_F(KeyServiceTest, HealthServiceReportsServing) {
  ASSERT_OK_AND_ASSIGN(tls::Identity identity, ca_->Issue(kAlice));
  ASSERT_OK_AND_ASSIGN(
      std::shared_ptr<grpc::Channel> channel,
      tls::MakeChannel(server_->address(), identity.Material()));
  EXPECT_THAT(rpc::IsServing(channel, "residency.v1.KeyService"),
              IsOkAndHolds(true));
  server_->Shutdown(absl::ZeroDuration());
  EXPECT_THAT(rpc::IsServing(channel, "residency.v1.KeyService"),
              ::testing::Not(IsOkAndHolds(true)));
}

// Every decision is audited: once a write of the audit log fails, the
// service refuses every call, and its health says so, until it restarts.
// The reopened log goes on from its last durable entry.
TEST_F(KeyServiceTest, AFailedAuditWriteMakesTheServiceNotServingUntilRestart) {
  server_.reset();
  auto fs = std::make_shared<testing::FaultFileSystem>();
  KeyServiceServerOptions options = Options();
  options.audit.file_system = fs;
  StartServer(std::move(options));
  ASSERT_OK(As(kAlice)
                .CreateKey("alice-key", "alice",
                           Meta(Justification::CUSTOMER_INITIATED_ACCESS))
                .status());
  EXPECT_THAT(Serving(), IsOkAndHolds(true));
  auto generate = [this] {
    return As(kAlice)
        .GenerateDataKey("alice-key", Object("alice", "doc"),
                         Meta(Justification::CUSTOMER_INITIATED_ACCESS))
        .status();
  };

  fs->set_fault(testing::FaultFileSystem::Fault::kDiskFull);
  EXPECT_THAT(generate(),
              StatusIs(absl::StatusCode::kUnavailable,
                       ::testing::AllOf(HasSubstr("writing audit entries"),
                                        HasSubstr("restart the key service"))));
  fs->set_fault(testing::FaultFileSystem::Fault::kNone);
  EXPECT_THAT(Serving(), IsOkAndHolds(false));
  EXPECT_THAT(generate(),
              StatusIs(absl::StatusCode::kUnavailable,
                       ::testing::AllOf(HasSubstr("audit log refuses entries"),
                                        HasSubstr("restart the key service"))));
  EXPECT_THAT(Serving(), IsOkAndHolds(false));

  RestartServer();
  EXPECT_THAT(Serving(), IsOkAndHolds(true));
  EXPECT_OK(generate());
}

}  // namespace
}  // namespace residency::key_service
