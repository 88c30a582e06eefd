#include "sim/links.h"

#include <google/protobuf/descriptor.h>
#include <google/protobuf/message.h>
#include <google/protobuf/message_lite.h>
#include <grpcpp/support/client_interceptor.h>

#include <algorithm>
#include <atomic>
#include <chrono>
#include <mutex>
#include <random>
#include <set>
#include <thread>
#include <utility>

#include "absl/base/thread_annotations.h"
#include "absl/strings/str_cat.h"
#include "absl/strings/string_view.h"
#include "residency/v1/common.pb.h"

namespace residency::sim {
namespace internal {

using Clock = std::chrono::steady_clock;

double Milliseconds(Clock::duration d) {
  return std::chrono::duration<double, std::milli>(d).count();
}

// An armed tap, shared by the link and the calls that started while it was
// armed.
struct TapState {
  std::string canary;
  Clock::time_point armed;
  std::mutex mu;
  TapStats stats ABSL_GUARDED_BY(mu);
  std::set<uint32_t> channels ABSL_GUARDED_BY(mu);
  std::set<std::string> object_versions ABSL_GUARDED_BY(mu);
};

// One World.links entry, shared by Links and the interceptors of its
// channels (which may outlive Links).
struct LinkState {
  residency::v1::LinkSpec spec;
  std::string name;  // "CN-US"
  uint64_t seed = 0;
  uint32_t index = 0;  // In World.links.

  // Clock::time_point::rep of the partition clock's origin.
  std::atomic<Clock::rep> start{0};
  // Where each of spec.partitions() counts from, in milliseconds of the
  // partition clock: 0 for a window of the first phase, the start of its
  // phase once that has begun, kNotYet before.
  static constexpr int64_t kNotYet = INT64_MIN;
  std::unique_ptr<std::atomic<int64_t>[]> origin_ms;
  std::atomic<uint32_t> channels{0};

  std::atomic<uint64_t> calls{0};
  std::atomic<uint64_t> lost{0};
  std::atomic<uint64_t> partitioned{0};
  std::atomic<uint64_t> request_bytes{0};
  std::atomic<uint64_t> response_bytes{0};

  std::mutex tap_mu;
  std::shared_ptr<TapState> tap ABSL_GUARDED_BY(tap_mu);

  std::shared_ptr<TapState> Tapped() {
    std::lock_guard<std::mutex> lock(tap_mu);
    return tap;
  }

  Clock::duration Elapsed() const {
    return Clock::now() - Clock::time_point(Clock::duration(start.load()));
  }

  // Window i of spec.partitions() as [begin, end) milliseconds of the
  // partition clock; false while it is not in force yet.
  bool WindowAt(int i, double& begin, double& end) const {
    const int64_t origin = origin_ms[i].load();
    if (origin == kNotYet) return false;
    const auto& w = spec.partitions(i);
    begin = static_cast<double>(origin + int64_t{w.start_ms()});
    end = static_cast<double>(origin + int64_t{w.end_ms()});
    return true;
  }

  // Resets every window's origin as the partition clock restarts.
  void ResetOrigins() {
    for (int i = 0; i < spec.partitions_size(); ++i) {
      origin_ms[i] = spec.partitions(i).phase().empty() ? 0 : kNotYet;
    }
  }

