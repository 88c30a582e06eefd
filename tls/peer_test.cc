#include "tls/peer.h"

#include <grpc/grpc_security_constants.h>
#include <grpcpp/security/auth_context.h>
#include <openssl/x509v3.h>

#include <map>
#include <string>
#include <vector>

#include "absl/status/status.h"
#include "gmock/gmock.h"
#include "gtest/gtest.h"
#include "tests/status_matchers.h"
#include "tls/internal/test_certificate.h"
#include "tls/pki.h"
#include "tls/principal.h"

namespace residency::tls {
namespace {

using internal::MakeSelfSignedCertificate;
using internal::SelfSignedCertificate;
using internal::SubjectAltName;
using ::residency::testing::StatusIs;
using ::testing::HasSubstr;

// The PEM of a self-signed certificate with these SANs (and CN).
std::string CertificateWith(const std::vector<SubjectAltName>& names,
                            const std::string& common_name = "") {
  absl::StatusOr<SelfSignedCertificate> certificate =
      MakeSelfSignedCertificate(common_name, names);
  EXPECT_TRUE(certificate.ok()) << certificate.status();
  return certificate.ok() ? certificate->certificate_pem : "";
}

std::string IssuedCertificate(const std::string& principal) {
  absl::StatusOr<CertificateAuthority> ca = CertificateAuthority::Create("ca");
  EXPECT_TRUE(ca.ok()) << ca.status();
  if (!ca.ok()) return "";
  absl::StatusOr<Identity> identity = ca->Issue(principal);
  EXPECT_TRUE(identity.ok()) << identity.status();
  return identity.ok() ? identity->certificate_pem : "";
}

TEST(CertificatePrincipalTest, ReadsTheUriSanOfAnIssuedCertificate) {
  ASSERT_OK_AND_ASSIGN(
      Principal principal,
      CertificatePrincipal(IssuedCertificate(OperatorPrincipal("cn-telecom"))));
  EXPECT_EQ(principal.kind, Principal::Kind::kOperator);
  EXPECT_EQ(principal.name, "cn-telecom");
  EXPECT_EQ(principal.uri, "residency://operator/cn-telecom");
}

TEST(CertificatePrincipalTest, IgnoresUrisOfOtherSchemes) {
  ASSERT_OK_AND_ASSIGN(Principal principal,
                       CertificatePrincipal(CertificateWith({
                           {GEN_URI, "spiffe://example.org/alice"},
                           {GEN_URI, "residency://user/alice"},
                           {GEN_URI, "https://residency.example/user/admin"},
                       })));
  EXPECT_EQ(principal.uri, "residency://user/alice");
}

struct Refused {
  std::string label;
  std::vector<SubjectAltName> names;
  std::string common_name;
  std::string reason;
};

class CertificatePrincipalRefusesTest
    : public ::testing::TestWithParam<Refused> {};

TEST_P(CertificatePrincipalRefusesTest, IsInvalidArgumentSayingWhy) {
  absl::StatusOr<Principal> principal = CertificatePrincipal(
      CertificateWith(GetParam().names, GetParam().common_name));
  EXPECT_THAT(principal, StatusIs(absl::StatusCode::kInvalidArgument));
  EXPECT_THAT(std::string(principal.status().message()),
              HasSubstr(GetParam().reason));
}

INSTANTIATE_TEST_SUITE_P(
    Certificates, CertificatePrincipalRefusesTest,
    ::testing::Values(
        Refused{"NoSubjectAltName", {}, "", "no subjectAltName extension"},
        Refused{"PrincipalOnlyInCommonName",
                {{GEN_DNS, "localhost"}},
                "residency://user/alice",
                "no residency:// URI SAN"},
        Refused{"PrincipalAsDnsName",
                {{GEN_DNS, "residency://user/alice"}},
                "",
                "no residency:// URI SAN"},
        Refused{"PrincipalAsEmail",
                {{GEN_EMAIL, "residency://user/alice"}},
                "",
                "no residency:// URI SAN"},
        Refused{"OnlyOtherSchemes",
                {{GEN_URI, "spiffe://example.org/alice"}},
                "",
                "no residency:// URI SAN"},
        Refused{"TwoPrincipals",
                {{GEN_URI, "residency://user/alice"},
                 {GEN_URI, "residency://user/bob"}},
                "",
                "has 2 residency:// URI SANs"},
        Refused{"SamePrincipalTwice",
                {{GEN_URI, "residency://user/alice"},
                 {GEN_URI, "residency://user/alice"}},
                "",
                "has 2 residency:// URI SANs"},
        Refused{"SecondPrincipalInAnotherCase",
                {{GEN_URI, "residency://user/alice"},
                 {GEN_URI, "RESIDENCY://operator/admin"}},
                "",
                "has 2 residency:// URI SANs"},
        Refused{"SchemeInAnotherCase",
                {{GEN_URI, "Residency://user/alice"}},
                "",
                "does not start with 'residency://'"},
        Refused{"UnknownKind",
                {{GEN_URI, "residency://admin/alice"}},
                "",
                "kind 'admin'"},
        Refused{"EmbeddedNul",
                {{GEN_URI, std::string("residency://user/alice\0.bob", 27)}},
                "",
                "byte 0x00"}),
    [](const ::testing::TestParamInfo<Refused>& info) {
      return info.param.label;
    });

TEST(CertificatePrincipalTest, GarbageIsInvalidArgument) {
  EXPECT_THAT(CertificatePrincipal("not a certificate"),
              StatusIs(absl::StatusCode::kInvalidArgument));
}

// An auth context with chosen properties, for the refusals a real gRPC
// handshake cannot be made to produce.
class FakeAuthContext : public grpc::AuthContext {
 public:
  bool authenticated = true;
  std::multimap<std::string, std::string> properties;

