// A "secure and controllable" review of a storage node (TIMELINE.md: the
// May 2014 vetting system, the Dec 2014 and Jan 2015 security audits): an
// auditor on site reads every file in the node's data directory, raw, while
// the node runs, and looks for the users' plaintext (the canary every
// stored object carries) and for key bytes: the data key of every stored
// object version (and both shares of two-share custody), every KEK version
// of every key service, every device key.
//
// The keys looked for are the real ones: data keys recovered as their
// owners recover them (audited Unwraps on the owners' channels, the device
// key file, the shares combined) and proven by opening the stored
// ciphertext; KEKs read from the running key services (World::ReadKeks:
// in --spawn mode from a copy of each key store, opened with its root key
// file). A --topology run cannot do this phase: the files are elsewhere.
#include <algorithm>
#include <atomic>
#include <filesystem>
#include <map>
#include <memory>
#include <thread>
#include <vector>

#include "absl/strings/str_cat.h"
#include "absl/strings/str_join.h"
#include "absl/time/clock.h"
#include "key_service/server.h"
#include "residency/v1/key_service.grpc.pb.h"
#include "residency/v1/storage.grpc.pb.h"
#include "rpc/status.h"
#include "sim/data_dir.h"
#include "sim/phases.h"
#include "sim/residency_scan.h"

