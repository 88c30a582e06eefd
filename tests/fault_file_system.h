#ifndef RESIDENCY_TESTS_FAULT_FILE_SYSTEM_H_
#define RESIDENCY_TESTS_FAULT_FILE_SYSTEM_H_

// A RocksDB file system that fails on demand as a disk does: full (every
// write of file data fails with ENOSPC's NoSpace) or broken under sync
// (fsync fails, data written before it may or may not be on disk). Put it
// in ObjectStoreOptions::file_system or AuditLogOptions::file_system; switch
// faults on and off while the store runs. For tests only.

#include <atomic>
#include <cstdint>
#include <functional>
#include <memory>
#include <string>

#include "absl/base/thread_annotations.h"
#include "absl/synchronization/mutex.h"
#include "rocksdb/file_system.h"

namespace residency::testing {

class FaultFileSystem : public rocksdb::FileSystemWrapper {
 public:
  enum class Fault { kNone, kDiskFull, kSyncFails };

  explicit FaultFileSystem(std::shared_ptr<rocksdb::FileSystem> base =
                               rocksdb::FileSystem::Default())
      : FileSystemWrapper(std::move(base)) {}

  static const char* kClassName() { return "ResidencyFaultFileSystem"; }
  const char* Name() const override { return kClassName(); }

  void set_fault(Fault fault) { fault_ = fault; }
  // How many calls failed because of an injected fault.
  uint64_t injected() const { return injected_.load(); }
  // Runs on the thread that meets an injected fault, each time, just before
  // the call fails: a test can act while the failing write is under way.
  // That thread is inside RocksDB's write path, possibly holding RocksDB's
  // own locks, so the hook must not call into that database. Null clears it.
  void set_on_fault(std::function<void()> hook) {
    absl::MutexLock lock(&hook_mu_);
    on_fault_ = std::make_shared<const std::function<void()>>(std::move(hook));
  }

  // A full disk has no free space; otherwise the real file system answers.
  rocksdb::IOStatus GetFreeSpace(const std::string& path,
                                 const rocksdb::IOOptions& options,
                                 uint64_t* free_bytes,
                                 rocksdb::IODebugContext* dbg) override {
    ++free_space_asked_;
    if (fault_ == Fault::kDiskFull) {
      *free_bytes = 0;
      return rocksdb::IOStatus::OK();
    }
    return target()->GetFreeSpace(path, options, free_bytes, dbg);
  }
  // How many times GetFreeSpace was asked.
  uint64_t free_space_asked() const { return free_space_asked_.load(); }

  rocksdb::IOStatus NewWritableFile(
      const std::string& name, const rocksdb::FileOptions& options,
      std::unique_ptr<rocksdb::FSWritableFile>* result,
      rocksdb::IODebugContext* dbg) override {
    if (Failing(Fault::kDiskFull)) return DiskFull();
    rocksdb::IOStatus s = target()->NewWritableFile(name, options, result, dbg);
    if (s.ok()) *result = std::make_unique<File>(this, std::move(*result));
    return s;
  }
  rocksdb::IOStatus ReopenWritableFile(
      const std::string& name, const rocksdb::FileOptions& options,
      std::unique_ptr<rocksdb::FSWritableFile>* result,
      rocksdb::IODebugContext* dbg) override {
    if (Failing(Fault::kDiskFull)) return DiskFull();
    rocksdb::IOStatus s =
        target()->ReopenWritableFile(name, options, result, dbg);
    if (s.ok()) *result = std::make_unique<File>(this, std::move(*result));
    return s;
  }
  rocksdb::IOStatus ReuseWritableFile(
      const std::string& name, const std::string& old_name,
      const rocksdb::FileOptions& options,
      std::unique_ptr<rocksdb::FSWritableFile>* result,
      rocksdb::IODebugContext* dbg) override {
    if (Failing(Fault::kDiskFull)) return DiskFull();
    rocksdb::IOStatus s =
        target()->ReuseWritableFile(name, old_name, options, result, dbg);
    if (s.ok()) *result = std::make_unique<File>(this, std::move(*result));
    return s;
  }

