// sim::Links against a real gRPC server with mTLS on a loopback port: a
// stand-in storage node whose handlers count the calls that reach it and
// answer with messages of known sizes.
#include "sim/links.h"

#include <google/protobuf/text_format.h>

#include <algorithm>
#include <atomic>
#include <chrono>
#include <map>
#include <memory>
#include <string>
#include <thread>
#include <vector>

#include "gmock/gmock.h"
#include "gtest/gtest.h"
#include "residency/v1/storage.grpc.pb.h"
#include "rpc/health.h"
#include "rpc/server.h"
#include "tests/status_matchers.h"
#include "tls/credentials.h"
#include "tls/pki.h"

namespace residency::sim {
namespace {

using ::residency::testing::StatusIs;
using ::testing::HasSubstr;
using Clock = std::chrono::steady_clock;

constexpr char kHealthName[] = "residency.v1.StorageNode";

// Answers Head, Get (server streaming) and Put (client streaming) with
// messages whose sizes the tests can compute, and counts every call that
// reaches it.
class FakeNode final : public v1::StorageNode::Service {
 public:
  static constexpr int kGetDataMessages = 4;
  static constexpr size_t kGetDataBytes = 3000;

  grpc::Status Head(grpc::ServerContext*, const v1::HeadRequest* request,
                    v1::HeadResponse* response) override {
    ++calls;
    *response->mutable_object()->mutable_header()->mutable_object() =
        request->object();
    return grpc::Status::OK;
  }

  grpc::Status Get(grpc::ServerContext*, const v1::GetRequest* request,
                   grpc::ServerWriter<v1::GetResponse>* writer) override {
    ++calls;
    for (const v1::GetResponse& response : GetResponses(*request)) {
      if (!writer->Write(response)) break;
    }
    return grpc::Status::OK;
  }

  grpc::Status Put(grpc::ServerContext*,
                   grpc::ServerReader<v1::PutRequest>* reader,
                   v1::PutResponse* response) override {
    ++calls;
    v1::PutRequest request;
    while (reader->Read(&request)) {
      if (request.has_start()) {
        *response->mutable_object() = request.start().header().object();
      }
    }
    return grpc::Status::OK;
  }

  // What Get sends for `request`.
  static std::vector<v1::GetResponse> GetResponses(
      const v1::GetRequest& request) {
    std::vector<v1::GetResponse> responses(1);
    *responses[0].mutable_start()->mutable_header()->mutable_object() =
        request.object();
    for (int i = 0; i < kGetDataMessages; ++i) {
      responses.emplace_back().set_data(std::string(kGetDataBytes, 'c'));
    }
    return responses;
  }

  std::atomic<int> calls{0};
};

v1::ObjectRef Ref(const std::string& id) {
  v1::ObjectRef ref;
  ref.set_owner("alice");
  ref.set_object_id(id);
  ref.set_version(1);
  return ref;
}

// A world whose links are `links_text` (text-format LinkSpecs).
residency::v1::World World(const std::string& links_text) {
  residency::v1::World world;
  EXPECT_TRUE(google::protobuf::TextFormat::ParseFromString(links_text, &world))
      << links_text;
  return world;
}

double MillisecondsSince(Clock::time_point start) {
  return std::chrono::duration<double, std::milli>(Clock::now() - start)
      .count();
}

class LinksTest : public ::testing::Test {
 protected:
  void SetUp() override {
    ASSERT_OK_AND_ASSIGN(tls::CertificateAuthority ca,
                         tls::CertificateAuthority::Create("links-test-ca"));
    ASSERT_OK_AND_ASSIGN(tls::Identity node,
                         ca.Issue("residency://service/us-node"));
    ASSERT_OK_AND_ASSIGN(tls::Identity alice,
                         ca.Issue("residency://user/alice"));
    alice_ = alice.Material();
    rpc::ServerOptions options;
    ASSERT_OK_AND_ASSIGN(options.credentials,
                         tls::MakeServerCredentials(node.Material()));
    options.services = {&node_};
    options.health_service_name = kHealthName;
    ASSERT_OK_AND_ASSIGN(server_, rpc::Server::Start(std::move(options)));
  }

