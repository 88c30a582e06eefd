// The storage node end to end over gRPC and mTLS: a real server in-process
// on an ephemeral loopback port, with real Cobblestone ciphertext.
#include <filesystem>
#include <functional>
#include <map>
#include <memory>
#include <optional>
#include <string>
#include <thread>
#include <vector>

#include "absl/strings/str_cat.h"
#include "crypto/chunked.h"
#include "crypto/object_context.h"
#include "crypto/random.h"
#include "gmock/gmock.h"
#include "gtest/gtest.h"
#include "residency/v1/storage.grpc.pb.h"
#include "rpc/health.h"
#include "rpc/status.h"
#include "storage_node/discarding_store.h"
#include "storage_node/server.h"
#include "tests/fault_file_system.h"
#include "tests/status_matchers.h"
#include "tests/temp_dir.h"
#include "tls/credentials.h"
#include "tls/pki.h"

namespace residency::storage_node {
namespace {

using ::residency::testing::IsOkAndHolds;
using ::residency::testing::StatusIs;
using ::residency::testing::TempDir;
using ::residency::v1::ObjectHeader;
using ::residency::v1::StorageNode;
using ::testing::HasSubstr;

constexpr char kAlice[] = "residency://user/alice";
constexpr char kBob[] = "residency://user/bob";
constexpr char kOperator[] = "residency://operator/cn-telecom";
constexpr char kAuthority[] = "residency://authority/cn";

v1::RequestMetadata Meta() {
  v1::RequestMetadata m;
  m.set_request_id("test");
  m.mutable_justification()->set_reason(
      v1::Justification::CUSTOMER_INITIATED_ACCESS);
  return m;
}

// An object as a client would write it: Cobblestone ciphertext under a
// fresh key, bound to its name, with a (stand-in) wrapped DEK.
struct Envelope {
  ObjectHeader header;
  std::string plaintext;
  std::string ciphertext;
  crypto::SecretBytes key;
};

Envelope MakeEnvelope(absl::string_view owner, absl::string_view id,
                      uint64_t version, size_t size) {
  Envelope e;
  e.plaintext = *crypto::RandomBytes(size);
  e.key = *crypto::RandomSecret(32);
  const std::string context = *crypto::EncodeObjectContext(owner, id, version);
  e.ciphertext = *crypto::ChunkedEncrypt(e.key, context, e.plaintext);
  v1::ObjectRef* object = e.header.mutable_object();
  object->set_owner(std::string(owner));
  object->set_object_id(std::string(id));
  object->set_version(version);
  e.header.set_custody_mode(v1::CUSTODY_MODE_CUSTODIAN);
  e.header.set_payload_algorithm(v1::PAYLOAD_ALGORITHM_COBBLESTONE_256);
  v1::WrappedKey* wrapped = e.header.add_wrapped_keys();
  wrapped->set_wrapper(v1::WrappedKey::KEY_SERVICE);
  wrapped->set_key_id(absl::StrCat(owner, "-key"));
  wrapped->set_key_version(1);
  wrapped->set_wrapped(*crypto::RandomBytes(60));
  wrapped->set_key_service("residency://service/us-custodian");
  wrapped->set_jurisdiction("US");
  e.header.set_plaintext_length(size);
  e.header.set_ciphertext_length(e.ciphertext.size());
  e.header.mutable_residency()->add_allowed_jurisdictions("CN");
  return e;
}

class Client {
 public:
  explicit Client(std::shared_ptr<grpc::Channel> channel)
      : stub_(StorageNode::NewStub(std::move(channel))) {}

  // Sends `messages` as one Put stream; `cancel_after` cancels instead of
  // finishing once that many messages went out.
  absl::StatusOr<v1::PutResponse> PutMessages(
      const std::vector<v1::PutRequest>& messages,
      std::optional<size_t> cancel_after = std::nullopt) {
    grpc::ClientContext context;
    context.set_deadline(std::chrono::system_clock::now() +
                         std::chrono::seconds(60));
    v1::PutResponse response;
    auto writer = stub_->Put(&context, &response);
    for (size_t i = 0; i < messages.size(); ++i) {
      if (cancel_after.has_value() && i == *cancel_after) break;
      if (!writer->Write(messages[i])) break;
    }
    if (cancel_after.has_value()) {
      // Give the node time to receive what was sent before the cancel.
      std::this_thread::sleep_for(std::chrono::milliseconds(200));
    }
    if (cancel_after.has_value()) {
      context.TryCancel();
    } else {
      writer->WritesDone();
    }
    absl::Status status = rpc::FromGrpcStatus(writer->Finish());
    if (!status.ok()) return status;
    return response;
  }

  // Start, then the ciphertext in data messages of `piece` bytes.
  absl::StatusOr<v1::PutResponse> Put(const ObjectHeader& header,
                                      absl::string_view ciphertext,
                                      size_t piece = 64 * 1024) {
    return PutMessages(Messages(header, ciphertext, piece));
  }

  static std::vector<v1::PutRequest> Messages(const ObjectHeader& header,
                                              absl::string_view ciphertext,
                                              size_t piece = 64 * 1024) {
    std::vector<v1::PutRequest> messages(1);
    *messages[0].mutable_start()->mutable_metadata() = Meta();
    *messages[0].mutable_start()->mutable_header() = header;
    for (size_t at = 0; at < ciphertext.size(); at += piece) {
      v1::PutRequest data;
      data.set_data(std::string(ciphertext.substr(at, piece)));
      messages.push_back(std::move(data));
    }
    return messages;
  }

  struct Got {
    v1::GetResponse::Start start;
    std::string data;
  };
  absl::StatusOr<Got> Get(const v1::ObjectRef& object,
                          std::optional<v1::ByteRange> range = std::nullopt) {
    v1::GetRequest request;
    *request.mutable_metadata() = Meta();
    *request.mutable_object() = object;
    if (range.has_value()) *request.mutable_range() = *range;
    grpc::ClientContext context;
    context.set_deadline(std::chrono::system_clock::now() +
                         std::chrono::seconds(60));
    auto reader = stub_->Get(&context, request);
    Got got;
    v1::GetResponse message;
    bool first = true;
    while (reader->Read(&message)) {
      if (first) {
        EXPECT_TRUE(message.has_start());
        got.start = message.start();
        first = false;
      } else {
        EXPECT_TRUE(message.has_data());
        got.data += message.data();
      }
    }
    absl::Status status = rpc::FromGrpcStatus(reader->Finish());
    if (!status.ok()) return status;
    return got;
  }

  template <typename Request, typename Response>
  absl::StatusOr<Response> Unary(
      grpc::Status (StorageNode::Stub::*method)(grpc::ClientContext*,
                                                const Request&, Response*),
      Request request) {
    *request.mutable_metadata() = Meta();
    grpc::ClientContext context;
    context.set_deadline(std::chrono::system_clock::now() +
                         std::chrono::seconds(20));
    Response response;
    absl::Status status = rpc::FromGrpcStatus(
        (stub_.get()->*method)(&context, request, &response));
    if (!status.ok()) return status;
    return response;
  }

