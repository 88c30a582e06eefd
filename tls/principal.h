#ifndef RESIDENCY_TLS_PRINCIPAL_H_
#define RESIDENCY_TLS_PRINCIPAL_H_

#include <cstddef>
#include <string>

#include "absl/status/statusor.h"
#include "absl/strings/string_view.h"

namespace residency::tls {

// Who is on the other end of a connection, as named by the URI SAN of its
// certificate:
//
//   residency://user/NAME                e.g. residency://user/alice
//   residency://operator/NAME            e.g. residency://operator/cn-telecom
//   residency://authority/JURISDICTION   e.g. residency://authority/cn
//   residency://service/NAME             e.g. residency://service/key-service
//
// `uri` is the exact text parsed; ParsePrincipal accepts one spelling per
// principal (lower-case scheme and kind, no escapes), so two principals are
// the same exactly when their URIs are equal.
struct Principal {
  enum class Kind { kUser, kOperator, kAuthority, kService };

  Kind kind;
  std::string name;
  std::string uri;

  friend bool operator==(const Principal&, const Principal&) = default;
};

// Longest NAME (or JURISDICTION) accepted, in bytes.
inline constexpr size_t kMaxPrincipalNameSize = 128;

// "user", "operator", "authority" or "service".
absl::string_view PrincipalKindName(Principal::Kind kind);

// Parses a principal URI. INVALID_ARGUMENT, saying what is wrong, for a
// scheme other than "residency://", a kind other than the four above, and a
// NAME that is empty, longer than kMaxPrincipalNameSize, "." or "..", or has
// a byte outside printable ASCII (controls, space, DEL, non-ASCII) or one of
// '/', '?', '#', '%'. Those characters are refused so that no URI parser
// can read a different path, query, fragment or escape into the name than
// this one does.
absl::StatusOr<Principal> ParsePrincipal(absl::string_view uri);

// Principal URIs built from their parts, e.g. UserPrincipal("alice") ==
// "residency://user/alice". They do not validate `name`: a bad name makes a
// URI that ParsePrincipal (and so CertificateAuthority::Issue) refuses.
std::string UserPrincipal(absl::string_view name);
std::string OperatorPrincipal(absl::string_view name);
std::string AuthorityPrincipal(absl::string_view jurisdiction);
std::string ServicePrincipal(absl::string_view name);

}  // namespace residency::tls

#endif  // RESIDENCY_TLS_PRINCIPAL_H_
