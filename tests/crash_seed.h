#ifndef RESIDENCY_TESTS_CRASH_SEED_H_
#define RESIDENCY_TESTS_CRASH_SEED_H_

#include <cstdint>
#include <cstdio>
#include <cstdlib>

#include "absl/strings/numbers.h"

namespace residency::testing {

// The seed of a crash test's random kill points: RESIDENCY_CRASH_SEED when
// set (another sequence of kills), else 42. Printed, so that a failing run
// can be repeated. Returns false, printing why, for a value that is not a
// number.
inline bool CrashSeed(uint64_t* seed) {
  *seed = 42;
  if (const char* env = std::getenv("RESIDENCY_CRASH_SEED")) {
    if (!absl::SimpleAtoi(env, seed)) {
      std::fprintf(stderr, "RESIDENCY_CRASH_SEED='%s' is not a number\n", env);
      return false;
    }
  }
  std::printf("crash seed %llu\n", static_cast<unsigned long long>(*seed));
  return true;
}

}  // namespace residency::testing

#endif  // RESIDENCY_TESTS_CRASH_SEED_H_
