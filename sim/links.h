#ifndef RESIDENCY_SIM_LINKS_H_
#define RESIDENCY_SIM_LINKS_H_

// The network between jurisdictions (World.links): every channel a party
// opens to a service goes through the link between their jurisdictions.

#include <grpcpp/grpcpp.h>

#include <cstdint>
#include <memory>
#include <string>

#include "absl/status/statusor.h"
#include "residency/v1/scenario.pb.h"
#include "tls/credentials.h"

namespace residency::sim {

class Links {
 public:
  Links(const residency::v1::World& world, uint64_t seed);

  // An mTLS channel from a party in jurisdiction `from` to the service at
  // `address` in jurisdiction `to`.
  absl::StatusOr<std::shared_ptr<grpc::Channel>> Channel(
      const std::string& from, const std::string& to,
      const std::string& address, const tls::TlsMaterial& material);

 private:
  const residency::v1::World& world_;
  const uint64_t seed_;
};

}  // namespace residency::sim

#endif  // RESIDENCY_SIM_LINKS_H_
