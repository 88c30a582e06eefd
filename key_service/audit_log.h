#ifndef RESIDENCY_KEY_SERVICE_AUDIT_LOG_H_
#define RESIDENCY_KEY_SERVICE_AUDIT_LOG_H_

#include <cstddef>
#include <cstdint>
#include <functional>
#include <memory>
#include <string>
#include <thread>
#include <vector>

#include "absl/base/thread_annotations.h"
#include "absl/functional/any_invocable.h"
#include "absl/status/status.h"
#include "absl/status/statusor.h"
#include "absl/synchronization/mutex.h"
#include "absl/time/clock.h"
#include "absl/time/time.h"
#include "key_service/audit_signer.h"
#include "residency/v1/key_service.pb.h"

namespace rocksdb {
class DB;
class Env;
class FileSystem;
}  // namespace rocksdb

namespace residency::key_service {

// An entry whose serialized form (all fields filled) exceeds this is refused
// with INVALID_ARGUMENT, so one request cannot bloat every later read.
inline constexpr size_t kMaxAuditEntryBytes = 64 * 1024;

// Receives the items of a read, in order. Returning false stops the read
// (the client went away); the read then returns CANCELLED.
using AuditSink =
    std::function<bool(const residency::v1::ReadAuditLogResponse&)>;

struct AuditLogOptions {
  // A signed checkpoint is stored with every entry whose sequence is a
  // multiple of this (0: only at Open and on close, see AuditLog).
  uint64_t checkpoint_every = 1024;
  // Stamps entries and checkpoints. Called with the log's lock held (so
  // entry times follow sequence order for a monotonic clock) and from
  // several threads: it must be thread-safe and must not call into the log.
  std::function<absl::Time()> clock = absl::Now;
  // The file system RocksDB writes through; null is the default one. Tests
  // put a fault-injecting one here.
  std::shared_ptr<rocksdb::FileSystem> file_system;
  // Called once, on the log's writer thread, when a write first fails:
  // from then on the log refuses every entry until it is opened again. It
  // runs before the callers whose entries failed are answered, so it holds
  // up their replies: it must not block, nor call into the log.
  std::function<void()> on_failed;
};

// The key service's audit log: an append-only, hash-chained sequence of
// AuditEntry records with Ed25519-signed checkpoints, in its own RocksDB
// database. The byte layouts that the chain and the signatures cover are in
// audit_format.h; AuditVerifier checks them.
//
// Storage (one RocksDB database per directory, nothing else in it):
//
//   key                         value
//   "e" || u64 BE sequence      serialized AuditEntry (all 15 fields)
//   "c" || u64 BE sequence      serialized AuditCheckpoint covering that entry
//
// Checkpoints are stored for every sequence that is a multiple of
// options.checkpoint_every, at Open when the stored head is not yet covered
// (a previous run stopped without closing), and at destruction for the final
// head, so a log closed cleanly verifies offline without its private key.
//
// Contents contract: the log stores exactly what callers put in the entry.
// It never receives key material and must never be given any: the key
// service fills only the redacted view (key id, version, object, rule,
// status) and no DEK, KEK, wrapped key or plaintext. Everything stored here
// is readable by any principal that policy allows to call ReadAuditLog.
//
// Durability and group commit: Append assigns the next sequence, the time and
// both hashes at once, under one lock, so sequence order is chain order. One
// writer thread takes everything queued since its last round, writes it as
// one synced rocksdb::WriteBatch, and only then runs the callbacks of that
// round, in sequence order. When more entries are already waiting, a reply
// thread runs the callbacks instead, while the writer starts on the next
// round, so the answers (a gRPC reply each, for the key service) do not
// hold up the next sync. With N concurrent appenders a round holds up to N
// entries, so throughput is not capped at one fsync per entry.
//
// A failed write is sticky: that round's callbacks, the entries already
// queued behind it and every later Append get an error, and nothing more is
// written, because the entries queued behind it already chain onto entries
// that never became durable (writing them would leave a gap that Open
// refuses). Reopen the log to continue from its durable head.
//
// Thread safety: all methods may be called concurrently, except that no call
// may race with destruction. Callbacks run one at a time, on the writer or
// the reply thread: they must not block on the log (no AppendAndWait inside
// one).
//
// Errors: Open returns DATA_LOSS if the stored log does not chain from its
// last checkpoint to its last entry (its entry_hash, prev_hash and sequence
// are all checked) or a stored checkpoint lies beyond the last entry,
// FAILED_PRECONDITION if its checkpoints were signed by another key, and
// INTERNAL for a RocksDB failure. Append's callback gets INVALID_ARGUMENT for
// an entry over kMaxAuditEntryBytes and INTERNAL for a failed write (then
// FAILED_PRECONDITION for every entry after it).
//
// Example:
//   ASSIGN_OR_RETURN(auto log, AuditLog::Open(dir, std::move(signer)));
//   AuditEntry entry;  // principal, operation, decision, rule, ... filled
//   log->Append(std::move(entry), [reactor](absl::Status status) {
//     reactor->Answer(status);  // the decision is durable only now
//   });
class AuditLog {
 public:
  using DoneCallback = absl::AnyInvocable<void(absl::Status) &&>;

