#include "key_service/audit_signer.h"

#include <openssl/bio.h>
#include <openssl/err.h>
#include <openssl/evp.h>
#include <openssl/objects.h>
#include <openssl/pem.h>

#include <climits>
#include <cstdlib>
#include <memory>
#include <string>
#include <utility>

#include "absl/strings/escaping.h"
#include "absl/strings/str_cat.h"
#include "crypto/random.h"
#include "key_service/audit_format.h"

namespace residency::key_service {
namespace {

using ::residency::crypto::SecretBytes;

struct MdCtxFree {
  void operator()(EVP_MD_CTX* ctx) const { EVP_MD_CTX_free(ctx); }
};
struct BioFree {
  void operator()(BIO* bio) const { BIO_free(bio); }
};
using MdCtxPtr = std::unique_ptr<EVP_MD_CTX, MdCtxFree>;
using BioPtr = std::unique_ptr<BIO, BioFree>;

// INTERNAL naming the step and OpenSSL's first queued error; clears the
// thread's queue so a later failure is not reported with a stale reason.
absl::Status OpenSslError(absl::string_view what) {
  const unsigned long code = ERR_get_error();
  ERR_clear_error();
  char text[256] = "unknown error";
  if (code != 0) ERR_error_string_n(code, text, sizeof(text));
  return absl::InternalError(absl::StrCat(what, ": ", text));
}

const unsigned char* Bytes(absl::string_view s) {
  return reinterpret_cast<const unsigned char*>(s.data());
}

}  // namespace

void AuditSigner::PkeyFree::operator()(EVP_PKEY* pkey) const {
  EVP_PKEY_free(pkey);
}

AuditSigner::AuditSigner(SecretBytes seed, std::string public_key,
                         std::unique_ptr<EVP_PKEY, PkeyFree> pkey)
    : seed_(std::move(seed)),
      public_key_(std::move(public_key)),
      pkey_(std::move(pkey)) {}

AuditSigner::AuditSigner(AuditSigner&& other) noexcept = default;
AuditSigner& AuditSigner::operator=(AuditSigner&& other) noexcept = default;
AuditSigner::~AuditSigner() = default;

absl::StatusOr<AuditSigner> AuditSigner::Generate() {
  absl::StatusOr<SecretBytes> seed = crypto::RandomSecret(kSeedSize);
  if (!seed.ok()) return seed.status();
  return FromSeed(*seed);
}

absl::StatusOr<AuditSigner> AuditSigner::FromSeed(const SecretBytes& seed32) {
  if (seed32.size() != kSeedSize) {
    return absl::InvalidArgumentError(absl::StrCat(
        "Ed25519 seed must be ", kSeedSize, " bytes, got ", seed32.size()));
  }
  std::unique_ptr<EVP_PKEY, PkeyFree> pkey(EVP_PKEY_new_raw_private_key(
      EVP_PKEY_ED25519, nullptr, seed32.data(), seed32.size()));
  if (pkey == nullptr) return OpenSslError("EVP_PKEY_new_raw_private_key");
  std::string public_key(kPublicKeySize, '\0');
  size_t size = public_key.size();
  if (EVP_PKEY_get_raw_public_key(
          pkey.get(), reinterpret_cast<unsigned char*>(public_key.data()),
          &size) != 1 ||
      size != kPublicKeySize) {
    return OpenSslError("EVP_PKEY_get_raw_public_key");
  }
  return AuditSigner(seed32.Clone(), std::move(public_key), std::move(pkey));
}

std::string AuditSigner::public_key_id() const {
  return PublicKeyId(public_key_);
}

std::string AuditSigner::PublicKeyPem() const {
  BioPtr bio(BIO_new(BIO_s_mem()));
  // Writing a valid in-memory key to a memory BIO fails only when allocation
  // does, which is fatal everywhere else too.
  if (bio == nullptr || PEM_write_bio_PUBKEY(bio.get(), pkey_.get()) != 1) {
    abort();
  }
  char* data = nullptr;
  const long size = BIO_get_mem_data(bio.get(), &data);
  return std::string(data, static_cast<size_t>(size));
}

absl::StatusOr<std::string> AuditSigner::Sign(absl::string_view message) const {
  MdCtxPtr ctx(EVP_MD_CTX_new());
  if (ctx == nullptr) return OpenSslError("EVP_MD_CTX_new");
  // Ed25519 is a one-shot algorithm: no digest, no streaming update.
  if (EVP_DigestSignInit(ctx.get(), nullptr, nullptr, nullptr, pkey_.get()) !=
      1) {
    return OpenSslError("EVP_DigestSignInit(Ed25519)");
  }
  std::string signature(kSignatureSize, '\0');
  size_t size = signature.size();
  if (EVP_DigestSign(ctx.get(),
                     reinterpret_cast<unsigned char*>(signature.data()), &size,
                     Bytes(message), message.size()) != 1 ||
      size != kSignatureSize) {
    return OpenSslError("EVP_DigestSign(Ed25519)");
  }
  return signature;
}

absl::Status VerifyEd25519(absl::string_view public_key_raw32,
                           absl::string_view message,
                           absl::string_view signature) {
  if (public_key_raw32.size() != AuditSigner::kPublicKeySize) {
    return absl::InvalidArgumentError(
        absl::StrCat("Ed25519 public key must be ", AuditSigner::kPublicKeySize,
                     " bytes, got ", public_key_raw32.size()));
  }
  if (signature.size() != AuditSigner::kSignatureSize) {
    return absl::DataLossError(absl::StrCat("Ed25519 signature must be ",
                                            AuditSigner::kSignatureSize,
                                            " bytes, got ", signature.size()));
  }
  std::unique_ptr<EVP_PKEY, void (*)(EVP_PKEY*)> pkey(
      EVP_PKEY_new_raw_public_key(EVP_PKEY_ED25519, nullptr,
                                  Bytes(public_key_raw32),
                                  public_key_raw32.size()),
      EVP_PKEY_free);
  if (pkey == nullptr) {
    ERR_clear_error();
    return absl::InvalidArgumentError("not a valid Ed25519 public key");
  }
  MdCtxPtr ctx(EVP_MD_CTX_new());
  if (ctx == nullptr) return OpenSslError("EVP_MD_CTX_new");
  if (EVP_DigestVerifyInit(ctx.get(), nullptr, nullptr, nullptr, pkey.get()) !=
      1) {
    return OpenSslError("EVP_DigestVerifyInit(Ed25519)");
  }
  const int ok = EVP_DigestVerify(ctx.get(), Bytes(signature), signature.size(),
                                  Bytes(message), message.size());
  // A mismatch leaves an error on the queue; it is the expected outcome here,
  // not a reason to report later.
  ERR_clear_error();
  if (ok != 1) {
    return absl::DataLossError("Ed25519 signature does not verify");
  }
  return absl::OkStatus();
}

absl::StatusOr<std::string> ParsePublicKeyPem(absl::string_view pem) {
  if (pem.size() > INT_MAX) {
    return absl::InvalidArgumentError("PEM text is too large");
  }
  BioPtr bio(BIO_new_mem_buf(pem.data(), static_cast<int>(pem.size())));
  if (bio == nullptr) return OpenSslError("BIO_new_mem_buf");
  std::unique_ptr<EVP_PKEY, void (*)(EVP_PKEY*)> pkey(
      PEM_read_bio_PUBKEY(bio.get(), nullptr, nullptr, nullptr), EVP_PKEY_free);
  ERR_clear_error();
  if (pkey == nullptr) {
    return absl::InvalidArgumentError(
        "no PEM \"PUBLIC KEY\" block with a readable key");
  }
  if (const int id = EVP_PKEY_get_id(pkey.get()); id != EVP_PKEY_ED25519) {
    const char* name = OBJ_nid2sn(id);
    return absl::InvalidArgumentError(absl::StrCat(
        "public key is ", name != nullptr ? name : "of another type",
        ", not ED25519"));
  }
  std::string raw(AuditSigner::kPublicKeySize, '\0');
  size_t size = raw.size();
  if (EVP_PKEY_get_raw_public_key(pkey.get(),
                                  reinterpret_cast<unsigned char*>(raw.data()),
                                  &size) != 1 ||
      size != AuditSigner::kPublicKeySize) {
    return OpenSslError("EVP_PKEY_get_raw_public_key");
  }
  return raw;
}

std::string PublicKeyId(absl::string_view public_key_raw32) {
  return absl::BytesToHexString(Sha256(public_key_raw32));
}

}  // namespace residency::key_service
