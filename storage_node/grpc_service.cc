#include "storage_node/grpc_service.h"

#include <utility>

#include "absl/strings/str_cat.h"
#include "google/protobuf/util/time_util.h"
#include "rpc/status.h"
#include "tls/peer.h"

namespace residency::storage_node {
namespace {

// Runs `body` for an authenticated caller.
template <typename Body>
grpc::Status WithCaller(grpc::ServerContext* context, Body body) {
  absl::StatusOr<tls::Principal> caller = tls::PeerPrincipal(*context);
  if (!caller.ok()) return rpc::ToGrpcStatus(caller.status());
  return rpc::ToGrpcStatus(body(*caller));
}

// For the unary calls: copies the core's answer into the response.
template <typename Response>
absl::Status Answer(absl::StatusOr<Response> answer, Response* response) {
  if (!answer.ok()) return answer.status();
  *response = *std::move(answer);
  return absl::OkStatus();
}

}  // namespace

grpc::Status StorageNodeGrpc::Put(
    grpc::ServerContext* context,
    grpc::ServerReader<residency::v1::PutRequest>* reader,
    residency::v1::PutResponse* response) {
  return WithCaller(context, [&](const tls::Principal& caller) -> absl::Status {
    residency::v1::PutRequest message;
    if (!reader->Read(&message)) {
      return absl::InvalidArgumentError(
          "Put stream ended before its start, or its first message did not "
          "parse as a PutRequest");
    }
    if (!message.has_start()) {
      return absl::InvalidArgumentError(
          "the first Put message must be `start` (metadata and header)");
    }
    absl::StatusOr<std::unique_ptr<Upload>> upload =
        core_->BeginPut(caller, message.start());
    if (!upload.ok()) return upload.status();
    while (reader->Read(&message)) {
      if (message.has_start()) {
        return absl::InvalidArgumentError(
            "a second `start` arrived in one Put stream");
      }
      if (!message.has_data()) {
        return absl::InvalidArgumentError("a Put message carries nothing");
      }
      if (absl::Status s = (*upload)->Append(message.data()); !s.ok()) {
        return s;
      }
    }
    if (context->IsCancelled()) {
      return absl::CancelledError("the Put stream was cancelled");
    }
    absl::StatusOr<StoredVersion> stored = (*upload)->Commit();
    if (!stored.ok()) return stored.status();
    *response->mutable_object() = stored->info.header().object();
    *response->mutable_stored_at() = stored->info.stored_at();
    return absl::OkStatus();
  });
}

grpc::Status StorageNodeGrpc::Get(
    grpc::ServerContext* context, const residency::v1::GetRequest* request,
    grpc::ServerWriter<residency::v1::GetResponse>* writer) {
  return WithCaller(context, [&](const tls::Principal& caller) {
    return core_->Get(
        caller, *request, [&](const residency::v1::GetResponse& message) {
          return !context->IsCancelled() && writer->Write(message);
        });
  });
}

grpc::Status StorageNodeGrpc::Head(grpc::ServerContext* context,
                                   const residency::v1::HeadRequest* request,
                                   residency::v1::HeadResponse* response) {
  return WithCaller(context, [&](const tls::Principal& caller) {
    return Answer(core_->Head(caller, *request), response);
  });
}

grpc::Status StorageNodeGrpc::List(grpc::ServerContext* context,
                                   const residency::v1::ListRequest* request,
                                   residency::v1::ListResponse* response) {
  return WithCaller(context, [&](const tls::Principal& caller) {
    return Answer(core_->List(caller, *request), response);
  });
}

grpc::Status StorageNodeGrpc::Delete(
    grpc::ServerContext* context, const residency::v1::DeleteRequest* request,
    residency::v1::DeleteResponse* response) {
  return WithCaller(context, [&](const tls::Principal& caller) {
    return Answer(core_->Delete(caller, *request), response);
  });
}

grpc::Status StorageNodeGrpc::Export(
    grpc::ServerContext* context, const residency::v1::ExportRequest* request,
    grpc::ServerWriter<residency::v1::ExportResponse>* writer) {
  return WithCaller(context, [&](const tls::Principal& caller) {
    return core_->Export(
        caller, *request, [&](const residency::v1::ExportResponse& message) {
          return !context->IsCancelled() && writer->Write(message);
        });
  });
}

grpc::Status StorageNodeGrpc::Stats(grpc::ServerContext* context,
                                    const residency::v1::StatsRequest* request,
                                    residency::v1::StatsResponse* response) {
  return WithCaller(context, [&](const tls::Principal& caller) {
    return Answer(core_->Stats(caller, *request), response);
  });
}

}  // namespace residency::storage_node