  absl::StatusOr<v1::HeadResponse> Head(const v1::ObjectRef& object) {
    v1::HeadRequest request;
    *request.mutable_object() = object;
    return Unary(&StorageNode::Stub::Head, request);
  }

  absl::StatusOr<std::vector<v1::ExportResponse>> Export(
      absl::string_view owner) {
    v1::ExportRequest request;
    *request.mutable_metadata() = Meta();
    request.set_owner(std::string(owner));
    grpc::ClientContext context;
    context.set_deadline(std::chrono::system_clock::now() +
                         std::chrono::seconds(60));
    auto reader = stub_->Export(&context, request);
    std::vector<v1::ExportResponse> items;
    v1::ExportResponse item;
    while (reader->Read(&item)) items.push_back(item);
    absl::Status status = rpc::FromGrpcStatus(reader->Finish());
    if (!status.ok()) return status;
    return items;
  }

 private:
  std::unique_ptr<StorageNode::Stub> stub_;
};

class StorageNodeTest : public ::testing::Test {
 protected:
  void SetUp() override {
    ASSERT_OK_AND_ASSIGN(dir_, temp_.Make("storage_node_test"));
    ASSERT_OK_AND_ASSIGN(tls::CertificateAuthority ca,
                         tls::CertificateAuthority::Create("test-ca"));
    ca_.emplace(std::move(ca));
    ASSERT_OK_AND_ASSIGN(StorageNodeServerOptions options,
                         NodeOptions(dir_ + "/node"));
    options.store.segment_bytes = 4096;
    options.limits.max_calls_per_principal = 4;
    options.limits.idle_timeout = absl::Seconds(2);
    ASSERT_OK_AND_ASSIGN(server_, StorageNodeServer::Start(std::move(options)));
  }

  // A CN node with the test CA's certificate, storing under `data_dir`.
  absl::StatusOr<StorageNodeServerOptions> NodeOptions(
      const std::string& data_dir) {
    absl::StatusOr<tls::Identity> node =
        ca_->Issue("residency://service/cn-node");
    if (!node.ok()) return node.status();
    StorageNodeServerOptions options;
    options.tls = node->Material();
    options.jurisdiction = "CN";
    options.operator_principal = kOperator;
    options.data_dir = data_dir;
    return options;
  }

  void TearDown() override {
    clients_.clear();
    server_.reset();
  }

  Client& As(const std::string& principal) {
    auto it = clients_.find(principal);
    if (it != clients_.end()) return *it->second;
    absl::StatusOr<tls::Identity> identity = ca_->Issue(principal);
    EXPECT_OK(identity.status());
    tls::ChannelOptions channel_options;
    channel_options.max_receive_message_bytes = 8 << 20;
    absl::StatusOr<std::shared_ptr<grpc::Channel>> channel = tls::MakeChannel(
        server_->address(), identity->Material(), channel_options);
    EXPECT_OK(channel.status());
    auto client = std::make_unique<Client>(*channel);
    Client& ref = *client;
    clients_[principal] = std::move(client);
    return ref;
  }

  // Nothing of `object` is visible and no upload is pending. The node may
  // still be unwinding a refused or cancelled stream when the client has
  // its answer, so pending uploads get a moment to go.
  void ExpectNothingStored(const v1::ObjectRef& object) {
    EXPECT_THAT(As(kAlice).Head(object).status(),
                StatusIs(absl::StatusCode::kNotFound));
    for (int i = 0; i < 200 && server_->core().store().pending_uploads() > 0;
         ++i) {
      std::this_thread::sleep_for(std::chrono::milliseconds(10));
    }
    EXPECT_EQ(server_->core().store().pending_uploads(), 0u);
  }

