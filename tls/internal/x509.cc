#include "tls/internal/x509.h"

#include <openssl/err.h>
#include <openssl/pem.h>

#include <climits>
#include <string>
#include <utility>
#include <vector>

#include "absl/status/status.h"
#include "absl/strings/match.h"
#include "absl/strings/str_cat.h"

namespace residency::tls::internal {
namespace {

// Passphrase callback for PEM reads: there is never a passphrase. Without
// it OpenSSL's default callback would prompt on the controlling terminal.
int NoPassphrase(char* /*buf*/, int /*size*/, int /*rwflag*/, void* /*u*/) {
  return -1;
}

// True when the last queued error only says that no further PEM block of
// the wanted type was found: the normal end of a PEM file.
bool IsEndOfPem() {
  const unsigned long code = ERR_peek_last_error();
  return ERR_GET_LIB(code) == ERR_LIB_PEM &&
         ERR_GET_REASON(code) == PEM_R_NO_START_LINE;
}

}  // namespace

std::string TakeOpenSslReason() {
  const unsigned long code = ERR_get_error();
  ERR_clear_error();
  if (code == 0) return "unknown error";
  const char* reason = ERR_reason_error_string(code);
  if (reason != nullptr) return reason;
  char text[256];
  ERR_error_string_n(code, text, sizeof(text));
  return text;
}

BioPtr ReadOnlyBio(absl::string_view bytes) {
  if (bytes.size() > INT_MAX) return nullptr;
  return BioPtr(BIO_new_mem_buf(bytes.data(), static_cast<int>(bytes.size())));
}

absl::StatusOr<std::vector<X509Ptr>> ParseCertificates(absl::string_view pem,
                                                       absl::string_view what) {
  if (absl::StrContains(pem, "PRIVATE KEY-----")) {
    return absl::InvalidArgumentError(absl::StrCat(
        what, " contains a private key; keep keys out of certificate files"));
  }
  BioPtr bio = ReadOnlyBio(pem);
  if (bio == nullptr) {
    return absl::InvalidArgumentError(
        absl::StrCat(what, ": cannot read ", pem.size(), " bytes"));
  }
  ERR_clear_error();
  std::vector<X509Ptr> certificates;
  while (true) {
    X509Ptr certificate(
        PEM_read_bio_X509(bio.get(), nullptr, NoPassphrase, nullptr));
    if (certificate == nullptr) {
      if (IsEndOfPem()) {
        ERR_clear_error();
        break;
      }
      return absl::InvalidArgumentError(
          absl::StrCat(what, ": certificate ", certificates.size() + 1,
                       " does not decode: ", TakeOpenSslReason()));
    }
    certificates.push_back(std::move(certificate));
  }
  if (certificates.empty()) {
    return absl::InvalidArgumentError(absl::StrCat(
        what, " holds no PEM certificate (no '-----BEGIN CERTIFICATE-----')"));
  }
  return certificates;
}

absl::StatusOr<PkeyPtr> ParsePrivateKey(absl::string_view pem,
                                        absl::string_view what) {
  // OpenSSL 3 decodes keys through OSSL_DECODER, which reports a file
  // without a key and a key that does not decode alike ("unsupported"), so
  // the first case is told apart here.
  if (!absl::StrContains(pem, "PRIVATE KEY-----")) {
    return absl::InvalidArgumentError(
        absl::StrCat(what,
                     " holds no PEM private key (no '-----BEGIN ... PRIVATE "
                     "KEY-----')"));
  }
  BioPtr bio = ReadOnlyBio(pem);
  if (bio == nullptr) {
    return absl::InvalidArgumentError(
        absl::StrCat(what, ": cannot read ", pem.size(), " bytes"));
  }
  ERR_clear_error();
  PkeyPtr key(
      PEM_read_bio_PrivateKey(bio.get(), nullptr, NoPassphrase, nullptr));
  if (key == nullptr) {
    return absl::InvalidArgumentError(
        absl::StrCat(what,
                     ": private key does not decode (encrypted keys "
                     "are not supported): ",
                     TakeOpenSslReason()));
  }
  return key;
}

}  // namespace residency::tls::internal
