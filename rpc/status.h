#ifndef RESIDENCY_RPC_STATUS_H_
#define RESIDENCY_RPC_STATUS_H_

#include <grpcpp/support/status.h>

#include <cstddef>

#include "absl/status/status.h"
#include "rpc/status_detail.h"

namespace residency::rpc {

// The one place where absl::Status and grpc::Status meet. Service adapters
// return ToGrpcStatus(core_result) and clients turn a failed call into an
// absl::Status with FromGrpcStatus.
//
// Codes map 1:1 (both follow google.rpc.Code, so INVALID_ARGUMENT stays
// INVALID_ARGUMENT) and the message is kept as it is. A code outside the
// canonical range 0..16 becomes UNKNOWN, with the message kept.
//
// The project's own status payloads (residency.v1 messages, see
// status_detail.h) travel too, as the `details` (google.protobuf.Any) of the
// call's status details, a residency.v1.RpcStatus, which is google.rpc.Status
// on the wire. Other payloads are neither sent nor taken: a library's
// payload on a service's status stays in the process. Details from a peer
// that do not parse, or that exceed kMaxDetailsBytes, are dropped: the code
// and message still stand.
grpc::Status ToGrpcStatus(const absl::Status& status);
absl::Status FromGrpcStatus(const grpc::Status& status);

inline constexpr size_t kMaxDetailsBytes = 4096;

}  // namespace residency::rpc

#endif  // RESIDENCY_RPC_STATUS_H_
