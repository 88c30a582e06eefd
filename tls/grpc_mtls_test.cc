// Real gRPC over mTLS on 127.0.0.1: which clients the server lets in, and
// which principal PeerPrincipal reads on each side.

#include <grpcpp/client_context.h>
#include <grpcpp/create_channel.h>
#include <grpcpp/security/credentials.h>
#include <grpcpp/security/server_credentials.h>
#include <grpcpp/server.h>
#include <grpcpp/server_builder.h>
#include <grpcpp/server_context.h>
#include <netinet/in.h>
#include <sys/socket.h>
#include <unistd.h>

#include <atomic>
#include <cerrno>
#include <chrono>
#include <cstring>
#include <memory>
#include <string>

#include "absl/status/status.h"
#include "absl/status/statusor.h"
#include "absl/strings/str_cat.h"
#include "absl/time/clock.h"
#include "absl/time/time.h"
#include "gmock/gmock.h"
#include "gtest/gtest.h"
#include "rpc/status.h"
#include "tests/status_matchers.h"
#include "tls/credentials.h"
#include "tls/peer.h"
#include "tls/pki.h"
#include "tls/principal.h"
#include "tls/testdata/echo.grpc.pb.h"

namespace residency::tls {
namespace {

using ::residency::testing::StatusIs;
using ::testing::HasSubstr;
namespace echo = ::residency::tls::testing;

// Answers with the caller's principal as PeerPrincipal reads it.
class EchoService final : public echo::Echo::Service {
 public:
  grpc::Status WhoAmI(grpc::ServerContext* context, const echo::Empty*,
                      echo::Name* response) override {
    ++calls_;
    absl::StatusOr<Principal> caller = PeerPrincipal(*context);
    if (!caller.ok()) return rpc::ToGrpcStatus(caller.status());
    response->set_uri(caller->uri);
    return grpc::Status::OK;
  }

  // Calls that reached the handler (after a successful handshake).
  int calls() const { return calls_.load(); }

 private:
  std::atomic<int> calls_{0};
};

struct Server {
  std::unique_ptr<grpc::Server> server;
  std::string target;
};

Server StartServer(std::shared_ptr<grpc::ServerCredentials> credentials,
                   grpc::Service* service) {
  int port = 0;
  grpc::ServerBuilder builder;
  builder.AddListeningPort("127.0.0.1:0", std::move(credentials), &port);
  builder.RegisterService(service);
  Server result{builder.BuildAndStart(), ""};
  EXPECT_NE(result.server, nullptr);
  EXPECT_GT(port, 0);
  result.target = "127.0.0.1:" + std::to_string(port);
  return result;
}

// Calls WhoAmI; on success returns the principal the server saw and, in
// `server_auth`, the client's view of the server.
absl::StatusOr<std::string> WhoAmI(
    const std::shared_ptr<grpc::Channel>& channel,
    std::shared_ptr<const grpc::AuthContext>* server_auth = nullptr) {
  auto stub = echo::Echo::NewStub(channel);
  grpc::ClientContext context;
  context.set_deadline(std::chrono::system_clock::now() +
                       std::chrono::seconds(10));
  // Metadata claiming another identity; the server must not read it.
  context.AddMetadata("x-residency-principal", "residency://operator/admin");
  echo::Name response;
  grpc::Status status = stub->WhoAmI(&context, echo::Empty(), &response);
  if (!status.ok()) return rpc::FromGrpcStatus(status);
  if (server_auth != nullptr) *server_auth = context.auth_context();
  return response.uri();
}

std::shared_ptr<grpc::Channel> RawChannel(
    const std::string& target, const grpc::SslCredentialsOptions& options) {
  return grpc::CreateChannel(target, grpc::SslCredentials(options));
}

class GrpcMtlsTest : public ::testing::Test {
 protected:
  static void SetUpTestSuite() {
    auto ca = CertificateAuthority::Create("test-ca");
    auto other_ca = CertificateAuthority::Create("other-ca");
    ASSERT_TRUE(ca.ok() && other_ca.ok());
    ca_ = new CertificateAuthority(*std::move(ca));
    other_ca_ = new CertificateAuthority(*std::move(other_ca));
  }
  static void TearDownTestSuite() {
    delete ca_;
    delete other_ca_;
  }

