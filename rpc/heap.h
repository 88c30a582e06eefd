#ifndef RESIDENCY_RPC_HEAP_H_
#define RESIDENCY_RPC_HEAP_H_

#include <cstdlib>  // defines __GLIBC__ under glibc

#if defined(__GLIBC__)
#include <malloc.h>
#endif

namespace residency::rpc {

// Free memory glibc's malloc keeps at the top of a heap before it gives it
// back to the system, and the extra it asks for when the main heap grows or
// a new per-thread heap is made.
inline constexpr int kKeptHeapBytes = 128 << 20;
inline constexpr int kHeapGrowthPadBytes = 16 << 20;

// Makes malloc keep freed heap memory for the next allocation instead of
// returning it to the system as soon as more than 128 KiB lies free.
//
// A stream passes through many short-lived buffers, each a little under the
// one before it was freed; with the default, every one of them came back as
// fresh pages, zeroed by the kernel on first touch. Storing 256 x 1 MiB
// through `residency put --jobs=4`, the storage node took about 95,000 page
// faults and the CLI about 45,000; with this, about 13,000 and 2,600, and
// the node used about an eighth less CPU. The price is that memory freed
// after a peak stays with the process (the node's peak RSS went from about
// 65 to 85 MB in that run).
//
// Setting these also fixes malloc's mmap threshold where it stands (128 KiB
// unless the program set it): glibc no longer raises it as large blocks are
// freed, so a block that size or larger is always a fresh mapping. The
// figures above include that.
//
// Call it at the top of main, before other threads start. It compiles to
// nothing where the C library is not glibc, and has no effect under a
// sanitizer, whose allocator ignores mallopt.
inline void KeepFreedHeapMemory() {
#if defined(__GLIBC__)
  mallopt(M_TRIM_THRESHOLD, kKeptHeapBytes);
  mallopt(M_TOP_PAD, kHeapGrowthPadBytes);
#endif
}

}  // namespace residency::rpc

#endif  // RESIDENCY_RPC_HEAP_H_
