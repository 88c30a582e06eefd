#include "storage_node/store_names.h"

#include <algorithm>
#include <utility>

#include "absl/strings/match.h"
#include "absl/strings/str_cat.h"
#include "google/protobuf/util/time_util.h"
#include "residency/v1/storage.pb.h"
#include "rpc/printable.h"
#include "rpc/status_detail.h"

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
  return absl::StrCat("'", rpc::Printable(name), "'");
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

namespace {

std::string NameOf(const StoredVersion& version) {
  const residency::v1::ObjectRef& ref = version.info.header().object();
  return VersionName(ref.owner(), ref.object_id(), ref.version());
}

}  // namespace

absl::Status CheckNewVersion(const residency::v1::ObjectHeader& header,
                             uint64_t max_object_bytes) {
  const residency::v1::ObjectRef& ref = header.object();
  if (absl::Status s = CheckNames(ref.owner(), ref.object_id()); !s.ok()) {
    return s;
  }
  if (ref.version() == 0) {
    return absl::InvalidArgumentError(
        absl::StrCat(ObjectName(ref.owner(), ref.object_id()),
                     ": version 0 cannot be stored; versions start at 1"));
  }
  if (header.ciphertext_length() > max_object_bytes) {
    return absl::ResourceExhaustedError(absl::StrCat(
        VersionName(ref.owner(), ref.object_id(), ref.version()), ": ",
        header.ciphertext_length(),
        " ciphertext bytes exceed this node's limit of ", max_object_bytes));
  }
  return absl::OkStatus();
}

absl::Status CheckReadRange(const StoredVersion& version,
                            CiphertextRange range) {
  if (version.upload_id.size() != kUploadIdSize || version.segment_bytes == 0) {
    return absl::InvalidArgumentError(
        absl::StrCat(NameOf(version), ": not a version returned by the store"));
  }
  const uint64_t length = version.info.header().ciphertext_length();
  if (range.offset > length || range.length > length - range.offset) {
    return absl::OutOfRangeError(absl::StrCat(
        NameOf(version), ": ciphertext range at ", range.offset, " of ",
        range.length, " bytes does not lie within its ", length, " bytes"));
  }
  return absl::OkStatus();
}

absl::Status SendSegments(
    const StoredVersion& version, CiphertextRange range,
    const std::function<absl::StatusOr<absl::string_view>(uint64_t index)>&
        fetch,
    const std::function<bool(absl::string_view)>& sink) {
  if (range.length == 0) return absl::OkStatus();
  const uint64_t length = version.info.header().ciphertext_length();
  const uint64_t segment_bytes = version.segment_bytes;
  const uint64_t end = range.offset + range.length;
  const uint64_t first = range.offset / segment_bytes;
  const uint64_t last = (end - 1) / segment_bytes;
  for (uint64_t index = first; index <= last; ++index) {
    const uint64_t segment_start = index * segment_bytes;
    const uint64_t expected = std::min(segment_bytes, length - segment_start);
    absl::StatusOr<absl::string_view> segment = fetch(index);
    if (absl::IsNotFound(segment.status())) {
      return absl::DataLossError(absl::StrCat("object store: segment ", index,
                                              " of ", NameOf(version),
                                              " is missing"));
    }
    if (!segment.ok()) return segment.status();
    if (segment->size() != expected) {
      return absl::DataLossError(absl::StrCat(
          "object store: segment ", index, " of ", NameOf(version), " has ",
          segment->size(), " bytes, expected ", expected));
    }
    const uint64_t from = std::max(range.offset, segment_start) - segment_start;
    const uint64_t to = std::min(end, segment_start + expected) - segment_start;
    if (!sink(segment->substr(from, to - from))) return absl::OkStatus();
  }
  return absl::OkStatus();
}

Segmenter::Segmenter(std::string name, uint64_t length, uint32_t segment_bytes)
    : name_(std::move(name)), length_(length), segment_bytes_(segment_bytes) {
  buffer_.reserve(std::min<uint64_t>(segment_bytes_, length_));
}

absl::Status Segmenter::Append(absl::string_view ciphertext,
                               const Write& write) {
  if (ciphertext.size() > length_ - received_) {
    return absl::InvalidArgumentError(absl::StrCat(
        name_, ": stream sends ", ciphertext.size() - (length_ - received_),
        " bytes after the declared length of ", length_, " ciphertext bytes"));
  }
  received_ += ciphertext.size();
  while (!ciphertext.empty()) {
    if (buffer_.empty() && ciphertext.size() >= segment_bytes_) {
      // A whole segment straight from the caller's bytes, without a copy.
      if (absl::Status s = write(ciphertext.substr(0, segment_bytes_));
          !s.ok()) {
        return s;
      }
      ciphertext.remove_prefix(segment_bytes_);
      continue;
    }
    const size_t take =
        std::min<size_t>(ciphertext.size(), segment_bytes_ - buffer_.size());
    buffer_.append(ciphertext.data(), take);
    ciphertext.remove_prefix(take);
    if (buffer_.size() == segment_bytes_) {
      if (absl::Status s = write(buffer_); !s.ok()) return s;
      buffer_.clear();
    }
  }
  return absl::OkStatus();
}

absl::Status Segmenter::Finish(const Write& write) {
  if (received_ != length_) {
    return absl::InvalidArgumentError(
        absl::StrCat(name_, ": stream ended after ", received_, " of ", length_,
                     " ciphertext bytes"));
  }
  if (!buffer_.empty()) {
    if (absl::Status s = write(buffer_); !s.ok()) return s;
    buffer_.clear();
    buffer_.shrink_to_fit();
  }
  return absl::OkStatus();
}

absl::Status VersionTaken(absl::string_view name, uint64_t latest) {
  residency::v1::VersionTaken taken;
  taken.set_latest_version(latest);
  return rpc::WithDetail(absl::AlreadyExistsError(absl::StrCat(
                             name, ": version ", latest, " already exists")),
                         taken);
}

}  // namespace residency::storage_node::store
