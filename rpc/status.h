#ifndef RESIDENCY_RPC_STATUS_H_
#define RESIDENCY_RPC_STATUS_H_

#include <grpcpp/support/status.h>

#include "absl/status/status.h"

namespace residency::rpc {

// The one place where absl::Status and grpc::Status meet. Service adapters
// return ToGrpcStatus(core_result) and clients turn a failed call into an
// absl::Status with FromGrpcStatus.
//
// Codes map 1:1 (both follow google.rpc.Code, so INVALID_ARGUMENT stays
// INVALID_ARGUMENT) and the message is kept as it is. Status payloads and
// gRPC error details are not carried across. A code outside the canonical
// range 0..16 becomes UNKNOWN, with the message kept.
grpc::Status ToGrpcStatus(const absl::Status& status);
absl::Status FromGrpcStatus(const grpc::Status& status);

}  // namespace residency::rpc

#endif  // RESIDENCY_RPC_STATUS_H_
