// End-to-end throughput through the client library over mTLS on loopback:
// encrypted Put and Get of 1 KiB, 1 MiB and 64 MiB objects with 1 and 8
// concurrent streams, against an in-process key service and storage node.
//
// Baselines, measured in the same run:
//  - Put: Client::PutSealed, the same upload path (stream, message size,
//    deadlines) sending ciphertext and a header prepared before timing
//    starts, so it pays neither the key service nor the encryption. One
//    prepared ciphertext per size is sent under fresh object ids: the node
//    checks only lengths and header shape.
//  - Storage Put (PutSealed, the node storing in RocksDB with a synced
//    commit): the same PutSealed to a second node whose store keeps nothing
//    (storage_node::DiscardingObjectStore), so the ratio is what the node's
//    disk work costs an upload.
//  - Get: the storage node's Get stream read raw (ciphertext, no Unwrap, no
//    decryption) on the same kind of channel.
//
// Every encrypted Put asks the key service for a data key and every Get for
// an Unwrap; both answers wait for their synced audit entry, as in
// production. The data key cache is off (the client's default).
//
// With RESIDENCY_BENCH_QUICK=1 in the environment (bench/run --quick sets
// it) the 64 MiB objects run with one stream only, once per repetition.
// RESIDENCY_E2E_MESSAGE_BYTES sets ClientOptions::message_bytes (default
// 256 KiB) for both Put paths. RESIDENCY_E2E_KEY_SERVICE_DIR puts the key
// service's data in a fresh directory under the one named (e.g. /dev/shm),
// so that its synced audit appends do not queue behind the node's disk
// writes as they do when both share one disk (a deployed custodian is on
// another machine, and farther away).
//
// Everything lives in temporary directories removed at exit.
//
// BM_Put reports where its time went (keys_us, stream_us, commit_us: see
// PutPhases), and BM_Part* time the pieces an encrypted Put adds to the
// upload: each alone on idle servers, and Head with GenerateDataKey right
// after an upload, as a Put meets them when it cannot trust its version
// guess (BM_Put's objects are new: it needs no Head).
#include <grpcpp/grpcpp.h>
#include <stdlib.h>

#include <algorithm>
#include <atomic>
#include <chrono>
#include <cstdint>
#include <cstdio>
#include <cstdlib>
#include <filesystem>
#include <functional>
#include <istream>
#include <map>
#include <memory>
#include <optional>
#include <ostream>
#include <streambuf>
#include <string>
#include <vector>

#include "absl/strings/str_cat.h"
#include "absl/strings/string_view.h"
#include "absl/synchronization/mutex.h"
#include "bench/bench_summary.h"
#include "bench/streams.h"
#include "benchmark/benchmark.h"
#include "client/client.h"
#include "crypto/chunked.h"
#include "crypto/object_context.h"
#include "crypto/random.h"
#include "crypto/secret_bytes.h"
#include "key_service/server.h"
#include "residency/v1/storage.grpc.pb.h"
#include "rpc/status.h"
#include "storage_node/discarding_store.h"
#include "storage_node/server.h"
#include "tls/credentials.h"
#include "tls/pki.h"

namespace residency::client {
namespace {

constexpr char kOwner[] = "bench";
constexpr char kKeyId[] = "bench-key";
constexpr char kPolicy[] = R"pb(
  jurisdiction: "US"
  rules {
    name: "bench-user-owns-everything"
    effect: ALLOW
    principals: "residency://user/bench"
    justifications: CUSTOMER_INITIATED_ACCESS
  }
)pb";

constexpr int64_t kKiB = 1 << 10;
constexpr int64_t kMiB = 1 << 20;
constexpr int64_t kSizes[] = {kKiB, kMiB, 64 * kMiB};
constexpr int kStreams[] = {1, 8};

// Temporary directories to remove when setup fails.
std::vector<std::string>& TemporaryDirs() {
  static auto* dirs = new std::vector<std::string>;
  return *dirs;
}

void Check(const absl::Status& status, const char* what) {
  if (!status.ok()) {
    std::fprintf(stderr, "e2e_bench: %s: %s\n", what,
                 rpc::Describe(status).c_str());
    std::error_code ignored;
    for (const std::string& dir : TemporaryDirs()) {
      std::filesystem::remove_all(dir, ignored);
    }
    std::_Exit(1);
  }
}

template <typename T>
T Check(absl::StatusOr<T> value, const char* what) {
  Check(value.status(), what);
  return *std::move(value);
}

using ::residency::bench::CountingBuf;
using ::residency::bench::MemoryBuf;

// What the benchmarks share: both servers, one client (one channel to each
// server, as an application would hold it), and the prepared inputs.
struct World {
  std::string dir;
  std::string ks_dir;  // set when the key service's data lives elsewhere
  std::optional<tls::CertificateAuthority> ca;
  std::unique_ptr<key_service::KeyServiceServer> key_service;
  std::unique_ptr<storage_node::StorageNodeServer> storage_node;
  // A second node whose store keeps nothing (DiscardingObjectStore), and a
  // client of it alone: the baseline of the storage Put.
  std::unique_ptr<storage_node::StorageNodeServer> discarding_node;
  std::unique_ptr<Client> discarding_client;
  std::unique_ptr<Client> client;
  std::unique_ptr<v1::StorageNode::Stub> storage;

