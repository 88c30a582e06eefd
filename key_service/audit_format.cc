#include "key_service/audit_format.h"

#include <openssl/evp.h>

#include <cstdint>
#include <cstdlib>
#include <string>
#include <utility>

#include "absl/strings/str_cat.h"
#include "crypto/big_endian.h"

namespace residency::key_service {
namespace {

using ::residency::v1::AuditCheckpoint;
using ::residency::v1::AuditEntry;

// Appends in big-endian order, the layout documented in audit_format.h.
class Encoder {
 public:
  explicit Encoder(size_t reserve) { out_.reserve(reserve); }

  void Raw(absl::string_view bytes) { out_.append(bytes.data(), bytes.size()); }
  void U64(uint64_t v) { crypto::AppendBigEndian64(&out_, v); }
  void U32(uint32_t v) { crypto::AppendBigEndian32(&out_, v); }
  // Two's complement, as the u64/u32 of the same bits.
  void I64(int64_t v) { U64(static_cast<uint64_t>(v)); }
  void I32(int32_t v) { U32(static_cast<uint32_t>(v)); }
  // Protobuf caps a string at 2 GiB, so its size always fits a u32.
  void String(absl::string_view s) {
    U32(static_cast<uint32_t>(s.size()));
    Raw(s);
  }
  void Time(const google::protobuf::Timestamp& t) {
    I64(t.seconds());
    I32(t.nanos());
  }

  std::string Take() { return std::move(out_); }

 private:
  std::string out_;
};

}  // namespace

std::string CanonicalAuditEntry(const AuditEntry& entry) {
  const auto& j = entry.justification();
  const auto& lp = j.legal_process();
  const auto& object = entry.object();
  Encoder e(kMinCanonicalEntrySize + entry.principal().size() +
            entry.request_id().size() + lp.issuing_authority().size() +
            lp.jurisdiction().size() + lp.legal_basis().size() +
            lp.target_owner().size() + lp.scope().size() +
            lp.reference_id().size() + j.detail().size() +
            entry.key_id().size() + object.owner().size() +
            object.object_id().size() + entry.rule().size() +
            entry.status_message().size());
  e.Raw(kAuditEntryDomain);
  e.U64(entry.sequence());
  e.Time(entry.time());
  e.String(entry.principal());
  e.I32(entry.operation());
  e.String(entry.request_id());
  e.I32(j.reason());
  e.String(lp.issuing_authority());
  e.String(lp.jurisdiction());
  e.String(lp.legal_basis());
  e.String(lp.target_owner());
  e.String(lp.scope());
  e.String(lp.reference_id());
  e.Time(lp.issued_at());
  e.String(j.detail());
  e.String(entry.key_id());
  e.U32(entry.key_version());
  e.String(object.owner());
  e.String(object.object_id());
  e.U64(object.version());
  e.I32(entry.decision());
  e.String(entry.rule());
  e.I32(entry.status_code());
  e.String(entry.status_message());
  return e.Take();
}

std::string ComputeAuditEntryHash(const AuditEntry& entry) {
  return Sha256(absl::StrCat(entry.prev_hash(), CanonicalAuditEntry(entry)));
}

std::string CheckpointSigningInput(const AuditCheckpoint& checkpoint) {
  Encoder e(kCheckpointSigningInputSize);
  e.Raw(kAuditCheckpointDomain);
  e.U64(checkpoint.sequence());
  e.Raw(checkpoint.head_hash());
  e.Time(checkpoint.time());
  return e.Take();
}

std::string Sha256(absl::string_view data) {
  std::string out(kAuditHashSize, '\0');
  unsigned int size = 0;
  // EVP_Digest with a built-in algorithm fails only when it cannot allocate.
  // Treat that as fatal, like any allocation failure, rather than let a
  // failed digest pass as a hash.
  if (EVP_Digest(data.data(), data.size(),
                 reinterpret_cast<unsigned char*>(out.data()), &size,
                 EVP_sha256(), nullptr) != 1 ||
      size != kAuditHashSize) {
    abort();
  }
  return out;
}

std::string ZeroAuditHash() { return std::string(kAuditHashSize, '\0'); }

google::protobuf::Timestamp ToTimestamp(absl::Time time) {
  // ToUnixSeconds rounds toward negative infinity, so the remainder is never
  // negative.
  const int64_t seconds = absl::ToUnixSeconds(time);
  google::protobuf::Timestamp out;
  out.set_seconds(seconds);
  out.set_nanos(static_cast<int32_t>(
      absl::ToInt64Nanoseconds(time - absl::FromUnixSeconds(seconds))));
  return out;
}

absl::Time FromTimestamp(const google::protobuf::Timestamp& timestamp) {
  return absl::FromUnixSeconds(timestamp.seconds()) +
         absl::Nanoseconds(timestamp.nanos());
}

}  // namespace residency::key_service
