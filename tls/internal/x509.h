#ifndef RESIDENCY_TLS_INTERNAL_X509_H_
#define RESIDENCY_TLS_INTERNAL_X509_H_

// OpenSSL ownership types and PEM parsing shared by pki.cc, credentials.cc
// and peer.cc. Not for use outside tls/.

#include <openssl/bio.h>
#include <openssl/evp.h>
#include <openssl/x509.h>
#include <openssl/x509v3.h>

#include <memory>
#include <vector>

#include "absl/status/status.h"
#include "absl/status/statusor.h"
#include "absl/strings/string_view.h"

namespace residency::tls::internal {

struct OpenSslFree {
  void operator()(BIO* p) const { BIO_free_all(p); }
  void operator()(EVP_PKEY* p) const { EVP_PKEY_free(p); }
  void operator()(X509* p) const { X509_free(p); }
  void operator()(X509_NAME* p) const { X509_NAME_free(p); }
  void operator()(X509_EXTENSION* p) const { X509_EXTENSION_free(p); }
  void operator()(X509_STORE* p) const { X509_STORE_free(p); }
  void operator()(X509_STORE_CTX* p) const { X509_STORE_CTX_free(p); }
  void operator()(GENERAL_NAME* p) const { GENERAL_NAME_free(p); }
  void operator()(GENERAL_NAMES* p) const { GENERAL_NAMES_free(p); }
  void operator()(STACK_OF(X509) * p) const { sk_X509_free(p); }
  void operator()(BIGNUM* p) const { BN_free(p); }
  void operator()(ASN1_INTEGER* p) const { ASN1_INTEGER_free(p); }
};

using BioPtr = std::unique_ptr<BIO, OpenSslFree>;
using PkeyPtr = std::unique_ptr<EVP_PKEY, OpenSslFree>;
using X509Ptr = std::unique_ptr<X509, OpenSslFree>;
using X509NamePtr = std::unique_ptr<X509_NAME, OpenSslFree>;
using X509ExtensionPtr = std::unique_ptr<X509_EXTENSION, OpenSslFree>;
using X509StorePtr = std::unique_ptr<X509_STORE, OpenSslFree>;
using X509StoreCtxPtr = std::unique_ptr<X509_STORE_CTX, OpenSslFree>;
using GeneralNamePtr = std::unique_ptr<GENERAL_NAME, OpenSslFree>;
using GeneralNamesPtr = std::unique_ptr<GENERAL_NAMES, OpenSslFree>;
using X509StackPtr = std::unique_ptr<STACK_OF(X509), OpenSslFree>;
using BignumPtr = std::unique_ptr<BIGNUM, OpenSslFree>;
using Asn1IntegerPtr = std::unique_ptr<ASN1_INTEGER, OpenSslFree>;

// A read-only memory BIO over `bytes`, which must outlive it. OpenSSL does
// not copy the bytes, so a BIO over a SecretBytes view leaves no copy of
// the key behind.
BioPtr ReadOnlyBio(absl::string_view bytes);

// Every PEM "CERTIFICATE" block in `pem`, in order. INVALID_ARGUMENT naming
// `what` when there is none, when one does not decode, or when `pem` also
// holds a private key (certificates are often world-readable files, so a
// key found among them is refused rather than skipped).
absl::StatusOr<std::vector<X509Ptr>> ParseCertificates(absl::string_view pem,
                                                       absl::string_view what);

// The first private key in `pem` (PKCS#8 or a traditional format).
// INVALID_ARGUMENT naming `what` when there is none or it is encrypted:
// OpenSSL is given a passphrase callback that refuses, so it never prompts
// on a terminal.
absl::StatusOr<PkeyPtr> ParsePrivateKey(absl::string_view pem,
                                        absl::string_view what);

// OpenSSL's reason for the most recent failure on this thread's error
// queue, which it then clears ("unknown error" when it is empty).
std::string TakeOpenSslReason();

}  // namespace residency::tls::internal

#endif  // RESIDENCY_TLS_INTERNAL_X509_H_