  void SetUp() override {
    ASSERT_OK_AND_ASSIGN(Identity server_identity,
                         ca_->Issue(ServicePrincipal("test-server")));
    ASSERT_OK_AND_ASSIGN(auto credentials,
                         MakeServerCredentials(server_identity.Material()));
    server_ = StartServer(credentials, &service_);
    ASSERT_NE(server_.server, nullptr);
  }

  void TearDown() override {
    if (server_.server != nullptr) server_.server->Shutdown();
  }

  // A channel presenting a fresh certificate for `principal` from `ca`.
  std::shared_ptr<grpc::Channel> ChannelAs(const CertificateAuthority& ca,
                                           const std::string& principal) {
    absl::StatusOr<Identity> identity = ca.Issue(principal);
    EXPECT_TRUE(identity.ok()) << identity.status();
    absl::StatusOr<std::shared_ptr<grpc::Channel>> channel =
        MakeChannel(server_.target, identity->Material());
    EXPECT_TRUE(channel.ok()) << channel.status();
    return *channel;
  }

  static CertificateAuthority* ca_;
  static CertificateAuthority* other_ca_;
  EchoService service_;
  Server server_;
};

CertificateAuthority* GrpcMtlsTest::ca_ = nullptr;
CertificateAuthority* GrpcMtlsTest::other_ca_ = nullptr;

TEST_F(GrpcMtlsTest, ServerReadsEachClientsPrincipalFromItsCertificate) {
  ASSERT_OK_AND_ASSIGN(std::string alice,
                       WhoAmI(ChannelAs(*ca_, UserPrincipal("alice"))));
  EXPECT_EQ(alice, "residency://user/alice");
  ASSERT_OK_AND_ASSIGN(std::string authority,
                       WhoAmI(ChannelAs(*ca_, AuthorityPrincipal("cn"))));
  EXPECT_EQ(authority, "residency://authority/cn");
  EXPECT_EQ(service_.calls(), 2);
}

TEST_F(GrpcMtlsTest, ClientReadsTheServersPrincipal) {
  std::shared_ptr<const grpc::AuthContext> server_auth;
  ASSERT_OK(WhoAmI(ChannelAs(*ca_, UserPrincipal("alice")), &server_auth));
  ASSERT_NE(server_auth, nullptr);
  ASSERT_OK_AND_ASSIGN(Principal server, PeerPrincipal(*server_auth));
  EXPECT_EQ(server.uri, "residency://service/test-server");
}

TEST_F(GrpcMtlsTest, ClientWithoutCertificateIsRefused) {
  grpc::SslCredentialsOptions options;
  options.pem_root_certs = ca_->certificate_pem();
  EXPECT_THAT(WhoAmI(RawChannel(server_.target, options)),
              StatusIs(absl::StatusCode::kUnavailable));
  EXPECT_EQ(service_.calls(), 0);
}

TEST_F(GrpcMtlsTest, ClientWithCertificateFromAnotherCaIsRefused) {
  ASSERT_OK_AND_ASSIGN(Identity stranger,
                       other_ca_->Issue(UserPrincipal("alice")));
  grpc::SslCredentialsOptions options;
  options.pem_root_certs = ca_->certificate_pem();  // trusts the server
  options.pem_cert_chain = stranger.certificate_pem;
  options.pem_private_key = std::string(stranger.private_key_pem.view());
  EXPECT_THAT(WhoAmI(RawChannel(server_.target, options)),
              StatusIs(absl::StatusCode::kUnavailable));
  EXPECT_EQ(service_.calls(), 0);
}

TEST_F(GrpcMtlsTest, ClientWithExpiredCertificateIsRefused) {
  ASSERT_OK_AND_ASSIGN(Identity expired,
                       ca_->Issue(UserPrincipal("alice"), {.expired = true}));
  // MakeChannel would refuse this material; a misbehaving client would not.
  grpc::SslCredentialsOptions options;
  options.pem_root_certs = ca_->certificate_pem();
  options.pem_cert_chain = expired.certificate_pem;
  options.pem_private_key = std::string(expired.private_key_pem.view());
  EXPECT_THAT(WhoAmI(RawChannel(server_.target, options)),
              StatusIs(absl::StatusCode::kUnavailable));
  EXPECT_EQ(service_.calls(), 0);
}

TEST_F(GrpcMtlsTest, ClientTrustingAnotherCaRefusesTheServer) {
  // A complete, valid identity under the other CA: the client cannot verify
  // the server's certificate (nor the server the client's).
  EXPECT_THAT(WhoAmI(ChannelAs(*other_ca_, UserPrincipal("alice"))),
              StatusIs(absl::StatusCode::kUnavailable));
  EXPECT_EQ(service_.calls(), 0);
}

TEST_F(GrpcMtlsTest, ClientRefusesAServerCertificateFromAnotherCa) {
  // Only the server side is foreign: its certificate comes from the other
  // CA, while it trusts the clients' CA. The client must refuse it.
  ASSERT_OK_AND_ASSIGN(Identity impostor,
                       other_ca_->Issue(ServicePrincipal("test-server")));
  grpc::SslServerCredentialsOptions options(
      GRPC_SSL_REQUEST_AND_REQUIRE_CLIENT_CERTIFICATE_AND_VERIFY);
  options.pem_root_certs = ca_->certificate_pem();
  options.pem_key_cert_pairs.push_back(
      {std::string(impostor.private_key_pem.view()), impostor.certificate_pem});
  EchoService impostor_service;
  Server impostor_server =
      StartServer(grpc::SslServerCredentials(options), &impostor_service);
  ASSERT_NE(impostor_server.server, nullptr);

  ASSERT_OK_AND_ASSIGN(Identity alice, ca_->Issue(UserPrincipal("alice")));
  ASSERT_OK_AND_ASSIGN(std::shared_ptr<grpc::Channel> channel,
                       MakeChannel(impostor_server.target, alice.Material()));
  EXPECT_THAT(WhoAmI(channel), StatusIs(absl::StatusCode::kUnavailable));
  EXPECT_EQ(impostor_service.calls(), 0);
  impostor_server.server->Shutdown();
}

TEST_F(GrpcMtlsTest, ClientRefusesAnExpiredServerCertificate) {
  ASSERT_OK_AND_ASSIGN(
      Identity expired,
      ca_->Issue(ServicePrincipal("test-server"), {.expired = true}));
  grpc::SslServerCredentialsOptions options(
      GRPC_SSL_REQUEST_AND_REQUIRE_CLIENT_CERTIFICATE_AND_VERIFY);
  options.pem_root_certs = ca_->certificate_pem();
  options.pem_key_cert_pairs.push_back(
      {std::string(expired.private_key_pem.view()), expired.certificate_pem});
  EchoService expired_service;
  Server expired_server =
      StartServer(grpc::SslServerCredentials(options), &expired_service);
  ASSERT_NE(expired_server.server, nullptr);

  ASSERT_OK_AND_ASSIGN(Identity alice, ca_->Issue(UserPrincipal("alice")));
  ASSERT_OK_AND_ASSIGN(std::shared_ptr<grpc::Channel> channel,
                       MakeChannel(expired_server.target, alice.Material()));
  EXPECT_THAT(WhoAmI(channel), StatusIs(absl::StatusCode::kUnavailable));
  EXPECT_EQ(expired_service.calls(), 0);
  expired_server.server->Shutdown();
}

TEST_F(GrpcMtlsTest, MaxReceiveMessageSizeIsApplied) {
  ASSERT_OK_AND_ASSIGN(Identity alice, ca_->Issue(UserPrincipal("alice")));
  // The response (the 22-byte URI plus framing) is larger than 8 bytes.
  ASSERT_OK_AND_ASSIGN(std::shared_ptr<grpc::Channel> small,
                       MakeChannel(server_.target, alice.Material(),
                                   {.max_receive_message_bytes = 8}));
  EXPECT_THAT(WhoAmI(small), StatusIs(absl::StatusCode::kResourceExhausted));
  ASSERT_OK_AND_ASSIGN(std::shared_ptr<grpc::Channel> enough,
                       MakeChannel(server_.target, alice.Material(),
                                   {.max_receive_message_bytes = 64}));
  EXPECT_OK(WhoAmI(enough));
}

// A port on 127.0.0.1 that refuses connections until a server listens on
// it: the socket holds the port, bound but not listening, and allows a
// gRPC server (which sets SO_REUSEPORT) to bind it too.
class ReservedPort {
 public:
  ReservedPort() {
    fd_ = socket(AF_INET, SOCK_STREAM, 0);
    const int on = 1;
    sockaddr_in address{};
    address.sin_family = AF_INET;
    address.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
    socklen_t length = sizeof(address);
    if (fd_ < 0 ||
        setsockopt(fd_, SOL_SOCKET, SO_REUSEPORT, &on, sizeof(on)) != 0 ||
        bind(fd_, reinterpret_cast<sockaddr*>(&address), sizeof(address)) !=
            0 ||
        getsockname(fd_, reinterpret_cast<sockaddr*>(&address), &length) != 0) {
      ADD_FAILURE() << "cannot reserve a port: " << std::strerror(errno);
      return;
    }
    port_ = ntohs(address.sin_port);
  }
  ~ReservedPort() {
    if (fd_ >= 0) close(fd_);
  }
  ReservedPort(const ReservedPort&) = delete;
  ReservedPort& operator=(const ReservedPort&) = delete;