namespace residency::sim {
namespace {

namespace fs = std::filesystem;

// The keys that protect one user's objects on one node, as the owner
// recovers them.
struct OwnerKeys {
  std::vector<Needle> needles;
  uint64_t data_keys = 0;
  std::vector<std::string> errors;
};

// The whole ciphertext of `header`'s object, read from the node as its
// owner.
absl::StatusOr<std::string> StoredCiphertext(
    residency::v1::StorageNode::Stub& stub,
    const residency::v1::ObjectHeader& header) {
  residency::v1::GetRequest request;
  request.mutable_metadata()->set_request_id("audit-read");
  request.mutable_metadata()->mutable_justification()->set_reason(
      residency::v1::Justification::CUSTOMER_INITIATED_ACCESS);
  *request.mutable_object() = header.object();
  grpc::ClientContext context;
  context.set_deadline(absl::ToChronoTime(absl::Now() + absl::Seconds(60)));
  auto reader = stub.Get(&context, request);
  residency::v1::GetResponse message;
  std::string ciphertext;
  while (reader->Read(&message)) {
    if (message.has_data()) ciphertext += message.data();
  }
  absl::Status status = rpc::FromGrpcStatus(reader->Finish());
  if (!status.ok()) return status;
  return ciphertext;
}

OwnerKeys RecoverOwnerKeys(World& world, User& user, const Endpoint& node) {
  OwnerKeys out;
  const std::string& from = world.scenario().population().jurisdiction();
  auto fail = [&](const std::string& what, const absl::Status& status) {
    out.errors.push_back(absl::StrCat(what, ": ", rpc::StatusText(status)));
  };
  absl::StatusOr<client::Client*> client = world.ClientFor(user, node.name);
  if (!client.ok()) {
    fail(user.name, client.status());
    return out;
  }
  absl::StatusOr<std::vector<residency::v1::ObjectInfo>> stored =
      (*client)->List("", /*all_versions=*/true);
  if (!stored.ok()) {
    fail(user.name + " lists its objects", stored.status());
    return out;
  }
  if (stored->empty()) return out;
  absl::StatusOr<std::shared_ptr<grpc::Channel>> storage =
      world.Channel(from, node, user.principal);
  if (!storage.ok()) {
    fail(user.name, storage.status());
    return out;
  }
  auto storage_stub = residency::v1::StorageNode::NewStub(*storage);
  // Key services by principal, on the owner's channels.
  std::map<std::string, std::unique_ptr<residency::v1::KeyService::Stub>>
      key_services;
  for (const Endpoint& ks : world.key_services()) {
    absl::StatusOr<std::shared_ptr<grpc::Channel>> channel =
        world.Channel(from, ks, user.principal);
    if (!channel.ok()) {
      fail(user.name, channel.status());
      return out;
    }
    key_services[ks.principal] = residency::v1::KeyService::NewStub(*channel);
  }
  std::shared_ptr<const client::DeviceKey> device;
  const std::string device_path =
      world.Dir("devices") + "/" + user.name + ".key";
  if (fs::exists(device_path)) {
    absl::StatusOr<std::shared_ptr<const client::DeviceKey>> loaded =
        client::LoadDeviceKey(device_path, /*create=*/false);
    if (loaded.ok()) device = *std::move(loaded);
  }
  int calls = 0;
  const UnwrapFn unwrap = [&](const residency::v1::ObjectHeader& header,
                              const residency::v1::WrappedKey& wrapped)
      -> absl::StatusOr<crypto::SecretBytes> {
    auto stub = key_services.find(wrapped.key_service());
    if (stub == key_services.end()) {
      return absl::NotFoundError(absl::StrCat(
          "no key service '", wrapped.key_service(), "' in this world"));
    }
    return UnwrapAsOwner(
        *stub->second, header, wrapped,
        absl::StrCat("audit-", node.name, "-", user.name, "-", ++calls));
  };
  for (const residency::v1::ObjectInfo& info : *stored) {
    const residency::v1::ObjectHeader& header = info.header();
    const std::string name =
        absl::StrCat(header.object().owner(), "/", header.object().object_id(),
                     " v", header.object().version());
    absl::StatusOr<RecoveredKeys> keys =
        RecoverDataKey(header, unwrap, device.get());
    if (!keys.ok()) {
      fail(name, keys.status());
      continue;
    }
    // Only a key that opens the stored ciphertext is the one to look for.
    absl::StatusOr<std::string> ciphertext =
        StoredCiphertext(*storage_stub, header);
    absl::Status opened = ciphertext.status();
    if (opened.ok())
      opened = OpenObject(keys->dek, header, *ciphertext).status();
    if (!opened.ok()) {
      fail(name, opened);
      continue;
    }
    ++out.data_keys;
    out.needles.push_back(Needle{"dek " + name, std::move(keys->dek)});
    for (auto& [index, share] : keys->shares) {
      out.needles.push_back(
          Needle{absl::StrCat("share ", index, " ", name), std::move(share)});
    }
  }
  return out;
}

}  // namespace

absl::Status RunAudit(const residency::v1::Audit& audit, World& world,
                      Ledger& ledger) {
  absl::StatusOr<const Endpoint*> found =
      world.StorageNode(audit.storage_node());
  if (!found.ok()) return found.status();
  const Endpoint& node = **found;
  if (absl::Status s = world.NeedDataDirs(
          absl::StrCat("the security audit (it reads every file of ", node.name,
                       " and the key services' KEKs)"));
      !s.ok()) {
    return s;
  }
  const std::string actor = "auditor/" + node.name;
  ledger.Update([&](Report& report) { report.actors[actor]; });

  // 1. What must not be there: the canary, then every key.
  std::vector<Needle> needles;
  needles.push_back(Needle::Of("canary", world.canary()));
  std::vector<User>& users = world.users();
  std::vector<OwnerKeys> owners(users.size());
  {
    // One thread per owner at a time, a few at once: each recovery is a
    // round of audited Unwraps, possibly across a slow link.
    std::vector<std::thread> threads;
    std::atomic<size_t> next{0};
    for (size_t t = 0; t < std::min<size_t>(4, users.size()); ++t) {
      threads.emplace_back([&] {
        for (size_t i; (i = next.fetch_add(1)) < users.size();) {
          owners[i] = RecoverOwnerKeys(world, users[i], node);
        }
      });
    }
    for (std::thread& t : threads) t.join();
  }
  uint64_t data_keys = 0, keks = 0, device_keys = 0;
  std::vector<std::string> errors;
  for (OwnerKeys& o : owners) {
    data_keys += o.data_keys;
    for (Needle& n : o.needles) needles.push_back(std::move(n));
    errors.insert(errors.end(), o.errors.begin(), o.errors.end());
  }
  std::vector<std::string> key_ids;
  for (const User& user : users) key_ids.push_back(user.name + "-key");
  for (const Endpoint& ks : world.key_services()) {
    // As the custodian reads them: from its store (a copy of it when the
    // service is its own process).
    absl::StatusOr<std::map<std::string, key_service::KeyStore::Snapshot>>
        found_keks = world.ReadKeks(ks.name, key_ids);
    if (!found_keks.ok()) {
      return absl::Status(found_keks.status().code(),
                          absl::StrCat("reading the KEKs of ", ks.name, ": ",
                                       found_keks.status().message()));
    }
    for (const auto& [key_id, key] : *found_keks) {
      for (const auto& [version, material] : key->material) {
        needles.push_back(
            Needle{absl::StrCat("kek ", ks.name, "/", key_id, " v", version),
                   material.Clone()});
        ++keks;
      }
    }
  }
  for (const User& user : users) {
    const std::string path = world.Dir("devices") + "/" + user.name + ".key";
    if (!fs::exists(path)) continue;
    absl::StatusOr<std::shared_ptr<const client::DeviceKey>> device =
        client::LoadDeviceKey(path, /*create=*/false);
    if (!device.ok()) {
      errors.push_back(absl::StrCat(path, ": ", device.status().message()));
      continue;
    }
    needles.push_back(
        Needle{"device key " + user.name, (*device)->key.Clone()});
    ++device_keys;
  }

  // 2. Every file of the running node, raw.
  absl::StatusOr<ScanResult> scan = ScanTree(node.data_dir, needles);
  if (!scan.ok()) return scan.status();
  const uint64_t canary_hits = scan->HitsOf("canary").size();
  const uint64_t key_hits = scan->hits.size() - canary_hits;
  const bool passed = canary_hits == 0 && key_hits == 0;
  // What the auditor can read from those files without any key.
  const std::vector<std::string> readable = RecordReadablePlaintext(
      world, ledger, actor, node.data_dir, scan->FilesWith("canary"));

  const std::string label = absl::StrCat("{node=", node.name, "}");
  const uint64_t keys_sought = needles.size() - 1;
  ledger.Update([&](Report& report) {
    report.extra["audit_files" + label] += scan->files.size();
    report.extra["audit_bytes" + label] += scan->bytes;
    report.extra["audit_keys" + label] += keys_sought;
    report.extra["audit_key_errors" + label] += errors.size();
    report.extra["audit_canary_hits" + label] += canary_hits;
    report.extra["audit_key_hits" + label] += key_hits;
    report.extra["audit_passed" + label] = passed ? 1 : 0;

    std::string finding = absl::StrCat(
        actor, " read every file of ", node.name, " while it ran (",
        scan->Summary(), ") looking for the canary and ", keys_sought,
        " keys (", data_keys,
        " objects' data keys, with their shares if split, as their owners "
        "recover them; ",
        keks, " KEK versions; ", device_keys, " device keys): ");
    if (passed) {
      absl::StrAppend(&finding, "nothing found; the review passes.");
    } else {
      const std::vector<std::string> canary_files = scan->FilesWith("canary");
      std::vector<std::string> key_files;
      for (const Hit& h : scan->hits) {
        if (h.needle != "canary") {
          key_files.push_back(absl::StrCat(h.file, " (", h.needle, ")"));
        }
      }
      if (canary_files.empty()) {
        absl::StrAppend(&finding, "no canary; ");
      } else {
        absl::StrAppend(&finding, "the canary in ", canary_files.size(),
                        " files (", FirstFew(canary_files), "), ",
                        readable.size(),
                        " of them whole objects, readable as they are; ");
      }
      if (key_files.empty()) {
        absl::StrAppend(&finding, "no key bytes. ");
      } else {
        absl::StrAppend(&finding, "key bytes in ", FirstFew(key_files), ". ");
      }
      absl::StrAppend(&finding, "The review fails.");
    }
    report.notes.push_back(std::move(finding));
    if (!errors.empty()) {
      report.notes.push_back(absl::StrCat(
          actor, " could not recover ", errors.size(),
          " keys, so the scan did not look for them: ", FirstFew(errors, 2)));
    }
  });
  ledger.Progress(absl::StrCat(
      "  ", actor, ": ", scan->files.size(), " files, canary hits ",
      canary_hits, ", key hits ", key_hits, passed ? " (passes)" : " (fails)"));
  return absl::OkStatus();
}

}  // namespace residency::sim
