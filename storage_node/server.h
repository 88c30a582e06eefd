#ifndef RESIDENCY_STORAGE_NODE_SERVER_H_
#define RESIDENCY_STORAGE_NODE_SERVER_H_

#include <functional>
#include <memory>
#include <string>

#include "absl/status/statusor.h"
#include "absl/time/time.h"
#include "rpc/server.h"
#include "storage_node/grpc_service.h"
#include "storage_node/node.h"
#include "storage_node/object_store.h"
#include "tls/credentials.h"

namespace residency::storage_node {

struct StorageNodeServerOptions {
  // host:port; port 0 picks a free one.
  std::string listen_address = "127.0.0.1:0";
  // The node's mTLS identity, a residency://service/NAME certificate.
  tls::TlsMaterial tls;
  // The jurisdiction the node declares ("CN").
  std::string jurisdiction;
  // The node's operator (residency://operator/NAME), the one principal that
  // may Export and read every owner's Stats.
  std::string operator_principal;
  // Holds the RocksDB object store; created (mode 0700) if missing. May be
  // empty when open_store keeps its objects elsewhere (RADOS).
  std::string data_dir;
  ObjectStoreOptions store;
  // Opens the object store in data_dir/objects. Unset: ObjectStore::Open,
  // the RocksDB store. Benchmarks and fault tests put another store behind
  // the node here (DiscardingObjectStore, a failing store).
  std::function<absl::StatusOr<std::unique_ptr<ObjectStore>>(
      const std::string& dir, const ObjectStoreOptions& options)>
      open_store;
  // Largest data message the node sends and accepts (plus protobuf framing).
  size_t max_data_message_bytes = 1 << 20;
  // Bounds concurrent streams (one handler thread each).
  int max_threads = 64;
  // Per-stream HTTP/2 window: what a sender can have in flight to the node.
  int stream_window_bytes = 4 << 20;
  StreamLimits limits;
};

// A running storage node: object store, NodeCore and the gRPC server over
// mTLS with health ("residency.v1.StorageNode") and reflection. Health is
// NOT_SERVING while the store refuses writes after a disk error (reads are
// still served), SERVING again once it writes. Start fails with a clear
// status when the data directory, the TLS identity or the address cannot be
// used. Destruction shuts the server down.
class StorageNodeServer {
 public:
  static absl::StatusOr<std::unique_ptr<StorageNodeServer>> Start(
      StorageNodeServerOptions options);
  ~StorageNodeServer();

  int port() const { return rpc_->port(); }
  std::string address() const { return rpc_->address(); }
  const std::string& principal() const { return principal_; }
  NodeCore& core() { return *core_; }
  rpc::Server& rpc_server() { return *rpc_; }

  void Shutdown(absl::Duration grace = absl::Seconds(2));

 private:
  StorageNodeServer() = default;

  // Before core_: the store reports to it until the destructor detaches it.
  std::shared_ptr<rpc::ServingRelay> health_;
  std::unique_ptr<NodeCore> core_;
  std::unique_ptr<StorageNodeGrpc> service_;
  std::unique_ptr<rpc::Server> rpc_;
  std::string principal_;
};

}  // namespace residency::storage_node

#endif  // RESIDENCY_STORAGE_NODE_SERVER_H_
