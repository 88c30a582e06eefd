// storage_node processes as stateless gateways over one Ceph pool
// (--store=rados): what one stores another reads, lists and deletes;
// concurrent Puts of one object through two gateways never share a
// version; an OSD that stops in the middle of a Put loses nothing that was
// acknowledged.
#include <signal.h>
#include <unistd.h>

#include <atomic>
#include <filesystem>
#include <map>
#include <memory>
#include <optional>
#include <random>
#include <set>
#include <string>
#include <thread>
#include <vector>

#include "absl/strings/escaping.h"
#include "absl/strings/str_cat.h"
#include "gmock/gmock.h"
#include "gtest/gtest.h"
#include "residency/v1/storage.grpc.pb.h"
#include "rpc/process.h"
#include "rpc/status.h"
#include "storage_node/ceph_cluster.h"
#include "storage_node/node_test_client.h"
#include "tests/ceph_test_cluster.h"
#include "tests/status_matchers.h"
#include "tests/temp_dir.h"
#include "tls/credentials.h"
#include "tls/pki.h"

namespace residency::storage_node {
namespace {

using ::residency::process::ServerProcess;
using ::residency::storage_node::testing::GetAndCheck;
using ::residency::storage_node::testing::Header;
using ::residency::storage_node::testing::PutPattern;
using ::residency::testing::StatusIs;
using ::residency::testing::TempDir;
using ::residency::v1::StorageNode;
using ::testing::HasSubstr;

class GatewaysTest : public ::testing::Test {
 protected:
  void SetUp() override {
    ASSERT_OK_AND_ASSIGN(dir_, temp_.Make("gateways_test"));
    ASSERT_OK_AND_ASSIGN(tls::CertificateAuthority ca,
                         tls::CertificateAuthority::Create("gateways-ca"));
    ASSERT_OK_AND_ASSIGN(tls::Identity node,
                         ca.Issue("residency://service/cn-gateway"));
    ASSERT_OK(node.WriteFiles(dir_, "node"));
    ASSERT_OK_AND_ASSIGN(alice_, ca.Issue("residency://user/alice"));
    ASSERT_OK_AND_ASSIGN(operator_,
                         ca.Issue("residency://operator/cn-telecom"));
    std::random_device random;
    namespace_ = absl::StrCat("gw-", ::getpid(), "-", random());
  }

  void TearDown() override { gateways_.clear(); }

  // Starts gateway `name` over `conf`'s pool, in this test's namespace.
  absl::StatusOr<std::unique_ptr<ServerProcess>> StartGateway(
      const std::string& name, const std::string& conf,
      const std::string& op_timeout = "10s") {
    return ServerProcess::Start(
        STORAGE_NODE_BINARY,
        {"--store=rados", "--rados_conf=" + conf,
         std::string("--rados_pool=") + residency::testing::kCephTestPool,
         "--rados_namespace=" + namespace_, "--rados_op_timeout=" + op_timeout,
         "--jurisdiction=CN",
         "--operator_principal=residency://operator/cn-telecom",
         "--tls_ca=" + dir_ + "/ca.crt", "--tls_cert=" + dir_ + "/node.crt",
         "--tls_key=" + dir_ + "/node.key"},
        dir_, name);
  }

  void StartGateways(const std::string& conf, int count) {
    for (int i = 0; i < count; ++i) {
      absl::StatusOr<std::unique_ptr<ServerProcess>> gateway =
          StartGateway(absl::StrCat("gateway-", i), conf);
      ASSERT_OK(gateway.status());
      gateways_.push_back(*std::move(gateway));
    }
  }

  std::unique_ptr<StorageNode::Stub> Stub(const ServerProcess& gateway,
                                          const tls::Identity& who) {
    tls::ChannelOptions options;
    options.max_receive_message_bytes = 8 << 20;
    absl::StatusOr<std::shared_ptr<grpc::Channel>> channel =
        tls::MakeChannel(gateway.address(), who.Material(), options);
    EXPECT_OK(channel.status());
    return StorageNode::NewStub(*channel);
  }

  // The latest version of alice's `id` (0: none) as `stub` sees it.
  static absl::StatusOr<uint64_t> Latest(StorageNode::Stub& stub,
                                         const std::string& id) {
    v1::HeadRequest request;
    request.mutable_metadata()->set_request_id("h");
    request.mutable_object()->set_owner("alice");
    request.mutable_object()->set_object_id(id);
    v1::HeadResponse response;
    grpc::ClientContext context;
    context.set_deadline(std::chrono::system_clock::now() +
                         std::chrono::seconds(30));
    absl::Status s =
        rpc::FromGrpcStatus(stub.Head(&context, request, &response));
    if (absl::IsNotFound(s)) return 0;
    if (!s.ok()) return s;
    return response.object().header().object().version();
  }

