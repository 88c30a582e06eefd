#include "crypto/random.h"

#include <openssl/rand.h>

#include <climits>

#include "absl/status/status.h"
#include "absl/strings/str_cat.h"

namespace residency::crypto {
namespace {

absl::Status Fill(uint8_t* out, size_t size) {
  // RAND_bytes takes an int; draw large buffers in pieces.
  while (size > 0) {
    const int n = size > INT_MAX ? INT_MAX : static_cast<int>(size);
    if (RAND_bytes(out, n) != 1) {
      return absl::InternalError(
          absl::StrCat("RAND_bytes failed to produce ", n, " bytes"));
    }
    out += n;
    size -= n;
  }
  return absl::OkStatus();
}

}  // namespace

absl::StatusOr<std::string> RandomBytes(size_t size) {
  std::string out(size, '\0');
  absl::Status status =
      Fill(reinterpret_cast<uint8_t*>(out.data()), out.size());
  if (!status.ok()) return status;
  return out;
}

absl::StatusOr<SecretBytes> RandomSecret(size_t size) {
  SecretBytes secret(size);
  absl::Status status = Fill(secret.mutable_data(), size);
  if (!status.ok()) return status;
  return secret;
}

}  // namespace residency::crypto
