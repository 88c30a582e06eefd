#include "sim/links.h"

namespace residency::sim {

Links::Links(const residency::v1::World& world, uint64_t seed)
    : world_(world), seed_(seed) {}

absl::StatusOr<std::shared_ptr<grpc::Channel>> Links::Channel(
    const std::string& from, const std::string& to, const std::string& address,
    const tls::TlsMaterial& material) {
  (void)from;
  (void)to;
  return tls::MakeChannel(address, material,
                          {.max_receive_message_bytes = 8 << 20});
}

}  // namespace residency::sim
