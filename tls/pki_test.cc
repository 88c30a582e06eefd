#include "tls/pki.h"

#include <openssl/asn1.h>
#include <openssl/bn.h>
#include <openssl/ec.h>
#include <openssl/err.h>
#include <openssl/evp.h>
#include <openssl/obj_mac.h>
#include <openssl/x509.h>
#include <openssl/x509v3.h>
#include <sys/stat.h>
#include <unistd.h>

#include <algorithm>
#include <filesystem>
#include <fstream>
#include <memory>
#include <string>
#include <thread>
#include <vector>

#include "absl/status/status.h"
#include "absl/strings/match.h"
#include "absl/time/clock.h"
#include "absl/time/time.h"
#include "gmock/gmock.h"
#include "gtest/gtest.h"
#include "tests/status_matchers.h"
#include "tests/temp_dir.h"
#include "tls/credentials.h"
#include "tls/internal/x509.h"
#include "tls/principal.h"

namespace residency::tls {
namespace {

using ::residency::testing::StatusIs;
using ::residency::testing::TempDir;
using ::testing::ElementsAre;
using ::testing::HasSubstr;
using ::testing::UnorderedElementsAre;

using internal::GeneralNamesPtr;
using internal::PkeyPtr;
using internal::X509Ptr;

X509Ptr ParseOne(const std::string& pem) {
  absl::StatusOr<std::vector<X509Ptr>> certificates =
      internal::ParseCertificates(pem, "test certificate");
  EXPECT_TRUE(certificates.ok()) << certificates.status();
  if (!certificates.ok() || certificates->size() != 1) return nullptr;
  return std::move(certificates->front());
}

// The SANs as "URI:...", "DNS:...", "IP:a.b.c.d".
std::vector<std::string> SubjectAltNames(X509* certificate) {
  std::vector<std::string> out;
  GeneralNamesPtr names(static_cast<GENERAL_NAMES*>(
      X509_get_ext_d2i(certificate, NID_subject_alt_name, nullptr, nullptr)));
  if (names == nullptr) return out;
  for (int i = 0; i < sk_GENERAL_NAME_num(names.get()); ++i) {
    const GENERAL_NAME* name = sk_GENERAL_NAME_value(names.get(), i);
    if (name->type == GEN_IPADD) {
      const unsigned char* ip = ASN1_STRING_get0_data(name->d.iPAddress);
      if (ASN1_STRING_length(name->d.iPAddress) == 4) {
        out.push_back("IP:" + std::to_string(ip[0]) + "." +
                      std::to_string(ip[1]) + "." + std::to_string(ip[2]) +
                      "." + std::to_string(ip[3]));
      }
      continue;
    }
    const char* prefix = name->type == GEN_URI   ? "URI:"
                         : name->type == GEN_DNS ? "DNS:"
                                                 : "OTHER:";
    const ASN1_IA5STRING* value = name->d.ia5;
    out.push_back(prefix + std::string(reinterpret_cast<const char*>(
                                           ASN1_STRING_get0_data(value)),
                                       ASN1_STRING_length(value)));
  }
  return out;
}

std::string CommonName(X509* certificate) {
  char buffer[256] = {0};
  const int n =
      X509_NAME_get_text_by_NID(X509_get_subject_name(certificate),
                                NID_commonName, buffer, sizeof(buffer));
  return n < 0 ? "" : std::string(buffer, n);
}

absl::Time ToAbslTime(const ASN1_TIME* time) {
  struct tm parts;
  EXPECT_EQ(ASN1_TIME_to_tm(time, &parts), 1);
  return absl::FromTimeT(timegm(&parts));
}

// X509_verify_cert of `leaf` against the single trusted `ca`; returns the
// X509_V_* result (X509_V_OK when it verifies).
int Verify(X509* ca, X509* leaf) {
  internal::X509StorePtr store(X509_STORE_new());
  internal::X509StoreCtxPtr context(X509_STORE_CTX_new());
  EXPECT_EQ(X509_STORE_add_cert(store.get(), ca), 1);
  EXPECT_EQ(X509_STORE_CTX_init(context.get(), store.get(), leaf, nullptr), 1);
  const int ok = X509_verify_cert(context.get());
  const int error = X509_STORE_CTX_get_error(context.get());
  return ok == 1 ? X509_V_OK : (error == X509_V_OK ? -1 : error);
}

std::string SerialHex(X509* certificate) {
  internal::BignumPtr serial(
      ASN1_INTEGER_to_BN(X509_get0_serialNumber(certificate), nullptr));
  char* hex = BN_bn2hex(serial.get());
  std::string out(hex);
  OPENSSL_free(hex);
  return out;
}

void ExpectP256(X509* certificate) {
  EVP_PKEY* key = X509_get0_pubkey(certificate);
  ASSERT_NE(key, nullptr);
  EXPECT_EQ(EVP_PKEY_get_base_id(key), EVP_PKEY_EC);
  char group[64] = {0};
  size_t length = 0;
  ASSERT_EQ(EVP_PKEY_get_group_name(key, group, sizeof(group), &length), 1);
  EXPECT_STREQ(group, "prime256v1");
  EXPECT_EQ(X509_get_signature_nid(certificate), NID_ecdsa_with_SHA256);
}

class PkiTest : public ::testing::Test {
 protected:
  void SetUp() override {
    ASSERT_OK_AND_ASSIGN(CertificateAuthority ca,
                         CertificateAuthority::Create("test-ca"));
    ca_ = std::make_unique<CertificateAuthority>(std::move(ca));
  }

