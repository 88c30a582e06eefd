// The client against a real key service and a real storage node, both
// in-process on loopback ports with mTLS.
#include "client/client.h"

#include <filesystem>
#include <optional>
#include <sstream>
#include <string>

#include "crypto/random.h"
#include "gmock/gmock.h"
#include "gtest/gtest.h"
#include "key_service/server.h"
#include "storage_node/server.h"
#include "tests/status_matchers.h"
#include "tls/credentials.h"
#include "tls/pki.h"

namespace residency::client {
namespace {

using ::residency::testing::StatusIs;
using ::testing::HasSubstr;

constexpr char kPolicy[] = R"pb(
  jurisdiction: "US"
  rules {
    name: "owners-use-own-keys"
    effect: ALLOW
    caller_is_owner: true
    operations: [
      OPERATION_CREATE_KEY,
      OPERATION_GENERATE_DATA_KEY,
      OPERATION_UNWRAP
    ]
    justifications: CUSTOMER_INITIATED_ACCESS
  }
)pb";

class ClientTest : public ::testing::Test {
 protected:
  void SetUp() override {
    char tmpl[] = "/tmp/client_test.XXXXXX";
    ASSERT_NE(mkdtemp(tmpl), nullptr);
    dir_ = tmpl;
    ASSERT_OK_AND_ASSIGN(tls::CertificateAuthority ca,
                         tls::CertificateAuthority::Create("test-ca"));
    ca_.emplace(std::move(ca));

    ASSERT_OK_AND_ASSIGN(tls::Identity ks,
                         ca_->Issue("residency://service/us-custodian"));
    key_service::KeyServiceServerOptions ks_options;
    ks_options.tls = ks.Material();
    ks_options.jurisdiction = "US";
    ks_options.data_dir = dir_ + "/ks";
    ASSERT_OK_AND_ASSIGN(key_service::PolicyEngine policy,
                         key_service::PolicyEngine::Parse(kPolicy, "test"));
    ASSERT_OK_AND_ASSIGN(key_service_,
                         key_service::KeyServiceServer::Start(
                             std::move(ks_options), std::move(policy)));

    ASSERT_OK_AND_ASSIGN(tls::Identity sn,
                         ca_->Issue("residency://service/cn-node"));
    storage_node::StorageNodeServerOptions sn_options;
    sn_options.tls = sn.Material();
    sn_options.jurisdiction = "CN";
    sn_options.operator_principal = "residency://operator/cn-telecom";
    sn_options.data_dir = dir_ + "/sn";
    ASSERT_OK_AND_ASSIGN(storage_node_, storage_node::StorageNodeServer::Start(
                                            std::move(sn_options)));
    alice_ = MakeClient("alice");
    ASSERT_NE(alice_, nullptr);
    CreateKey("alice");
  }

  void TearDown() override {
    alice_.reset();
    storage_node_.reset();
    key_service_.reset();
    std::filesystem::remove_all(dir_);
  }

  std::unique_ptr<Client> MakeClient(const std::string& owner) {
    absl::StatusOr<tls::Identity> identity =
        ca_->Issue("residency://user/" + owner);
    EXPECT_OK(identity.status());
    ClientOptions options;
    options.owner = owner;
    options.key_id = owner + "-key";
    options.key_service =
        *tls::MakeChannel(key_service_->address(), identity->Material());
    options.storage =
        *tls::MakeChannel(storage_node_->address(), identity->Material());
    options.residency = {"CN"};
    options.message_bytes = 100 * 1000;
    absl::StatusOr<std::unique_ptr<Client>> client =
        Client::Create(std::move(options));
    EXPECT_OK(client.status());
    return client.ok() ? *std::move(client) : nullptr;
  }

  void CreateKey(const std::string& owner) {
    absl::StatusOr<tls::Identity> identity =
        ca_->Issue("residency://user/" + owner);
    ASSERT_OK(identity.status());
    auto stub = v1::KeyService::NewStub(
        *tls::MakeChannel(key_service_->address(), identity->Material()));
    v1::CreateKeyRequest request;
    request.mutable_metadata()->set_request_id("create");
    request.mutable_metadata()->mutable_justification()->set_reason(
        v1::Justification::CUSTOMER_INITIATED_ACCESS);
    request.set_key_id(owner + "-key");
    request.set_owner(owner);
    v1::CreateKeyResponse response;
    grpc::ClientContext context;
    ASSERT_TRUE(stub->CreateKey(&context, request, &response).ok());
  }

