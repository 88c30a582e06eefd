// The MIXED workload: users read and write continuously for a while, and
// the report gets each operation and the availability over time.
#include <algorithm>
#include <cmath>
#include <filesystem>
#include <fstream>
#include <optional>
#include <random>
#include <set>
#include <sstream>
#include <thread>
#include <vector>

#include "absl/strings/str_cat.h"
#include "absl/strings/string_view.h"
#include "absl/time/clock.h"
#include "sim/phases.h"

namespace residency::sim {
namespace {

namespace fs = std::filesystem;

// Each user starts an operation at most this often: a cached read takes a
// few milliseconds, and users who never pause would measure the machine's
// two cores rather than the link.
constexpr absl::Duration kOpInterval = absl::Milliseconds(50);
// Share of operations that are reads (the rest write a new version).
constexpr uint64_t kReadPercent = 80;
constexpr double kBucketMs = 250;

// FNV-1a: a string hash that is the same on every standard library.
uint64_t Fnv1a(absl::string_view s) {
  uint64_t h = 0xcbf29ce484222325ull;
  for (unsigned char c : s) {
    h ^= c;
    h *= 0x100000001b3ull;
  }
  return h;
}

// As PUT_ALL does (workload.cc): a provider that keeps plaintext keeps a
// readable copy of what users store on its node.
void KeepPlaintextCopy(World& world, const std::string& node, const User& user,
                       const std::string& id, const std::string& data) {
  if (!world.NodeSpec(node).keeps_plaintext()) return;
  const std::string dir = world.PlaintextDir(node) + "/" + user.name;
  fs::create_directories(dir);
  std::ofstream(dir + "/" + id, std::ios::binary) << data;
}

// Operations of one kind, by how they met the partition windows of the
// links they cross (Links::Overlap: none, partly, wholly).
struct Split {
  uint64_t ok[3] = {0, 0, 0};
  uint64_t failed[3] = {0, 0, 0};
};

// Metric name stems by Links::Overlap.
constexpr const char* kClass[3] = {"outside_partition", "at_partition_edge",
                                   "during_partition"};

// What one user thread saw.
struct Tally {
  std::vector<TimelineBucket> buckets;
  Split gets, puts;
};

// ops_<class>{op=O}, ok_<class>{op=O} and, when there were any,
// availability_<class>{op=O}, summed over phases of the same name.
void AddSplit(Report& report, const std::string& op, const Split& s) {
  for (int c = 0; c < 3; ++c) {
    const auto label = [&](absl::string_view stem) {
      return absl::StrCat(stem, "_", kClass[c], "{op=", op, "}");
    };
    double& ops = report.extra[label("ops")];
    double& ok = report.extra[label("ok")];
    ops += s.ok[c] + s.failed[c];
    ok += s.ok[c];
    if (ops > 0) report.extra[label("availability")] = ok / ops;
  }
}

}  // namespace

absl::Status RunMixed(const std::string& label,
                      const residency::v1::Workload& workload, World& world,
                      Ledger& ledger) {
  const auto& population = world.scenario().population();
  const std::optional<uint32_t> cache = CacheOf(workload);
  const std::string get_op = "get@" + label;
  const std::string put_op = "put@" + label;
  const std::string new_node = workload.storage_node().empty()
                                   ? population.storage_node()
                                   : workload.storage_node();
  const uint32_t objects_per_user =
      std::max<uint32_t>(1, population.objects_per_user());

  // The jurisdictions an operation on `node` reaches: the node's and every
  // key service's.
  std::set<std::string> key_jurisdictions;
  for (const std::string& ks : population.key_services()) {
    absl::StatusOr<const Endpoint*> endpoint = world.KeyService(ks);
    if (!endpoint.ok()) return endpoint.status();
    key_jurisdictions.insert((*endpoint)->jurisdiction);
  }
  // How [begin, end) met the partitions of the links an operation on
  // `node` crosses: the worst of them.
  const auto overlap = [&](const std::string& node, absl::Duration begin,
                           absl::Duration end) {
    std::set<std::string> reached = key_jurisdictions;
    absl::StatusOr<const Endpoint*> endpoint = world.StorageNode(node);
    if (endpoint.ok()) reached.insert((*endpoint)->jurisdiction);
    Links::Overlap worst = Links::Overlap::kNone;
    for (const std::string& j : reached) {
      worst = std::max(worst, world.links().PartitionOverlap(
                                  population.jurisdiction(), j, begin, end));
    }
    return worst;
  };

  // Every client the phase uses, made now, one user after another: Links
  // draws each channel's randomness from the order channels are made.
  for (User& user : world.users()) {
    std::set<std::string> nodes = {new_node};
    for (const Truth& t : user.objects) nodes.insert(t.node);
    for (const std::string& node : nodes) {
      absl::StatusOr<client::Client*> client =
          world.ClientFor(user, node, cache);
      if (!client.ok()) {
        return absl::Status(client.status().code(),
                            absl::StrCat(user.name, "'s client for ", node,
                                         ": ", client.status().message()));
      }
    }
  }

  std::vector<User>& users = world.users();
  const size_t thread_count = std::min<size_t>(
      std::max<uint32_t>(1, workload.concurrency()), users.size());
  const size_t bucket_count = std::max<size_t>(
      1, static_cast<size_t>(std::ceil(workload.duration_ms() / kBucketMs)));
  std::vector<Tally> tallies(thread_count);
  for (Tally& t : tallies) t.buckets.resize(bucket_count);
  const double start_ms = absl::ToDoubleMilliseconds(world.links().Elapsed());
  const absl::Time start = absl::Now();
  const absl::Time end = start + absl::Milliseconds(workload.duration_ms());

  // Thread t runs users t, t + thread_count, ... in turn, one operation
  // each, every user with its own choice sequence from the seed.
  const auto run = [&](size_t t) {
    struct Player {
      User* user;
      std::mt19937_64 rng;
    };
    std::vector<Player> players;
    for (size_t i = t; i < users.size(); i += thread_count) {
      const uint64_t who = Fnv1a(users[i].name), what = Fnv1a(label);
      std::seed_seq seq{static_cast<uint32_t>(world.seed()),
                        static_cast<uint32_t>(world.seed() >> 32),
                        static_cast<uint32_t>(who),
                        static_cast<uint32_t>(who >> 32),
                        static_cast<uint32_t>(what),
                        static_cast<uint32_t>(what >> 32)};
      players.push_back(Player{&users[i], std::mt19937_64(seq)});
    }
    Tally& tally = tallies[t];
    for (size_t turn = 0;; ++turn) {
      const absl::Time op_start = absl::Now();
      if (op_start >= end) break;
      const absl::Duration since_first_phase = world.links().Elapsed();
      Player& player = players[turn % players.size()];
      User& user = *player.user;
      // Two draws per operation, whatever it meets.
      const uint64_t kind_draw = player.rng();
      const uint64_t object_draw = player.rng();
      const bool read = !user.objects.empty() && kind_draw % 100 < kReadPercent;
      const size_t bucket = std::min(
          bucket_count - 1,
          static_cast<size_t>(absl::ToDoubleMilliseconds(op_start - start) /
                              kBucketMs));
      TimelineBucket& b = tally.buckets[bucket];
      if (read) {
        const Truth truth = user.objects[object_draw % user.objects.size()];
        std::ostringstream out;
        absl::StatusOr<client::Client*> client =
            world.ClientFor(user, truth.node, cache);
        absl::StatusOr<residency::v1::ObjectHeader> header =
            client.ok()
                ? (*client)->Get(truth.object_id, truth.version, out)
                : absl::StatusOr<residency::v1::ObjectHeader>(client.status());
        ledger.Record(get_op, header.status(), absl::Now() - op_start);
        const int met = static_cast<int>(
            overlap(truth.node, since_first_phase, world.links().Elapsed()));
        ++(header.ok() ? b.get_ok : b.get_failed);
        ++(header.ok() ? tally.gets.ok : tally.gets.failed)[met];
        if (header.ok() && Sha256(out.str()) != truth.sha256) {
          ledger.Update([](Report& report) { ++report.wrong_plaintext; });
        }
      } else {
        // A new version of one of the user's objects, or the user's next
        // object while it has fewer than objects_per_user.
        size_t k = object_draw % objects_per_user;
        if (k >= user.objects.size()) k = user.objects.size();
        const bool exists = k < user.objects.size();
        const std::string node = exists ? user.objects[k].node : new_node;
        const std::string id =
            exists ? user.objects[k].object_id : absl::StrCat("obj-", k);
        const uint64_t version = exists ? user.objects[k].version + 1 : 1;
        const std::string data =
            world.Content(user.name, static_cast<uint32_t>(k), version);
        std::istringstream in(data);
        absl::StatusOr<client::Client*> client =
            world.ClientFor(user, node, cache);
        absl::StatusOr<residency::v1::ObjectRef> stored =
            client.ok()
                ? (*client)->Put(id, in, data.size())
                : absl::StatusOr<residency::v1::ObjectRef>(client.status());
        ledger.Record(put_op, stored.status(), absl::Now() - op_start);
        const int met = static_cast<int>(
            overlap(node, since_first_phase, world.links().Elapsed()));
        ++(stored.ok() ? b.put_ok : b.put_failed);
        ++(stored.ok() ? tally.puts.ok : tally.puts.failed)[met];
        if (stored.ok()) {
          Truth truth{user.name,   id,           stored->version(),
                      data.size(), Sha256(data), node};
          ledger.Update([&](Report&) {
            if (exists) {
              user.objects[k] = truth;
            } else {
              user.objects.push_back(truth);
            }
          });
          KeepPlaintextCopy(world, node, user, id, data);
        }
      }
      const absl::Time next = op_start + kOpInterval;
      if (absl::Now() < next) absl::SleepFor(next - absl::Now());
    }
  };
  std::vector<std::thread> threads;
  for (size_t t = 0; t < thread_count; ++t) threads.emplace_back(run, t);
  for (std::thread& t : threads) t.join();

  Timeline timeline;
  timeline.phase = label;
  timeline.get_op = get_op;
  timeline.put_op = put_op;
  timeline.start_ms = start_ms;
  timeline.bucket_ms = kBucketMs;
  timeline.buckets.resize(bucket_count);
  Split gets, puts;
  for (const Tally& tally : tallies) {
    for (size_t i = 0; i < bucket_count; ++i) {
      TimelineBucket& to = timeline.buckets[i];
      const TimelineBucket& from = tally.buckets[i];
      to.get_ok += from.get_ok;
      to.get_failed += from.get_failed;
      to.put_ok += from.put_ok;
      to.put_failed += from.put_failed;
    }
    for (int c = 0; c < 3; ++c) {
      gets.ok[c] += tally.gets.ok[c];
      gets.failed[c] += tally.gets.failed[c];
      puts.ok[c] += tally.puts.ok[c];
      puts.failed[c] += tally.puts.failed[c];
    }
  }
  // A bucket is partitioned when it meets a window of a link the phase's
  // operations cross (any node users read from or write to).
  std::set<std::string> nodes = {new_node};
  for (const User& user : users) {
    for (const Truth& t : user.objects) nodes.insert(t.node);
  }
  for (size_t i = 0; i < bucket_count; ++i) {
    const absl::Duration from =
        absl::Milliseconds(start_ms + static_cast<double>(i) * kBucketMs);
    for (const std::string& node : nodes) {
      // PartitionOverlap's end is inclusive: stop short of the next bucket.
      if (overlap(node, from,
                  from + absl::Milliseconds(kBucketMs) -
                      absl::Microseconds(1)) != Links::Overlap::kNone) {
        timeline.buckets[i].partitioned = true;
      }
    }
  }
  uint64_t reads = 0, read_failures = 0, writes = 0, write_failures = 0;
  for (const TimelineBucket& b : timeline.buckets) {
    reads += b.get_ok + b.get_failed;
    read_failures += b.get_failed;
    writes += b.put_ok + b.put_failed;
    write_failures += b.put_failed;
  }
  ledger.Update([&](Report& report) {
    report.timelines.push_back(std::move(timeline));
    AddSplit(report, get_op, gets);
    AddSplit(report, put_op, puts);
    for (const User& user : world.users()) {
      uint64_t bytes = 0;
      for (const Truth& t : user.objects) bytes += t.size;
      report.user_bytes[user.name] = bytes;
    }
  });
  ledger.Progress(absl::StrCat("  ", reads, " reads (", read_failures,
                               " failed), ", writes, " writes (",
                               write_failures, " failed)"));
  return absl::OkStatus();
}

}  // namespace residency::sim
