#include "tls/credentials.h"

#include <openssl/evp.h>
#include <openssl/pem.h>
#include <openssl/x509v3.h>
#include <stdlib.h>
#include <sys/stat.h>
#include <unistd.h>

#include <fstream>
#include <memory>
#include <string>
#include <utility>

#include "absl/status/status.h"
#include "absl/strings/string_view.h"
#include "absl/time/time.h"
#include "gmock/gmock.h"
#include "gtest/gtest.h"
#include "tests/status_matchers.h"
#include "tests/temp_dir.h"
#include "tls/internal/test_certificate.h"
#include "tls/internal/x509.h"
#include "tls/pki.h"
#include "tls/principal.h"

namespace residency::tls {
namespace {

using ::residency::testing::StatusIs;
using ::residency::testing::TempDir;
using ::testing::AllOf;
using ::testing::HasSubstr;

// Shared by every test: making a CA and keys is the slow part.
struct Pki {
  CertificateAuthority ca;
  CertificateAuthority other_ca;
  Identity alice;
  Identity bob;
  Identity expired;
  Identity stranger;  // from other_ca
};

const Pki& SharedPki() {
  static const Pki* pki = [] {
    auto ca = CertificateAuthority::Create("test-ca");
    auto other_ca = CertificateAuthority::Create("other-ca");
    if (!ca.ok() || !other_ca.ok()) abort();
    auto alice = ca->Issue(UserPrincipal("alice"));
    auto bob = ca->Issue(UserPrincipal("bob"));
    auto expired = ca->Issue(UserPrincipal("old"), {.expired = true});
    auto stranger = other_ca->Issue(UserPrincipal("alice"));
    if (!alice.ok() || !bob.ok() || !expired.ok() || !stranger.ok()) abort();
    return new Pki{*std::move(ca),  *std::move(other_ca), *std::move(alice),
                   *std::move(bob), *std::move(expired),  *std::move(stranger)};
  }();
  return *pki;
}

class LoadTlsMaterialTest : public ::testing::Test {
 protected:
  void SetUp() override {
    ASSERT_OK_AND_ASSIGN(dir_, temp_.Make("tls_credentials_test"));
    ASSERT_OK(SharedPki().alice.WriteFiles(dir_, "alice"));
    ca_ = dir_ + "/ca.crt";
    cert_ = dir_ + "/alice.crt";
    key_ = dir_ + "/alice.key";
  }

  // Writes `contents` to `name` in the test directory with `mode`.
  std::string Write(const std::string& name, absl::string_view contents,
                    mode_t mode = 0600) {
    const std::string path = dir_ + "/" + name;
    std::ofstream(path, std::ios::binary | std::ios::trunc)
        << std::string(contents);
    EXPECT_EQ(chmod(path.c_str(), mode), 0);
    return path;
  }