  // The window the link is in `elapsed` after the start, or nullptr.
  const residency::v1::LinkSpec::Window* PartitionAt(
      Clock::duration elapsed) const {
    const double ms = static_cast<double>(
        std::chrono::duration_cast<std::chrono::milliseconds>(elapsed).count());
    for (int i = 0; i < spec.partitions_size(); ++i) {
      double begin, end;
      if (WindowAt(i, begin, end) && ms >= begin && ms < end) {
        return &spec.partitions(i);
      }
    }
    return nullptr;
  }
};

}  // namespace internal

namespace {

using internal::Clock;
using internal::LinkState;
using internal::Milliseconds;
using internal::TapState;
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

// The descriptor of `method` ("/residency.v1.StorageNode/Get") when it
// belongs to a service compiled into this binary, whose stubs hand
// interceptors protobuf messages; else nullptr.
const google::protobuf::MethodDescriptor* GeneratedMethod(
    absl::string_view method) {
  if (method.empty() || method[0] != '/') return nullptr;
  const size_t slash = method.find('/', 1);
  if (slash == absl::string_view::npos) return nullptr;
  const google::protobuf::ServiceDescriptor* service =
      google::protobuf::DescriptorPool::generated_pool()->FindServiceByName(
          std::string(method.substr(1, slash - 1)));
  if (service == nullptr) return nullptr;
  return service->FindMethodByName(std::string(method.substr(slash + 1)));
}

// What a tap reads inside one message.
struct Inside {
  // owner/object_id/version of every ObjectRef, and the owners.
  std::vector<std::pair<std::string, std::string>> refs;
  uint64_t data_keys = 0;
};

// Walks `message` for ObjectRefs and non-empty plaintext_key fields (the
// secret of GenerateDataKey and Unwrap responses), to a bounded depth.
void Inspect(const google::protobuf::Message& message, int depth,
             Inside* inside) {
  if (depth > 8) return;
  if (const auto* ref =
          dynamic_cast<const residency::v1::ObjectRef*>(&message)) {
    inside->refs.emplace_back(
        ref->owner(),
        absl::StrCat(ref->owner(), "/", ref->object_id(), "/", ref->version()));
    return;
  }
  using google::protobuf::FieldDescriptor;
  const google::protobuf::Reflection* reflection = message.GetReflection();
  std::vector<const FieldDescriptor*> fields;
  reflection->ListFields(message, &fields);
  for (const FieldDescriptor* field : fields) {
    if (field->cpp_type() == FieldDescriptor::CPPTYPE_MESSAGE) {
      if (field->is_repeated()) {
        for (int i = 0; i < reflection->FieldSize(message, field); ++i) {
          Inspect(reflection->GetRepeatedMessage(message, field, i), depth + 1,
                  inside);
        }
      } else {
        Inspect(reflection->GetMessage(message, field), depth + 1, inside);
      }
    } else if (field->type() == FieldDescriptor::TYPE_BYTES &&
               !field->is_repeated() && field->name() == "plaintext_key" &&
               !reflection->GetString(message, field).empty()) {
      ++inside->data_keys;
    }
  }
}

// One call's view of the tap armed when it started.
class TappedCall {
 public:
  TappedCall(std::shared_ptr<TapState> tap, const std::string& method,
             uint32_t channel, double at_ms)
      : tap_(std::move(tap)), method_(method) {
    const double since_armed = Milliseconds(Clock::now() - tap_->armed);
    const size_t bucket =
        static_cast<size_t>(std::max(0.0, since_armed) / TapStats::kBucketMs);
    std::lock_guard<std::mutex> lock(tap_->mu);
    TapStats& stats = tap_->stats;
    ++stats.methods[method_].calls;
    if (stats.calls_over_time.size() <= bucket) {
      stats.calls_over_time.resize(bucket + 1);
    }
    ++stats.calls_over_time[bucket];
    tap_->channels.insert(channel);
    stats.connections = tap_->channels.size();
    at_ms_ = at_ms;
  }

