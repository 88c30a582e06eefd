#include "tls/internal/test_certificate.h"

#include <openssl/evp.h>
#include <openssl/pem.h>
#include <openssl/x509.h>
#include <openssl/x509v3.h>

#include <string>

#include "absl/status/status.h"
#include "absl/strings/str_cat.h"
#include "tls/internal/x509.h"

namespace residency::tls::internal {
namespace {

absl::Status Failure(absl::string_view step) {
  return absl::InternalError(absl::StrCat(step, ": ", TakeOpenSslReason()));
}

}  // namespace

absl::StatusOr<SelfSignedCertificate> MakeSelfSignedCertificate(
    absl::string_view common_name, const std::vector<SubjectAltName>& names) {
  PkeyPtr key(EVP_EC_gen("P-256"));
  X509Ptr certificate(X509_new());
  X509NamePtr subject(X509_NAME_new());
  if (key == nullptr || certificate == nullptr || subject == nullptr) {
    return Failure("allocating");
  }
  if (!common_name.empty() &&
      X509_NAME_add_entry_by_txt(
          subject.get(), "CN", MBSTRING_ASC,
          reinterpret_cast<const unsigned char*>(common_name.data()),
          static_cast<int>(common_name.size()), -1, 0) != 1) {
    return Failure("common name");
  }
  if (X509_set_version(certificate.get(), X509_VERSION_3) != 1 ||
      ASN1_INTEGER_set(X509_get_serialNumber(certificate.get()), 1) != 1 ||
      X509_set_subject_name(certificate.get(), subject.get()) != 1 ||
      X509_set_issuer_name(certificate.get(), subject.get()) != 1 ||
      X509_gmtime_adj(X509_getm_notBefore(certificate.get()), -3600) ==
          nullptr ||
      X509_gmtime_adj(X509_getm_notAfter(certificate.get()), 86400) ==
          nullptr ||
      X509_set_pubkey(certificate.get(), key.get()) != 1) {
    return Failure("certificate fields");
  }
  if (!names.empty()) {
    GeneralNamesPtr sans(sk_GENERAL_NAME_new_null());
    if (sans == nullptr) return Failure("subjectAltName");
    for (const SubjectAltName& name : names) {
      GeneralNamePtr entry(GENERAL_NAME_new());
      ASN1_IA5STRING* value = ASN1_IA5STRING_new();
      if (entry == nullptr || value == nullptr ||
          ASN1_STRING_set(value, name.value.data(),
                          static_cast<int>(name.value.size())) != 1) {
        ASN1_IA5STRING_free(value);
        return Failure("subjectAltName entry");
      }
      GENERAL_NAME_set0_value(entry.get(), name.type, value);
      if (sk_GENERAL_NAME_push(sans.get(), entry.get()) == 0) {
        return Failure("subjectAltName entry");
      }
      entry.release();
    }
    if (X509_add1_ext_i2d(certificate.get(), NID_subject_alt_name, sans.get(),
                          /*crit=*/0, X509V3_ADD_DEFAULT) != 1) {
      return Failure("subjectAltName");
    }
  }
  if (X509_sign(certificate.get(), key.get(), EVP_sha256()) <= 0) {
    return Failure("signing");
  }

  BioPtr certificate_bio(BIO_new(BIO_s_mem()));
  BioPtr key_bio(BIO_new(BIO_s_secmem()));
  if (certificate_bio == nullptr || key_bio == nullptr ||
      PEM_write_bio_X509(certificate_bio.get(), certificate.get()) != 1 ||
      PEM_write_bio_PrivateKey(key_bio.get(), key.get(), nullptr, nullptr, 0,
                               nullptr, nullptr) != 1) {
    return Failure("PEM encoding");
  }
  char* data = nullptr;
  long size = BIO_get_mem_data(certificate_bio.get(), &data);
  SelfSignedCertificate result;
  result.certificate_pem.assign(data, static_cast<size_t>(size));
  size = BIO_get_mem_data(key_bio.get(), &data);
  result.private_key_pem = crypto::SecretBytes::CopyFrom(
      absl::string_view(data, static_cast<size_t>(size)));
  return result;
}

}  // namespace residency::tls::internal
