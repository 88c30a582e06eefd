#include "key_service/grpc_service.h"

#include <atomic>
#include <chrono>
#include <string>
#include <system_error>
#include <thread>
#include <utility>

#include "absl/base/thread_annotations.h"
#include "absl/strings/str_cat.h"
#include "absl/synchronization/mutex.h"
#include "crypto/secret_bytes.h"
#include "rpc/status.h"
#include "tls/peer.h"

namespace residency::key_service {
namespace {

using ::residency::v1::ReadAuditLogRequest;
using ::residency::v1::ReadAuditLogResponse;

// Responses that carry key material are wiped once sent; the rest hold
// nothing secret.
void WipeSecrets(residency::v1::GenerateDataKeyResponse* r) {
  crypto::WipeString(r->mutable_plaintext_key());
}
void WipeSecrets(residency::v1::UnwrapResponse* r) {
  crypto::WipeString(r->mutable_plaintext_key());
}
void WipeSecrets(residency::v1::ExportKeyResponse* r) {
  for (auto& v : *r->mutable_versions())
    crypto::WipeString(v.mutable_material());
}
void WipeSecrets(google::protobuf::Message*) {}

template <typename Response>
class UnaryReactor final : public grpc::ServerUnaryReactor {
 public:
  explicit UnaryReactor(Response* response) : response_(response) {}
  void OnDone() override {
    WipeSecrets(response_);
    delete this;
  }

