#ifndef RESIDENCY_CRYPTO_KEY_FILE_H_
#define RESIDENCY_CRYPTO_KEY_FILE_H_

// Raw symmetric keys kept in local files: the key service's root key, a
// client's device key (E2E custody).
//
// A key file holds exactly the key bytes, nothing else. It is created
// exclusively (never overwriting), with mode 0600 whatever the umask, and
// synced together with its directory entry before the key is used, so a key
// that sealed anything survives a crash.

#include <cstddef>
#include <string>

#include "absl/status/statusor.h"
#include "absl/strings/string_view.h"
#include "crypto/secret_bytes.h"

namespace residency::crypto {

struct KeyFileOptions {
  // What the key is, for messages: "root key", "device key".
  std::string what = "key";
  // Required size in bytes.
  size_t size = 32;
  // Create the file with fresh random bytes when it does not exist.
  bool create_if_missing = false;
};

// Reads the key in `path`, creating it first when missing and
// `options.create_if_missing` is set.
//
// Errors (messages name the path and `options.what`, never key bytes):
//   NOT_FOUND            missing file, create_if_missing false
//   FAILED_PRECONDITION  group or others may access the file, or another user
//                        owns it ("chmod 600 it, and consider the key
//                        exposed")
//   DATA_LOSS            not a regular file of exactly `options.size` bytes
//   INTERNAL             other I/O failures (with strerror)
absl::StatusOr<SecretBytes> LoadOrCreateKeyFile(const std::string& path,
                                                const KeyFileOptions& options);

}  // namespace residency::crypto

#endif  // RESIDENCY_CRYPTO_KEY_FILE_H_