  // One message of the call crossed: `bytes` serialized, `message` the same
  // message parsed (nullptr when the tap cannot read its type).
  void Message(bool request, absl::string_view bytes,
               const google::protobuf::Message* message, double at_ms) {
    Inside inside;
    if (message != nullptr) Inspect(*message, 0, &inside);
    const bool canary = !tap_->canary.empty() &&
                        bytes.find(tap_->canary) != absl::string_view::npos;
    const uint64_t size = bytes.size();
    uint64_t bound = 0;
    for (uint64_t b : TapStats::SizeBounds()) {
      if (size <= b) {
        bound = b;
        break;
      }
    }
    std::lock_guard<std::mutex> lock(tap_->mu);
    TapStats& stats = tap_->stats;
    TapMethodStats& m = stats.methods[method_];
    uint64_t& messages = request ? m.request_messages : m.response_messages;
    uint64_t& total = request ? m.request_bytes : m.response_bytes;
    uint64_t& min = request ? m.min_request_bytes : m.min_response_bytes;
    uint64_t& max = request ? m.max_request_bytes : m.max_response_bytes;
    min = messages == 0 ? size : std::min(min, size);
    max = std::max(max, size);
    ++messages;
    total += size;
    ++stats.message_sizes[bound];
    if (canary) {
      ++stats.canary_hits;
      stats.canary_bytes += size;
    }
    stats.data_keys += inside.data_keys;
    for (auto& [owner, version] : inside.refs) {
      tap_->object_versions.insert(std::move(version));
      if (!owners_named_.insert(owner).second) continue;
      TapOwnerStats& o = stats.owners[owner];
      o.first_ms = o.calls == 0 ? at_ms_ : std::min(o.first_ms, at_ms_);
      o.last_ms = std::max(o.last_ms, at_ms);
      ++o.calls;
    }
    stats.object_versions = tap_->object_versions.size();
  }

