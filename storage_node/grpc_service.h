#ifndef RESIDENCY_STORAGE_NODE_GRPC_SERVICE_H_
#define RESIDENCY_STORAGE_NODE_GRPC_SERVICE_H_

#include <grpcpp/grpcpp.h>

#include "residency/v1/storage.grpc.pb.h"
#include "storage_node/node.h"

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
class StorageNodeGrpc final : public residency::v1::StorageNode::Service {
 public:
  explicit StorageNodeGrpc(NodeCore* core) : core_(core) {}

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
  NodeCore* const core_;
};

}  // namespace residency::storage_node

#endif  // RESIDENCY_STORAGE_NODE_GRPC_SERVICE_H_