  void TearDown() override {
    if (server_ != nullptr) server_->Shutdown(absl::Milliseconds(100));
  }

  std::shared_ptr<grpc::Channel> Channel(Links& links, const std::string& from,
                                         const std::string& to) {
    absl::StatusOr<std::shared_ptr<grpc::Channel>> channel =
        links.Channel(from, to, server_->address(), alice_);
    EXPECT_OK(channel.status());
    return channel.ok() ? *channel : nullptr;
  }

  static void Deadline(grpc::ClientContext& context) {
    context.set_deadline(std::chrono::system_clock::now() +
                         std::chrono::seconds(20));
  }

  // A unary call. Adds the serialized sizes that crossed to the counters.
  grpc::Status Head(const std::shared_ptr<grpc::Channel>& channel,
                    const std::string& id = "doc") {
    grpc::ClientContext context;
    Deadline(context);
    v1::HeadRequest request;
    *request.mutable_object() = Ref(id);
    v1::HeadResponse response;
    grpc::Status status =
        v1::StorageNode::NewStub(channel)->Head(&context, request, &response);
    if (status.ok()) {
      request_bytes_ += request.ByteSizeLong();
      response_bytes_ += response.ByteSizeLong();
    }
    return status;
  }

  // A server-streaming call, read to the end.
  grpc::Status Get(const std::shared_ptr<grpc::Channel>& channel,
                   int* messages = nullptr) {
    grpc::ClientContext context;
    Deadline(context);
    v1::GetRequest request;
    *request.mutable_object() = Ref("doc");
    auto reader = v1::StorageNode::NewStub(channel)->Get(&context, request);
    v1::GetResponse response;
    int n = 0;
    uint64_t received = 0;
    while (reader->Read(&response)) {
      ++n;
      received += response.ByteSizeLong();
    }
    grpc::Status status = reader->Finish();
    if (messages != nullptr) *messages = n;
    if (status.ok()) {
      request_bytes_ += request.ByteSizeLong();
      response_bytes_ += received;
    }
    return status;
  }

  // A client-streaming call: a start and `chunks` data messages.
  grpc::Status Put(const std::shared_ptr<grpc::Channel>& channel, int chunks,
                   int* writes_accepted = nullptr,
                   const std::string& payload = std::string(5000, 'p')) {
    grpc::ClientContext context;
    Deadline(context);
    v1::PutResponse response;
    auto writer = v1::StorageNode::NewStub(channel)->Put(&context, &response);
    std::vector<v1::PutRequest> requests(1);
    *requests[0].mutable_start()->mutable_header()->mutable_object() =
        Ref("doc");
    for (int i = 0; i < chunks; ++i) {
      requests.emplace_back().set_data(payload);
    }
    int accepted = 0;
    uint64_t sent = 0;
    for (const v1::PutRequest& request : requests) {
      if (!writer->Write(request)) break;
      ++accepted;
      sent += request.ByteSizeLong();
    }
    writer->WritesDone();
    grpc::Status status = writer->Finish();
    if (writes_accepted != nullptr) *writes_accepted = accepted;
    if (status.ok()) {
      request_bytes_ += sent;
      response_bytes_ += response.ByteSizeLong();
    }
    return status;
  }

  // Which of 32 calls on the first of two channels across a link with loss
  // 0.5 fail; with `interleave`, calls on the second channel come between.
  std::vector<bool> LossPattern(uint64_t seed, bool interleave) {
    Links links(World(R"pb(links { a: "CN" b: "US" loss: 0.5 })pb"), seed);
    auto first = Channel(links, "CN", "US");
    auto second = Channel(links, "CN", "US");
    const int before = node_.calls.load();
    std::vector<bool> failed;
    uint64_t second_calls = 0;
    for (int i = 0; i < 32; ++i) {
      grpc::Status status = Head(first);
      EXPECT_TRUE(status.ok() ||
                  status.error_code() == grpc::StatusCode::UNAVAILABLE)
          << status.error_message();
      failed.push_back(!status.ok());
      if (interleave) {
        for (int k = 0; k <= i % 3; ++k, ++second_calls) Head(second);
      }
    }
    const int lost =
        static_cast<int>(std::count(failed.begin(), failed.end(), true));
    const LinkStats stats = links.Stats()[0];
    EXPECT_EQ(stats.calls, 32 + second_calls);
    if (!interleave) {
      EXPECT_EQ(stats.lost, static_cast<uint64_t>(lost));
      EXPECT_EQ(node_.calls.load() - before, 32 - lost);
    }
    return failed;
  }

