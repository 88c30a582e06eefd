#ifndef RESIDENCY_STORAGE_NODE_RADOS_STORE_H_
#define RESIDENCY_STORAGE_NODE_RADOS_STORE_H_

#include <cstdint>
#include <functional>
#include <memory>
#include <rados/librados_fwd.hpp>
#include <string>
#include <thread>
#include <vector>

#include "absl/base/thread_annotations.h"
#include "absl/container/flat_hash_map.h"
#include "absl/container/flat_hash_set.h"
#include "absl/status/status.h"
#include "absl/status/statusor.h"
#include "absl/synchronization/mutex.h"
#include "absl/time/time.h"
#include "storage_node/object_store.h"

namespace residency::storage_node {

struct RadosStoreOptions {
  // The cluster: a ceph.conf (monitor addresses, auth) and the pool, which
  // must exist. `client` is the cephx name the gateway connects as.
  std::string conf_path;
  std::string pool;
  std::string client = "client.admin";
  // The RADOS namespace within the pool that holds this store's objects
  // (empty: the pool's default). Stores in different namespaces of one
  // pool do not see each other.
  std::string rados_namespace;
  // segment_bytes, max_object_bytes and clock as for RocksDB; the RocksDB
  // memory and space options do not apply.
  ObjectStoreOptions store;
  // How long one RADOS operation may wait for an OSD or monitor before the
  // call fails UNAVAILABLE (rados_osd_op_timeout, rados_mon_op_timeout).
  absl::Duration op_timeout = absl::Seconds(10);
  // Pending uploads are renewed this often by the gateway running them; one
  // not renewed for abandoned_after is taken to be abandoned (its gateway
  // died) and collected by whichever gateway looks first. Gateways' clocks
  // must agree to well within abandoned_after - renew_every.
  absl::Duration renew_every = absl::Seconds(10);
  absl::Duration abandoned_after = absl::Minutes(2);
  // A deleted version's segments stay this long, so reads begun before the
  // delete finish; then a collector removes them.
  absl::Duration delete_grace = absl::Minutes(1);
  // How often each gateway looks for abandoned uploads and due garbage.
  absl::Duration collect_every = absl::Seconds(30);
};

// The object store on Ceph RADOS (librados): the same contract as
// RocksObjectStore, over a pool that several storage_node gateways share.
// Any gateway reads what another stored; concurrent Puts of one object
// through different gateways never both take the same version.
//
// RADOS objects in the pool (owner hex-encoded in names; u64 big-endian):
//   "owners"                      omap: owner -> ""  (every owner that has
//                                 or had an upload; for Usage and the
//                                 collector)
//   "owner." hex(owner)           the owner's index; omap:
//     "v" object_id 0x00 u64 version -> StoredObject (visible version)
//     "l" object_id                  -> u64 latest visible version
//     "p" upload_id(16)              -> PendingUpload (upload in progress)
//     "g" upload_id(16)              -> SegmentGarbage (to remove when due)
//   "seg." hex(upload_id) "." u64 index (16 hex digits)
//                                 one ciphertext segment (write_full)
//
// Visibility: segments are written first (each durable when RADOS
// acknowledges it); Commit is then one atomic write operation on the
// owner's index that checks (omap_cmp) that the upload's "p" entry is as
// this gateway last wrote it and that "l" still holds the latest version
// read just before, then removes "p" and sets "v" and "l". A version is
// visible exactly when its "v" entry exists. Two gateways committing the
// same object race on "l": one wins, the other gets ALREADY_EXISTS.
//
// Collection: an upload's gateway renews its "p" entry every renew_every
// (a compare-and-set). A "p" entry older than abandoned_after is turned
// into a "g" entry by a compare-and-set (so exactly one collector, and
// never a live upload: a renewal or commit after that fails its compare
// and reports UNAVAILABLE); "g" entries that are due have their segments
// removed, then the entry. Delete removes "v" entries (updating "l") and
// adds "g" entries due after delete_grace in one atomic operation.
//
// One index object per owner holds all of the owner's records: fine for
// the simulator's populations, a hot spot for an owner with millions of
// objects (sharding it is not done).
//
// Errors as for RocksObjectStore; a cluster that does not answer within
// op_timeout (an OSD down, the monitor away) is UNAVAILABLE, a full pool or
// cluster RESOURCE_EXHAUSTED (the store sets pool_full_try). A read that
// outlasts a delete's grace period ends NOT_FOUND ("was deleted while being
// read"); ObjectStore's promise that a later delete does not cut a read
// short holds for delete_grace.
//
// Thread safety: all methods may be called concurrently.
class RadosObjectStore final : public ObjectStore {
 public:
  // Connects to the cluster and opens the pool. UNAVAILABLE when the
  // cluster does not answer; NOT_FOUND when the pool does not exist;
  // INVALID_ARGUMENT for unusable options.
  static absl::StatusOr<std::unique_ptr<RadosObjectStore>> Open(
      RadosStoreOptions options);
  ~RadosObjectStore() override;
  RadosObjectStore(const RadosObjectStore&) = delete;
  RadosObjectStore& operator=(const RadosObjectStore&) = delete;