  bool IsPeerAuthenticated() const override { return authenticated; }
  std::vector<grpc::string_ref> GetPeerIdentity() const override {
    return FindPropertyValues(GetPeerIdentityPropertyName());
  }
  std::string GetPeerIdentityPropertyName() const override {
    return GRPC_X509_SAN_PROPERTY_NAME;
  }
  std::vector<grpc::string_ref> FindPropertyValues(
      const std::string& name) const override {
    std::vector<grpc::string_ref> values;
    auto [first, last] = properties.equal_range(name);
    for (auto it = first; it != last; ++it) {
      values.emplace_back(it->second.data(), it->second.size());
    }
    return values;
  }
  grpc::AuthPropertyIterator begin() const override { return EndIterator(); }
  grpc::AuthPropertyIterator end() const override { return EndIterator(); }
  void AddProperty(const std::string& key,
                   const grpc::string_ref& value) override {
    properties.emplace(key, std::string(value.data(), value.size()));
  }
  bool SetPeerIdentityPropertyName(const std::string&) override {
    return false;
  }

 private:
  struct EndIterator : grpc::AuthPropertyIterator {};
};

class PeerPrincipalTest : public ::testing::Test {
 protected:
  void SetUp() override {
    alice_pem_ = IssuedCertificate(UserPrincipal("alice"));
    context_.AddProperty(GRPC_TRANSPORT_SECURITY_TYPE_PROPERTY_NAME,
                         GRPC_SSL_TRANSPORT_SECURITY_TYPE);
  }

