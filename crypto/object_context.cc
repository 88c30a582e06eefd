#include "crypto/object_context.h"

#include "absl/status/status.h"
#include "absl/strings/str_cat.h"
#include "crypto/big_endian.h"
#include "crypto/chunked.h"

namespace residency::crypto {
namespace {

static_assert(kMaxObjectContextSize <= kMaxChunkedContextSize,
              "every object context must be usable as a chunked context");

}  // namespace

absl::StatusOr<std::string> EncodeObjectContext(absl::string_view owner,
                                                absl::string_view object_id,
                                                uint64_t version) {
  if (owner.empty() || owner.size() > kMaxObjectOwnerSize) {
    return absl::InvalidArgumentError(
        absl::StrCat("object context: owner is ", owner.size(),
                     " bytes, must be 1-", kMaxObjectOwnerSize));
  }
  if (object_id.empty() || object_id.size() > kMaxObjectIdSize) {
    return absl::InvalidArgumentError(
        absl::StrCat("object context: object_id is ", object_id.size(),
                     " bytes, must be 1-", kMaxObjectIdSize));
  }
  if (const size_t nul = object_id.find('\0'); nul != absl::string_view::npos) {
    return absl::InvalidArgumentError(
        absl::StrCat("object context: object_id (", object_id.size(),
                     " bytes) contains a NUL byte at offset ", nul));
  }
  if (version == 0) {
    return absl::InvalidArgumentError(
        "object context: version is 0, must be 1 or more");
  }
  std::string out;
  out.reserve(16 + owner.size() + object_id.size());
  AppendBigEndian32(&out, static_cast<uint32_t>(owner.size()));
  out.append(owner.data(), owner.size());
  AppendBigEndian32(&out, static_cast<uint32_t>(object_id.size()));
  out.append(object_id.data(), object_id.size());
  AppendBigEndian64(&out, version);
  return out;
}

}  // namespace residency::crypto