 private:
  class File : public rocksdb::FSWritableFileOwnerWrapper {
   public:
    File(FaultFileSystem* fs, std::unique_ptr<rocksdb::FSWritableFile> file)
        : FSWritableFileOwnerWrapper(std::move(file)), fs_(fs) {}

    rocksdb::IOStatus Append(const rocksdb::Slice& data,
                             const rocksdb::IOOptions& options,
                             rocksdb::IODebugContext* dbg) override {
      if (fs_->Failing(Fault::kDiskFull)) return DiskFull();
      return FSWritableFileOwnerWrapper::Append(data, options, dbg);
    }
    rocksdb::IOStatus Append(const rocksdb::Slice& data,
                             const rocksdb::IOOptions& options,
                             const rocksdb::DataVerificationInfo& info,
                             rocksdb::IODebugContext* dbg) override {
      if (fs_->Failing(Fault::kDiskFull)) return DiskFull();
      return FSWritableFileOwnerWrapper::Append(data, options, info, dbg);
    }
    rocksdb::IOStatus PositionedAppend(const rocksdb::Slice& data,
                                       uint64_t offset,
                                       const rocksdb::IOOptions& options,
                                       rocksdb::IODebugContext* dbg) override {
      if (fs_->Failing(Fault::kDiskFull)) return DiskFull();
      return FSWritableFileOwnerWrapper::PositionedAppend(data, offset, options,
                                                          dbg);
    }
    rocksdb::IOStatus PositionedAppend(
        const rocksdb::Slice& data, uint64_t offset,
        const rocksdb::IOOptions& options,
        const rocksdb::DataVerificationInfo& info,
        rocksdb::IODebugContext* dbg) override {
      if (fs_->Failing(Fault::kDiskFull)) return DiskFull();
      return FSWritableFileOwnerWrapper::PositionedAppend(data, offset, options,
                                                          info, dbg);
    }
    rocksdb::IOStatus Sync(const rocksdb::IOOptions& options,
                           rocksdb::IODebugContext* dbg) override {
      if (fs_->Failing(Fault::kSyncFails)) return SyncFailed();
      return FSWritableFileOwnerWrapper::Sync(options, dbg);
    }
    rocksdb::IOStatus Fsync(const rocksdb::IOOptions& options,
                            rocksdb::IODebugContext* dbg) override {
      if (fs_->Failing(Fault::kSyncFails)) return SyncFailed();
      return FSWritableFileOwnerWrapper::Fsync(options, dbg);
    }
    rocksdb::IOStatus RangeSync(uint64_t offset, uint64_t nbytes,
                                const rocksdb::IOOptions& options,
                                rocksdb::IODebugContext* dbg) override {
      if (fs_->Failing(Fault::kSyncFails)) return SyncFailed();
      return FSWritableFileOwnerWrapper::RangeSync(offset, nbytes, options,
                                                   dbg);
    }

   private:
    FaultFileSystem* const fs_;
  };

  static rocksdb::IOStatus DiskFull() {
    return rocksdb::IOStatus::NoSpace(
        "injected fault: no space left on device");
  }
  static rocksdb::IOStatus SyncFailed() {
    return rocksdb::IOStatus::IOError("injected fault: fsync failed");
  }

  bool Failing(Fault fault) {
    if (fault_.load() != fault) return false;
    ++injected_;
    std::shared_ptr<const std::function<void()>> hook;
    {
      absl::MutexLock lock(&hook_mu_);
      hook = on_fault_;
    }
    if (hook != nullptr && *hook) (*hook)();
    return true;
  }

  std::atomic<Fault> fault_{Fault::kNone};
  std::atomic<uint64_t> injected_{0};
  std::atomic<uint64_t> free_space_asked_{0};
  absl::Mutex hook_mu_;
  std::shared_ptr<const std::function<void()>> on_fault_
      ABSL_GUARDED_BY(hook_mu_);
};

}  // namespace residency::testing

#endif  // RESIDENCY_TESTS_FAULT_FILE_SYSTEM_H_