  // Every version of alice's objects (object id "@" version) `stub` lists.
  static absl::StatusOr<std::vector<std::string>> ListAll(
      StorageNode::Stub& stub) {
    std::vector<std::string> all;
    std::string token;
    do {
      v1::ListRequest request;
      request.mutable_metadata()->set_request_id("l");
      request.set_owner("alice");
      request.set_all_versions(true);
      request.set_page_size(7);
      request.set_page_token(token);
      v1::ListResponse response;
      grpc::ClientContext context;
      absl::Status s =
          rpc::FromGrpcStatus(stub.List(&context, request, &response));
      if (!s.ok()) return s;
      for (const v1::ObjectInfo& info : response.objects()) {
        all.push_back(absl::StrCat(info.header().object().object_id(), "@",
                                   info.header().object().version()));
      }
      token = response.next_page_token();
    } while (!token.empty());
    return all;
  }

  // The ciphertext of every version Export hands `operator_` for alice,
  // by object id "@" version.
  absl::StatusOr<std::map<std::string, std::string>> Export(
      const ServerProcess& gateway) {
    std::unique_ptr<StorageNode::Stub> stub = Stub(gateway, operator_);
    v1::ExportRequest request;
    request.mutable_metadata()->set_request_id("e");
    request.set_owner("alice");
    grpc::ClientContext context;
    auto reader = stub->Export(&context, request);
    std::map<std::string, std::string> exported;
    std::string current;
    v1::ExportResponse message;
    while (reader->Read(&message)) {
      if (message.has_object()) {
        const v1::ObjectRef& ref = message.object().header().object();
        current = absl::StrCat(ref.object_id(), "@", ref.version());
        exported[current];
      } else {
        exported[current] += message.data();
      }
    }
    absl::Status s = rpc::FromGrpcStatus(reader->Finish());
    if (!s.ok()) return s;
    return exported;
  }

