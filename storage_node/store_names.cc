#include "storage_node/store_names.h"

#include <algorithm>

#include "absl/strings/escaping.h"
#include "absl/strings/match.h"
#include "absl/strings/str_cat.h"
#include "google/protobuf/util/time_util.h"

namespace residency::storage_node::store {

uint32_t ClampPageSize(uint32_t page_size) {
  if (page_size == 0) return kDefaultPageSize;
  return std::min(page_size, kMaxPageSize);
}

uint64_t ReadBigEndian64(absl::string_view bytes) {
  uint64_t value = 0;
  for (int i = 0; i < 8; ++i) {
    value = (value << 8) | static_cast<uint8_t>(bytes[i]);
  }
  return value;
}

google::protobuf::Timestamp ToProto(absl::Time t) {
  return google::protobuf::util::TimeUtil::NanosecondsToTimestamp(
      absl::ToUnixNanos(t));
}

// Names as they appear in messages: escaped, since they come from outside.
std::string Quoted(absl::string_view name) {
  return absl::StrCat("'", absl::CHexEscape(name), "'");
}

std::string ObjectName(absl::string_view owner, absl::string_view object_id) {
  return absl::StrCat("object ", Quoted(absl::StrCat(owner, "/", object_id)));
}

std::string VersionName(absl::string_view owner, absl::string_view object_id,
                        uint64_t version) {
  return absl::StrCat(ObjectName(owner, object_id), " v", version);
}

absl::Status CheckOwner(absl::string_view owner) {
  if (owner.empty() || owner.size() > kMaxOwnerBytes) {
    return absl::InvalidArgumentError(absl::StrCat(
        "owner must be 1-", kMaxOwnerBytes, " bytes, got ", owner.size()));
  }
  if (absl::StrContains(owner, '\0') || absl::StrContains(owner, '/')) {
    return absl::InvalidArgumentError(
        absl::StrCat("owner ", Quoted(owner), " must not contain NUL or '/'"));
  }
  return absl::OkStatus();
}

absl::Status CheckObjectIdPrefix(absl::string_view prefix) {
  if (prefix.size() > kMaxObjectIdBytes) {
    return absl::InvalidArgumentError(
        absl::StrCat("object_id_prefix must be at most ", kMaxObjectIdBytes,
                     " bytes, got ", prefix.size()));
  }
  if (absl::StrContains(prefix, '\0')) {
    return absl::InvalidArgumentError(absl::StrCat(
        "object_id_prefix ", Quoted(prefix), " must not contain NUL"));
  }
  return absl::OkStatus();
}

absl::Status CheckObjectId(absl::string_view object_id) {
  if (object_id.empty() || object_id.size() > kMaxObjectIdBytes) {
    return absl::InvalidArgumentError(
        absl::StrCat("object_id must be 1-", kMaxObjectIdBytes, " bytes, got ",
                     object_id.size()));
  }
  if (absl::StrContains(object_id, '\0')) {
    return absl::InvalidArgumentError(
        absl::StrCat("object_id ", Quoted(object_id), " must not contain NUL"));
  }
  return absl::OkStatus();
}

absl::Status CheckNames(absl::string_view owner, absl::string_view object_id) {
  if (absl::Status s = CheckOwner(owner); !s.ok()) return s;
  return CheckObjectId(object_id);
}

}  // namespace residency::storage_node::store
