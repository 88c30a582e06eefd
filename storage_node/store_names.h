#ifndef RESIDENCY_STORAGE_NODE_STORE_NAMES_H_
#define RESIDENCY_STORAGE_NODE_STORE_NAMES_H_

// What every ObjectStore implementation shares: the limits on names, their
// checks and the way messages quote them, page sizes, and small encodings.

#include <cstddef>
#include <cstdint>
#include <string>

#include "absl/status/status.h"
#include "absl/strings/string_view.h"
#include "absl/time/time.h"
#include "google/protobuf/timestamp.pb.h"

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

}  // namespace residency::storage_node::store

#endif  // RESIDENCY_STORAGE_NODE_STORE_NAMES_H_