  static absl::StatusOr<std::unique_ptr<AuditLog>> Open(
      const std::string& dir, AuditSigner signer, AuditLogOptions options = {});

  // Writes every queued entry, including any that callbacks append meanwhile,
  // runs every callback (with its write's status), joins the log's threads,
  // then stores a checkpoint of the final head if it is not covered yet.
  ~AuditLog();

  AuditLog(const AuditLog&) = delete;
  AuditLog& operator=(const AuditLog&) = delete;

  // Fills sequence, time, prev_hash and entry_hash (overwriting whatever the
  // caller put there; the caller fills the rest) and queues the entry.
  // `done` runs exactly once, on one of the log's threads, after the entry is
  // durable (OK) or its write failed. Entries become durable, and their
  // callbacks run, in sequence order.
  void Append(residency::v1::AuditEntry entry, DoneCallback done);

  // Append and wait for the callback's status.
  absl::Status AppendAndWait(residency::v1::AuditEntry entry);

  // The last sequence assigned by Append (durable or not); 0 for an empty
  // log.
  uint64_t last_sequence() const;
  // The last sequence known to be durable.
  uint64_t durable_sequence() const;
  // How many synced WriteBatches of entries the writer has committed; with
  // concurrent appenders it grows more slowly than the number of entries.
  uint64_t write_batches() const;

  // Streams entries [start_sequence, end] in order (start 0 means 1), where
  // end is the durable head when the call began, lowered to
  // start_sequence + max_entries - 1 when max_entries > 0. Each stored
  // checkpoint is sent right after the entry it covers, and the stream
  // always ends with a checkpoint covering its last entry: the stored one,
  // or a fresh one. A fresh checkpoint is signed only after the stored chain
  // from that entry up to a signed stored checkpoint or the in-memory head
  // has been checked, so the log never signs a stored entry that was
  // altered on disk (DATA_LOSS instead, after the entries already sent).
  // When start_sequence is past the head the stream is one checkpoint of
  // the head (sequence 0 and 32 zero bytes for an empty log).
  //
  // Returns CANCELLED if `sink` returned false, DATA_LOSS if a stored entry
  // does not parse or the stored chain was altered.
  absl::Status Read(uint64_t start_sequence, uint64_t max_entries,
                    const AuditSink& sink) const;

  // A fresh checkpoint signing the current durable head (sequence 0 and 32
  // zero bytes for an empty log).
  absl::StatusOr<residency::v1::AuditCheckpoint> Checkpoint() const;

  // The signing key's public half and id, for publishing to verifiers.
  std::string public_key() const { return signer_.public_key(); }
  std::string public_key_id() const { return signer_.public_key_id(); }

 private:
  struct Pending {
    uint64_t sequence = 0;  // 0: refused, `status` says why
    absl::Status status;
    std::string entry_hash;
    std::string value;
    DoneCallback done;
  };
  // A written round on its way to the reply thread: its entries and the
  // status of their write.
  struct Written {
    std::vector<Pending> round;
    absl::Status status;
  };

  AuditLog(std::unique_ptr<rocksdb::Env> env, std::unique_ptr<rocksdb::DB> db,
           AuditSigner signer, AuditLogOptions options, uint64_t last_sequence,
           std::string head_hash, uint64_t last_checkpoint);

