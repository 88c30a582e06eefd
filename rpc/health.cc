#include "rpc/health.h"

#include <grpcpp/generic/generic_stub.h>

#include <string>
#include <vector>

#include "absl/synchronization/notification.h"
#include "rpc/status.h"

namespace residency::rpc {

absl::StatusOr<bool> IsServing(const std::shared_ptr<grpc::Channel>& channel,
                               absl::string_view service,
                               absl::Duration deadline) {
  if (service.size() > 127) {
    return absl::InvalidArgumentError("service name too long to ask about");
  }
  // HealthCheckRequest{service = 1}: tag 0x0a, one-byte length, the name.
  std::string request_bytes("\x0a", 1);
  request_bytes.push_back(static_cast<char>(service.size()));
  request_bytes.append(service.data(), service.size());
  grpc::Slice slice(request_bytes);
  grpc::ByteBuffer request(&slice, 1);
  grpc::ByteBuffer response;
  grpc::ClientContext context;
  context.set_deadline(absl::ToChronoTime(absl::Now() + deadline));
  grpc::GenericStub stub(channel);
  absl::Notification done;
  grpc::Status status;
  stub.UnaryCall(&context, "/grpc.health.v1.Health/Check", grpc::StubOptions(),
                 &request, &response, [&](grpc::Status s) {
                   status = std::move(s);
                   done.Notify();
                 });
  done.WaitForNotification();
  if (!status.ok()) return FromGrpcStatus(status);
  std::vector<grpc::Slice> slices;
  if (!response.Dump(&slices).ok()) {
    return absl::InternalError("cannot read the health check response");
  }
  std::string bytes;
  for (const grpc::Slice& s : slices) {
    bytes.append(reinterpret_cast<const char*>(s.begin()), s.size());
  }
  // HealthCheckResponse{status = 1}: SERVING is 1; an empty message is
  // UNKNOWN (0).
  return bytes == std::string("\x08\x01", 2);
}

}  // namespace residency::rpc
