#ifndef RESIDENCY_TLS_PKI_H_
#define RESIDENCY_TLS_PKI_H_

#include <memory>
#include <string>

#include "absl/status/status.h"
#include "absl/status/statusor.h"
#include "absl/strings/string_view.h"
#include "absl/time/time.h"
#include "crypto/secret_bytes.h"
#include "tls/credentials.h"

namespace residency::tls {

// A leaf certificate with its key, as minted by CertificateAuthority::Issue.
// Move-only (it holds a private key).
struct Identity {
  std::string principal;  // the URI, e.g. "residency://user/alice"
  std::string certificate_pem;
  crypto::SecretBytes private_key_pem;  // PKCS#8, unencrypted
  std::string ca_certificate_pem;

  // A copy as TLS material for MakeServerCredentials / MakeChannel.
  TlsMaterial Material() const;

  // Writes `dir`/`stem`.crt (mode 0644), `dir`/`stem`.key (mode 0600) and
  // `dir`/ca.crt (mode 0644), for handing to a child process that reads them
  // with LoadTlsMaterial. Each file is written to a temporary file that is
  // created with its final mode, then renamed into place, so the key is
  // never readable by others and no file is left half-written; if a later
  // file fails, the files this call already put in place are removed.
  // INVALID_ARGUMENT for a stem that is empty, "ca", or has '/' or a control
  // character; FAILED_PRECONDITION, naming the path, when the files cannot
  // be written (for example, `dir` does not exist).
  absl::Status WriteFiles(const std::string& dir, absl::string_view stem) const;
};

struct IssueOptions {
  // The certificate is valid from one hour before issuance (to tolerate
  // clock skew between processes) until `validity` after it. Must be
  // positive and must not outlast the CA.
  absl::Duration validity = absl::Hours(24);
  // For tests: a certificate that expired an hour ago (valid from two hours
  // ago until one hour ago); `validity` is then ignored.
  bool expired = false;
};

// A throwaway certificate authority for tests and the simulator: a
// self-signed ECDSA P-256 / SHA-256 root that mints leaf certificates whose
// identity is a principal URI SAN (see principal.h).
//
// CA certificate: subject and issuer CN=`name`, O=residency; basicConstraints
// CA:TRUE and keyUsage keyCertSign, cRLSign (both critical); a random
// 128-bit serial; valid from an hour before Create until `validity` after.
//
// Leaf certificates (Issue): a fresh P-256 key; subject CN=the principal URI
// (left out when the URI is longer than the 64 characters X.509 allows in a
// CN: peers read identity from the SAN only), O=residency; subjectAltName
// URI:the principal, DNS:localhost, IP:127.0.0.1 (so that one certificate
// serves as client and as server on loopback); extendedKeyUsage serverAuth,
// clientAuth; keyUsage digitalSignature and basicConstraints CA:FALSE (both
// critical); a random 128-bit serial.
//
// The CA key never leaves the object: there is no accessor for it.
//
// Thread safety: immutable after Create; Issue may be called concurrently.
//
// Example:
//   ASSIGN_OR_RETURN(CertificateAuthority ca,
//                    CertificateAuthority::Create("sim"));
//   ASSIGN_OR_RETURN(Identity alice, ca.Issue(UserPrincipal("alice")));
//   ASSIGN_OR_RETURN(auto channel, MakeChannel(target, alice.Material()));
class CertificateAuthority {
 public:
  // INVALID_ARGUMENT for a `name` that is empty, longer than 64 bytes or not
  // printable ASCII, or a `validity` that is not positive or is longer than
  // ten years; INTERNAL when OpenSSL fails.
  static absl::StatusOr<CertificateAuthority> Create(
      absl::string_view name, absl::Duration validity = absl::Hours(24 * 7));

  CertificateAuthority(CertificateAuthority&&) noexcept;
  CertificateAuthority& operator=(CertificateAuthority&&) noexcept;
  ~CertificateAuthority();

  const std::string& name() const { return name_; }
  const std::string& certificate_pem() const { return certificate_pem_; }

  // Mints a leaf certificate for `principal_uri`. INVALID_ARGUMENT when the
  // URI is not a valid principal (ParsePrincipal's message) or the options
  // are (non-positive validity, or one outlasting the CA); INTERNAL when
  // OpenSSL fails.
  absl::StatusOr<Identity> Issue(absl::string_view principal_uri,
                                 IssueOptions options = {}) const;

 private:
  struct OpenSslObjects;
  CertificateAuthority(std::string name, std::unique_ptr<OpenSslObjects> ssl,
                       std::string certificate_pem);

  std::string name_;
  std::unique_ptr<OpenSslObjects> ssl_;  // the CA key and certificate
  std::string certificate_pem_;
};

}  // namespace residency::tls

#endif  // RESIDENCY_TLS_PKI_H_
