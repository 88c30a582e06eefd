#include "storage_node/discarding_store.h"

#include <utility>

#include "absl/strings/str_cat.h"
#include "absl/time/clock.h"
#include "google/protobuf/util/time_util.h"

namespace residency::storage_node {

using ::residency::v1::ObjectHeader;
using ::residency::v1::StatsResponse;

class DiscardedUpload final : public Upload {
 public:
  DiscardedUpload(DiscardingObjectStore* store, ObjectHeader header)
      : store_(store), header_(std::move(header)) {
    ++store_->pending_;
  }
  ~DiscardedUpload() override {
    if (!committed_) --store_->pending_;
  }

  absl::Status Append(absl::string_view ciphertext) override {
    if (!status_.ok()) return status_;
    if (committed_) {
      return absl::FailedPreconditionError("upload already committed");
    }
    const uint64_t length = header_.ciphertext_length();
    if (ciphertext.size() > length - received_) {
      status_ = absl::InvalidArgumentError(absl::StrCat(
          "stream sends ", ciphertext.size() - (length - received_),
          " bytes after the declared length of ", length, " ciphertext bytes"));
      return status_;
    }
    received_ += ciphertext.size();
    return absl::OkStatus();
  }

  absl::StatusOr<StoredVersion> Commit() override {
    if (!status_.ok()) return status_;
    if (committed_) {
      return absl::FailedPreconditionError("upload already committed");
    }
    if (received_ != header_.ciphertext_length()) {
      status_ = absl::InvalidArgumentError(
          absl::StrCat("stream ended after ", received_, " of ",
                       header_.ciphertext_length(), " ciphertext bytes"));
      return status_;
    }
    committed_ = true;
    --store_->pending_;
    ++store_->committed_versions_;
    store_->committed_bytes_ += received_;
    StoredVersion stored;
    *stored.info.mutable_header() = header_;
    *stored.info.mutable_stored_at() =
        google::protobuf::util::TimeUtil::NanosecondsToTimestamp(
            absl::ToUnixNanos(absl::Now()));
    return stored;
  }

 private:
  DiscardingObjectStore* const store_;
  const ObjectHeader header_;
  uint64_t received_ = 0;
  absl::Status status_;
  bool committed_ = false;
};

absl::StatusOr<std::unique_ptr<Upload>> DiscardingObjectStore::BeginPut(
    const ObjectHeader& header) {
  return std::make_unique<DiscardedUpload>(this, header);
}

absl::StatusOr<StoredVersion> DiscardingObjectStore::Head(
    absl::string_view owner, absl::string_view object_id, uint64_t) const {
  return absl::NotFoundError(absl::StrCat("no object ", owner, "/", object_id,
                                          ": this store keeps nothing"));
}

absl::Status DiscardingObjectStore::ReadCiphertext(
    const StoredVersion& version, CiphertextRange,
    const std::function<bool(absl::string_view)>&) const {
  return absl::NotFoundError(
      absl::StrCat("no object ", version.info.header().object().object_id(),
                   ": this store keeps nothing"));
}

absl::StatusOr<ObjectStore::ListResult> DiscardingObjectStore::List(
    absl::string_view, absl::string_view, bool, uint32_t,
    absl::string_view) const {
  return ListResult{};
}

absl::StatusOr<uint64_t> DiscardingObjectStore::Delete(
    absl::string_view owner, absl::string_view object_id, uint64_t) {
  return absl::NotFoundError(absl::StrCat("no object ", owner, "/", object_id,
                                          ": this store keeps nothing"));
}

absl::Status DiscardingObjectStore::ForEachObject(
    absl::string_view, const std::function<bool(const StoredVersion&)>&) const {
  return absl::OkStatus();
}

absl::StatusOr<std::vector<StatsResponse::OwnerUsage>>
DiscardingObjectStore::Usage(absl::string_view owner) const {
  std::vector<StatsResponse::OwnerUsage> usage;
  if (!owner.empty()) {
    usage.emplace_back().set_owner(std::string(owner));
  }
  return usage;
}

}  // namespace residency::storage_node
