#ifndef RESIDENCY_TLS_CREDENTIALS_H_
#define RESIDENCY_TLS_CREDENTIALS_H_

#include <grpcpp/channel.h>
#include <grpcpp/security/credentials.h>
#include <grpcpp/security/server_credentials.h>
#include <grpcpp/support/channel_arguments.h>

#include <cstddef>
#include <memory>
#include <string>

#include "absl/status/status.h"
#include "absl/status/statusor.h"
#include "absl/time/time.h"
#include "crypto/secret_bytes.h"

namespace residency::tls {

// What one end of an mTLS connection needs: the CA that both ends trust, its
// own certificate (leaf first, then any intermediates) and the leaf's private
// key, all PEM. Move-only, like the key it holds; Clone() copies on purpose.
struct TlsMaterial {
  std::string ca_certificate_pem;
  std::string certificate_pem;
  crypto::SecretBytes private_key_pem;

  TlsMaterial Clone() const {
    return {ca_certificate_pem, certificate_pem, private_key_pem.Clone()};
  }
};

// Largest certificate, CA or key file LoadTlsMaterial reads.
inline constexpr size_t kMaxPemFileSize = size_t{1} << 20;

// Checks `material` with OpenSSL before gRPC sees it; gRPC itself only
// reports bad material as a failed handshake, or, for an empty CA, silently
// trusts the system's public roots instead.
//
// INVALID_ARGUMENT, naming the part, when:
//  - the CA or the certificate is not PEM, does not decode, or the PEM text
//    also holds a private key;
//  - the private key is not PEM, does not decode, or is encrypted;
//  - the private key does not belong to the leaf certificate;
//  - the leaf does not chain to the CA, or is expired or not yet valid;
//  - the leaf has no residency:// URI SAN, several, or an invalid one (see
//    ParsePrincipal): peers would refuse it.
absl::Status ValidateTlsMaterial(const TlsMaterial& material);

// Reads the three PEM files and validates them as ValidateTlsMaterial does,
// naming the file in every error. Errors:
//  - NOT_FOUND: a file does not exist;
//  - FAILED_PRECONDITION: a file cannot be opened or read, is not a regular
//    file, or the key file is accessible by group or others (mode & 077,
//    checked on the opened file before its contents are read);
//  - INVALID_ARGUMENT: a file is larger than kMaxPemFileSize, or the contents
//    fail ValidateTlsMaterial.
absl::StatusOr<TlsMaterial> LoadTlsMaterial(const std::string& ca_file,
                                            const std::string& cert_file,
                                            const std::string& key_file);

// Server credentials that present the certificate and require every client
// to present a certificate that chains to the CA
// (GRPC_SSL_REQUEST_AND_REQUIRE_CLIENT_CERTIFICATE_AND_VERIFY): a client
// without one, or with one from another CA or expired, fails the handshake.
// Validates `material` first; returns its error.
absl::StatusOr<std::shared_ptr<grpc::ServerCredentials>> MakeServerCredentials(
    const TlsMaterial& material);

// Channel credentials that trust only the CA (never the system roots) and
// present the certificate to the server. The server's certificate must also
// match the target's host name or IP address (certificates from
// CertificateAuthority::Issue carry DNS:localhost and IP:127.0.0.1).
// Validates `material` first; returns its error.
absl::StatusOr<std::shared_ptr<grpc::ChannelCredentials>>
MakeChannelCredentials(const TlsMaterial& material);

struct ChannelOptions {
  // Largest response message accepted; larger ones fail the call with
  // RESOURCE_EXHAUSTED. gRPC's default is the same 4 MiB.
  int max_receive_message_bytes = 4 << 20;
  // After a failed connection attempt the channel tries again
  // `initial_reconnect_backoff` later, then at intervals 1.6 times longer
  // each (with up to 20% jitter), at most `max_reconnect_backoff` apart. In
  // between it fails calls at once with UNAVAILABLE, so a client that
  // retries UNAVAILABLE (client::RetryPolicy: 100 ms, doubling to 2 s) can
  // only reach a server that came back if the channel tries again within
  // that time. gRPC's own defaults, 1 s growing to 120 s, outlast the
  // client's retries. gRPC raises anything under 100 ms to 100 ms.
  absl::Duration initial_reconnect_backoff = absl::Milliseconds(100);
  absl::Duration max_reconnect_backoff = absl::Seconds(2);
};

// The channel arguments that `options` stand for. INVALID_ARGUMENT for a
// non-positive message limit or backoff, an initial backoff above the
// maximum, or a maximum above 24 hours.
absl::StatusOr<grpc::ChannelArguments> MakeChannelArguments(
    const ChannelOptions& options);

// An mTLS channel to `target` ("127.0.0.1:50051", "localhost:443") with
// MakeChannelCredentials and MakeChannelArguments. INVALID_ARGUMENT for
// invalid material or options.
absl::StatusOr<std::shared_ptr<grpc::Channel>> MakeChannel(
    const std::string& target, const TlsMaterial& material,
    const ChannelOptions& options = {});

}  // namespace residency::tls

#endif  // RESIDENCY_TLS_CREDENTIALS_H_