 private:
  const std::shared_ptr<TapState> tap_;
  const std::string method_;
  // When the call started; owners this call's messages named. Guarded by
  // tap_->mu.
  double at_ms_ = 0;
  std::set<std::string> owners_named_;
};

// One call across a link. gRPC runs the hooks of one call one batch at a
// time, but a stream's reads and writes may come from different threads:
// what changes after the first batch is atomic or locked.
class LinkInterceptor final : public gx::Interceptor {
 public:
  LinkInterceptor(std::shared_ptr<LinkState> link,
                  std::shared_ptr<ChannelRandom> random, uint32_t channel,
                  std::string method, bool generated)
      : link_(std::move(link)),
        random_(std::move(random)),
        channel_(channel),
        method_(std::move(method)),
        generated_(generated) {}

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
      // The message itself, before serializing it below makes gRPC drop the
      // pointer. Generated stubs send protobuf messages (see below).
      const google::protobuf::Message* message = nullptr;
      if (tap_ != nullptr && generated_) {
        message = dynamic_cast<const google::protobuf::Message*>(
            static_cast<const google::protobuf::MessageLite*>(
                methods->GetSendMessage()));
      }
      // Serializes the message now rather than when it is sent: no extra
      // work, the sent bytes are these.
      if (const grpc::ByteBuffer* sent = methods->GetSerializedSendMessage()) {
        link_->request_bytes += sent->Length();
        if (tap_ != nullptr) {
          tap_->Message(/*request=*/true, Flatten(*sent), message, NowMs());
        }
      }
    }
    if (at(Hook::POST_RECV_MESSAGE) && generated_) {
      // Generated stubs receive into their protobuf message type, whose
      // bases (Message, MessageLite) form a single non-virtual chain: the
      // pointer is also the MessageLite's.
      if (const void* received = methods->GetRecvMessage()) {
        const auto* lite =
            static_cast<const google::protobuf::MessageLite*>(received);
        link_->response_bytes += lite->ByteSizeLong();
        if (tap_ != nullptr) {
          tap_->Message(/*request=*/false, lite->SerializeAsString(),
                        dynamic_cast<const google::protobuf::Message*>(lite),
                        NowMs());
        }
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
    if (const auto* window = link_->PartitionAt(link_->Elapsed())) {
      ++link_->partitioned;
      failure_ = grpc::Status(
          grpc::StatusCode::UNAVAILABLE,
          absl::StrCat(
              "link ", link_->name, " partitioned (from ", window->start_ms(),
              " to ", window->end_ms(), " ms after ",
              window->phase().empty() ? std::string("the first phase")
                                      : absl::StrCat("phase ", window->phase()),
              " began)"));
    } else if (fate_.lost) {
      ++link_->lost;
      failure_ = grpc::Status(grpc::StatusCode::UNAVAILABLE,
                              absl::StrCat("lost on link ", link_->name));
    } else if (std::shared_ptr<TapState> tap = link_->Tapped()) {
      // Only calls that cross are tapped.
      tap_ = std::make_unique<TappedCall>(std::move(tap), method_, channel_,
                                          NowMs());
    }
  }

  double NowMs() const { return Milliseconds(link_->Elapsed()); }

  static std::string Flatten(const grpc::ByteBuffer& buffer) {
    std::vector<grpc::Slice> slices;
    std::string bytes;
    if (!buffer.Dump(&slices).ok()) return bytes;
    bytes.reserve(buffer.Length());
    for (const grpc::Slice& slice : slices) {
      bytes.append(reinterpret_cast<const char*>(slice.begin()), slice.size());
    }
    return bytes;
  }

  const std::shared_ptr<LinkState> link_;
  const std::shared_ptr<ChannelRandom> random_;
  const uint32_t channel_;
  const std::string method_;
  // The method's service is compiled in: messages are protobuf messages.
  const bool generated_;
  // Set by the first batch, before any other batch of the call runs.
  Fate fate_;
  grpc::Status failure_;
  std::unique_ptr<TappedCall> tap_;
  std::atomic<bool> response_delayed_{false};
};

class LinkInterceptorFactory final
    : public gx::ClientInterceptorFactoryInterface {
 public:
  LinkInterceptorFactory(std::shared_ptr<LinkState> link,
                         std::shared_ptr<ChannelRandom> random,
                         uint32_t channel)
      : link_(std::move(link)), random_(std::move(random)), channel_(channel) {}

  gx::Interceptor* CreateClientInterceptor(gx::ClientRpcInfo* info) override {
    const std::string method = info->method() == nullptr ? "" : info->method();
    const bool generated = GeneratedMethod(method) != nullptr;
    return new LinkInterceptor(link_, random_, channel_, method, generated);
  }

 private:
  const std::shared_ptr<LinkState> link_;
  const std::shared_ptr<ChannelRandom> random_;
  const uint32_t channel_;
};

constexpr int kMaxReceiveMessageBytes = 8 << 20;

}  // namespace

Links::Links(const residency::v1::World& world, uint64_t seed) {
  const Clock::rep now = Clock::now().time_since_epoch().count();
  start_ = now;
  for (int i = 0; i < world.links_size(); ++i) {
    auto link = std::make_shared<LinkState>();
    link->spec = world.links(i);
    link->name = absl::StrCat(link->spec.a(), "-", link->spec.b());
    link->seed = seed;
    link->index = static_cast<uint32_t>(i);
    link->start = now;
    link->origin_ms = std::make_unique<std::atomic<int64_t>[]>(
        static_cast<size_t>(link->spec.partitions_size()));
    link->ResetOrigins();
    links_.push_back(std::move(link));
  }
}

Links::~Links() = default;

void Links::Start() {
  const Clock::rep now = Clock::now().time_since_epoch().count();
  start_ = now;
  for (const auto& link : links_) {
    link->start = now;
    link->ResetOrigins();
  }
}

void Links::PhaseBegins(const std::string& phase) {
  if (phase.empty()) return;  // windows without a phase count from Start()
  const int64_t now_ms =
      static_cast<int64_t>(absl::ToInt64Milliseconds(Elapsed()));
  for (const auto& link : links_) {
    for (int i = 0; i < link->spec.partitions_size(); ++i) {
      if (link->spec.partitions(i).phase() == phase) {
        link->origin_ms[i] = now_ms;
      }
    }
  }
}

absl::Duration Links::Elapsed() const {
  return absl::FromChrono(Clock::now() -
                          Clock::time_point(Clock::duration(start_.load())));
}

Links::Overlap Links::PartitionOverlap(const std::string& from,
                                       const std::string& to,
                                       absl::Duration begin,
                                       absl::Duration end) const {
  const std::shared_ptr<LinkState> link = Find(from, to);
  if (link == nullptr) return Overlap::kNone;
  // Calls fail when they start in [start_ms, end_ms).
  const double b = absl::ToDoubleMilliseconds(begin);
  const double e = absl::ToDoubleMilliseconds(end);
  Overlap overlap = Overlap::kNone;
  for (int i = 0; i < link->spec.partitions_size(); ++i) {
    double ws, we;
    if (!link->WindowAt(i, ws, we)) continue;
    if (b >= ws && e < we) return Overlap::kWholly;
    if (b < we && e >= ws) overlap = Overlap::kPartly;
  }
  return overlap;
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
  absl::StatusOr<grpc::ChannelArguments> arguments = tls::MakeChannelArguments(
      {.max_receive_message_bytes = kMaxReceiveMessageBytes});
  if (!arguments.ok()) return arguments.status();

  // std::seed_seq keeps 32 bits of each value.
  const uint32_t ordinal = link->channels++;
  std::seed_seq seq{static_cast<uint32_t>(link->seed),
                    static_cast<uint32_t>(link->seed >> 32), link->index,
                    ordinal};
  auto random = std::make_shared<ChannelRandom>();
  random->rng.seed(seq);

  std::vector<std::unique_ptr<gx::ClientInterceptorFactoryInterface>> factories;
  factories.push_back(std::make_unique<LinkInterceptorFactory>(
      link, std::move(random), ordinal));
  return gx::CreateCustomChannelWithInterceptors(
      address, *credentials, *arguments, std::move(factories));
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

absl::Status Links::Tap(const std::string& a, const std::string& b,
                        const std::string& canary) {
  const std::shared_ptr<LinkState> link = Find(a, b);
  if (link == nullptr) {
    return absl::NotFoundError(absl::StrCat(
        "no link between ", a, " and ", b,
        " in world.links to tap (a pair without one is a perfect link with "
        "no interceptor; add a LinkSpec, latency_ms 0 if need be)"));
  }
  auto tap = std::make_shared<TapState>();
  tap->canary = canary;
  tap->armed = Clock::now();
  {
    std::lock_guard<std::mutex> lock(tap->mu);
    tap->stats.link = link->name;
    tap->stats.start_ms = Milliseconds(link->Elapsed());
  }
  std::lock_guard<std::mutex> lock(link->tap_mu);
  if (link->tap != nullptr) {
    return absl::FailedPreconditionError(
        absl::StrCat("link ", link->name, " is tapped already"));
  }
  link->tap = std::move(tap);
  return absl::OkStatus();
}

namespace {

TapStats Collect(LinkState& link, std::shared_ptr<TapState> tap) {
  std::lock_guard<std::mutex> lock(tap->mu);
  TapStats stats = tap->stats;
  stats.end_ms = Milliseconds(link.Elapsed());
  return stats;
}

}  // namespace

absl::StatusOr<TapStats> Links::Untap(const std::string& a,
                                      const std::string& b) {
  const std::shared_ptr<LinkState> link = Find(a, b);
  std::shared_ptr<TapState> tap;
  if (link != nullptr) {
    std::lock_guard<std::mutex> lock(link->tap_mu);
    tap = std::move(link->tap);
    link->tap = nullptr;
  }
  if (tap == nullptr) {
    return absl::NotFoundError(
        absl::StrCat("no tap armed on a link between ", a, " and ", b));
  }
  return Collect(*link, std::move(tap));
}

std::vector<TapStats> Links::UntapAll() {
  std::vector<TapStats> all;
  for (const auto& link : links_) {
    std::shared_ptr<TapState> tap;
    {
      std::lock_guard<std::mutex> lock(link->tap_mu);
      tap = std::move(link->tap);
      link->tap = nullptr;
    }
    if (tap != nullptr) all.push_back(Collect(*link, std::move(tap)));
  }
  return all;
}

}  // namespace residency::sim
