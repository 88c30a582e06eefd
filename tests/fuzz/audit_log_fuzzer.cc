// Audit-log verification (key_service::AuditVerifier) of an arbitrary
// stream of ReadAuditLog items, as `audit_verify` and the simulator's
// auditor check what a key service returns.
//
// Input: one control byte (bits 0-1: the read's start sequence, 0-3; bit 2:
// the first item's checkpoint is the trusted checkpoint), then items, each
// a varint byte count and a residency.v1.ReadAuditLogResponse in protobuf
// wire format (the framing of protobuf's delimited streams). The public key
// is that of the throwaway Ed25519 seed in fuzz_util.h.
//
// Invariants: a failure is DATA_LOSS, INVALID_ARGUMENT or
// FAILED_PRECONDITION and every later call returns it again; a log that
// verifies has as many entries as were verified, each hashing to its
// entry_hash, and its head is its last entry.

#include <cstddef>
#include <cstdint>
#include <optional>
#include <string>
#include <vector>

#include "absl/status/status.h"
#include "google/protobuf/io/coded_stream.h"
#include "key_service/audit_format.h"
#include "key_service/audit_signer.h"
#include "key_service/audit_verifier.h"
#include "tests/fuzz/fuzz_util.h"

namespace residency::fuzz {
namespace {

const std::string& PublicKey() {
  static const std::string* const key = [] {
    absl::StatusOr<key_service::AuditSigner> signer =
        key_service::AuditSigner::FromSeed(
            ThrowawayKey(key_service::AuditSigner::kSeedSize, kAuditSeedFill));
    FUZZ_CHECK(signer.ok());
    return new std::string(signer->public_key());
  }();
  return *key;
}

// Splits the framed items; stops at the first that does not parse.
std::vector<v1::ReadAuditLogResponse> Items(absl::string_view bytes) {
  std::vector<v1::ReadAuditLogResponse> items;
  google::protobuf::io::CodedInputStream in(
      reinterpret_cast<const uint8_t*>(bytes.data()),
      static_cast<int>(bytes.size()));
  uint32_t length;
  while (items.size() < 4096 && in.ReadVarint32(&length)) {
    const auto limit = in.PushLimit(static_cast<int>(length));
    v1::ReadAuditLogResponse item;
    if (!item.ParseFromCodedStream(&in) || !in.ConsumedEntireMessage()) break;
    in.PopLimit(limit);
    items.push_back(std::move(item));
  }
  return items;
}

bool ExpectedFailure(const absl::Status& s) {
  return s.code() == absl::StatusCode::kDataLoss ||
         s.code() == absl::StatusCode::kInvalidArgument ||
         s.code() == absl::StatusCode::kFailedPrecondition;
}

}  // namespace
}  // namespace residency::fuzz

extern "C" int LLVMFuzzerTestOneInput(const uint8_t* data, size_t size) {
  using namespace residency;
  using namespace residency::fuzz;
  if (size > 1 << 20) return 0;
  InputReader in(data, size);
  const uint8_t control = in.U8();
  std::vector<v1::ReadAuditLogResponse> items = Items(in.rest());
  std::optional<v1::AuditCheckpoint> trusted;
  size_t first = 0;
  if ((control & 4) && !items.empty()) {
    trusted = items[0].checkpoint();
    first = 1;
  }
  key_service::AuditVerifier verifier(PublicKey(), trusted,
                                      /*start_sequence=*/control & 3);
  absl::Status status;
  uint64_t entries = 0;
  const v1::AuditEntry* last = nullptr;
  for (size_t i = first; i < items.size() && status.ok(); ++i) {
    status = verifier.Add(items[i]);
    if (status.ok() && items[i].has_entry()) {
      ++entries;
      last = &items[i].entry();
      FUZZ_CHECK(key_service::ComputeAuditEntryHash(*last) ==
                 last->entry_hash());
    }
  }
  if (status.ok()) status = verifier.Finish();
  if (!status.ok()) {
    FUZZ_CHECK(ExpectedFailure(status));
    FUZZ_CHECK(verifier.Finish() == status);
    FUZZ_CHECK(verifier.Add(v1::ReadAuditLogResponse()) == status);
    return 0;
  }
  FUZZ_CHECK(verifier.entries_verified() == entries);
  FUZZ_CHECK(verifier.head_hash().size() == key_service::kAuditHashSize);
  if (last != nullptr) {
    FUZZ_CHECK(verifier.head_sequence() == last->sequence());
    FUZZ_CHECK(verifier.head_hash() == last->entry_hash());
  }
  return 0;
}
