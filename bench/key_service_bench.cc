// Key service throughput over mTLS on loopback: Unwrap and GenerateDataKey
// calls per second at 1, 4 and 16 concurrent callers, beside an empty unary
// RPC on the same kind of server (callback API, same credentials) in the
// same run. Every key service answer waits for its audit entry to be
// durable (synced), as in production; concurrent entries share a sync.
#include <grpcpp/grpcpp.h>

#include <algorithm>
#include <array>
#include <atomic>
#include <chrono>
#include <cstdint>
#include <filesystem>
#include <limits>
#include <memory>
#include <optional>
#include <string>

#include "absl/strings/str_cat.h"
#include "absl/synchronization/mutex.h"
#include "bench/bench_summary.h"
#include "bench/ping.grpc.pb.h"
#include "benchmark/benchmark.h"
#include "key_service/server.h"
#include "residency/v1/key_service.grpc.pb.h"
#include "rpc/status.h"
#include "tls/credentials.h"
#include "tls/pki.h"

namespace residency::key_service {
namespace {

using ::residency::v1::Justification;
using ::residency::v1::KeyService;

constexpr char kPolicy[] = R"pb(
  jurisdiction: "US"
  rules {
    name: "bench-user-owns-everything"
    effect: ALLOW
    principals: "residency://user/bench"
    justifications: CUSTOMER_INITIATED_ACCESS
  }
)pb";

class PingService final : public residency::bench::Ping::CallbackService {
  grpc::ServerUnaryReactor* Ping(grpc::CallbackServerContext* context,
                                 const residency::bench::PingRequest*,
                                 residency::bench::PingResponse*) override {
    auto* reactor = context->DefaultReactor();
    reactor->Finish(grpc::Status::OK);
    return reactor;
  }
};

// Both servers and the client channels, set up once for every benchmark.
struct World {
  std::string dir;
  std::optional<tls::CertificateAuthority> ca;
  std::unique_ptr<KeyServiceServer> key_service;
  PingService ping_service;
  std::unique_ptr<grpc::Server> ping_server;
  std::shared_ptr<grpc::Channel> key_channel;
  std::shared_ptr<grpc::Channel> ping_channel;
  v1::WrappedKey wrapped;
  v1::ObjectRef object;
};

std::unique_ptr<World> world;

template <typename T>
T Check(absl::StatusOr<T> value, const char* what) {
  if (!value.ok()) {
    std::fprintf(stderr, "key_service_bench: %s: %s\n", what,
                 rpc::Describe(value.status()).c_str());
    std::exit(1);
  }
  return *std::move(value);
}

v1::RequestMetadata Meta() {
  v1::RequestMetadata m;
  m.set_request_id("bench");
  m.mutable_justification()->set_reason(
      Justification::CUSTOMER_INITIATED_ACCESS);
  return m;
}

void SetUpWorld() {
  world = std::make_unique<World>();
  char tmpl[] = "/tmp/key_service_bench.XXXXXX";
  if (mkdtemp(tmpl) == nullptr) std::exit(1);
  world->dir = tmpl;
  world->ca.emplace(Check(tls::CertificateAuthority::Create("bench-ca"), "CA"));
  tls::Identity server_identity =
      Check(world->ca->Issue("residency://service/bench-custodian"), "cert");
  tls::Identity client_identity =
      Check(world->ca->Issue("residency://user/bench"), "cert");

  KeyServiceServerOptions options;
  options.tls = server_identity.Material();
  options.jurisdiction = "US";
  options.data_dir = world->dir + "/ks";
  world->key_service =
      Check(KeyServiceServer::Start(
                std::move(options),
                Check(PolicyEngine::Parse(kPolicy, "bench"), "policy")),
            "key service");

  grpc::ServerBuilder builder;
  int ping_port = 0;
  builder.AddListeningPort(
      "127.0.0.1:0",
      Check(tls::MakeServerCredentials(server_identity.Material()), "creds"),
      &ping_port);
  builder.RegisterService(&world->ping_service);
  world->ping_server = builder.BuildAndStart();
  if (world->ping_server == nullptr) std::exit(1);

  world->key_channel = Check(tls::MakeChannel(world->key_service->address(),
                                              client_identity.Material()),
                             "channel");
  world->ping_channel =
      Check(tls::MakeChannel(absl::StrCat("127.0.0.1:", ping_port),
                             client_identity.Material()),
            "channel");

  auto stub = KeyService::NewStub(world->key_channel);
  {
    grpc::ClientContext context;
    v1::CreateKeyRequest request;
    *request.mutable_metadata() = Meta();
    request.set_key_id("bench-key");
    request.set_owner("bench");
    v1::CreateKeyResponse response;
    if (!stub->CreateKey(&context, request, &response).ok()) std::exit(1);
  }
  world->object.set_owner("bench");
  world->object.set_object_id("bench-object");
  world->object.set_version(1);
  {
    grpc::ClientContext context;
    v1::GenerateDataKeyRequest request;
    *request.mutable_metadata() = Meta();
    request.set_key_id("bench-key");
    *request.mutable_context() = world->object;
    v1::GenerateDataKeyResponse response;
    if (!stub->GenerateDataKey(&context, request, &response).ok()) {
      std::exit(1);
    }
    world->wrapped = response.wrapped_key();
  }
}

void TearDownWorld() {
  if (world == nullptr) return;
  world->ping_server->Shutdown();
  world->key_service.reset();
  std::filesystem::remove_all(world->dir);
  world.reset();
}

void BM_EmptyRpc(benchmark::State& state) {
  auto stub = residency::bench::Ping::NewStub(world->ping_channel);
  residency::bench::PingRequest request;
  for (auto _ : state) {
    grpc::ClientContext context;
    residency::bench::PingResponse response;
    grpc::Status s = stub->Ping(&context, request, &response);
    if (!s.ok())
      state.SkipWithError(rpc::Describe(rpc::FromGrpcStatus(s)).c_str());
  }
  state.SetItemsProcessed(state.iterations());
}

// Audit entries per synced write during a benchmark: how well concurrent
// answers share a sync (group commit).
class SyncSharing {
 public:
  explicit SyncSharing(const benchmark::State& state)
      : audit_(world->key_service->custodian().audit()),
        active_(state.thread_index() == 0),
        entries_(audit_.last_sequence()),
        batches_(audit_.write_batches()) {}
  void Report(benchmark::State& state) const {
    if (!active_) return;
    const double batches =
        static_cast<double>(audit_.write_batches() - batches_);
    if (batches > 0) {
      state.counters["entries_per_sync"] =
          static_cast<double>(audit_.last_sequence() - entries_) / batches;
    }
  }

