// An insider at the storage operator: copies the node's data directory (as
// `cp -r` would while the node runs), learns what the copy holds by opening
// it as the node's own store, and reads whatever plaintext it holds as it
// is. With `tamper`, the insider also stands between the users and the node
// (a TamperingNode in front of the real one) and edits what readers get;
// every user then reads every object they stored there. The client must
// refuse every edited answer (DATA_LOSS) and never return other bytes than
// those stored.
#include <atomic>
#include <charconv>
#include <filesystem>
#include <map>
#include <mutex>
#include <optional>
#include <random>
#include <sstream>
#include <thread>
#include <vector>

#include "absl/strings/match.h"
#include "absl/strings/str_cat.h"
#include "absl/strings/str_join.h"
#include "absl/time/clock.h"
#include "rpc/server.h"
#include "rpc/status_detail.h"
#include "sim/data_dir.h"
#include "sim/phases.h"
#include "sim/residency_scan.h"
#include "sim/tampering_node.h"
#include "storage_node/object_store.h"
#include "tls/credentials.h"
#include "tls/principal.h"

namespace residency::sim {
namespace {

namespace fs = std::filesystem;
using Mode = TamperingNode::Mode;

// What the copy holds, read with the node's own store code.
struct CopiedStore {
  uint64_t objects = 0;
  uint64_t ciphertext_bytes = 0;
  uint64_t wrapped_keys = 0;
};

absl::StatusOr<CopiedStore> ReadCopiedStore(Ledger& ledger,
                                            const std::string& actor,
                                            const std::string& dir) {
  absl::StatusOr<std::unique_ptr<storage_node::ObjectStore>> store =
      storage_node::ObjectStore::Open(dir);
  if (!store.ok()) return store.status();
  absl::StatusOr<std::vector<residency::v1::StatsResponse::OwnerUsage>> usage =
      (*store)->Usage("");
  if (!usage.ok()) return usage.status();
  CopiedStore out;
  for (const auto& owner : *usage) {
    std::vector<storage_node::StoredVersion> versions;
    absl::Status status = (*store)->ForEachObject(
        owner.owner(), [&](const storage_node::StoredVersion& v) {
          versions.push_back(v);
          return true;
        });
    if (!status.ok()) return status;
    for (const storage_node::StoredVersion& v : versions) {
      const residency::v1::ObjectHeader& header = v.info.header();
      std::string ciphertext;
      status = (*store)->ReadCiphertext(
          v, {0, header.ciphertext_length()}, [&](absl::string_view piece) {
            ciphertext.append(piece.data(), piece.size());
            return true;
          });
      if (!status.ok()) return status;
      ++out.objects;
      out.ciphertext_bytes += ciphertext.size();
      out.wrapped_keys += header.wrapped_keys_size();
      // Counts only if the stored bytes are the plaintext itself (a client
      // that did not encrypt): never for an envelope.
      ledger.Exposed(actor, header.object().owner(),
                     header.object().object_id(), header.object().version(),
                     ciphertext);
    }
  }
  return out;
}

// The object index k of the workload's "obj-<k>".
std::optional<uint32_t> ObjectIndex(const std::string& object_id) {
  if (!absl::StartsWith(object_id, "obj-")) return std::nullopt;
  uint32_t k = 0;
  const char* begin = object_id.data() + 4;
  const char* end = object_id.data() + object_id.size();
  auto [ptr, ec] = std::from_chars(begin, end, k);
  if (ec != std::errc() || ptr != end) return std::nullopt;
  return k;
}

// One read of the tamper round.
struct Read {
  User* user = nullptr;
  Truth truth;
  TamperingNode::Tampering tampering;
};

std::string Key(const residency::v1::ObjectRef& ref) {
  return absl::StrCat(ref.owner(), "/", ref.object_id(), "/", ref.version());
}

residency::v1::ObjectRef Ref(const Truth& t, uint64_t version) {
  residency::v1::ObjectRef ref;
  ref.set_owner(t.owner);
  ref.set_object_id(t.object_id);
  ref.set_version(version);
  return ref;
}

// Every object the users stored on `node`, each with a tampering: the
// modes in turn (the honest answer among them, as a control), starting
// from a place the seed picks, skipping a mode the object cannot take (an
// older version needs version 2 or later, a swap another object of the
// same owner, another owner's answer another owner).
std::vector<Read> PlanReads(World& world, const std::string& node) {
  std::vector<Read> reads;
  std::map<std::string, std::vector<const Truth*>> by_owner;
  for (User& user : world.users()) {
    for (const Truth& t : user.objects) {
      if (t.node != node) continue;
      reads.push_back({&user, t, {}});
      by_owner[t.owner].push_back(&t);
    }
  }
  std::vector<Mode> cycle = {Mode::kHonest};
  for (Mode m : TamperingNode::kTamperModes) cycle.push_back(m);
  std::mt19937_64 rng(world.seed() ^ 0x1d51de7ull);
  size_t next = rng() % cycle.size();
  for (Read& read : reads) {
    const Truth& t = read.truth;
    for (size_t tries = 0; tries < cycle.size(); ++tries) {
      const Mode mode = cycle[next++ % cycle.size()];
      TamperingNode::Tampering& plan = read.tampering;
      plan.mode = mode;
      if (mode == Mode::kOlderVersion || mode == Mode::kOlderRelabelled) {
        if (t.version < 2) continue;
        plan.source = Ref(t, t.version - 1);
      } else if (mode == Mode::kSwapCiphertext) {
        const Truth* other = nullptr;
        for (const Truth* o : by_owner[t.owner]) {
          if (o->object_id != t.object_id) {
            other = o;
            break;
          }
        }
        if (other == nullptr) continue;
        plan.source = Ref(*other, other->version);
      } else if (mode == Mode::kOtherOwner) {
        const Truth* other = nullptr;
        for (const auto& [owner, objects] : by_owner) {
          if (owner == t.owner) continue;
          for (const Truth* o : objects) {
            // The same name at another owner if there is one.
            if (other == nullptr || o->object_id == t.object_id) other = o;
          }
          if (other != nullptr) break;
        }
        if (other == nullptr) continue;
        plan.source = Ref(*other, other->version);
      }
      break;
    }
  }
  return reads;
}

struct TamperTally {
  std::map<std::string, uint64_t> tampered, detected;  // by mode name
  uint64_t undetected = 0, other_errors = 0;
  uint64_t honest_ok = 0, honest_errors = 0;
  std::vector<std::string> surprises;
};

absl::Status TamperRound(World& world, Ledger& ledger, const Endpoint& node,
                         TamperTally& tally) {
  // The insider reaches the node as any owner: a stand-in for its direct
  // access to the store. Direct channels: the proxy sits beside the node.
  std::map<std::string, std::shared_ptr<grpc::Channel>> to_node;
  for (const User& user : world.users()) {
    absl::StatusOr<const tls::Identity*> id = world.Identity(user.principal);
    if (!id.ok()) return id.status();
    absl::StatusOr<std::shared_ptr<grpc::Channel>> channel =
        tls::MakeChannel(node.address, (*id)->Material());
    if (!channel.ok()) return channel.status();
    to_node[user.name] = *std::move(channel);
  }
  TamperingNode proxy([&to_node](const std::string& owner) {
    auto it = to_node.find(owner);
    return it == to_node.end() ? nullptr : it->second;
  });
  std::vector<Read> reads = PlanReads(world, node.name);
  std::map<std::string, TamperingNode::Tampering> plan;
  for (const Read& r : reads)
    plan[Key(Ref(r.truth, r.truth.version))] = r.tampering;
  proxy.set_plan([plan](const residency::v1::ObjectRef& asked) {
    auto it = plan.find(Key(asked));
    return it == plan.end() ? TamperingNode::Tampering{} : it->second;
  });

  // It answers with the node's own certificate: the insider has it.
  absl::StatusOr<const tls::Identity*> node_id = world.Identity(node.principal);
  if (!node_id.ok()) return node_id.status();
  absl::StatusOr<std::shared_ptr<grpc::ServerCredentials>> credentials =
      tls::MakeServerCredentials((*node_id)->Material());
  if (!credentials.ok()) return credentials.status();
  rpc::ServerOptions options;
  options.credentials = *std::move(credentials);
  options.services = {&proxy};
  options.health_service_name = "residency.v1.StorageNode";
  absl::StatusOr<std::unique_ptr<rpc::Server>> server =
      rpc::Server::Start(std::move(options));
  if (!server.ok()) return server.status();
  world.RouteStorageNode(node.name, (*server)->address());

  std::mutex mu;
  std::atomic<size_t> next{0};
  std::vector<std::thread> threads;
  auto read_one = [&](const Read& r) {
    const Truth& t = r.truth;
    std::ostringstream out;
    const absl::Time start = absl::Now();
    absl::StatusOr<client::Client*> client =
        world.ClientFor(*r.user, node.name);
    absl::Status status =
        client.ok() ? (*client)->Get(t.object_id, t.version, out).status()
                    : client.status();
    ledger.Record("get_via_insider", status, absl::Now() - start);
    const std::string got = out.str();
    // Bytes that reached the reader must be what was stored: all of it on
    // success, a prefix (chunks that authenticated) on failure.
    bool wrong = false;
    if (status.ok()) {
      wrong = Sha256(got) != t.sha256;
    } else if (!got.empty()) {
      std::optional<uint32_t> k = ObjectIndex(t.object_id);
      wrong = !k.has_value() ||
              !absl::StartsWith(world.Content(t.owner, *k, t.version), got);
    }
    if (wrong) ledger.Update([](Report& report) { ++report.wrong_plaintext; });
    const std::string mode(TamperingNode::ModeName(r.tampering.mode));
    const std::string what = absl::StrCat(t.owner, "/", t.object_id, " v",
                                          t.version, " (", mode, ")");
    std::lock_guard<std::mutex> lock(mu);
    if (r.tampering.mode == Mode::kHonest) {
      if (status.ok()) {
        ++tally.honest_ok;
      } else {
        ++tally.honest_errors;
        tally.surprises.push_back(
            absl::StrCat(what, ": ", rpc::StatusText(status)));
      }
      return;
    }
    ++tally.tampered[mode];
    if (status.ok()) {
      ++tally.undetected;
      tally.surprises.push_back(what + ": the client accepted it");
    } else if (absl::IsDataLoss(status)) {
      ++tally.detected[mode];
    } else {
      ++tally.other_errors;
      tally.surprises.push_back(
          absl::StrCat(what, ": ", rpc::StatusText(status)));
    }
  };
  // Users read concurrently, a few at a time; each reads its own objects.
  std::map<User*, std::vector<const Read*>> by_user;
  for (const Read& r : reads) by_user[r.user].push_back(&r);
  std::vector<std::vector<const Read*>> queues;
  for (auto& [user, list] : by_user) queues.push_back(list);
  for (size_t t = 0; t < std::min<size_t>(4, queues.size()); ++t) {
    threads.emplace_back([&] {
      for (size_t i; (i = next.fetch_add(1)) < queues.size();) {
        for (const Read* r : queues[i]) read_one(*r);
      }
    });
  }
  for (std::thread& t : threads) t.join();

  // Users reach the real node again, for the phases that follow.
  world.RouteStorageNode(node.name, node.address);
  (*server)->Shutdown(absl::Milliseconds(200));
  return absl::OkStatus();
}

}  // namespace

absl::Status RunInsiderDump(const residency::v1::InsiderDump& insider,
                            World& world, Ledger& ledger) {
  absl::StatusOr<const Endpoint*> found =
      world.StorageNode(insider.storage_node());
  if (!found.ok()) return found.status();
  const Endpoint& node = **found;
  if (absl::Status s = world.NeedDataDirs(absl::StrCat(
          "the insider's dump (it copies ", node.name, "'s data directory)"));
      !s.ok()) {
    return s;
  }
  const std::string actor = "insider/" + node.name;
  const std::string label = absl::StrCat("{node=", node.name, "}");
  ledger.Update([&](Report& report) { report.actors[actor]; });

  // 1. The copy. A copy taken while RocksDB flushes or compacts may miss a
  // file its MANIFEST names; the insider copies again.
  // Opening a store changes its files (recovery, a new OPTIONS file), so
  // the insider opens a scratch copy of its copy, and scans the copy itself.
  const std::string copy = world.Dir("insider-" + node.name);
  const std::string scratch = copy + "-opened";
  absl::StatusOr<CopyStats> copied;
  absl::StatusOr<CopiedStore> held = absl::UnknownError("not copied");
  for (int attempt = 0; attempt < 3 && !held.ok(); ++attempt) {
    copied = CopyTree(node.data_dir, copy);
    if (!copied.ok()) return copied.status();
    if (absl::Status s = CopyTree(copy, scratch).status(); !s.ok()) return s;
    held = ReadCopiedStore(ledger, actor, scratch + "/objects");
  }
  std::error_code ec;
  fs::remove_all(scratch, ec);
  // 2. Plaintext the copy holds as it is.
  std::vector<Needle> needles;
  needles.push_back(Needle::Of("canary", world.canary()));
  absl::StatusOr<ScanResult> scan = ScanTree(copy, needles);
  if (!scan.ok()) return scan.status();
  const std::vector<std::string> readable = RecordReadablePlaintext(
      world, ledger, actor, copy, scan->FilesWith("canary"));

  ledger.Update([&](Report& report) {
    report.extra["insider_files" + label] += copied->files;
    report.extra["insider_copy_bytes" + label] += copied->bytes;
    report.extra["insider_canary_hits" + label] += scan->hits.size();
    std::string note =
        absl::StrCat(actor, " copied ", node.name, "'s data directory (",
                     scan->Summary(), "); ");
    if (held.ok()) {
      Obtained& got = report.actors[actor];
      got.objects += held->objects;
      got.ciphertext_bytes += held->ciphertext_bytes;
      got.wrapped_keys += held->wrapped_keys;
      absl::StrAppend(&note, "opened as a store it holds ", held->objects,
                      " object versions, ", held->ciphertext_bytes,
                      " ciphertext bytes and ", held->wrapped_keys,
                      " wrapped keys");
    } else {
      absl::StrAppend(&note, "the copy does not open as a store (",
                      held.status().message(), ")");
    }
    const std::vector<std::string> canary_files = scan->FilesWith("canary");
    if (canary_files.empty()) {
      absl::StrAppend(&note, "; no file holds the canary: no plaintext.");
    } else {
      absl::StrAppend(&note, "; the canary is in ", canary_files.size(),
                      " files (", FirstFew(canary_files), "), ",
                      readable.size(),
                      " of them objects readable as they are.");
    }
    report.notes.push_back(std::move(note));
  });
  ledger.Progress(absl::StrCat("  ", actor, " copied ", copied->files,
                               " files, ", copied->bytes, " bytes"));
  if (!insider.tamper()) return absl::OkStatus();

  // 3. Tampered answers to every reader.
  TamperTally tally;
  if (absl::Status s = TamperRound(world, ledger, node, tally); !s.ok()) {
    // Whatever happened, users go back to the real node.
    world.RouteStorageNode(node.name, node.address);
    return s;
  }
  uint64_t tampered = 0, detected = 0;
  for (const auto& [mode, n] : tally.tampered) tampered += n;
  for (const auto& [mode, n] : tally.detected) detected += n;
  ledger.Update([&](Report& report) {
    report.extra["tampered_reads" + label] += tampered;
    report.extra["tamper_detected" + label] += detected;
    report.extra["tamper_undetected" + label] += tally.undetected;
    report.extra["tamper_other_errors" + label] += tally.other_errors;
    report.extra["untampered_reads" + label] +=
        tally.honest_ok + tally.honest_errors;
    report.extra["untampered_read_errors" + label] += tally.honest_errors;
    std::vector<std::string> modes;
    for (const auto& [mode, n] : tally.tampered) {
      const std::string mode_label =
          absl::StrCat("{node=", node.name, ",mode=", mode, "}");
      report.extra["tampered_reads" + mode_label] += n;
      report.extra["tamper_detected" + mode_label] += tally.detected[mode];
      modes.push_back(absl::StrCat(mode, " ", tally.detected[mode], "/", n));
    }
    report.notes.push_back(absl::StrCat(
        actor, " served ", tampered, " tampered reads; the clients refused ",
        detected, " of them with DATA_LOSS (by mode, refused/served: ",
        absl::StrJoin(modes, ", "), "), and read ", tally.honest_ok, " of ",
        tally.honest_ok + tally.honest_errors,
        " untouched objects correctly through the same insider."));
    if (!tally.surprises.empty()) {
      report.notes.push_back(absl::StrCat(
          actor, ": unexpected outcomes: ", FirstFew(tally.surprises, 3)));
    }
  });
  ledger.Progress(absl::StrCat("  ", actor, ": ", detected, "/", tampered,
                               " tampered reads refused"));
  return absl::OkStatus();
}

}  // namespace residency::sim
