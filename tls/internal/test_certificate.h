#ifndef RESIDENCY_TLS_INTERNAL_TEST_CERTIFICATE_H_
#define RESIDENCY_TLS_INTERNAL_TEST_CERTIFICATE_H_

// Test-only: self-signed certificates with arbitrary subjectAltNames, for
// the certificates CertificateAuthority::Issue will not make (no URI SAN,
// two of them, a principal spelt as a DNS name). Linked into tls_test only.

#include <string>
#include <utility>
#include <vector>

#include "absl/status/statusor.h"
#include "absl/strings/string_view.h"
#include "crypto/secret_bytes.h"

namespace residency::tls::internal {

struct SubjectAltName {
  int type;  // GEN_URI, GEN_DNS or GEN_EMAIL
  std::string value;
};

struct SelfSignedCertificate {
  std::string certificate_pem;
  crypto::SecretBytes private_key_pem;
};

// A self-signed P-256 certificate, valid from an hour ago for a day, with
// subject CN=`common_name` (none when empty) and the given SANs (no
// subjectAltName extension when `names` is empty).
absl::StatusOr<SelfSignedCertificate> MakeSelfSignedCertificate(
    absl::string_view common_name, const std::vector<SubjectAltName>& names);

}  // namespace residency::tls::internal

#endif  // RESIDENCY_TLS_INTERNAL_TEST_CERTIFICATE_H_
