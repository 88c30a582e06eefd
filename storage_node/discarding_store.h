#ifndef RESIDENCY_STORAGE_NODE_DISCARDING_STORE_H_
#define RESIDENCY_STORAGE_NODE_DISCARDING_STORE_H_

#include <atomic>
#include <cstdint>
#include <memory>

#include "storage_node/object_store.h"

namespace residency::storage_node {

// An ObjectStore that accepts every upload and keeps nothing: Append checks
// the declared length and counts the bytes, Commit acknowledges without
// writing. It is the baseline of the storage benchmark (a node whose disk
// costs nothing), never a store for data: reads find nothing (Head, Delete
// and ReadCiphertext are NOT_FOUND, List and Usage are empty).
class DiscardingObjectStore final : public ObjectStore {
 public:
  DiscardingObjectStore() = default;

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
  // Uploads begun and not yet committed or abandoned.
  uint64_t pending_uploads() const override { return pending_.load(); }

  // What committed uploads carried, in total.
  uint64_t committed_versions() const { return committed_versions_.load(); }
  uint64_t committed_bytes() const { return committed_bytes_.load(); }

 private:
  friend class DiscardedUpload;

  std::atomic<uint64_t> pending_{0};
  std::atomic<uint64_t> committed_versions_{0};
  std::atomic<uint64_t> committed_bytes_{0};
};

}  // namespace residency::storage_node

#endif  // RESIDENCY_STORAGE_NODE_DISCARDING_STORE_H_
