#ifndef RESIDENCY_CRYPTO_SECRET_BYTES_H_
#define RESIDENCY_CRYPTO_SECRET_BYTES_H_

#include <cstddef>
#include <cstdint>
#include <memory>
#include <string>

#include "absl/strings/string_view.h"

namespace residency::crypto {

// SecretBytes owns key material.
//
// Contract:
//  - The bytes are wiped with OPENSSL_cleanse when the object is destroyed or
//    assigned over, so no copy of the key outlives its owner on the heap.
//  - There is no implicit copy: move it, or call Clone() where a second owner
//    is really needed (the call site then shows that a key is duplicated).
//  - There is no operator<< and no conversion to std::string: key bytes can
//    only be reached through data()/view(), which makes every place that
//    touches them easy to find.
//  - operator== compares in constant time (CRYPTO_memcmp) for equal sizes.
//
// Thread safety: like a std::string, const methods may be called
// concurrently; mutation needs external synchronisation.
class SecretBytes {
 public:
  // An empty secret.
  SecretBytes() = default;
  // `size` zero bytes, to be filled through mutable_data().
  explicit SecretBytes(size_t size);
  // Copies `bytes` into a new secret. The caller remains responsible for
  // wiping its own copy.
  static SecretBytes CopyFrom(absl::string_view bytes);

  ~SecretBytes();
  SecretBytes(SecretBytes&& other) noexcept;
  SecretBytes& operator=(SecretBytes&& other) noexcept;
  SecretBytes(const SecretBytes&) = delete;
  SecretBytes& operator=(const SecretBytes&) = delete;

  // An explicit copy.
  SecretBytes Clone() const;

  size_t size() const { return size_; }
  bool empty() const { return size_ == 0; }
  const uint8_t* data() const { return data_.get(); }
  uint8_t* mutable_data() { return data_.get(); }
  // A view of the key bytes, for passing to OpenSSL. Never log it.
  absl::string_view view() const {
    return {reinterpret_cast<const char*>(data_.get()), size_};
  }

  // Constant-time for secrets of equal size; secrets of different sizes are
  // unequal (the size is not secret).
  friend bool operator==(const SecretBytes& a, const SecretBytes& b);

 private:
  void Wipe();

  std::unique_ptr<uint8_t[]> data_;
  size_t size_ = 0;
};

// Overwrites a std::string that held secret bytes (a protobuf bytes field,
// a gRPC option) with OPENSSL_cleanse, then empties it. For strings the
// project does not own the type of; its own secrets live in SecretBytes.
void WipeString(std::string* secret);

}  // namespace residency::crypto

#endif  // RESIDENCY_CRYPTO_SECRET_BYTES_H_