  FakeNode node_;
  std::unique_ptr<rpc::Server> server_;
  tls::TlsMaterial alice_;
  // What successful calls made by the helpers above sent and received.
  // Atomic: some tests call from several threads at once.
  std::atomic<uint64_t> request_bytes_{0};
  std::atomic<uint64_t> response_bytes_{0};
};

TEST_F(LinksTest, PerfectLinksAddNoLatencyAndAreNotCounted) {
  Links links(World(R"pb(links { a: "CN" b: "US" latency_ms: 100 })pb"),
              /*seed=*/1);
  auto same_jurisdiction = Channel(links, "US", "US");
  auto unlinked_pair = Channel(links, "EU", "US");
  auto linked = Channel(links, "CN", "US");
  // Connections first, so that only the calls are timed.
  ASSERT_TRUE(Head(same_jurisdiction).ok());
  ASSERT_TRUE(Head(unlinked_pair).ok());
  ASSERT_TRUE(Head(linked).ok());

  double fastest_perfect = 1e9;
  for (int i = 0; i < 3; ++i) {
    Clock::time_point start = Clock::now();
    ASSERT_TRUE(Head(same_jurisdiction).ok());
    ASSERT_TRUE(Head(unlinked_pair).ok());
    fastest_perfect = std::min(fastest_perfect, MillisecondsSince(start));
  }
  Clock::time_point start = Clock::now();
  ASSERT_TRUE(Head(linked).ok());
  const double across = MillisecondsSince(start);

  EXPECT_GE(across, 200);
  EXPECT_LT(fastest_perfect, across);
  ASSERT_EQ(links.Stats().size(), 1u);
  EXPECT_EQ(links.Stats()[0].calls, 2u);  // The linked channel's two calls.
  EXPECT_EQ(node_.calls.load(), 10);
}

TEST_F(LinksTest, LatencyIsPaidEachWayOnUnaryCalls) {
  Links links(
      World(R"pb(links { a: "CN" b: "US" latency_ms: 50 jitter_ms: 20 })pb"),
      /*seed=*/1);
  auto channel = Channel(links, "CN", "US");
  ASSERT_TRUE(Head(channel).ok());  // Connects.
  for (int i = 0; i < 3; ++i) {
    Clock::time_point start = Clock::now();
    ASSERT_TRUE(Head(channel).ok());
    EXPECT_GE(MillisecondsSince(start), 100);
  }
}

TEST_F(LinksTest, LatencyIsPaidEachWayOnStreams) {
  Links links(World(R"pb(links { a: "CN" b: "US" latency_ms: 50 })pb"),
              /*seed=*/1);
  auto channel = Channel(links, "US", "CN");  // Either order.
  ASSERT_TRUE(Head(channel).ok());

  Clock::time_point start = Clock::now();
  int messages = 0;
  ASSERT_TRUE(Get(channel, &messages).ok());
  EXPECT_GE(MillisecondsSince(start), 100);
  EXPECT_EQ(messages, 1 + FakeNode::kGetDataMessages);

  start = Clock::now();
  ASSERT_TRUE(Put(channel, /*chunks=*/3).ok());
  EXPECT_GE(MillisecondsSince(start), 100);
}

TEST_F(LinksTest, LatencyIsPaidByTheCallbackApiToo) {
  Links links(World(R"pb(links { a: "CN" b: "US" latency_ms: 50 })pb"),
              /*seed=*/1);
  auto channel = Channel(links, "CN", "US");
  ASSERT_OK(rpc::IsServing(channel, kHealthName).status());
  Clock::time_point start = Clock::now();
  ASSERT_OK_AND_ASSIGN(bool serving, rpc::IsServing(channel, kHealthName));
  EXPECT_TRUE(serving);
  EXPECT_GE(MillisecondsSince(start), 100);
}

// A delay is a sleep in the caller's own thread: while one call waits out
// a long link, another thread's calls (on other channels: a channel's own
// calls all pay the link) go on. The checks are on the order of events,
// with a margin of a second, not on durations.
TEST_F(LinksTest, DelaysBlockOnlyTheCallingThread) {
  Links links(World(R"pb(links { a: "CN" b: "US" latency_ms: 1000 })pb"),
              /*seed=*/1);
  auto slow = Channel(links, "CN", "US");
  auto fast = Channel(links, "US", "US");
  ASSERT_TRUE(Head(fast).ok());
  ASSERT_TRUE(Head(slow).ok());  // Connects (2 s).
  const int before = node_.calls.load();

  std::atomic<bool> slow_done{false};
  Clock::time_point start = Clock::now();
  std::thread caller([&] {
    EXPECT_TRUE(Head(slow).ok());
    slow_done = true;
  });
  while (links.Stats()[0].calls < 2) std::this_thread::yield();

  // The slow call is in its request delay: it has not reached the server.
  ASSERT_TRUE(Head(fast).ok());
  EXPECT_EQ(node_.calls.load(), before + 1);
  EXPECT_FALSE(slow_done.load());

  // It reaches the server after a second, and is then in its response
  // delay.
  while (node_.calls.load() < before + 2) std::this_thread::yield();
  ASSERT_TRUE(Head(fast).ok());
  EXPECT_FALSE(slow_done.load());

  caller.join();
  EXPECT_GE(MillisecondsSince(start), 2000);
}

TEST_F(LinksTest, TotalLossFailsEveryCallWithoutReachingTheServer) {
  Links links(World(R"pb(links { a: "CN" b: "US" loss: 1 })pb"), /*seed=*/1);
  auto channel = Channel(links, "CN", "US");

  for (int i = 0; i < 3; ++i) {
    grpc::Status status = Head(channel);
    EXPECT_EQ(status.error_code(), grpc::StatusCode::UNAVAILABLE);
    EXPECT_EQ(status.error_message(), "lost on link CN-US");
  }
  int messages = -1;
  grpc::Status get = Get(channel, &messages);
  EXPECT_EQ(get.error_code(), grpc::StatusCode::UNAVAILABLE);
  EXPECT_EQ(get.error_message(), "lost on link CN-US");
  EXPECT_EQ(messages, 0);

  int accepted = -1;
  grpc::Status put = Put(channel, /*chunks=*/3, &accepted);
  EXPECT_EQ(put.error_code(), grpc::StatusCode::UNAVAILABLE);
  EXPECT_EQ(put.error_message(), "lost on link CN-US");
  EXPECT_EQ(accepted, 0);  // The first Write already fails.

  // The callback API (the generic-stub health check).
  absl::StatusOr<bool> serving = rpc::IsServing(channel, kHealthName);
  EXPECT_THAT(serving, StatusIs(absl::StatusCode::kUnavailable));
  EXPECT_THAT(serving.status().message(), HasSubstr("lost on link CN-US"));

  EXPECT_EQ(node_.calls.load(), 0);
  LinkStats stats = links.Stats()[0];
  EXPECT_EQ(stats.calls, 6u);
  EXPECT_EQ(stats.lost, 6u);
  EXPECT_EQ(stats.partitioned, 0u);
  EXPECT_EQ(stats.failed(), 6u);
  EXPECT_EQ(stats.request_bytes, 0u);
  EXPECT_EQ(stats.response_bytes, 0u);
}

TEST_F(LinksTest, LossIsTheSameForTheSameSeed) {
  const std::vector<bool> run1 = LossPattern(/*seed=*/7, /*interleave=*/false);
  const std::vector<bool> run2 = LossPattern(/*seed=*/7, /*interleave=*/false);
  // Calls on another channel of the same link draw from their own stream.
  const std::vector<bool> interleaved =
      LossPattern(/*seed=*/7, /*interleave=*/true);
  const std::vector<bool> other_seed =
      LossPattern(/*seed=*/8, /*interleave=*/false);

  EXPECT_EQ(run1, run2);
  EXPECT_EQ(run1, interleaved);
  EXPECT_NE(run1, other_seed);
  const auto lost = std::count(run1.begin(), run1.end(), true);
  EXPECT_GT(lost, 0);
  EXPECT_LT(lost, 32);
}

TEST_F(LinksTest, PartitionFailsEveryKindOfCallUntilTheWindowEnds) {
  Links links(World(R"pb(links {
                           a: "CN"
                           b: "US"
                           partitions { start_ms: 0 end_ms: 1500 }
                         })pb"),
              /*seed=*/1);
  auto channel = Channel(links, "CN", "US");
  links.Start();
  const Clock::time_point start = Clock::now();

