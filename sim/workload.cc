// Users' workloads through the real client library.
#include <algorithm>
#include <atomic>
#include <filesystem>
#include <fstream>
#include <optional>
#include <set>
#include <sstream>
#include <thread>
#include <vector>

#include "absl/strings/str_cat.h"
#include "absl/time/clock.h"
#include "sim/phases.h"

namespace residency::sim {
namespace {

namespace fs = std::filesystem;

// Runs `fn(user)` for every user, `concurrency` users at a time.
template <typename Fn>
void ForEachUser(World& world, uint32_t concurrency, Fn&& fn) {
  std::vector<User>& users = world.users();
  std::atomic<size_t> next{0};
  std::vector<std::thread> threads;
  const size_t n = std::max<uint32_t>(1, concurrency);
  for (size_t t = 0; t < std::min(n, users.size()); ++t) {
    threads.emplace_back([&] {
      for (size_t i; (i = next.fetch_add(1)) < users.size();) fn(users[i]);
    });
  }
  for (std::thread& t : threads) t.join();
}

// provider_plaintext: the provider's own services keep what users store
// readable, beside the node's store.
void KeepPlaintextCopy(World& world, const std::string& node, const User& user,
                       const std::string& id, const std::string& data) {
  if (!world.NodeSpec(node).keeps_plaintext()) return;
  const std::string dir = world.PlaintextDir(node) + "/" + user.name;
  fs::create_directories(dir);
  std::ofstream(dir + "/" + id, std::ios::binary) << data;
}

absl::Status PutAll(const residency::v1::Workload& workload, World& world,
                    Ledger& ledger) {
  const uint32_t count = world.scenario().population().objects_per_user();
  // The workload's node, else the population's: a user may store with two
  // providers, and keeps one record per node and object.
  const std::string node = workload.storage_node().empty()
                               ? world.scenario().population().storage_node()
                               : workload.storage_node();
  if (absl::Status s = world.StorageNode(node).status(); !s.ok()) return s;
  std::atomic<uint64_t> done{0};
  const uint64_t total = uint64_t{count} * world.users().size();
  ForEachUser(world, workload.concurrency(), [&](User& user) {
    absl::StatusOr<client::Client*> client =
        world.ClientFor(user, node, CacheOf(workload));
    for (uint32_t k = 0; k < count; ++k) {
      const std::string id = absl::StrCat("obj-", k);
      // This user's record of the object on this node, if any. Only this
      // thread changes the user's records.
      auto known = std::find_if(
          user.objects.begin(), user.objects.end(),
          [&](const Truth& t) { return t.node == node && t.object_id == id; });
      const size_t slot = static_cast<size_t>(known - user.objects.begin());
      const uint64_t version =
          known != user.objects.end() ? known->version + 1 : 1;
      const std::string data = world.Content(user.name, k, version);
      std::istringstream in(data);
      const absl::Time start = absl::Now();
      absl::StatusOr<residency::v1::ObjectRef> stored =
          client.ok()
              ? (*client)->Put(id, in, data.size())
              : absl::StatusOr<residency::v1::ObjectRef>(client.status());
      ledger.Record("put", stored.status(), absl::Now() - start);
      if (stored.ok()) {
        Truth truth{user.name,   id,           stored->version(),
                    data.size(), Sha256(data), node};
        ledger.Update([&](Report&) {
          if (slot < user.objects.size()) {
            user.objects[slot] = truth;
          } else {
            user.objects.push_back(truth);
          }
        });
        KeepPlaintextCopy(world, node, user, id, data);
      }
      const uint64_t n = ++done;
      if (n % 50 == 0 || n == total) {
        ledger.Progress(absl::StrCat("  put ", n, "/", total, " objects"));
      }
    }
  });
  ledger.Update([&](Report& report) {
    for (const User& user : world.users()) {
      // The same object version stored with two providers is one piece of
      // the user's data, as exposure (Ledger::Exposed) counts it.
      std::set<std::string> counted;
      uint64_t bytes = 0;
      for (const Truth& t : user.objects) {
        const std::string key =
            absl::StrCat(t.object_id, "/", t.version, "/", t.sha256);
        if (counted.insert(key).second) bytes += t.size;
      }
      report.user_bytes[user.name] = bytes;
    }
  });
  return absl::OkStatus();
}

absl::Status GetAll(const residency::v1::Workload& workload, World& world,
                    Ledger& ledger) {
  ForEachUser(world, workload.concurrency(), [&](User& user) {
    for (const Truth& truth : user.objects) {
      std::ostringstream out;
      const absl::Time start = absl::Now();
      absl::StatusOr<client::Client*> client =
          world.ClientFor(user, truth.node, CacheOf(workload));
      absl::StatusOr<residency::v1::ObjectHeader> header =
          client.ok()
              ? (*client)->Get(truth.object_id, 0, out)
              : absl::StatusOr<residency::v1::ObjectHeader>(client.status());
      ledger.Record("get", header.status(), absl::Now() - start);
      if (header.ok() && Sha256(out.str()) != truth.sha256) {
        ledger.Update([](Report& report) { ++report.wrong_plaintext; });
      }
    }
  });
  return absl::OkStatus();
}

}  // namespace

std::optional<uint32_t> CacheOf(const residency::v1::Workload& workload) {
  if (workload.data_key_cache() == 0) return std::nullopt;
  return workload.data_key_cache();
}

absl::Status RunWorkload(const residency::v1::Workload& workload, World& world,
                         Ledger& ledger) {
  switch (workload.kind()) {
    case residency::v1::Workload::PUT_ALL:
      return PutAll(workload, world, ledger);
    case residency::v1::Workload::GET_ALL:
      return GetAll(workload, world, ledger);
    default:
      return absl::UnimplementedError(absl::StrCat(
          "workload ", residency::v1::Workload::Kind_Name(workload.kind()),
          " is not implemented by the simulator yet"));
  }
}

}  // namespace residency::sim
