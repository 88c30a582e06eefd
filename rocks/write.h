#ifndef RESIDENCY_ROCKS_WRITE_H_
#define RESIDENCY_ROCKS_WRITE_H_

#include <rocksdb/db.h>
#include <rocksdb/write_batch.h>

#ifdef RESIDENCY_TSAN
// ThreadSanitizer's dynamic annotations (exported by libtsan; no header
// declares them).
extern "C" void AnnotateIgnoreReadsBegin(const char* file, int line);
extern "C" void AnnotateIgnoreReadsEnd(const char* file, int line);
extern "C" void AnnotateIgnoreWritesBegin(const char* file, int line);
extern "C" void AnnotateIgnoreWritesEnd(const char* file, int line);
#endif

namespace residency::rocks {

// Every write the services make to a RocksDB database goes through these.
//
// RocksDB commits concurrent writes as a group: one writer thread (the
// leader) appends the other writers' batches to its own and writes them
// all, while the others wait on RocksDB's internal atomics. Debian's
// librocksdb is not built with ThreadSanitizer, so under the tsan preset
// that hand-over is invisible, and the leader's copy of another thread's
// batch (made through libstdc++, where no suppression by library reaches)
// looks like a race. Under that preset the accesses a thread makes while
// it builds and writes a batch are therefore not checked; the batch's
// contents are our code's own, read and written outside these calls.
// Elsewhere the guard is empty.
class [[nodiscard]] UncheckedByTsan {
 public:
#ifdef RESIDENCY_TSAN
  UncheckedByTsan() {
    AnnotateIgnoreReadsBegin(__FILE__, __LINE__);
    AnnotateIgnoreWritesBegin(__FILE__, __LINE__);
  }
  ~UncheckedByTsan() {
    AnnotateIgnoreWritesEnd(__FILE__, __LINE__);
    AnnotateIgnoreReadsEnd(__FILE__, __LINE__);
  }
#else
  UncheckedByTsan() {}
#endif
  UncheckedByTsan(const UncheckedByTsan&) = delete;
  UncheckedByTsan& operator=(const UncheckedByTsan&) = delete;
};

inline rocksdb::Status Write(rocksdb::DB* db,
                             const rocksdb::WriteOptions& options,
                             rocksdb::WriteBatch* batch) {
  const UncheckedByTsan unchecked;
  return db->Write(options, batch);
}

inline rocksdb::Status Put(rocksdb::DB* db,
                           const rocksdb::WriteOptions& options,
                           const rocksdb::Slice& key,
                           const rocksdb::Slice& value) {
  const UncheckedByTsan unchecked;
  rocksdb::WriteBatch batch;
  rocksdb::Status s = batch.Put(key, value);
  if (!s.ok()) return s;
  return db->Write(options, &batch);
}

}  // namespace residency::rocks

#endif  // RESIDENCY_ROCKS_WRITE_H_