  grpc::Status head = Head(channel);
  EXPECT_EQ(head.error_code(), grpc::StatusCode::UNAVAILABLE);
  EXPECT_THAT(head.error_message(), HasSubstr("link CN-US partitioned"));
  int messages = -1;
  grpc::Status get = Get(channel, &messages);
  EXPECT_EQ(get.error_code(), grpc::StatusCode::UNAVAILABLE);
  EXPECT_THAT(get.error_message(), HasSubstr("link CN-US partitioned"));
  EXPECT_EQ(messages, 0);
  grpc::Status put = Put(channel, /*chunks=*/2);
  EXPECT_EQ(put.error_code(), grpc::StatusCode::UNAVAILABLE);
  EXPECT_THAT(put.error_message(), HasSubstr("link CN-US partitioned"));
  ASSERT_LT(MillisecondsSince(start), 1500)
      << "the machine is too slow for this test's window";
  EXPECT_EQ(node_.calls.load(), 0);

  std::this_thread::sleep_until(start + std::chrono::milliseconds(1550));
  EXPECT_TRUE(Head(channel).ok());
  EXPECT_TRUE(Get(channel, &messages).ok());
  EXPECT_EQ(messages, 1 + FakeNode::kGetDataMessages);
  EXPECT_TRUE(Put(channel, /*chunks=*/2).ok());
  EXPECT_EQ(node_.calls.load(), 3);

