#include "rpc/heap.h"

#include <sys/resource.h>
#include <unistd.h>

#include <cstdlib>
#include <vector>

#include "gtest/gtest.h"
#include "tests/sanitizers.h"

namespace residency::rpc {
namespace {

constexpr size_t kBlock = 64 << 10;  // below malloc's mmap threshold
constexpr size_t kBlocks = 512;      // 32 MiB in all

// This thread's alone: threads a test before this one left behind (gRPC's)
// fault too.
long MinorFaults() {
  struct rusage usage {};
  getrusage(RUSAGE_THREAD, &usage);
  return usage.ru_minflt;
}

// Allocates 32 MiB in 64 KiB blocks, writes to every page, frees it all, and
// returns the page faults that took.
long FaultsOfOneRound() {
  const long page = sysconf(_SC_PAGESIZE);
  std::vector<char*> blocks;
  blocks.reserve(kBlocks);
  const long before = MinorFaults();
  for (size_t i = 0; i < kBlocks; ++i) {
    char* block = static_cast<char*>(std::malloc(kBlock));
    if (block == nullptr) std::abort();
    volatile char* touch = block;
    for (size_t at = 0; at < kBlock; at += page) touch[at] = 1;
    blocks.push_back(block);
  }
  const long faults = MinorFaults() - before;
  for (char* block : blocks) std::free(block);
  return faults;
}

long PagesOfOneRound() { return kBlock * kBlocks / sysconf(_SC_PAGESIZE); }

// The control: with glibc's defaults set again, the memory of the first
// round went back to the system, so the second faults on most of its pages.
TEST(KeepFreedHeapMemoryTest, WithGlibcDefaultsFreedMemoryComesBackAsNewPages) {
  if (testing::kUnderSanitizer) GTEST_SKIP() << "malloc is the sanitizer's";
  mallopt(M_TRIM_THRESHOLD, 128 << 10);
  mallopt(M_TOP_PAD, 128 << 10);
  FaultsOfOneRound();
  EXPECT_GT(FaultsOfOneRound(), PagesOfOneRound() / 2);
}

TEST(KeepFreedHeapMemoryTest, SecondRoundReusesTheFirstRoundsPages) {
  if (testing::kUnderSanitizer) GTEST_SKIP() << "malloc is the sanitizer's";
  KeepFreedHeapMemory();
  FaultsOfOneRound();
  EXPECT_LT(FaultsOfOneRound(), PagesOfOneRound() / 8);
  // Later tests in this process get glibc's trimming back.
  mallopt(M_TRIM_THRESHOLD, 128 << 10);
  mallopt(M_TOP_PAD, 128 << 10);
}

}  // namespace
}  // namespace residency::rpc