  TempDir temp_;
  std::string dir_;
  std::optional<tls::CertificateAuthority> ca_;
  std::unique_ptr<StorageNodeServer> server_;
  std::map<std::string, std::unique_ptr<Client>> clients_;
};

class StorageNodeSizeTest : public StorageNodeTest,
                            public ::testing::WithParamInterface<size_t> {};

TEST_P(StorageNodeSizeTest, PutThenGetReturnsTheSameCiphertext) {
  Envelope e = MakeEnvelope("alice", "photos/a.jpg", 1, GetParam());
  ASSERT_OK_AND_ASSIGN(v1::PutResponse put,
                       As(kAlice).Put(e.header, e.ciphertext, 10000));
  EXPECT_EQ(put.object().version(), 1u);
  ASSERT_OK_AND_ASSIGN(Client::Got got, As(kAlice).Get(e.header.object()));
  EXPECT_EQ(got.start.header().SerializeAsString(),
            e.header.SerializeAsString());
  EXPECT_EQ(got.start.ciphertext_offset(), 0u);
  EXPECT_EQ(got.start.ciphertext_length(), e.ciphertext.size());
  EXPECT_TRUE(got.data == e.ciphertext);
  // And the client can decrypt what came back.
  ASSERT_OK_AND_ASSIGN(
      std::string plaintext,
      crypto::ChunkedDecrypt(
          e.key, *crypto::EncodeObjectContext("alice", "photos/a.jpg", 1),
          got.data));
  EXPECT_TRUE(plaintext == e.plaintext);
}

INSTANTIATE_TEST_SUITE_P(Sizes, StorageNodeSizeTest,
                         ::testing::Values(0, 1, 16383, 16384, 16385,
                                           (1 << 20) + 7));

TEST_F(StorageNodeTest, RangedReadsServeOnlyTheCoveringChunks) {
  const size_t size = 5 * 16384 + 100;
  Envelope e = MakeEnvelope("alice", "doc", 1, size);
  ASSERT_OK(As(kAlice).Put(e.header, e.ciphertext).status());
  const std::string context = *crypto::EncodeObjectContext("alice", "doc", 1);
  struct Case {
    uint64_t offset, length;
  };
  for (const Case c : {Case{0, 10}, Case{16380, 10}, Case{16384, 16384},
                       Case{3 * 16384 - 1, 2}, Case{size - 50, 50},
                       Case{size - 50, 0}, Case{40000, 0}}) {
    v1::ByteRange range;
    range.set_offset(c.offset);
    range.set_length(c.length);
    ASSERT_OK_AND_ASSIGN(Client::Got got,
                         As(kAlice).Get(e.header.object(), range));
    const crypto::ChunkSpan span = crypto::ChunkedCiphertextSpan(
        size, c.offset, c.length == 0 ? size - c.offset : c.length);
    EXPECT_EQ(got.start.ciphertext_offset(), span.offset) << c.offset;
    EXPECT_EQ(got.start.ciphertext_length(), span.length) << c.offset;
    EXPECT_LT(got.data.size(), e.ciphertext.size());
    EXPECT_TRUE(got.data == e.ciphertext.substr(span.offset, span.length));
    EXPECT_TRUE(got.start.ciphertext_prefix() ==
                e.ciphertext.substr(0, crypto::kChunkedHeaderSize));
    ASSERT_OK_AND_ASSIGN(auto reader,
                         crypto::ChunkedRangeDecryptor::Create(
                             e.key, context, got.start.ciphertext_prefix(),
                             got.start.header().ciphertext_length()));
    const uint64_t length = c.length == 0 ? size - c.offset : c.length;
    ASSERT_OK_AND_ASSIGN(std::string plaintext,
                         reader.DecryptRange(c.offset, length, got.data));
    EXPECT_TRUE(plaintext == e.plaintext.substr(c.offset, length)) << c.offset;
  }
}

TEST_F(StorageNodeTest, RangeBeyondTheEndIsOutOfRange) {
  Envelope e = MakeEnvelope("alice", "doc", 1, 100);
  ASSERT_OK(As(kAlice).Put(e.header, e.ciphertext).status());
  v1::ByteRange range;
  range.set_offset(101);
  EXPECT_THAT(As(kAlice).Get(e.header.object(), range).status(),
              StatusIs(absl::StatusCode::kOutOfRange, HasSubstr("101")));
}

TEST_F(StorageNodeTest, LatestVersionIsReadWithVersionZero) {
  Envelope first = MakeEnvelope("alice", "doc", 1, 10);
  Envelope second = MakeEnvelope("alice", "doc", 2, 20);
  ASSERT_OK(As(kAlice).Put(first.header, first.ciphertext).status());
  ASSERT_OK(As(kAlice).Put(second.header, second.ciphertext).status());
  v1::ObjectRef latest = first.header.object();
  latest.set_version(0);
  ASSERT_OK_AND_ASSIGN(Client::Got got, As(kAlice).Get(latest));
  EXPECT_EQ(got.start.header().object().version(), 2u);
  EXPECT_TRUE(got.data == second.ciphertext);
  // A version at or below the latest cannot be written again.
  EXPECT_THAT(As(kAlice).Put(first.header, first.ciphertext).status(),
              StatusIs(absl::StatusCode::kAlreadyExists));
}

TEST_F(StorageNodeTest, HeadListDeleteAndStats) {
  for (int i = 0; i < 5; ++i) {
    Envelope e = MakeEnvelope("alice", absl::StrCat("f", i), 1, 100 * i);
    ASSERT_OK(As(kAlice).Put(e.header, e.ciphertext).status());
  }
  Envelope other = MakeEnvelope("bob", "g", 1, 10);
  ASSERT_OK(As(kBob).Put(other.header, other.ciphertext).status());

  v1::ListRequest list;
  list.set_owner("alice");
  list.set_page_size(2);
  std::vector<std::string> ids;
  for (int page = 0; page < 5; ++page) {
    ASSERT_OK_AND_ASSIGN(v1::ListResponse listed,
                         As(kAlice).Unary(&StorageNode::Stub::List, list));
    for (const auto& o : listed.objects()) {
      ids.push_back(o.header().object().object_id());
    }
    if (listed.next_page_token().empty()) break;
    list.set_page_token(listed.next_page_token());
  }
  EXPECT_THAT(ids, ::testing::ElementsAre("f0", "f1", "f2", "f3", "f4"));

  v1::DeleteRequest del;
  del.mutable_object()->set_owner("alice");
  del.mutable_object()->set_object_id("f1");
  ASSERT_OK_AND_ASSIGN(v1::DeleteResponse deleted,
                       As(kAlice).Unary(&StorageNode::Stub::Delete, del));
  EXPECT_EQ(deleted.versions_deleted(), 1u);
  EXPECT_THAT(As(kAlice).Head(del.object()).status(),
              StatusIs(absl::StatusCode::kNotFound));

  v1::StatsRequest stats;
  ASSERT_OK_AND_ASSIGN(v1::StatsResponse usage,
                       As(kOperator).Unary(&StorageNode::Stub::Stats, stats));
  EXPECT_EQ(usage.jurisdiction(), "CN");
  ASSERT_EQ(usage.owners_size(), 2);
  EXPECT_EQ(usage.owners(0).owner(), "alice");
  EXPECT_EQ(usage.owners(0).object_count(), 4u);
  EXPECT_EQ(usage.owners(0).plaintext_bytes(), 0u + 200 + 300 + 400);
  EXPECT_EQ(usage.owners(1).owner(), "bob");
  // A user sees its own usage only.
  stats.set_owner("alice");
  EXPECT_OK(As(kAlice).Unary(&StorageNode::Stub::Stats, stats).status());
  EXPECT_THAT(As(kBob).Unary(&StorageNode::Stub::Stats, stats).status(),
              StatusIs(absl::StatusCode::kPermissionDenied));
  stats.clear_owner();
  EXPECT_THAT(As(kAlice).Unary(&StorageNode::Stub::Stats, stats).status(),
              StatusIs(absl::StatusCode::kPermissionDenied));
}

TEST_F(StorageNodeTest, OperatorExportsEverythingHeldForAnOwner) {
  Envelope a = MakeEnvelope("alice", "a", 1, 20000);
  Envelope b = MakeEnvelope("alice", "b", 1, 5);
  Envelope other = MakeEnvelope("bob", "c", 1, 5);
  ASSERT_OK(As(kAlice).Put(a.header, a.ciphertext).status());
  ASSERT_OK(As(kAlice).Put(b.header, b.ciphertext).status());
  ASSERT_OK(As(kBob).Put(other.header, other.ciphertext).status());
  ASSERT_OK_AND_ASSIGN(std::vector<v1::ExportResponse> items,
                       As(kOperator).Export("alice"));
  std::map<std::string, std::string> exported;
  std::string current;
  for (const auto& item : items) {
    if (item.has_object()) {
      current = item.object().header().object().object_id();
      exported[current];
    } else {
      exported[current] += item.data();
    }
  }
  ASSERT_EQ(exported.size(), 2u);
  EXPECT_TRUE(exported["a"] == a.ciphertext);
  EXPECT_TRUE(exported["b"] == b.ciphertext);
}

// ------------------------------------------------------------- refusals

TEST_F(StorageNodeTest, OnlyTheOperatorMayExport) {
  for (const char* who : {kAlice, kAuthority}) {
    EXPECT_THAT(As(who).Export("alice").status(),
                StatusIs(absl::StatusCode::kPermissionDenied,
                         HasSubstr("only the node's operator")))
        << who;
  }
}

TEST_F(StorageNodeTest, UsersTouchOnlyTheirOwnObjects) {
  Envelope e = MakeEnvelope("alice", "a", 1, 10);
  EXPECT_THAT(As(kBob).Put(e.header, e.ciphertext).status(),
              StatusIs(absl::StatusCode::kPermissionDenied,
                       HasSubstr("residency://user/bob may not write")));
  ExpectNothingStored(e.header.object());
  ASSERT_OK(As(kAlice).Put(e.header, e.ciphertext).status());
  EXPECT_THAT(As(kBob).Get(e.header.object()).status(),
              StatusIs(absl::StatusCode::kPermissionDenied));
  EXPECT_THAT(As(kBob).Head(e.header.object()).status(),
              StatusIs(absl::StatusCode::kPermissionDenied));
  v1::DeleteRequest del;
  *del.mutable_object() = e.header.object();
  EXPECT_THAT(As(kBob).Unary(&StorageNode::Stub::Delete, del).status(),
              StatusIs(absl::StatusCode::kPermissionDenied));
  v1::ListRequest list;
  list.set_owner("alice");
  EXPECT_THAT(As(kBob).Unary(&StorageNode::Stub::List, list).status(),
              StatusIs(absl::StatusCode::kPermissionDenied));
}

TEST_F(StorageNodeTest, OtherKindsNamedLikeTheOwnerAreRefused) {
  Envelope e = MakeEnvelope("alice", "a", 1, 10);
  ASSERT_OK(As(kAlice).Put(e.header, e.ciphertext).status());
  for (const char* who :
       {"residency://operator/alice", "residency://service/alice",
        "residency://authority/alice"}) {
    EXPECT_THAT(As(who).Get(e.header.object()).status(),
                StatusIs(absl::StatusCode::kPermissionDenied))
        << who;
    Envelope e2 = MakeEnvelope("alice", "a", 2, 10);
    EXPECT_THAT(As(who).Put(e2.header, e2.ciphertext).status(),
                StatusIs(absl::StatusCode::kPermissionDenied))
        << who;
  }
}

TEST_F(StorageNodeTest, OnlyThisNodesOperatorMayExportOrSeeAllStats) {
  Envelope e = MakeEnvelope("alice", "a", 1, 10);
  ASSERT_OK(As(kAlice).Put(e.header, e.ciphertext).status());
  constexpr char kOtherOperator[] = "residency://operator/us-ops";
  EXPECT_THAT(
      As(kOtherOperator).Export("alice").status(),
      StatusIs(absl::StatusCode::kPermissionDenied, HasSubstr(kOperator)));
  EXPECT_THAT(As(kOtherOperator)
                  .Unary(&StorageNode::Stub::Stats, v1::StatsRequest())
                  .status(),
              StatusIs(absl::StatusCode::kPermissionDenied));
  EXPECT_OK(As(kOperator).Export("alice").status());
}

TEST_F(StorageNodeTest, OversizedHeaderIsRefused) {
  Envelope e = MakeEnvelope("alice", "a", 1, 10);
  e.header.mutable_wrapped_keys(0)->set_key_service(std::string(20000, 's'));
  EXPECT_THAT(As(kAlice).Put(e.header, e.ciphertext).status(),
              StatusIs(absl::StatusCode::kInvalidArgument,
                       HasSubstr("the limit is 16384")));
  ExpectNothingStored(e.header.object());
}

TEST_F(StorageNodeTest, EmptyResidencyRuleAllowsAnyNode) {
  Envelope e = MakeEnvelope("alice", "a", 1, 10);
  e.header.mutable_residency()->clear_allowed_jurisdictions();
  EXPECT_OK(As(kAlice).Put(e.header, e.ciphertext).status());
}

TEST_F(StorageNodeTest, OperatorMayNotWriteReadOrDelete) {
  Envelope e = MakeEnvelope("alice", "a", 1, 10);
  ASSERT_OK(As(kAlice).Put(e.header, e.ciphertext).status());
  Envelope e2 = MakeEnvelope("alice", "a", 2, 10);
  EXPECT_THAT(As(kOperator).Put(e2.header, e2.ciphertext).status(),
              StatusIs(absl::StatusCode::kPermissionDenied));
  v1::DeleteRequest del;
  *del.mutable_object() = e.header.object();
  EXPECT_THAT(As(kOperator).Unary(&StorageNode::Stub::Delete, del).status(),
              StatusIs(absl::StatusCode::kPermissionDenied));
  EXPECT_THAT(As(kOperator).Get(e.header.object()).status(),
              StatusIs(absl::StatusCode::kPermissionDenied));
  EXPECT_OK(As(kAlice).Head(e.header.object()).status());
}

TEST_F(StorageNodeTest, DisallowedResidencyIsRefusedNamingBoth) {
  Envelope e = MakeEnvelope("alice", "a", 1, 10);
  e.header.mutable_residency()->clear_allowed_jurisdictions();
  e.header.mutable_residency()->add_allowed_jurisdictions("US");
  EXPECT_THAT(As(kAlice).Put(e.header, e.ciphertext).status(),
              StatusIs(absl::StatusCode::kFailedPrecondition,
                       ::testing::AllOf(HasSubstr("only in US"),
                                        HasSubstr("node is in CN"))));
  ExpectNothingStored(e.header.object());
}

TEST_F(StorageNodeTest, MalformedEnvelopesAreRefusedAndNothingStored) {
  struct Case {
    const char* name;
    std::function<void(ObjectHeader&)> spoil;
    const char* message;
  };
  const std::vector<Case> cases = {
      {"wrong ciphertext length",
       [](ObjectHeader& h) {
         h.set_ciphertext_length(h.ciphertext_length() + 1);
       },
       "not a valid chunked-encryption length"},
      {"unknown algorithm",
       [](ObjectHeader& h) {
         h.set_payload_algorithm(v1::PAYLOAD_ALGORITHM_UNSPECIFIED);
       },
       "unknown payload algorithm"},
      {"no wrapped DEK", [](ObjectHeader& h) { h.clear_wrapped_keys(); },
       "no wrapped data key"},
      {"short wrapped DEK",
       [](ObjectHeader& h) {
         h.mutable_wrapped_keys(0)->mutable_wrapped()->resize(59);
       },
       "59 bytes"},
      {"custody mode without its keys",
       [](ObjectHeader& h) { h.set_custody_mode(v1::CUSTODY_MODE_SPLIT); },
       "SPLIT custody"},
      {"version 0", [](ObjectHeader& h) { h.mutable_object()->set_version(0); },
       "version"},
  };
  for (const Case& c : cases) {
    Envelope e = MakeEnvelope("alice", "a", 1, 100);
    c.spoil(e.header);
    EXPECT_THAT(
        As(kAlice).Put(e.header, e.ciphertext).status(),
        StatusIs(absl::StatusCode::kInvalidArgument, HasSubstr(c.message)))
        << c.name;
    v1::ObjectRef object = e.header.object();
    object.set_version(1);
    ExpectNothingStored(object);
  }
}

TEST_F(StorageNodeTest, HeaderThatDoesNotParseIsRefused) {
  // proto3 strings must be UTF-8: these bytes go out on the wire but do not
  // parse at the node.
  Envelope e = MakeEnvelope("alice", "a", 1, 100);
  e.header.mutable_object()->set_object_id("bad\xff\xfe");
  EXPECT_THAT(
      As(kAlice).Put(e.header, e.ciphertext).status(),
      StatusIs(absl::StatusCode::kInvalidArgument, HasSubstr("did not parse")));
  EXPECT_EQ(server_->core().store().pending_uploads(), 0u);
}

TEST_F(StorageNodeTest, StreamsOutOfOrderAreRefused) {
  Envelope e = MakeEnvelope("alice", "a", 1, 100);
  std::vector<v1::PutRequest> messages =
      Client::Messages(e.header, e.ciphertext);
  // Data before start.
  std::vector<v1::PutRequest> data_first(messages.begin() + 1, messages.end());
  EXPECT_THAT(As(kAlice).PutMessages(data_first).status(),
              StatusIs(absl::StatusCode::kInvalidArgument,
                       HasSubstr("first Put message must be `start`")));
  // A second start.
  std::vector<v1::PutRequest> two_starts = messages;
  two_starts.push_back(messages[0]);
  EXPECT_THAT(As(kAlice).PutMessages(two_starts).status(),
              StatusIs(absl::StatusCode::kInvalidArgument,
                       HasSubstr("second `start`")));
  // An empty message.
  std::vector<v1::PutRequest> empty = messages;
  empty.insert(empty.begin() + 1, v1::PutRequest());
  EXPECT_THAT(As(kAlice).PutMessages(empty).status(),
              StatusIs(absl::StatusCode::kInvalidArgument,
                       HasSubstr("carries nothing")));
  ExpectNothingStored(e.header.object());
}

TEST_F(StorageNodeTest, BytesAfterTheDeclaredLengthAreRefused) {
  Envelope e = MakeEnvelope("alice", "a", 1, 100);
  std::vector<v1::PutRequest> messages =
      Client::Messages(e.header, e.ciphertext + "x");
  EXPECT_THAT(As(kAlice).PutMessages(messages).status(),
              StatusIs(absl::StatusCode::kInvalidArgument,
                       HasSubstr("1 bytes after the declared length")));
  ExpectNothingStored(e.header.object());
}

TEST_F(StorageNodeTest, TruncatedUploadNeverAppears) {
  Envelope e = MakeEnvelope("alice", "a", 1, 50000);
  EXPECT_THAT(
      As(kAlice)
          .Put(e.header, absl::string_view(e.ciphertext).substr(0, 40000))
          .status(),
      StatusIs(absl::StatusCode::kInvalidArgument,
               HasSubstr("stream ended after 40000 of")));
  ExpectNothingStored(e.header.object());
}

TEST_F(StorageNodeTest, CancelledUploadNeverAppears) {
  Envelope e = MakeEnvelope("alice", "a", 1, 200000);
  std::vector<v1::PutRequest> messages =
      Client::Messages(e.header, e.ciphertext, 10000);
  // Every byte goes out, but the stream is cancelled instead of closed: the
  // upload must be abandoned, not committed.
  EXPECT_THAT(As(kAlice)
                  .PutMessages(messages, /*cancel_after=*/messages.size())
                  .status(),
              StatusIs(absl::StatusCode::kCancelled));
  ExpectNothingStored(e.header.object());
}

// A Put stream that has sent its start and then waits, held open.
struct OpenPut {
  grpc::ClientContext context;
  v1::PutResponse response;
  std::unique_ptr<grpc::ClientWriter<v1::PutRequest>> writer;
};

std::unique_ptr<OpenPut> StartPut(const std::string& target,
                                  const tls::Identity& who,
                                  const ObjectHeader& header) {
  auto put = std::make_unique<OpenPut>();
  auto channel = tls::MakeChannel(target, who.Material());
  EXPECT_OK(channel.status());
  put->writer =
      StorageNode::NewStub(*channel)->Put(&put->context, &put->response);
  EXPECT_TRUE(put->writer->Write(Client::Messages(header, "")[0]));
  return put;
}

TEST_F(StorageNodeTest, IdleStreamIsCancelledAndLeavesNothing) {
  ASSERT_OK_AND_ASSIGN(tls::Identity alice, ca_->Issue(kAlice));
  Envelope e = MakeEnvelope("alice", "idle", 1, 100);
  std::unique_ptr<OpenPut> put = StartPut(server_->address(), alice, e.header);
  // Nothing more is sent; the node gives up after its idle timeout (2 s
  // here) and abandons the upload.
  EXPECT_THAT(rpc::FromGrpcStatus(put->writer->Finish()),
              StatusIs(absl::StatusCode::kCancelled));
  ExpectNothingStored(e.header.object());
}

// A slow-loris upload: one byte a second is not progress (the node asks
// for 64 KiB per idle period, 2 s here). It is cancelled, leaves nothing,
// and other clients are served meanwhile.
TEST_F(StorageNodeTest, TricklingStreamIsCancelledAndOthersAreServed) {
  ASSERT_OK_AND_ASSIGN(tls::Identity alice, ca_->Issue(kAlice));
  Envelope e = MakeEnvelope("alice", "trickle", 1, 100000);
  std::unique_ptr<OpenPut> put = StartPut(server_->address(), alice, e.header);
  // At most 10 bytes (10 s): the node should cancel long before. Were it
  // not to, the stream ends short and the node's answer is not CANCELLED.
  std::thread trickle([&] {
    for (size_t i = 0; i < 10; ++i) {
      v1::PutRequest data;
      data.set_data(e.ciphertext.substr(i, 1));
      if (!put->writer->Write(data)) return;  // the node cancelled it
      std::this_thread::sleep_for(std::chrono::seconds(1));
    }
    put->writer->WritesDone();
  });
  // Bob stores and reads while alice trickles.
  Envelope other = MakeEnvelope("bob", "meanwhile", 1, 200000);
  ASSERT_OK(As(kBob).Put(other.header, other.ciphertext, 65536).status());
  ASSERT_OK_AND_ASSIGN(Client::Got got, As(kBob).Get(other.header.object()));
  EXPECT_TRUE(got.data == other.ciphertext);

  trickle.join();
  EXPECT_THAT(rpc::FromGrpcStatus(put->writer->Finish()),
              StatusIs(absl::StatusCode::kCancelled));
  ExpectNothingStored(e.header.object());
}

// --max_streams N means N calls at once, each on its own handler thread:
// gRPC's own polling threads must not eat into them (they count against
// the same thread quota).
TEST_F(StorageNodeTest, AsManyConcurrentStreamsAsHandlerThreadsAreServed) {
  constexpr int kStreams = 6;
  ASSERT_OK_AND_ASSIGN(StorageNodeServerOptions options,
                       NodeOptions(dir_ + "/threads"));
  options.max_threads = kStreams;
  ASSERT_OK_AND_ASSIGN(std::unique_ptr<StorageNodeServer> node,
                       StorageNodeServer::Start(std::move(options)));
  std::vector<Envelope> envelopes;
  std::vector<std::unique_ptr<OpenPut>> open;
  for (int i = 0; i < kStreams; ++i) {
    const std::string user = absl::StrCat("u", i);
    ASSERT_OK_AND_ASSIGN(tls::Identity who,
                         ca_->Issue(absl::StrCat("residency://user/", user)));
    envelopes.push_back(MakeEnvelope(user, "o", 1, 50000));
    open.push_back(StartPut(node->address(), who, envelopes.back().header));
  }
  // Every stream is open (each holds a handler thread) before any ends.
  std::this_thread::sleep_for(std::chrono::milliseconds(300));
  for (int i = 0; i < kStreams; ++i) {
    v1::PutRequest data;
    data.set_data(envelopes[i].ciphertext);
    open[i]->writer->Write(data);
    open[i]->writer->WritesDone();
  }
  for (int i = 0; i < kStreams; ++i) {
    EXPECT_OK(rpc::FromGrpcStatus(open[i]->writer->Finish())) << i;
  }
}

TEST_F(StorageNodeTest, CallsPerPrincipalAreCapped) {
  ASSERT_OK_AND_ASSIGN(tls::Identity alice, ca_->Issue(kAlice));
  std::vector<std::unique_ptr<OpenPut>> open;
  for (int i = 0; i < 4; ++i) {
    open.push_back(
        StartPut(server_->address(), alice,
                 MakeEnvelope("alice", absl::StrCat("o", i), 1, 10).header));
  }
  // Wait until the node has taken all four.
  Envelope e = MakeEnvelope("alice", "fifth", 1, 10);
  absl::Status fifth;
  for (int i = 0; i < 50; ++i) {
    fifth = As(kAlice).Put(e.header, e.ciphertext).status();
    if (absl::IsResourceExhausted(fifth)) break;
    std::this_thread::sleep_for(std::chrono::milliseconds(20));
  }
  EXPECT_THAT(fifth, StatusIs(absl::StatusCode::kResourceExhausted,
                              HasSubstr("already has 4 calls")));
  // Other callers are not affected.
  Envelope other = MakeEnvelope("bob", "b", 1, 10);
  EXPECT_OK(As(kBob).Put(other.header, other.ciphertext).status());
  for (auto& put : open) put->context.TryCancel();
  for (auto& put : open) put->writer->Finish();
}

TEST_F(StorageNodeTest, OversizedMessageIsRefused) {
  Envelope e = MakeEnvelope("alice", "a", 1, 3 << 20);
  EXPECT_THAT(As(kAlice).Put(e.header, e.ciphertext, 2 << 20).status(),
              StatusIs(absl::StatusCode::kResourceExhausted));
  ExpectNothingStored(e.header.object());
}

TEST_F(StorageNodeTest, MissingMetadataIsInvalid) {
  v1::HeadRequest request;
  request.mutable_object()->set_owner("alice");
  request.mutable_object()->set_object_id("a");
  grpc::ClientContext context;
  v1::HeadResponse response;
  ASSERT_OK_AND_ASSIGN(tls::Identity alice, ca_->Issue(kAlice));
  ASSERT_OK_AND_ASSIGN(auto channel,
                       tls::MakeChannel(server_->address(), alice.Material()));
  auto stub = StorageNode::NewStub(channel);
  EXPECT_THAT(
      rpc::FromGrpcStatus(stub->Head(&context, request, &response)),
      StatusIs(absl::StatusCode::kInvalidArgument, HasSubstr("request_id")));
}

// A channel presenting `who` as its client certificate, built without the
// checks MakeChannel makes (a misbehaving client skips them).
Client RawClient(const std::string& target, const tls::CertificateAuthority& ca,
                 const tls::Identity& who) {
  grpc::SslCredentialsOptions ssl;
  ssl.pem_root_certs = ca.certificate_pem();
  ssl.pem_cert_chain = who.certificate_pem;
  ssl.pem_private_key = std::string(who.private_key_pem.view());
  return Client(grpc::CreateChannel(target, grpc::SslCredentials(ssl)));
}

TEST_F(StorageNodeTest, HostileCertificatesAreRefusedAndOthersServed) {
  Envelope e = MakeEnvelope("alice", "a", 1, 10);
  ASSERT_OK(As(kAlice).Put(e.header, e.ciphertext).status());
  // Expired: the handshake fails.
  ASSERT_OK_AND_ASSIGN(tls::Identity expired,
                       ca_->Issue(kAlice, {.expired = true}));
  EXPECT_THAT(RawClient(server_->address(), *ca_, expired)
                  .Head(e.header.object())
                  .status(),
              StatusIs(absl::StatusCode::kUnavailable));
  // Signed by another CA, naming alice: the handshake fails.
  ASSERT_OK_AND_ASSIGN(tls::CertificateAuthority other,
                       tls::CertificateAuthority::Create("other-ca"));
  ASSERT_OK_AND_ASSIGN(tls::Identity forged, other.Issue(kAlice));
  {
    grpc::SslCredentialsOptions ssl;
    ssl.pem_root_certs = ca_->certificate_pem();
    ssl.pem_cert_chain = forged.certificate_pem;
    ssl.pem_private_key = std::string(forged.private_key_pem.view());
    Client client(
        grpc::CreateChannel(server_->address(), grpc::SslCredentials(ssl)));
    EXPECT_THAT(client.Head(e.header.object()).status(),
                StatusIs(absl::StatusCode::kUnavailable));
  }
  // Our CA, but an identity that is no residency user (a service SAN):
  // it reaches the node and is refused there.
  ASSERT_OK_AND_ASSIGN(tls::Identity service,
                       ca_->Issue("residency://service/rogue"));
  EXPECT_THAT(RawClient(server_->address(), *ca_, service)
                  .Head(e.header.object())
                  .status(),
              StatusIs(absl::StatusCode::kPermissionDenied));
  // The node the client expects is named by its certificate: a client that
  // wants another host name than the node's certificate carries refuses
  // the connection.
  {
    ASSERT_OK_AND_ASSIGN(tls::Identity alice, ca_->Issue(kAlice));
    grpc::SslCredentialsOptions ssl;
    ssl.pem_root_certs = ca_->certificate_pem();
    ssl.pem_cert_chain = alice.certificate_pem;
    ssl.pem_private_key = std::string(alice.private_key_pem.view());
    grpc::ChannelArguments args;
    args.SetSslTargetNameOverride("not-the-node.example");
    Client client(grpc::CreateCustomChannel(server_->address(),
                                            grpc::SslCredentials(ssl), args));
    EXPECT_THAT(client.Head(e.header.object()).status(),
                StatusIs(absl::StatusCode::kUnavailable));
  }
  // None of it disturbed the node.
  ASSERT_OK_AND_ASSIGN(Client::Got got, As(kAlice).Get(e.header.object()));
  EXPECT_TRUE(got.data == e.ciphertext);
}

TEST_F(StorageNodeTest, ClientWithoutCertificateIsRefused) {
  Envelope e = MakeEnvelope("alice", "a", 1, 10);
  ASSERT_OK(As(kAlice).Put(e.header, e.ciphertext).status());  // control
  grpc::SslCredentialsOptions ssl;
  ssl.pem_root_certs = ca_->certificate_pem();
  Client anonymous(
      grpc::CreateChannel(server_->address(), grpc::SslCredentials(ssl)));
  EXPECT_THAT(anonymous.Head(e.header.object()).status(),
              StatusIs(absl::StatusCode::kUnavailable));
}

// The store seam: a node opened with another store writes to it and not to
// RocksDB (the storage benchmark's baseline node).
TEST(StorageNodeStoreSeamTest, NodeUsesTheStoreItIsGiven) {
  TempDir temp;
  ASSERT_OK_AND_ASSIGN(const std::string dir, temp.Make("storage_node_seam"));
  ASSERT_OK_AND_ASSIGN(tls::CertificateAuthority ca,
                       tls::CertificateAuthority::Create("test-ca"));
  ASSERT_OK_AND_ASSIGN(tls::Identity node,
                       ca.Issue("residency://service/cn-node"));
  DiscardingObjectStore* discarding = nullptr;
  std::string opened_dir;
  StorageNodeServerOptions options;
  options.tls = node.Material();
  options.jurisdiction = "CN";
  options.operator_principal = kOperator;
  options.data_dir = dir + "/node";
  options.open_store = [&](const std::string& store_dir,
                           const ObjectStoreOptions&)
      -> absl::StatusOr<std::unique_ptr<ObjectStore>> {
    opened_dir = store_dir;
    auto store = std::make_unique<DiscardingObjectStore>();
    discarding = store.get();
    return std::unique_ptr<ObjectStore>(std::move(store));
  };
  ASSERT_OK_AND_ASSIGN(std::unique_ptr<StorageNodeServer> server,
                       StorageNodeServer::Start(std::move(options)));
  EXPECT_EQ(opened_dir, dir + "/node/objects");
  ASSERT_NE(discarding, nullptr);

  ASSERT_OK_AND_ASSIGN(tls::Identity alice, ca.Issue(kAlice));
  ASSERT_OK_AND_ASSIGN(std::shared_ptr<grpc::Channel> channel,
                       tls::MakeChannel(server->address(), alice.Material()));
  Client client(channel);
  Envelope e = MakeEnvelope("alice", "a", 1, 100000);
  ASSERT_OK(client.Put(e.header, e.ciphertext, 10000).status());
  EXPECT_EQ(discarding->committed_versions(), 1u);
  EXPECT_EQ(discarding->committed_bytes(), e.ciphertext.size());
  EXPECT_THAT(client.Head(e.header.object()).status(),
              StatusIs(absl::StatusCode::kNotFound));
  // RocksDB was never opened.
  EXPECT_FALSE(std::filesystem::exists(dir + "/node/objects"));
}

// A node whose RocksDB writes through a FaultFileSystem, restartable on the
// same data directory with the disk healthy again.
class StorageNodeFaultTest : public ::testing::Test {
 protected:
  void SetUp() override {
    ASSERT_OK_AND_ASSIGN(dir_, temp_.Make("storage_node_fault"));
    ASSERT_OK_AND_ASSIGN(tls::CertificateAuthority ca,
                         tls::CertificateAuthority::Create("test-ca"));
    ca_.emplace(std::move(ca));
    ASSERT_OK_AND_ASSIGN(node_, ca_->Issue("residency://service/cn-node"));
    ASSERT_OK_AND_ASSIGN(alice_, ca_->Issue(kAlice));
    Start(std::make_shared<testing::FaultFileSystem>());
  }
  void TearDown() override {
    client_.reset();
    server_.reset();
  }

