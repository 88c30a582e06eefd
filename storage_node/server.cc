#include "storage_node/server.h"

#include <sys/stat.h>

#include <cerrno>
#include <cstring>
#include <utility>

#include "absl/strings/str_cat.h"
#include "tls/peer.h"

namespace residency::storage_node {
namespace {

constexpr absl::string_view kServiceName = "residency.v1.StorageNode";
// Room for the protobuf framing around a full data message.
constexpr size_t kMessageOverhead = 64 * 1024;

absl::Status MakeDirectory(const std::string& path) {
  if (::mkdir(path.c_str(), 0700) != 0 && errno != EEXIST) {
    return absl::InternalError(absl::StrCat("cannot create directory ", path,
                                            ": ", std::strerror(errno)));
  }
  struct stat st;
  if (::stat(path.c_str(), &st) != 0 || !S_ISDIR(st.st_mode)) {
    return absl::FailedPreconditionError(
        absl::StrCat(path, " is not a directory"));
  }
  return absl::OkStatus();
}

}  // namespace

absl::StatusOr<std::unique_ptr<StorageNodeServer>> StorageNodeServer::Start(
    StorageNodeServerOptions options) {
  if (options.data_dir.empty() && !options.open_store) {
    return absl::InvalidArgumentError("a data directory is required");
  }
  if (options.jurisdiction.empty()) {
    return absl::InvalidArgumentError("a jurisdiction is required");
  }
  for (char c : options.jurisdiction) {
    if (c < 'A' || c > 'Z' || options.jurisdiction.size() > 16) {
      return absl::InvalidArgumentError(absl::StrCat(
          "jurisdiction '", options.jurisdiction,
          "' must be 1-16 upper-case letters, as residency rules write it"));
    }
  }
  absl::StatusOr<tls::Principal> operator_principal =
      tls::ParsePrincipal(options.operator_principal);
  if (!operator_principal.ok() ||
      operator_principal->kind != tls::Principal::Kind::kOperator) {
    return absl::InvalidArgumentError(absl::StrCat(
        "the operator must be a residency://operator/NAME principal, not '",
        options.operator_principal, "'"));
  }
  absl::StatusOr<tls::Principal> self =
      tls::ServiceIdentity(options.tls.certificate_pem);
  if (!self.ok()) return self.status();
  absl::StatusOr<std::shared_ptr<grpc::ServerCredentials>> credentials =
      tls::MakeServerCredentials(options.tls);
  if (!credentials.ok()) return credentials.status();
  if (!options.data_dir.empty()) {
    if (absl::Status s = MakeDirectory(options.data_dir); !s.ok()) return s;
  }
  const std::string store_dir = absl::StrCat(options.data_dir, "/objects");
  // The store reports whether it writes to the health service, which
  // starts after it and stops before it.
  auto health = std::make_shared<rpc::ServingRelay>();
  options.store.on_writing =
      [health, also = std::move(options.store.on_writing)](bool writing) {
        health->SetServing(writing);
        if (also) also(writing);
      };
  absl::StatusOr<std::unique_ptr<ObjectStore>> store =
      options.open_store ? options.open_store(store_dir, options.store)
                         : ObjectStore::Open(store_dir, options.store);
  if (!store.ok()) return store.status();

  std::unique_ptr<StorageNodeServer> server(new StorageNodeServer());
  server->health_ = std::move(health);
  server->principal_ = self->uri;
  server->core_ = std::make_unique<NodeCore>(
      NodeOptions{options.jurisdiction, options.max_data_message_bytes,
                  options.operator_principal},
      *std::move(store));
  server->service_ =
      std::make_unique<StorageNodeGrpc>(server->core_.get(), options.limits);
  rpc::ServerOptions rpc_options;
  rpc_options.listen_address = options.listen_address;
  rpc_options.credentials = *std::move(credentials);
  rpc_options.services = {server->service_.get()};
  rpc_options.health_service_name = std::string(kServiceName);
  rpc_options.max_receive_message_bytes =
      static_cast<int>(options.max_data_message_bytes + kMessageOverhead);
  rpc_options.max_threads = options.max_threads;
  rpc_options.stream_window_bytes = options.stream_window_bytes;
  absl::StatusOr<std::unique_ptr<rpc::Server>> rpc_server =
      rpc::Server::Start(std::move(rpc_options));
  if (!rpc_server.ok()) return rpc_server.status();
  server->rpc_ = *std::move(rpc_server);
  server->health_->Attach(server->rpc_.get());
  return server;
}

StorageNodeServer::~StorageNodeServer() {
  Shutdown();
  // The store outlives the gRPC server and may still report.
  if (health_ != nullptr) health_->Attach(nullptr);
}

void StorageNodeServer::Shutdown(absl::Duration grace) {
  if (rpc_ != nullptr) rpc_->Shutdown(grace);
}

}  // namespace residency::storage_node