  void WriterLoop();
  bool HasWork() const ABSL_EXCLUSIVE_LOCKS_REQUIRED(mu_);
  void ReplyLoop();
  bool HasReplies() const ABSL_EXCLUSIVE_LOCKS_REQUIRED(replies_mu_);
  bool RepliesIdle() const ABSL_EXCLUSIVE_LOCKS_REQUIRED(replies_mu_);
  absl::StatusOr<residency::v1::AuditCheckpoint> SignCheckpoint(
      uint64_t sequence, std::string head_hash) const;
  // Stores a checkpoint of the durable head unless one covers it already.
  absl::Status CheckpointHeadIfUncovered();
  // OK if `stored_hash` is the true entry_hash of entry `sequence`: the
  // stored chain after it must reach a signed stored checkpoint or the
  // durable head (`head`, `head_hash`).
  absl::Status ConfirmStoredHash(uint64_t sequence,
                                 const std::string& stored_hash, uint64_t head,
                                 const std::string& head_hash) const;

  const std::unique_ptr<rocksdb::Env> env_;  // over options.file_system
  const std::unique_ptr<rocksdb::DB> db_;
  const AuditSigner signer_;
  const AuditLogOptions options_;

  mutable absl::Mutex mu_;
  uint64_t last_sequence_ ABSL_GUARDED_BY(mu_);
  std::string head_hash_ ABSL_GUARDED_BY(mu_);  // of last_sequence_
  uint64_t durable_sequence_ ABSL_GUARDED_BY(mu_);
  std::string durable_hash_ ABSL_GUARDED_BY(mu_);  // of durable_sequence_
  std::vector<Pending> queue_ ABSL_GUARDED_BY(mu_);
  absl::Status failed_ ABSL_GUARDED_BY(mu_);
  bool stopping_ ABSL_GUARDED_BY(mu_) = false;
  uint64_t write_batches_ ABSL_GUARDED_BY(mu_) = 0;

  // Writer thread only (and Open/destructor, when it is not running).
  uint64_t last_checkpoint_ = 0;

  // From the writer to the reply thread. Never held with mu_.
  absl::Mutex replies_mu_;
  std::vector<Written> replies_ ABSL_GUARDED_BY(replies_mu_);
  bool replying_ ABSL_GUARDED_BY(replies_mu_) = false;  // rounds in hand
  bool writer_done_ ABSL_GUARDED_BY(replies_mu_) = false;

  std::thread writer_;
  std::thread replier_;
};

// Read-only access to an AuditLog directory, for the offline verifier. Opens
// the database as a RocksDB secondary instance, so it works whether or not
// an AuditLog has the directory open, writes nothing into the directory, and
// needs no key.
//
// Thread safety: Read may be called concurrently.
class AuditLogReader {
 public:
  // NOT_FOUND if `dir` holds no RocksDB database; INTERNAL for other RocksDB
  // failures (DATA_LOSS for corruption).
  static absl::StatusOr<std::unique_ptr<AuditLogReader>> Open(
      const std::string& dir);
  ~AuditLogReader();

  // Streams what is stored, as AuditLog::Read does, but never signs: the
  // stored entries under keys start_sequence .. start_sequence +
  // max_entries - 1 (to the end when max_entries is 0), in key order, and the
  // stored checkpoints in that range, each right after the greatest entry
  // key not above its sequence (so a checkpoint whose entries were deleted
  // still shows up, after the last entry left). Stored bytes are passed on
  // as they are, for AuditVerifier to judge; a log that was not closed
  // cleanly may end with entries no checkpoint covers.
  // CANCELLED if `sink` returned false; DATA_LOSS for an unparsable value.
  absl::Status Read(uint64_t start_sequence, uint64_t max_entries,
                    const AuditSink& sink) const;

 private:
  AuditLogReader(std::unique_ptr<rocksdb::DB> db, std::string secondary_dir);

  std::unique_ptr<rocksdb::DB> db_;
  std::string secondary_dir_;
};

}  // namespace residency::key_service

#endif  // RESIDENCY_KEY_SERVICE_AUDIT_LOG_H_
