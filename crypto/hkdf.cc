#include "crypto/hkdf.h"

#include <openssl/core_names.h>
#include <openssl/err.h>
#include <openssl/kdf.h>
#include <openssl/params.h>

#include <memory>

#include "absl/status/status.h"
#include "absl/strings/str_cat.h"
#include "crypto/internal/openssl_error.h"

namespace residency::crypto {
namespace {

struct KdfCtxDeleter {
  void operator()(EVP_KDF_CTX* ctx) const { EVP_KDF_CTX_free(ctx); }
};
using KdfCtx = std::unique_ptr<EVP_KDF_CTX, KdfCtxDeleter>;

KdfCtx NewContext(HkdfHash hash) {
  EVP_KDF* kdf = EVP_KDF_fetch(nullptr, "HKDF", nullptr);
  if (kdf == nullptr) return nullptr;
  KdfCtx ctx(EVP_KDF_CTX_new(kdf));
  EVP_KDF_free(kdf);  // the context holds its own reference
  if (!ctx) return nullptr;
  const char* digest = hash == HkdfHash::kSha256 ? "SHA256" : "SHA512";
  OSSL_PARAM params[] = {
      OSSL_PARAM_construct_utf8_string(OSSL_KDF_PARAM_DIGEST,
                                       const_cast<char*>(digest), 0),
      OSSL_PARAM_construct_end()};
  if (EVP_KDF_CTX_set_params(ctx.get(), params) != 1) return nullptr;
  return ctx;
}

// Setting the digest by name costs a provider lookup that is most of the
// time of a short derivation, and chunked encryption derives once per
// object. So HKDF-Expand with a non-empty info, its only use, reuses one
// context per thread and hash: each derivation replaces the key and the info
// (the only inputs Expand reads). Other calls take a fresh context, because
// OpenSSL 3.0 ignores an empty salt or info given to a used context and
// would keep the previous one.
// A context that failed to be made is not cached: the next call tries again.
KdfCtx& ThreadExpandContext(HkdfHash hash) {
  thread_local KdfCtx sha256;
  thread_local KdfCtx sha512;
  KdfCtx& ctx = hash == HkdfHash::kSha256 ? sha256 : sha512;
  if (!ctx) ctx = NewContext(hash);
  return ctx;
}

using internal::OpenSslError;

// One derivation. `salt` is used only by the modes that extract.
absl::StatusOr<SecretBytes> Derive(HkdfHash hash, int mode,
                                   absl::string_view key,
                                   absl::string_view salt,
                                   absl::string_view info, size_t length) {
  const bool reuse = mode == EVP_KDF_HKDF_MODE_EXPAND_ONLY && !info.empty();
  KdfCtx fresh;
  KdfCtx& owner =
      reuse ? ThreadExpandContext(hash) : (fresh = NewContext(hash));
  EVP_KDF_CTX* const ctx = owner.get();
  if (ctx == nullptr) return OpenSslError("HKDF context");

  // Empty strings are left out: OpenSSL then uses no info, and for the salt
  // the RFC's default of HashLen zeros.
  OSSL_PARAM params[5];
  size_t n = 0;
  params[n++] = OSSL_PARAM_construct_int(OSSL_KDF_PARAM_MODE, &mode);
  params[n++] = OSSL_PARAM_construct_octet_string(
      OSSL_KDF_PARAM_KEY, const_cast<char*>(key.data()), key.size());
  if (!salt.empty()) {
    params[n++] = OSSL_PARAM_construct_octet_string(
        OSSL_KDF_PARAM_SALT, const_cast<char*>(salt.data()), salt.size());
  }
  if (!info.empty()) {
    params[n++] = OSSL_PARAM_construct_octet_string(
        OSSL_KDF_PARAM_INFO, const_cast<char*>(info.data()), info.size());
  }
  params[n] = OSSL_PARAM_construct_end();

  SecretBytes out(length);
  const int derived = EVP_KDF_derive(ctx, out.mutable_data(), length, params);
  // Replace the key so that no copy of it stays in a reused context (OpenSSL
  // wipes the old key when a new one is set).
  unsigned char scrub = 0;
  OSSL_PARAM wipe[] = {
      OSSL_PARAM_construct_octet_string(OSSL_KDF_PARAM_KEY, &scrub, 1),
      OSSL_PARAM_construct_end()};
  if (EVP_KDF_CTX_set_params(ctx, wipe) != 1) {
    owner.reset();  // freeing the context wipes the key it holds
    ERR_clear_error();
  }
  if (derived != 1) return OpenSslError("EVP_KDF_derive(HKDF)");
  return out;
}

}  // namespace

size_t HkdfHashLength(HkdfHash hash) {
  return hash == HkdfHash::kSha256 ? 32 : 64;
}

absl::StatusOr<SecretBytes> Hkdf(HkdfHash hash, const SecretBytes& ikm,
                                 absl::string_view salt, absl::string_view info,
                                 size_t length) {
  if (length == 0 || length > 255 * HkdfHashLength(hash)) {
    return absl::InvalidArgumentError(absl::StrCat("HKDF output length ",
                                                   length, " is outside 1..",
                                                   255 * HkdfHashLength(hash)));
  }
  if (ikm.empty())
    return absl::InvalidArgumentError("HKDF needs a non-empty IKM");
  return Derive(hash, EVP_KDF_HKDF_MODE_EXTRACT_AND_EXPAND, ikm.view(), salt,
                info, length);
}

absl::StatusOr<SecretBytes> HkdfExtract(HkdfHash hash, const SecretBytes& ikm,
                                        absl::string_view salt) {
  if (ikm.empty())
    return absl::InvalidArgumentError("HKDF needs a non-empty IKM");
  return Derive(hash, EVP_KDF_HKDF_MODE_EXTRACT_ONLY, ikm.view(), salt, "",
                HkdfHashLength(hash));
}

absl::StatusOr<SecretBytes> HkdfExpand(HkdfHash hash, const SecretBytes& prk,
                                       absl::string_view info, size_t length) {
  if (length == 0 || length > 255 * HkdfHashLength(hash)) {
    return absl::InvalidArgumentError(absl::StrCat("HKDF output length ",
                                                   length, " is outside 1..",
                                                   255 * HkdfHashLength(hash)));
  }
  if (prk.empty()) {
    return absl::InvalidArgumentError("HKDF-Expand needs a non-empty PRK");
  }
  return Derive(hash, EVP_KDF_HKDF_MODE_EXPAND_ONLY, prk.view(), "", info,
                length);
}

}  // namespace residency::crypto