  absl::StatusOr<std::unique_ptr<Upload>> BeginPut(
      const residency::v1::ObjectHeader& header) override;
  absl::StatusOr<StoredVersion> Head(absl::string_view owner,
                                     absl::string_view object_id,
                                     uint64_t version) const override;
  absl::Status ReadCiphertext(
      const StoredVersion& version, CiphertextRange range,
      const std::function<bool(absl::string_view)>& sink) const override;
  absl::StatusOr<ListResult> List(absl::string_view owner,
                                  absl::string_view object_id_prefix,
                                  bool all_versions, uint32_t page_size,
                                  absl::string_view page_token) const override;
  absl::StatusOr<uint64_t> Delete(absl::string_view owner,
                                  absl::string_view object_id,
                                  uint64_t version) override;
  absl::Status ForEachObject(
      absl::string_view owner,
      const std::function<bool(const StoredVersion&)>& visit) const override;
  absl::StatusOr<std::vector<residency::v1::StatsResponse::OwnerUsage>> Usage(
      absl::string_view owner) const override;
  // "p" entries in every owner's index (this gateway's and others').
  uint64_t pending_uploads() const override;

  // One pass of the collector now: abandoned uploads become garbage, due
  // garbage is removed. Returns how many uploads it found abandoned.
  absl::StatusOr<uint64_t> CollectNow();
  // Renews this gateway's pending uploads now (the background thread does
  // it every renew_every).
  void RenewNow() { Renew(); }
  // Segment objects of `upload_id` present in the pool (for tests).
  absl::StatusOr<uint64_t> SegmentObjects(absl::string_view upload_id,
                                          uint64_t up_to) const;

 private:
  friend class RadosUpload;  // rados_store.cc: the Upload implementation
  struct Live;

  RadosObjectStore(RadosStoreOptions options,
                   std::unique_ptr<librados::Rados> cluster,
                   std::unique_ptr<librados::IoCtx> io);

  // Uploads of this gateway whose "p" entries the renewer keeps fresh.
  void AddLive(const std::string& upload_id, std::shared_ptr<Live> live);
  void RemoveLive(const std::string& upload_id);
  void Renew();
  // Runs `work` every `every` until the store closes.
  void BackgroundLoop(absl::Duration every, const std::function<void()>& work);
  absl::Status CollectOwner(const std::string& owner, uint64_t* abandoned);
  absl::Status ForEachOwner(
      const std::function<absl::Status(const std::string&)>& visit) const;

  const RadosStoreOptions options_;
  std::unique_ptr<librados::Rados> cluster_;
  std::unique_ptr<librados::IoCtx> io_;

  // Owners this gateway has listed in "owners" (entries are never removed
  // there, so the cache cannot go stale).
  absl::Mutex owners_mu_;
  absl::flat_hash_set<std::string> listed_owners_ ABSL_GUARDED_BY(owners_mu_);

  absl::Mutex live_mu_;
  absl::flat_hash_map<std::string, std::shared_ptr<Live>> live_
      ABSL_GUARDED_BY(live_mu_);

  absl::Mutex loop_mu_;
  bool closing_ ABSL_GUARDED_BY(loop_mu_) = false;
  // Last members, started last. Renewal has a thread of its own so that a
  // long collection (many segments to remove) cannot delay it past
  // abandoned_after.
  std::thread renewer_;
  std::thread collector_;
};

}  // namespace residency::storage_node

#endif  // RESIDENCY_STORAGE_NODE_RADOS_STORE_H_
