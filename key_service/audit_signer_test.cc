#include "key_service/audit_signer.h"

#include <openssl/bio.h>
#include <openssl/evp.h>
#include <openssl/pem.h>

#include <memory>
#include <string>

#include "absl/strings/escaping.h"
#include "absl/strings/match.h"
#include "absl/strings/str_cat.h"
#include "absl/strings/string_view.h"
#include "crypto/secret_bytes.h"
#include "gtest/gtest.h"
#include "tests/status_matchers.h"

namespace residency::key_service {
namespace {

using ::residency::crypto::SecretBytes;
using ::residency::testing::StatusIs;

std::string Unhex(absl::string_view hex) { return absl::HexStringToBytes(hex); }
std::string Hex(absl::string_view bytes) {
  return absl::BytesToHexString(bytes);
}

// RFC 8032 section 7.1, TEST 1 (empty message).
constexpr absl::string_view kRfc8032Secret =
    "9d61b19deffd5a60ba844af492ec2cc44449c5697b326919703bac031cae7f60";
constexpr absl::string_view kRfc8032Public =
    "d75a980182b10ab7d54bfed3c964073a0ee172f3daa62325af021a68f707511a";
constexpr absl::string_view kRfc8032Signature =
    "e5564300c360ac729086e2cc806e828a84877f1eb8e5d974d873e065224901555fb88215"
    "90a33bacc61e39701cf9b46bd25bf5f0595bbe24655141438e7a100b";

AuditSigner Rfc8032Signer() {
  absl::StatusOr<AuditSigner> signer =
      AuditSigner::FromSeed(SecretBytes::CopyFrom(Unhex(kRfc8032Secret)));
  EXPECT_TRUE(signer.ok()) << signer.status();
  return *std::move(signer);
}

TEST(AuditSignerTest, Rfc8032Test1KeyAndSignature) {
  AuditSigner signer = Rfc8032Signer();
  EXPECT_EQ(Hex(signer.public_key()), kRfc8032Public);
  ASSERT_OK_AND_ASSIGN(std::string signature, signer.Sign(""));
  EXPECT_EQ(Hex(signature), kRfc8032Signature);
  EXPECT_OK(VerifyEd25519(Unhex(kRfc8032Public), "", Unhex(kRfc8032Signature)));
}

TEST(AuditSignerTest, PublicKeyIdIsHexSha256OfRawKey) {
  AuditSigner signer = Rfc8032Signer();
  // sha256(d75a98...511a), computed independently.
  EXPECT_EQ(signer.public_key_id(),
            "21fe31dfa154a261626bf854046fd2271b7bed4b6abe45aa58877ef47f9721b9");
  EXPECT_EQ(PublicKeyId(signer.public_key()), signer.public_key_id());
}

TEST(AuditSignerTest, VerifyRejectsAnyChange) {
  ASSERT_OK_AND_ASSIGN(AuditSigner signer, AuditSigner::Generate());
  ASSERT_OK_AND_ASSIGN(std::string signature, signer.Sign("checkpoint"));
  EXPECT_OK(VerifyEd25519(signer.public_key(), "checkpoint", signature));

  std::string flipped = signature;
  flipped[10] ^= 0x01;
  EXPECT_THAT(VerifyEd25519(signer.public_key(), "checkpoint", flipped),
              StatusIs(absl::StatusCode::kDataLoss));
  EXPECT_THAT(VerifyEd25519(signer.public_key(), "checkpoinT", signature),
              StatusIs(absl::StatusCode::kDataLoss));
  EXPECT_THAT(VerifyEd25519(Unhex(kRfc8032Public), "checkpoint", signature),
              StatusIs(absl::StatusCode::kDataLoss));
  EXPECT_THAT(
      VerifyEd25519(signer.public_key(), "checkpoint", signature.substr(0, 63)),
      StatusIs(absl::StatusCode::kDataLoss));
  EXPECT_THAT(
      VerifyEd25519(signer.public_key().substr(0, 31), "checkpoint", signature),
      StatusIs(absl::StatusCode::kInvalidArgument));
}

TEST(AuditSignerTest, SeedRoundTripGivesTheSameKey) {
  ASSERT_OK_AND_ASSIGN(AuditSigner a, AuditSigner::Generate());
  ASSERT_OK_AND_ASSIGN(AuditSigner b, AuditSigner::FromSeed(a.seed()));
  EXPECT_EQ(a.public_key(), b.public_key());
  ASSERT_OK_AND_ASSIGN(AuditSigner c, AuditSigner::Generate());
  EXPECT_NE(a.public_key(), c.public_key());
}

TEST(AuditSignerTest, SeedOfWrongSizeIsRejected) {
  EXPECT_THAT(AuditSigner::FromSeed(SecretBytes(31)),
              StatusIs(absl::StatusCode::kInvalidArgument));
  EXPECT_THAT(AuditSigner::FromSeed(SecretBytes(33)),
              StatusIs(absl::StatusCode::kInvalidArgument));
}

TEST(AuditSignerTest, PemIsRfc8410SubjectPublicKeyInfo) {
  AuditSigner signer = Rfc8032Signer();
  const std::string pem = signer.PublicKeyPem();
  // SEQUENCE { SEQUENCE { OID 1.3.101.112 }, BIT STRING key }.
  EXPECT_EQ(pem,
            "-----BEGIN PUBLIC KEY-----\n"
            "MCowBQYDK2VwAyEA11qYAYKxCrfVS/7TyWQHOg7hcvPapiMlrwIaaPcHURo=\n"
            "-----END PUBLIC KEY-----\n");
  ASSERT_OK_AND_ASSIGN(std::string raw, ParsePublicKeyPem(pem));
  EXPECT_EQ(raw, signer.public_key());
}

TEST(AuditSignerTest, ParsePemRejectsGarbageAndOtherKeyTypes) {
  EXPECT_THAT(ParsePublicKeyPem(""),
              StatusIs(absl::StatusCode::kInvalidArgument));
  EXPECT_THAT(ParsePublicKeyPem("-----BEGIN PUBLIC KEY-----\nAAAA\n"
                                "-----END PUBLIC KEY-----\n"),
              StatusIs(absl::StatusCode::kInvalidArgument));

  std::unique_ptr<EVP_PKEY, void (*)(EVP_PKEY*)> ec(EVP_EC_gen("P-256"),
                                                    EVP_PKEY_free);
  ASSERT_NE(ec, nullptr);
  std::unique_ptr<BIO, int (*)(BIO*)> bio(BIO_new(BIO_s_mem()), BIO_free);
  ASSERT_EQ(PEM_write_bio_PUBKEY(bio.get(), ec.get()), 1);
  char* data = nullptr;
  const long size = BIO_get_mem_data(bio.get(), &data);
  const absl::StatusOr<std::string> parsed =
      ParsePublicKeyPem(absl::string_view(data, static_cast<size_t>(size)));
  EXPECT_THAT(parsed, StatusIs(absl::StatusCode::kInvalidArgument));
  EXPECT_TRUE(absl::StrContains(parsed.status().message(), "not ED25519"))
      << parsed.status();
}

}  // namespace
}  // namespace residency::key_service