  LinkStats stats = links.Stats()[0];
  EXPECT_EQ(stats.calls, 6u);
  EXPECT_EQ(stats.partitioned, 3u);
  EXPECT_EQ(stats.lost, 0u);
}

TEST_F(LinksTest, WindowsCountFromStart) {
  Links links(World(R"pb(links {
                           a: "CN"
                           b: "US"
                           partitions { start_ms: 0 end_ms: 300 }
                         })pb"),
              /*seed=*/1);
  auto channel = Channel(links, "CN", "US");
  std::this_thread::sleep_for(std::chrono::milliseconds(350));
  EXPECT_TRUE(Head(channel).ok());  // The window since construction is over.
  links.Start();
  EXPECT_EQ(Head(channel).error_code(), grpc::StatusCode::UNAVAILABLE);
  EXPECT_EQ(links.Stats()[0].partitioned, 1u);
}

TEST_F(LinksTest, WindowOfAPhaseIsInForceOnlyOnceThePhaseBegins) {
  Links links(
      World(R"pb(links {
                   a: "CN"
                   b: "US"
                   partitions { phase: "later" start_ms: 0 end_ms: 600000 }
                 })pb"),
      /*seed=*/1);
  auto channel = Channel(links, "CN", "US");
  links.Start();
  EXPECT_TRUE(Head(channel).ok());
  links.PhaseBegins("earlier");
  EXPECT_TRUE(Head(channel).ok());
  EXPECT_EQ(
      links.PartitionOverlap("CN", "US", absl::ZeroDuration(), links.Elapsed()),
      Links::Overlap::kNone);

  links.PhaseBegins("later");
  const absl::Duration began = links.Elapsed();
  grpc::Status head = Head(channel);
  EXPECT_EQ(head.error_code(), grpc::StatusCode::UNAVAILABLE);
  EXPECT_THAT(head.error_message(), HasSubstr("after phase later began"));
  EXPECT_EQ(links.PartitionOverlap("CN", "US", began + absl::Milliseconds(1),
                                   links.Elapsed() + absl::Milliseconds(1)),
            Links::Overlap::kWholly);
  EXPECT_EQ(links.Stats()[0].partitioned, 1u);

  // A restarted clock puts the window back out of force.
  links.Start();
  EXPECT_TRUE(Head(channel).ok());
}

