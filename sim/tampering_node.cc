#include "sim/tampering_node.h"

#include <algorithm>
#include <utility>

#include "absl/strings/str_cat.h"
#include "tls/peer.h"

namespace residency::sim {
namespace {

using ::residency::v1::GetRequest;
using ::residency::v1::GetResponse;
using ::residency::v1::StorageNode;

// The storage protocol's largest data message.
constexpr size_t kMessageBytes = 1 << 20;

// Reads one whole Get answer from the real node.
grpc::Status Fetch(grpc::ServerContext* server, StorageNode::Stub& stub,
                   const GetRequest& request, GetResponse::Start* start,
                   std::string* data) {
  std::unique_ptr<grpc::ClientContext> context =
      grpc::ClientContext::FromServerContext(*server);
  auto reader = stub.Get(context.get(), request);
  GetResponse message;
  while (reader->Read(&message)) {
    if (message.has_start()) *start = message.start();
    if (message.has_data()) *data += message.data();
  }
  return reader->Finish();
}

}  // namespace

TamperingNode::TamperingNode(ChannelFor to_node)
    : to_node_(std::move(to_node)) {}

void TamperingNode::set_plan(Plan plan) {
  std::lock_guard<std::mutex> lock(mu_);
  plan_ = std::move(plan);
}

void TamperingNode::Serve(Tampering tampering) {
  set_plan([tampering](const residency::v1::ObjectRef&) { return tampering; });
}

absl::string_view TamperingNode::ModeName(Mode mode) {
  switch (mode) {
    case Mode::kHonest:
      return "honest";
    case Mode::kFlipBit:
      return "flip-bit";
    case Mode::kSwapCiphertext:
      return "swap-ciphertext";
    case Mode::kOlderVersion:
      return "older-version";
    case Mode::kOlderRelabelled:
      return "older-relabelled";
    case Mode::kTruncate:
      return "truncate";
    case Mode::kOtherOwner:
      return "other-owner";
  }
  return "unknown";
}

StorageNode::Stub* TamperingNode::StubFor(const std::string& owner) {
  std::lock_guard<std::mutex> lock(mu_);
  auto& stub = stubs_[owner];
  if (stub == nullptr) {
    std::shared_ptr<grpc::Channel> channel = to_node_(owner);
    if (channel == nullptr) return nullptr;
    stub = StorageNode::NewStub(std::move(channel));
  }
  return stub.get();
}

grpc::Status TamperingNode::CallerStub(grpc::ServerContext* context,
                                       StorageNode::Stub** stub) {
  absl::StatusOr<tls::Principal> caller = tls::PeerPrincipal(*context);
  if (!caller.ok() || caller->kind != tls::Principal::Kind::kUser) {
    return grpc::Status(
        grpc::StatusCode::PERMISSION_DENIED,
        "this node serves users only (residency://user/<owner>)");
  }
  *stub = StubFor(caller->name);
  if (*stub == nullptr) {
    return grpc::Status(grpc::StatusCode::PERMISSION_DENIED,
                        absl::StrCat("no way to the node as ", caller->uri));
  }
  return grpc::Status::OK;
}

grpc::Status TamperingNode::Put(
    grpc::ServerContext* context,
    grpc::ServerReader<residency::v1::PutRequest>* reader,
    residency::v1::PutResponse* response) {
  StorageNode::Stub* stub = nullptr;
  if (grpc::Status s = CallerStub(context, &stub); !s.ok()) return s;
  std::unique_ptr<grpc::ClientContext> forward =
      grpc::ClientContext::FromServerContext(*context);
  auto writer = stub->Put(forward.get(), response);
  residency::v1::PutRequest message;
  while (reader->Read(&message)) {
    if (!writer->Write(message)) break;
  }
  writer->WritesDone();
  return writer->Finish();
}

grpc::Status TamperingNode::Get(grpc::ServerContext* context,
                                const GetRequest* request,
                                grpc::ServerWriter<GetResponse>* writer) {
  StorageNode::Stub* stub = nullptr;
  if (grpc::Status s = CallerStub(context, &stub); !s.ok()) return s;
  Tampering tampering;
  {
    std::lock_guard<std::mutex> lock(mu_);
    if (plan_) tampering = plan_(request->object());
  }
  const Mode mode = tampering.mode;
  // What is fetched for the header and for the ciphertext served.
  GetRequest served = *request;
  GetRequest other = *request;
  StorageNode::Stub* other_stub = stub;
  switch (mode) {
    case Mode::kOlderVersion:
    case Mode::kOlderRelabelled:
    case Mode::kOtherOwner:
      *served.mutable_object() = tampering.source;
      if (!tampering.source.owner().empty()) {
        stub = StubFor(tampering.source.owner());
      }
      break;
    case Mode::kSwapCiphertext:
      *other.mutable_object() = tampering.source;
      if (!tampering.source.owner().empty()) {
        other_stub = StubFor(tampering.source.owner());
      }
      break;
    default:
      break;
  }
  if (stub == nullptr || other_stub == nullptr) {
    return grpc::Status(grpc::StatusCode::INTERNAL,
                        "the insider cannot reach the source object's owner");
  }
  GetResponse::Start start;
  std::string data;
  if (grpc::Status s = Fetch(context, *stub, served, &start, &data); !s.ok()) {
    return s;
  }
  if (mode == Mode::kSwapCiphertext) {
    GetResponse::Start unused;
    std::string swapped;
    if (grpc::Status s = Fetch(context, *other_stub, other, &unused, &swapped);
        !s.ok()) {
      return grpc::Status(grpc::StatusCode::INTERNAL,
                          absl::StrCat("the insider has no object to swap in: ",
                                       s.error_message()));
    }
    data = std::move(swapped);
    start.set_ciphertext_length(data.size());
  }
  if (mode == Mode::kFlipBit && !data.empty()) data[data.size() / 2] ^= 0x04;
  if (mode == Mode::kTruncate) {
    data.resize(data.size() - std::min<size_t>(20, data.size()));
    start.set_ciphertext_length(data.size());
  }
  if (mode == Mode::kOlderRelabelled && request->object().version() != 0) {
    start.mutable_header()->mutable_object()->set_version(
        request->object().version());
  }
  GetResponse message;
  *message.mutable_start() = start;
  if (!writer->Write(message)) {
    return grpc::Status(grpc::StatusCode::CANCELLED, "the reader went away");
  }
  for (size_t at = 0; at < data.size(); at += kMessageBytes) {
    message.set_data(data.substr(at, kMessageBytes));
    if (!writer->Write(message)) {
      return grpc::Status(grpc::StatusCode::CANCELLED, "the reader went away");
    }
  }
  return grpc::Status::OK;
}

grpc::Status TamperingNode::Head(grpc::ServerContext* context,
                                 const residency::v1::HeadRequest* request,
                                 residency::v1::HeadResponse* response) {
  StorageNode::Stub* stub = nullptr;
  if (grpc::Status s = CallerStub(context, &stub); !s.ok()) return s;
  std::unique_ptr<grpc::ClientContext> forward =
      grpc::ClientContext::FromServerContext(*context);
  return stub->Head(forward.get(), *request, response);
}

grpc::Status TamperingNode::List(grpc::ServerContext* context,
                                 const residency::v1::ListRequest* request,
                                 residency::v1::ListResponse* response) {
  StorageNode::Stub* stub = nullptr;
  if (grpc::Status s = CallerStub(context, &stub); !s.ok()) return s;
  std::unique_ptr<grpc::ClientContext> forward =
      grpc::ClientContext::FromServerContext(*context);
  return stub->List(forward.get(), *request, response);
}

grpc::Status TamperingNode::Delete(grpc::ServerContext* context,
                                   const residency::v1::DeleteRequest* request,
                                   residency::v1::DeleteResponse* response) {
  StorageNode::Stub* stub = nullptr;
  if (grpc::Status s = CallerStub(context, &stub); !s.ok()) return s;
  std::unique_ptr<grpc::ClientContext> forward =
      grpc::ClientContext::FromServerContext(*context);
  return stub->Delete(forward.get(), *request, response);
}

grpc::Status TamperingNode::Stats(grpc::ServerContext* context,
                                  const residency::v1::StatsRequest* request,
                                  residency::v1::StatsResponse* response) {
  StorageNode::Stub* stub = nullptr;
  if (grpc::Status s = CallerStub(context, &stub); !s.ok()) return s;
  std::unique_ptr<grpc::ClientContext> forward =
      grpc::ClientContext::FromServerContext(*context);
  return stub->Stats(forward.get(), *request, response);
}

}  // namespace residency::sim