  void Start(std::shared_ptr<testing::FaultFileSystem> fs) {
    client_.reset();
    server_.reset();
    fs_ = std::move(fs);
    StorageNodeServerOptions options;
    options.tls = node_->Material();
    options.jurisdiction = "CN";
    options.operator_principal = kOperator;
    options.data_dir = dir_ + "/node";
    options.store.segment_bytes = 4096;
    options.store.resume_every = absl::Milliseconds(20);
    options.open_store = [fs = fs_](const std::string& store_dir,
                                    const ObjectStoreOptions& store_options) {
      ObjectStoreOptions with_faults = store_options;
      with_faults.file_system = fs;
      return ObjectStore::Open(store_dir, std::move(with_faults));
    };
    ASSERT_OK_AND_ASSIGN(server_, StorageNodeServer::Start(std::move(options)));
    ASSERT_OK_AND_ASSIGN(
        std::shared_ptr<grpc::Channel> channel,
        tls::MakeChannel(server_->address(), alice_->Material()));
    client_ = std::make_unique<Client>(channel);
  }

  // What the node's health service reports.
  absl::StatusOr<bool> Serving() {
    absl::StatusOr<std::shared_ptr<grpc::Channel>> channel =
        tls::MakeChannel(server_->address(), alice_->Material());
    if (!channel.ok()) return channel.status();
    return rpc::IsServing(*channel, "residency.v1.StorageNode");
  }

