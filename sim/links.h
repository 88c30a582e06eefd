#ifndef RESIDENCY_SIM_LINKS_H_
#define RESIDENCY_SIM_LINKS_H_

// The network between jurisdictions (World.links): every channel a party
// opens to a service goes through the link between their jurisdictions.

#include <grpcpp/grpcpp.h>

#include <atomic>
#include <cstdint>
#include <memory>
#include <string>
#include <vector>

#include "absl/status/statusor.h"
#include "absl/time/time.h"
#include "residency/v1/scenario.pb.h"
#include "sim/tap_stats.h"
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
//    window [start_ms, end_ms), or, for a window that names a phase, the
//    time since PhaseBegins(that phase) is, fails it UNAVAILABLE ("link
//    CN-US partitioned ...") without it reaching the server;
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
// Taps: Tap() arms a tap on one link, which from then on records what
// crosses it (TapStats: calls per method, message sizes, timing, and, from
// inside the messages, the owners and object versions they name, the data
// keys in responses, and whether any message contains a given canary) until
// Untap() hands the record over. The tap reads the serialized messages the
// interceptor sees, before TLS (see TapStats for what a real tap sees).
// Responses are read only for methods of services compiled into this
// binary, as for response_bytes. Tapping costs a copy and a scan of every
// message on the link; an untapped link pays nothing.
//
// Thread-safe. Channels may outlive this object.
//
// Example:
//   Links links(world, seed);
//   auto channel = links.Channel("CN", "US", address, material);
//   links.Start();  // as the first phase begins
//   links.Tap("CN", "US", canary);
//   ... calls on *channel ...
//   absl::StatusOr<TapStats> tapped = links.Untap("CN", "US");
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
  // The phase named `phase` begins now: windows that name it count from
  // here (and are in force from here on). The engine calls it as each
  // phase begins.
  void PhaseBegins(const std::string& phase);
  // Time since the latest Start() (or construction): the clock partition
  // windows and taps count on.
  absl::Duration Elapsed() const;

  // How the stretch of Elapsed() time from `begin` to `end` (an operation's
  // start and finish) meets the partition windows of the link between
  // `from` and `to`: kWholly when one window holds all of it (every call
  // made in it failed), kPartly when it meets a window otherwise, kNone
  // when it meets none (and for a perfect link).
  enum class Overlap { kNone, kPartly, kWholly };
  Overlap PartitionOverlap(const std::string& from, const std::string& to,
                           absl::Duration begin, absl::Duration end) const;

  // An mTLS channel (tls::MakeChannelCredentials, 8 MiB receive limit) from
  // a party in jurisdiction `from` to the service at `address` in
  // jurisdiction `to`, through the link between them. INVALID_ARGUMENT for
  // an empty address or invalid material.
  absl::StatusOr<std::shared_ptr<grpc::Channel>> Channel(
      const std::string& from, const std::string& to,
      const std::string& address, const tls::TlsMaterial& material);

  // One entry per World.links entry, in the same order.
  std::vector<LinkStats> Stats() const;

  // Arms a tap on the link between `a` and `b` (either order; the first
  // World.links entry joining them): calls that start from now on are
  // recorded, and their messages are scanned for `canary` (empty: not
  // scanned). NOT_FOUND when World.links has no such link (a perfect link
  // has no interceptor to tap: give the pair a LinkSpec, latency 0 if need
  // be); FAILED_PRECONDITION when that link is tapped already.
  absl::Status Tap(const std::string& a, const std::string& b,
                   const std::string& canary);
  // Disarms the tap on the link between `a` and `b` and returns what it
  // recorded; NOT_FOUND when none is armed. The record is taken as it
  // stands: what calls still under way do afterwards is not in it.
  absl::StatusOr<TapStats> Untap(const std::string& a, const std::string& b);
  // Disarms every tap, returning their records in World.links order.
  std::vector<TapStats> UntapAll();

 private:
  // The link `from` and `to` cross, or nullptr for a perfect one.
  std::shared_ptr<internal::LinkState> Find(const std::string& from,
                                            const std::string& to) const;

  std::vector<std::shared_ptr<internal::LinkState>> links_;
  // Clock origin of Elapsed() (steady_clock ticks), as in every LinkState.
  std::atomic<int64_t> start_{0};
};

}  // namespace residency::sim

#endif  // RESIDENCY_SIM_LINKS_H_
