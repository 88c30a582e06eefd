// The client against a real key service and a real storage node, both
// in-process on loopback ports with mTLS.
#include "client/client.h"

#include <atomic>
#include <filesystem>
#include <optional>
#include <sstream>
#include <string>

#include "crypto/random.h"
#include "gmock/gmock.h"
#include "gtest/gtest.h"
#include "key_service/server.h"
#include "rpc/server.h"
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

// An insider at the storage operator: a node in front of the real one that
// edits what it serves. Put and Head pass through; Get answers according
// to `mode`.
class TamperingNode final : public v1::StorageNode::Service {
 public:
  enum class Mode {
    kHonest,
    kFlipBit,          // one ciphertext bit flipped
    kSwapCiphertext,   // another object's ciphertext behind this header
    kOlderVersion,     // version 1 served when version 2 is asked for
    kOlderRelabelled,  // version 1 served, its header relabelled as v2
    kTruncate,         // the last ciphertext bytes dropped
    kOtherOwner,       // another owner's header and ciphertext
  };

  TamperingNode(std::shared_ptr<grpc::Channel> alice_to_node,
                std::shared_ptr<grpc::Channel> bob_to_node)
      : alice_(v1::StorageNode::NewStub(std::move(alice_to_node))),
        bob_(v1::StorageNode::NewStub(std::move(bob_to_node))) {}

  void set_mode(Mode mode) { mode_ = mode; }

  grpc::Status Put(grpc::ServerContext*,
                   grpc::ServerReader<v1::PutRequest>* reader,
                   v1::PutResponse* response) override {
    grpc::ClientContext context;
    auto writer = alice_->Put(&context, response);
    v1::PutRequest message;
    while (reader->Read(&message)) writer->Write(message);
    writer->WritesDone();
    return writer->Finish();
  }

  grpc::Status Head(grpc::ServerContext*, const v1::HeadRequest* request,
                    v1::HeadResponse* response) override {
    grpc::ClientContext context;
    return alice_->Head(&context, *request, response);
  }

  grpc::Status Get(grpc::ServerContext*, const v1::GetRequest* request,
                   grpc::ServerWriter<v1::GetResponse>* writer) override {
    v1::GetRequest wanted = *request;
    v1::GetResponse::Start start;
    std::string data;
    switch (mode_) {
      case Mode::kOlderVersion:
      case Mode::kOlderRelabelled:
        wanted.mutable_object()->set_version(1);
        break;
      case Mode::kSwapCiphertext: {
        v1::GetRequest other = wanted;
        other.mutable_object()->set_object_id("other");
        other.mutable_object()->set_version(0);
        if (!Fetch(*alice_, other, nullptr, &data)) {
          return grpc::Status(grpc::StatusCode::INTERNAL, "no other object");
        }
        break;
      }
      case Mode::kOtherOwner:
        wanted.mutable_object()->set_owner("bob");
        wanted.mutable_object()->set_version(0);
        break;
      default:
        break;
    }
    std::string own;
    auto& stub = mode_ == Mode::kOtherOwner ? *bob_ : *alice_;
    if (!Fetch(stub, wanted, &start, &own)) {
      return grpc::Status(grpc::StatusCode::NOT_FOUND, "not found");
    }
    if (mode_ != Mode::kSwapCiphertext) data = std::move(own);
    if (mode_ == Mode::kFlipBit) data[data.size() / 2] ^= 0x04;
    if (mode_ == Mode::kTruncate) data.resize(data.size() - 20);
    if (mode_ == Mode::kOlderRelabelled) {
      start.mutable_header()->mutable_object()->set_version(2);
    }
    v1::GetResponse message;
    *message.mutable_start() = start;
    writer->Write(message);
    message.set_data(data);
    writer->Write(message);
    return grpc::Status::OK;
  }

 private:
  static bool Fetch(v1::StorageNode::Stub& stub, const v1::GetRequest& request,
                    v1::GetResponse::Start* start, std::string* data) {
    grpc::ClientContext context;
    auto reader = stub.Get(&context, request);
    v1::GetResponse message;
    while (reader->Read(&message)) {
      if (message.has_start() && start != nullptr) *start = message.start();
      if (message.has_data()) *data += message.data();
    }
    return reader->Finish().ok();
  }

