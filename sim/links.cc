#include "sim/links.h"

#include <google/protobuf/descriptor.h>
#include <google/protobuf/message_lite.h>
#include <grpcpp/support/client_interceptor.h>

#include <atomic>
#include <chrono>
#include <mutex>
#include <random>
#include <thread>
#include <utility>

#include "absl/strings/str_cat.h"
#include "absl/strings/string_view.h"

namespace residency::sim {
namespace internal {

using Clock = std::chrono::steady_clock;

// One World.links entry, shared by Links and the interceptors of its
// channels (which may outlive Links).
struct LinkState {
  residency::v1::LinkSpec spec;
  std::string name;  // "CN-US"
  uint64_t seed = 0;
  uint32_t index = 0;  // In World.links.

  // Clock::time_point::rep of the partition clock's origin.
  std::atomic<Clock::rep> start{0};
  std::atomic<uint32_t> channels{0};

  std::atomic<uint64_t> calls{0};
  std::atomic<uint64_t> lost{0};
  std::atomic<uint64_t> partitioned{0};
  std::atomic<uint64_t> request_bytes{0};
  std::atomic<uint64_t> response_bytes{0};

  // The window the link is in `elapsed` after the start, or nullptr.
  const residency::v1::LinkSpec::Window* PartitionAt(
      Clock::duration elapsed) const {
    const int64_t ms =
        std::chrono::duration_cast<std::chrono::milliseconds>(elapsed).count();
    for (const auto& w : spec.partitions()) {
      if (ms >= int64_t{w.start_ms()} && ms < int64_t{w.end_ms()}) return &w;
    }
    return nullptr;
  }
};

}  // namespace internal

namespace {

using internal::Clock;
using internal::LinkState;
namespace gx = grpc::experimental;
using Hook = gx::InterceptionHookPoints;

// A channel's randomness.
struct ChannelRandom {
  std::mutex mu;
  std::mt19937_64 rng;
};

// What the link does to one call, drawn as the call starts.
struct Fate {
  bool lost = false;
  Clock::duration request_delay{};
  Clock::duration response_delay{};
};

Fate Draw(const residency::v1::LinkSpec& spec, ChannelRandom& random) {
  uint64_t loss_draw, request_jitter, response_jitter;
  {
    std::lock_guard<std::mutex> lock(random.mu);
    loss_draw = random.rng();
    request_jitter = random.rng();
    response_jitter = random.rng();
  }
  // By hand rather than with std:: distributions, whose results differ
  // between standard libraries: the same seed gives the same run anywhere.
  Fate fate;
  // 53 random bits as a double in [0, 1): loss 0 never loses, 1 always does.
  fate.lost = static_cast<double>(loss_draw >> 11) * 0x1.0p-53 < spec.loss();
  const auto one_way = [&](uint64_t draw) {
    const uint64_t jitter_us = draw % (uint64_t{spec.jitter_ms()} * 1000 + 1);
    return std::chrono::milliseconds(spec.latency_ms()) +
           std::chrono::microseconds(jitter_us);
  };
  fate.request_delay = one_way(request_jitter);
  fate.response_delay = one_way(response_jitter);
  return fate;
}

// True when `method` ("/residency.v1.StorageNode/Get") belongs to a service
// compiled into this binary, whose stubs hand interceptors protobuf
// messages.
bool IsGeneratedMethod(absl::string_view method) {
  if (method.empty() || method[0] != '/') return false;
  const size_t slash = method.find('/', 1);
  if (slash == absl::string_view::npos) return false;
  const google::protobuf::ServiceDescriptor* service =
      google::protobuf::DescriptorPool::generated_pool()->FindServiceByName(
          std::string(method.substr(1, slash - 1)));
  return service != nullptr &&
         service->FindMethodByName(std::string(method.substr(slash + 1))) !=
             nullptr;
}

// One call across a link. gRPC runs the hooks of one call one batch at a
// time, but a stream's reads and writes may come from different threads:
// what changes after the first batch is atomic.
class LinkInterceptor final : public gx::Interceptor {
 public:
  LinkInterceptor(std::shared_ptr<LinkState> link,
                  std::shared_ptr<ChannelRandom> random, bool count_responses)
      : link_(std::move(link)),
        random_(std::move(random)),
        count_responses_(count_responses) {}

  void Intercept(gx::InterceptorBatchMethods* methods) override {
    const auto at = [methods](Hook hook) {
      return methods->QueryInterceptionHookPoint(hook);
    };
    if (at(Hook::PRE_SEND_CANCEL)) {
      // Must not be delayed; returning continues it.
      return;
    }
    if (at(Hook::PRE_SEND_INITIAL_METADATA)) Begin();
    if (!failure_.ok()) {
      // Hijacked: nothing reaches the transport. This interceptor answers
      // every operation of the call instead of the server.
      if (at(Hook::PRE_SEND_MESSAGE)) methods->FailHijackedSendMessage();
      if (at(Hook::PRE_RECV_MESSAGE)) methods->FailHijackedRecvMessage();
      if (at(Hook::PRE_RECV_STATUS)) *methods->GetRecvStatus() = failure_;
      if (at(Hook::PRE_SEND_INITIAL_METADATA)) {
        methods->Hijack();
      } else {
        methods->Proceed();
      }
      return;
    }
    if (at(Hook::PRE_SEND_INITIAL_METADATA)) {
      std::this_thread::sleep_for(fate_.request_delay);
    }
    if (at(Hook::PRE_SEND_MESSAGE)) {
      // Serializes the message now rather than when it is sent: no extra
      // work, the sent bytes are these.
      if (const grpc::ByteBuffer* sent = methods->GetSerializedSendMessage()) {
        link_->request_bytes += sent->Length();
      }
    }
    if (at(Hook::POST_RECV_MESSAGE) && count_responses_) {
      // Generated stubs receive into their protobuf message type, whose
      // bases (Message, MessageLite) form a single non-virtual chain: the
      // pointer is also the MessageLite's.
      if (const void* received = methods->GetRecvMessage()) {
        link_->response_bytes +=
            static_cast<const google::protobuf::MessageLite*>(received)
                ->ByteSizeLong();
      }
    }
    if ((at(Hook::POST_RECV_INITIAL_METADATA) || at(Hook::POST_RECV_STATUS)) &&
        !response_delayed_.exchange(true)) {
      std::this_thread::sleep_for(fate_.response_delay);
    }
    methods->Proceed();
  }

