#include "tls/credentials.h"

#include <errno.h>
#include <fcntl.h>
#include <grpc/grpc_security_constants.h>
#include <grpcpp/create_channel.h>
#include <grpcpp/support/channel_arguments.h>
#include <openssl/crypto.h>
#include <openssl/err.h>
#include <openssl/x509.h>
#include <openssl/x509_vfy.h>
#include <sys/stat.h>
#include <unistd.h>

#include <cstring>
#include <string>
#include <utility>
#include <vector>

#include "absl/status/status.h"
#include "absl/strings/str_cat.h"
#include "absl/strings/str_format.h"
#include "absl/strings/string_view.h"
#include "absl/time/time.h"
#include "tls/internal/x509.h"
#include "tls/peer.h"

namespace residency::tls {
namespace {

using crypto::SecretBytes;
using internal::PkeyPtr;
using internal::X509Ptr;
using internal::X509StackPtr;
using internal::X509StoreCtxPtr;
using internal::X509StorePtr;

// How each part of the material is named in errors: "certificate" for
// material from memory, "certificate file '/etc/x.crt'" for files.
struct Names {
  std::string ca;
  std::string certificate;
  std::string key;
};

absl::Status Validate(const TlsMaterial& material, const Names& names) {
  absl::StatusOr<std::vector<X509Ptr>> ca_certificates =
      internal::ParseCertificates(material.ca_certificate_pem, names.ca);
  if (!ca_certificates.ok()) return ca_certificates.status();
  absl::StatusOr<std::vector<X509Ptr>> chain =
      internal::ParseCertificates(material.certificate_pem, names.certificate);
  if (!chain.ok()) return chain.status();
  absl::StatusOr<PkeyPtr> key =
      internal::ParsePrivateKey(material.private_key_pem.view(), names.key);
  if (!key.ok()) return key.status();
  X509* const leaf = chain->front().get();

  if (X509_check_private_key(leaf, key->get()) != 1) {
    ERR_clear_error();
    return absl::InvalidArgumentError(absl::StrCat(
        "the private key in ", names.key,
        " does not belong to the certificate in ", names.certificate));
  }

  X509StorePtr store(X509_STORE_new());
  X509StackPtr intermediates(sk_X509_new_null());
  X509StoreCtxPtr context(X509_STORE_CTX_new());
  if (store == nullptr || intermediates == nullptr || context == nullptr) {
    return absl::InternalError(absl::StrCat(
        "certificate verification context: ", internal::TakeOpenSslReason()));
  }
  for (const X509Ptr& ca : *ca_certificates) {
    if (X509_STORE_add_cert(store.get(), ca.get()) != 1) {
      return absl::InvalidArgumentError(absl::StrCat(
          names.ca,
          ": cannot add a CA certificate: ", internal::TakeOpenSslReason()));
    }
  }
  for (size_t i = 1; i < chain->size(); ++i) {
    if (sk_X509_push(intermediates.get(), (*chain)[i].get()) == 0) {
      return absl::InternalError("certificate chain: out of memory");
    }
  }
  if (X509_STORE_CTX_init(context.get(), store.get(), leaf,
                          intermediates.get()) != 1) {
    return absl::InternalError(absl::StrCat(
        "certificate verification context: ", internal::TakeOpenSslReason()));
  }
  if (X509_verify_cert(context.get()) != 1) {
    const int error = X509_STORE_CTX_get_error(context.get());
    ERR_clear_error();
    return absl::InvalidArgumentError(absl::StrCat(
        "the certificate in ", names.certificate, " does not verify against ",
        names.ca, ": ", X509_verify_cert_error_string(error)));
  }

  absl::StatusOr<Principal> principal =
      CertificatePrincipal(material.certificate_pem);
  if (!principal.ok()) {
    return absl::InvalidArgumentError(absl::StrCat(names.certificate, ": ",
                                                   principal.status().message(),
                                                   "; peers would refuse it"));
  }
  return absl::OkStatus();
}

// Reads a whole PEM file of at most kMaxPemFileSize bytes. A key file must
// not be accessible by group or others; that is checked on the open file,
// so the check and the read see the same file, and before anything is read.
absl::StatusOr<SecretBytes> ReadPemFile(const std::string& path,
                                        absl::string_view what,
                                        bool private_key) {
  // O_NONBLOCK: opening a FIFO must not wait for a writer; the file type is
  // checked right after.
  const int fd =
      open(path.c_str(), O_RDONLY | O_CLOEXEC | O_NOCTTY | O_NONBLOCK);
  if (fd < 0) {
    const int error = errno;
    if (error == ENOENT) {
      return absl::NotFoundError(
          absl::StrCat(what, " '", path, "' does not exist"));
    }
    return absl::FailedPreconditionError(absl::StrCat(
        "cannot open ", what, " '", path, "': ", std::strerror(error)));
  }
  struct Closer {
    int fd;
    ~Closer() { close(fd); }
  } closer{fd};

  struct stat info;
  if (fstat(fd, &info) != 0) {
    return absl::FailedPreconditionError(absl::StrCat(
        "cannot stat ", what, " '", path, "': ", std::strerror(errno)));
  }
  if (!S_ISREG(info.st_mode)) {
    return absl::FailedPreconditionError(
        absl::StrCat(what, " '", path, "' is not a regular file"));
  }
  const unsigned mode = info.st_mode & 07777;
  if (private_key && (mode & 077) != 0) {
    return absl::FailedPreconditionError(absl::StrFormat(
        "%s '%s' is %s by group or others (mode %04o); chmod 600 it", what,
        path, (mode & 044) != 0 ? "readable" : "writable or executable", mode));
  }
  const size_t stated_size = static_cast<size_t>(info.st_size);
  if (stated_size > kMaxPemFileSize) {
    return absl::InvalidArgumentError(
        absl::StrCat(what, " '", path, "' is ", stated_size,
                     " bytes; the limit is ", kMaxPemFileSize));
  }

  // One byte more than the stated size, to notice a file that grows.
  SecretBytes buffer(stated_size + 1);
  size_t total = 0;
  while (total < buffer.size()) {
    const ssize_t n =
        read(fd, buffer.mutable_data() + total, buffer.size() - total);
    if (n < 0) {
      if (errno == EINTR) continue;
      return absl::FailedPreconditionError(absl::StrCat(
          "cannot read ", what, " '", path, "': ", std::strerror(errno)));
    }
    if (n == 0) break;
    total += static_cast<size_t>(n);
  }
  if (total > stated_size) {
    return absl::FailedPreconditionError(
        absl::StrCat(what, " '", path, "' grew while it was being read"));
  }
  return SecretBytes::CopyFrom(buffer.view().substr(0, total));
}

}  // namespace

absl::Status ValidateTlsMaterial(const TlsMaterial& material) {
  return Validate(material,
                  Names{"CA certificate", "certificate", "private key"});
}

absl::StatusOr<TlsMaterial> LoadTlsMaterial(const std::string& ca_file,
                                            const std::string& cert_file,
                                            const std::string& key_file) {
  const Names names{absl::StrCat("CA certificate file '", ca_file, "'"),
                    absl::StrCat("certificate file '", cert_file, "'"),
                    absl::StrCat("private key file '", key_file, "'")};
  absl::StatusOr<SecretBytes> ca =
      ReadPemFile(ca_file, "CA certificate file", /*private_key=*/false);
  if (!ca.ok()) return ca.status();
  absl::StatusOr<SecretBytes> certificate =
      ReadPemFile(cert_file, "certificate file", /*private_key=*/false);
  if (!certificate.ok()) return certificate.status();
  absl::StatusOr<SecretBytes> key =
      ReadPemFile(key_file, "private key file", /*private_key=*/true);
  if (!key.ok()) return key.status();

  TlsMaterial material{std::string(ca->view()),
                       std::string(certificate->view()), *std::move(key)};
  absl::Status status = Validate(material, names);
  if (!status.ok()) return status;
  return material;
}

absl::StatusOr<std::shared_ptr<grpc::ServerCredentials>> MakeServerCredentials(
    const TlsMaterial& material) {
  absl::Status status = ValidateTlsMaterial(material);
  if (!status.ok()) return status;
  grpc::SslServerCredentialsOptions options(
      GRPC_SSL_REQUEST_AND_REQUIRE_CLIENT_CERTIFICATE_AND_VERIFY);
  options.pem_root_certs = material.ca_certificate_pem;
  grpc::SslServerCredentialsOptions::PemKeyCertPair pair;
  pair.private_key = std::string(material.private_key_pem.view());
  pair.cert_chain = material.certificate_pem;
  options.pem_key_cert_pairs.push_back(std::move(pair));
  std::shared_ptr<grpc::ServerCredentials> credentials =
      grpc::SslServerCredentials(options);
  // gRPC has taken its own copy of the key.
  for (auto& key_cert_pair : options.pem_key_cert_pairs) {
    crypto::WipeString(&key_cert_pair.private_key);
  }
  if (credentials == nullptr) {
    return absl::InternalError("gRPC refused the server TLS credentials");
  }
  return credentials;
}

absl::StatusOr<std::shared_ptr<grpc::ChannelCredentials>>
MakeChannelCredentials(const TlsMaterial& material) {
  absl::Status status = ValidateTlsMaterial(material);
  if (!status.ok()) return status;
  grpc::SslCredentialsOptions options;
  options.pem_root_certs = material.ca_certificate_pem;
  options.pem_private_key = std::string(material.private_key_pem.view());
  options.pem_cert_chain = material.certificate_pem;
  std::shared_ptr<grpc::ChannelCredentials> credentials =
      grpc::SslCredentials(options);
  crypto::WipeString(&options.pem_private_key);  // gRPC has taken its own copy
  if (credentials == nullptr) {
    return absl::InternalError("gRPC refused the channel TLS credentials");
  }
  return credentials;
}

absl::StatusOr<grpc::ChannelArguments> MakeChannelArguments(
    const ChannelOptions& options) {
  if (options.max_receive_message_bytes <= 0) {
    return absl::InvalidArgumentError(
        absl::StrCat("max_receive_message_bytes ",
                     options.max_receive_message_bytes, " is not positive"));
  }
  const absl::Duration initial = options.initial_reconnect_backoff;
  const absl::Duration max = options.max_reconnect_backoff;
  if (initial <= absl::ZeroDuration() || max < initial ||
      max > absl::Hours(24)) {
    return absl::InvalidArgumentError(absl::StrCat(
        "reconnect backoff from ", absl::FormatDuration(initial), " to ",
        absl::FormatDuration(max), ": want 0 < initial <= max <= 24h"));
  }
  grpc::ChannelArguments arguments;
  arguments.SetMaxReceiveMessageSize(options.max_receive_message_bytes);
  arguments.SetInt(GRPC_ARG_INITIAL_RECONNECT_BACKOFF_MS,
                   static_cast<int>(absl::ToInt64Milliseconds(initial)));
  arguments.SetInt(GRPC_ARG_MAX_RECONNECT_BACKOFF_MS,
                   static_cast<int>(absl::ToInt64Milliseconds(max)));
  return arguments;
}

absl::StatusOr<std::shared_ptr<grpc::Channel>> MakeChannel(
    const std::string& target, const TlsMaterial& material,
    const ChannelOptions& options) {
  if (target.empty()) {
    return absl::InvalidArgumentError("channel target is empty");
  }
  absl::StatusOr<grpc::ChannelArguments> arguments =
      MakeChannelArguments(options);
  if (!arguments.ok()) {
    return absl::InvalidArgumentError(absl::StrCat(
        "channel to ", target, ": ", arguments.status().message()));
  }
  absl::StatusOr<std::shared_ptr<grpc::ChannelCredentials>> credentials =
      MakeChannelCredentials(material);
  if (!credentials.ok()) return credentials.status();
  return grpc::CreateCustomChannel(target, *credentials, *arguments);
}

}  // namespace residency::tls
