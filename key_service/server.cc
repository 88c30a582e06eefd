#include "key_service/server.h"

#include <sys/stat.h>
#include <unistd.h>

#include <cerrno>
#include <cstring>
#include <fstream>
#include <utility>

#include "absl/strings/match.h"
#include "absl/strings/str_cat.h"
#include "key_service/audit_signer.h"
#include "key_service/key_store.h"
#include "rpc/server.h"
#include "tls/peer.h"

namespace residency::key_service {
namespace {

constexpr absl::string_view kServiceName = "residency.v1.KeyService";
constexpr absl::string_view kAuditSignerSecret = "audit-signer-seed";
constexpr size_t kAuditSeedSize = 32;

absl::Status MakeDirectory(const std::string& path) {
  if (::mkdir(path.c_str(), 0700) == 0 || errno == EEXIST) {
    struct stat st;
    if (::stat(path.c_str(), &st) == 0 && S_ISDIR(st.st_mode)) {
      return absl::OkStatus();
    }
    return absl::FailedPreconditionError(
        absl::StrCat(path, " exists and is not a directory"));
  }
  return absl::InternalError(absl::StrCat("cannot create directory ", path,
                                          ": ", std::strerror(errno)));
}

absl::Status WriteFile(const std::string& path, absl::string_view contents) {
  std::ofstream out(path, std::ios::binary | std::ios::trunc);
  out.write(contents.data(), static_cast<std::streamsize>(contents.size()));
  out.close();
  if (!out) {
    return absl::InternalError(
        absl::StrCat("cannot write ", path, ": ", std::strerror(errno)));
  }
  return absl::OkStatus();
}

}  // namespace

absl::StatusOr<std::unique_ptr<KeyServiceServer>> KeyServiceServer::Start(
    KeyServiceServerOptions options, PolicyEngine policy) {
  if (options.data_dir.empty()) {
    return absl::InvalidArgumentError("a data directory is required");
  }
  if (options.jurisdiction.empty()) {
    return absl::InvalidArgumentError("a jurisdiction is required");
  }
  if (!policy.policy().jurisdiction().empty() &&
      policy.policy().jurisdiction() != options.jurisdiction) {
    return absl::InvalidArgumentError(absl::StrCat(
        "the policy is written for jurisdiction '",
        policy.policy().jurisdiction(), "' but the service declares '",
        options.jurisdiction, "'"));
  }
  absl::StatusOr<tls::Principal> self =
      tls::ServiceIdentity(options.tls.certificate_pem);
  if (!self.ok()) return self.status();
  if (absl::Status s = MakeDirectory(options.data_dir); !s.ok()) return s;
  const std::string root_key_file =
      options.root_key_file.empty()
          ? absl::StrCat(options.data_dir, "/root.key")
          : options.root_key_file;
  // A store that exists needs the root key it was sealed with: a missing
  // file then means the key is lost or misplaced, never "make a new one".
  const std::string keys_dir = absl::StrCat(options.data_dir, "/keys");
  const bool store_exists =
      ::access((keys_dir + "/CURRENT").c_str(), F_OK) == 0;
  absl::StatusOr<crypto::SecretBytes> root_key =
      LoadOrCreateRootKey(root_key_file, /*create_if_missing=*/!store_exists);
  if (absl::IsNotFound(root_key.status())) {
    return absl::FailedPreconditionError(
        absl::StrCat("the key store in ", keys_dir,
                     " exists but its root key file ", root_key_file,
                     " is missing; restore that file (a new root key could "
                     "not open the stored keys)"));
  }
  if (!root_key.ok()) return root_key.status();
  absl::StatusOr<std::unique_ptr<KeyStore>> keys =
      KeyStore::Open(keys_dir, *std::move(root_key));
  if (!keys.ok()) return keys.status();
  absl::StatusOr<crypto::SecretBytes> seed =
      (*keys)->LoadOrCreateSecret(kAuditSignerSecret, kAuditSeedSize);
  if (!seed.ok()) return seed.status();
  absl::StatusOr<AuditSigner> signer = AuditSigner::FromSeed(*seed);
  if (!signer.ok()) return signer.status();

  std::unique_ptr<KeyServiceServer> server(new KeyServiceServer());
  server->principal_ = self->uri;
  server->audit_public_key_pem_ = signer->PublicKeyPem();
  if (absl::Status s =
          WriteFile(absl::StrCat(options.data_dir, "/audit_public_key.pem"),
                    server->audit_public_key_pem_);
      !s.ok()) {
    return s;
  }
  // Every decision is audited, so once the audit log refuses entries the
  // service refuses every call until it restarts: the health service, which
  // starts after the log and stops before it, reports NOT_SERVING.
  server->health_ = std::make_shared<rpc::ServingRelay>();
  options.audit.on_failed = [health = server->health_,
                             also = std::move(options.audit.on_failed)] {
    health->SetServing(false);
    if (also) also();
  };
  absl::StatusOr<std::unique_ptr<AuditLog>> audit =
      AuditLog::Open(absl::StrCat(options.data_dir, "/audit"),
                     *std::move(signer), options.audit);
  if (!audit.ok()) return audit.status();

  server->custodian_ = std::make_unique<Custodian>(
      CustodianOptions{self->uri, options.jurisdiction}, std::move(policy),
      *std::move(keys), *std::move(audit));
  server->service_ = std::make_unique<KeyServiceGrpc>(server->custodian_.get());

  absl::StatusOr<std::shared_ptr<grpc::ServerCredentials>> credentials =
      tls::MakeServerCredentials(options.tls);
  if (!credentials.ok()) return credentials.status();
  rpc::ServerOptions rpc_options;
  rpc_options.listen_address = options.listen_address;
  rpc_options.credentials = *std::move(credentials);
  rpc_options.services = {server->service_.get()};
  rpc_options.health_service_name = std::string(kServiceName);
  rpc_options.max_receive_message_bytes =
      static_cast<int>(options.max_request_bytes);
  absl::StatusOr<std::unique_ptr<rpc::Server>> rpc_server =
      rpc::Server::Start(std::move(rpc_options));
  if (!rpc_server.ok()) return rpc_server.status();
  server->rpc_ = *std::move(rpc_server);
  server->health_->Attach(server->rpc_.get());
  return server;
}

KeyServiceServer::~KeyServiceServer() {
  Shutdown();
  // The audit log outlives the gRPC server and may still report.
  if (health_ != nullptr) health_->Attach(nullptr);
}

void KeyServiceServer::Shutdown(absl::Duration grace) {
  if (rpc_ != nullptr) rpc_->Shutdown(grace);
}

}  // namespace residency::key_service