  std::unique_ptr<CertificateAuthority> ca_;
};

TEST_F(PkiTest, CaCertificateIsASelfSignedP256Root) {
  X509Ptr ca = ParseOne(ca_->certificate_pem());
  ASSERT_NE(ca, nullptr);
  EXPECT_EQ(ca_->name(), "test-ca");
  EXPECT_EQ(CommonName(ca.get()), "test-ca");
  EXPECT_EQ(X509_check_issued(ca.get(), ca.get()), X509_V_OK);
  EXPECT_EQ(Verify(ca.get(), ca.get()), X509_V_OK);
  ExpectP256(ca.get());
  EXPECT_EQ(X509_check_ca(ca.get()), 1);
  EXPECT_EQ(X509_get_key_usage(ca.get()), KU_KEY_CERT_SIGN | KU_CRL_SIGN);
  int critical = 0;
  BASIC_CONSTRAINTS* constraints = static_cast<BASIC_CONSTRAINTS*>(
      X509_get_ext_d2i(ca.get(), NID_basic_constraints, &critical, nullptr));
  ASSERT_NE(constraints, nullptr);
  EXPECT_NE(constraints->ca, 0);
  EXPECT_EQ(critical, 1);
  BASIC_CONSTRAINTS_free(constraints);
}

TEST_F(PkiTest, CaIsValidFromAnHourAgoForSevenDays) {
  X509Ptr ca = ParseOne(ca_->certificate_pem());
  ASSERT_NE(ca, nullptr);
  const absl::Time now = absl::Now();
  EXPECT_LE(absl::AbsDuration(ToAbslTime(X509_get0_notBefore(ca.get())) -
                              (now - absl::Hours(1))),
            absl::Minutes(1));
  EXPECT_LE(absl::AbsDuration(ToAbslTime(X509_get0_notAfter(ca.get())) -
                              (now + absl::Hours(24 * 7))),
            absl::Minutes(1));
}

TEST_F(PkiTest, SerialsAre128BitsAndDiffer) {
  ASSERT_OK_AND_ASSIGN(CertificateAuthority other,
                       CertificateAuthority::Create("other-ca"));
  X509Ptr a = ParseOne(ca_->certificate_pem());
  X509Ptr b = ParseOne(other.certificate_pem());
  ASSERT_OK_AND_ASSIGN(Identity alice, ca_->Issue(UserPrincipal("alice")));
  ASSERT_OK_AND_ASSIGN(Identity alice2, ca_->Issue(UserPrincipal("alice")));
  X509Ptr c = ParseOne(alice.certificate_pem);
  X509Ptr d = ParseOne(alice2.certificate_pem);
  ASSERT_TRUE(a && b && c && d);
  std::vector<std::string> serials = {SerialHex(a.get()), SerialHex(b.get()),
                                      SerialHex(c.get()), SerialHex(d.get())};
  for (const std::string& serial : serials) {
    EXPECT_EQ(serial.size(), 32u) << serial;  // 16 bytes, top byte 0x40..0x7f
  }
  std::sort(serials.begin(), serials.end());
  EXPECT_EQ(std::unique(serials.begin(), serials.end()), serials.end());
}

TEST_F(PkiTest, LeafCarriesThePrincipalAndLoopbackNames) {
  ASSERT_OK_AND_ASSIGN(Identity alice, ca_->Issue(UserPrincipal("alice")));
  EXPECT_EQ(alice.principal, "residency://user/alice");
  EXPECT_EQ(alice.ca_certificate_pem, ca_->certificate_pem());
  X509Ptr leaf = ParseOne(alice.certificate_pem);
  ASSERT_NE(leaf, nullptr);
  EXPECT_THAT(SubjectAltNames(leaf.get()),
              UnorderedElementsAre("URI:residency://user/alice",
                                   "DNS:localhost", "IP:127.0.0.1"));
  EXPECT_EQ(CommonName(leaf.get()), "residency://user/alice");
  ExpectP256(leaf.get());
  EXPECT_EQ(X509_check_ca(leaf.get()), 0);
  EXPECT_EQ(X509_get_extended_key_usage(leaf.get()),
            static_cast<uint32_t>(XKU_SSL_SERVER | XKU_SSL_CLIENT));
  EXPECT_EQ(X509_get_key_usage(leaf.get()),
            static_cast<uint32_t>(KU_DIGITAL_SIGNATURE));
  EXPECT_EQ(X509_check_purpose(leaf.get(), X509_PURPOSE_SSL_CLIENT, 0), 1);
  EXPECT_EQ(X509_check_purpose(leaf.get(), X509_PURPOSE_SSL_SERVER, 0), 1);
}

TEST_F(PkiTest, CaVerifiesLeafAndAnotherCaDoesNot) {
  ASSERT_OK_AND_ASSIGN(CertificateAuthority other,
                       CertificateAuthority::Create("other-ca"));
  ASSERT_OK_AND_ASSIGN(Identity alice, ca_->Issue(UserPrincipal("alice")));
  X509Ptr ca = ParseOne(ca_->certificate_pem());
  X509Ptr other_ca = ParseOne(other.certificate_pem());
  X509Ptr leaf = ParseOne(alice.certificate_pem);
  ASSERT_TRUE(ca && other_ca && leaf);
  EXPECT_EQ(Verify(ca.get(), leaf.get()), X509_V_OK);
  EXPECT_EQ(Verify(other_ca.get(), leaf.get()),
            X509_V_ERR_UNABLE_TO_GET_ISSUER_CERT_LOCALLY);
}

TEST_F(PkiTest, PrivateKeyBelongsToTheLeaf) {
  ASSERT_OK_AND_ASSIGN(Identity alice, ca_->Issue(UserPrincipal("alice")));
  ASSERT_OK_AND_ASSIGN(Identity bob, ca_->Issue(UserPrincipal("bob")));
  X509Ptr leaf = ParseOne(alice.certificate_pem);
  ASSERT_OK_AND_ASSIGN(PkeyPtr key, internal::ParsePrivateKey(
                                        alice.private_key_pem.view(), "k"));
  ASSERT_OK_AND_ASSIGN(PkeyPtr bob_key, internal::ParsePrivateKey(
                                            bob.private_key_pem.view(), "k"));
  EXPECT_EQ(X509_check_private_key(leaf.get(), key.get()), 1);
  EXPECT_NE(X509_check_private_key(leaf.get(), bob_key.get()), 1);
  ERR_clear_error();
  EXPECT_TRUE(absl::StartsWith(alice.private_key_pem.view(),
                               "-----BEGIN PRIVATE KEY-----"));
}

TEST_F(PkiTest, LeafIsValidForTheRequestedTime) {
  ASSERT_OK_AND_ASSIGN(
      Identity alice,
      ca_->Issue(UserPrincipal("alice"), {.validity = absl::Hours(3)}));
  X509Ptr leaf = ParseOne(alice.certificate_pem);
  ASSERT_NE(leaf, nullptr);
  const absl::Time now = absl::Now();
  EXPECT_LE(absl::AbsDuration(ToAbslTime(X509_get0_notBefore(leaf.get())) -
                              (now - absl::Hours(1))),
            absl::Minutes(1));
  EXPECT_LE(absl::AbsDuration(ToAbslTime(X509_get0_notAfter(leaf.get())) -
                              (now + absl::Hours(3))),
            absl::Minutes(1));
}

TEST_F(PkiTest, ExpiredOptionMakesACertificateThatFailsVerification) {
  ASSERT_OK_AND_ASSIGN(Identity old,
                       ca_->Issue(UserPrincipal("old"), {.expired = true}));
  X509Ptr ca = ParseOne(ca_->certificate_pem());
  X509Ptr leaf = ParseOne(old.certificate_pem);
  ASSERT_TRUE(ca && leaf);
  EXPECT_LT(ToAbslTime(X509_get0_notAfter(leaf.get())), absl::Now());
  EXPECT_EQ(Verify(ca.get(), leaf.get()), X509_V_ERR_CERT_HAS_EXPIRED);
}

TEST_F(PkiTest, LongPrincipalHasNoCommonNameButKeepsItsUriSan) {
  const std::string uri =
      UserPrincipal(std::string(kMaxPrincipalNameSize, 'n'));
  ASSERT_OK_AND_ASSIGN(Identity identity, ca_->Issue(uri));
  X509Ptr ca = ParseOne(ca_->certificate_pem());
  X509Ptr leaf = ParseOne(identity.certificate_pem);
  ASSERT_TRUE(ca && leaf);
  EXPECT_EQ(CommonName(leaf.get()), "");
  EXPECT_THAT(SubjectAltNames(leaf.get()), ::testing::Contains("URI:" + uri));
  EXPECT_EQ(Verify(ca.get(), leaf.get()), X509_V_OK);
}

TEST_F(PkiTest, CommaInPrincipalDoesNotAddSubjectAltNames) {
  // In OpenSSL's configuration syntax this would read as a second SAN.
  const std::string uri = UserPrincipal("alice,DNS:evil.example");
  ASSERT_OK_AND_ASSIGN(Identity identity, ca_->Issue(uri));
  X509Ptr leaf = ParseOne(identity.certificate_pem);
  ASSERT_NE(leaf, nullptr);
  EXPECT_THAT(
      SubjectAltNames(leaf.get()),
      UnorderedElementsAre("URI:" + uri, "DNS:localhost", "IP:127.0.0.1"));
}

TEST_F(PkiTest, IssueRefusesAnInvalidPrincipal) {
  for (const std::string& uri :
       {std::string("residency://admin/alice"), std::string("alice"),
        UserPrincipal(""), UserPrincipal("a/b")}) {
    EXPECT_THAT(ca_->Issue(uri), StatusIs(absl::StatusCode::kInvalidArgument))
        << uri;
  }
}

TEST_F(PkiTest, IssueRefusesNonPositiveValidity) {
  for (absl::Duration validity : {absl::ZeroDuration(), -absl::Hours(1)}) {
    absl::StatusOr<Identity> identity =
        ca_->Issue(UserPrincipal("alice"), {.validity = validity});
    EXPECT_THAT(identity, StatusIs(absl::StatusCode::kInvalidArgument));
    EXPECT_THAT(std::string(identity.status().message()),
                HasSubstr("not positive"));
  }
}

TEST_F(PkiTest, IssueRefusesALeafThatOutlastsTheCa) {
  absl::StatusOr<Identity> identity =
      ca_->Issue(UserPrincipal("alice"), {.validity = absl::Hours(24 * 8)});
  EXPECT_THAT(identity, StatusIs(absl::StatusCode::kInvalidArgument));
  EXPECT_THAT(std::string(identity.status().message()),
              HasSubstr("would outlast CA"));
  EXPECT_OK(ca_->Issue(UserPrincipal("alice"),
                       {.validity = absl::Hours(24 * 7) - absl::Minutes(1)}));
}

TEST_F(PkiTest, IssueFromSeveralThreadsGivesDistinctValidCertificates) {
  constexpr int kThreads = 4;
  std::vector<absl::StatusOr<Identity>> identities(kThreads);
  std::vector<std::thread> threads;
  for (int i = 0; i < kThreads; ++i) {
    threads.emplace_back([this, i, &identities] {
      identities[i] = ca_->Issue(UserPrincipal("user" + std::to_string(i)));
    });
  }
  for (std::thread& thread : threads) thread.join();
  X509Ptr ca = ParseOne(ca_->certificate_pem());
  ASSERT_NE(ca, nullptr);
  for (int i = 0; i < kThreads; ++i) {
    ASSERT_OK(identities[i]);
    X509Ptr leaf = ParseOne(identities[i]->certificate_pem);
    ASSERT_NE(leaf, nullptr);
    EXPECT_EQ(Verify(ca.get(), leaf.get()), X509_V_OK);
    EXPECT_EQ(identities[i]->principal,
              UserPrincipal("user" + std::to_string(i)));
  }
}

TEST(CertificateAuthorityCreateTest, RefusesBadNames) {
  for (const std::string& name :
       {std::string(""), std::string(65, 'c'), std::string("a\nb"),
        std::string("caf\xc3\xa9")}) {
    EXPECT_THAT(CertificateAuthority::Create(name),
                StatusIs(absl::StatusCode::kInvalidArgument))
        << name;
  }
  EXPECT_OK(CertificateAuthority::Create(std::string(64, 'c')));
}

TEST(CertificateAuthorityCreateTest, RefusesBadValidity) {
  for (absl::Duration validity :
       {absl::ZeroDuration(), -absl::Hours(1), absl::Hours(24 * 3651)}) {
    EXPECT_THAT(CertificateAuthority::Create("ca", validity),
                StatusIs(absl::StatusCode::kInvalidArgument))
        << validity;
  }
}

TEST_F(PkiTest, MaterialCopiesEveryPart) {
  ASSERT_OK_AND_ASSIGN(Identity alice, ca_->Issue(UserPrincipal("alice")));
  TlsMaterial material = alice.Material();
  EXPECT_EQ(material.ca_certificate_pem, ca_->certificate_pem());
  EXPECT_EQ(material.certificate_pem, alice.certificate_pem);
  EXPECT_TRUE(material.private_key_pem == alice.private_key_pem);
  EXPECT_OK(ValidateTlsMaterial(material));
}

class WriteFilesTest : public PkiTest {
 protected:
  void SetUp() override {
    PkiTest::SetUp();
    ASSERT_OK_AND_ASSIGN(dir_, temp_.Make("tls_pki_test"));
  }