  struct Prepared {
    std::string plaintext;
    // The baseline's input: a header and its ciphertext, as stored by an
    // encrypted Put of `plaintext`.
    v1::ObjectHeader header;
    std::string ciphertext;
  };
  std::map<int64_t, Prepared> prepared;
};

std::unique_ptr<World> world;
std::atomic<uint64_t> next_object{0};

std::string GetObjectId(int64_t size) { return absl::StrCat("get/", size); }

v1::RequestMetadata Metadata() {
  v1::RequestMetadata metadata;
  metadata.set_request_id("e2e-bench");
  metadata.mutable_justification()->set_reason(
      v1::Justification::CUSTOMER_INITIATED_ACCESS);
  return metadata;
}

// The storage node's Get stream for the owner's object, read raw: the
// ciphertext goes to `sink`. Returns the ciphertext bytes received.
absl::StatusOr<uint64_t> ReadCiphertext(
    absl::string_view object_id,
    const std::function<void(const std::string&)>& sink) {
  v1::GetRequest request;
  *request.mutable_metadata() = Metadata();
  request.mutable_object()->set_owner(kOwner);
  request.mutable_object()->set_object_id(std::string(object_id));
  grpc::ClientContext context;
  context.set_deadline(std::chrono::system_clock::now() +
                       std::chrono::seconds(120));
  auto reader = world->storage->Get(&context, request);
  v1::GetResponse message;
  uint64_t bytes = 0;
  while (reader->Read(&message)) {
    if (message.has_data()) {
      bytes += message.data().size();
      if (sink) sink(message.data());
    }
  }
  if (absl::Status status = rpc::FromGrpcStatus(reader->Finish());
      !status.ok()) {
    return status;
  }
  return bytes;
}

void SetUpWorld() {
  world = std::make_unique<World>();
  char tmpl[] = "/tmp/e2e_bench.XXXXXX";
  if (mkdtemp(tmpl) == nullptr) {
    std::perror("e2e_bench: mkdtemp");
    std::exit(1);
  }
  world->dir = tmpl;
  TemporaryDirs().push_back(world->dir);
  world->ca.emplace(Check(tls::CertificateAuthority::Create("bench-ca"), "CA"));
  tls::Identity ks_identity =
      Check(world->ca->Issue("residency://service/bench-custodian"), "cert");
  tls::Identity sn_identity =
      Check(world->ca->Issue("residency://service/bench-node"), "cert");
  tls::Identity user = Check(
      world->ca->Issue(absl::StrCat("residency://user/", kOwner)), "cert");

  key_service::KeyServiceServerOptions ks_options;
  ks_options.tls = ks_identity.Material();
  ks_options.jurisdiction = "US";
  ks_options.data_dir = world->dir + "/ks";
  if (const char* parent = std::getenv("RESIDENCY_E2E_KEY_SERVICE_DIR")) {
    std::string ks_tmpl = absl::StrCat(parent, "/e2e_bench_ks.XXXXXX");
    if (mkdtemp(ks_tmpl.data()) == nullptr) {
      Check(absl::InternalError(absl::StrCat("cannot create ", ks_tmpl)),
            "RESIDENCY_E2E_KEY_SERVICE_DIR");
    }
    world->ks_dir = ks_tmpl;
    TemporaryDirs().push_back(world->ks_dir);
    ks_options.data_dir = world->ks_dir + "/ks";
  }
  world->key_service = Check(
      key_service::KeyServiceServer::Start(
          std::move(ks_options),
          Check(key_service::PolicyEngine::Parse(kPolicy, "bench"), "policy")),
      "key service");

  storage_node::StorageNodeServerOptions sn_options;
  sn_options.tls = sn_identity.Material();
  sn_options.jurisdiction = "CN";
  sn_options.operator_principal = "residency://operator/bench-operator";
  sn_options.data_dir = world->dir + "/sn";
  world->storage_node =
      Check(storage_node::StorageNodeServer::Start(std::move(sn_options)),
            "storage node");

  storage_node::StorageNodeServerOptions discard_options;
  discard_options.tls = sn_identity.Material();
  discard_options.jurisdiction = "CN";
  discard_options.operator_principal = "residency://operator/bench-operator";
  discard_options.data_dir = world->dir + "/sn-discarding";
  discard_options.open_store = [](const std::string&,
                                  const storage_node::ObjectStoreOptions&)
      -> absl::StatusOr<std::unique_ptr<storage_node::ObjectStore>> {
    return std::make_unique<storage_node::DiscardingObjectStore>();
  };
  world->discarding_node =
      Check(storage_node::StorageNodeServer::Start(std::move(discard_options)),
            "discarding storage node");

  ClientOptions options;
  options.owner = kOwner;
  options.mode = CustodyMode::kCustodian;
  options.key_services.push_back(
      {Check(tls::MakeChannel(world->key_service->address(), user.Material()),
             "key service channel"),
       kKeyId, world->key_service->principal()});
  options.storage =
      Check(tls::MakeChannel(world->storage_node->address(), user.Material()),
            "storage channel");
  options.residency = {"CN"};
  if (const char* bytes = std::getenv("RESIDENCY_E2E_MESSAGE_BYTES")) {
    options.message_bytes = std::strtoul(bytes, nullptr, 10);
  }
  ClientOptions discarding_options;
  discarding_options.owner = kOwner;
  discarding_options.storage = Check(
      tls::MakeChannel(world->discarding_node->address(), user.Material()),
      "discarding storage channel");
  discarding_options.message_bytes = options.message_bytes;
  world->discarding_client =
      Check(Client::Create(std::move(discarding_options)), "discarding client");
  world->client = Check(Client::Create(std::move(options)), "client");
  world->storage = v1::StorageNode::NewStub(world->client->options().storage);
  Check(world->client->CreateKey(kKeyId).status(), "CreateKey");

  for (int64_t size : kSizes) {
    World::Prepared& p = world->prepared[size];
    p.plaintext = Check(crypto::RandomBytes(size), "random plaintext");
    MemoryBuf buf(p.plaintext);
    std::istream in(&buf);
    Check(world->client->Put(GetObjectId(size), in, size).status(),
          "Put of a prepared object");
    p.header = Check(world->client->Head(GetObjectId(size)), "Head").header();
    p.ciphertext.reserve(p.header.ciphertext_length());
    const uint64_t got = Check(
        ReadCiphertext(GetObjectId(size),
                       [&](const std::string& data) { p.ciphertext += data; }),
        "Get of a prepared ciphertext");
    if (got != p.header.ciphertext_length()) {
      Check(absl::DataLossError(absl::StrCat("got ", got, " bytes of ",
                                             p.header.ciphertext_length())),
            "prepared ciphertext");
    }
  }
}

void TearDownWorld() {
  if (world == nullptr) return;
  world->client.reset();
  world->discarding_client.reset();
  world->storage.reset();
  world->storage_node.reset();
  world->discarding_node.reset();
  world->key_service.reset();
  std::filesystem::remove_all(world->dir);
  if (!world->ks_dir.empty()) std::filesystem::remove_all(world->ks_dir);
  world.reset();
}

// Objects a benchmark thread created, deleted after its timed loop so that
// the node's disk use stays bounded over a long run.
class Cleanup {
 public:
  std::string NewId(absl::string_view kind, int64_t size) {
    ids_.push_back(absl::StrCat(kind, "/", size, "/", next_object++));
    return ids_.back();
  }
  ~Cleanup() {
    for (const std::string& id : ids_) {
      absl::StatusOr<uint64_t> deleted = world->client->Delete(id);
      if (!deleted.ok()) {
        std::fprintf(stderr, "e2e_bench: Delete %s: %s\n", id.c_str(),
                     rpc::Describe(deleted.status()).c_str());
      }
    }
  }

