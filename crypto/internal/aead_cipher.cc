#include "crypto/internal/aead_cipher.h"

#include <openssl/core_names.h>
#include <openssl/crypto.h>
#include <openssl/err.h>
#include <openssl/evp.h>
#include <openssl/params.h>

#include <utility>

#include "absl/strings/str_cat.h"
#include "crypto/internal/openssl_error.h"

namespace residency::crypto::internal {
namespace {

// Ciphers are fetched once: an implicit fetch on every init costs a provider
// lookup under a lock, which shows in per-chunk overhead.
const EVP_CIPHER* FetchedCipher(AeadCipher::Kind kind, size_t key_size) {
  static EVP_CIPHER* const aes128 =
      EVP_CIPHER_fetch(nullptr, "AES-128-GCM", nullptr);
  static EVP_CIPHER* const aes256 =
      EVP_CIPHER_fetch(nullptr, "AES-256-GCM", nullptr);
  static EVP_CIPHER* const chacha =
      EVP_CIPHER_fetch(nullptr, "ChaCha20-Poly1305", nullptr);
  if (kind == AeadCipher::Kind::kChaCha20Poly1305) return chacha;
  return key_size == 16 ? aes128 : aes256;
}

// EVP_*Update take int lengths; larger buffers go through in pieces.
constexpr size_t kMaxUpdate = size_t{1} << 30;

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
  const EVP_CIPHER* cipher = FetchedCipher(kind, key.size());
  if (cipher == nullptr) return OpenSslError("EVP_CIPHER_fetch");
  EVP_CIPHER_CTX* ctx = EVP_CIPHER_CTX_new();
  if (ctx == nullptr) return OpenSslError("EVP_CIPHER_CTX_new");
  AeadCipher result(kind, ctx);
  if (EVP_CipherInit_ex2(ctx, cipher, Bytes(key), nullptr, /*enc=*/1,
                         nullptr) != 1) {
    return OpenSslError("EVP_CipherInit_ex2");
  }
  return result;
}

AeadCipher::AeadCipher(AeadCipher&& other) noexcept
    : kind_(other.kind_), ctx_(std::exchange(other.ctx_, nullptr)) {}

AeadCipher& AeadCipher::operator=(AeadCipher&& other) noexcept {
  if (this != &other) {
    EVP_CIPHER_CTX_free(ctx_);  // wipes the key schedule
    kind_ = other.kind_;
    ctx_ = std::exchange(other.ctx_, nullptr);
  }
  return *this;
}

AeadCipher::~AeadCipher() { EVP_CIPHER_CTX_free(ctx_); }

absl::Status AeadCipher::Seal(absl::Span<const uint8_t> nonce,
                              absl::string_view plaintext,
                              absl::string_view associated_data,
                              absl::Span<uint8_t> out) {
  if (nonce.size() != kNonceSize) {
    return absl::InvalidArgumentError(absl::StrCat(
        "AEAD nonce must be ", kNonceSize, " bytes, got ", nonce.size()));
  }
  if (out.size() != plaintext.size() + kTagSize) {
    return absl::InvalidArgumentError(
        absl::StrCat("AEAD output buffer is ", out.size(), " bytes, need ",
                     plaintext.size() + kTagSize));
  }
  if (EVP_EncryptInit_ex2(ctx_, nullptr, nullptr, nonce.data(), nullptr) != 1) {
    return OpenSslError("EVP_EncryptInit_ex2");
  }
  int len = 0;
  for (size_t at = 0; at < associated_data.size(); at += kMaxUpdate) {
    const size_t n = std::min(kMaxUpdate, associated_data.size() - at);
    if (EVP_EncryptUpdate(ctx_, nullptr, &len, Bytes(associated_data) + at,
                          static_cast<int>(n)) != 1) {
      return OpenSslError("EVP_EncryptUpdate(aad)");
    }
  }
  uint8_t* dst = out.data();
  for (size_t at = 0; at < plaintext.size(); at += kMaxUpdate) {
    const size_t n = std::min(kMaxUpdate, plaintext.size() - at);
    if (EVP_EncryptUpdate(ctx_, dst, &len, Bytes(plaintext) + at,
                          static_cast<int>(n)) != 1) {
      return OpenSslError("EVP_EncryptUpdate");
    }
    dst += len;
  }
  if (EVP_EncryptFinal_ex(ctx_, dst, &len) != 1) {
    return OpenSslError("EVP_EncryptFinal_ex");
  }
  dst += len;
  // Parameters rather than EVP_CIPHER_CTX_ctrl: the ctrl shim builds the
  // same OSSL_PARAM on every call, which shows at one call per chunk.
  OSSL_PARAM tag_params[] = {OSSL_PARAM_construct_octet_string(
                                 OSSL_CIPHER_PARAM_AEAD_TAG, dst, kTagSize),
                             OSSL_PARAM_construct_end()};
  if (EVP_CIPHER_CTX_get_params(ctx_, tag_params) != 1) {
    return OpenSslError("get AEAD tag");
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
  if (out.size() != body) {
    return absl::InvalidArgumentError(absl::StrCat(
        "AEAD output buffer is ", out.size(), " bytes, need ", body));
  }
  if (EVP_DecryptInit_ex2(ctx_, nullptr, nullptr, nonce.data(), nullptr) != 1) {
    return OpenSslError("EVP_DecryptInit_ex2");
  }
  // OpenSSL takes the expected tag through a non-const pointer but does not
  // write to it.
  OSSL_PARAM tag_params[] = {
      OSSL_PARAM_construct_octet_string(
          OSSL_CIPHER_PARAM_AEAD_TAG,
          const_cast<char*>(ciphertext_and_tag.data() + body), kTagSize),
      OSSL_PARAM_construct_end()};
  if (EVP_CIPHER_CTX_set_params(ctx_, tag_params) != 1) {
    return OpenSslError("set AEAD tag");
  }
  int len = 0;
  for (size_t at = 0; at < associated_data.size(); at += kMaxUpdate) {
    const size_t n = std::min(kMaxUpdate, associated_data.size() - at);
    if (EVP_DecryptUpdate(ctx_, nullptr, &len, Bytes(associated_data) + at,
                          static_cast<int>(n)) != 1) {
      return OpenSslError("EVP_DecryptUpdate(aad)");
    }
  }
  uint8_t* dst = out.data();
  for (size_t at = 0; at < body; at += kMaxUpdate) {
    const size_t n = std::min(kMaxUpdate, body - at);
    if (EVP_DecryptUpdate(ctx_, dst, &len, Bytes(ciphertext_and_tag) + at,
                          static_cast<int>(n)) != 1) {
      OPENSSL_cleanse(out.data(), out.size());
      return OpenSslError("EVP_DecryptUpdate");
    }
    dst += len;
  }
  if (EVP_DecryptFinal_ex(ctx_, dst, &len) != 1) {
    // Unauthenticated plaintext must not survive a failed check.
    OPENSSL_cleanse(out.data(), out.size());
    ERR_clear_error();
    return absl::DataLossError("AEAD authentication failed");
  }
  return absl::OkStatus();
}

}  // namespace residency::crypto::internal
