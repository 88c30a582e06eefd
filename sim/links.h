#ifndef RESIDENCY_SIM_LINKS_H_
#define RESIDENCY_SIM_LINKS_H_

// The network between jurisdictions (World.links): every channel a party
// opens to a service goes through the link between their jurisdictions.

#include <grpcpp/grpcpp.h>

#include <cstdint>
#include <memory>
#include <string>
#include <vector>

#include "absl/status/statusor.h"
#include "residency/v1/scenario.pb.h"
#include "tls/credentials.h"

namespace residency::sim {

namespace internal {
struct LinkState;
}  // namespace internal

// What crossed one link (one entry of World.links) since Links was made.
struct LinkStats {
  std::string a;  // The link's ends, as World.links names them.
  std::string b;
  // Calls started across the link, the failed ones included.
  uint64_t calls = 0;
  // Calls failed UNAVAILABLE by the link's `loss`.
  uint64_t lost = 0;
  // Calls failed UNAVAILABLE because they started inside a partition window.
  uint64_t partitioned = 0;
  // Serialized request messages that crossed (protobuf bytes, without
  // gRPC's 5-byte framing or HTTP/2 and TLS overhead).
  uint64_t request_bytes = 0;
  // Serialized response messages that crossed, counted the same way, for
  // methods of services compiled into this binary (residency.v1.*), which
  // must be called through their generated stubs, as the client library
  // and the engine do. Responses of other methods (the generic-stub health
  // check) are not counted.
  uint64_t response_bytes = 0;

  uint64_t failed() const { return lost + partitioned; }
};

// Applies World.links to the calls parties make. A channel between two
// jurisdictions that a LinkSpec joins (in either order) carries a client
// interceptor that, for every call:
//  - partition: if the call starts while the time since Start() is inside a
//    window [start_ms, end_ms), fails it UNAVAILABLE ("link CN-US
//    partitioned ...") without it reaching the server;
//  - loss: otherwise, with probability `loss`, fails it UNAVAILABLE ("lost
//    on link CN-US") without it reaching the server;
//  - latency: otherwise delays the request by latency_ms plus a uniform
//    jitter in [0, jitter_ms] before it is sent, and the response by as
//    much again (a fresh jitter) when it arrives, so a round trip costs
//    2 x latency_ms plus jitter. A stream is delayed once each way (its
//    first response message, or its status, waits), not per message.
// Failed calls fail at once: they pay no latency.
//
// Failing without reaching the server uses gRPC's interceptor hijacking:
// nothing goes to the transport, sends on a stream fail (Write returns
// false), reads find no message, and Finish returns the UNAVAILABLE status.
// This works for unary, client-streaming and server-streaming calls, with
// the sync API and the callback API (both tested).
//
// The delays are sleeps in the hooks. With the sync API (the client
// library's and the engine's) every hook of a call runs on the calling
// thread, so a delay blocks only that caller (links_test checks it). With
// the callback or async API the response delay would hold one of gRPC's
// threads: fine for a health check, not for heavy traffic.
//
// Reproducible: each channel draws its jitter and loss from its own
// std::mt19937_64, seeded from the scenario's seed, the link's index in
// World.links and the channel's ordinal on that link, and each call takes
// three draws whatever its outcome. So the n-th call on a channel meets the
// same fate run after run, however other channels' calls interleave, as
// long as channels are made in the same order and each channel's calls are
// made in the same order (one user thread per channel, as in the engine).
// Partition windows depend on the wall clock, as a partition does.
//
// A pair with no LinkSpec, or a party calling within its own jurisdiction,
// gets a perfect link: a plain channel, no interceptor, not counted. When
// World.links names a pair twice, the first entry is used.
//
// Thread-safe. Channels may outlive this object.
//
// Example:
//   Links links(world, seed);
//   auto channel = links.Channel("CN", "US", address, material);
//   links.Start();  // as the first phase begins
//   ... calls on *channel ...
//   for (const LinkStats& s : links.Stats()) ...
class Links {
 public:
  // The partition clock starts now; Start() restarts it.
  Links(const residency::v1::World& world, uint64_t seed);
  ~Links();

  Links(const Links&) = delete;
  Links& operator=(const Links&) = delete;

  // Partition windows count from the latest call of this (or from
  // construction, if never called). The engine calls it as the first phase
  // begins, so that setting up the world is not partitioned.
  void Start();

  // An mTLS channel (tls::MakeChannelCredentials, 8 MiB receive limit) from
  // a party in jurisdiction `from` to the service at `address` in
  // jurisdiction `to`, through the link between them. INVALID_ARGUMENT for
  // an empty address or invalid material.
  absl::StatusOr<std::shared_ptr<grpc::Channel>> Channel(
      const std::string& from, const std::string& to,
      const std::string& address, const tls::TlsMaterial& material);

  // One entry per World.links entry, in the same order.
  std::vector<LinkStats> Stats() const;

 private:
  // The link `from` and `to` cross, or nullptr for a perfect one.
  std::shared_ptr<internal::LinkState> Find(const std::string& from,
                                            const std::string& to) const;

  std::vector<std::shared_ptr<internal::LinkState>> links_;
};

}  // namespace residency::sim

#endif  // RESIDENCY_SIM_LINKS_H_