  std::string alice_pem_;
  FakeAuthContext context_;
};

TEST_F(PeerPrincipalTest, ReadsThePeerCertificate) {
  context_.AddProperty(GRPC_X509_PEM_CERT_PROPERTY_NAME, alice_pem_);
  ASSERT_OK_AND_ASSIGN(Principal principal, PeerPrincipal(context_));
  EXPECT_EQ(principal.uri, "residency://user/alice");
}

TEST_F(PeerPrincipalTest, IgnoresEveryOtherIdentityProperty) {
  context_.AddProperty(GRPC_X509_PEM_CERT_PROPERTY_NAME, alice_pem_);
  for (const char* name :
       {GRPC_X509_SAN_PROPERTY_NAME, GRPC_X509_CN_PROPERTY_NAME,
        GRPC_PEER_URI_PROPERTY_NAME, GRPC_PEER_SPIFFE_ID_PROPERTY_NAME,
        "x-residency-principal"}) {
    context_.AddProperty(name, "residency://operator/admin");
  }
  ASSERT_OK_AND_ASSIGN(Principal principal, PeerPrincipal(context_));
  EXPECT_EQ(principal.uri, "residency://user/alice");
}

TEST_F(PeerPrincipalTest, NoTransportSecurityIsUnauthenticated) {
  FakeAuthContext bare;
  bare.AddProperty(GRPC_X509_PEM_CERT_PROPERTY_NAME, alice_pem_);
  absl::StatusOr<Principal> principal = PeerPrincipal(bare);
  EXPECT_THAT(principal, StatusIs(absl::StatusCode::kUnauthenticated));
  EXPECT_THAT(std::string(principal.status().message()),
              HasSubstr("does not use TLS"));
}

TEST_F(PeerPrincipalTest, OtherTransportSecurityTypeIsUnauthenticated) {
  for (const char* type :
       {"insecure", GRPC_TLS_TRANSPORT_SECURITY_TYPE, "alts"}) {
    FakeAuthContext other;
    other.AddProperty(GRPC_TRANSPORT_SECURITY_TYPE_PROPERTY_NAME, type);
    other.AddProperty(GRPC_X509_PEM_CERT_PROPERTY_NAME, alice_pem_);
    EXPECT_THAT(PeerPrincipal(other),
                StatusIs(absl::StatusCode::kUnauthenticated))
        << type;
  }
}

TEST_F(PeerPrincipalTest, NoCertificateIsUnauthenticated) {
  absl::StatusOr<Principal> principal = PeerPrincipal(context_);
  EXPECT_THAT(principal, StatusIs(absl::StatusCode::kUnauthenticated));
  EXPECT_THAT(std::string(principal.status().message()),
              HasSubstr("presented no certificate"));
}

TEST_F(PeerPrincipalTest, TwoCertificatesAreUnauthenticated) {
  context_.AddProperty(GRPC_X509_PEM_CERT_PROPERTY_NAME, alice_pem_);
  context_.AddProperty(GRPC_X509_PEM_CERT_PROPERTY_NAME,
                       IssuedCertificate(UserPrincipal("bob")));
  absl::StatusOr<Principal> principal = PeerPrincipal(context_);
  EXPECT_THAT(principal, StatusIs(absl::StatusCode::kUnauthenticated));
  EXPECT_THAT(std::string(principal.status().message()),
              HasSubstr("2 peer certificates"));
}

TEST_F(PeerPrincipalTest, PeerNotAuthenticatedByTheTransportIsRefused) {
  context_.AddProperty(GRPC_X509_PEM_CERT_PROPERTY_NAME, alice_pem_);
  context_.authenticated = false;
  absl::StatusOr<Principal> principal = PeerPrincipal(context_);
  EXPECT_THAT(principal, StatusIs(absl::StatusCode::kUnauthenticated));
  EXPECT_THAT(std::string(principal.status().message()),
              HasSubstr("did not accept its certificate"));
}

TEST_F(PeerPrincipalTest, CertificateWithoutPrincipalIsUnauthenticated) {
  context_.AddProperty(GRPC_X509_PEM_CERT_PROPERTY_NAME,
                       CertificateWith({{GEN_DNS, "residency://user/alice"}},
                                       "residency://user/alice"));
  absl::StatusOr<Principal> principal = PeerPrincipal(context_);
  EXPECT_THAT(principal, StatusIs(absl::StatusCode::kUnauthenticated));
  EXPECT_THAT(std::string(principal.status().message()),
              HasSubstr("no residency:// URI SAN"));
}

TEST_F(PeerPrincipalTest, UndecodableCertificateIsUnauthenticated) {
  context_.AddProperty(GRPC_X509_PEM_CERT_PROPERTY_NAME, "garbage");
  EXPECT_THAT(PeerPrincipal(context_),
              StatusIs(absl::StatusCode::kUnauthenticated));
}

}  // namespace
}  // namespace residency::tls
