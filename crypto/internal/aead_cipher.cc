#include "crypto/internal/aead_cipher.h"

#include <openssl/core.h>
#include <openssl/core_dispatch.h>
#include <openssl/core_names.h>
#include <openssl/crypto.h>
#include <openssl/err.h>
#include <openssl/evp.h>
#include <openssl/params.h>
#include <openssl/provider.h>

#include <utility>

#include "absl/strings/match.h"
#include "absl/strings/str_cat.h"
#include "absl/strings/str_split.h"
#include "crypto/internal/openssl_error.h"

namespace residency::crypto::internal {

// The provider functions of one cipher. Each returns 1 on success, as
// provider-cipher(7) specifies. They skip the size checks EVP makes before
// calling them, so the callers below make those checks themselves. (Neither
// EVP's provider path nor these callers check for partly overlapping
// buffers; the header forbids them.)
struct AeadImplementation {
  const char* name;
  // The most plaintext one nonce may encrypt (see AeadCipher).
  uint64_t max_message;
  // Fetched once and never freed: it keeps its provider loaded, and with it
  // the functions below and the provider context.
  EVP_CIPHER* cipher;
  void* provider_context;
  OSSL_FUNC_cipher_newctx_fn* newctx = nullptr;
  OSSL_FUNC_cipher_freectx_fn* freectx = nullptr;
  OSSL_FUNC_cipher_encrypt_init_fn* encrypt_init = nullptr;
  OSSL_FUNC_cipher_decrypt_init_fn* decrypt_init = nullptr;
  OSSL_FUNC_cipher_update_fn* update = nullptr;
  OSSL_FUNC_cipher_final_fn* final = nullptr;
  OSSL_FUNC_cipher_get_ctx_params_fn* get_ctx_params = nullptr;
};

namespace {

using Implementation = AeadImplementation;

bool NamesInclude(const char* names, absl::string_view name) {
  for (absl::string_view each : absl::StrSplit(names, ':')) {
    if (absl::EqualsIgnoreCase(each, name)) return true;
  }
  return false;
}

// Finds the functions of `name` in the provider of `cipher`: the first
// implementation the provider lists under that name. The default and FIPS
// providers list one per name, so it is the one EVP_CIPHER_fetch chose.
absl::StatusOr<Implementation> FindFunctions(const char* name,
                                             uint64_t max_message,
                                             EVP_CIPHER* cipher) {
  OSSL_PROVIDER* const provider =
      const_cast<OSSL_PROVIDER*>(EVP_CIPHER_get0_provider(cipher));
  if (provider == nullptr) {
    return absl::InternalError(
        absl::StrCat(name, " does not come from a provider"));
  }
  int no_cache = 0;
  const OSSL_ALGORITHM* algorithms =
      OSSL_PROVIDER_query_operation(provider, OSSL_OP_CIPHER, &no_cache);
  Implementation impl{name, max_message, cipher,
                      OSSL_PROVIDER_get0_provider_ctx(provider)};
  bool found = false;
  for (const OSSL_ALGORITHM* a = algorithms;
       a != nullptr && a->algorithm_names != nullptr && !found; ++a) {
    if (!NamesInclude(a->algorithm_names, name)) continue;
    found = true;
    for (const OSSL_DISPATCH* f = a->implementation; f->function_id != 0; ++f) {
      switch (f->function_id) {
        case OSSL_FUNC_CIPHER_NEWCTX:
          impl.newctx = OSSL_FUNC_cipher_newctx(f);
          break;
        case OSSL_FUNC_CIPHER_FREECTX:
          impl.freectx = OSSL_FUNC_cipher_freectx(f);
          break;
        case OSSL_FUNC_CIPHER_ENCRYPT_INIT:
          impl.encrypt_init = OSSL_FUNC_cipher_encrypt_init(f);
          break;
        case OSSL_FUNC_CIPHER_DECRYPT_INIT:
          impl.decrypt_init = OSSL_FUNC_cipher_decrypt_init(f);
          break;
        case OSSL_FUNC_CIPHER_UPDATE:
          impl.update = OSSL_FUNC_cipher_update(f);
          break;
        case OSSL_FUNC_CIPHER_FINAL:
          impl.final = OSSL_FUNC_cipher_final(f);
          break;
        case OSSL_FUNC_CIPHER_GET_CTX_PARAMS:
          impl.get_ctx_params = OSSL_FUNC_cipher_get_ctx_params(f);
          break;
        default:
          break;
      }
    }
  }
  if (algorithms != nullptr) {
    OSSL_PROVIDER_unquery_operation(provider, OSSL_OP_CIPHER, algorithms);
  }
  if (!found) {
    return absl::InternalError(absl::StrCat("provider ",
                                            OSSL_PROVIDER_get0_name(provider),
                                            " does not list ", name));
  }
  if (impl.newctx == nullptr || impl.freectx == nullptr ||
      impl.encrypt_init == nullptr || impl.decrypt_init == nullptr ||
      impl.update == nullptr || impl.final == nullptr ||
      impl.get_ctx_params == nullptr) {
    return absl::InternalError(
        absl::StrCat("provider ", OSSL_PROVIDER_get0_name(provider),
                     " lacks a function AEAD use needs for ", name));
  }
  return impl;
}

// Finds the functions of `name` in the provider that EVP_CIPHER_fetch
// chooses for it under the process's configuration.
absl::StatusOr<Implementation> Resolve(const char* name, uint64_t max_message) {
  EVP_CIPHER* const cipher = EVP_CIPHER_fetch(nullptr, name, nullptr);
  if (cipher == nullptr) {
    return OpenSslError(absl::StrCat("EVP_CIPHER_fetch(", name, ")"));
  }
  absl::StatusOr<Implementation> impl =
      FindFunctions(name, max_message, cipher);
  if (!impl.ok()) EVP_CIPHER_free(cipher);
  return impl;
}

// Resolved once per cipher; a failure is kept and reported on every Create.
const absl::StatusOr<Implementation>& Lookup(AeadCipher::Kind kind,
                                             size_t key_size) {
  static const absl::StatusOr<Implementation> aes128 =
      Resolve("AES-128-GCM", AeadCipher::kMaxAesGcmMessage);
  static const absl::StatusOr<Implementation> aes256 =
      Resolve("AES-256-GCM", AeadCipher::kMaxAesGcmMessage);
  static const absl::StatusOr<Implementation> chacha =
      Resolve("ChaCha20-Poly1305", AeadCipher::kMaxChaCha20Poly1305Message);
  if (kind == AeadCipher::Kind::kChaCha20Poly1305) return chacha;
  return key_size == 16 ? aes128 : aes256;
}

const unsigned char* Bytes(absl::string_view s) {
  return reinterpret_cast<const unsigned char*>(s.data());
}

}  // namespace

absl::StatusOr<AeadCipher> AeadCipher::Create(Kind kind,
                                              absl::string_view key) {
  const bool size_ok = kind == Kind::kChaCha20Poly1305
                           ? key.size() == 32
                           : key.size() == 16 || key.size() == 32;
  if (!size_ok) {
    return absl::InvalidArgumentError(absl::StrCat(
        kind == Kind::kChaCha20Poly1305 ? "ChaCha20-Poly1305" : "AES-GCM",
        " key must be ", kind == Kind::kChaCha20Poly1305 ? "32" : "16 or 32",
        " bytes, got ", key.size()));
  }
  const absl::StatusOr<Implementation>& impl = Lookup(kind, key.size());
  if (!impl.ok()) return impl.status();
  void* ctx = impl->newctx(impl->provider_context);
  if (ctx == nullptr) return OpenSslError(absl::StrCat(impl->name, " newctx"));
  AeadCipher result(&*impl, ctx);
  // Keyed for encryption; Open switches the direction with a keyless init,
  // which keeps the key schedule.
  if (impl->encrypt_init(ctx, Bytes(key), key.size(), nullptr, 0, nullptr) !=
      1) {
    return OpenSslError(absl::StrCat(impl->name, " key setup"));
  }
  return result;
}

AeadCipher::AeadCipher(AeadCipher&& other) noexcept
    : impl_(other.impl_), ctx_(std::exchange(other.ctx_, nullptr)) {}

AeadCipher& AeadCipher::operator=(AeadCipher&& other) noexcept {
  if (this != &other) {
    if (ctx_ != nullptr) impl_->freectx(ctx_);  // wipes the key schedule
    impl_ = other.impl_;
    ctx_ = std::exchange(other.ctx_, nullptr);
  }
  return *this;
}

AeadCipher::~AeadCipher() {
  if (ctx_ != nullptr) impl_->freectx(ctx_);
}

absl::Status AeadCipher::Seal(absl::Span<const uint8_t> nonce,
                              absl::string_view plaintext,
                              absl::string_view associated_data,
                              absl::Span<uint8_t> out) {
  if (nonce.size() != kNonceSize) {
    return absl::InvalidArgumentError(absl::StrCat(
        "AEAD nonce must be ", kNonceSize, " bytes, got ", nonce.size()));
  }
  if (plaintext.size() > impl_->max_message) {
    return absl::InvalidArgumentError(absl::StrCat(
        impl_->name, " plaintext of ", plaintext.size(), " bytes exceeds the ",
        impl_->max_message, "-byte limit for one nonce"));
  }
  if (out.size() != plaintext.size() + kTagSize) {
    return absl::InvalidArgumentError(
        absl::StrCat("AEAD output buffer is ", out.size(), " bytes, need ",
                     plaintext.size() + kTagSize));
  }
  if (impl_->encrypt_init(ctx_, nullptr, 0, nonce.data(), kNonceSize,
                          nullptr) != 1) {
    return OpenSslError(absl::StrCat(impl_->name, " encrypt init"));
  }
  size_t len = 0;
  // Associated data goes in with no output buffer; the size given for it is
  // the input's, as EVP gives.
  if (!associated_data.empty() &&
      impl_->update(ctx_, nullptr, &len, associated_data.size(),
                    Bytes(associated_data), associated_data.size()) != 1) {
    return OpenSslError(absl::StrCat(impl_->name, " associated data"));
  }
  uint8_t* const dst = out.data();
  if (!plaintext.empty() &&
      (impl_->update(ctx_, dst, &len, plaintext.size(), Bytes(plaintext),
                     plaintext.size()) != 1 ||
       len != plaintext.size())) {
    return OpenSslError(absl::StrCat(impl_->name, " encrypt"));
  }
  if (impl_->final(ctx_, dst + plaintext.size(), &len, 0) != 1 || len != 0) {
    return OpenSslError(absl::StrCat(impl_->name, " encrypt final"));
  }
  OSSL_PARAM tag_params[] = {
      OSSL_PARAM_construct_octet_string(OSSL_CIPHER_PARAM_AEAD_TAG,
                                        dst + plaintext.size(), kTagSize),
      OSSL_PARAM_construct_end()};
  if (impl_->get_ctx_params(ctx_, tag_params) != 1) {
    return OpenSslError(absl::StrCat(impl_->name, " tag"));
  }
  return absl::OkStatus();
}

absl::Status AeadCipher::Open(absl::Span<const uint8_t> nonce,
                              absl::string_view ciphertext_and_tag,
                              absl::string_view associated_data,
                              absl::Span<uint8_t> out) {
  if (nonce.size() != kNonceSize) {
    return absl::InvalidArgumentError(absl::StrCat(
        "AEAD nonce must be ", kNonceSize, " bytes, got ", nonce.size()));
  }
  if (ciphertext_and_tag.size() < kTagSize) {
    return absl::InvalidArgumentError(
        absl::StrCat("AEAD ciphertext of ", ciphertext_and_tag.size(),
                     " bytes is shorter than its ", kTagSize, "-byte tag"));
  }
  const size_t body = ciphertext_and_tag.size() - kTagSize;
  if (body > impl_->max_message) {
    return absl::InvalidArgumentError(absl::StrCat(
        impl_->name, " ciphertext of ", body, " bytes exceeds the ",
        impl_->max_message, "-byte limit for one nonce"));
  }
  if (out.size() != body) {
    return absl::InvalidArgumentError(absl::StrCat(
        "AEAD output buffer is ", out.size(), " bytes, need ", body));
  }
  // The expected tag goes in with the nonce. OpenSSL takes it through a
  // non-const pointer but does not write to it.
  OSSL_PARAM tag_params[] = {
      OSSL_PARAM_construct_octet_string(
          OSSL_CIPHER_PARAM_AEAD_TAG,
          const_cast<char*>(ciphertext_and_tag.data() + body), kTagSize),
      OSSL_PARAM_construct_end()};
  if (impl_->decrypt_init(ctx_, nullptr, 0, nonce.data(), kNonceSize,
                          tag_params) != 1) {
    return OpenSslError(absl::StrCat(impl_->name, " decrypt init"));
  }
  size_t len = 0;
  if (!associated_data.empty() &&
      impl_->update(ctx_, nullptr, &len, associated_data.size(),
                    Bytes(associated_data), associated_data.size()) != 1) {
    return OpenSslError(absl::StrCat(impl_->name, " associated data"));
  }
  uint8_t* const dst = out.data();
  if (body != 0 && (impl_->update(ctx_, dst, &len, body,
                                  Bytes(ciphertext_and_tag), body) != 1 ||
                    len != body)) {
    OPENSSL_cleanse(out.data(), out.size());
    return OpenSslError(absl::StrCat(impl_->name, " decrypt"));
  }
  if (impl_->final(ctx_, dst + body, &len, 0) != 1 || len != 0) {
    // Unauthenticated plaintext must not survive a failed check.
    OPENSSL_cleanse(out.data(), out.size());
    ERR_clear_error();
    return absl::DataLossError("AEAD authentication failed");
  }
  return absl::OkStatus();
}

}  // namespace residency::crypto::internal
