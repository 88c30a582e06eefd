#ifndef RESIDENCY_KEY_SERVICE_GRPC_SERVICE_H_
#define RESIDENCY_KEY_SERVICE_GRPC_SERVICE_H_

#include <grpcpp/grpcpp.h>

#include <atomic>

#include "key_service/custodian.h"
#include "residency/v1/key_service.grpc.pb.h"

namespace residency::key_service {

// residency.v1.KeyService over gRPC's callback API: a thin adapter that
// takes the caller's principal from the verified mTLS peer certificate
// (UNAUTHENTICATED without one) and hands the request to the Custodian. A
// unary call holds no thread while its audit entry waits for the group
// commit; the answer goes out from the audit log's callback. Secrets in
// responses are wiped from memory once gRPC is done with them.
//
// ReadAuditLog streams from a thread per read (at most kMaxAuditStreams at
// once); each item waits for the previous write, so a slow reader holds
// one message, not the log.
//
// Thread safety: as Custodian. The custodian must outlive the server.
class KeyServiceGrpc final : public residency::v1::KeyService::CallbackService {
 public:
  explicit KeyServiceGrpc(Custodian* custodian) : custodian_(custodian) {}
  // Destroy only after the server has shut down. Waits until every audit
  // stream's OnDone has let go of the stream counter: gRPC's shutdown
  // already orders that, the wait makes the order explicit in our code.
  ~KeyServiceGrpc() override;

  grpc::ServerUnaryReactor* CreateKey(
      grpc::CallbackServerContext* context,
      const residency::v1::CreateKeyRequest* request,
      residency::v1::CreateKeyResponse* response) override;
  grpc::ServerUnaryReactor* GenerateDataKey(
      grpc::CallbackServerContext* context,
      const residency::v1::GenerateDataKeyRequest* request,
      residency::v1::GenerateDataKeyResponse* response) override;
  grpc::ServerUnaryReactor* Unwrap(
      grpc::CallbackServerContext* context,
      const residency::v1::UnwrapRequest* request,
      residency::v1::UnwrapResponse* response) override;
  grpc::ServerUnaryReactor* Rewrap(
      grpc::CallbackServerContext* context,
      const residency::v1::RewrapRequest* request,
      residency::v1::RewrapResponse* response) override;
  grpc::ServerUnaryReactor* RotateKey(
      grpc::CallbackServerContext* context,
      const residency::v1::RotateKeyRequest* request,
      residency::v1::RotateKeyResponse* response) override;
  grpc::ServerUnaryReactor* SetMinDecryptionVersion(
      grpc::CallbackServerContext* context,
      const residency::v1::SetMinDecryptionVersionRequest* request,
      residency::v1::SetMinDecryptionVersionResponse* response) override;
  grpc::ServerUnaryReactor* DisableKey(
      grpc::CallbackServerContext* context,
      const residency::v1::DisableKeyRequest* request,
      residency::v1::DisableKeyResponse* response) override;
  grpc::ServerUnaryReactor* EnableKey(
      grpc::CallbackServerContext* context,
      const residency::v1::EnableKeyRequest* request,
      residency::v1::EnableKeyResponse* response) override;
  grpc::ServerUnaryReactor* DestroyKey(
      grpc::CallbackServerContext* context,
      const residency::v1::DestroyKeyRequest* request,
      residency::v1::DestroyKeyResponse* response) override;
  grpc::ServerUnaryReactor* GetKeyInfo(
      grpc::CallbackServerContext* context,
      const residency::v1::GetKeyInfoRequest* request,
      residency::v1::GetKeyInfoResponse* response) override;
  grpc::ServerUnaryReactor* ExportKey(
      grpc::CallbackServerContext* context,
      const residency::v1::ExportKeyRequest* request,
      residency::v1::ExportKeyResponse* response) override;
  grpc::ServerWriteReactor<residency::v1::ReadAuditLogResponse>* ReadAuditLog(
      grpc::CallbackServerContext* context,
      const residency::v1::ReadAuditLogRequest* request) override;

 private:
  // Each audit read streams from a thread of its own; more than this many
  // at once are refused with RESOURCE_EXHAUSTED.
  static constexpr int kMaxAuditStreams = 8;

  Custodian* const custodian_;
  std::atomic<int> open_audit_streams_{0};
};

}  // namespace residency::key_service

#endif  // RESIDENCY_KEY_SERVICE_GRPC_SERVICE_H_