TEST_F(LinksTest, StatsCountWhatCrossedEachWay) {
  Links links(World(R"pb(links { a: "CN" b: "US" }
                         links { a: "CN" b: "EU" latency_ms: 1 })pb"),
              /*seed=*/1);
  auto cn_us = Channel(links, "CN", "US");
  auto us_cn = Channel(links, "US", "CN");
  ASSERT_TRUE(Head(cn_us, "a-longer-object-id").ok());
  ASSERT_TRUE(Get(us_cn).ok());
  ASSERT_TRUE(Put(cn_us, /*chunks=*/3).ok());
  ASSERT_GT(request_bytes_.load(), 3 * 5000u);
  ASSERT_GT(response_bytes_.load(),
            FakeNode::kGetDataMessages * FakeNode::kGetDataBytes);

  // The health check's response is not counted (a generic stub), its
  // request is: field 1, its length, the name.
  ASSERT_OK_AND_ASSIGN(bool serving, rpc::IsServing(cn_us, kHealthName));
  EXPECT_TRUE(serving);

  std::vector<LinkStats> stats = links.Stats();
  ASSERT_EQ(stats.size(), 2u);
  EXPECT_EQ(stats[0].a, "CN");
  EXPECT_EQ(stats[0].b, "US");
  EXPECT_EQ(stats[0].calls, 4u);
  EXPECT_EQ(stats[0].failed(), 0u);
  EXPECT_EQ(stats[0].request_bytes,
            request_bytes_ + 2 + std::string(kHealthName).size());
  EXPECT_EQ(stats[0].response_bytes, response_bytes_.load());
  EXPECT_EQ(stats[1].a, "CN");
  EXPECT_EQ(stats[1].b, "EU");
  EXPECT_EQ(stats[1].calls, 0u);
  EXPECT_EQ(stats[1].request_bytes, 0u);
}

TEST_F(LinksTest, ChannelRejectsAnEmptyAddress) {
  Links links(World(R"pb(links { a: "CN" b: "US" })pb"), /*seed=*/1);
  EXPECT_THAT(links.Channel("CN", "US", "", alice_),
              StatusIs(absl::StatusCode::kInvalidArgument));
  EXPECT_THAT(links.Channel("CN", "CN", "", alice_),
              StatusIs(absl::StatusCode::kInvalidArgument));
}

// Taps.

constexpr char kHead[] = "/residency.v1.StorageNode/Head";
constexpr char kGet[] = "/residency.v1.StorageNode/Get";
constexpr char kPut[] = "/residency.v1.StorageNode/Put";
constexpr char kCanary[] = "RESIDENCY-CANARY-0123456789abcdef";

uint64_t Sum(const std::map<uint64_t, uint64_t>& histogram) {
  uint64_t n = 0;
  for (const auto& [bound, count] : histogram) n += count;
  return n;
}