  static mode_t Mode(const std::string& path) {
    struct stat info;
    EXPECT_EQ(stat(path.c_str(), &info), 0) << path;
    return info.st_mode & 07777;
  }

  std::vector<std::string> Files() const {
    std::vector<std::string> names;
    for (const auto& entry : std::filesystem::directory_iterator(dir_)) {
      names.push_back(entry.path().filename().string());
    }
    std::sort(names.begin(), names.end());
    return names;
  }

  TempDir temp_;
  std::string dir_;
};

TEST_F(WriteFilesTest, WritesFilesThatLoadBack) {
  ASSERT_OK_AND_ASSIGN(Identity alice, ca_->Issue(UserPrincipal("alice")));
  ASSERT_OK(alice.WriteFiles(dir_, "alice"));
  EXPECT_THAT(Files(), ElementsAre("alice.crt", "alice.key", "ca.crt"));
  ASSERT_OK_AND_ASSIGN(TlsMaterial loaded,
                       LoadTlsMaterial(dir_ + "/ca.crt", dir_ + "/alice.crt",
                                       dir_ + "/alice.key"));
  EXPECT_EQ(loaded.ca_certificate_pem, alice.ca_certificate_pem);
  EXPECT_EQ(loaded.certificate_pem, alice.certificate_pem);
  EXPECT_TRUE(loaded.private_key_pem == alice.private_key_pem);
}

TEST_F(WriteFilesTest, KeyIsPrivateWhateverTheUmask) {
  ASSERT_OK_AND_ASSIGN(Identity alice, ca_->Issue(UserPrincipal("alice")));
  const mode_t old_umask = umask(0);
  absl::Status status = alice.WriteFiles(dir_, "alice");
  umask(old_umask);
  ASSERT_OK(status);
  EXPECT_EQ(Mode(dir_ + "/alice.key"), 0600u);
  EXPECT_EQ(Mode(dir_ + "/alice.crt"), 0644u);
  EXPECT_EQ(Mode(dir_ + "/ca.crt"), 0644u);
}

TEST_F(WriteFilesTest, OverwritingAnOpenKeyFileMakesItPrivate) {
  ASSERT_OK_AND_ASSIGN(Identity alice, ca_->Issue(UserPrincipal("alice")));
  const std::string key = dir_ + "/alice.key";
  { std::ofstream(key) << "old"; }
  ASSERT_EQ(chmod(key.c_str(), 0644), 0);
  ASSERT_OK(alice.WriteFiles(dir_, "alice"));
  EXPECT_EQ(Mode(key), 0600u);
}

TEST_F(WriteFilesTest, RefusesBadStems) {
  ASSERT_OK_AND_ASSIGN(Identity alice, ca_->Issue(UserPrincipal("alice")));
  for (const char* stem : {"", "ca", "a/b", "..", "a\nb"}) {
    EXPECT_THAT(alice.WriteFiles(dir_, stem),
                StatusIs(absl::StatusCode::kInvalidArgument))
        << stem;
  }
  EXPECT_THAT(alice.WriteFiles("", "alice"),
              StatusIs(absl::StatusCode::kInvalidArgument));
  EXPECT_THAT(Files(), ElementsAre());
}

TEST_F(WriteFilesTest, MissingDirectoryFailsNamingThePath) {
  ASSERT_OK_AND_ASSIGN(Identity alice, ca_->Issue(UserPrincipal("alice")));
  const absl::Status status = alice.WriteFiles(dir_ + "/missing", "alice");
  EXPECT_THAT(status, StatusIs(absl::StatusCode::kFailedPrecondition));
  EXPECT_THAT(std::string(status.message()),
              HasSubstr(dir_ + "/missing/ca.crt"));
}

TEST_F(WriteFilesTest, FailureOnTheKeyRemovesTheFilesAlreadyWritten) {
  ASSERT_OK_AND_ASSIGN(Identity alice, ca_->Issue(UserPrincipal("alice")));
  // A directory where the key should go makes the last rename fail.
  ASSERT_TRUE(std::filesystem::create_directory(dir_ + "/alice.key"));
  const absl::Status status = alice.WriteFiles(dir_, "alice");
  EXPECT_THAT(status, StatusIs(absl::StatusCode::kFailedPrecondition));
  EXPECT_THAT(std::string(status.message()), HasSubstr("alice.key"));
  EXPECT_THAT(Files(), ElementsAre("alice.key"));  // only the directory
}

}  // namespace
}  // namespace residency::tls
