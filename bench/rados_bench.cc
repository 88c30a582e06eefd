// rados_bench: the storage node's Put and Get throughput with its objects
// on Ceph RADOS, through one and through two gateways, beside the same node
// on its embedded RocksDB store, in one run.
//
// Every case streams sealed stand-in ciphertext (the node checks lengths,
// never decrypts) over mTLS loopback to storage_node servers running in
// this process:
//  - rocksdb: one node on RocksDB (synced commit);
//  - rados x1: one gateway over a pool of a single-host Ceph cluster that
//    the benchmark starts (one monitor, one memstore OSD on 127.0.0.1);
//  - rados x2: two gateways over the same pool and namespace, the streams
//    spread over them (stream i uses gateway i mod 2).
// Objects are 1 MiB and 64 KiB, with 1 and 4 concurrent streams. A memstore
// OSD keeps objects in memory, so the RADOS figures show what the gateway,
// librados and the OSD's request path cost, not a disk.
#include <grpcpp/grpcpp.h>
#include <stdlib.h>

#include <atomic>
#include <chrono>
#include <cstdint>
#include <cstdio>
#include <filesystem>
#include <map>
#include <memory>
#include <optional>
#include <string>
#include <utility>
#include <vector>

#include "absl/strings/str_cat.h"
#include "absl/synchronization/mutex.h"
#include "bench/bench_summary.h"
#include "benchmark/benchmark.h"
#include "crypto/chunked.h"
#include "crypto/random.h"
#include "residency/v1/storage.grpc.pb.h"
#include "rpc/status.h"
#include "storage_node/ceph_cluster.h"
#include "storage_node/rados_store.h"
#include "storage_node/server.h"
#include "tls/credentials.h"
#include "tls/pki.h"