  int port() const { return port_; }

 private:
  int fd_ = -1;
  int port_ = 0;
};

// A channel whose first connection was refused connects again soon after
// the server comes up, within a client's retry schedule, rather than after
// gRPC's default first backoff of 1 s, in which every call fails at once
// with UNAVAILABLE.
TEST_F(GrpcMtlsTest, ARefusedChannelReconnectsSoonAfterTheServerComesUp) {
  ReservedPort reserved;
  ASSERT_GT(reserved.port(), 0);
  const std::string target = absl::StrCat("127.0.0.1:", reserved.port());
  ASSERT_OK_AND_ASSIGN(Identity alice, ca_->Issue(UserPrincipal("alice")));
  ASSERT_OK_AND_ASSIGN(std::shared_ptr<grpc::Channel> channel,
                       MakeChannel(target, alice.Material()));
  ASSERT_OK_AND_ASSIGN(Identity server_identity,
                       ca_->Issue(ServicePrincipal("late-server")));
  ASSERT_OK_AND_ASSIGN(auto credentials,
                       MakeServerCredentials(server_identity.Material()));
  EchoService service;
  grpc::ServerBuilder builder;
  builder.AddListeningPort(target, credentials);
  builder.RegisterService(&service);

  EXPECT_THAT(WhoAmI(channel), StatusIs(absl::StatusCode::kUnavailable));
  std::unique_ptr<grpc::Server> server = builder.BuildAndStart();
  ASSERT_NE(server, nullptr);

  // Timed from the server's start, so a slow start on a loaded machine does
  // not count: from then on the channel's next attempt succeeds.
  const absl::Time up = absl::Now();
  absl::StatusOr<std::string> caller = WhoAmI(channel);
  while (!caller.ok() && absl::Now() - up < absl::Seconds(3)) {
    ASSERT_THAT(caller, StatusIs(absl::StatusCode::kUnavailable));
    absl::SleepFor(absl::Milliseconds(10));
    caller = WhoAmI(channel);
  }
  const absl::Duration waited = absl::Now() - up;
  EXPECT_OK(caller);
  EXPECT_LT(waited, absl::Milliseconds(700)) << "connected after " << waited;
  server->Shutdown();
}

TEST(GrpcInsecureTest, PlaintextCallerIsUnauthenticated) {
  EchoService service;
  Server server = StartServer(grpc::InsecureServerCredentials(), &service);
  ASSERT_NE(server.server, nullptr);
  absl::StatusOr<std::string> caller = WhoAmI(
      grpc::CreateChannel(server.target, grpc::InsecureChannelCredentials()));
  EXPECT_THAT(caller, StatusIs(absl::StatusCode::kUnauthenticated));
  EXPECT_THAT(std::string(caller.status().message()),
              HasSubstr("does not use TLS"));
  EXPECT_EQ(service.calls(), 1);
  server.server->Shutdown();
}

}  // namespace
}  // namespace residency::tls