  TempDir temp_;
  std::string dir_;
  std::string namespace_;
  tls::Identity alice_;
  tls::Identity operator_;
  std::vector<std::unique_ptr<ServerProcess>> gateways_;
};

TEST_F(GatewaysTest, WhatOneGatewayStoresAnotherReadsListsAndDeletes) {
  ASSERT_OK_AND_ASSIGN(const std::string conf,
                       residency::testing::TestCephConf());
  StartGateways(conf, 2);
  ASSERT_EQ(gateways_.size(), 2u);
  auto a = Stub(*gateways_[0], alice_);
  auto b = Stub(*gateways_[1], alice_);

  const std::vector<uint64_t> sizes = {0, 1000, 300 * 1024, 3 << 20};
  for (size_t i = 0; i < sizes.size(); ++i) {
    ASSERT_OK(PutPattern(*a, Header(absl::StrCat("doc-", i), sizes[i]), i));
  }
  for (size_t i = 0; i < sizes.size(); ++i) {
    EXPECT_OK(GetAndCheck(*b, Header(absl::StrCat("doc-", i), sizes[i]), i));
  }
  EXPECT_THAT(ListAll(*b),
              ::residency::testing::IsOkAndHolds(::testing::ElementsAre(
                  "doc-0@1", "doc-1@1", "doc-2@1", "doc-3@1")));
  // Export through either gateway hands over the same ciphertext.
  ASSERT_OK_AND_ASSIGN(auto exported_a, Export(*gateways_[0]));
  ASSERT_OK_AND_ASSIGN(auto exported_b, Export(*gateways_[1]));
  EXPECT_EQ(exported_a.size(), sizes.size());
  EXPECT_TRUE(exported_a == exported_b);

  // Deleted through one, gone through the other.
  v1::DeleteRequest del;
  del.mutable_metadata()->set_request_id("d");
  del.mutable_object()->set_owner("alice");
  del.mutable_object()->set_object_id("doc-1");
  v1::DeleteResponse deleted;
  grpc::ClientContext context;
  ASSERT_OK(rpc::FromGrpcStatus(b->Delete(&context, del, &deleted)));
  EXPECT_EQ(deleted.versions_deleted(), 1u);
  EXPECT_THAT(Latest(*a, "doc-1"),
              ::residency::testing::IsOkAndHolds(uint64_t{0}));
}

TEST_F(GatewaysTest,
       ConcurrentPutsOfOneObjectThroughTwoGatewaysNeverShareAVersion) {
  ASSERT_OK_AND_ASSIGN(const std::string conf,
                       residency::testing::TestCephConf());
  StartGateways(conf, 2);
  ASSERT_EQ(gateways_.size(), 2u);
  constexpr int kPutsEach = 12;
  constexpr uint64_t kSize = 20000;
  // Each writer stores kPutsEach versions of one object through its own
  // gateway: it asks for the latest version and puts the next; when the
  // other writer took that version first, it is told ALREADY_EXISTS and
  // tries the one after.
  std::atomic<int> conflicts{0};
  std::vector<std::vector<uint64_t>> stored(2);
  std::vector<absl::Status> failures(2);
  std::vector<std::thread> writers;
  for (int w = 0; w < 2; ++w) {
    writers.emplace_back([&, w] {
      auto stub = Stub(*gateways_[w], alice_);
      while (stored[w].size() < kPutsEach) {
        absl::StatusOr<uint64_t> latest = Latest(*stub, "shared");
        if (!latest.ok()) {
          failures[w] = latest.status();
          return;
        }
        const uint64_t version = *latest + 1;
        absl::Status s = PutPattern(*stub, Header("shared", kSize, version),
                                    version * 10 + w, 4096);
        if (absl::IsAlreadyExists(s)) {
          ++conflicts;
          continue;
        }
        if (!s.ok()) {
          failures[w] = s;
          return;
        }
        stored[w].push_back(version);
      }
    });
  }
  for (std::thread& t : writers) t.join();
  ASSERT_OK(failures[0]);
  ASSERT_OK(failures[1]);

  // Every acknowledged version is there, once, with the bytes of the
  // writer that was told it stored it.
  std::set<uint64_t> versions;
  auto reader = Stub(*gateways_[0], alice_);
  for (int w = 0; w < 2; ++w) {
    for (uint64_t version : stored[w]) {
      EXPECT_TRUE(versions.insert(version).second)
          << "version " << version << " acknowledged twice";
      v1::ObjectRef ref = Header("shared", kSize, version).object();
      EXPECT_OK(GetAndCheck(*reader, ref,
                            Header("shared", kSize).ciphertext_length(),
                            version * 10 + w))
          << "version " << version;
    }
  }
  EXPECT_EQ(versions.size(), 2u * kPutsEach);
  ASSERT_OK_AND_ASSIGN(std::vector<std::string> listed, ListAll(*reader));
  EXPECT_EQ(listed.size(), 2u * kPutsEach);
  std::printf("%d conflicts resolved by a retry\n", conflicts.load());
}

// An OSD stopped in the middle of a Put: the Put fails UNAVAILABLE and
// leaves no version; once the OSD is back, everything acknowledged reads
// back byte for byte and new Puts succeed. A cluster of its own, as it
// stops the OSD.
TEST_F(GatewaysTest, OsdStoppedInTheMiddleOfAPutLosesNothingAcknowledged) {
  storage_node::CephClusterOptions options;
  options.dir = dir_ + "/cluster";
  options.pool = residency::testing::kCephTestPool;
  options.client_op_timeout = absl::Seconds(3);
  ASSERT_OK_AND_ASSIGN(std::unique_ptr<storage_node::CephCluster> cluster,
                       storage_node::CephCluster::Start(options));
  ASSERT_OK_AND_ASSIGN(std::unique_ptr<ServerProcess> gateway,
                       StartGateway("gateway", cluster->conf_path(), "3s"));
  auto stub = Stub(*gateway, alice_);
  for (int i = 0; i < 4; ++i) {
    ASSERT_OK(PutPattern(*stub, Header(absl::StrCat("before-", i), 200000), i));
  }

  // The OSD stops once a quarter of the object has been sent.
  const v1::ObjectHeader cut = Header("cut", 4 << 20);
  bool stopped = false;
  absl::Status put = PutPattern(*stub, cut, 99, 256 * 1024, [&](uint64_t sent) {
    if (!stopped && sent >= (1 << 20)) {
      stopped = true;
      EXPECT_OK(cluster->StopOsd());
    }
  });
  ASSERT_TRUE(stopped);
  EXPECT_THAT(put, StatusIs(absl::StatusCode::kUnavailable));
  EXPECT_TRUE(gateway->running());

  ASSERT_OK(cluster->StartOsd());
  EXPECT_THAT(Latest(*stub, "cut"),
              ::residency::testing::IsOkAndHolds(uint64_t{0}));
  for (int i = 0; i < 4; ++i) {
    EXPECT_OK(
        GetAndCheck(*stub, Header(absl::StrCat("before-", i), 200000), i));
  }
  ASSERT_OK(PutPattern(*stub, cut, 100));
  EXPECT_OK(GetAndCheck(*stub, cut, 100));
}

}  // namespace
}  // namespace residency::storage_node