namespace residency::storage_node {
namespace {

constexpr char kOwner[] = "bench";
constexpr char kPool[] = "residency";
constexpr int64_t kKiB = 1 << 10;
constexpr int64_t kMiB = 1 << 20;
constexpr int64_t kSizes[] = {64 * kKiB, kMiB};
constexpr int kStreams[] = {1, 4};
constexpr size_t kMessageBytes = 256 * 1024;

enum Store { kRocks = 0, kRados1 = 1, kRados2 = 2 };
constexpr const char* kStoreNames[] = {"rocksdb", "rados_x1", "rados_x2"};

void Check(const absl::Status& status, const char* what);

template <typename T>
T Check(absl::StatusOr<T> value, const char* what) {
  Check(value.status(), what);
  return *std::move(value);
}

struct World {
  std::string dir;
  std::optional<tls::CertificateAuthority> ca;
  std::unique_ptr<CephCluster> ceph;
  std::unique_ptr<StorageNodeServer> rocks;
  std::vector<std::unique_ptr<StorageNodeServer>> gateways;  // over one pool
  // Stubs by store: rocksdb one, rados_x1 the first gateway, rados_x2 both.
  std::vector<std::unique_ptr<v1::StorageNode::Stub>> stubs[3];
  // Sealed stand-in ciphertext per size, and an object stored per store,
  // size and stream for the Gets.
  std::map<int64_t, std::string> ciphertext;
};

std::unique_ptr<World> world;
std::atomic<uint64_t> next_object{0};

void Check(const absl::Status& status, const char* what) {
  if (!status.ok()) {
    std::fprintf(stderr, "rados_bench: %s: %s\n", what,
                 rpc::Describe(status).c_str());
    if (world != nullptr && world->ceph != nullptr) {
      std::fprintf(stderr, "%s\n", world->ceph->Logs().c_str());
    }
    std::_Exit(1);
  }
}

v1::ObjectHeader Header(const std::string& id, int64_t plaintext) {
  v1::ObjectHeader h;
  h.mutable_object()->set_owner(kOwner);
  h.mutable_object()->set_object_id(id);
  h.mutable_object()->set_version(1);
  h.set_custody_mode(v1::CUSTODY_MODE_CUSTODIAN);
  h.set_payload_algorithm(v1::PAYLOAD_ALGORITHM_COBBLESTONE_256);
  auto* k = h.add_wrapped_keys();
  k->set_wrapper(v1::WrappedKey::KEY_SERVICE);
  k->set_key_id("bench-key");
  k->set_key_version(1);
  k->set_wrapped(std::string(60, 'w'));
  h.set_plaintext_length(static_cast<uint64_t>(plaintext));
  h.set_ciphertext_length(
      crypto::ChunkedCiphertextLength(static_cast<uint64_t>(plaintext)));
  return h;
}

absl::Status Put(v1::StorageNode::Stub& stub, const v1::ObjectHeader& header,
                 const std::string& ciphertext) {
  grpc::ClientContext context;
  context.set_deadline(std::chrono::system_clock::now() +
                       std::chrono::minutes(2));
  v1::PutResponse response;
  auto writer = stub.Put(&context, &response);
  v1::PutRequest start;
  start.mutable_start()->mutable_metadata()->set_request_id("rados-bench");
  *start.mutable_start()->mutable_header() = header;
  bool ok = writer->Write(start);
  v1::PutRequest data;
  for (size_t at = 0; ok && at < ciphertext.size(); at += kMessageBytes) {
    data.set_data(ciphertext.substr(at, kMessageBytes));
    ok = writer->Write(data);
  }
  writer->WritesDone();
  return rpc::FromGrpcStatus(writer->Finish());
}

absl::StatusOr<uint64_t> Get(v1::StorageNode::Stub& stub,
                             const std::string& id) {
  v1::GetRequest request;
  request.mutable_metadata()->set_request_id("rados-bench");
  request.mutable_object()->set_owner(kOwner);
  request.mutable_object()->set_object_id(id);
  grpc::ClientContext context;
  context.set_deadline(std::chrono::system_clock::now() +
                       std::chrono::minutes(2));
  auto reader = stub.Get(&context, request);
  v1::GetResponse message;
  uint64_t bytes = 0;
  while (reader->Read(&message)) {
    if (message.has_data()) bytes += message.data().size();
  }
  absl::Status status = rpc::FromGrpcStatus(reader->Finish());
  if (!status.ok()) return status;
  return bytes;
}

std::string GetId(int store, int64_t size, int stream) {
  return absl::StrCat("get/", kStoreNames[store], "/", size, "/", stream);
}

void SetUpWorld() {
  world = std::make_unique<World>();
  char tmpl[] = "/tmp/rados_bench.XXXXXX";
  if (mkdtemp(tmpl) == nullptr) {
    std::perror("rados_bench: mkdtemp");
    std::exit(1);
  }
  world->dir = tmpl;
  std::fprintf(stderr, "rados_bench: starting a single-host Ceph cluster\n");
  CephClusterOptions ceph;
  ceph.dir = world->dir + "/ceph";
  ceph.pool = kPool;
  world->ceph = Check(CephCluster::Start(ceph), "Ceph cluster");

  world->ca.emplace(Check(tls::CertificateAuthority::Create("bench-ca"), "CA"));
  tls::Identity node =
      Check(world->ca->Issue("residency://service/bench-node"), "cert");
  tls::Identity user = Check(
      world->ca->Issue(absl::StrCat("residency://user/", kOwner)), "cert");
  auto options = [&] {
    StorageNodeServerOptions o;
    o.tls = node.Material();
    o.jurisdiction = "CN";
    o.operator_principal = "residency://operator/bench-operator";
    return o;
  };
  StorageNodeServerOptions rocks = options();
  rocks.data_dir = world->dir + "/rocksdb";
  world->rocks = Check(StorageNodeServer::Start(std::move(rocks)), "node");
  const std::string conf = world->ceph->conf_path();
  for (int g = 0; g < 2; ++g) {
    StorageNodeServerOptions o = options();
    o.open_store = [conf](const std::string&, const ObjectStoreOptions& store)
        -> absl::StatusOr<std::unique_ptr<ObjectStore>> {
      RadosStoreOptions rados;
      rados.conf_path = conf;
      rados.pool = kPool;
      rados.rados_namespace = "bench";
      rados.store = store;
      return RadosObjectStore::Open(std::move(rados));
    };
    world->gateways.push_back(
        Check(StorageNodeServer::Start(std::move(o)), "gateway"));
  }
  auto stub = [&](const std::string& address) {
    tls::ChannelOptions o;
    o.max_receive_message_bytes = 8 << 20;
    return v1::StorageNode::NewStub(
        Check(tls::MakeChannel(address, user.Material(), o), "channel"));
  };
  world->stubs[kRocks].push_back(stub(world->rocks->address()));
  world->stubs[kRados1].push_back(stub(world->gateways[0]->address()));
  for (const auto& gateway : world->gateways) {
    world->stubs[kRados2].push_back(stub(gateway->address()));
  }
  for (int64_t size : kSizes) {
    const uint64_t length =
        crypto::ChunkedCiphertextLength(static_cast<uint64_t>(size));
    world->ciphertext[size] =
        Check(crypto::RandomBytes(length), "stand-in ciphertext");
    for (int store : {kRocks, kRados1, kRados2}) {
      for (int stream = 0; stream < 4; ++stream) {
        auto& stubs = world->stubs[store];
        Check(Put(*stubs[stream % stubs.size()],
                  Header(GetId(store, size, stream), size),
                  world->ciphertext[size]),
              "Put of an object to read");
      }
    }
  }
}

void TearDownWorld() {
  if (world == nullptr) return;
  for (auto& stubs : world->stubs) stubs.clear();
  world->gateways.clear();
  world->rocks.reset();
  world->ceph.reset();
  std::error_code ignored;
  std::filesystem::remove_all(world->dir, ignored);
  world.reset();
}

// state.range(0): store; state.range(1): object size.
void BM_Put(benchmark::State& state) {
  const int store = static_cast<int>(state.range(0));
  const int64_t size = state.range(1);
  auto& stubs = world->stubs[store];
  v1::StorageNode::Stub& stub =
      *stubs[static_cast<size_t>(state.thread_index()) % stubs.size()];
  const std::string& ciphertext = world->ciphertext[size];
  for (auto _ : state) {
    const std::string id = absl::StrCat("put/", next_object++);
    absl::Status s = Put(stub, Header(id, size), ciphertext);
    if (!s.ok()) {
      state.SkipWithError(rpc::Describe(s).c_str());
      break;
    }
  }
  state.SetBytesProcessed(state.iterations() *
                          static_cast<int64_t>(ciphertext.size()));
  state.SetLabel(kStoreNames[store]);
}

void BM_Get(benchmark::State& state) {
  const int store = static_cast<int>(state.range(0));
  const int64_t size = state.range(1);
  auto& stubs = world->stubs[store];
  const size_t stream = static_cast<size_t>(state.thread_index());
  v1::StorageNode::Stub& stub = *stubs[stream % stubs.size()];
  const std::string id = GetId(store, size, static_cast<int>(stream));
  int64_t bytes = 0;
  for (auto _ : state) {
    absl::StatusOr<uint64_t> got = Get(stub, id);
    if (!got.ok()) {
      state.SkipWithError(rpc::Describe(got.status()).c_str());
      break;
    }
    bytes += static_cast<int64_t>(*got);
  }
  state.SetBytesProcessed(bytes);
  state.SetLabel(kStoreNames[store]);
}

std::string RunName(const char* kind, int store, int64_t size, int streams) {
  return absl::StrCat(kind, "/", store, "/", size,
                      "/real_time/threads:", streams);
}

void Register() {
  using Fn = void (*)(benchmark::State&);
  const std::pair<const char*, Fn> kinds[] = {{"BM_Put", BM_Put},
                                              {"BM_Get", BM_Get}};
  for (const auto& [name, fn] : kinds) {
    for (int store : {kRocks, kRados1, kRados2}) {
      for (int64_t size : kSizes) {
        for (int streams : kStreams) {
          // Two gateways differ from one only with several streams.
          if (store == kRados2 && streams == 1) continue;
          benchmark::RegisterBenchmark(name, fn)
              ->Args({store, size})
              ->Threads(streams)
              ->UseRealTime();
        }
      }
    }
  }
}

std::vector<bench::Comparison> Comparisons() {
  std::vector<bench::Comparison> out;
  for (const char* kind : {"BM_Put", "BM_Get"}) {
    const std::string what = std::string(kind) == "BM_Put" ? "Put" : "Get";
    for (int64_t size : kSizes) {
      const std::string size_name = size >= kMiB
                                        ? absl::StrCat(size / kMiB, " MiB")
                                        : absl::StrCat(size / kKiB, " KiB");
      for (int streams : kStreams) {
        const std::string shape =
            absl::StrCat(what, " ", size_name, " x", streams, ": RADOS ");
        out.push_back({shape + "1 gw/RocksDB",
                       RunName(kind, kRados1, size, streams),
                       RunName(kind, kRocks, size, streams), 0, ""});
        if (streams == 1) continue;
        out.push_back({shape + "2 gw/RocksDB",
                       RunName(kind, kRados2, size, streams),
                       RunName(kind, kRocks, size, streams), 0, ""});
        out.push_back({shape + "2 gw/1 gw",
                       RunName(kind, kRados2, size, streams),
                       RunName(kind, kRados1, size, streams), 0, ""});
      }
    }
  }
  return out;
}

}  // namespace
}  // namespace residency::storage_node

int main(int argc, char** argv) {
  absl::SetMutexDeadlockDetectionMode(absl::OnDeadlockCycle::kIgnore);
  residency::storage_node::Register();
  residency::storage_node::SetUpWorld();
  const int rc = residency::bench::RunWithSummary(
      argc, argv, residency::storage_node::Comparisons());
  residency::storage_node::TearDownWorld();
  return rc;
}
