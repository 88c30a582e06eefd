#ifndef RESIDENCY_RPC_HEALTH_H_
#define RESIDENCY_RPC_HEALTH_H_

#include <grpcpp/grpcpp.h>

#include <memory>

#include "absl/status/statusor.h"
#include "absl/strings/string_view.h"
#include "absl/time/time.h"

namespace residency::rpc {

// Asks the standard health service (grpc.health.v1.Health/Check) whether
// `service` is SERVING. The messages are encoded by hand (field 1 of each),
// since Debian ships no generated health stubs. Returns the call's error
// when the server cannot be asked; NOT_FOUND for an unknown service name.
absl::StatusOr<bool> IsServing(const std::shared_ptr<grpc::Channel>& channel,
                               absl::string_view service,
                               absl::Duration deadline = absl::Seconds(10));

}  // namespace residency::rpc

#endif  // RESIDENCY_RPC_HEALTH_H_