 private:
  Response* const response_;
};

template <typename Request, typename Response>
using Method = void (Custodian::*)(absl::string_view, const Request&, Response*,
                                   Custodian::Done);

template <typename Request, typename Response>
grpc::ServerUnaryReactor* Serve(Custodian* custodian,
                                grpc::CallbackServerContext* context,
                                const Request* request, Response* response,
                                Method<Request, Response> method) {
  auto* reactor = new UnaryReactor<Response>(response);
  absl::StatusOr<tls::Principal> peer = tls::PeerPrincipal(*context);
  if (!peer.ok()) {
    reactor->Finish(rpc::ToGrpcStatus(peer.status()));
    return reactor;
  }
  (custodian->*method)(peer->uri, *request, response,
                       [reactor](absl::Status status) {
                         reactor->Finish(rpc::ToGrpcStatus(status));
                       });
  return reactor;
}

// Streams the audit log from a thread of its own: Custodian::ReadAuditLog
// is blocking, and each item waits for the previous write to finish so at
// most one message is buffered per stream.
class AuditStream final
    : public grpc::ServerWriteReactor<ReadAuditLogResponse> {
 public:
  AuditStream(Custodian* custodian, std::string principal,
              ReadAuditLogRequest request, std::atomic<int>* open_streams)
      : custodian_(custodian),
        principal_(std::move(principal)),
        request_(std::move(request)),
        open_streams_(open_streams) {
    try {
      worker_ = std::thread([this] { Run(); });
    } catch (const std::system_error& e) {
      Finish(grpc::Status(
          grpc::StatusCode::RESOURCE_EXHAUSTED,
          std::string("cannot start the audit stream: ") + e.what()));
    }
  }

  void OnWriteDone(bool ok) override {
    absl::MutexLock lock(&mu_);
    writing_ = false;
    write_ok_ = ok;
  }

  void OnCancel() override {
    absl::MutexLock lock(&mu_);
    cancelled_ = true;
  }

  void OnDone() override {
    // OnDone may run on the worker itself right after its Finish; the
    // worker touches nothing of this object after Finish.
    if (worker_.get_id() == std::this_thread::get_id()) {
      worker_.detach();
    } else if (worker_.joinable()) {
      worker_.join();
    }
    open_streams_->fetch_sub(1, std::memory_order_acq_rel);
    delete this;
  }

 private:
  void Run() {
    absl::Status status = custodian_->ReadAuditLog(
        principal_, request_, [this](const ReadAuditLogResponse& item) {
          absl::MutexLock lock(&mu_);
          if (cancelled_ || !write_ok_) return false;
          current_ = item;
          writing_ = true;
          StartWrite(&current_);
          mu_.Await(absl::Condition(
              +[](AuditStream* s) ABSL_EXCLUSIVE_LOCKS_REQUIRED(s->mu_) {
                return !s->writing_ || s->cancelled_;
              },
              this));
          return !cancelled_ && write_ok_;
        });
    {
      absl::MutexLock lock(&mu_);
      // A write still in flight after cancellation completes on its own;
      // Finish must wait for it.
      mu_.Await(absl::Condition(
          +[](AuditStream* s)
               ABSL_EXCLUSIVE_LOCKS_REQUIRED(s->mu_) { return !s->writing_; },
          this));
    }
    Finish(rpc::ToGrpcStatus(status));
  }

  Custodian* const custodian_;
  const std::string principal_;
  const ReadAuditLogRequest request_;
  std::atomic<int>* const open_streams_;
  std::thread worker_;

  absl::Mutex mu_;
  ReadAuditLogResponse current_ ABSL_GUARDED_BY(mu_);
  bool writing_ ABSL_GUARDED_BY(mu_) = false;
  bool write_ok_ ABSL_GUARDED_BY(mu_) = true;
  bool cancelled_ ABSL_GUARDED_BY(mu_) = false;
};

// Refuses a stream before it starts.
class RefusedStream final
    : public grpc::ServerWriteReactor<ReadAuditLogResponse> {
 public:
  explicit RefusedStream(const absl::Status& status) {
    Finish(rpc::ToGrpcStatus(status));
  }
  void OnDone() override { delete this; }
};

}  // namespace

KeyServiceGrpc::~KeyServiceGrpc() {
  while (open_audit_streams_.load(std::memory_order_acquire) > 0) {
    std::this_thread::sleep_for(std::chrono::milliseconds(1));
  }
}

grpc::ServerUnaryReactor* KeyServiceGrpc::CreateKey(
    grpc::CallbackServerContext* context,
    const residency::v1::CreateKeyRequest* request,
    residency::v1::CreateKeyResponse* response) {
  return Serve(custodian_, context, request, response, &Custodian::CreateKey);
}

grpc::ServerUnaryReactor* KeyServiceGrpc::GenerateDataKey(
    grpc::CallbackServerContext* context,
    const residency::v1::GenerateDataKeyRequest* request,
    residency::v1::GenerateDataKeyResponse* response) {
  return Serve(custodian_, context, request, response,
               &Custodian::GenerateDataKey);
}

grpc::ServerUnaryReactor* KeyServiceGrpc::Unwrap(
    grpc::CallbackServerContext* context,
    const residency::v1::UnwrapRequest* request,
    residency::v1::UnwrapResponse* response) {
  return Serve(custodian_, context, request, response, &Custodian::Unwrap);
}

grpc::ServerUnaryReactor* KeyServiceGrpc::Rewrap(
    grpc::CallbackServerContext* context,
    const residency::v1::RewrapRequest* request,
    residency::v1::RewrapResponse* response) {
  return Serve(custodian_, context, request, response, &Custodian::Rewrap);
}

grpc::ServerUnaryReactor* KeyServiceGrpc::RotateKey(
    grpc::CallbackServerContext* context,
    const residency::v1::RotateKeyRequest* request,
    residency::v1::RotateKeyResponse* response) {
  return Serve(custodian_, context, request, response, &Custodian::RotateKey);
}

grpc::ServerUnaryReactor* KeyServiceGrpc::SetMinDecryptionVersion(
    grpc::CallbackServerContext* context,
    const residency::v1::SetMinDecryptionVersionRequest* request,
    residency::v1::SetMinDecryptionVersionResponse* response) {
  return Serve(custodian_, context, request, response,
               &Custodian::SetMinDecryptionVersion);
}

grpc::ServerUnaryReactor* KeyServiceGrpc::DisableKey(
    grpc::CallbackServerContext* context,
    const residency::v1::DisableKeyRequest* request,
    residency::v1::DisableKeyResponse* response) {
  return Serve(custodian_, context, request, response, &Custodian::DisableKey);
}

grpc::ServerUnaryReactor* KeyServiceGrpc::EnableKey(
    grpc::CallbackServerContext* context,
    const residency::v1::EnableKeyRequest* request,
    residency::v1::EnableKeyResponse* response) {
  return Serve(custodian_, context, request, response, &Custodian::EnableKey);
}

grpc::ServerUnaryReactor* KeyServiceGrpc::DestroyKey(
    grpc::CallbackServerContext* context,
    const residency::v1::DestroyKeyRequest* request,
    residency::v1::DestroyKeyResponse* response) {
  return Serve(custodian_, context, request, response, &Custodian::DestroyKey);
}

grpc::ServerUnaryReactor* KeyServiceGrpc::GetKeyInfo(
    grpc::CallbackServerContext* context,
    const residency::v1::GetKeyInfoRequest* request,
    residency::v1::GetKeyInfoResponse* response) {
  return Serve(custodian_, context, request, response, &Custodian::GetKeyInfo);
}

grpc::ServerUnaryReactor* KeyServiceGrpc::ExportKey(
    grpc::CallbackServerContext* context,
    const residency::v1::ExportKeyRequest* request,
    residency::v1::ExportKeyResponse* response) {
  return Serve(custodian_, context, request, response, &Custodian::ExportKey);
}

grpc::ServerWriteReactor<ReadAuditLogResponse>* KeyServiceGrpc::ReadAuditLog(
    grpc::CallbackServerContext* context, const ReadAuditLogRequest* request) {
  absl::StatusOr<tls::Principal> peer = tls::PeerPrincipal(*context);
  if (!peer.ok()) return new RefusedStream(peer.status());
  if (open_audit_streams_.fetch_add(1) >= kMaxAuditStreams) {
    open_audit_streams_.fetch_sub(1);
    return new RefusedStream(absl::ResourceExhaustedError(
        absl::StrCat("already ", kMaxAuditStreams,
                     " audit log reads in progress; try again later")));
  }
  return new AuditStream(custodian_, peer->uri, *request, &open_audit_streams_);
}

}  // namespace residency::key_service