  std::unique_ptr<v1::StorageNode::Stub> alice_;
  std::unique_ptr<v1::StorageNode::Stub> bob_;
  std::atomic<Mode> mode_{Mode::kHonest};
};

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

  std::unique_ptr<Client> MakeClient(
      const std::string& owner,
      std::optional<std::string> storage_address = std::nullopt) {
    absl::StatusOr<tls::Identity> identity =
        ca_->Issue("residency://user/" + owner);
    EXPECT_OK(identity.status());
    ClientOptions options;
    options.owner = owner;
    options.key_id = owner + "-key";
    options.key_service =
        *tls::MakeChannel(key_service_->address(), identity->Material());
    options.storage =
        *tls::MakeChannel(storage_address.value_or(storage_node_->address()),
                          identity->Material());
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

// The tamper suite runs the client against a TamperingNode in front of the
// real node. Every case must fail with DATA_LOSS, never with plaintext.
class ClientTamperTest : public ClientTest {
 protected:
  void SetUp() override {
    ClientTest::SetUp();
    CreateKey("bob");
    ASSERT_OK_AND_ASSIGN(tls::Identity alice,
                         ca_->Issue("residency://user/alice"));
    ASSERT_OK_AND_ASSIGN(tls::Identity bob, ca_->Issue("residency://user/bob"));
    ASSERT_OK_AND_ASSIGN(tls::Identity node,
                         ca_->Issue("residency://service/insider-node"));
    tampering_ = std::make_unique<TamperingNode>(
        *tls::MakeChannel(storage_node_->address(), alice.Material()),
        *tls::MakeChannel(storage_node_->address(), bob.Material()));
    rpc::ServerOptions options;
    options.credentials = *tls::MakeServerCredentials(node.Material());
    options.services = {tampering_.get()};
    options.health_service_name = "insider";
    ASSERT_OK_AND_ASSIGN(insider_, rpc::Server::Start(std::move(options)));
    victim_ = MakeClient("alice", insider_->address());

    // alice: "doc" v1 and v2, "other"; bob: "doc".
    v1_ = *crypto::RandomBytes(40000);
    v2_ = *crypto::RandomBytes(40000);
    ASSERT_OK(Put(*alice_, "doc", v1_).status());
    ASSERT_OK(Put(*alice_, "doc", v2_).status());
    ASSERT_OK(Put(*alice_, "other", *crypto::RandomBytes(40000)).status());
    std::unique_ptr<Client> bob_client = MakeClient("bob");
    ASSERT_OK(Put(*bob_client, "doc", *crypto::RandomBytes(40000)).status());
  }

  void TearDown() override {
    victim_.reset();
    insider_.reset();
    tampering_.reset();
    ClientTest::TearDown();
  }

  // Reads alice's "doc" v2 through the insider; returns what came out.
  absl::Status ReadThroughInsider(TamperingNode::Mode mode,
                                  std::string* plaintext) {
    tampering_->set_mode(mode);
    std::ostringstream out;
    absl::Status status = victim_->Get("doc", 2, out).status();
    *plaintext = out.str();
    return status;
  }

  std::unique_ptr<TamperingNode> tampering_;
  std::unique_ptr<rpc::Server> insider_;
  std::unique_ptr<Client> victim_;
  std::string v1_, v2_;
};

TEST_F(ClientTamperTest, HonestInsiderServesThePlaintext) {
  std::string plaintext;
  ASSERT_OK(ReadThroughInsider(TamperingNode::Mode::kHonest, &plaintext));
  EXPECT_TRUE(plaintext == v2_);
}

TEST_F(ClientTamperTest, FlippedBitIsDataLoss) {
  std::string plaintext;
  EXPECT_THAT(ReadThroughInsider(TamperingNode::Mode::kFlipBit, &plaintext),
              StatusIs(absl::StatusCode::kDataLoss,
                       HasSubstr("does not authenticate")));
  // Chunks before the flipped one may have been written; none after it,
  // and nothing that is not a prefix of the true plaintext.
  EXPECT_LT(plaintext.size(), v2_.size());
  EXPECT_TRUE(v2_.substr(0, plaintext.size()) == plaintext);
}

TEST_F(ClientTamperTest, AnotherObjectsCiphertextIsDataLoss) {
  std::string plaintext;
  EXPECT_THAT(
      ReadThroughInsider(TamperingNode::Mode::kSwapCiphertext, &plaintext),
      StatusIs(absl::StatusCode::kDataLoss));
  EXPECT_TRUE(plaintext.empty());
}

TEST_F(ClientTamperTest, OlderVersionServedForANewerOneIsDataLoss) {
  std::string plaintext;
  EXPECT_THAT(
      ReadThroughInsider(TamperingNode::Mode::kOlderVersion, &plaintext),
      StatusIs(absl::StatusCode::kDataLoss, HasSubstr("answered with")));
  EXPECT_TRUE(plaintext.empty());
  // Relabelling the old header as the new version does not help: the
  // wrapped key and the ciphertext are bound to version 1.
  EXPECT_THAT(
      ReadThroughInsider(TamperingNode::Mode::kOlderRelabelled, &plaintext),
      StatusIs(absl::StatusCode::kDataLoss,
               HasSubstr("wrapped data key does not open")));
  EXPECT_TRUE(plaintext.empty());
}

TEST_F(ClientTamperTest, TruncatedCiphertextIsDataLoss) {
  std::string plaintext;
  EXPECT_THAT(ReadThroughInsider(TamperingNode::Mode::kTruncate, &plaintext),
              StatusIs(absl::StatusCode::kDataLoss));
  EXPECT_LT(plaintext.size(), v2_.size());
  EXPECT_TRUE(v2_.substr(0, plaintext.size()) == plaintext);
}

TEST_F(ClientTamperTest, AnotherOwnersHeaderIsDataLoss) {
  std::string plaintext;
  EXPECT_THAT(ReadThroughInsider(TamperingNode::Mode::kOtherOwner, &plaintext),
              StatusIs(absl::StatusCode::kDataLoss, HasSubstr("bob")));
  EXPECT_TRUE(plaintext.empty());
}

}  // namespace
}  // namespace residency::client
