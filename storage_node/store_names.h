#ifndef RESIDENCY_STORAGE_NODE_STORE_NAMES_H_
#define RESIDENCY_STORAGE_NODE_STORE_NAMES_H_

// What every ObjectStore implementation shares: the limits on names, their
// checks and the way messages quote them, page sizes, and small encodings.

#include <cstddef>
#include <cstdint>
#include <functional>
#include <string>

#include "absl/status/status.h"
#include "absl/strings/string_view.h"
#include "absl/time/time.h"
#include "google/protobuf/timestamp.pb.h"
#include "storage_node/object_store.h"

namespace residency::storage_node::store {

constexpr size_t kUploadIdSize = 16;
constexpr size_t kMaxOwnerBytes = 128;
constexpr size_t kMaxObjectIdBytes = 1024;
// Segments are single values (a RocksDB value, a RADOS object); keep them
// far below either's limits and within the uint32 the record stores.
constexpr size_t kMaxSegmentBytes = size_t{64} << 20;

constexpr uint32_t kDefaultPageSize = 100;
constexpr uint32_t kMaxPageSize = 1000;
// 0 is the default; larger sizes are cut to kMaxPageSize.
uint32_t ClampPageSize(uint32_t page_size);

// The first 8 bytes of `bytes` (which has at least 8) as a big-endian u64.
uint64_t ReadBigEndian64(absl::string_view bytes);
google::protobuf::Timestamp ToProto(absl::Time t);

// Names as they appear in messages: escaped and quoted, since they come
// from outside.
std::string Quoted(absl::string_view name);
// "object 'owner/id'" and "object 'owner/id' vN".
std::string ObjectName(absl::string_view owner, absl::string_view object_id);
std::string VersionName(absl::string_view owner, absl::string_view object_id,
                        uint64_t version);

// INVALID_ARGUMENT, naming the rule, for an owner that is empty, longer
// than kMaxOwnerBytes or contains NUL or '/'; an object id that is empty,
// longer than kMaxObjectIdBytes or contains NUL; a prefix as an object id
// but possibly empty.
absl::Status CheckOwner(absl::string_view owner);
absl::Status CheckObjectIdPrefix(absl::string_view prefix);
absl::Status CheckObjectId(absl::string_view object_id);
absl::Status CheckNames(absl::string_view owner, absl::string_view object_id);

// What every BeginPut checks of a header: the names, a version of at least
// 1 (INVALID_ARGUMENT) and a ciphertext within `max_object_bytes`
// (RESOURCE_EXHAUSTED).
absl::Status CheckNewVersion(const residency::v1::ObjectHeader& header,
                             uint64_t max_object_bytes);

// ALREADY_EXISTS for a Put of `name` (VersionName) when the store holds
// `latest`, at or above the version asked for, with a VersionTaken detail
// (rpc/status_detail.h) so that the writer can pick latest + 1 at once.
absl::Status VersionTaken(absl::string_view name, uint64_t latest);

// What every ReadCiphertext checks first: `version` came from a store (an
// upload id and a segment size; INVALID_ARGUMENT otherwise) and `range`
// lies within its ciphertext (OUT_OF_RANGE otherwise).
absl::Status CheckReadRange(const StoredVersion& version,
                            CiphertextRange range);

// Sends ciphertext bytes `range` of `version` to `sink`, one piece per
// segment. `fetch(index)` returns segment `index`'s bytes, valid until the
// next fetch (NOT_FOUND for a missing segment, reported as DATA_LOSS, as is
// a segment of the wrong size). Returns OK early when `sink` returns false.
absl::Status SendSegments(
    const StoredVersion& version, CiphertextRange range,
    const std::function<absl::StatusOr<absl::string_view>(uint64_t index)>&
        fetch,
    const std::function<bool(absl::string_view)>& sink);

// The part of an upload every store shares: counts the ciphertext against
// the header's declared length and cuts it into segments, holding the one
// being filled.
class Segmenter {
 public:
  using Write = std::function<absl::Status(absl::string_view segment)>;

  // `name` names the version in messages.
  Segmenter(std::string name, uint64_t length, uint32_t segment_bytes);

  // INVALID_ARGUMENT when the bytes would go past the declared length
  // (nothing of them is taken); otherwise passes each segment it fills to
  // `write`, in order (a whole segment of `ciphertext` without a copy), and
  // returns the first failure of `write`.
  absl::Status Append(absl::string_view ciphertext, const Write& write);
  // INVALID_ARGUMENT unless exactly the declared length arrived; then
  // writes the last, partial segment, if any.
  absl::Status Finish(const Write& write);

  uint64_t received() const { return received_; }
  // Bytes received but not yet written.
  size_t buffered() const { return buffer_.size(); }

 private:
  const std::string name_;
  const uint64_t length_;
  const uint32_t segment_bytes_;
  std::string buffer_;  // the segment being filled, < segment_bytes_ bytes
  uint64_t received_ = 0;
};

}  // namespace residency::storage_node::store

#endif  // RESIDENCY_STORAGE_NODE_STORE_NAMES_H_
