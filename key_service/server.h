#ifndef RESIDENCY_KEY_SERVICE_SERVER_H_
#define RESIDENCY_KEY_SERVICE_SERVER_H_

#include <grpcpp/grpcpp.h>

#include <cstddef>
#include <memory>
#include <string>

#include "absl/status/statusor.h"
#include "absl/time/time.h"
#include "key_service/audit_log.h"
#include "key_service/custodian.h"
#include "key_service/grpc_service.h"
#include "key_service/policy.h"
#include "rpc/server.h"
#include "tls/credentials.h"

namespace residency::key_service {

struct KeyServiceServerOptions {
  // host:port; port 0 picks a free one (see KeyServiceServer::port()).
  std::string listen_address = "127.0.0.1:0";
  // The service's mTLS identity; clients must present certificates from the
  // same CA. Its URI SAN (residency://service/NAME) is the principal written
  // into every WrappedKey.
  tls::TlsMaterial tls;
  // The custodian's home jurisdiction ("US").
  std::string jurisdiction;
  // Holds keys/ (RocksDB), audit/ (RocksDB) and audit_public_key.pem.
  // Created (mode 0700) if missing.
  std::string data_dir;
  // Defaults to DATA_DIR/root.key, created with mode 0600 on first start.
  std::string root_key_file;
  // Larger requests are refused by gRPC with RESOURCE_EXHAUSTED before any
  // parsing. Every valid KeyService request fits easily.
  size_t max_request_bytes = 64 * 1024;
  AuditLogOptions audit;
};

// A running key service: the custodian, its stores and a gRPC server over
// mTLS with the health service (service name "residency.v1.KeyService") and
// server reflection. Health is SERVING until shutdown, or until the audit
// log refuses entries after a failed write: every call is then refused
// until the service restarts, and health says NOT_SERVING.
//
// Start fails with a clear status when the data directory, root key, policy
// or TLS material cannot be used, or the address cannot be bound.
// Destruction shuts the server down (in-flight calls get a short grace
// period) and closes the stores.
class KeyServiceServer {
 public:
  static absl::StatusOr<std::unique_ptr<KeyServiceServer>> Start(
      KeyServiceServerOptions options, PolicyEngine policy);
  ~KeyServiceServer();

  int port() const { return rpc_->port(); }
  // "127.0.0.1:PORT" style address clients can dial.
  std::string address() const { return rpc_->address(); }
  rpc::Server& rpc_server() { return *rpc_; }
  const std::string& principal() const { return principal_; }
  // Ed25519 public key that verifies the audit checkpoints, PEM.
  const std::string& audit_public_key_pem() const {
    return audit_public_key_pem_;
  }
  Custodian& custodian() { return *custodian_; }

  // Stops accepting calls and waits up to `grace` for those in flight.
  void Shutdown(absl::Duration grace = absl::Seconds(2));

 private:
  KeyServiceServer() = default;

  // Before custodian_: its audit log reports to it until the destructor
  // detaches it.
  std::shared_ptr<rpc::ServingRelay> health_;
  std::unique_ptr<Custodian> custodian_;
  std::unique_ptr<KeyServiceGrpc> service_;
  std::unique_ptr<rpc::Server> rpc_;
  std::string principal_;
  std::string audit_public_key_pem_;
};

}  // namespace residency::key_service

#endif  // RESIDENCY_KEY_SERVICE_SERVER_H_