 private:
  const AuditLog& audit_;
  const bool active_;
  const uint64_t entries_;
  const uint64_t batches_;
};

void BM_Unwrap(benchmark::State& state) {
  auto stub = KeyService::NewStub(world->key_channel);
  v1::UnwrapRequest request;
  *request.mutable_metadata() = Meta();
  *request.mutable_wrapped_key() = world->wrapped;
  *request.mutable_context() = world->object;
  SyncSharing sharing(state);
  for (auto _ : state) {
    grpc::ClientContext context;
    v1::UnwrapResponse response;
    grpc::Status s = stub->Unwrap(&context, request, &response);
    if (!s.ok())
      state.SkipWithError(rpc::Describe(rpc::FromGrpcStatus(s)).c_str());
  }
  state.SetItemsProcessed(state.iterations());
  sharing.Report(state);
}

void BM_GenerateDataKey(benchmark::State& state) {
  auto stub = KeyService::NewStub(world->key_channel);
  v1::GenerateDataKeyRequest request;
  *request.mutable_metadata() = Meta();
  request.set_key_id("bench-key");
  *request.mutable_context() = world->object;
  for (auto _ : state) {
    grpc::ClientContext context;
    v1::GenerateDataKeyResponse response;
    grpc::Status s = stub->GenerateDataKey(&context, request, &response);
    if (!s.ok())
      state.SkipWithError(rpc::Describe(rpc::FromGrpcStatus(s)).c_str());
  }
  state.SetItemsProcessed(state.iterations());
}

// Unwrap through the custodian directly, without gRPC.
void BM_CustodianUnwrap(benchmark::State& state) {
  Custodian& custodian = world->key_service->custodian();
  v1::UnwrapRequest request;
  *request.mutable_metadata() = Meta();
  *request.mutable_wrapped_key() = world->wrapped;
  *request.mutable_context() = world->object;
  for (auto _ : state) {
    v1::UnwrapResponse response;
    absl::Status s = CallAndWait([&](Custodian::Done done) {
      custodian.Unwrap("residency://user/bench", request, &response,
                       std::move(done));
    });
    if (!s.ok()) state.SkipWithError(rpc::Describe(s).c_str());
  }
  state.SetItemsProcessed(state.iterations());
}

// Unwrap and the empty RPC alternately, for the target's figure. Time is cut
// into slices of kPairSlice on the steady clock, alternately Unwrap's and the
// empty RPC's, and every caller follows them: a call is of its slice's kind
// and counts only if it also ends inside that slice (the few that straddle a
// boundary, at most one per caller, are dropped on both sides alike). Only
// whole slices during which every caller was running count: not the start,
// while callers are still starting, nor the end, when those done first have
// stopped. Each kind's rate is its counted calls over the time of its
// slices, and the "ratio" counter is Unwrap's rate over the empty RPC's. A
// host whose speed drifts over seconds, as a shared machine's does, slows
// both kinds alike, so this ratio is far steadier than two figures measured
// seconds apart. Work that Unwrap leaves to run in the background (the
// audit log's RocksDB flushes) may spill into the empty RPC's slices and
// flatter the ratio a little; the separate figures are printed beside it.
constexpr std::chrono::nanoseconds kPairSlice = std::chrono::milliseconds(100);
constexpr int64_t kMaxPairSlices = 4096;  // 409 s, far beyond any run
constexpr int kMaxPairCallers = 64;

// The current run of BM_PairedUnwrap. Thread 0 resets it before the loop's
// start barrier; thread 0 reads it after the stop barrier, when every
// caller's stores are visible.
struct PairedRun {
  int64_t base_slice = 0;
  // Counted calls by slice - base_slice.
  std::array<std::atomic<uint64_t>, kMaxPairSlices> calls;
  // Each caller's first call start and last call end, in steady clock ticks.
  std::array<std::atomic<int64_t>, kMaxPairCallers> first_start;
  std::array<std::atomic<int64_t>, kMaxPairCallers> last_end;
};
PairedRun paired;

int64_t SliceOf(std::chrono::steady_clock::time_point t) {
  return t.time_since_epoch() / kPairSlice;
}

// Calls per second of each kind ([0] empty RPC, [1] Unwrap) over the whole
// slices between the last caller's first call and the first caller's last;
// zero for a kind with no such slice.
std::array<double, 2> PairedRates(int callers) {
  using Clock = std::chrono::steady_clock;
  int64_t from = std::numeric_limits<int64_t>::min();
  int64_t to = std::numeric_limits<int64_t>::max();
  for (int i = 0; i < callers; ++i) {
    from = std::max(from, paired.first_start[i].load());
    to = std::min(to, paired.last_end[i].load());
  }
  std::array<uint64_t, 2> calls = {0, 0};
  std::array<double, 2> seconds = {0, 0};
  // Slices that begin at or after `from` and end at or before `to`.
  const int64_t first =
      SliceOf(Clock::time_point(Clock::duration(from - 1))) + 1;
  const int64_t last = SliceOf(Clock::time_point(Clock::duration(to))) - 1;
  for (int64_t slice = first; slice <= last; ++slice) {
    const int64_t index = slice - paired.base_slice;
    if (index < 0 || index >= kMaxPairSlices) continue;
    calls[slice % 2] += paired.calls[index].load();
    seconds[slice % 2] += std::chrono::duration<double>(kPairSlice).count();
  }
  std::array<double, 2> rates = {0, 0};
  for (int kind = 0; kind < 2; ++kind) {
    if (seconds[kind] > 0) {
      rates[kind] = static_cast<double>(calls[kind]) / seconds[kind];
    }
  }
  return rates;
}

void BM_PairedUnwrap(benchmark::State& state) {
  using Clock = std::chrono::steady_clock;
  const int caller = state.thread_index();
  if (state.threads() > kMaxPairCallers) {
    state.SkipWithError("too many callers for BM_PairedUnwrap");
    return;
  }
  auto key_stub = KeyService::NewStub(world->key_channel);
  auto ping_stub = residency::bench::Ping::NewStub(world->ping_channel);
  v1::UnwrapRequest request;
  *request.mutable_metadata() = Meta();
  *request.mutable_wrapped_key() = world->wrapped;
  *request.mutable_context() = world->object;
  residency::bench::PingRequest ping;
  if (caller == 0) {
    paired.base_slice = SliceOf(Clock::now());
    for (auto& calls : paired.calls) calls = 0;
  }
  bool first = true;
  for (auto _ : state) {
    const Clock::time_point start = Clock::now();
    if (first) {
      paired.first_start[caller] = start.time_since_epoch().count();
      first = false;
    }
    const int64_t slice = SliceOf(start);
    grpc::ClientContext context;
    grpc::Status s;
    if (slice % 2 == 1) {
      v1::UnwrapResponse response;
      s = key_stub->Unwrap(&context, request, &response);
    } else {
      residency::bench::PingResponse response;
      s = ping_stub->Ping(&context, ping, &response);
    }
    if (!s.ok()) {
      state.SkipWithError(rpc::Describe(rpc::FromGrpcStatus(s)).c_str());
      break;
    }
    const Clock::time_point end = Clock::now();
    paired.last_end[caller] = end.time_since_epoch().count();
    const int64_t index = slice - paired.base_slice;
    if (SliceOf(end) == slice && index >= 0 && index < kMaxPairSlices) {
      paired.calls[index].fetch_add(1, std::memory_order_relaxed);
    }
  }
  if (caller == 0 && !first) {
    const std::array<double, 2> rates = PairedRates(state.threads());
    if (rates[0] > 0 && rates[1] > 0) {
      state.counters["ratio"] = rates[1] / rates[0];
    }
  }
  state.SetItemsProcessed(state.iterations());
}

constexpr int kCallers[] = {1, 4, 16};

void Callers(benchmark::internal::Benchmark* b) {
  for (int n : kCallers) b->Threads(n);
  b->UseRealTime();
}

BENCHMARK(BM_EmptyRpc)->Apply(Callers);
BENCHMARK(BM_Unwrap)->Apply(Callers);
BENCHMARK(BM_GenerateDataKey)->Apply(Callers);
BENCHMARK(BM_CustodianUnwrap)->Apply(Callers);
// The target's figure: about 10 slices of each kind even in a quick pass
// (this overrides --benchmark_min_time).
BENCHMARK(BM_PairedUnwrap)->Threads(16)->UseRealTime()->MinTime(2.0);

std::vector<bench::Comparison> Comparisons() {
  std::vector<bench::Comparison> out;
  for (int n : kCallers) {
    const std::string suffix = absl::StrCat("/real_time/threads:", n);
    out.push_back({absl::StrCat("Unwrap, ", n, " callers"),
                   "BM_Unwrap" + suffix, "BM_EmptyRpc" + suffix,
                   n == 16 ? 0.7 : 0,
                   n == 16 ? "BM_PairedUnwrap/min_time:2.000/real_time/"
                             "threads:16"
                           : ""});
    out.push_back({absl::StrCat("GenerateDataKey, ", n, " callers"),
                   "BM_GenerateDataKey" + suffix, "BM_EmptyRpc" + suffix, 0,
                   ""});
  }
  return out;
}

}  // namespace
}  // namespace residency::key_service

int main(int argc, char** argv) {
  absl::SetMutexDeadlockDetectionMode(absl::OnDeadlockCycle::kIgnore);
  residency::key_service::SetUpWorld();
  const int rc = residency::bench::RunWithSummary(
      argc, argv, residency::key_service::Comparisons());
  residency::key_service::TearDownWorld();
  return rc;
}
