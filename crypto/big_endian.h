#ifndef RESIDENCY_CRYPTO_BIG_ENDIAN_H_
#define RESIDENCY_CRYPTO_BIG_ENDIAN_H_

#include <cstdint>
#include <string>

namespace residency::crypto {

// Fixed-width big-endian integers, as every byte layout in the project
// writes them (object contexts, wrapped keys, sealed KEKs, audit entries).
inline void AppendBigEndian32(std::string* out, uint32_t value) {
  for (int shift = 24; shift >= 0; shift -= 8) {
    out->push_back(static_cast<char>((value >> shift) & 0xff));
  }
}

inline void AppendBigEndian64(std::string* out, uint64_t value) {
  for (int shift = 56; shift >= 0; shift -= 8) {
    out->push_back(static_cast<char>((value >> shift) & 0xff));
  }
}

}  // namespace residency::crypto

#endif  // RESIDENCY_CRYPTO_BIG_ENDIAN_H_