TEST_F(LinksTest, TapRecordsCallsMessagesSizesAndTimingPerMethod) {
  Links links(World(R"pb(links { a: "CN" b: "US" latency_ms: 1 })pb"),
              /*seed=*/1);
  auto first = Channel(links, "CN", "US");
  auto second = Channel(links, "US", "CN");
  ASSERT_TRUE(Head(first).ok());  // Before the tap: not recorded.
  ASSERT_OK(links.Tap("US", "CN", kCanary));
  request_bytes_ = 0;
  response_bytes_ = 0;
  ASSERT_TRUE(Head(first).ok());
  ASSERT_TRUE(Head(second, "other").ok());
  ASSERT_TRUE(Get(first).ok());
  ASSERT_TRUE(Put(first, /*chunks=*/2).ok());
  ASSERT_OK_AND_ASSIGN(TapStats tap, links.Untap("CN", "US"));
  const uint64_t sent = request_bytes_, received = response_bytes_;
  ASSERT_TRUE(Head(first).ok());  // After: not in the record.

  EXPECT_EQ(tap.link, "CN-US");
  EXPECT_EQ(tap.calls(), 4u);
  EXPECT_EQ(tap.connections, 2u);
  ASSERT_EQ(tap.methods.size(), 3u);
  const TapMethodStats& head = tap.methods.at(kHead);
  EXPECT_EQ(head.calls, 2u);
  EXPECT_EQ(head.request_messages, 2u);
  EXPECT_EQ(head.response_messages, 2u);
  EXPECT_LT(head.min_request_bytes, head.max_request_bytes);  // "doc", "other"
  const TapMethodStats& get = tap.methods.at(kGet);
  EXPECT_EQ(get.calls, 1u);
  EXPECT_EQ(get.request_messages, 1u);
  EXPECT_EQ(get.response_messages, 1u + FakeNode::kGetDataMessages);
  const TapMethodStats& put = tap.methods.at(kPut);
  EXPECT_EQ(put.request_messages, 3u);
  EXPECT_EQ(put.response_messages, 1u);
  EXPECT_GT(put.max_request_bytes, 5000u);
  // The same bytes the link counts, message for message.
  EXPECT_EQ(tap.request_bytes(), sent);
  EXPECT_EQ(tap.response_bytes(), received);
  EXPECT_EQ(Sum(tap.message_sizes),
            2u + 2 + 1 + (1 + FakeNode::kGetDataMessages) + 3 + 1);
  // Get's 3000-byte data messages; Put's 5000-byte ones.
  EXPECT_EQ(tap.message_sizes.at(4096), uint64_t{FakeNode::kGetDataMessages});
  EXPECT_EQ(tap.message_sizes.at(16384), 2u);
  uint64_t over_time = 0;
  for (uint64_t n : tap.calls_over_time) over_time += n;
  EXPECT_EQ(over_time, 4u);
  EXPECT_LE(tap.start_ms, tap.end_ms);
  // Inside: every call names alice; two object versions.
  ASSERT_EQ(tap.owners.size(), 1u);
  EXPECT_EQ(tap.owners.at("alice").calls, 4u);
  EXPECT_EQ(tap.object_versions, 2u);
  EXPECT_EQ(tap.canary_hits, 0u);
  EXPECT_EQ(tap.data_keys, 0u);
}

TEST_F(LinksTest, TapFindsTheCanaryInRequestsAndInResponses) {
  Links links(World(R"pb(links { a: "CN" b: "US" })pb"), /*seed=*/1);
  auto channel = Channel(links, "CN", "US");

  ASSERT_OK(links.Tap("CN", "US", kCanary));
  ASSERT_TRUE(Put(channel, /*chunks=*/2).ok());
  ASSERT_TRUE(Get(channel).ok());
  ASSERT_OK_AND_ASSIGN(TapStats clean, links.Untap("CN", "US"));
  EXPECT_EQ(clean.canary_hits, 0u);
  EXPECT_EQ(clean.canary_bytes, 0u);

  // Plaintext marked with the canary, in both data messages of a Put.
  const std::string plaintext =
      std::string(100, 'p') + kCanary + std::string(4000, 'p');
  ASSERT_OK(links.Tap("CN", "US", kCanary));
  ASSERT_TRUE(Put(channel, /*chunks=*/2, nullptr, plaintext).ok());
  ASSERT_OK_AND_ASSIGN(TapStats leaked, links.Untap("CN", "US"));
  EXPECT_EQ(leaked.canary_hits, 2u);
  EXPECT_EQ(leaked.canary_bytes, 2 * (plaintext.size() + 3));  // tag, length

  // In responses: FakeNode's Get data is 'c' bytes.
  ASSERT_OK(links.Tap("CN", "US", std::string(64, 'c')));
  ASSERT_TRUE(Get(channel).ok());
  ASSERT_OK_AND_ASSIGN(TapStats answered, links.Untap("CN", "US"));
  EXPECT_EQ(answered.canary_hits, uint64_t{FakeNode::kGetDataMessages});
}

