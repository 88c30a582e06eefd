#ifndef RESIDENCY_ROCKS_RECOVERY_H_
#define RESIDENCY_ROCKS_RECOVERY_H_

#include <rocksdb/db.h>
#include <rocksdb/file_system.h>
#include <rocksdb/listener.h>

#include <atomic>
#include <cstdint>
#include <string>

namespace residency::rocks {

// Resuming writes after a disk error, for the stores that write through
// RocksDB 7.8 (Debian 12's).
//
// After a write to the write-ahead log fails (a full disk), RocksDB stops
// writing. Resume() (and RocksDB's own recovery, which runs by itself once
// there is space again) flushes the memtables, and the flush starts a new
// log. With an empty memtable nothing is flushed: the log writer that
// failed stays in place, and the next write fails for good ("Seen error")
// or, with RocksDB's assertions on, as in Debian's build, aborts the
// process. So:
//   - a store installs ManualRecovery, so that RocksDB never resumes by
//     itself, behind the store's back;
//   - before its next write after a disk error (and, for the object store,
//     every few seconds by itself), the store resumes through its
//     DiskErrorResumer (ResumeAfterDiskError), which resumes only when the
//     memtable holds entries and the disk has room for the flush. Otherwise
//     writing stays stopped: for a while when the disk is still full, until
//     the store is opened again (recovery at open starts a new log) when
//     the memtable is empty or RocksDB refuses.

// Turns RocksDB's automatic recovery after a background error off.
class ManualRecovery final : public rocksdb::EventListener {
 public:
  void OnErrorRecoveryBegin(rocksdb::BackgroundErrorReason /*reason*/,
                            rocksdb::Status /*bg_error*/,
                            bool* auto_recovery) override {
    *auto_recovery = false;
  }
};

// Free space a resume wants beyond the memtables it flushes: the new log,
// the MANIFEST record and table files' overhead, plus two memtables'
// worth (write_buffer_size each) so that writing can go on for a while.
// A resume leaves the memtable empty, and a write that then meets a full
// disk again stops the store until it is reopened.
inline constexpr uint64_t kResumeHeadroomBytes = uint64_t{4} << 20;

// Resumes `db` after a disk error when that starts a new log: OK once
// writing may go on; Aborted when the memtable is empty (open the store
// again); TryAgain, without trying, while the file system has less free
// space than the flush needs; otherwise Resume()'s error
// (Busy while a recovery runs; an I/O error while the disk still fails or
// after a failed sync, which is never resumed from).
//
// The free-space check matters: in RocksDB 7.8 a Resume() whose flush
// meets a full disk again makes the error fatal, and every later Resume()
// returns it without trying, so writing would stay stopped until a reopen
// even once there is space. The check reads the file system's own figure
// (FileSystem::GetFreeSpace: statvfs, the space this user may use); where
// that cannot be read, Resume() is tried as before.
//
// A failed sync that the file system reports as an I/O error (EIO) is fatal
// to RocksDB: Resume() refuses it, so writing never resumes after it
// without a reopen. One reported as a full disk (ENOSPC) is not, and is
// resumed from like a failed write.
inline rocksdb::Status ResumeAfterDiskError(rocksdb::DB* db) {
  uint64_t entries = 0;
  if (!db->GetIntProperty(rocksdb::DB::Properties::kNumEntriesActiveMemTable,
                          &entries) ||
      entries == 0) {
    return rocksdb::Status::Aborted(
        "nothing to flush, so no new write-ahead log; reopen the database");
  }
  uint64_t memtables = 0;
  uint64_t free_bytes = 0;
  if (db->GetIntProperty(rocksdb::DB::Properties::kCurSizeAllMemTables,
                         &memtables) &&
      db->GetEnv()
          ->GetFileSystem()
          ->GetFreeSpace(db->GetName(), rocksdb::IOOptions(), &free_bytes,
                         nullptr)
          .ok()) {
    const uint64_t needed = memtables + kResumeHeadroomBytes +
                            2 * uint64_t{db->GetOptions().write_buffer_size};
    if (free_bytes < needed) {
      return rocksdb::Status::TryAgain(
          "the disk is still full",
          std::to_string(free_bytes) + " bytes free, " +
              std::to_string(needed) + " needed to resume");
    }
  }
  return db->Resume();
}

// ResumeAfterDiskError for one database, remembering a failure that only a
// reopen mends (any error but Busy and TryAgain): later calls return that
// failure again without touching the database, so a store's writes and
// its background tries stop asking. (Each RocksDB refusal would also add
// lines to its LOG.)
//
// Calls to Resume must not overlap (the store serializes its resumes);
// gave_up() may be read from any thread, without the store's lock.
class DiskErrorResumer {
 public:
  explicit DiskErrorResumer(rocksdb::DB* db) : db_(db) {}
  DiskErrorResumer(const DiskErrorResumer&) = delete;
  DiskErrorResumer& operator=(const DiskErrorResumer&) = delete;

  rocksdb::Status Resume() {
    if (gave_up()) return failure_;
    rocksdb::Status s = ResumeAfterDiskError(db_);
    if (!s.ok() && !s.IsBusy() && !s.IsTryAgain()) {
      failure_ = s;
      gave_up_.store(true, std::memory_order_release);
    }
    return s;
  }

  // Whether a resume has failed for good.
  bool gave_up() const { return gave_up_.load(std::memory_order_acquire); }

 private:
  rocksdb::DB* const db_;
  rocksdb::Status failure_;  // set once, before gave_up_
  std::atomic<bool> gave_up_{false};
};

}  // namespace residency::rocks

#endif  // RESIDENCY_ROCKS_RECOVERY_H_