  TempDir temp_;
  std::string dir_, ca_, cert_, key_;
};

TEST_F(LoadTlsMaterialTest, LoadsWhatWriteFilesWrote) {
  ASSERT_OK_AND_ASSIGN(TlsMaterial material, LoadTlsMaterial(ca_, cert_, key_));
  EXPECT_EQ(material.ca_certificate_pem, SharedPki().ca.certificate_pem());
  EXPECT_EQ(material.certificate_pem, SharedPki().alice.certificate_pem);
  EXPECT_TRUE(material.private_key_pem == SharedPki().alice.private_key_pem);
}

TEST_F(LoadTlsMaterialTest, MissingFileIsNotFoundNamingTheFile) {
  const std::string missing = dir_ + "/missing.pem";
  for (const auto& [result, what] : {
           std::pair{LoadTlsMaterial(missing, cert_, key_), "CA certificate"},
           std::pair{LoadTlsMaterial(ca_, missing, key_), "certificate"},
           std::pair{LoadTlsMaterial(ca_, cert_, missing), "private key"},
       }) {
    EXPECT_THAT(result, StatusIs(absl::StatusCode::kNotFound));
    EXPECT_THAT(std::string(result.status().message()),
                AllOf(HasSubstr(what), HasSubstr("'" + missing + "'"),
                      HasSubstr("does not exist")));
  }
}

TEST_F(LoadTlsMaterialTest, UnopenableFileIsFailedPrecondition) {
  // A path through a regular file fails with ENOTDIR, also for root.
  const std::string path = cert_ + "/child";
  absl::StatusOr<TlsMaterial> material = LoadTlsMaterial(ca_, path, key_);
  EXPECT_THAT(material, StatusIs(absl::StatusCode::kFailedPrecondition));
  EXPECT_THAT(std::string(material.status().message()),
              AllOf(HasSubstr("cannot open certificate file"), HasSubstr(path),
                    HasSubstr("Not a directory")));
}

TEST_F(LoadTlsMaterialTest, DirectoryIsNotARegularFile) {
  absl::StatusOr<TlsMaterial> material = LoadTlsMaterial(dir_, cert_, key_);
  EXPECT_THAT(material, StatusIs(absl::StatusCode::kFailedPrecondition));
  EXPECT_THAT(std::string(material.status().message()),
              HasSubstr("not a regular file"));
}

TEST_F(LoadTlsMaterialTest, FifoIsRefusedWithoutWaitingForAWriter) {
  const std::string fifo = dir_ + "/fifo.key";
  ASSERT_EQ(mkfifo(fifo.c_str(), 0600), 0);
  absl::StatusOr<TlsMaterial> material = LoadTlsMaterial(ca_, cert_, fifo);
  EXPECT_THAT(material, StatusIs(absl::StatusCode::kFailedPrecondition));
  EXPECT_THAT(std::string(material.status().message()),
              HasSubstr("not a regular file"));
}

TEST_F(LoadTlsMaterialTest, KeyReadableByOthersIsRefusedWithTheFix) {
  for (const mode_t mode : {0644, 0640, 0604, 0700 | 0004}) {
    ASSERT_EQ(chmod(key_.c_str(), mode), 0);
    absl::StatusOr<TlsMaterial> material = LoadTlsMaterial(ca_, cert_, key_);
    EXPECT_THAT(material, StatusIs(absl::StatusCode::kFailedPrecondition));
    char octal[8];
    snprintf(octal, sizeof(octal), "%04o", static_cast<unsigned>(mode));
    EXPECT_THAT(std::string(material.status().message()),
                AllOf(HasSubstr(key_), HasSubstr("readable by group or others"),
                      HasSubstr(std::string("(mode ") + octal + ")"),
                      HasSubstr("chmod 600 it")));
  }
}

TEST_F(LoadTlsMaterialTest, KeyWritableByOthersIsRefused) {
  for (const mode_t mode : {0620, 0602, 0610}) {
    ASSERT_EQ(chmod(key_.c_str(), mode), 0);
    absl::StatusOr<TlsMaterial> material = LoadTlsMaterial(ca_, cert_, key_);
    EXPECT_THAT(material, StatusIs(absl::StatusCode::kFailedPrecondition));
    EXPECT_THAT(std::string(material.status().message()),
                HasSubstr("writable or executable by group or others"));
  }
}

TEST_F(LoadTlsMaterialTest, OwnerOnlyKeyModesAreAccepted) {
  for (const mode_t mode : {0600, 0400}) {
    ASSERT_EQ(chmod(key_.c_str(), mode), 0);
    EXPECT_OK(LoadTlsMaterial(ca_, cert_, key_));
  }
}

TEST_F(LoadTlsMaterialTest, WorldReadableCertificatesAreFine) {
  ASSERT_EQ(chmod(ca_.c_str(), 0644), 0);
  ASSERT_EQ(chmod(cert_.c_str(), 0644), 0);
  EXPECT_OK(LoadTlsMaterial(ca_, cert_, key_));
}

TEST_F(LoadTlsMaterialTest, GarbageIsInvalidArgumentNamingTheFile) {
  const std::string garbage = Write("garbage.pem", "this is not PEM\n");
  for (const auto& [result, what] : {
           std::pair{LoadTlsMaterial(garbage, cert_, key_),
                     "CA certificate file '" + garbage + "'"},
           std::pair{LoadTlsMaterial(ca_, garbage, key_),
                     "certificate file '" + garbage + "'"},
           std::pair{LoadTlsMaterial(ca_, cert_, garbage),
                     "private key file '" + garbage + "'"},
       }) {
    EXPECT_THAT(result, StatusIs(absl::StatusCode::kInvalidArgument));
    EXPECT_THAT(std::string(result.status().message()),
                AllOf(HasSubstr(what), HasSubstr("holds no PEM")));
  }
}

TEST_F(LoadTlsMaterialTest, EmptyFileIsInvalidArgument) {
  const std::string empty = Write("empty.pem", "");
  EXPECT_THAT(LoadTlsMaterial(empty, cert_, key_),
              StatusIs(absl::StatusCode::kInvalidArgument));
  EXPECT_THAT(LoadTlsMaterial(ca_, cert_, empty),
              StatusIs(absl::StatusCode::kInvalidArgument));
}

TEST_F(LoadTlsMaterialTest, CorruptCertificateDoesNotDecode) {
  const std::string corrupt =
      Write("corrupt.crt",
            "-----BEGIN CERTIFICATE-----\nAAAAAAAAAAAAAAAA\n-----END "
            "CERTIFICATE-----\n");
  absl::StatusOr<TlsMaterial> material = LoadTlsMaterial(ca_, corrupt, key_);
  EXPECT_THAT(material, StatusIs(absl::StatusCode::kInvalidArgument));
  EXPECT_THAT(std::string(material.status().message()),
              AllOf(HasSubstr(corrupt), HasSubstr("does not decode")));
}

TEST_F(LoadTlsMaterialTest, CertificateWhereTheKeyShouldBeIsRefused) {
  // Owner-only, so that the key file's mode check is not what refuses it.
  ASSERT_EQ(chmod(cert_.c_str(), 0600), 0);
  absl::StatusOr<TlsMaterial> material = LoadTlsMaterial(ca_, cert_, cert_);
  EXPECT_THAT(material, StatusIs(absl::StatusCode::kInvalidArgument));
  EXPECT_THAT(std::string(material.status().message()),
              HasSubstr("no PEM private key"));
}

TEST_F(LoadTlsMaterialTest, KeyWhereTheCertificateShouldBeIsRefused) {
  absl::StatusOr<TlsMaterial> material = LoadTlsMaterial(ca_, key_, key_);
  EXPECT_THAT(material, StatusIs(absl::StatusCode::kInvalidArgument));
  EXPECT_THAT(std::string(material.status().message()),
              AllOf(HasSubstr("certificate file '" + key_ + "'"),
                    HasSubstr("contains a private key")));
}

TEST_F(LoadTlsMaterialTest, CertificateFileWithKeyAppendedIsRefused) {
  const std::string both = Write(
      "both.pem", SharedPki().alice.certificate_pem +
                      std::string(SharedPki().alice.private_key_pem.view()));
  EXPECT_THAT(LoadTlsMaterial(ca_, both, key_),
              StatusIs(absl::StatusCode::kInvalidArgument));
}

TEST_F(LoadTlsMaterialTest, EncryptedKeyIsRefused) {
  ASSERT_OK_AND_ASSIGN(
      internal::PkeyPtr key,
      internal::ParsePrivateKey(SharedPki().alice.private_key_pem.view(), "k"));
  internal::BioPtr bio(BIO_new(BIO_s_mem()));
  static char passphrase[] = "passphrase";
  ASSERT_EQ(
      PEM_write_bio_PKCS8PrivateKey(bio.get(), key.get(), EVP_aes_256_cbc(),
                                    nullptr, 0, nullptr, passphrase),
      1);
  char* data = nullptr;
  const long size = BIO_get_mem_data(bio.get(), &data);
  const std::string encrypted =
      Write("encrypted.key", absl::string_view(data, size));
  absl::StatusOr<TlsMaterial> material = LoadTlsMaterial(ca_, cert_, encrypted);
  EXPECT_THAT(material, StatusIs(absl::StatusCode::kInvalidArgument));
  EXPECT_THAT(std::string(material.status().message()),
              AllOf(HasSubstr(encrypted), HasSubstr("does not decode")));
}

TEST_F(LoadTlsMaterialTest, KeyOfAnotherCertificateIsRefused) {
  const std::string bob_key =
      Write("bob.key", SharedPki().bob.private_key_pem.view());
  absl::StatusOr<TlsMaterial> material = LoadTlsMaterial(ca_, cert_, bob_key);
  EXPECT_THAT(material, StatusIs(absl::StatusCode::kInvalidArgument));
  EXPECT_THAT(std::string(material.status().message()),
              AllOf(HasSubstr(bob_key), HasSubstr(cert_),
                    HasSubstr("does not belong to the certificate")));
}

TEST_F(LoadTlsMaterialTest, CertificateFromAnotherCaIsRefused) {
  const std::string other_ca =
      Write("other_ca.crt", SharedPki().other_ca.certificate_pem(), 0644);
  absl::StatusOr<TlsMaterial> material = LoadTlsMaterial(other_ca, cert_, key_);
  EXPECT_THAT(material, StatusIs(absl::StatusCode::kInvalidArgument));
  EXPECT_THAT(std::string(material.status().message()),
              AllOf(HasSubstr("does not verify against"),
                    HasSubstr("unable to get local issuer certificate")));
}

TEST_F(LoadTlsMaterialTest, ExpiredCertificateIsRefused) {
  ASSERT_OK(SharedPki().expired.WriteFiles(dir_, "old"));
  absl::StatusOr<TlsMaterial> material =
      LoadTlsMaterial(ca_, dir_ + "/old.crt", dir_ + "/old.key");
  EXPECT_THAT(material, StatusIs(absl::StatusCode::kInvalidArgument));
  EXPECT_THAT(std::string(material.status().message()),
              HasSubstr("certificate has expired"));
}

TEST_F(LoadTlsMaterialTest, FileOverTheSizeLimitIsRefused) {
  const std::string big =
      Write("big.crt", std::string(kMaxPemFileSize + 1, '\n'), 0644);
  absl::StatusOr<TlsMaterial> material = LoadTlsMaterial(ca_, big, key_);
  EXPECT_THAT(material, StatusIs(absl::StatusCode::kInvalidArgument));
  EXPECT_THAT(std::string(material.status().message()),
              HasSubstr("is 1048577 bytes; the limit is 1048576"));
  // At the limit the size check passes and the content check refuses.
  const std::string at_limit =
      Write("limit.crt", std::string(kMaxPemFileSize, '\n'), 0644);
  material = LoadTlsMaterial(ca_, at_limit, key_);
  EXPECT_THAT(material, StatusIs(absl::StatusCode::kInvalidArgument));
  EXPECT_THAT(std::string(material.status().message()),
              HasSubstr("holds no PEM"));
}

TEST(ValidateTlsMaterialTest, IssuedIdentityIsValid) {
  EXPECT_OK(ValidateTlsMaterial(SharedPki().alice.Material()));
}

TEST(ValidateTlsMaterialTest, EmptyCaIsRefused) {
  // gRPC would fall back to the system's public roots.
  TlsMaterial material = SharedPki().alice.Material();
  material.ca_certificate_pem.clear();
  absl::Status status = ValidateTlsMaterial(material);
  EXPECT_THAT(status, StatusIs(absl::StatusCode::kInvalidArgument));
  EXPECT_THAT(std::string(status.message()),
              HasSubstr("CA certificate holds no PEM"));
}

TEST(ValidateTlsMaterialTest, CertificateWithoutPrincipalIsRefused) {
  // Self-signed, so it is its own CA and chain verification passes; only
  // the missing URI SAN is wrong.
  ASSERT_OK_AND_ASSIGN(
      internal::SelfSignedCertificate certificate,
      internal::MakeSelfSignedCertificate(
          "residency://user/alice",
          {{GEN_DNS, "localhost"}, {GEN_DNS, "residency://user/alice"}}));
  TlsMaterial material{certificate.certificate_pem, certificate.certificate_pem,
                       certificate.private_key_pem.Clone()};
  absl::Status status = ValidateTlsMaterial(material);
  EXPECT_THAT(status, StatusIs(absl::StatusCode::kInvalidArgument));
  EXPECT_THAT(std::string(status.message()),
              AllOf(HasSubstr("no residency:// URI SAN"),
                    HasSubstr("peers would refuse it")));
}

TEST(ValidateTlsMaterialTest, SelfSignedCertificateWithPrincipalIsValid) {
  // The counterpart of the test above: the same shape with a URI SAN passes,
  // so the refusal there is the principal check.
  ASSERT_OK_AND_ASSIGN(internal::SelfSignedCertificate certificate,
                       internal::MakeSelfSignedCertificate(
                           "", {{GEN_URI, "residency://user/alice"}}));
  EXPECT_OK(ValidateTlsMaterial({certificate.certificate_pem,
                                 certificate.certificate_pem,
                                 certificate.private_key_pem.Clone()}));
}

TEST(MakeCredentialsTest, AcceptValidMaterial) {
  const TlsMaterial material = SharedPki().alice.Material();
  ASSERT_OK_AND_ASSIGN(std::shared_ptr<grpc::ServerCredentials> server,
                       MakeServerCredentials(material));
  EXPECT_NE(server, nullptr);
  ASSERT_OK_AND_ASSIGN(std::shared_ptr<grpc::ChannelCredentials> channel,
                       MakeChannelCredentials(material));
  EXPECT_NE(channel, nullptr);
  ASSERT_OK_AND_ASSIGN(std::shared_ptr<grpc::Channel> c,
                       MakeChannel("127.0.0.1:1", material));
  EXPECT_NE(c, nullptr);
}

TEST(MakeCredentialsTest, RefuseInvalidMaterial) {
  TlsMaterial mismatched = SharedPki().alice.Material();
  mismatched.private_key_pem = SharedPki().bob.private_key_pem.Clone();
  TlsMaterial no_ca = SharedPki().alice.Material();
  no_ca.ca_certificate_pem.clear();
  for (const TlsMaterial* material : {&mismatched, &no_ca}) {
    EXPECT_THAT(MakeServerCredentials(*material),
                StatusIs(absl::StatusCode::kInvalidArgument));
    EXPECT_THAT(MakeChannelCredentials(*material),
                StatusIs(absl::StatusCode::kInvalidArgument));
    EXPECT_THAT(MakeChannel("127.0.0.1:1", *material),
                StatusIs(absl::StatusCode::kInvalidArgument));
  }
}

TEST(MakeChannelTest, RefusesBadOptions) {
  const TlsMaterial material = SharedPki().alice.Material();
  EXPECT_THAT(MakeChannel("", material),
              StatusIs(absl::StatusCode::kInvalidArgument));
  for (int limit : {0, -1}) {
    EXPECT_THAT(MakeChannel("127.0.0.1:1", material,
                            {.max_receive_message_bytes = limit}),
                StatusIs(absl::StatusCode::kInvalidArgument));
  }
  const absl::Duration ms = absl::Milliseconds(1);
  for (auto [initial, max] :
       {std::pair{0 * ms, 100 * ms}, std::pair{-100 * ms, 100 * ms},
        std::pair{200 * ms, 100 * ms}, std::pair{100 * ms, absl::Hours(25)}}) {
    ChannelOptions options;
    options.initial_reconnect_backoff = initial;
    options.max_reconnect_backoff = max;
    EXPECT_THAT(MakeChannel("127.0.0.1:1", material, options),
                StatusIs(absl::StatusCode::kInvalidArgument,
                         HasSubstr("reconnect backoff")))
        << initial << " to " << max;
  }
}

// The integer value of `key` among `arguments`, or -1.
int IntArgument(const grpc::ChannelArguments& arguments,
                absl::string_view key) {
  const grpc_channel_args c = arguments.c_channel_args();
  for (size_t i = 0; i < c.num_args; ++i) {
    if (key == c.args[i].key && c.args[i].type == GRPC_ARG_INTEGER) {
      return c.args[i].value.integer;
    }
  }
  return -1;
}

TEST(MakeChannelTest, ArgumentsCarryTheLimitAndTheReconnectBackoff) {
  ASSERT_OK_AND_ASSIGN(grpc::ChannelArguments defaults,
                       MakeChannelArguments({}));
  EXPECT_EQ(IntArgument(defaults, GRPC_ARG_MAX_RECEIVE_MESSAGE_LENGTH),
            4 << 20);
  EXPECT_EQ(IntArgument(defaults, GRPC_ARG_INITIAL_RECONNECT_BACKOFF_MS), 100);
  EXPECT_EQ(IntArgument(defaults, GRPC_ARG_MAX_RECONNECT_BACKOFF_MS), 2000);

  ChannelOptions options;
  options.max_receive_message_bytes = 1234;
  options.initial_reconnect_backoff = absl::Milliseconds(250);
  options.max_reconnect_backoff = absl::Seconds(30);
  ASSERT_OK_AND_ASSIGN(grpc::ChannelArguments set,
                       MakeChannelArguments(options));
  EXPECT_EQ(IntArgument(set, GRPC_ARG_MAX_RECEIVE_MESSAGE_LENGTH), 1234);
  EXPECT_EQ(IntArgument(set, GRPC_ARG_INITIAL_RECONNECT_BACKOFF_MS), 250);
  EXPECT_EQ(IntArgument(set, GRPC_ARG_MAX_RECONNECT_BACKOFF_MS), 30000);
}

}  // namespace
}  // namespace residency::tls
