#ifndef RESIDENCY_SIM_TAP_STATS_H_
#define RESIDENCY_SIM_TAP_STATS_H_

// What a network tap on one link recorded (Links::Tap, the `tap` phase):
// plain data, shared by the links that record it and the report that shows
// it.

#include <cstdint>
#include <limits>
#include <map>
#include <string>
#include <vector>

namespace residency::sim {

// Calls of one method across a tapped link.
struct TapMethodStats {
  uint64_t calls = 0;
  // Serialized protobuf messages each way and their bytes.
  uint64_t request_messages = 0;
  uint64_t request_bytes = 0;
  uint64_t response_messages = 0;
  uint64_t response_bytes = 0;
  // The smallest and largest message each way (0 when none).
  uint64_t min_request_bytes = 0;
  uint64_t max_request_bytes = 0;
  uint64_t min_response_bytes = 0;
  uint64_t max_response_bytes = 0;
};

// When a tap saw an owner named.
struct TapOwnerStats {
  uint64_t calls = 0;   // Calls whose messages named the owner.
  double first_ms = 0;  // Since Links::Start().
  double last_ms = 0;
};

// What crossed one link while a tap was armed on it. The tap sits where the
// link's interceptor does: it sees each call's method name and its
// serialized protobuf messages, before TLS. A real tap on the wire sees TLS
// records instead: the sizes (plus framing) and the timing of the same
// messages, and which connection carried them, but none of their content.
// So everything below that reads inside a message (owners, object
// versions, data keys, the canary) is what TLS hides, and a canary found
// here is a strict finding: plaintext crossed even before TLS.
//
// Only calls that crossed are recorded: a call the link failed (partition,
// loss) never left its party.
struct TapStats {
  // Width of the calls_over_time buckets.
  static constexpr double kBucketMs = 250;
  // Upper bounds of the message size histogram: 64 B, 256 B, ... 4 MiB,
  // then everything larger.
  static std::vector<uint64_t> SizeBounds() {
    std::vector<uint64_t> bounds;
    for (uint64_t b = 64; b <= (uint64_t{4} << 20); b *= 4) bounds.push_back(b);
    bounds.push_back(std::numeric_limits<uint64_t>::max());
    return bounds;
  }

  std::string link;  // "CN-US", as World.links names it.
  // When the tap was armed and when it was collected, since Links::Start().
  double start_ms = 0;
  double end_ms = 0;
  // By full method name ("/residency.v1.KeyService/Unwrap").
  std::map<std::string, TapMethodStats> methods;
  // Messages (requests and responses) by size: the smallest bound of
  // SizeBounds() that is >= the size -> count.
  std::map<uint64_t, uint64_t> message_sizes;
  // Calls started in each kBucketMs from start_ms.
  std::vector<uint64_t> calls_over_time;
  // Channels that made calls: one per party's client per service, each its
  // own connection (a real tap ties a connection to its source address).
  uint64_t connections = 0;

  // Inside the messages (hidden by TLS from a real tap):
  // Messages that contained the world's canary (users' plaintext), and
  // their bytes.
  uint64_t canary_hits = 0;
  uint64_t canary_bytes = 0;
  // Owners named by ObjectRef fields (the context of GenerateDataKey and
  // Unwrap, the header of a Put or Get), by owner.
  std::map<std::string, TapOwnerStats> owners;
  // Distinct owner/object/version triples named.
  uint64_t object_versions = 0;
  // Non-empty plaintext_key fields in responses: data keys (or key shares)
  // handed across the link.
  uint64_t data_keys = 0;

  uint64_t calls() const {
    uint64_t n = 0;
    for (const auto& [method, m] : methods) n += m.calls;
    return n;
  }
  uint64_t request_bytes() const {
    uint64_t n = 0;
    for (const auto& [method, m] : methods) n += m.request_bytes;
    return n;
  }
  uint64_t response_bytes() const {
    uint64_t n = 0;
    for (const auto& [method, m] : methods) n += m.response_bytes;
    return n;
  }
};

}  // namespace residency::sim

#endif  // RESIDENCY_SIM_TAP_STATS_H_
