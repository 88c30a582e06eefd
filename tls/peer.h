#ifndef RESIDENCY_TLS_PEER_H_
#define RESIDENCY_TLS_PEER_H_

#include <grpcpp/security/auth_context.h>
#include <grpcpp/server_context.h>

#include "absl/status/statusor.h"
#include "absl/strings/string_view.h"
#include "tls/principal.h"

namespace residency::tls {

// The principal named by the single residency:// URI SAN of a PEM
// certificate (the first certificate in `certificate_pem`). Only URI SANs
// count: a DNS or e-mail SAN or a subject CN that reads "residency://..."
// names nobody. URIs of other schemes are ignored. Does NOT verify the
// certificate; callers pass one that the TLS handshake or
// ValidateTlsMaterial has verified.
//
// INVALID_ARGUMENT when the PEM does not decode, when the certificate has no
// residency:// URI SAN or more than one (a scheme spelt in another case,
// like "Residency://", counts as one), or when that URI is not a valid
// principal (see ParsePrincipal).
absl::StatusOr<Principal> CertificatePrincipal(
    absl::string_view certificate_pem);

// The identity of a server's own certificate, which must name a
// residency://service/NAME principal (INVALID_ARGUMENT otherwise, saying
// what it names instead).
absl::StatusOr<Principal> ServiceIdentity(absl::string_view certificate_pem);

// The principal of the peer of a call, from the certificate that the TLS
// handshake verified (the "x509_pem_cert" auth-context property), never from
// request fields or metadata. On a server built with MakeServerCredentials
// the handshake has checked that certificate against the CA; on a client,
// `context` comes from ClientContext::auth_context() after the call and
// names the server.
//
// UNAUTHENTICATED, saying why, when the transport is not TLS, the peer sent
// no certificate, or CertificatePrincipal refuses the certificate.
//
// The result is only as trustworthy as the handshake: a server whose
// credentials request a client certificate without verifying it would pass
// an unverified certificate here, and the auth context cannot tell the two
// apart. Build servers with MakeServerCredentials.
//
// Example, in a service method:
//   absl::StatusOr<Principal> caller = PeerPrincipal(*context);
//   if (!caller.ok()) return rpc::ToGrpcStatus(caller.status());
absl::StatusOr<Principal> PeerPrincipal(const grpc::AuthContext& context);

// As above for a server call; works for both the synchronous ServerContext
// and the callback API's CallbackServerContext.
absl::StatusOr<Principal> PeerPrincipal(const grpc::ServerContextBase& context);

}  // namespace residency::tls

#endif  // RESIDENCY_TLS_PEER_H_
