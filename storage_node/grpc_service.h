#ifndef RESIDENCY_STORAGE_NODE_GRPC_SERVICE_H_
#define RESIDENCY_STORAGE_NODE_GRPC_SERVICE_H_

#include <grpcpp/grpcpp.h>

#include <string>
#include <thread>

#include "absl/base/thread_annotations.h"
#include "absl/container/flat_hash_map.h"
#include "absl/status/statusor.h"
#include "absl/synchronization/mutex.h"
#include "absl/time/time.h"
#include "residency/v1/storage.grpc.pb.h"
#include "storage_node/node.h"
#include "tls/principal.h"

namespace residency::storage_node {

// residency.v1.StorageNode over gRPC: takes the caller's principal from the
// verified mTLS peer certificate (UNAUTHENTICATED without one) and hands the
// request to NodeCore. It uses the synchronous API: each stream reads or
// writes one message at a time, so gRPC's flow-control window (plus one
// store segment) bounds what a stream holds in memory, whatever the object
// size.
//
// Put: the first message must be `start`; then only `data`. A second
// `start`, an empty message, more bytes than the header declares, or fewer
// when the stream ends are INVALID_ARGUMENT; a cancelled stream is
// abandoned. Nothing of a refused or abandoned upload stays visible.
//
// Thread safety: as NodeCore, which must outlive the server.
struct StreamLimits {
  // Calls one principal may have open at once; more are RESOURCE_EXHAUSTED,
  // so one client cannot take every handler thread.
  int max_calls_per_principal = 16;
  // A Put, Get or Export that moves fewer than min_progress_bytes within
  // idle_timeout is cancelled (an abandoned Put leaves nothing), so neither
  // an idle client nor one that trickles a byte at a time can hold a
  // handler thread for long. The default asks for about 1 KiB/s.
  absl::Duration idle_timeout = absl::Seconds(60);
  uint64_t min_progress_bytes = 64 * 1024;
};

class StorageNodeGrpc final : public residency::v1::StorageNode::Service {
 public:
  StorageNodeGrpc(NodeCore* core, StreamLimits limits = {});
  ~StorageNodeGrpc() override;

  grpc::Status Put(grpc::ServerContext* context,
                   grpc::ServerReader<residency::v1::PutRequest>* reader,
                   residency::v1::PutResponse* response) override;
  grpc::Status Get(
      grpc::ServerContext* context, const residency::v1::GetRequest* request,
      grpc::ServerWriter<residency::v1::GetResponse>* writer) override;
  grpc::Status Head(grpc::ServerContext* context,
                    const residency::v1::HeadRequest* request,
                    residency::v1::HeadResponse* response) override;
  grpc::Status List(grpc::ServerContext* context,
                    const residency::v1::ListRequest* request,
                    residency::v1::ListResponse* response) override;
  grpc::Status Delete(grpc::ServerContext* context,
                      const residency::v1::DeleteRequest* request,
                      residency::v1::DeleteResponse* response) override;
  grpc::Status Export(
      grpc::ServerContext* context, const residency::v1::ExportRequest* request,
      grpc::ServerWriter<residency::v1::ExportResponse>* writer) override;
  grpc::Status Stats(grpc::ServerContext* context,
                     const residency::v1::StatsRequest* request,
                     residency::v1::StatsResponse* response) override;

 private:
  class Slot;
  struct Stream {
    grpc::ServerContext* context;
    absl::Time last_activity;
  };

  // Runs `body(caller, slot)` for an authenticated caller holding one of
  // its call slots.
  template <typename Body>
  grpc::Status Serve(grpc::ServerContext* context, Body body);
  // Claims one of the caller's call slots, or RESOURCE_EXHAUSTED.
  absl::StatusOr<std::unique_ptr<Slot>> Claim(const tls::Principal& caller,
                                              grpc::ServerContext* context);
  void Release(const std::string& principal, grpc::ServerContext* context);
  // Counts `bytes` moved by the stream; once min_progress_bytes have moved
  // since its last progress, that is progress.
  void Touch(grpc::ServerContext* context, uint64_t bytes);
  void Watch();

  NodeCore* const core_;
  const StreamLimits limits_;
  absl::Mutex mu_;
  absl::flat_hash_map<std::string, int> calls_ ABSL_GUARDED_BY(mu_);
  struct Progress {
    absl::Time since;    // last time the stream made progress
    uint64_t bytes = 0;  // moved since then
  };
  absl::flat_hash_map<grpc::ServerContext*, Progress> streams_
      ABSL_GUARDED_BY(mu_);
  bool stopping_ ABSL_GUARDED_BY(mu_) = false;
  std::thread watchdog_;
};

}  // namespace residency::storage_node

#endif  // RESIDENCY_STORAGE_NODE_GRPC_SERVICE_H_
