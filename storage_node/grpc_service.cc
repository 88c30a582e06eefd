#include "storage_node/grpc_service.h"

#include <algorithm>
#include <utility>

#include "absl/strings/str_cat.h"
#include "google/protobuf/util/time_util.h"
#include "rpc/status.h"
#include "tls/peer.h"

namespace residency::storage_node {
namespace {

// For the unary calls: copies the core's answer into the response.
template <typename Response>
absl::Status Answer(absl::StatusOr<Response> answer, Response* response) {
  if (!answer.ok()) return answer.status();
  *response = *std::move(answer);
  return absl::OkStatus();
}

}  // namespace

// Holds one call slot of a principal for the life of a call.
class StorageNodeGrpc::Slot {
 public:
  Slot(StorageNodeGrpc* service, std::string principal,
       grpc::ServerContext* context)
      : service_(service),
        principal_(std::move(principal)),
        context_(context) {}
  ~Slot() { service_->Release(principal_, context_); }
  void Touch(uint64_t bytes) { service_->Touch(context_, bytes); }

 private:
  StorageNodeGrpc* const service_;
  const std::string principal_;
  grpc::ServerContext* const context_;
};

StorageNodeGrpc::StorageNodeGrpc(NodeCore* core, StreamLimits limits)
    : core_(core), limits_(limits) {
  watchdog_ = std::thread([this] { Watch(); });
}

StorageNodeGrpc::~StorageNodeGrpc() {
  {
    absl::MutexLock lock(&mu_);
    stopping_ = true;
  }
  watchdog_.join();
}

absl::StatusOr<std::unique_ptr<StorageNodeGrpc::Slot>> StorageNodeGrpc::Claim(
    const tls::Principal& caller, grpc::ServerContext* context) {
  absl::MutexLock lock(&mu_);
  int& calls = calls_[caller.uri];
  if (calls >= limits_.max_calls_per_principal) {
    if (calls == 0) calls_.erase(caller.uri);
    return absl::ResourceExhaustedError(absl::StrCat(
        caller.uri, " already has ", limits_.max_calls_per_principal,
        " calls open on this node; wait for one to finish"));
  }
  ++calls;
  streams_[context] = Progress{absl::Now(), 0};
  return std::make_unique<Slot>(this, caller.uri, context);
}

void StorageNodeGrpc::Release(const std::string& principal,
                              grpc::ServerContext* context) {
  absl::MutexLock lock(&mu_);
  streams_.erase(context);
  auto it = calls_.find(principal);
  if (it != calls_.end() && --it->second <= 0) calls_.erase(it);
}

void StorageNodeGrpc::Touch(grpc::ServerContext* context, uint64_t bytes) {
  absl::MutexLock lock(&mu_);
  auto it = streams_.find(context);
  if (it == streams_.end()) return;
  Progress& progress = it->second;
  progress.bytes += bytes;
  if (progress.bytes >= limits_.min_progress_bytes) {
    progress = Progress{absl::Now(), 0};
  }
}

void StorageNodeGrpc::Watch() {
  const absl::Duration period =
      std::min(absl::Seconds(1), limits_.idle_timeout / 4);
  absl::MutexLock lock(&mu_);
  while (!stopping_) {
    mu_.AwaitWithTimeout(absl::Condition(&stopping_), period);
    const absl::Time now = absl::Now();
    for (auto& [context, progress] : streams_) {
      if (now - progress.since > limits_.idle_timeout) {
        context->TryCancel();
        progress = Progress{now, 0};  // once per period is enough
      }
    }
  }
}

template <typename Body>
grpc::Status StorageNodeGrpc::Serve(grpc::ServerContext* context, Body body) {
  absl::StatusOr<tls::Principal> caller = tls::PeerPrincipal(*context);
  if (!caller.ok()) return rpc::ToGrpcStatus(caller.status());
  absl::StatusOr<std::unique_ptr<Slot>> slot = Claim(*caller, context);
  if (!slot.ok()) return rpc::ToGrpcStatus(slot.status());
  return rpc::ToGrpcStatus(body(*caller, **slot));
}

grpc::Status StorageNodeGrpc::Put(
    grpc::ServerContext* context,
    grpc::ServerReader<residency::v1::PutRequest>* reader,
    residency::v1::PutResponse* response) {
  return Serve(
      context, [&](const tls::Principal& caller, Slot& slot) -> absl::Status {
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
          slot.Touch(message.data().size());
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
  return Serve(context, [&](const tls::Principal& caller, Slot& slot) {
    return core_->Get(caller, *request,
                      [&](const residency::v1::GetResponse& message) {
                        if (context->IsCancelled() || !writer->Write(message))
                          return false;
                        slot.Touch(message.ByteSizeLong());
                        return true;
                      });
  });
}

grpc::Status StorageNodeGrpc::Head(grpc::ServerContext* context,
                                   const residency::v1::HeadRequest* request,
                                   residency::v1::HeadResponse* response) {
  return Serve(context, [&](const tls::Principal& caller, Slot&) {
    return Answer(core_->Head(caller, *request), response);
  });
}

grpc::Status StorageNodeGrpc::List(grpc::ServerContext* context,
                                   const residency::v1::ListRequest* request,
                                   residency::v1::ListResponse* response) {
  return Serve(context, [&](const tls::Principal& caller, Slot&) {
    return Answer(core_->List(caller, *request), response);
  });
}

grpc::Status StorageNodeGrpc::Delete(
    grpc::ServerContext* context, const residency::v1::DeleteRequest* request,
    residency::v1::DeleteResponse* response) {
  return Serve(context, [&](const tls::Principal& caller, Slot&) {
    return Answer(core_->Delete(caller, *request), response);
  });
}

grpc::Status StorageNodeGrpc::Export(
    grpc::ServerContext* context, const residency::v1::ExportRequest* request,
    grpc::ServerWriter<residency::v1::ExportResponse>* writer) {
  return Serve(context, [&](const tls::Principal& caller, Slot& slot) {
    return core_->Export(
        caller, *request, [&](const residency::v1::ExportResponse& message) {
          if (context->IsCancelled() || !writer->Write(message)) return false;
          slot.Touch(message.ByteSizeLong());
          return true;
        });
  });
}

grpc::Status StorageNodeGrpc::Stats(grpc::ServerContext* context,
                                    const residency::v1::StatsRequest* request,
                                    residency::v1::StatsResponse* response) {
  return Serve(context, [&](const tls::Principal& caller, Slot&) {
    return Answer(core_->Stats(caller, *request), response);
  });
}

}  // namespace residency::storage_node
