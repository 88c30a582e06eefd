#ifndef RESIDENCY_CRYPTO_INTERNAL_OPENSSL_ERROR_H_
#define RESIDENCY_CRYPTO_INTERNAL_OPENSSL_ERROR_H_

#include <openssl/err.h>

#include "absl/status/status.h"
#include "absl/strings/str_cat.h"
#include "absl/strings/string_view.h"

namespace residency::crypto::internal {

// INTERNAL naming the failed step and OpenSSL's first queued error, which it
// takes off the thread's error queue (and clears the rest) so that a later
// failure is not reported with a stale reason.
inline absl::Status OpenSslError(absl::string_view what) {
  const unsigned long code = ERR_get_error();
  ERR_clear_error();
  char text[256] = "unknown error";
  if (code != 0) ERR_error_string_n(code, text, sizeof(text));
  return absl::InternalError(absl::StrCat(what, ": ", text));
}

}  // namespace residency::crypto::internal

#endif  // RESIDENCY_CRYPTO_INTERNAL_OPENSSL_ERROR_H_