  // `e` is stored whole: the node returns exactly its ciphertext.
  void ExpectStored(const Envelope& e) {
    ASSERT_OK_AND_ASSIGN(Client::Got got, client_->Get(e.header.object()));
    EXPECT_TRUE(got.data == e.ciphertext)
        << e.header.object().object_id() << " differs";
  }

  TempDir temp_;
  std::string dir_;
  std::optional<tls::CertificateAuthority> ca_;
  std::optional<tls::Identity> node_;
  std::optional<tls::Identity> alice_;
  std::shared_ptr<testing::FaultFileSystem> fs_;
  std::unique_ptr<StorageNodeServer> server_;
  std::unique_ptr<Client> client_;
};

TEST_F(StorageNodeFaultTest, FullDiskIsResourceExhaustedAndLosesNothing) {
  const Envelope before = MakeEnvelope("alice", "before", 1, 50000);
  ASSERT_OK(client_->Put(before.header, before.ciphertext, 10000).status());

  fs_->set_fault(testing::FaultFileSystem::Fault::kDiskFull);
  const Envelope refused = MakeEnvelope("alice", "refused", 1, 50000);
  EXPECT_THAT(client_->Put(refused.header, refused.ciphertext, 10000).status(),
              StatusIs(absl::StatusCode::kResourceExhausted,
                       HasSubstr("no space left")));
  EXPECT_GT(fs_->injected(), 0u);
  // Writes are refused now, and health says so.
  EXPECT_THAT(Serving(), IsOkAndHolds(false));
  // What was acknowledged is still served; the refused object is not.
  ExpectStored(before);
  EXPECT_THAT(client_->Head(refused.header.object()).status(),
              StatusIs(absl::StatusCode::kNotFound));

  // While the disk stays full, a write is refused as such, and the node's
  // own tries to resume (every resume_every) change nothing.
  const Envelope also = MakeEnvelope("alice", "also", 1, 50000);
  EXPECT_THAT(client_->Put(also.header, also.ciphertext, 10000).status(),
              StatusIs(absl::StatusCode::kResourceExhausted,
                       HasSubstr("the disk is still full")));
  const uint64_t asked = fs_->free_space_asked();
  for (int i = 0; i < 1500 && fs_->free_space_asked() < asked + 3; ++i) {
    absl::SleepFor(absl::Milliseconds(20));
  }
  EXPECT_GE(fs_->free_space_asked(), asked + 3);
  EXPECT_THAT(Serving(), IsOkAndHolds(false));

  // Space comes back: the node resumes by itself, with no write to prompt
  // it, and says so; then it stores again.
  fs_->set_fault(testing::FaultFileSystem::Fault::kNone);
  absl::StatusOr<bool> serving = Serving();
  for (int i = 0; i < 1500 && serving.ok() && !*serving; ++i) {
    absl::SleepFor(absl::Milliseconds(20));
    serving = Serving();
  }
  EXPECT_THAT(serving, IsOkAndHolds(true));
  const Envelope during = MakeEnvelope("alice", "during", 1, 50000);
  ASSERT_OK(client_->Put(during.header, during.ciphertext, 10000).status());
  ExpectStored(during);

  // A restart finds what was acknowledged, nothing of the refused objects
  // and no upload left pending, and writes again.
  Start(std::make_shared<testing::FaultFileSystem>());
  ExpectStored(before);
  ExpectStored(during);
  EXPECT_THAT(client_->Head(also.header.object()).status(),
              StatusIs(absl::StatusCode::kNotFound));
  EXPECT_THAT(Serving(), IsOkAndHolds(true));
  const Envelope after = MakeEnvelope("alice", "after", 1, 50000);
  ASSERT_OK(client_->Put(after.header, after.ciphertext, 10000).status());
  ExpectStored(after);
  EXPECT_THAT(client_->Head(refused.header.object()).status(),
              StatusIs(absl::StatusCode::kNotFound));
  EXPECT_EQ(server_->core().store().pending_uploads(), 0u);
}

// The first write after a start fails on a full disk: the memtable is
// empty, so RocksDB would keep the log writer that failed. Once there is
// space again the node does not write through it (RocksDB 7.8 then fails
// every write, or aborts the process with its assertions on): it refuses
// writes with a message to restart, serves reads, and after a restart
// writes again and has lost nothing.
TEST_F(StorageNodeFaultTest, AFullDiskOnTheFirstWriteAsksForARestart) {
  fs_->set_fault(testing::FaultFileSystem::Fault::kDiskFull);
  const Envelope refused = MakeEnvelope("alice", "refused", 1, 50000);
  EXPECT_THAT(client_->Put(refused.header, refused.ciphertext, 10000).status(),
              StatusIs(absl::StatusCode::kResourceExhausted));
  fs_->set_fault(testing::FaultFileSystem::Fault::kNone);
  // Time for a recovery of RocksDB's own, which the store turns off.
  absl::SleepFor(absl::Milliseconds(300));
  for (int i = 0; i < 2; ++i) {
    const Envelope next =
        MakeEnvelope("alice", absl::StrCat("next-", i), 1, 50000);
    EXPECT_THAT(client_->Put(next.header, next.ciphertext, 10000).status(),
                StatusIs(absl::StatusCode::kUnavailable,
                         HasSubstr("restart the node")));
  }
  EXPECT_THAT(Serving(), IsOkAndHolds(false));
  EXPECT_THAT(client_->Head(refused.header.object()).status(),
              StatusIs(absl::StatusCode::kNotFound));

  Start(std::make_shared<testing::FaultFileSystem>());
  EXPECT_THAT(Serving(), IsOkAndHolds(true));
  const Envelope after = MakeEnvelope("alice", "after", 1, 50000);
  ASSERT_OK(client_->Put(after.header, after.ciphertext, 10000).status());
  ExpectStored(after);
  EXPECT_THAT(client_->Head(refused.header.object()).status(),
              StatusIs(absl::StatusCode::kNotFound));
  EXPECT_EQ(server_->core().store().pending_uploads(), 0u);
}

TEST_F(StorageNodeFaultTest, FailedSyncIsUnavailableAndLosesNothing) {
  const Envelope before = MakeEnvelope("alice", "before", 1, 50000);
  ASSERT_OK(client_->Put(before.header, before.ciphertext, 10000).status());

  fs_->set_fault(testing::FaultFileSystem::Fault::kSyncFails);
  const Envelope unsynced = MakeEnvelope("alice", "unsynced", 1, 50000);
  EXPECT_THAT(
      client_->Put(unsynced.header, unsynced.ciphertext, 10000).status(),
      StatusIs(absl::StatusCode::kUnavailable, HasSubstr("fsync failed")));
  EXPECT_GT(fs_->injected(), 0u);
  ExpectStored(before);
  // While syncs fail, no write is acknowledged.
  const Envelope also = MakeEnvelope("alice", "also", 1, 1000);
  EXPECT_THAT(client_->Put(also.header, also.ciphertext, 10000).status(),
              StatusIs(absl::StatusCode::kUnavailable));
  // A resume was tried and refused by now, by that write or by the node's
  // own tries (a resume reads the free space first).
  const uint64_t asked = fs_->free_space_asked();
  EXPECT_GT(asked, 0u);

  // What reached the disk is unknown after a failed sync: writes stay
  // refused, even with the disk sound again and the node's own tries to
  // resume (every resume_every) given time, until the node restarts.
  fs_->set_fault(testing::FaultFileSystem::Fault::kNone);
  absl::SleepFor(absl::Milliseconds(200));
  EXPECT_THAT(Serving(), IsOkAndHolds(false));
  const Envelope after = MakeEnvelope("alice", "after", 1, 50000);
  EXPECT_THAT(
      client_->Put(after.header, after.ciphertext, 10000).status(),
      StatusIs(absl::StatusCode::kUnavailable, HasSubstr("restart the node")));
  EXPECT_THAT(Serving(), IsOkAndHolds(false));
  // The refusal is remembered: neither the node's own tries nor the write
  // above resumed again.
  EXPECT_EQ(fs_->free_space_asked(), asked);
  ExpectStored(before);

  Start(std::make_shared<testing::FaultFileSystem>());
  EXPECT_THAT(Serving(), IsOkAndHolds(true));
  ASSERT_OK(client_->Put(after.header, after.ciphertext, 10000).status());
  ExpectStored(before);
  ExpectStored(after);
  // The unacknowledged object was written before its sync failed: after a
  // restart it may be there or not, but never in part.
  for (const Envelope* e : {&unsynced, &also}) {
    absl::StatusOr<Client::Got> got = client_->Get(e->header.object());
    if (got.ok()) {
      EXPECT_TRUE(got->data == e->ciphertext);
    } else {
      EXPECT_THAT(got.status(), StatusIs(absl::StatusCode::kNotFound));
    }
  }
  EXPECT_EQ(server_->core().store().pending_uploads(), 0u);
}

TEST_F(StorageNodeTest, HealthServiceReportsServing) {
  ASSERT_OK_AND_ASSIGN(tls::Identity identity, ca_->Issue(kAlice));
  ASSERT_OK_AND_ASSIGN(
      std::shared_ptr<grpc::Channel> channel,
      tls::MakeChannel(server_->address(), identity.Material()));
  EXPECT_THAT(rpc::IsServing(channel, "residency.v1.StorageNode"),
              IsOkAndHolds(true));
  server_->Shutdown(absl::ZeroDuration());
  EXPECT_THAT(rpc::IsServing(channel, "residency.v1.StorageNode"),
              ::testing::Not(IsOkAndHolds(true)));
}

}  // namespace
}  // namespace residency::storage_node