  absl::StatusOr<v1::ObjectRef> Put(Client& client, const std::string& id,
                                    const std::string& data) {
    std::istringstream in(data);
    return client.Put(id, in, data.size());
  }

  absl::StatusOr<std::string> Get(Client& client, const std::string& id,
                                  uint64_t version = 0,
                                  std::optional<Range> range = std::nullopt) {
    std::ostringstream out;
    absl::StatusOr<v1::ObjectHeader> header =
        client.Get(id, version, out, range);
    if (!header.ok()) return header.status();
    return out.str();
  }

  std::string dir_;
  std::optional<tls::CertificateAuthority> ca_;
  std::unique_ptr<key_service::KeyServiceServer> key_service_;
  std::unique_ptr<storage_node::StorageNodeServer> storage_node_;
  std::unique_ptr<Client> alice_;
};

class ClientSizeTest : public ClientTest,
                       public ::testing::WithParamInterface<size_t> {};

TEST_P(ClientSizeTest, PutThenGetReturnsThePlaintext) {
  const std::string data = *crypto::RandomBytes(GetParam());
  ASSERT_OK_AND_ASSIGN(v1::ObjectRef stored, Put(*alice_, "doc", data));
  EXPECT_EQ(stored.version(), 1u);
  ASSERT_OK_AND_ASSIGN(std::string back, Get(*alice_, "doc"));
  EXPECT_TRUE(back == data);
}

INSTANTIATE_TEST_SUITE_P(Sizes, ClientSizeTest,
                         ::testing::Values(0, 1, 16383, 16384, 16385,
                                           (1 << 20) + 7));

TEST_F(ClientTest, EachPutIsANewVersionAndOldOnesStayReadable) {
  ASSERT_OK(Put(*alice_, "doc", "first").status());
  ASSERT_OK_AND_ASSIGN(v1::ObjectRef second, Put(*alice_, "doc", "second"));
  EXPECT_EQ(second.version(), 2u);
  EXPECT_THAT(Get(*alice_, "doc"), residency::testing::IsOkAndHolds("second"));
  EXPECT_THAT(Get(*alice_, "doc", 1),
              residency::testing::IsOkAndHolds("first"));
}

TEST_F(ClientTest, RangedGetReturnsExactlyTheRange) {
  const std::string data = *crypto::RandomBytes(5 * 16384 + 99);
  ASSERT_OK(Put(*alice_, "doc", data).status());
  for (const Range r : {Range{0, 10}, Range{16380, 10}, Range{40000, 20000},
                        Range{data.size() - 5, 0}}) {
    ASSERT_OK_AND_ASSIGN(std::string part, Get(*alice_, "doc", 0, r));
    const uint64_t length = r.length == 0 ? data.size() - r.offset : r.length;
    EXPECT_TRUE(part == data.substr(r.offset, length)) << r.offset;
  }
}

TEST_F(ClientTest, AnotherUserCannotReadTheObject) {
  ASSERT_OK(Put(*alice_, "doc", "secret").status());
  std::unique_ptr<Client> bob = MakeClient("bob");
  // Bob's client asks for its own owner's object: nothing there.
  EXPECT_THAT(Get(*bob, "doc").status(), StatusIs(absl::StatusCode::kNotFound));
}

TEST_F(ClientTest, InputShorterThanDeclaredIsRefusedAndNothingStored) {
  std::istringstream in("short");
  EXPECT_THAT(alice_->Put("doc", in, 100).status(),
              StatusIs(absl::StatusCode::kInvalidArgument,
                       HasSubstr("input ended after 5 of 100")));
  EXPECT_THAT(Get(*alice_, "doc").status(),
              StatusIs(absl::StatusCode::kNotFound));
}

}  // namespace
}  // namespace residency::client