 private:
  std::vector<std::string> ids_;
};

// One encrypted Put of the prepared plaintext under a fresh id.
// Where one encrypted Put's time went, from its progress callbacks: before
// the first plaintext piece was encrypted (GenerateDataKey, the upload
// stream opened meanwhile, and the header sent), while
// the plaintext was encrypted and sent, and after the last piece (the last
// messages, the node's commit and its answer). Seconds, summed over calls.
struct PutPhases {
  double keys = 0;
  double stream = 0;
  double commit = 0;

  void Report(benchmark::State& state) const {
    using Counter = benchmark::Counter;
    state.counters["keys_us"] = Counter(keys * 1e6, Counter::kAvgIterations);
    state.counters["stream_us"] =
        Counter(stream * 1e6, Counter::kAvgIterations);
    state.counters["commit_us"] =
        Counter(commit * 1e6, Counter::kAvgIterations);
  }
};

absl::Status EncryptedPut(Cleanup& cleanup, int64_t size,
                          PutPhases* phases = nullptr) {
  using Clock = std::chrono::steady_clock;
  const World::Prepared& p = world->prepared.at(size);
  MemoryBuf buf(p.plaintext);
  std::istream in(&buf);
  const Clock::time_point start = Clock::now();
  Clock::time_point first, last;
  bool seen = false;
  ProgressFn progress;
  if (phases != nullptr) {
    progress = [&](uint64_t) {
      last = Clock::now();
      if (!seen) first = last;
      seen = true;
    };
  }
  absl::Status status =
      world->client->Put(cleanup.NewId("put", size), in, size, progress)
          .status();
  if (phases != nullptr && seen && status.ok()) {
    const Clock::time_point end = Clock::now();
    phases->keys += std::chrono::duration<double>(first - start).count();
    phases->stream += std::chrono::duration<double>(last - first).count();
    phases->commit += std::chrono::duration<double>(end - last).count();
  }
  return status;
}

// The same upload with the prepared header and ciphertext.
absl::Status SealedPut(Cleanup& cleanup, int64_t size) {
  const World::Prepared& p = world->prepared.at(size);
  v1::ObjectHeader header = p.header;
  header.mutable_object()->set_object_id(cleanup.NewId("sealed", size));
  header.mutable_object()->set_version(1);
  MemoryBuf buf(p.ciphertext);
  std::istream in(&buf);
  return world->client->PutSealed(header, in).status();
}

// The same upload to the node that keeps nothing: the node's work without
// its disk (RocksDB writes and the synced commit).
absl::Status DiscardedPut(int64_t size) {
  const World::Prepared& p = world->prepared.at(size);
  v1::ObjectHeader header = p.header;
  header.mutable_object()->set_object_id(
      absl::StrCat("discarded/", size, "/", next_object++));
  header.mutable_object()->set_version(1);
  MemoryBuf buf(p.ciphertext);
  std::istream in(&buf);
  return world->discarding_client->PutSealed(header, in).status();
}

void BM_Put(benchmark::State& state) {
  const int64_t size = state.range(0);
  Cleanup cleanup;
  PutPhases phases;
  for (auto _ : state) {
    if (absl::Status s = EncryptedPut(cleanup, size, &phases); !s.ok()) {
      state.SkipWithError(rpc::Describe(s).c_str());
      break;
    }
  }
  state.SetBytesProcessed(state.iterations() * size);
  phases.Report(state);
}

void BM_PutSealed(benchmark::State& state) {
  const int64_t size = state.range(0);
  Cleanup cleanup;
  for (auto _ : state) {
    if (absl::Status s = SealedPut(cleanup, size); !s.ok()) {
      state.SkipWithError(rpc::Describe(s).c_str());
      break;
    }
  }
  state.SetBytesProcessed(state.iterations() * size);
}

void BM_PutSealedDiscarding(benchmark::State& state) {
  const int64_t size = state.range(0);
  for (auto _ : state) {
    if (absl::Status s = DiscardedPut(size); !s.ok()) {
      state.SkipWithError(rpc::Describe(s).c_str());
      break;
    }
  }
  state.SetBytesProcessed(state.iterations() * size);
}

// Put and PutSealed alternately in one loop (which goes first alternates
// too); the iteration time is the Put's and the "ratio" counter is Put speed
// over PutSealed speed. On a shared machine whose speed drifts this is far
// steadier than two figures measured seconds apart.
void BM_PairedPut(benchmark::State& state) {
  using Clock = std::chrono::steady_clock;
  const int64_t size = state.range(0);
  Cleanup cleanup;
  double put_seconds = 0, sealed_seconds = 0;
  bool sealed_first = true;
  for (auto _ : state) {
    absl::Status first, second;
    const Clock::time_point t0 = Clock::now();
    first =
        sealed_first ? SealedPut(cleanup, size) : EncryptedPut(cleanup, size);
    const Clock::time_point t1 = Clock::now();
    second =
        sealed_first ? EncryptedPut(cleanup, size) : SealedPut(cleanup, size);
    const Clock::time_point t2 = Clock::now();
    if (!first.ok() || !second.ok()) {
      state.SkipWithError(rpc::Describe(first.ok() ? second : first).c_str());
      break;
    }
    const double a = std::chrono::duration<double>(t1 - t0).count();
    const double b = std::chrono::duration<double>(t2 - t1).count();
    const double put = sealed_first ? b : a;
    sealed_seconds += sealed_first ? a : b;
    put_seconds += put;
    sealed_first = !sealed_first;
    state.SetIterationTime(put);
  }
  state.SetBytesProcessed(state.iterations() * size);
  if (put_seconds > 0) state.counters["ratio"] = sealed_seconds / put_seconds;
}

void BM_Get(benchmark::State& state) {
  const int64_t size = state.range(0);
  const std::string id = GetObjectId(size);
  for (auto _ : state) {
    CountingBuf sink;
    std::ostream out(&sink);
    absl::StatusOr<v1::ObjectHeader> header =
        world->client->Get(id, /*version=*/0, out);
    if (!header.ok()) {
      state.SkipWithError(rpc::Describe(header.status()).c_str());
      break;
    }
    if (sink.count() != static_cast<uint64_t>(size)) {
      state.SkipWithError("Get returned the wrong number of bytes");
      break;
    }
  }
  state.SetBytesProcessed(state.iterations() * size);
}

void BM_GetCiphertext(benchmark::State& state) {
  const int64_t size = state.range(0);
  const std::string id = GetObjectId(size);
  const uint64_t expected = world->prepared.at(size).header.ciphertext_length();
  for (auto _ : state) {
    absl::StatusOr<uint64_t> got = ReadCiphertext(id, nullptr);
    if (!got.ok()) {
      state.SkipWithError(rpc::Describe(got.status()).c_str());
      break;
    }
    if (*got != expected) {
      state.SkipWithError("Get stream returned the wrong number of bytes");
      break;
    }
  }
  // Plaintext bytes, as for BM_Get, so the two rates compare directly.
  state.SetBytesProcessed(state.iterations() * size);
}

// What an encrypted Put does besides the upload, each alone, to explain
// the gap to the baseline: the Head that picks the version when the
// client's guess cannot be trusted (not on the path of BM_Put), the key
// service's GenerateDataKey (its answer waits for a synced audit entry),
// and the encryption of the payload as the client feeds it (64 KiB pieces).
void BM_PartHead(benchmark::State& state) {
  const std::string id = GetObjectId(kMiB);
  for (auto _ : state) {
    absl::StatusOr<v1::ObjectInfo> info = world->client->Head(id);
    if (!info.ok()) {
      state.SkipWithError(rpc::Describe(info.status()).c_str());
      break;
    }
  }
  state.SetItemsProcessed(state.iterations());
}

void BM_PartGenerateDataKey(benchmark::State& state) {
  auto stub =
      v1::KeyService::NewStub(world->client->options().key_services[0].channel);
  v1::GenerateDataKeyRequest request;
  *request.mutable_metadata() = Metadata();
  request.set_key_id(kKeyId);
  request.mutable_context()->set_owner(kOwner);
  request.mutable_context()->set_object_id("part/generate");
  request.mutable_context()->set_version(1);
  for (auto _ : state) {
    grpc::ClientContext context;
    v1::GenerateDataKeyResponse response;
    grpc::Status s = stub->GenerateDataKey(&context, request, &response);
    if (!s.ok()) {
      state.SkipWithError(rpc::Describe(rpc::FromGrpcStatus(s)).c_str());
      break;
    }
  }
  state.SetItemsProcessed(state.iterations());
}

void BM_PartEncrypt(benchmark::State& state) {
  const int64_t size = state.range(0);
  const World::Prepared& p = world->prepared.at(size);
  const crypto::SecretBytes key = Check(crypto::RandomSecret(32), "key");
  const std::string context =
      Check(crypto::EncodeObjectContext(kOwner, "part/encrypt", 1), "context");
  std::string out;
  out.reserve(p.header.ciphertext_length());
  for (auto _ : state) {
    out.clear();
    absl::StatusOr<crypto::ChunkedEncryptor> encryptor =
        crypto::ChunkedEncryptor::Create(key, context);
    if (!encryptor.ok()) {
      state.SkipWithError(rpc::Describe(encryptor.status()).c_str());
      break;
    }
    out.append(encryptor->header());
    for (int64_t at = 0; at < size; at += 64 * kKiB) {
      const int64_t n = std::min<int64_t>(64 * kKiB, size - at);
      if (!encryptor->Update(absl::string_view(p.plaintext).substr(at, n), &out)
               .ok()) {
        state.SkipWithError("encrypt failed");
        break;
      }
    }
    if (!encryptor->Finish(&out).ok()) state.SkipWithError("finish failed");
    benchmark::DoNotOptimize(out.data());
  }
  state.SetBytesProcessed(state.iterations() * size);
}

// Head and GenerateDataKey as an encrypted Put meets them when it looks its
// version up (see BM_PartHead): right after the previous upload, while the
// node's write-back and RocksDB's background work still run. The iteration time
// is theirs alone (the upload before is not timed); head_us and gdk_us split
// it.
void BM_PartKeysAfterUpload(benchmark::State& state) {
  using Clock = std::chrono::steady_clock;
  Cleanup cleanup;
  auto stub =
      v1::KeyService::NewStub(world->client->options().key_services[0].channel);
  v1::GenerateDataKeyRequest request;
  *request.mutable_metadata() = Metadata();
  request.set_key_id(kKeyId);
  request.mutable_context()->set_owner(kOwner);
  request.mutable_context()->set_object_id("part/generate");
  request.mutable_context()->set_version(1);
  double head = 0, generate = 0;
  for (auto _ : state) {
    if (absl::Status s = SealedPut(cleanup, state.range(0)); !s.ok()) {
      state.SkipWithError(rpc::Describe(s).c_str());
      break;
    }
    const Clock::time_point t0 = Clock::now();
    absl::StatusOr<v1::ObjectInfo> info = world->client->Head("part/none");
    const Clock::time_point t1 = Clock::now();
    grpc::ClientContext context;
    v1::GenerateDataKeyResponse response;
    grpc::Status s = stub->GenerateDataKey(&context, request, &response);
    const Clock::time_point t2 = Clock::now();
    if (!absl::IsNotFound(info.status()) || !s.ok()) {
      state.SkipWithError("Head or GenerateDataKey failed");
      break;
    }
    head += std::chrono::duration<double>(t1 - t0).count();
    generate += std::chrono::duration<double>(t2 - t1).count();
    state.SetIterationTime(std::chrono::duration<double>(t2 - t0).count());
  }
  using Counter = benchmark::Counter;
  state.counters["head_us"] = Counter(head * 1e6, Counter::kAvgIterations);
  state.counters["gdk_us"] = Counter(generate * 1e6, Counter::kAvgIterations);
}

// Whether a case runs, and with how many iterations (0: as many as the
// minimum time asks for). A 64 MiB object takes a good part of a second: a
// fixed count keeps a repetition short.
bool Runs(int64_t size, int streams, bool quick) {
  return !(quick && size >= 64 * kMiB && streams > 1);
}
int Iterations(int64_t size, int streams, bool quick) {
  if (size < 64 * kMiB) return 0;
  return quick || streams > 1 ? 1 : 2;
}

// The run name Google Benchmark gives a case.
std::string RunName(absl::string_view kind, int64_t size, int streams,
                    bool quick) {
  const int iterations = Iterations(size, streams, quick);
  return absl::StrCat(
      kind, "/", size,
      iterations > 0 ? absl::StrCat("/iterations:", iterations) : "",
      "/real_time/threads:", streams);
}

void Register(bool quick) {
  using Fn = void (*)(benchmark::State&);
  const std::pair<const char*, Fn> kinds[] = {
      {"BM_Put", BM_Put},
      {"BM_PutSealed", BM_PutSealed},
      {"BM_PutSealedDiscarding", BM_PutSealedDiscarding},
      {"BM_Get", BM_Get},
      {"BM_GetCiphertext", BM_GetCiphertext},
  };
  for (const auto& [name, fn] : kinds) {
    for (int64_t size : kSizes) {
      for (int streams : kStreams) {
        if (!Runs(size, streams, quick)) continue;
        auto* b = benchmark::RegisterBenchmark(name, fn)
                      ->Arg(size)
                      ->Threads(streams)
                      ->UseRealTime();
        if (const int n = Iterations(size, streams, quick); n > 0) {
          b->Iterations(n);
        }
      }
    }
  }
  benchmark::RegisterBenchmark("BM_PartHead", BM_PartHead)->UseRealTime();
  benchmark::RegisterBenchmark("BM_PartGenerateDataKey", BM_PartGenerateDataKey)
      ->UseRealTime();
  benchmark::RegisterBenchmark("BM_PartEncrypt", BM_PartEncrypt)
      ->Arg(kMiB)
      ->UseRealTime();
  benchmark::RegisterBenchmark("BM_PartKeysAfterUpload", BM_PartKeysAfterUpload)
      ->Arg(kMiB)
      ->UseManualTime();
  // The target's figure: at least 2 s of Puts per repetition (about 200
  // pairs) even in a quick pass (this overrides --benchmark_min_time). With
  // half a second, 60-70 pairs, single repetitions on a shared machine
  // ranged from 0.75 to 1.0.
  benchmark::RegisterBenchmark("BM_PairedPut", BM_PairedPut)
      ->Arg(kMiB)
      ->MinTime(2.0)
      ->UseManualTime();
}

std::string SizeName(int64_t size) {
  if (size >= kMiB) return absl::StrCat(size / kMiB, " MiB");
  return absl::StrCat(size / kKiB, " KiB");
}

std::vector<bench::Comparison> Comparisons(bool quick) {
  std::vector<bench::Comparison> out;
  auto label = [](absl::string_view what, int64_t size, int streams) {
    return absl::StrCat(what, " ", SizeName(size), ", ", streams,
                        streams == 1 ? " stream" : " streams");
  };
  for (int64_t size : kSizes) {
    for (int streams : kStreams) {
      if (!Runs(size, streams, quick)) continue;
      const bool target = size == kMiB;
      out.push_back(
          {label("Put", size, streams), RunName("BM_Put", size, streams, quick),
           RunName("BM_PutSealed", size, streams, quick), target ? 0.85 : 0,
           target && streams == 1 ? absl::StrCat("BM_PairedPut/", size,
                                                 "/min_time:2.000/manual_time")
                                  : ""});
    }
  }
  for (int64_t size : kSizes) {
    for (int streams : kStreams) {
      if (!Runs(size, streams, quick)) continue;
      out.push_back({label("Storage Put", size, streams),
                     RunName("BM_PutSealed", size, streams, quick),
                     RunName("BM_PutSealedDiscarding", size, streams, quick), 0,
                     ""});
    }
  }
  for (int64_t size : kSizes) {
    for (int streams : kStreams) {
      if (!Runs(size, streams, quick)) continue;
      out.push_back({label("Get", size, streams),
                     RunName("BM_Get", size, streams, quick),
                     RunName("BM_GetCiphertext", size, streams, quick), 0, ""});
    }
  }
  return out;
}

}  // namespace
}  // namespace residency::client

int main(int argc, char** argv) {
  absl::SetMutexDeadlockDetectionMode(absl::OnDeadlockCycle::kIgnore);
  const char* quick_env = std::getenv("RESIDENCY_BENCH_QUICK");
  const bool quick = quick_env != nullptr && std::string(quick_env) == "1";
  residency::client::Register(quick);
  residency::client::SetUpWorld();
  const int rc = residency::bench::RunWithSummary(
      argc, argv, residency::client::Comparisons(quick));
  residency::client::TearDownWorld();
  return rc;
}
