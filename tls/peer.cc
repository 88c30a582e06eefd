#include "tls/peer.h"

#include <grpc/grpc_security_constants.h>
#include <openssl/x509v3.h>

#include <memory>
#include <optional>
#include <string>
#include <vector>

#include "absl/base/thread_annotations.h"
#include "absl/container/flat_hash_map.h"
#include "absl/status/status.h"
#include "absl/strings/match.h"
#include "absl/strings/str_cat.h"
#include "absl/strings/string_view.h"
#include "absl/synchronization/mutex.h"
#include "tls/internal/x509.h"

namespace residency::tls {
namespace {

using internal::GeneralNamesPtr;
using internal::X509Ptr;

// True for a URI whose scheme is "residency" in any case. Those are the
// URIs a principal could be read from, so all of them are counted, and a
// misspelt one is refused by ParsePrincipal rather than ignored.
bool HasResidencyScheme(absl::string_view uri) {
  constexpr absl::string_view kScheme = "residency:";
  return uri.size() >= kScheme.size() &&
         absl::EqualsIgnoreCase(uri.substr(0, kScheme.size()), kScheme);
}

absl::string_view View(const grpc::string_ref& ref) {
  return absl::string_view(ref.data(), ref.size());
}

}  // namespace

namespace {

// Principals of certificates already seen. Decoding a certificate costs
// OpenSSL 3 hundreds of microseconds (its public key goes through the
// provider decoders), which would otherwise be paid on every call of a
// connection. Keyed by the whole PEM text, so only a byte-identical
// certificate, already verified by its own handshake, maps to a cached
// principal. Bounded: the cache is emptied when full.
class PrincipalCache {
 public:
  std::optional<Principal> Find(absl::string_view pem) {
    absl::MutexLock lock(&mu_);
    auto it = principals_.find(pem);
    if (it == principals_.end()) return std::nullopt;
    return it->second;
  }

  void Add(absl::string_view pem, const Principal& principal) {
    absl::MutexLock lock(&mu_);
    if (principals_.size() >= kMaxEntries) principals_.clear();
    principals_.emplace(std::string(pem), principal);
  }

 private:
  static constexpr size_t kMaxEntries = 4096;
  absl::Mutex mu_;
  absl::flat_hash_map<std::string, Principal> principals_ ABSL_GUARDED_BY(mu_);
};

PrincipalCache& KnownPrincipals() {
  static PrincipalCache* const cache = new PrincipalCache();
  return *cache;
}

}  // namespace

absl::StatusOr<Principal> CertificatePrincipal(
    absl::string_view certificate_pem) {
  absl::StatusOr<std::vector<X509Ptr>> certificates =
      internal::ParseCertificates(certificate_pem, "certificate");
  if (!certificates.ok()) return certificates.status();
  X509* const leaf = certificates->front().get();

  int critical = 0;
  GeneralNamesPtr names(static_cast<GENERAL_NAMES*>(
      X509_get_ext_d2i(leaf, NID_subject_alt_name, &critical, nullptr)));
  if (names == nullptr) {
    if (critical == -2) {
      return absl::InvalidArgumentError(
          "certificate has more than one subjectAltName extension");
    }
    return absl::InvalidArgumentError(
        "certificate has no subjectAltName extension, so no residency:// "
        "URI SAN");
  }

  std::vector<absl::string_view> uris;
  for (int i = 0; i < sk_GENERAL_NAME_num(names.get()); ++i) {
    const GENERAL_NAME* name = sk_GENERAL_NAME_value(names.get(), i);
    if (name->type != GEN_URI) continue;
    const ASN1_IA5STRING* uri = name->d.uniformResourceIdentifier;
    const absl::string_view text(
        reinterpret_cast<const char*>(ASN1_STRING_get0_data(uri)),
        static_cast<size_t>(ASN1_STRING_length(uri)));
    if (HasResidencyScheme(text)) uris.push_back(text);
  }
  if (uris.empty()) {
    return absl::InvalidArgumentError(
        "certificate has no residency:// URI SAN");
  }
  if (uris.size() > 1) {
    return absl::InvalidArgumentError(
        absl::StrCat("certificate has ", uris.size(),
                     " residency:// URI SANs; a certificate must name exactly "
                     "one principal"));
  }
  absl::StatusOr<Principal> principal = ParsePrincipal(uris.front());
  if (!principal.ok()) {
    return absl::InvalidArgumentError(
        absl::StrCat("certificate URI SAN: ", principal.status().message()));
  }
  return principal;
}

absl::StatusOr<Principal> ServiceIdentity(absl::string_view certificate_pem) {
  absl::StatusOr<Principal> self = CertificatePrincipal(certificate_pem);
  if (!self.ok()) {
    return absl::InvalidArgumentError(absl::StrCat(
        "the service certificate has no usable residency:// identity: ",
        self.status().message()));
  }
  if (self->kind != Principal::Kind::kService) {
    return absl::InvalidArgumentError(
        absl::StrCat("the service certificate names ", self->uri,
                     ", not a residency://service/NAME identity"));
  }
  return self;
}

absl::StatusOr<Principal> PeerPrincipal(const grpc::AuthContext& context) {
  const std::vector<grpc::string_ref> security_type =
      context.FindPropertyValues(GRPC_TRANSPORT_SECURITY_TYPE_PROPERTY_NAME);
  if (security_type.size() != 1 ||
      View(security_type.front()) != GRPC_SSL_TRANSPORT_SECURITY_TYPE) {
    return absl::UnauthenticatedError(
        "peer is not authenticated: the connection does not use TLS");
  }
  const std::vector<grpc::string_ref> certificates =
      context.FindPropertyValues(GRPC_X509_PEM_CERT_PROPERTY_NAME);
  if (certificates.empty()) {
    return absl::UnauthenticatedError(
        "peer is not authenticated: it presented no certificate");
  }
  if (certificates.size() > 1) {
    return absl::UnauthenticatedError(
        absl::StrCat("peer is not authenticated: the auth context holds ",
                     certificates.size(), " peer certificates, not one"));
  }
  if (!context.IsPeerAuthenticated()) {
    return absl::UnauthenticatedError(
        "peer is not authenticated: the transport did not accept its "
        "certificate as an identity");
  }
  const absl::string_view pem = View(certificates.front());
  if (std::optional<Principal> known = KnownPrincipals().Find(pem)) {
    return *std::move(known);
  }
  absl::StatusOr<Principal> principal = CertificatePrincipal(pem);
  if (!principal.ok()) {
    return absl::UnauthenticatedError(absl::StrCat(
        "peer is not authenticated: ", principal.status().message()));
  }
  KnownPrincipals().Add(pem, *principal);
  return principal;
}

absl::StatusOr<Principal> PeerPrincipal(
    const grpc::ServerContextBase& context) {
  const std::shared_ptr<const grpc::AuthContext> auth = context.auth_context();
  if (auth == nullptr) {
    return absl::UnauthenticatedError(
        "peer is not authenticated: the call has no auth context");
  }
  return PeerPrincipal(*auth);
}

}  // namespace residency::tls
