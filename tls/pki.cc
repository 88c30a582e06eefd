#include "tls/pki.h"

#include <errno.h>
#include <fcntl.h>
#include <openssl/asn1.h>
#include <openssl/bn.h>
#include <openssl/evp.h>
#include <openssl/pem.h>
#include <openssl/x509.h>
#include <openssl/x509v3.h>
#include <sys/stat.h>
#include <unistd.h>

#include <cstdint>
#include <cstring>
#include <string>
#include <utility>
#include <vector>

#include "absl/status/status.h"
#include "absl/strings/str_cat.h"
#include "absl/strings/string_view.h"
#include "absl/time/clock.h"
#include "absl/time/time.h"
#include "crypto/random.h"
#include "rpc/printable.h"
#include "tls/internal/x509.h"
#include "tls/principal.h"

namespace residency::tls {

using crypto::SecretBytes;
using internal::Asn1IntegerPtr;
using internal::BignumPtr;
using internal::BioPtr;
using internal::GeneralNamePtr;
using internal::GeneralNamesPtr;
using internal::PkeyPtr;
using internal::X509ExtensionPtr;
using internal::X509NamePtr;
using internal::X509Ptr;

struct CertificateAuthority::OpenSslObjects {
  PkeyPtr key;
  X509Ptr certificate;
  absl::Time not_after;
};

namespace {

// Certificates start this long before they are made, so that a peer whose
// clock is a little behind still accepts them.
constexpr absl::Duration kBackdate = absl::Hours(1);
constexpr absl::Duration kMaxCaValidity = absl::Hours(24 * 3650);
// RFC 5280 upper bound for a CommonName (ub-common-name).
constexpr size_t kMaxCommonNameSize = 64;

absl::Status OpenSslFailure(absl::string_view step) {
  return absl::InternalError(
      absl::StrCat(step, ": ", internal::TakeOpenSslReason()));
}

absl::StatusOr<PkeyPtr> GenerateP256Key() {
  PkeyPtr key(EVP_EC_gen("P-256"));
  if (key == nullptr) return OpenSslFailure("generating a P-256 key");
  return key;
}

// A positive serial of exactly 16 bytes: the top bit is cleared (DER
// integers are signed) and the next one set (so it is never zero and always
// encodes to the same length), leaving 126 random bits.
absl::StatusOr<Asn1IntegerPtr> RandomSerial() {
  absl::StatusOr<std::string> bytes = crypto::RandomBytes(/*size=*/16);
  if (!bytes.ok()) return bytes.status();
  (*bytes)[0] =
      static_cast<char>((static_cast<uint8_t>((*bytes)[0]) & 0x7f) | 0x40);
  BignumPtr number(
      BN_bin2bn(reinterpret_cast<const unsigned char*>(bytes->data()),
                static_cast<int>(bytes->size()), nullptr));
  if (number == nullptr) return OpenSslFailure("serial number");
  Asn1IntegerPtr serial(BN_to_ASN1_INTEGER(number.get(), nullptr));
  if (serial == nullptr) return OpenSslFailure("serial number");
  return serial;
}

// O=residency, then CN=`common_name` unless it is empty.
absl::StatusOr<X509NamePtr> MakeName(absl::string_view common_name) {
  X509NamePtr name(X509_NAME_new());
  if (name == nullptr ||
      X509_NAME_add_entry_by_txt(
          name.get(), "O", MBSTRING_ASC,
          reinterpret_cast<const unsigned char*>("residency"), -1, -1,
          0) != 1) {
    return OpenSslFailure("subject name");
  }
  if (!common_name.empty() &&
      X509_NAME_add_entry_by_txt(
          name.get(), "CN", MBSTRING_ASC,
          reinterpret_cast<const unsigned char*>(common_name.data()),
          static_cast<int>(common_name.size()), -1, 0) != 1) {
    return OpenSslFailure("subject common name");
  }
  return name;
}

// An unsigned version-3 certificate for `subject_key` with a random serial.
absl::StatusOr<X509Ptr> NewCertificate(const X509_NAME* subject,
                                       const X509_NAME* issuer,
                                       EVP_PKEY* subject_key,
                                       absl::Time not_before,
                                       absl::Time not_after) {
  absl::StatusOr<Asn1IntegerPtr> serial = RandomSerial();
  if (!serial.ok()) return serial.status();
  X509Ptr certificate(X509_new());
  if (certificate == nullptr ||
      X509_set_version(certificate.get(), X509_VERSION_3) != 1 ||
      X509_set_serialNumber(certificate.get(), serial->get()) != 1 ||
      X509_set_subject_name(certificate.get(), subject) != 1 ||
      X509_set_issuer_name(certificate.get(), issuer) != 1 ||
      ASN1_TIME_set(X509_getm_notBefore(certificate.get()),
                    absl::ToTimeT(not_before)) == nullptr ||
      ASN1_TIME_set(X509_getm_notAfter(certificate.get()),
                    absl::ToTimeT(not_after)) == nullptr ||
      X509_set_pubkey(certificate.get(), subject_key) != 1) {
    return OpenSslFailure("certificate fields");
  }
  return certificate;
}

// Adds an extension given in OpenSSL's configuration syntax. Only for fixed
// strings: text from a caller could smuggle in extra values.
absl::Status AddExtension(X509* certificate, X509* issuer, int nid,
                          const char* value) {
  X509V3_CTX context;
  X509V3_set_ctx_nodb(&context);
  X509V3_set_ctx(&context, issuer, certificate, nullptr, nullptr, 0);
  X509ExtensionPtr extension(
      X509V3_EXT_conf_nid(nullptr, &context, nid, value));
  if (extension == nullptr ||
      X509_add_ext(certificate, extension.get(), -1) != 1) {
    return OpenSslFailure(absl::StrCat("extension ", OBJ_nid2sn(nid)));
  }
  return absl::OkStatus();
}

bool PushGeneralName(GENERAL_NAMES* names, int type, int string_type,
                     absl::string_view bytes) {
  ASN1_STRING* value = ASN1_STRING_type_new(string_type);
  if (value == nullptr ||
      ASN1_STRING_set(value, bytes.data(), static_cast<int>(bytes.size())) !=
          1) {
    ASN1_STRING_free(value);
    return false;
  }
  GeneralNamePtr name(GENERAL_NAME_new());
  if (name == nullptr) {
    ASN1_STRING_free(value);
    return false;
  }
  GENERAL_NAME_set0_value(name.get(), type, value);
  if (sk_GENERAL_NAME_push(names, name.get()) == 0) return false;
  name.release();  // now owned by `names`
  return true;
}

// subjectAltName = URI:`uri`, DNS:localhost, IP:127.0.0.1, built from
// GENERAL_NAME values rather than the configuration syntax, in which a ','
// in the URI would start another name.
absl::Status AddSubjectAltNames(X509* certificate, absl::string_view uri) {
  static constexpr char kLoopback[] = {127, 0, 0, 1};
  GeneralNamesPtr names(sk_GENERAL_NAME_new_null());
  if (names == nullptr ||
      !PushGeneralName(names.get(), GEN_URI, V_ASN1_IA5STRING, uri) ||
      !PushGeneralName(names.get(), GEN_DNS, V_ASN1_IA5STRING, "localhost") ||
      !PushGeneralName(names.get(), GEN_IPADD, V_ASN1_OCTET_STRING,
                       absl::string_view(kLoopback, sizeof(kLoopback))) ||
      X509_add1_ext_i2d(certificate, NID_subject_alt_name, names.get(),
                        /*crit=*/0, X509V3_ADD_DEFAULT) != 1) {
    return OpenSslFailure("subjectAltName");
  }
  return absl::OkStatus();
}

absl::Status Sign(X509* certificate, EVP_PKEY* issuer_key) {
  if (X509_sign(certificate, issuer_key, EVP_sha256()) <= 0) {
    return OpenSslFailure("signing the certificate");
  }
  return absl::OkStatus();
}

absl::StatusOr<std::string> CertificatePem(X509* certificate) {
  BioPtr bio(BIO_new(BIO_s_mem()));
  if (bio == nullptr || PEM_write_bio_X509(bio.get(), certificate) != 1) {
    return OpenSslFailure("PEM-encoding the certificate");
  }
  char* data = nullptr;
  const long size = BIO_get_mem_data(bio.get(), &data);
  return std::string(data, static_cast<size_t>(size));
}

// PKCS#8 PEM. The BIO is a secure-memory one, whose buffers OpenSSL wipes
// when it frees or grows them, so the only copy left is the SecretBytes.
absl::StatusOr<SecretBytes> PrivateKeyPem(EVP_PKEY* key) {
  BioPtr bio(BIO_new(BIO_s_secmem()));
  if (bio == nullptr ||
      PEM_write_bio_PrivateKey(bio.get(), key, nullptr, nullptr, 0, nullptr,
                               nullptr) != 1) {
    return OpenSslFailure("PEM-encoding the private key");
  }
  char* data = nullptr;
  const long size = BIO_get_mem_data(bio.get(), &data);
  return SecretBytes::CopyFrom(
      absl::string_view(data, static_cast<size_t>(size)));
}

bool IsPrintableAscii(absl::string_view text) {
  for (const char c : text) {
    if (c < 0x20 || c > 0x7e) return false;
  }
  return true;
}

// Writes `contents` to `path` by way of a temporary file in the same
// directory that mkostemp creates with mode 0600, so a key is never
// readable by others, not even for a moment. `mode` is applied before any
// byte is written.
absl::Status WriteFileAtomically(const std::string& path,
                                 absl::string_view contents, mode_t mode) {
  std::string temporary = path + ".tmp.XXXXXX";
  const int fd = mkostemp(temporary.data(), O_CLOEXEC);
  if (fd < 0) {
    return absl::FailedPreconditionError(absl::StrCat(
        "cannot create a file next to '", path, "': ", std::strerror(errno)));
  }
  auto fail = [&](absl::string_view step) {
    const int error = errno;
    close(fd);
    unlink(temporary.c_str());
    return absl::FailedPreconditionError(absl::StrCat(
        "cannot write '", path, "': ", step, ": ", std::strerror(error)));
  };
  if (fchmod(fd, mode) != 0) return fail("fchmod");
  while (!contents.empty()) {
    const ssize_t n = write(fd, contents.data(), contents.size());
    if (n < 0) {
      if (errno == EINTR) continue;
      return fail("write");
    }
    contents.remove_prefix(static_cast<size_t>(n));
  }
  if (fsync(fd) != 0) return fail("fsync");
  if (close(fd) != 0) {
    const int error = errno;
    unlink(temporary.c_str());
    return absl::FailedPreconditionError(absl::StrCat(
        "cannot write '", path, "': close: ", std::strerror(error)));
  }
  if (rename(temporary.c_str(), path.c_str()) != 0) {
    const int error = errno;
    unlink(temporary.c_str());
    return absl::FailedPreconditionError(absl::StrCat(
        "cannot write '", path, "': rename: ", std::strerror(error)));
  }
  return absl::OkStatus();
}

}  // namespace

TlsMaterial Identity::Material() const {
  return TlsMaterial{ca_certificate_pem, certificate_pem,
                     private_key_pem.Clone()};
}

absl::Status Identity::WriteFiles(const std::string& dir,
                                  absl::string_view stem) const {
  if (dir.empty()) {
    return absl::InvalidArgumentError("directory for TLS files is empty");
  }
  if (stem.empty() || stem == "ca" || stem == "." || stem == ".." ||
      stem.find('/') != absl::string_view::npos || !IsPrintableAscii(stem)) {
    return absl::InvalidArgumentError(
        absl::StrCat("file stem '", rpc::Printable(stem),
                     "' must be a non-empty file name other than 'ca' of "
                     "printable characters without '/'"));
  }
  struct File {
    std::string path;
    absl::string_view contents;
    mode_t mode;
  };
  const File files[] = {
      {absl::StrCat(dir, "/ca.crt"), ca_certificate_pem, 0644},
      {absl::StrCat(dir, "/", stem, ".crt"), certificate_pem, 0644},
      {absl::StrCat(dir, "/", stem, ".key"), private_key_pem.view(), 0600},
  };
  std::vector<const File*> written;
  for (const File& file : files) {
    absl::Status status =
        WriteFileAtomically(file.path, file.contents, file.mode);
    if (!status.ok()) {
      for (const File* done : written) unlink(done->path.c_str());
      return status;
    }
    written.push_back(&file);
  }
  return absl::OkStatus();
}

CertificateAuthority::CertificateAuthority(std::string name,
                                           std::unique_ptr<OpenSslObjects> ssl,
                                           std::string certificate_pem)
    : name_(std::move(name)),
      ssl_(std::move(ssl)),
      certificate_pem_(std::move(certificate_pem)) {}

CertificateAuthority::CertificateAuthority(CertificateAuthority&&) noexcept =
    default;
CertificateAuthority& CertificateAuthority::operator=(
    CertificateAuthority&&) noexcept = default;
CertificateAuthority::~CertificateAuthority() = default;

absl::StatusOr<CertificateAuthority> CertificateAuthority::Create(
    absl::string_view name, absl::Duration validity) {
  if (name.empty() || name.size() > kMaxCommonNameSize ||
      !IsPrintableAscii(name)) {
    return absl::InvalidArgumentError(absl::StrCat(
        "CA name '", rpc::Printable(rpc::CutAtCharacter(name, 100)),
        "' must be 1 to 64 printable ASCII characters"));
  }
  if (validity <= absl::ZeroDuration() || validity > kMaxCaValidity) {
    return absl::InvalidArgumentError(
        absl::StrCat("CA validity ", absl::FormatDuration(validity),
                     " must be positive and at most 3650 days"));
  }
  const absl::Time now = absl::Now();
  auto ssl = std::make_unique<OpenSslObjects>();
  ssl->not_after = now + validity;

  absl::StatusOr<PkeyPtr> key = GenerateP256Key();
  if (!key.ok()) return key.status();
  ssl->key = *std::move(key);
  absl::StatusOr<X509NamePtr> subject = MakeName(name);
  if (!subject.ok()) return subject.status();
  absl::StatusOr<X509Ptr> certificate =
      NewCertificate(subject->get(), subject->get(), ssl->key.get(),
                     now - kBackdate, ssl->not_after);
  if (!certificate.ok()) return certificate.status();
  ssl->certificate = *std::move(certificate);
  X509* const ca = ssl->certificate.get();

  for (const auto& [nid, value] : {
           std::pair{NID_basic_constraints, "critical,CA:TRUE"},
           std::pair{NID_key_usage, "critical,keyCertSign,cRLSign"},
           std::pair{NID_subject_key_identifier, "hash"},
           std::pair{NID_authority_key_identifier, "keyid:always"},
       }) {
    absl::Status status = AddExtension(ca, ca, nid, value);
    if (!status.ok()) return status;
  }
  absl::Status status = Sign(ca, ssl->key.get());
  if (!status.ok()) return status;
  absl::StatusOr<std::string> pem = CertificatePem(ca);
  if (!pem.ok()) return pem.status();
  return CertificateAuthority(std::string(name), std::move(ssl),
                              *std::move(pem));
}

absl::StatusOr<Identity> CertificateAuthority::Issue(
    absl::string_view principal_uri, IssueOptions options) const {
  absl::StatusOr<Principal> principal = ParsePrincipal(principal_uri);
  if (!principal.ok()) return principal.status();

  const absl::Time now = absl::Now();
  absl::Time not_before = now - kBackdate;
  absl::Time not_after = now + options.validity;
  if (options.expired) {
    not_before = now - 2 * kBackdate;
    not_after = now - kBackdate;
  } else if (options.validity <= absl::ZeroDuration()) {
    return absl::InvalidArgumentError(absl::StrCat(
        "certificate for ", principal->uri, ": validity ",
        absl::FormatDuration(options.validity), " is not positive"));
  } else if (not_after > ssl_->not_after) {
    return absl::InvalidArgumentError(absl::StrCat(
        "certificate for ", principal->uri, ": validity ",
        absl::FormatDuration(options.validity), " would outlast CA '", name_,
        "', which expires at ", absl::FormatTime(ssl_->not_after)));
  }

  absl::StatusOr<PkeyPtr> key = GenerateP256Key();
  if (!key.ok()) return key.status();
  absl::StatusOr<X509NamePtr> subject = MakeName(
      principal->uri.size() <= kMaxCommonNameSize ? principal->uri : "");
  if (!subject.ok()) return subject.status();
  X509* const ca = ssl_->certificate.get();
  absl::StatusOr<X509Ptr> certificate =
      NewCertificate(subject->get(), X509_get_subject_name(ca), key->get(),
                     not_before, not_after);
  if (!certificate.ok()) return certificate.status();
  X509* const leaf = certificate->get();

  for (const auto& [nid, value] : {
           std::pair{NID_basic_constraints, "critical,CA:FALSE"},
           std::pair{NID_key_usage, "critical,digitalSignature"},
           std::pair{NID_ext_key_usage, "serverAuth,clientAuth"},
           std::pair{NID_subject_key_identifier, "hash"},
           std::pair{NID_authority_key_identifier, "keyid:always"},
       }) {
    absl::Status status = AddExtension(leaf, ca, nid, value);
    if (!status.ok()) return status;
  }
  absl::Status status = AddSubjectAltNames(leaf, principal->uri);
  if (!status.ok()) return status;
  status = Sign(leaf, ssl_->key.get());
  if (!status.ok()) return status;

  absl::StatusOr<std::string> certificate_pem = CertificatePem(leaf);
  if (!certificate_pem.ok()) return certificate_pem.status();
  absl::StatusOr<SecretBytes> key_pem = PrivateKeyPem(key->get());
  if (!key_pem.ok()) return key_pem.status();
  return Identity{principal->uri, *std::move(certificate_pem),
                  *std::move(key_pem), certificate_pem_};
}

}  // namespace residency::tls