 private:
  // The call starts: decide its fate.
  void Begin() {
    ++link_->calls;
    fate_ = Draw(link_->spec, *random_);
    const Clock::duration elapsed =
        Clock::now() - Clock::time_point(Clock::duration(link_->start.load()));
    if (const auto* window = link_->PartitionAt(elapsed)) {
      ++link_->partitioned;
      failure_ = grpc::Status(
          grpc::StatusCode::UNAVAILABLE,
          absl::StrCat("link ", link_->name, " partitioned (from ",
                       window->start_ms(), " to ", window->end_ms(),
                       " ms after the first phase began)"));
    } else if (fate_.lost) {
      ++link_->lost;
      failure_ = grpc::Status(grpc::StatusCode::UNAVAILABLE,
                              absl::StrCat("lost on link ", link_->name));
    }
  }

  const std::shared_ptr<LinkState> link_;
  const std::shared_ptr<ChannelRandom> random_;
  const bool count_responses_;
  // Set by the first batch, before any other batch of the call runs.
  Fate fate_;
  grpc::Status failure_;
  std::atomic<bool> response_delayed_{false};
};

class LinkInterceptorFactory final
    : public gx::ClientInterceptorFactoryInterface {
 public:
  LinkInterceptorFactory(std::shared_ptr<LinkState> link,
                         std::shared_ptr<ChannelRandom> random)
      : link_(std::move(link)), random_(std::move(random)) {}

  gx::Interceptor* CreateClientInterceptor(gx::ClientRpcInfo* info) override {
    return new LinkInterceptor(link_, random_,
                               IsGeneratedMethod(info->method()));
  }

 private:
  const std::shared_ptr<LinkState> link_;
  const std::shared_ptr<ChannelRandom> random_;
};

constexpr int kMaxReceiveMessageBytes = 8 << 20;

}  // namespace

Links::Links(const residency::v1::World& world, uint64_t seed) {
  const Clock::rep now = Clock::now().time_since_epoch().count();
  for (int i = 0; i < world.links_size(); ++i) {
    auto link = std::make_shared<LinkState>();
    link->spec = world.links(i);
    link->name = absl::StrCat(link->spec.a(), "-", link->spec.b());
    link->seed = seed;
    link->index = static_cast<uint32_t>(i);
    link->start = now;
    links_.push_back(std::move(link));
  }
}

Links::~Links() = default;

void Links::Start() {
  const Clock::rep now = Clock::now().time_since_epoch().count();
  for (const auto& link : links_) link->start = now;
}

std::shared_ptr<LinkState> Links::Find(const std::string& from,
                                       const std::string& to) const {
  if (from == to) return nullptr;
  for (const auto& link : links_) {
    const auto& spec = link->spec;
    if ((spec.a() == from && spec.b() == to) ||
        (spec.a() == to && spec.b() == from)) {
      return link;
    }
  }
  return nullptr;
}

absl::StatusOr<std::shared_ptr<grpc::Channel>> Links::Channel(
    const std::string& from, const std::string& to, const std::string& address,
    const tls::TlsMaterial& material) {
  const std::shared_ptr<LinkState> link = Find(from, to);
  if (link == nullptr) {
    return tls::MakeChannel(
        address, material,
        {.max_receive_message_bytes = kMaxReceiveMessageBytes});
  }
  if (address.empty()) {
    return absl::InvalidArgumentError(
        absl::StrCat("channel across link ", link->name, ": empty address"));
  }
  absl::StatusOr<std::shared_ptr<grpc::ChannelCredentials>> credentials =
      tls::MakeChannelCredentials(material);
  if (!credentials.ok()) return credentials.status();
  grpc::ChannelArguments arguments;
  arguments.SetMaxReceiveMessageSize(kMaxReceiveMessageBytes);

  // std::seed_seq keeps 32 bits of each value.
  const uint32_t ordinal = link->channels++;
  std::seed_seq seq{static_cast<uint32_t>(link->seed),
                    static_cast<uint32_t>(link->seed >> 32), link->index,
                    ordinal};
  auto random = std::make_shared<ChannelRandom>();
  random->rng.seed(seq);

  std::vector<std::unique_ptr<gx::ClientInterceptorFactoryInterface>> factories;
  factories.push_back(
      std::make_unique<LinkInterceptorFactory>(link, std::move(random)));
  return gx::CreateCustomChannelWithInterceptors(
      address, *credentials, arguments, std::move(factories));
}

std::vector<LinkStats> Links::Stats() const {
  std::vector<LinkStats> stats;
  stats.reserve(links_.size());
  for (const auto& link : links_) {
    LinkStats s;
    s.a = link->spec.a();
    s.b = link->spec.b();
    s.calls = link->calls.load();
    s.lost = link->lost.load();
    s.partitioned = link->partitioned.load();
    s.request_bytes = link->request_bytes.load();
    s.response_bytes = link->response_bytes.load();
    stats.push_back(std::move(s));
  }
  return stats;
}

}  // namespace residency::sim
