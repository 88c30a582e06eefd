#ifndef RESIDENCY_TESTS_FUZZ_FUZZ_UTIL_H_
#define RESIDENCY_TESTS_FUZZ_FUZZ_UTIL_H_

// Shared by the fuzz targets and fuzz_seeds: the throwaway keys and contexts
// the seed corpora are made with, a reader that splits a fuzz input into
// fields, and the check that aborts on a broken invariant.
//
// The keys are fixed, public constants: they protect nothing. Seeds made
// with them let the fuzzer start from inputs that authenticate, so that it
// reaches the code behind the authentication checks.

#include <cstddef>
#include <cstdint>
#include <cstdio>
#include <cstdlib>
#include <string>

#include "absl/strings/string_view.h"
#include "crypto/secret_bytes.h"

namespace residency::fuzz {

// Aborts with a message when an invariant does not hold; libFuzzer reports
// it as a crash and saves the input.
#define FUZZ_CHECK(cond)                                                   \
  do {                                                                     \
    if (!(cond)) {                                                         \
      std::fprintf(stderr, "%s:%d: fuzz invariant failed: %s\n", __FILE__, \
                   __LINE__, #cond);                                       \
      std::abort();                                                        \
    }                                                                      \
  } while (0)

// A throwaway key of `size` bytes, all `fill`. Not a secret.
inline crypto::SecretBytes ThrowawayKey(size_t size, uint8_t fill) {
  return crypto::SecretBytes::CopyFrom(
      std::string(size, static_cast<char>(fill)));
}

// The key and context the chunked-decryption seeds are encrypted under, and
// a second key that must never open them.
inline constexpr uint8_t kChunkedKeyFill = 0x42;
inline constexpr uint8_t kOtherKeyFill = 0x43;
inline constexpr absl::string_view kChunkedContext = "fuzz/object v1";

// The KEK the wrapped-key and object-header seeds are wrapped under.
inline constexpr uint8_t kKekFill = 0x4b;

// The Ed25519 seed (RFC 8032 private key) the audit-log seeds are signed
// with.
inline constexpr uint8_t kAuditSeedFill = 0x41;

// When `message` points into `text` as "WHERE:LINE:COL: ...", the line
// exists: a location past the end would send a reader to the wrong place.
inline bool ErrorLineIsInText(absl::string_view message,
                              absl::string_view where, absl::string_view text) {
  const std::string prefix = std::string(where) + ":";
  const size_t at = message.find(prefix);
  if (at == absl::string_view::npos) return true;
  absl::string_view rest = message.substr(at + prefix.size());
  uint64_t line = 0;
  size_t digits = 0;
  while (digits < rest.size() && digits < 12 && rest[digits] >= '0' &&
         rest[digits] <= '9') {
    line = line * 10 + static_cast<uint64_t>(rest[digits++] - '0');
  }
  if (digits == 0) return true;
  uint64_t lines = 1;
  for (char c : text) lines += c == '\n';
  return line >= 1 && line <= lines;
}

// Reads fields off the front of a fuzz input; past the end it yields zeros
// and empty strings, so every input maps to some field values.
class InputReader {
 public:
  InputReader(const uint8_t* data, size_t size)
      : rest_(reinterpret_cast<const char*>(data), size) {}

  uint8_t U8() {
    if (rest_.empty()) return 0;
    const uint8_t b = static_cast<uint8_t>(rest_[0]);
    rest_.remove_prefix(1);
    return b;
  }
  // Big-endian, `bytes` wide (at most 8).
  uint64_t UInt(int bytes) {
    uint64_t v = 0;
    for (int i = 0; i < bytes; ++i) v = (v << 8) | U8();
    return v;
  }
  // A string of U8() bytes.
  absl::string_view ShortString() { return Take(U8()); }
  absl::string_view Take(size_t n) {
    const absl::string_view s = rest_.substr(0, n);
    rest_.remove_prefix(s.size());
    return s;
  }
  absl::string_view rest() const { return rest_; }

 private:
  absl::string_view rest_;
};

}  // namespace residency::fuzz

#endif  // RESIDENCY_TESTS_FUZZ_FUZZ_UTIL_H_