TEST_F(LinksTest, TapRecordsNothingOfCallsTheLinkFails) {
  Links links(World(R"pb(links {
                           a: "CN"
                           b: "US"
                           partitions { start_ms: 0 end_ms: 600000 }
                         })pb"),
              /*seed=*/1);
  auto channel = Channel(links, "CN", "US");
  ASSERT_OK(links.Tap("CN", "US", kCanary));
  EXPECT_EQ(Head(channel).error_code(), grpc::StatusCode::UNAVAILABLE);
  EXPECT_EQ(Put(channel, 1, nullptr, kCanary).error_code(),
            grpc::StatusCode::UNAVAILABLE);
  ASSERT_OK_AND_ASSIGN(TapStats tap, links.Untap("CN", "US"));
  EXPECT_EQ(links.Stats()[0].partitioned, 2u);
  EXPECT_EQ(tap.calls(), 0u);
  EXPECT_TRUE(tap.message_sizes.empty());
  EXPECT_EQ(tap.canary_hits, 0u);
}

TEST(LinksOverlapTest, SaysHowAStretchOfTimeMeetsTheWindows) {
  Links links(World(R"pb(links {
                           a: "CN"
                           b: "US"
                           partitions { start_ms: 1000 end_ms: 2000 }
                           partitions { start_ms: 5000 end_ms: 6000 }
                         })pb"),
              /*seed=*/1);
  const auto overlap = [&](const std::string& from, const std::string& to,
                           int begin_ms, int end_ms) {
    return links.PartitionOverlap(from, to, absl::Milliseconds(begin_ms),
                                  absl::Milliseconds(end_ms));
  };
  using O = Links::Overlap;
  EXPECT_EQ(overlap("CN", "US", 0, 999), O::kNone);
  EXPECT_EQ(overlap("CN", "US", 0, 1000), O::kPartly);
  EXPECT_EQ(overlap("US", "CN", 1000, 1999), O::kWholly);
  EXPECT_EQ(overlap("CN", "US", 1500, 2000), O::kPartly);
  EXPECT_EQ(overlap("CN", "US", 2000, 4999), O::kNone);
  EXPECT_EQ(overlap("CN", "US", 900, 6100), O::kPartly);
  EXPECT_EQ(overlap("CN", "US", 5000, 5001), O::kWholly);
  // Perfect links are never partitioned.
  EXPECT_EQ(overlap("CN", "CN", 1500, 1600), O::kNone);
  EXPECT_EQ(overlap("CN", "EU", 1500, 1600), O::kNone);
}

TEST_F(LinksTest, TapNeedsALinkAndTakesOneTapPerLink) {
  Links links(World(R"pb(links { a: "CN" b: "US" }
                         links { a: "CN" b: "EU" })pb"),
              /*seed=*/1);
  // A perfect link has no interceptor to tap.
  EXPECT_THAT(links.Tap("US", "EU", kCanary),
              StatusIs(absl::StatusCode::kNotFound, HasSubstr("LinkSpec")));
  EXPECT_THAT(links.Untap("CN", "US"), StatusIs(absl::StatusCode::kNotFound));
  ASSERT_OK(links.Tap("CN", "US", kCanary));
  EXPECT_THAT(links.Tap("US", "CN", kCanary),
              StatusIs(absl::StatusCode::kFailedPrecondition));
  ASSERT_OK(links.Tap("EU", "CN", ""));
  std::vector<TapStats> all = links.UntapAll();
  ASSERT_EQ(all.size(), 2u);
  EXPECT_EQ(all[0].link, "CN-US");
  EXPECT_EQ(all[1].link, "CN-EU");
  EXPECT_TRUE(links.UntapAll().empty());
  EXPECT_THAT(links.Untap("CN", "US"), StatusIs(absl::StatusCode::kNotFound));
}

}  // namespace
}  // namespace residency::sim
