#include "key_service/audit_log.h"

#include <algorithm>
#include <cstdarg>
#include <cstdint>
#include <cstdlib>
#include <filesystem>
#include <limits>
#include <memory>
#include <optional>
#include <string>
#include <system_error>
#include <utility>
#include <vector>

#include "absl/status/status.h"
#include "absl/strings/str_cat.h"
#include "absl/synchronization/notification.h"
#include "key_service/audit_format.h"
#include "rocks/write.h"
#include "rocksdb/db.h"
#include "rocksdb/env.h"
#include "rocksdb/iterator.h"
#include "rocksdb/options.h"
#include "rocksdb/write_batch.h"

namespace residency::key_service {
namespace {

using ::residency::v1::AuditCheckpoint;
using ::residency::v1::AuditEntry;
using ::residency::v1::ReadAuditLogResponse;

constexpr char kEntryPrefix = 'e';
constexpr char kCheckpointPrefix = 'c';
constexpr size_t kKeySize = 9;

std::string Key(char prefix, uint64_t sequence) {
  std::string key(kKeySize, prefix);
  for (int i = 8; i >= 1; --i, sequence >>= 8) {
    key[i] = static_cast<char>(sequence & 0xff);
  }
  return key;
}
std::string EntryKey(uint64_t sequence) { return Key(kEntryPrefix, sequence); }
std::string CheckpointKey(uint64_t sequence) {
  return Key(kCheckpointPrefix, sequence);
}

// The sequence in a key of the given prefix, or nullopt for any other key.
std::optional<uint64_t> KeySequence(char prefix, const rocksdb::Slice& key) {
  if (key.size() != kKeySize || key[0] != prefix) return std::nullopt;
  uint64_t sequence = 0;
  for (size_t i = 1; i < kKeySize; ++i) {
    sequence = (sequence << 8) | static_cast<uint8_t>(key[i]);
  }
  return sequence;
}

absl::Status FromRocks(const rocksdb::Status& status, absl::string_view what) {
  if (status.ok()) return absl::OkStatus();
  const std::string message = absl::StrCat(what, ": ", status.ToString());
  if (status.IsCorruption()) return absl::DataLossError(message);
  return absl::InternalError(message);
}

// What an entry gets once a write before it has failed.
absl::Status RefusedAfter(const absl::Status& failed) {
  return absl::FailedPreconditionError(
      absl::StrCat("audit log refuses entries after a failed write (",
                   failed.message(), ") until it is opened again"));
}

absl::Status NotParsable(uint64_t sequence) {
  return absl::DataLossError(
      absl::StrCat("audit entry ", sequence,
                   ": stored value is not a valid AuditEntry (corrupted)"));
}

// Discards RocksDB's info log, so a reader writes no LOG file anywhere.
class SilentLogger : public rocksdb::Logger {
 public:
  using rocksdb::Logger::Logv;
  void Logv(const char* /*format*/, va_list /*ap*/) override {}
};

// What StreamStored sent.
struct Streamed {
  bool stopped = false;  // the sink returned false
  uint64_t entries = 0;
  uint64_t last_entry = 0;  // sequence of the last entry sent
  std::string last_entry_hash;
  bool last_covered = false;  // the last item sent is a checkpoint of it
};

// Sends the stored entries with keys in [start, end] in key order, merged
// with the stored checkpoints in [start, end]: a checkpoint goes right after
// the greatest entry key not above its sequence (so right after the entry it
// covers when that entry is stored), and checkpoints past the last entry key
// are sent at the end. Stored bytes are sent as they are; judging them is
// the verifier's job.
absl::StatusOr<Streamed> StreamStored(rocksdb::DB& db, uint64_t start,
                                      uint64_t end, const AuditSink& sink) {
  Streamed out;
  // Each iterator is a consistent view as of its creation. No explicit
  // snapshot (which secondary instances do not support) is needed across the
  // two: entries and checkpoints up to `end` are never rewritten by the log,
  // and AuditLog::Read only asks for entries already durable.
  std::unique_ptr<rocksdb::Iterator> entries(
      db.NewIterator(rocksdb::ReadOptions()));
  std::unique_ptr<rocksdb::Iterator> checkpoints(
      db.NewIterator(rocksdb::ReadOptions()));

  ReadAuditLogResponse item;
  checkpoints->Seek(CheckpointKey(start));
  // Sends the stored checkpoints with sequence <= `upto`.
  auto send_checkpoints = [&](uint64_t upto) -> absl::StatusOr<bool> {
    for (; checkpoints->Valid(); checkpoints->Next()) {
      const std::optional<uint64_t> sequence =
          KeySequence(kCheckpointPrefix, checkpoints->key());
      if (!sequence.has_value() || *sequence > upto || *sequence > end) break;
      if (!item.mutable_checkpoint()->ParseFromArray(
              checkpoints->value().data(),
              static_cast<int>(checkpoints->value().size()))) {
        return absl::DataLossError(absl::StrCat(
            "checkpoint at ", *sequence,
            ": stored value is not a valid AuditCheckpoint (corrupted)"));
      }
      if (!sink(item)) return false;
      out.last_covered = out.entries > 0 &&
                         item.checkpoint().sequence() == out.last_entry &&
                         *sequence == out.last_entry;
    }
    if (!checkpoints->status().ok()) {
      return FromRocks(checkpoints->status(), "reading audit checkpoints");
    }
    return true;
  };

  for (entries->Seek(EntryKey(start)); entries->Valid(); entries->Next()) {
    const std::optional<uint64_t> sequence =
        KeySequence(kEntryPrefix, entries->key());
    if (!sequence.has_value() || *sequence > end) break;
    // Checkpoints between the previous entry and this one.
    absl::StatusOr<bool> more = send_checkpoints(*sequence - 1);
    if (!more.ok()) return more.status();
    if (!*more) {
      out.stopped = true;
      return out;
    }
    if (!item.mutable_entry()->ParseFromArray(
            entries->value().data(),
            static_cast<int>(entries->value().size()))) {
      return NotParsable(*sequence);
    }
    if (!sink(item)) {
      out.stopped = true;
      return out;
    }
    ++out.entries;
    out.last_entry = *sequence;
    out.last_entry_hash = item.entry().entry_hash();
    out.last_covered = false;
  }
  if (!entries->status().ok()) {
    return FromRocks(entries->status(), "reading audit entries");
  }
  absl::StatusOr<bool> more = send_checkpoints(end);
  if (!more.ok()) return more.status();
  out.stopped = !*more;
  return out;
}

// Checks stored entries from+1 .. to: each is stored under its own sequence,
// parses, has an entry_hash matching its contents and a prev_hash equal to
// the entry_hash before it (`from_hash` for the first). Returns the
// entry_hash of entry `to`.
absl::StatusOr<std::string> WalkStoredChain(rocksdb::DB& db, uint64_t from,
                                            std::string from_hash,
                                            uint64_t to) {
  std::string hash = std::move(from_hash);
  if (from >= to) return hash;
  std::unique_ptr<rocksdb::Iterator> it(db.NewIterator(rocksdb::ReadOptions()));
  uint64_t expected = from + 1;
  AuditEntry entry;
  for (it->Seek(EntryKey(expected)); expected <= to; it->Next(), ++expected) {
    if (!it->Valid()) break;
    const std::optional<uint64_t> sequence =
        KeySequence(kEntryPrefix, it->key());
    if (sequence != expected) break;
    if (!entry.ParseFromArray(it->value().data(),
                              static_cast<int>(it->value().size()))) {
      return NotParsable(expected);
    }
    if (entry.sequence() != expected) {
      return absl::DataLossError(
          absl::StrCat("audit entry ", expected, ": stored under its key but ",
                       "says sequence ", entry.sequence(), " (moved)"));
    }
    if (entry.entry_hash() != ComputeAuditEntryHash(entry)) {
      return absl::DataLossError(
          absl::StrCat("audit entry ", expected,
                       ": entry_hash does not match its contents (edited)"));
    }
    if (entry.prev_hash() != hash) {
      return absl::DataLossError(absl::StrCat(
          "audit entry ", expected, ": prev_hash does not link to entry ",
          expected - 1, " (rewritten, reordered or an entry deleted)"));
    }
    hash = entry.entry_hash();
  }
  if (!it->status().ok()) {
    return FromRocks(it->status(), "reading audit entries");
  }
  if (expected <= to) {
    return absl::DataLossError(
        absl::StrCat("audit entry ", expected, " is missing"));
  }
  return hash;
}

// The stored checkpoint with the greatest sequence, if any.
absl::StatusOr<std::optional<AuditCheckpoint>> LastStoredCheckpoint(
    rocksdb::DB& db) {
  std::unique_ptr<rocksdb::Iterator> it(db.NewIterator(rocksdb::ReadOptions()));
  it->SeekForPrev(CheckpointKey(std::numeric_limits<uint64_t>::max()));
  if (!it->status().ok()) {
    return FromRocks(it->status(), "reading audit checkpoints");
  }
  if (!it->Valid()) return std::nullopt;
  const std::optional<uint64_t> sequence =
      KeySequence(kCheckpointPrefix, it->key());
  if (!sequence.has_value()) return std::nullopt;
  AuditCheckpoint checkpoint;
  if (!checkpoint.ParseFromArray(it->value().data(),
                                 static_cast<int>(it->value().size())) ||
      checkpoint.sequence() != *sequence) {
    return absl::DataLossError(absl::StrCat("checkpoint at ", *sequence,
                                            ": stored value is corrupted"));
  }
  return checkpoint;
}

// The greatest stored entry key's sequence, 0 if there is none.
absl::StatusOr<uint64_t> LastStoredSequence(rocksdb::DB& db) {
  std::unique_ptr<rocksdb::Iterator> it(db.NewIterator(rocksdb::ReadOptions()));
  it->SeekForPrev(EntryKey(std::numeric_limits<uint64_t>::max()));
  if (!it->status().ok()) {
    return FromRocks(it->status(), "reading audit entries");
  }
  if (!it->Valid()) return 0;
  return KeySequence(kEntryPrefix, it->key()).value_or(0);
}

absl::Status CheckCheckpointSignature(const AuditCheckpoint& checkpoint,
                                      absl::string_view public_key) {
  absl::Status status = VerifyEd25519(
      public_key, CheckpointSigningInput(checkpoint), checkpoint.signature());
  if (!status.ok()) {
    return absl::DataLossError(absl::StrCat(
        "checkpoint at ", checkpoint.sequence(), ": bad signature"));
  }
  return absl::OkStatus();
}

}  // namespace

AuditLog::AuditLog(std::unique_ptr<rocksdb::Env> env,
                   std::unique_ptr<rocksdb::DB> db, AuditSigner signer,
                   AuditLogOptions options, uint64_t last_sequence,
                   std::string head_hash, uint64_t last_checkpoint)
    : env_(std::move(env)),
      db_(std::move(db)),
      signer_(std::move(signer)),
      options_(std::move(options)),
      last_sequence_(last_sequence),
      head_hash_(head_hash),
      durable_sequence_(last_sequence),
      durable_hash_(std::move(head_hash)),
      last_checkpoint_(last_checkpoint) {}

absl::StatusOr<std::unique_ptr<AuditLog>> AuditLog::Open(
    const std::string& dir, AuditSigner signer, AuditLogOptions options) {
  rocksdb::Options db_options;
  db_options.create_if_missing = true;
  std::unique_ptr<rocksdb::Env> env;
  if (options.file_system != nullptr) {
    env = rocksdb::NewCompositeEnv(options.file_system);
    db_options.env = env.get();
  }
  rocksdb::DB* raw_db = nullptr;
  absl::Status status =
      FromRocks(rocksdb::DB::Open(db_options, dir, &raw_db),
                absl::StrCat("cannot open audit log at ", dir));
  if (!status.ok()) return status;
  std::unique_ptr<rocksdb::DB> db(raw_db);

  // Recover the head, and refuse to extend a chain that does not hold from
  // the last signed checkpoint to the last entry.
  absl::StatusOr<uint64_t> head = LastStoredSequence(*db);
  if (!head.ok()) return head.status();
  absl::StatusOr<std::optional<AuditCheckpoint>> checkpoint =
      LastStoredCheckpoint(*db);
  if (!checkpoint.ok()) return checkpoint.status();
  uint64_t from = 0;
  std::string from_hash = ZeroAuditHash();
  if (checkpoint->has_value()) {
    const AuditCheckpoint& c = **checkpoint;
    if (c.public_key_id() != signer.public_key_id()) {
      return absl::FailedPreconditionError(absl::StrCat(
          "audit log at ", dir, " is signed by key ", c.public_key_id(),
          ", not by the given key ", signer.public_key_id()));
    }
    status = CheckCheckpointSignature(c, signer.public_key());
    if (!status.ok()) return status;
    if (c.sequence() > *head) {
      return absl::DataLossError(absl::StrCat(
          "audit log at ", dir, " ends at entry ", *head,
          " but its checkpoint covers ", c.sequence(), " (truncated)"));
    }
    if (c.sequence() > 0) {
      std::string value;
      const rocksdb::Status got =
          db->Get(rocksdb::ReadOptions(), EntryKey(c.sequence()), &value);
      if (got.IsNotFound()) {
        return absl::DataLossError(
            absl::StrCat("audit log at ", dir, ": audit entry ", c.sequence(),
                         ", covered by its last checkpoint, is missing"));
      }
      status =
          FromRocks(got, absl::StrCat("reading audit entry ", c.sequence()));
      if (!status.ok()) return status;
      AuditEntry entry;
      if (!entry.ParseFromString(value)) return NotParsable(c.sequence());
      if (entry.sequence() != c.sequence() ||
          entry.entry_hash() != ComputeAuditEntryHash(entry) ||
          entry.entry_hash() != c.head_hash()) {
        return absl::DataLossError(
            absl::StrCat("audit log at ", dir, ": audit entry ", c.sequence(),
                         " does not match its signed checkpoint (edited)"));
      }
    }
    from = c.sequence();
    from_hash = c.head_hash();
  }
  absl::StatusOr<std::string> head_hash =
      WalkStoredChain(*db, from, std::move(from_hash), *head);
  if (!head_hash.ok()) {
    return absl::DataLossError(absl::StrCat(
        "audit log at ", dir, " does not chain from checkpoint ", from,
        " to its last entry ", *head, ": ", head_hash.status().message(),
        "; refusing to append to it (run audit_verify)"));
  }

  std::unique_ptr<AuditLog> log(
      new AuditLog(std::move(env), std::move(db), std::move(signer),
                   std::move(options), *head, *std::move(head_hash), from));
  status = log->CheckpointHeadIfUncovered();
  if (!status.ok()) return status;
  log->replier_ = std::thread([log = log.get()] { log->ReplyLoop(); });
  log->writer_ = std::thread([log = log.get()] { log->WriterLoop(); });
  return log;
}

AuditLog::~AuditLog() {
  {
    absl::MutexLock lock(&mu_);
    stopping_ = true;
  }
  // Not started when Open failed part way.
  if (writer_.joinable()) writer_.join();
  if (replier_.joinable()) replier_.join();
  // Nothing useful can be done with a failure here: the entries are durable
  // and the next Open signs the head instead.
  (void)CheckpointHeadIfUncovered();
}

bool AuditLog::HasWork() const { return stopping_ || !queue_.empty(); }

bool AuditLog::HasReplies() const { return writer_done_ || !replies_.empty(); }

bool AuditLog::RepliesIdle() const { return !replying_ && replies_.empty(); }

void AuditLog::Append(AuditEntry entry, DoneCallback done) {
  Pending pending;
  pending.done = std::move(done);
  absl::MutexLock lock(&mu_);
  if (!failed_.ok()) {
    pending.status = RefusedAfter(failed_);
    queue_.push_back(std::move(pending));
    return;
  }
  entry.set_sequence(last_sequence_ + 1);
  *entry.mutable_time() = ToTimestamp(options_.clock());
  entry.set_prev_hash(head_hash_);
  entry.set_entry_hash(ComputeAuditEntryHash(entry));
  pending.value = entry.SerializeAsString();
  if (pending.value.size() > kMaxAuditEntryBytes) {
    pending.status = absl::InvalidArgumentError(absl::StrCat(
        "audit entry of ", pending.value.size(), " bytes exceeds the ",
        kMaxAuditEntryBytes, "-byte limit (request '",
        entry.request_id().substr(0, 64), "')"));
    pending.value.clear();
    queue_.push_back(std::move(pending));
    return;
  }
  last_sequence_ = entry.sequence();
  head_hash_ = entry.entry_hash();
  pending.sequence = entry.sequence();
  pending.entry_hash = std::move(*entry.mutable_entry_hash());
  queue_.push_back(std::move(pending));
}

absl::Status AuditLog::AppendAndWait(AuditEntry entry) {
  absl::Notification written;
  absl::Status result;
  Append(std::move(entry), [&](absl::Status status) {
    result = std::move(status);
    written.Notify();
  });
  written.WaitForNotification();
  return result;
}

uint64_t AuditLog::last_sequence() const {
  absl::MutexLock lock(&mu_);
  return last_sequence_;
}

uint64_t AuditLog::durable_sequence() const {
  absl::MutexLock lock(&mu_);
  return durable_sequence_;
}

uint64_t AuditLog::write_batches() const {
  absl::MutexLock lock(&mu_);
  return write_batches_;
}

void AuditLog::WriterLoop() {
  rocksdb::WriteOptions write_options;
  write_options.sync = true;
  for (;;) {
    std::vector<Pending> round;
    absl::Status failed;
    {
      absl::MutexLock lock(&mu_);
      mu_.Await(absl::Condition(this, &AuditLog::HasWork));
      round.swap(queue_);
      failed = failed_;
    }
    if (round.empty()) {
      // Stopping. A callback still running on the reply thread may append
      // more, so the writer stops only once that thread is idle and nothing
      // is queued.
      {
        absl::MutexLock lock(&replies_mu_);
        replies_mu_.Await(absl::Condition(this, &AuditLog::RepliesIdle));
      }
      absl::MutexLock lock(&mu_);
      if (queue_.empty()) break;
      continue;
    }

    rocksdb::WriteBatch batch;
    // Entries queued before an earlier round's write failed chain onto
    // entries that are not stored: writing them would leave a gap.
    absl::Status status = failed.ok() ? absl::OkStatus() : RefusedAfter(failed);
    uint64_t last = 0;
    std::string last_hash;
    uint64_t last_checkpoint = last_checkpoint_;
    for (const Pending& p : round) {
      if (!status.ok()) break;
      if (p.sequence == 0) continue;
      batch.Put(EntryKey(p.sequence), p.value);
      last = p.sequence;
      last_hash = p.entry_hash;
      if (options_.checkpoint_every > 0 &&
          p.sequence % options_.checkpoint_every == 0) {
        absl::StatusOr<AuditCheckpoint> checkpoint =
            SignCheckpoint(p.sequence, p.entry_hash);
        if (!checkpoint.ok()) {
          status = checkpoint.status();
          break;
        }
        batch.Put(CheckpointKey(p.sequence), checkpoint->SerializeAsString());
        last_checkpoint = p.sequence;
      }
    }
    if (status.ok() && last > 0) {
      status = FromRocks(rocks::Write(db_.get(), write_options, &batch),
                         absl::StrCat("writing audit entries up to ", last));
      if (!status.ok()) status = absl::InternalError(status.message());
    }
    bool first_failure = false;
    {
      absl::MutexLock lock(&mu_);
      if (last > 0) {
        if (status.ok()) {
          durable_sequence_ = last;
          durable_hash_ = last_hash;
          ++write_batches_;
        } else if (failed_.ok()) {
          failed_ = status;
          first_failure = true;
        }
      }
    }
    if (first_failure && options_.on_failed) options_.on_failed();
    if (status.ok()) last_checkpoint_ = last_checkpoint;
    // With more entries waiting, the reply thread answers this round while
    // the next one is written. Otherwise the writer answers it itself, which
    // saves a thread hand-off on every call of a caller that is alone; it
    // may only do so once the reply thread has answered every earlier round.
    bool more_waiting;
    {
      absl::MutexLock lock(&mu_);
      more_waiting = !queue_.empty();
    }
    {
      absl::MutexLock lock(&replies_mu_);
      if (more_waiting || replying_ || !replies_.empty()) {
        replies_.push_back(Written{std::move(round), std::move(status)});
        continue;
      }
    }
    for (Pending& p : round) {
      std::move(p.done)(p.sequence == 0 ? p.status : status);
    }
  }
  absl::MutexLock lock(&replies_mu_);
  writer_done_ = true;
}

void AuditLog::ReplyLoop() {
  for (;;) {
    std::vector<Written> rounds;
    {
      absl::MutexLock lock(&replies_mu_);
      replies_mu_.Await(absl::Condition(this, &AuditLog::HasReplies));
      if (replies_.empty()) return;  // the writer is done, all answered
      rounds.swap(replies_);
      replying_ = true;
    }
    for (Written& written : rounds) {
      for (Pending& p : written.round) {
        std::move(p.done)(p.sequence == 0 ? p.status : written.status);
      }
    }
    absl::MutexLock lock(&replies_mu_);
    replying_ = false;
  }
}

absl::StatusOr<AuditCheckpoint> AuditLog::SignCheckpoint(
    uint64_t sequence, std::string head_hash) const {
  AuditCheckpoint checkpoint;
  checkpoint.set_sequence(sequence);
  checkpoint.set_head_hash(std::move(head_hash));
  *checkpoint.mutable_time() = ToTimestamp(options_.clock());
  checkpoint.set_public_key_id(signer_.public_key_id());
  absl::StatusOr<std::string> signature =
      signer_.Sign(CheckpointSigningInput(checkpoint));
  if (!signature.ok()) return signature.status();
  checkpoint.set_signature(*std::move(signature));
  return checkpoint;
}

absl::Status AuditLog::CheckpointHeadIfUncovered() {
  uint64_t head;
  std::string head_hash;
  {
    absl::MutexLock lock(&mu_);
    if (!failed_.ok()) return failed_;
    head = durable_sequence_;
    head_hash = durable_hash_;
  }
  if (head == 0 || head == last_checkpoint_) return absl::OkStatus();
  absl::StatusOr<AuditCheckpoint> checkpoint =
      SignCheckpoint(head, std::move(head_hash));
  if (!checkpoint.ok()) return checkpoint.status();
  rocksdb::WriteOptions write_options;
  write_options.sync = true;
  absl::Status status =
      FromRocks(rocks::Put(db_.get(), write_options, CheckpointKey(head),
                           checkpoint->SerializeAsString()),
                absl::StrCat("storing audit checkpoint at ", head));
  if (status.ok()) last_checkpoint_ = head;
  return status;
}

absl::StatusOr<AuditCheckpoint> AuditLog::Checkpoint() const {
  uint64_t head;
  std::string head_hash;
  {
    absl::MutexLock lock(&mu_);
    head = durable_sequence_;
    head_hash = durable_hash_;
  }
  return SignCheckpoint(head, std::move(head_hash));
}

absl::Status AuditLog::ConfirmStoredHash(uint64_t sequence,
                                         const std::string& stored_hash,
                                         uint64_t head,
                                         const std::string& head_hash) const {
  uint64_t target = head;
  std::string target_hash = head_hash;
  // The nearest later stored checkpoint that this log signed saves walking
  // to the head.
  std::unique_ptr<rocksdb::Iterator> it(
      db_->NewIterator(rocksdb::ReadOptions()));
  for (it->Seek(CheckpointKey(sequence + 1)); it->Valid(); it->Next()) {
    const std::optional<uint64_t> at =
        KeySequence(kCheckpointPrefix, it->key());
    if (!at.has_value() || *at >= head) break;
    AuditCheckpoint checkpoint;
    if (checkpoint.ParseFromArray(it->value().data(),
                                  static_cast<int>(it->value().size())) &&
        checkpoint.sequence() == *at &&
        CheckCheckpointSignature(checkpoint, signer_.public_key()).ok()) {
      target = *at;
      target_hash = checkpoint.head_hash();
      break;
    }
  }
  absl::StatusOr<std::string> reached =
      WalkStoredChain(*db_, sequence, stored_hash, target);
  absl::Status status = reached.status();
  if (status.ok() && *reached != target_hash) {
    status = absl::DataLossError(absl::StrCat(
        "the stored chain from entry ", sequence, " does not reach the ",
        target == head ? "log's head" : "signed checkpoint", " at ", target));
  }
  if (!status.ok()) {
    return absl::DataLossError(
        absl::StrCat("refusing to sign a checkpoint at ", sequence,
                     ": stored log altered: ", status.message()));
  }
  return absl::OkStatus();
}

absl::Status AuditLog::Read(uint64_t start_sequence, uint64_t max_entries,
                            const AuditSink& sink) const {
  uint64_t head;
  std::string head_hash;
  {
    absl::MutexLock lock(&mu_);
    head = durable_sequence_;
    head_hash = durable_hash_;
  }
  const uint64_t start = start_sequence == 0 ? 1 : start_sequence;
  uint64_t end = head;
  if (max_entries > 0 && max_entries - 1 < end - std::min(end, start)) {
    end = start + max_entries - 1;
  }
  const absl::Status cancelled = absl::CancelledError(
      absl::StrCat("audit log read from ", start, " stopped by its reader"));

  ReadAuditLogResponse item;
  if (start > end) {
    absl::StatusOr<AuditCheckpoint> checkpoint =
        SignCheckpoint(head, std::move(head_hash));
    if (!checkpoint.ok()) return checkpoint.status();
    *item.mutable_checkpoint() = *std::move(checkpoint);
    return sink(item) ? absl::OkStatus() : cancelled;
  }

  absl::StatusOr<Streamed> streamed = StreamStored(*db_, start, end, sink);
  if (!streamed.ok()) return streamed.status();
  if (streamed->stopped) return cancelled;
  if (streamed->last_covered) return absl::OkStatus();
  if (streamed->entries == 0) {
    return absl::DataLossError(absl::StrCat("audit entries ", start, "-", end,
                                            " are missing from the store"));
  }
  absl::Status status = ConfirmStoredHash(
      streamed->last_entry, streamed->last_entry_hash, head, head_hash);
  if (!status.ok()) return status;
  absl::StatusOr<AuditCheckpoint> checkpoint =
      SignCheckpoint(streamed->last_entry, streamed->last_entry_hash);
  if (!checkpoint.ok()) return checkpoint.status();
  *item.mutable_checkpoint() = *std::move(checkpoint);
  return sink(item) ? absl::OkStatus() : cancelled;
}

AuditLogReader::AuditLogReader(std::unique_ptr<rocksdb::DB> db,
                               std::string secondary_dir)
    : db_(std::move(db)), secondary_dir_(std::move(secondary_dir)) {}

AuditLogReader::~AuditLogReader() {
  db_.reset();
  std::error_code ignored;
  std::filesystem::remove_all(secondary_dir_, ignored);
}

absl::StatusOr<std::unique_ptr<AuditLogReader>> AuditLogReader::Open(
    const std::string& dir) {
  std::error_code error;
  if (!std::filesystem::is_directory(dir, error) ||
      !std::filesystem::exists(std::filesystem::path(dir) / "CURRENT", error)) {
    return absl::NotFoundError(
        absl::StrCat("no audit log at ", dir, ": not a RocksDB directory"));
  }
  // A secondary instance needs a directory of its own for bookkeeping; the
  // primary's directory is only read.
  std::string secondary_template =
      (std::filesystem::temp_directory_path(error) / "audit-reader-XXXXXX")
          .string();
  if (mkdtemp(secondary_template.data()) == nullptr) {
    return absl::InternalError(
        absl::StrCat("cannot create a scratch directory ", secondary_template));
  }
  rocksdb::Options options;
  options.create_if_missing = false;
  options.max_open_files = -1;  // required for secondary instances
  options.info_log = std::make_shared<SilentLogger>();
  rocksdb::DB* raw_db = nullptr;
  absl::Status status = FromRocks(
      rocksdb::DB::OpenAsSecondary(options, dir, secondary_template, &raw_db),
      absl::StrCat("cannot open audit log at ", dir, " for reading"));
  std::unique_ptr<rocksdb::DB> db(raw_db);
  if (status.ok()) {
    status = FromRocks(db->TryCatchUpWithPrimary(),
                       absl::StrCat("cannot read audit log at ", dir));
  }
  if (!status.ok()) {
    db.reset();
    std::filesystem::remove_all(secondary_template, error);
    return status;
  }
  return std::unique_ptr<AuditLogReader>(
      new AuditLogReader(std::move(db), std::move(secondary_template)));
}

absl::Status AuditLogReader::Read(uint64_t start_sequence, uint64_t max_entries,
                                  const AuditSink& sink) const {
  const uint64_t start = start_sequence == 0 ? 1 : start_sequence;
  uint64_t end = std::numeric_limits<uint64_t>::max();
  if (max_entries > 0 && max_entries - 1 < end - start) {
    end = start + max_entries - 1;
  }
  absl::StatusOr<Streamed> streamed = StreamStored(*db_, start, end, sink);
  if (!streamed.ok()) return streamed.status();
  if (streamed->stopped) {
    return absl::CancelledError(
        absl::StrCat("audit log read from ", start, " stopped by its reader"));
  }
  return absl::OkStatus();
}

}  // namespace residency::key_service
