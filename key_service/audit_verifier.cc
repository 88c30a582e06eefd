#include "key_service/audit_verifier.h"

#include <cstdint>
#include <fstream>
#include <memory>
#include <optional>
#include <sstream>
#include <string>
#include <utility>

#include "absl/strings/escaping.h"
#include "absl/strings/str_cat.h"
#include "google/protobuf/io/tokenizer.h"
#include "google/protobuf/text_format.h"
#include "key_service/audit_format.h"
#include "key_service/audit_log.h"
#include "key_service/audit_signer.h"
#include "rpc/printable.h"

namespace residency::key_service {
namespace {

using ::residency::v1::AuditCheckpoint;
using ::residency::v1::AuditEntry;
using ::residency::v1::ReadAuditLogResponse;

// Key and checkpoint files are tiny; anything larger is not one.
constexpr uintmax_t kMaxInputFileBytes = 1 << 20;

absl::Status DataLoss(auto&&... parts) {
  return absl::DataLossError(absl::StrCat(parts...));
}

std::string Missing(uint64_t first, uint64_t last) {
  return first == last ? absl::StrCat("entry ", first, " missing")
                       : absl::StrCat("entries ", first, "-", last, " missing");
}

absl::StatusOr<std::string> ReadSmallFile(const std::string& path,
                                          absl::string_view what) {
  std::ifstream in(path, std::ios::binary);
  if (!in) {
    return absl::NotFoundError(
        absl::StrCat("cannot read ", what, " file ", path));
  }
  std::string data;
  char buffer[4096];
  while (in.read(buffer, sizeof(buffer)) || in.gcount() > 0) {
    data.append(buffer, static_cast<size_t>(in.gcount()));
    if (data.size() > kMaxInputFileBytes) {
      return absl::InvalidArgumentError(absl::StrCat(
          what, " file ", path, " is over ", kMaxInputFileBytes, " bytes"));
    }
  }
  if (in.bad()) {
    return absl::NotFoundError(
        absl::StrCat("cannot read ", what, " file ", path));
  }
  return data;
}

}  // namespace

AuditVerifier::AuditVerifier(std::string public_key_raw32,
                             std::optional<AuditCheckpoint> trusted,
                             uint64_t start_sequence)
    : public_key_(std::move(public_key_raw32)),
      trusted_(std::move(trusted)),
      start_(start_sequence == 0 ? 1 : start_sequence),
      last_sequence_(start_ - 1) {
  if (start_ == 1) last_hash_ = ZeroAuditHash();
  if (public_key_.size() != AuditSigner::kPublicKeySize) {
    status_ = absl::InvalidArgumentError(
        absl::StrCat("audit public key must be ", AuditSigner::kPublicKeySize,
                     " bytes, got ", public_key_.size()));
    return;
  }
  if (!trusted_.has_value()) return;
  const AuditCheckpoint& t = *trusted_;
  if (t.head_hash().size() != kAuditHashSize ||
      !VerifyEd25519(public_key_, CheckpointSigningInput(t), t.signature())
           .ok()) {
    status_ =
        DataLoss("trusted checkpoint at ", t.sequence(), ": bad signature");
    return;
  }
  if (t.sequence() == 0 && t.head_hash() != ZeroAuditHash()) {
    status_ =
        DataLoss("trusted checkpoint at 0: head_hash is not 32 zero bytes");
    return;
  }
  if (t.sequence() + 1 < start_) {
    status_ = absl::FailedPreconditionError(
        absl::StrCat("trusted checkpoint at ", t.sequence(),
                     " cannot be checked by a read from ", start_,
                     ": read from ", t.sequence() + 1, " or earlier"));
    return;
  }
  if (t.sequence() + 1 == start_) {
    last_hash_ = t.head_hash();
    anchored_by_trusted_ = true;
  }
}

absl::Status AuditVerifier::Fail(absl::Status status) {
  status_ = status;
  return status;
}

absl::Status AuditVerifier::Add(const ReadAuditLogResponse& item) {
  if (!status_.ok()) return status_;
  switch (item.item_case()) {
    case ReadAuditLogResponse::kEntry:
      return AddEntry(item.entry());
    case ReadAuditLogResponse::kCheckpoint:
      return AddCheckpoint(item.checkpoint());
    case ReadAuditLogResponse::ITEM_NOT_SET:
      break;
  }
  return Fail(DataLoss("audit stream item after entry ", last_sequence_,
                       " holds neither an entry nor a checkpoint"));
}

absl::Status AuditVerifier::AddEntry(const AuditEntry& entry) {
  const uint64_t s = entry.sequence();
  const uint64_t expected = last_sequence_ + 1;
  if (s != expected) {
    if (entries_ == 0) {
      if (s > expected) {
        return Fail(DataLoss("audit log starts at entry ", s,
                             " but the read began at ", expected, ": ",
                             Missing(expected, s - 1)));
      }
      return Fail(DataLoss("audit log starts at entry ", s,
                           ", before the read's start ", expected));
    }
    if (s > expected) {
      return Fail(DataLoss("audit log jumps from entry ", last_sequence_,
                           " to ", s, ": ", Missing(expected, s - 1)));
    }
    return Fail(DataLoss("audit log goes back from entry ", last_sequence_,
                         " to ", s, " (reordered or duplicated)"));
  }
  if (entry.prev_hash().size() != kAuditHashSize ||
      entry.entry_hash().size() != kAuditHashSize) {
    return Fail(DataLoss("audit entry ", s,
                         ": prev_hash and entry_hash must "
                         "be ",
                         kAuditHashSize, " bytes, got ",
                         entry.prev_hash().size(), " and ",
                         entry.entry_hash().size()));
  }
  if (ComputeAuditEntryHash(entry) != entry.entry_hash()) {
    return Fail(DataLoss("audit entry ", s,
                         ": entry_hash does not match its "
                         "contents (edited)"));
  }
  if (!last_hash_.empty() && entry.prev_hash() != last_hash_) {
    if (s == 1) {
      return Fail(DataLoss("audit entry 1: prev_hash is not 32 zero bytes"));
    }
    if (anchored_by_trusted_ && entries_ == 0) {
      return Fail(DataLoss("audit entry ", s,
                           ": prev_hash does not link to entry ", s - 1,
                           " of the trusted checkpoint (log rewritten after "
                           "the checkpoint)"));
    }
    return Fail(DataLoss(
        "audit entry ", s, ": prev_hash does not link to entry ", s - 1,
        " (entry ", s - 1, " rewritten, reordered or an entry deleted)"));
  }
  if (trusted_.has_value() && trusted_->sequence() == s &&
      trusted_->head_hash() != entry.entry_hash()) {
    return Fail(DataLoss("audit entry ", s,
                         " does not match the trusted checkpoint at ", s,
                         " (log rewritten after the checkpoint)"));
  }
  ++entries_;
  last_sequence_ = s;
  last_hash_ = entry.entry_hash();
  covered_ = false;
  return absl::OkStatus();
}

absl::Status AuditVerifier::AddCheckpoint(const AuditCheckpoint& checkpoint) {
  const uint64_t s = checkpoint.sequence();
  const std::string key_id = PublicKeyId(public_key_);
  if (!checkpoint.public_key_id().empty() &&
      checkpoint.public_key_id() != key_id) {
    return Fail(DataLoss("checkpoint at ", s, ": signed by key ",
                         rpc::Printable(checkpoint.public_key_id()),
                         ", not the given key ", key_id));
  }
  if (!VerifyEd25519(public_key_, CheckpointSigningInput(checkpoint),
                     checkpoint.signature())
           .ok()) {
    return Fail(DataLoss("checkpoint at ", s, ": bad signature"));
  }
  if (checkpoint.head_hash().size() != kAuditHashSize) {
    return Fail(DataLoss("checkpoint at ", s, ": head_hash is ",
                         checkpoint.head_hash().size(), " bytes, not ",
                         kAuditHashSize));
  }
  if (entries_ > 0) {
    if (s > last_sequence_) {
      return Fail(DataLoss("checkpoint at ", s, " follows entry ",
                           last_sequence_, ": ", Missing(last_sequence_ + 1, s),
                           " (truncated)"));
    }
    if (s < last_sequence_) {
      return Fail(DataLoss("checkpoint at ", s, " follows entry ",
                           last_sequence_,
                           " instead of the entry it covers (reordered)"));
    }
  } else if (s >= start_) {
    // No entry received: the checkpoint may only cover entries before the
    // read.
    return Fail(
        DataLoss("checkpoint at ", s, " covers entries from ", start_,
                 " that the stream did not send: ", Missing(start_, s)));
  }
  if (s == last_sequence_ && !last_hash_.empty() &&
      checkpoint.head_hash() != last_hash_) {
    return Fail(DataLoss("checkpoint at ", s,
                         ": head_hash does not match entry ", s,
                         " (log rewritten after the checkpoint was signed)"));
  }
  if (trusted_.has_value() && trusted_->sequence() == s &&
      trusted_->head_hash() != checkpoint.head_hash()) {
    return Fail(DataLoss("checkpoint at ", s,
                         " contradicts the trusted checkpoint at ", s,
                         " (log rewritten after the checkpoint)"));
  }
  if (s == last_sequence_ && last_hash_.empty()) {
    // A read from the middle: the entries that follow must link to it.
    last_hash_ = checkpoint.head_hash();
  }
  ++checkpoints_;
  covered_ = s == last_sequence_;
  head_sequence_ = s;
  head_hash_ = checkpoint.head_hash();
  return absl::OkStatus();
}

absl::Status AuditVerifier::Finish() {
  if (!status_.ok()) return status_;
  if (entries_ == 0 && checkpoints_ == 0) {
    return Fail(DataLoss("audit stream is empty: no entry and no checkpoint"));
  }
  if (entries_ > 0 && !covered_) {
    return Fail(DataLoss("audit log ends at entry ", last_sequence_,
                         " without a checkpoint covering it (entries after "
                         "the last checkpoint are unsigned)"));
  }
  const uint64_t end = entries_ > 0 ? last_sequence_ : head_sequence_;
  if (trusted_.has_value() && trusted_->sequence() > end) {
    return Fail(DataLoss("audit log ends at entry ", end,
                         " but trusted checkpoint covers ",
                         trusted_->sequence(), " (truncated)"));
  }
  return absl::OkStatus();
}

std::string AuditVerification::Summary() const {
  return absl::StrCat("OK: ", entries, " entries, head ",
                      absl::BytesToHexString(head_hash), " at ", head_sequence,
                      ", ", checkpoints, " checkpoints verified");
}

absl::StatusOr<AuditVerification> VerifyAuditDirectory(
    const std::string& dir, absl::string_view public_key_raw32,
    std::optional<AuditCheckpoint> trusted) {
  absl::StatusOr<std::unique_ptr<AuditLogReader>> reader =
      AuditLogReader::Open(dir);
  if (!reader.ok()) return reader.status();
  AuditVerifier verifier(std::string(public_key_raw32), std::move(trusted),
                         /*start_sequence=*/1);
  absl::Status verdict;
  absl::Status read = (*reader)->Read(
      /*start_sequence=*/1, /*max_entries=*/0,
      [&](const ReadAuditLogResponse& item) {
        verdict = verifier.Add(item);
        return verdict.ok();
      });
  // A verdict on what was read comes first: the reader stops at it. A read
  // error (an unparsable value) names the entry the verifier never saw.
  if (!verdict.ok()) return verdict;
  if (!read.ok()) return read;
  absl::Status status = verifier.Finish();
  if (!status.ok()) return status;
  AuditVerification out;
  out.entries = verifier.entries_verified();
  out.checkpoints = verifier.checkpoints_verified();
  out.head_sequence = verifier.head_sequence();
  out.head_hash = verifier.head_hash();
  return out;
}

absl::StatusOr<std::string> ReadPublicKeyPemFile(const std::string& path) {
  absl::StatusOr<std::string> pem = ReadSmallFile(path, "public key");
  if (!pem.ok()) return pem.status();
  absl::StatusOr<std::string> key = ParsePublicKeyPem(*pem);
  if (!key.ok()) {
    return absl::InvalidArgumentError(
        absl::StrCat("public key file ", path, ": ", key.status().message()));
  }
  return key;
}

absl::StatusOr<AuditCheckpoint> ReadCheckpointTextFile(
    const std::string& path) {
  absl::StatusOr<std::string> text = ReadSmallFile(path, "checkpoint");
  if (!text.ok()) return text.status();
  // Collects the parser's first complaint for the error, instead of letting
  // protobuf print it to stderr.
  class FirstError : public google::protobuf::io::ErrorCollector {
   public:
    void AddError(int line, google::protobuf::io::ColumnNumber column,
                  const std::string& message) override {
      if (text.empty()) {
        text = absl::StrCat("line ", line + 1, " column ", column + 1, ": ",
                            message);
      }
    }
    std::string text;
  } error;
  google::protobuf::TextFormat::Parser parser;
  parser.RecordErrorsTo(&error);
  AuditCheckpoint checkpoint;
  if (!parser.ParseFromString(*text, &checkpoint)) {
    return absl::InvalidArgumentError(absl::StrCat(
        "checkpoint file ", path,
        " is not a text-format residency.v1.AuditCheckpoint: ", error.text));
  }
  return checkpoint;
}

}  // namespace residency::key_service
