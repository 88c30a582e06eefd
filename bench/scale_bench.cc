// The scale curve: Put and Get through the client library against real
// key_service and storage_node processes (release binaries, mTLS on
// loopback ports), as concurrency and as the number of stored objects grow.
//
// Concurrency curve: for N in --clients (1, 2, 4, 8, 16, 32), N threads,
// each a different user with its own client::Client and its own channels
// (its own certificate, so its own TLS connections), Put objects of each
// --sizes for --step_seconds, then Get random ones of those back for as
// long. Each step reports ops/s, MB/s (plaintext), p50/p99 latency, and the
// CPU seconds per wall second used by this process (the clients: Cobblestone
// encryption and decryption, TLS, protobuf), the storage node and the key
// service, beside the whole machine's busy and iowait cores (other
// processes share it). The step's objects are deleted afterwards.
//
// Object-count curve: on fresh services, the node is filled with
// --count_object_bytes objects through the same client path (Put at
// --fill_clients concurrency, a fresh data key per object, every key and
// object write synced) up to 10^3, 10^4, ... --max_objects. At each level:
// Get of random stored objects, then Put of new ones, at --count_clients,
// each for --step_seconds; the new objects are then deleted so the level
// stays as filled. Reported with the node's RSS and on-disk bytes per
// object, and RocksDB's flushes, compactions and write stalls, read from
// the node's RocksDB LOG (its event log lines) in its data directory.
//
// "bends at" lines are computed from the figures: a curve bends where
// doubling N gains less than --bend_gain (or a level loses more than it);
// what limits it there is read from the CPU figures of that step.
//
// Everything lives in temporary directories removed at exit (also on
// SIGINT/SIGTERM: the steps stop early and the services are shut down).
#include <grpcpp/grpcpp.h>
#include <signal.h>
#include <stdlib.h>
#include <unistd.h>

#include <algorithm>
#include <atomic>
#include <chrono>
#include <cinttypes>
#include <cmath>
#include <cstdint>
#include <cstdio>
#include <filesystem>
#include <fstream>
#include <iostream>
#include <istream>
#include <map>
#include <memory>
#include <optional>
#include <ostream>
#include <random>
#include <sstream>
#include <streambuf>
#include <string>
#include <thread>
#include <vector>

#include "absl/flags/flag.h"
#include "absl/flags/parse.h"
#include "absl/flags/reflection.h"
#include "absl/flags/usage.h"
#include "absl/status/status.h"
#include "absl/status/statusor.h"
#include "absl/strings/match.h"
#include "absl/strings/numbers.h"
#include "absl/strings/str_cat.h"
#include "absl/strings/str_format.h"
#include "absl/strings/str_join.h"
#include "absl/strings/str_split.h"
#include "absl/strings/string_view.h"
#include "absl/synchronization/mutex.h"
#include "absl/time/time.h"
#include "bench/rocks_log.h"
#include "bench/streams.h"
#include "client/client.h"
#include "crypto/random.h"
#include "rpc/process.h"
#include "rpc/status_detail.h"
#include "rpc/unknown_flag.h"
#include "tls/credentials.h"
#include "tls/pki.h"

ABSL_FLAG(bool, quick, false,
          "short run: object-count curve up to 10^4 objects, 3 s steps, "
          "64 KiB objects only (explicit flags still override)");
ABSL_FLAG(std::string, curves, "concurrency,count",
          "which curves to run: concurrency, count, or both");
ABSL_FLAG(std::string, clients, "1,2,4,8,16,32",
          "concurrent clients of the concurrency curve (1-64 each)");
ABSL_FLAG(std::string, sizes, "",
          "object sizes in bytes of the concurrency curve (suffix K or M "
          "allowed); default 64K,1M, --quick 64K");
ABSL_FLAG(double, step_seconds, 0,
          "duration of each timed step; default 10, --quick 3");
ABSL_FLAG(int64_t, max_objects, 0,
          "object-count curve: levels 10^3, 10^4, ... up to this; default "
          "1000000, --quick 10000");
ABSL_FLAG(int, count_clients, 8,
          "object-count curve: concurrent clients of the timed steps");
ABSL_FLAG(int64_t, count_object_bytes, 1024,
          "object-count curve: object size in bytes");
ABSL_FLAG(int, fill_clients, 32,
          "object-count curve: concurrent clients that fill the node");
ABSL_FLAG(double, bend_gain, 0.15,
          "a curve bends where doubling the clients gains less than this "
          "fraction of throughput (or a tenfold object count loses more)");
ABSL_FLAG(std::string, work_dir, "",
          "parent of the temporary directories (default $TMPDIR or /tmp); "
          "the node's data goes here");
ABSL_FLAG(std::string, key_service_dir, "",
          "parent of the key service's data directory (default: the same as "
          "the node's, so both share one disk)");
ABSL_FLAG(std::string, json, "", "also write the figures as JSON here");
ABSL_FLAG(std::string, key_service_binary, "",
          "key_service binary (default: the one of this build tree)");
ABSL_FLAG(std::string, storage_node_binary, "",
          "storage_node binary (default: the one of this build tree)");

namespace residency::bench {
namespace {

namespace fs = std::filesystem;
using Clock = std::chrono::steady_clock;
using process::ServerProcess;

constexpr int kUsage = 2;
constexpr int kRunFailed = 1;
constexpr int kMaxClients = 64;
constexpr char kPolicy[] = R"pb(
  jurisdiction: "US"
  rules { name: "owners-run-own-keys" effect: ALLOW caller_is_owner: true }
)pb";

std::atomic<bool> interrupted{false};

extern "C" void OnSignal(int) { interrupted = true; }

double Seconds(Clock::duration d) {
  return std::chrono::duration<double>(d).count();
}

// ---------------------------------------------------------------------------
// What /proc says about a process and the machine.

const double kTicks = static_cast<double>(sysconf(_SC_CLK_TCK));

// utime + stime of `pid` ("self" for this process), in seconds.
double CpuSeconds(const std::string& pid) {
  std::string stat = process::ReadFileOrEmpty("/proc/" + pid + "/stat");
  // The command name may hold spaces: fields count from after its ')'.
  const size_t close = stat.rfind(')');
  if (close == std::string::npos) return 0;
  std::vector<std::string> fields =
      absl::StrSplit(stat.substr(close + 2), ' ', absl::SkipEmpty());
  // fields[0] is field 3 (state); utime is field 14, stime 15.
  if (fields.size() < 13) return 0;
  double utime = 0, stime = 0;
  if (!absl::SimpleAtod(fields[11], &utime) ||
      !absl::SimpleAtod(fields[12], &stime)) {
    return 0;
  }
  return (utime + stime) / kTicks;
}

// A "Name:   123 kB" field of /proc/<pid>/status, in bytes.
int64_t StatusBytes(const std::string& pid, absl::string_view name) {
  std::istringstream in(process::ReadFileOrEmpty("/proc/" + pid + "/status"));
  std::string line;
  while (std::getline(in, line)) {
    if (!absl::StartsWith(line, name) || line.size() <= name.size() ||
        line[name.size()] != ':') {
      continue;
    }
    std::vector<std::string> parts =
        absl::StrSplit(line.substr(name.size() + 1), absl::ByAnyChar(" \t"),
                       absl::SkipEmpty());
    int64_t kb = 0;
    if (!parts.empty() && absl::SimpleAtoi(parts[0], &kb)) return kb * 1024;
  }
  return 0;
}

// Machine-wide CPU time from /proc/stat, in seconds summed over cores.
struct MachineCpu {
  double busy = 0;    // everything but idle and iowait
  double iowait = 0;  // idle with a disk request outstanding
};

MachineCpu ReadMachineCpu() {
  std::istringstream in(process::ReadFileOrEmpty("/proc/stat"));
  std::string cpu;
  double v[8] = {};
  in >> cpu;
  for (double& x : v) in >> x;
  // user nice system idle iowait irq softirq steal
  MachineCpu m;
  m.busy = (v[0] + v[1] + v[2] + v[5] + v[6] + v[7]) / kTicks;
  m.iowait = v[4] / kTicks;
  return m;
}

// Bytes of the regular files under `dir`, by kind of RocksDB file.
struct DiskUsage {
  uint64_t total = 0;
  uint64_t sst = 0;
  uint64_t blob = 0;
  uint64_t wal = 0;
};

DiskUsage WalkDisk(const std::string& dir) {
  DiskUsage usage;
  std::error_code ec;
  for (fs::recursive_directory_iterator it(dir, ec), end; !ec && it != end;
       it.increment(ec)) {
    std::error_code size_ec;
    if (!it->is_regular_file(size_ec)) continue;
    const uint64_t size = it->file_size(size_ec);
    if (size_ec) continue;  // removed by a compaction meanwhile
    usage.total += size;
    const std::string ext = it->path().extension().string();
    if (ext == ".sst") usage.sst += size;
    if (ext == ".blob") usage.blob += size;
    if (ext == ".log") usage.wal += size;
  }
  return usage;
}

// ---------------------------------------------------------------------------
// The services and the clients.

using ::residency::bench::CountingBuf;
using ::residency::bench::MemoryBuf;

std::string UserName(int i) { return absl::StrFormat("u%02d", i); }

// A key service and a storage node, each its own process, with fresh data
// directories, and one client per user.
class Services {
 public:
  static absl::StatusOr<std::unique_ptr<Services>> Start(
      const std::string& parent, const std::string& ks_parent,
      const std::string& certs, const std::vector<tls::Identity>& users,
      size_t user_count, const std::string& ks_binary,
      const std::string& sn_binary) {
    std::unique_ptr<Services> s(new Services);
    for (std::string* dir : {&s->dir_, &s->ks_dir_}) {
      std::string tmpl = absl::StrCat(dir == &s->dir_ ? parent : ks_parent,
                                      "/scale_bench.XXXXXX");
      if (mkdtemp(tmpl.data()) == nullptr) {
        return absl::InternalError(absl::StrCat("cannot create ", tmpl));
      }
      *dir = tmpl;
    }
    s->sn_data_ = s->dir_ + "/sn";
    // A client's next call can reach the node before the handler of its
    // previous one has given back its thread: twice as many handler
    // threads as clients, so that the node never refuses a call for lack
    // of one (it would at exactly one per client).
    const size_t streams = std::max<size_t>(64, 2 * user_count);
    absl::StatusOr<std::unique_ptr<ServerProcess>> node = ServerProcess::Start(
        sn_binary,
        {"--jurisdiction=CN", "--data_dir=" + s->sn_data_,
         "--operator_principal=residency://operator/scale-operator",
         "--tls_ca=" + certs + "/ca.crt", "--tls_cert=" + certs + "/sn.crt",
         "--tls_key=" + certs + "/sn.key",
         absl::StrCat("--max_streams=", streams)},
        s->dir_, "storage_node");
    if (!node.ok()) return node.status();
    s->node_ = *std::move(node);
    { std::ofstream(s->ks_dir_ + "/policy.textproto") << kPolicy; }
    absl::StatusOr<std::unique_ptr<ServerProcess>> keys = ServerProcess::Start(
        ks_binary,
        {"--jurisdiction=US", "--policy=" + s->ks_dir_ + "/policy.textproto",
         "--data_dir=" + s->ks_dir_ + "/ks", "--tls_ca=" + certs + "/ca.crt",
         "--tls_cert=" + certs + "/ks.crt", "--tls_key=" + certs + "/ks.key"},
        s->ks_dir_, "key_service");
    if (!keys.ok()) return keys.status();
    s->keys_ = *std::move(keys);

    for (size_t i = 0; i < user_count && i < users.size(); ++i) {
      client::ClientOptions options;
      options.owner = UserName(static_cast<int>(i));
      absl::StatusOr<std::shared_ptr<grpc::Channel>> ks_channel =
          tls::MakeChannel(s->keys_->address(), users[i].Material());
      if (!ks_channel.ok()) return ks_channel.status();
      // Key ids are one namespace across owners at the key service.
      const std::string key_id = absl::StrCat("key-", options.owner);
      options.key_services.push_back(
          {*std::move(ks_channel), key_id, "residency://service/scale-keys"});
      absl::StatusOr<std::shared_ptr<grpc::Channel>> sn_channel =
          tls::MakeChannel(s->node_->address(), users[i].Material());
      if (!sn_channel.ok()) return sn_channel.status();
      options.storage = *std::move(sn_channel);
      options.residency = {"CN"};
      absl::StatusOr<std::unique_ptr<client::Client>> c =
          client::Client::Create(std::move(options));
      if (!c.ok()) return c.status();
      if (absl::Status created = (*c)->CreateKey(key_id).status();
          !created.ok()) {
        return created;
      }
      s->clients_.push_back(*std::move(c));
    }
    return s;
  }

  ~Services() {
    clients_.clear();
    if (node_ != nullptr) node_->Terminate();
    if (keys_ != nullptr) keys_->Terminate();
    std::error_code ignored;
    fs::remove_all(dir_, ignored);
    fs::remove_all(ks_dir_, ignored);
  }

  client::Client& client(int i) { return *clients_.at(i); }
  std::string node_pid() const { return std::to_string(node_->pid()); }
  std::string keys_pid() const { return std::to_string(keys_->pid()); }
  const std::string& node_data() const { return sn_data_; }
  // The node keeps its RocksDB database here (storage_node/server.cc).
  std::string node_rocksdb() const { return sn_data_ + "/objects"; }
  std::string key_service_data() const { return ks_dir_ + "/ks"; }
  bool running() { return node_->running() && keys_->running(); }
  std::string logs() const {
    return absl::StrCat("storage_node log:\n", node_->log(),
                        "key_service log:\n", keys_->log());
  }

 private:
  Services() = default;

  std::string dir_, ks_dir_, sn_data_;
  std::unique_ptr<ServerProcess> node_, keys_;
  std::vector<std::unique_ptr<client::Client>> clients_;
};

// ---------------------------------------------------------------------------
// One timed step: N threads doing one kind of operation.

struct CpuSnapshot {
  Clock::time_point at;
  double self = 0, node = 0, keys = 0;
  MachineCpu machine;
};

CpuSnapshot TakeCpu(Services& s) {
  CpuSnapshot c;
  c.at = Clock::now();
  c.self = CpuSeconds("self");
  c.node = CpuSeconds(s.node_pid());
  c.keys = CpuSeconds(s.keys_pid());
  c.machine = ReadMachineCpu();
  return c;
}

struct StepResult {
  std::string op;  // "put" or "get"
  int clients = 0;
  int64_t object_bytes = 0;
  double wall = 0;
  uint64_t ops = 0;
  uint64_t errors = 0;
  std::string first_error;
  double p50_ms = 0, p99_ms = 0, mean_ms = 0;
  // CPU seconds per wall second (cores busy).
  double cpu_client = 0, cpu_node = 0, cpu_keys = 0;
  double machine_busy = 0, machine_iowait = 0;
  // Mean milliseconds per op before the first plaintext piece moved (Put:
  // GenerateDataKey, opening the upload and sending the header; Get: header,
  // Unwrap and the first chunk), while the pieces moved, and after the last one
  // (Put: the node's synced commit and its answer).
  double first_ms = 0, stream_ms = 0, last_ms = 0;

  double ops_per_s() const { return wall > 0 ? ops / wall : 0; }
  double mb_per_s() const {
    return wall > 0 ? static_cast<double>(ops) * object_bytes / 1e6 / wall : 0;
  }
  double others() const {
    return std::max(0.0, machine_busy - cpu_client - cpu_node - cpu_keys);
  }
};

// What a thread does once; returns the plaintext bytes moved. `progress`
// is handed to the client call.
using OpFn = std::function<absl::StatusOr<uint64_t>(
    int thread, uint64_t i, const client::ProgressFn& progress)>;

StepResult RunStep(Services& s, absl::string_view op, int clients,
                   int64_t object_bytes, double seconds, const OpFn& fn) {
  struct PerThread {
    std::vector<double> latencies;
    double first = 0, stream = 0, last = 0;
    uint64_t errors = 0;
    std::string first_error;
  };
  std::vector<PerThread> per(clients);
  std::atomic<int> ready{0};
  std::atomic<bool> go{false};
  Clock::time_point deadline;
  std::vector<std::thread> threads;
  for (int t = 0; t < clients; ++t) {
    threads.emplace_back([&, t] {
      PerThread& me = per[t];
      ++ready;
      while (!go.load()) std::this_thread::yield();
      for (uint64_t i = 0; Clock::now() < deadline && !interrupted; ++i) {
        const Clock::time_point start = Clock::now();
        Clock::time_point first, last;
        bool seen = false;
        client::ProgressFn progress = [&](uint64_t) {
          last = Clock::now();
          if (!seen) first = last;
          seen = true;
        };
        absl::StatusOr<uint64_t> moved = fn(t, i, progress);
        const Clock::time_point end = Clock::now();
        if (!moved.ok()) {
          if (me.errors++ == 0) {
            // Code and message: a peer's status details are not for people.
            me.first_error = rpc::Describe(moved.status());
          }
          // A service that is gone would spin this loop: give up.
          if (me.errors >= 100) break;
          continue;
        }
        me.latencies.push_back(Seconds(end - start));
        if (seen) {
          me.first += Seconds(first - start);
          me.stream += Seconds(last - first);
          me.last += Seconds(end - last);
        }
      }
    });
  }
  while (ready.load() < clients) std::this_thread::yield();
  const CpuSnapshot before = TakeCpu(s);
  deadline = before.at +
             std::chrono::microseconds(static_cast<int64_t>(seconds * 1e6));
  go = true;
  for (std::thread& t : threads) t.join();
  const CpuSnapshot after = TakeCpu(s);

  StepResult r;
  r.op = std::string(op);
  r.clients = clients;
  r.object_bytes = object_bytes;
  r.wall = Seconds(after.at - before.at);
  std::vector<double> all;
  double first = 0, stream = 0, last = 0;
  for (PerThread& p : per) {
    all.insert(all.end(), p.latencies.begin(), p.latencies.end());
    first += p.first;
    stream += p.stream;
    last += p.last;
    r.errors += p.errors;
    if (r.first_error.empty()) r.first_error = p.first_error;
  }
  r.ops = all.size();
  if (!all.empty()) {
    std::sort(all.begin(), all.end());
    auto at = [&](double q) {
      size_t k = static_cast<size_t>(std::ceil(q * all.size()));
      return all[std::min(all.size() - 1, k == 0 ? 0 : k - 1)] * 1e3;
    };
    r.p50_ms = at(0.50);
    r.p99_ms = at(0.99);
    double sum = 0;
    for (double x : all) sum += x;
    r.mean_ms = sum / all.size() * 1e3;
    r.first_ms = first / all.size() * 1e3;
    r.stream_ms = stream / all.size() * 1e3;
    r.last_ms = last / all.size() * 1e3;
  }
  r.cpu_client = (after.self - before.self) / r.wall;
  r.cpu_node = (after.node - before.node) / r.wall;
  r.cpu_keys = (after.keys - before.keys) / r.wall;
  r.machine_busy = (after.machine.busy - before.machine.busy) / r.wall;
  r.machine_iowait = (after.machine.iowait - before.machine.iowait) / r.wall;
  return r;
}

// Runs `fn(thread, index)` for indices [0, count) spread over `threads`
// threads, untimed; returns the first error.
absl::Status Parallel(int threads, uint64_t count,
                      const std::function<absl::Status(int, uint64_t)>& fn) {
  std::atomic<uint64_t> next{0};
  absl::Mutex mu;
  absl::Status first;
  std::vector<std::thread> pool;
  for (int t = 0; t < threads; ++t) {
    pool.emplace_back([&, t] {
      for (uint64_t i; (i = next++) < count && !interrupted;) {
        absl::Status s = fn(t, i);
        if (!s.ok()) {
          absl::MutexLock lock(&mu);
          if (first.ok()) first = s;
          return;
        }
      }
    });
  }
  for (std::thread& t : pool) t.join();
  if (first.ok() && interrupted) return absl::CancelledError("interrupted");
  return first;
}

absl::StatusOr<uint64_t> PutObject(client::Client& c, absl::string_view id,
                                   absl::string_view plaintext,
                                   const client::ProgressFn& progress = {}) {
  MemoryBuf buf(plaintext);
  std::istream in(&buf);
  absl::StatusOr<v1::ObjectRef> ref = c.Put(id, in, plaintext.size(), progress);
  if (!ref.ok()) return ref.status();
  return plaintext.size();
}

absl::StatusOr<uint64_t> GetObject(client::Client& c, absl::string_view id,
                                   uint64_t want,
                                   const client::ProgressFn& progress = {}) {
  CountingBuf buf;
  std::ostream out(&buf);
  absl::StatusOr<v1::ObjectHeader> header =
      c.Get(id, /*version=*/0, out, std::nullopt, progress);
  if (!header.ok()) return header.status();
  if (buf.count() != want) {
    return absl::DataLossError(absl::StrCat("object '", id, "': got ",
                                            buf.count(), " bytes of ", want));
  }
  return want;
}

// ---------------------------------------------------------------------------
// Reports.

std::string SizeName(int64_t bytes) {
  if (bytes >= (1 << 20) && bytes % (1 << 20) == 0) {
    return absl::StrCat(bytes >> 20, " MiB");
  }
  if (bytes >= 1024 && bytes % 1024 == 0) {
    return absl::StrCat(bytes >> 10, " KiB");
  }
  return absl::StrCat(bytes, " B");
}

std::string CountName(int64_t n) {
  const int exponent = static_cast<int>(std::lround(std::log10(n)));
  if (n >= 1000 && std::pow(10, exponent) == static_cast<double>(n)) {
    return absl::StrCat("10^", exponent);
  }
  return absl::StrCat(n);
}

void PrintStepHeader(absl::string_view first_column) {
  std::printf(
      "%s", absl::StrFormat("%-4s %7s %9s %8s %8s %8s  %6s %6s %6s "
                            "%6s %6s %6s  %6s %6s %6s\n",
                            "op", first_column, "ops/s", "MB/s", "p50 ms",
                            "p99 ms", "client", "node", "keys", "other", "busy",
                            "iowait", "1st ms", "strm", "last")
                .c_str());
}

void PrintStep(const std::string& first_column, const StepResult& r) {
  std::printf("%s", absl::StrFormat(
                        "%-4s %7s %9.1f %8.2f %8.2f %8.2f  %6.2f "
                        "%6.2f %6.2f %6.2f %6.2f %6.2f  %6.2f "
                        "%6.2f %6.2f",
                        r.op, first_column, r.ops_per_s(), r.mb_per_s(),
                        r.p50_ms, r.p99_ms, r.cpu_client, r.cpu_node,
                        r.cpu_keys, r.others(), r.machine_busy,
                        r.machine_iowait, r.first_ms, r.stream_ms, r.last_ms)
                        .c_str());
  if (r.errors > 0) {
    std::printf("  %" PRIu64 " errors, first: %s", r.errors,
                r.first_error.c_str());
  }
  std::printf("\n");
  std::fflush(stdout);
}

// What limits a step: which resource is saturated, from its CPU figures.
std::string Limit(const StepResult& r, int cores) {
  struct Share {
    double cores;
    const char* what;
  };
  std::vector<Share> shares = {
      {r.cpu_client,
       "the client process (Cobblestone AES-256-GCM encryption/decryption, "
       "TLS, protobuf)"},
      {r.cpu_node, "storage_node (TLS, RocksDB writes and reads)"},
      {r.cpu_keys, "key_service (TLS, data-key wrapping, audit appends)"},
      {r.others(), "other processes on the machine"},
  };
  std::sort(shares.begin(), shares.end(),
            [](const Share& a, const Share& b) { return a.cores > b.cores; });
  const std::string split =
      absl::StrFormat("client %.2f, node %.2f, keys %.2f, other %.2f",
                      r.cpu_client, r.cpu_node, r.cpu_keys, r.others());
  if (r.machine_busy >= 0.85 * cores) {
    // Name the largest of the benchmark's own processes too when other
    // processes took more: those are what this run can speak for.
    std::string ours;
    if (std::string(shares[0].what) == "other processes on the machine") {
      ours =
          absl::StrFormat("; of the benchmark's processes, %s", shares[1].what);
    }
    return absl::StrFormat(
        "CPU: %.2f of %d cores busy (%s); the largest share is %s%s",
        r.machine_busy, cores, split, shares[0].what, ours);
  }
  // Not CPU: the time goes to waiting. Say where in the operation.
  std::string phase;
  if (r.op == "put") {
    const double total = r.first_ms + r.stream_ms + r.last_ms;
    if (total > 0 && r.first_ms >= r.last_ms && r.first_ms >= r.stream_ms) {
      phase = absl::StrFormat(
          "most of a Put (%.2f of %.2f ms) is before the first byte: "
          "GenerateDataKey, whose answer waits for the synced audit append",
          r.first_ms, total);
    } else if (total > 0 && r.last_ms >= r.stream_ms) {
      phase = absl::StrFormat(
          "most of a Put (%.2f of %.2f ms) is after the last piece was "
          "encrypted: the upload and the node's synced commit",
          r.last_ms, total);
    } else if (total > 0) {
      phase = absl::StrFormat(
          "most of a Put (%.2f of %.2f ms) is the upload stream", r.stream_ms,
          total);
    }
  } else {
    const double total = r.first_ms + r.stream_ms;
    if (total > 0 && r.first_ms >= r.stream_ms) {
      phase = absl::StrFormat(
          "most of a Get (%.2f of %.2f ms) is before the first plaintext: "
          "header, Unwrap (synced audit append) and the first chunk",
          r.first_ms, total);
    } else if (total > 0) {
      phase = absl::StrFormat(
          "most of a Get (%.2f of %.2f ms) is the download stream", r.stream_ms,
          total);
    }
  }
  return absl::StrFormat(
      "not CPU (%.2f of %d cores busy: %s; iowait %.2f): waiting on synced "
      "writes, disk or locks; %s",
      r.machine_busy, cores, split, r.machine_iowait, phase);
}

// The bend of one concurrency series (same op and size, N ascending).
std::string ConcurrencyBend(const std::vector<StepResult>& series, int cores,
                            double min_gain) {
  const StepResult& head = series.front();
  const std::string name = absl::StrFormat(
      "%s %s", head.op == "put" ? "Put" : "Get", SizeName(head.object_bytes));
  for (size_t i = 1; i < series.size(); ++i) {
    const StepResult& prev = series[i - 1];
    const StepResult& cur = series[i];
    if (prev.ops_per_s() <= 0) continue;
    const double gain = cur.ops_per_s() / prev.ops_per_s() - 1;
    if (gain < min_gain) {
      const double p99_ratio = prev.p99_ms > 0 ? cur.p99_ms / prev.p99_ms : 0;
      return absl::StrFormat(
          "%s: bends at N=%d (%.0f ops/s); N=%d adds %+.0f%% throughput and "
          "p99 goes %.2f -> %.2f ms (x%.1f); limited by %s",
          name, prev.clients, prev.ops_per_s(), cur.clients, gain * 100,
          prev.p99_ms, cur.p99_ms, p99_ratio, Limit(cur, cores));
    }
  }
  const StepResult& last = series.back();
  return absl::StrFormat(
      "%s: no bend up to N=%d (each doubling gained >= %.0f%%); at N=%d: %s",
      name, last.clients, min_gain * 100, last.clients, Limit(last, cores));
}

// ---------------------------------------------------------------------------
// JSON (flat and hand-written: a handful of number fields per step).

std::string JsonString(absl::string_view s) {
  std::string out = "\"";
  for (char c : s) {
    if (c == '"' || c == '\\') {
      out += '\\';
      out += c;
    } else if (static_cast<unsigned char>(c) < 0x20) {
      out += absl::StrFormat("\\u%04x", c);
    } else {
      out += c;
    }
  }
  return out + "\"";
}

// One step as a JSON object; `extra` is more fields ("\"a\": 1, ...").
std::string StepJson(const StepResult& r, absl::string_view extra = "") {
  return absl::StrFormat(
      "{\"op\": \"%s\", \"clients\": %d, \"object_bytes\": %d, "
      "\"seconds\": %.3f, \"ops\": %d, \"errors\": %d, \"ops_per_s\": %.2f, "
      "\"mb_per_s\": %.3f, \"p50_ms\": %.3f, \"p99_ms\": %.3f, "
      "\"mean_ms\": %.3f, \"first_ms\": %.3f, \"stream_ms\": %.3f, "
      "\"last_ms\": %.3f, \"cpu_client\": %.3f, \"cpu_storage_node\": %.3f, "
      "\"cpu_key_service\": %.3f, \"cpu_other\": %.3f, "
      "\"machine_busy_cores\": %.3f, \"machine_iowait_cores\": %.3f, "
      "\"first_error\": %s%s%s}",
      r.op, r.clients, r.object_bytes, r.wall, r.ops, r.errors, r.ops_per_s(),
      r.mb_per_s(), r.p50_ms, r.p99_ms, r.mean_ms, r.first_ms, r.stream_ms,
      r.last_ms, r.cpu_client, r.cpu_node, r.cpu_keys, r.others(),
      r.machine_busy, r.machine_iowait, JsonString(r.first_error),
      extra.empty() ? "" : ", ", extra);
}

// ---------------------------------------------------------------------------
// The two curves.

struct Setup {
  std::string work_dir, ks_dir, certs;
  std::string ks_binary, sn_binary;
  std::vector<tls::Identity> users;
  int cores = 1;
  double step_seconds = 10;
  double min_gain = 0.15;
};

std::string RandomBytes(size_t n) {
  absl::StatusOr<std::string> bytes = crypto::RandomBytes(n);
  return bytes.ok() ? *std::move(bytes) : std::string(n, 'x');
}

// Node memory after a step.
struct Memory {
  int64_t node_rss = 0, node_peak = 0, keys_rss = 0, keys_peak = 0;
};

Memory ReadMemory(Services& s) {
  Memory m;
  m.node_rss = StatusBytes(s.node_pid(), "VmRSS");
  m.node_peak = StatusBytes(s.node_pid(), "VmHWM");
  m.keys_rss = StatusBytes(s.keys_pid(), "VmRSS");
  m.keys_peak = StatusBytes(s.keys_pid(), "VmHWM");
  return m;
}

std::string MemoryJson(const Memory& m) {
  return absl::StrFormat(
      "\"storage_node_rss_bytes\": %d, \"storage_node_peak_rss_bytes\": %d, "
      "\"key_service_rss_bytes\": %d, \"key_service_peak_rss_bytes\": %d",
      m.node_rss, m.node_peak, m.keys_rss, m.keys_peak);
}

double MiB(int64_t bytes) { return static_cast<double>(bytes) / (1 << 20); }

absl::Status ServicesAlive(Services& s) {
  if (s.running()) return absl::OkStatus();
  return absl::UnavailableError(
      absl::StrCat("a service exited during the run\n", s.logs()));
}

// Deletes what each user stored in a step (ids[user]), untimed: one thread
// per user, one call at a time each, as the node allows a principal only so
// many open calls.
absl::Status DeleteAll(Services& s,
                       const std::vector<std::vector<std::string>>& ids) {
  absl::Mutex mu;
  absl::Status first;
  std::vector<std::thread> threads;
  for (size_t t = 0; t < ids.size(); ++t) {
    threads.emplace_back([&, t] {
      for (const std::string& id : ids[t]) {
        absl::Status deleted =
            s.client(static_cast<int>(t)).Delete(id).status();
        if (!deleted.ok()) {
          absl::MutexLock lock(&mu);
          if (first.ok()) first = deleted;
          return;
        }
      }
    });
  }
  for (std::thread& t : threads) t.join();
  return first;
}

// Returns the JSON of the curve.
absl::StatusOr<std::string> ConcurrencyCurve(const Setup& setup,
                                             const std::vector<int>& clients,
                                             const std::vector<int64_t>& sizes,
                                             std::vector<std::string>& bends) {
  const int max_clients = *std::max_element(clients.begin(), clients.end());
  absl::StatusOr<std::unique_ptr<Services>> started =
      Services::Start(setup.work_dir, setup.ks_dir, setup.certs, setup.users,
                      max_clients, setup.ks_binary, setup.sn_binary);
  if (!started.ok()) return started.status();
  Services& s = **started;
  std::printf(
      "\n== Concurrency curve: N clients (each its own user, client and "
      "channels), Put for %.0f s, then Get of random objects of that Put "
      "for %.0f s\n",
      setup.step_seconds, setup.step_seconds);
  std::vector<std::string> json_steps;
  for (int64_t size : sizes) {
    std::printf("\n-- %s objects\n", SizeName(size).c_str());
    PrintStepHeader("N");
    std::vector<std::string> plaintexts;
    for (int t = 0; t < max_clients; ++t) {
      plaintexts.push_back(RandomBytes(static_cast<size_t>(size)));
    }
    std::vector<StepResult> puts, gets;
    for (int n : clients) {
      if (interrupted) break;
      std::vector<std::vector<std::string>> ids(n);
      StepResult put = RunStep(
          s, "put", n, size, setup.step_seconds,
          [&](int t, uint64_t i, const client::ProgressFn& progress) {
            std::string id = absl::StrCat("c/", size, "/", n, "/", t, "/", i);
            absl::StatusOr<uint64_t> moved =
                PutObject(s.client(t), id, plaintexts[t], progress);
            if (moved.ok()) ids[t].push_back(std::move(id));
            return moved;
          });
      PrintStep(absl::StrCat(n), put);
      std::vector<std::mt19937_64> random;
      for (int t = 0; t < n; ++t) random.emplace_back(t * 7919 + n);
      StepResult get = RunStep(
          s, "get", n, size, setup.step_seconds,
          [&](int t, uint64_t,
              const client::ProgressFn& progress) -> absl::StatusOr<uint64_t> {
            if (ids[t].empty()) {
              return absl::FailedPreconditionError("the Put step stored none");
            }
            const std::string& id = ids[t][random[t]() % ids[t].size()];
            return GetObject(s.client(t), id, size, progress);
          });
      PrintStep(absl::StrCat(n), get);
      const Memory memory = ReadMemory(s);
      json_steps.push_back(StepJson(put, MemoryJson(memory)));
      json_steps.push_back(StepJson(get, MemoryJson(memory)));
      puts.push_back(put);
      gets.push_back(get);
      if (absl::Status deleted = DeleteAll(s, ids); !deleted.ok()) {
        return deleted;
      }
      if (absl::Status alive = ServicesAlive(s); !alive.ok()) return alive;
    }
    const Memory memory = ReadMemory(s);
    std::printf(
        "   after the %s steps: storage_node RSS %.1f MiB (peak %.1f), "
        "key_service RSS %.1f MiB (peak %.1f)\n",
        SizeName(size).c_str(), MiB(memory.node_rss), MiB(memory.node_peak),
        MiB(memory.keys_rss), MiB(memory.keys_peak));
    std::fflush(stdout);
    if (puts.size() >= 2) {
      bends.push_back(ConcurrencyBend(puts, setup.cores, setup.min_gain));
      bends.push_back(ConcurrencyBend(gets, setup.cores, setup.min_gain));
    }
  }
  return absl::StrCat("{\"steps\": [\n    ",
                      absl::StrJoin(json_steps, ",\n    "), "]}");
}

// The fill objects: object k belongs to user k % owners and has a fixed id.
std::string FillId(uint64_t k) {
  // Spread over the key space as application ids would be, not in
  // insertion order.
  uint64_t z = k + 0x9e3779b97f4a7c15ULL;
  z = (z ^ (z >> 30)) * 0xbf58476d1ce4e5b9ULL;
  z = (z ^ (z >> 27)) * 0x94d049bb133111ebULL;
  z ^= z >> 31;
  return absl::StrFormat("f/%016x/%d", z, k);
}

struct Level {
  int64_t objects = 0;
  double fill_seconds = 0;
  int64_t filled = 0;  // objects added to reach this level
  // Objects of earlier levels' Put steps, deleted before this level was
  // measured: their space stays on disk until compaction drops it.
  int64_t deleted_before = 0;
  // Disk growth from the previous level over the objects added.
  double marginal_bytes_per_object = 0;
  double fill_cpu_client = 0, fill_cpu_node = 0, fill_cpu_keys = 0;
  double fill_machine_busy = 0;
  DiskUsage disk;
  uint64_t keys_disk = 0;
  Memory memory;
  RocksLog fill_log;   // during the fill
  RocksLog steps_log;  // during the timed steps
  std::string lsm_state;
  StepResult get, put;
};

std::string CountBend(const std::vector<Level>& levels, bool put, int cores,
                      double max_loss, int64_t object_bytes) {
  auto step = [put](const Level& l) -> const StepResult& {
    return put ? l.put : l.get;
  };
  const std::string name =
      absl::StrFormat("%s %s at %d clients", put ? "Put" : "Get",
                      SizeName(object_bytes), step(levels.front()).clients);
  for (size_t i = 1; i < levels.size(); ++i) {
    const StepResult& prev = step(levels[i - 1]);
    const StepResult& cur = step(levels[i]);
    if (prev.ops_per_s() <= 0) continue;
    const double change = cur.ops_per_s() / prev.ops_per_s() - 1;
    const double p99_ratio = prev.p99_ms > 0 ? cur.p99_ms / prev.p99_ms : 0;
    if (change >= -max_loss && p99_ratio <= 2) continue;
    const Level& l = levels[i];
    return absl::StrFormat(
        "%s: bends at %s objects: %.0f -> %.0f ops/s (%+.0f%%), p99 %.2f -> "
        "%.2f ms; RocksDB during the steps: %d compactions, %.1f s of "
        "compaction in %.1f s, %d write stalls; node RSS %.1f MiB, %.0f MiB "
        "on disk; limited by %s",
        name, CountName(l.objects), prev.ops_per_s(), cur.ops_per_s(),
        change * 100, prev.p99_ms, cur.p99_ms, l.steps_log.compactions,
        l.steps_log.compaction_seconds, l.get.wall + l.put.wall,
        l.steps_log.stalls, MiB(l.memory.node_rss), MiB(l.disk.total),
        Limit(cur, cores));
  }
  const StepResult& first = step(levels.front());
  const StepResult& last = step(levels.back());
  return absl::StrFormat(
      "%s: no bend from %s to %s objects (%.0f -> %.0f ops/s, %+.0f%%; p99 "
      "%.2f -> %.2f ms); at %s: %s",
      name, CountName(levels.front().objects), CountName(levels.back().objects),
      first.ops_per_s(), last.ops_per_s(),
      first.ops_per_s() > 0 ? (last.ops_per_s() / first.ops_per_s() - 1) * 100
                            : 0,
      first.p99_ms, last.p99_ms, CountName(levels.back().objects),
      Limit(last, cores));
}

absl::StatusOr<std::string> CountCurve(const Setup& setup, int64_t max_objects,
                                       int clients, int fill_clients,
                                       int64_t object_bytes,
                                       std::vector<std::string>& bends) {
  absl::StatusOr<std::unique_ptr<Services>> started =
      Services::Start(setup.work_dir, setup.ks_dir, setup.certs, setup.users,
                      fill_clients, setup.ks_binary, setup.sn_binary);
  if (!started.ok()) return started.status();
  Services& s = **started;
  std::vector<int64_t> targets;
  for (int64_t n = 1000; n <= max_objects; n *= 10) targets.push_back(n);
  if (targets.empty() || targets.back() != max_objects) {
    targets.push_back(max_objects);
  }
  std::printf(
      "\n== Object-count curve: %s objects, filled through the client (Put "
      "at %d clients, a fresh data key each, synced writes at both "
      "services); at each level Get of random stored objects, then Put of "
      "new ones (deleted afterwards), %d clients, %.0f s each\n",
      SizeName(object_bytes).c_str(), fill_clients, clients,
      setup.step_seconds);
  std::vector<std::string> plaintexts;
  for (int t = 0; t < fill_clients; ++t) {
    plaintexts.push_back(RandomBytes(static_cast<size_t>(object_bytes)));
  }
  const std::string rocks_log = s.node_rocksdb() + "/LOG";
  if (!fs::exists(rocks_log)) {
    return absl::FailedPreconditionError(
        absl::StrCat("no RocksDB LOG at ", rocks_log));
  }
  std::vector<Level> levels;
  int64_t stored = 0;
  int64_t deleted = 0;
  uint64_t previous_disk = 0;
  for (int64_t target : targets) {
    if (interrupted) break;
    Level level;
    level.objects = target;
    level.filled = target - stored;
    absl::StatusOr<RocksLog> log0 = ReadRocksLog(rocks_log);
    if (!log0.ok()) return log0.status();
    const CpuSnapshot fill0 = TakeCpu(s);
    const int64_t base = stored;
    std::fprintf(stderr, "scale_bench: filling to %s objects...\n",
                 CountName(target).c_str());
    absl::Status filled = Parallel(
        fill_clients, static_cast<uint64_t>(level.filled),
        [&](int, uint64_t i) {
          const uint64_t k = static_cast<uint64_t>(base) + i;
          const int owner = static_cast<int>(k % fill_clients);
          return PutObject(s.client(owner), FillId(k), plaintexts[owner])
              .status();
        });
    if (!filled.ok()) return filled;
    const CpuSnapshot fill1 = TakeCpu(s);
    stored = target;
    level.fill_seconds = Seconds(fill1.at - fill0.at);
    level.fill_cpu_client = (fill1.self - fill0.self) / level.fill_seconds;
    level.fill_cpu_node = (fill1.node - fill0.node) / level.fill_seconds;
    level.fill_cpu_keys = (fill1.keys - fill0.keys) / level.fill_seconds;
    level.fill_machine_busy =
        (fill1.machine.busy - fill0.machine.busy) / level.fill_seconds;
    absl::StatusOr<RocksLog> log1 = ReadRocksLog(rocks_log);
    if (!log1.ok()) return log1.status();
    level.fill_log = log1->Minus(*log0);
    level.disk = WalkDisk(s.node_data());
    level.deleted_before = deleted;
    level.marginal_bytes_per_object = (static_cast<double>(level.disk.total) -
                                       static_cast<double>(previous_disk)) /
                                      static_cast<double>(level.filled);
    previous_disk = level.disk.total;
    level.keys_disk = WalkDisk(s.key_service_data()).total;
    level.memory = ReadMemory(s);

    std::vector<std::mt19937_64> random;
    for (int t = 0; t < clients; ++t) random.emplace_back(t * 104729 + target);
    level.get = RunStep(
        s, "get", clients, object_bytes, setup.step_seconds,
        [&](int t, uint64_t, const client::ProgressFn& progress) {
          // A random fill object of user t: k = t + fill_clients * j.
          const uint64_t owned =
              (static_cast<uint64_t>(target) - t + fill_clients - 1) /
              fill_clients;
          const uint64_t k = t + fill_clients * (random[t]() % owned);
          return GetObject(s.client(t), FillId(k), object_bytes, progress);
        });
    std::vector<std::vector<std::string>> ids(clients);
    level.put =
        RunStep(s, "put", clients, object_bytes, setup.step_seconds,
                [&](int t, uint64_t i, const client::ProgressFn& progress) {
                  std::string id = absl::StrCat("p/", target, "/", t, "/", i);
                  absl::StatusOr<uint64_t> moved =
                      PutObject(s.client(t), id, plaintexts[t], progress);
                  if (moved.ok()) ids[t].push_back(std::move(id));
                  return moved;
                });
    absl::StatusOr<RocksLog> log2 = ReadRocksLog(rocks_log);
    if (!log2.ok()) return log2.status();
    level.steps_log = log2->Minus(*log1);
    level.lsm_state = log2->lsm_state;
    if (absl::Status removed = DeleteAll(s, ids); !removed.ok()) {
      return removed;
    }
    for (const std::vector<std::string>& v : ids) deleted += v.size();
    if (absl::Status alive = ServicesAlive(s); !alive.ok()) return alive;
    std::fprintf(stderr,
                 "scale_bench: %s objects: filled %" PRId64
                 " in %.1f s; get %.0f ops/s, put %.0f ops/s\n",
                 CountName(target).c_str(), level.filled, level.fill_seconds,
                 level.get.ops_per_s(), level.put.ops_per_s());
    levels.push_back(std::move(level));
  }

  std::printf("\n-- timed steps (%d clients)\n", clients);
  PrintStepHeader("objects");
  for (const Level& l : levels) {
    PrintStep(CountName(l.objects), l.get);
    PrintStep(CountName(l.objects), l.put);
  }
  std::printf(
      "\n-- the node at each level (after the fill, before the steps; "
      "RocksDB figures from its LOG)\n");
  std::printf("%s", absl::StrFormat("%-7s %8s %8s %6s %6s %6s  %7s %7s %6s %6s "
                                    "%7s %7s %6s %6s %6s  %5s %5s %6s %5s  %5s "
                                    "%6s %5s\n",
                                    "objects", "fill s", "fill/s", "client",
                                    "node", "keys", "RSS MiB", "peak", "B/obj",
                                    "+B/obj", "deleted", "SST MiB", "blob",
                                    "WAL", "ks MiB", "flush", "comp", "comp s",
                                    "stall", "comp", "comp s", "stall")
                        .c_str());
  for (const Level& l : levels) {
    std::printf(
        "%s", absl::StrFormat(
                  "%-7s %8.1f %8.0f %6.2f %6.2f %6.2f  %7.1f %7.1f %6.0f "
                  "%6.0f %7d %7.1f %6.1f %6.1f %6.1f  %5d %5d %6.1f %5d  %5d "
                  "%6.1f %5d\n",
                  CountName(l.objects), l.fill_seconds,
                  l.fill_seconds > 0 ? l.filled / l.fill_seconds : 0,
                  l.fill_cpu_client, l.fill_cpu_node, l.fill_cpu_keys,
                  MiB(l.memory.node_rss), MiB(l.memory.node_peak),
                  static_cast<double>(l.disk.total) / l.objects,
                  l.marginal_bytes_per_object, l.deleted_before,
                  MiB(l.disk.sst), MiB(l.disk.blob), MiB(l.disk.wal),
                  MiB(l.keys_disk), l.fill_log.flushes, l.fill_log.compactions,
                  l.fill_log.compaction_seconds, l.fill_log.stalls,
                  l.steps_log.compactions, l.steps_log.compaction_seconds,
                  l.steps_log.stalls)
                  .c_str());
  }
  std::printf(
      "   fill s, fill/s: time and objects/s to fill from the previous "
      "level; client/node/keys: cores busy during the fill; B/obj: the "
      "node's data directory over the objects; +B/obj: its growth since the "
      "previous level over the objects added; deleted: objects of earlier "
      "Put steps deleted before this level (their space stays until a "
      "compaction drops it); ks MiB: the key service's "
      "data directory (keys and audit log); flush/comp/comp s/stall: "
      "RocksDB flushes, compactions, compaction seconds and write-stall "
      "warnings during the fill, then (last three) during the timed "
      "steps\n");
  if (!levels.empty()) {
    std::printf("   LSM files per level at the end: [%s]\n",
                levels.back().lsm_state.c_str());
  }
  if (levels.size() >= 2) {
    bends.push_back(CountBend(levels, /*put=*/true, setup.cores, setup.min_gain,
                              object_bytes));
    bends.push_back(CountBend(levels, /*put=*/false, setup.cores,
                              setup.min_gain, object_bytes));
  }

  std::vector<std::string> json_levels;
  for (const Level& l : levels) {
    json_levels.push_back(absl::StrFormat(
        "{\"objects\": %d, \"object_bytes\": %d, \"filled\": %d, "
        "\"fill_seconds\": %.3f, \"fill_objects_per_s\": %.2f, "
        "\"fill_cpu_client\": %.3f, \"fill_cpu_storage_node\": %.3f, "
        "\"fill_cpu_key_service\": %.3f, \"fill_machine_busy_cores\": %.3f, "
        "\"disk_bytes\": %d, \"disk_bytes_per_object\": %.1f, "
        "\"marginal_disk_bytes_per_object\": %.1f, \"deleted_before\": %d, "
        "\"sst_bytes\": %d, \"blob_bytes\": %d, \"wal_bytes\": %d, "
        "\"key_service_disk_bytes\": %d, %s, "
        "\"fill_rocksdb\": {\"flushes\": %d, \"compactions\": %d, "
        "\"compaction_seconds\": %.3f, \"compaction_cpu_seconds\": %.3f, "
        "\"compaction_output_bytes\": %d, \"stalls\": %d}, "
        "\"steps_rocksdb\": {\"flushes\": %d, \"compactions\": %d, "
        "\"compaction_seconds\": %.3f, \"compaction_cpu_seconds\": %.3f, "
        "\"compaction_output_bytes\": %d, \"stalls\": %d}, "
        "\"lsm_state\": [%s],\n     \"get\": %s,\n     \"put\": %s}",
        l.objects, object_bytes, l.filled, l.fill_seconds,
        l.fill_seconds > 0 ? l.filled / l.fill_seconds : 0, l.fill_cpu_client,
        l.fill_cpu_node, l.fill_cpu_keys, l.fill_machine_busy, l.disk.total,
        static_cast<double>(l.disk.total) / l.objects,
        l.marginal_bytes_per_object, l.deleted_before, l.disk.sst, l.disk.blob,
        l.disk.wal, l.keys_disk, MemoryJson(l.memory), l.fill_log.flushes,
        l.fill_log.compactions, l.fill_log.compaction_seconds,
        l.fill_log.compaction_cpu_seconds, l.fill_log.compaction_output_bytes,
        l.fill_log.stalls, l.steps_log.flushes, l.steps_log.compactions,
        l.steps_log.compaction_seconds, l.steps_log.compaction_cpu_seconds,
        l.steps_log.compaction_output_bytes, l.steps_log.stalls, l.lsm_state,
        StepJson(l.get), StepJson(l.put)));
  }
  return absl::StrCat("{\"levels\": [\n    ",
                      absl::StrJoin(json_levels, ",\n    "), "]}");
}

// ---------------------------------------------------------------------------
// Flags.

int Usage(const std::string& message) {
  std::cerr << "scale_bench: " << message << "\nTry --help.\n";
  return kUsage;
}

// "65536", "64K", "1M".
std::optional<int64_t> ParseSize(absl::string_view s) {
  int64_t unit = 1;
  if (absl::EndsWith(s, "K") || absl::EndsWith(s, "k")) unit = 1 << 10;
  if (absl::EndsWith(s, "M") || absl::EndsWith(s, "m")) unit = 1 << 20;
  if (unit != 1) s.remove_suffix(1);
  int64_t n = 0;
  if (!absl::SimpleAtoi(s, &n) || n <= 0) return std::nullopt;
  return n * unit;
}

// The binary `name` of this build tree: next to this binary's directory
// (build/release/bench/scale_bench -> build/release/key_service/key_service)
// or where the build put it.
std::string ServiceBinary(const std::string& flag, const std::string& name,
                          const char* built) {
  if (!flag.empty()) return flag;
  std::error_code ec;
  const fs::path self = fs::read_symlink("/proc/self/exe", ec);
  if (!ec) {
    const fs::path sibling = self.parent_path().parent_path() / name / name;
    if (fs::is_regular_file(sibling, ec)) return sibling.string();
  }
  return built;
}

int Main(int argc, char** argv) {
  absl::SetProgramUsageMessage(
      "the scale curve: Put and Get throughput, p99 latency and each "
      "process's CPU through the client library against real key_service "
      "and storage_node processes (mTLS on loopback), at 1-32 concurrent "
      "clients and at 10^3-10^6 stored objects, with the node's RSS and "
      "on-disk bytes per object; says where each curve bends and what "
      "limits it there.\n\n"
      "  bench/scale                 # full run (both curves, up to 10^6)\n"
      "  bench/scale --quick         # short run (up to 10^4, 3 s steps)\n"
      "  scale_bench --curves=count --max_objects=100000 --json=out.json\n\n"
      "Exit status: 0 done; 1 the run failed; 2 usage error.");
  if (std::string bad = residency::rpc::UnknownFlag(argc, argv); !bad.empty()) {
    return Usage(absl::StrCat("unknown flag ", bad));
  }
  std::vector<char*> rest = absl::ParseCommandLine(argc, argv);
  if (rest.size() > 1) {
    return Usage(absl::StrCat("unexpected argument '", rest[1], "'"));
  }
  const bool quick = absl::GetFlag(FLAGS_quick);

  bool run_concurrency = false, run_count = false;
  for (absl::string_view c :
       absl::StrSplit(absl::GetFlag(FLAGS_curves), ',', absl::SkipEmpty())) {
    if (c == "concurrency") {
      run_concurrency = true;
    } else if (c == "count") {
      run_count = true;
    } else {
      return Usage(absl::StrCat("--curves: unknown curve '", c,
                                "' (concurrency, count)"));
    }
  }
  if (!run_concurrency && !run_count) return Usage("--curves is empty");

  std::vector<int> clients;
  for (absl::string_view c :
       absl::StrSplit(absl::GetFlag(FLAGS_clients), ',', absl::SkipEmpty())) {
    int n = 0;
    if (!absl::SimpleAtoi(c, &n) || n < 1 || n > kMaxClients) {
      return Usage(absl::StrCat("--clients: '", c, "' is not 1-", kMaxClients));
    }
    clients.push_back(n);
  }
  if (clients.empty()) return Usage("--clients is empty");
  if (!std::is_sorted(clients.begin(), clients.end())) {
    return Usage("--clients must be in ascending order");
  }

  std::string sizes_flag = absl::GetFlag(FLAGS_sizes);
  if (sizes_flag.empty()) sizes_flag = quick ? "64K" : "64K,1M";
  std::vector<int64_t> sizes;
  for (absl::string_view c :
       absl::StrSplit(sizes_flag, ',', absl::SkipEmpty())) {
    std::optional<int64_t> size = ParseSize(c);
    if (!size || *size > (int64_t{64} << 20)) {
      return Usage(
          absl::StrCat("--sizes: '", c, "' is not a size of 1 byte to 64M"));
    }
    sizes.push_back(*size);
  }
  if (sizes.empty()) return Usage("--sizes is empty");

  double step_seconds = absl::GetFlag(FLAGS_step_seconds);
  if (step_seconds == 0) step_seconds = quick ? 3 : 10;
  if (!(step_seconds > 0 && step_seconds <= 3600)) {
    return Usage("--step_seconds must be above 0 and at most 3600");
  }
  int64_t max_objects = absl::GetFlag(FLAGS_max_objects);
  if (max_objects == 0) max_objects = quick ? 10000 : 1000000;
  if (max_objects < 1000 || max_objects > 100000000) {
    return Usage("--max_objects must be 1000-100000000");
  }
  const int count_clients = absl::GetFlag(FLAGS_count_clients);
  const int fill_clients = absl::GetFlag(FLAGS_fill_clients);
  if (count_clients < 1 || count_clients > kMaxClients) {
    return Usage(absl::StrCat("--count_clients must be 1-", kMaxClients));
  }
  if (fill_clients < count_clients || fill_clients > kMaxClients) {
    return Usage(absl::StrCat("--fill_clients must be --count_clients-",
                              kMaxClients,
                              " (the timed clients read the "
                              "objects their users filled)"));
  }
  const int64_t object_bytes = absl::GetFlag(FLAGS_count_object_bytes);
  if (object_bytes < 1 || object_bytes > (1 << 20)) {
    return Usage("--count_object_bytes must be 1-1048576");
  }
  const double min_gain = absl::GetFlag(FLAGS_bend_gain);
  if (!(min_gain > 0 && min_gain < 1)) {
    return Usage("--bend_gain must be between 0 and 1");
  }

  Setup setup;
  setup.step_seconds = step_seconds;
  setup.min_gain = min_gain;
  setup.cores = static_cast<int>(sysconf(_SC_NPROCESSORS_ONLN));
  setup.work_dir = absl::GetFlag(FLAGS_work_dir);
  if (setup.work_dir.empty()) {
    const char* tmp = std::getenv("TMPDIR");
    setup.work_dir = tmp != nullptr && *tmp != '\0' ? tmp : "/tmp";
  }
  setup.ks_dir = absl::GetFlag(FLAGS_key_service_dir);
  if (setup.ks_dir.empty()) setup.ks_dir = setup.work_dir;
  setup.ks_binary = ServiceBinary(absl::GetFlag(FLAGS_key_service_binary),
                                  "key_service", RESIDENCY_KEY_SERVICE_BINARY);
  setup.sn_binary =
      ServiceBinary(absl::GetFlag(FLAGS_storage_node_binary), "storage_node",
                    RESIDENCY_STORAGE_NODE_BINARY);
  for (const std::string& binary : {setup.ks_binary, setup.sn_binary}) {
    std::error_code ec;
    if (!fs::is_regular_file(binary, ec)) {
      return Usage(absl::StrCat("no service binary at ", binary));
    }
  }

  struct sigaction action = {};
  action.sa_handler = OnSignal;
  sigaction(SIGINT, &action, nullptr);
  sigaction(SIGTERM, &action, nullptr);
  const Clock::time_point started = Clock::now();

  std::string certs_tmpl = setup.work_dir + "/scale_bench_certs.XXXXXX";
  if (mkdtemp(certs_tmpl.data()) == nullptr) {
    std::cerr << "scale_bench: cannot create " << certs_tmpl << "\n";
    return kRunFailed;
  }
  setup.certs = certs_tmpl;
  struct RemoveCerts {
    std::string dir;
    ~RemoveCerts() {
      std::error_code ignored;
      fs::remove_all(dir, ignored);
    }
  } remove_certs{setup.certs};

  auto fail = [](const absl::Status& status) {
    std::cerr << "scale_bench: " << status << "\n";
    return kRunFailed;
  };
  absl::StatusOr<tls::CertificateAuthority> ca =
      tls::CertificateAuthority::Create("scale-bench-ca");
  if (!ca.ok()) return fail(ca.status());
  for (const auto& [stem, principal] :
       {std::pair{"ks", "residency://service/scale-keys"},
        std::pair{"sn", "residency://service/scale-node"}}) {
    absl::StatusOr<tls::Identity> identity = ca->Issue(principal);
    if (!identity.ok()) return fail(identity.status());
    if (absl::Status written = identity->WriteFiles(setup.certs, stem);
        !written.ok()) {
      return fail(written);
    }
  }
  const int users = std::max({clients.back(), count_clients, fill_clients});
  for (int i = 0; i < users; ++i) {
    absl::StatusOr<tls::Identity> identity =
        ca->Issue(absl::StrCat("residency://user/", UserName(i)));
    if (!identity.ok()) return fail(identity.status());
    setup.users.push_back(*std::move(identity));
  }

  // What the machine is busy with before any service runs: the "other"
  // column of every step is measured against the same machine.
  const MachineCpu idle0 = ReadMachineCpu();
  std::this_thread::sleep_for(std::chrono::seconds(2));
  const MachineCpu idle1 = ReadMachineCpu();
  const double background = (idle1.busy - idle0.busy) / 2;
  std::string loadavg = process::ReadFileOrEmpty("/proc/loadavg");
  while (!loadavg.empty() && loadavg.back() == '\n') loadavg.pop_back();
  std::printf(
      "scale_bench: %d cores online; before the run %.2f cores were busy "
      "with other processes (2 s sample); load average: %s\n"
      "  key_service: %s\n  storage_node: %s\n"
      "  data under %s (key service under %s); step %.0f s%s\n",
      setup.cores, background, loadavg.c_str(), setup.ks_binary.c_str(),
      setup.sn_binary.c_str(), setup.work_dir.c_str(), setup.ks_dir.c_str(),
      step_seconds, quick ? "; --quick" : "");
  std::fflush(stdout);

  std::printf(
      "   CPU columns: cores busy (CPU s per wall s) of this process "
      "(client), storage_node, key_service, the rest of the machine (other "
      "processes, and interrupt time not charged to a process), the whole "
      "machine (busy) and idle-waiting on disk (iowait); %d cores.\n"
      "   1st/strm/last: mean ms per op until the client's first progress "
      "report (Put: GenerateDataKey, opening the upload, sending the header "
      "and encrypting the first 64 KiB piece; Get: header, Unwrap, the first "
      "message and its "
      "decryption), "
      "between the first and last report, and after the last (Put: the "
      "upload and the node's synced commit).\n",
      setup.cores);
  std::vector<std::string> bends;
  std::string concurrency_json = "null", count_json = "null";
  if (run_concurrency) {
    absl::StatusOr<std::string> json =
        ConcurrencyCurve(setup, clients, sizes, bends);
    if (!json.ok()) return fail(json.status());
    concurrency_json = *std::move(json);
  }
  if (run_count && !interrupted) {
    absl::StatusOr<std::string> json = CountCurve(
        setup, max_objects, count_clients, fill_clients, object_bytes, bends);
    if (!json.ok()) return fail(json.status());
    count_json = *std::move(json);
  }
  const double total = Seconds(Clock::now() - started);

  std::printf(
      "\n== Where the curves bend (a doubling of N gaining < %.0f%%, "
      "or a tenfold object count losing > %.0f%% or doubling p99)\n",
      min_gain * 100, min_gain * 100);
  for (const std::string& line : bends) std::printf("%s\n", line.c_str());
  std::printf("\nscale_bench: %.0f s in all%s\n", total,
              interrupted ? " (interrupted: figures are partial)" : "");

  if (const std::string path = absl::GetFlag(FLAGS_json); !path.empty()) {
    std::vector<std::string> quoted;
    for (const std::string& b : bends) quoted.push_back(JsonString(b));
    std::ofstream out(path, std::ios::trunc);
    out << absl::StrFormat(
        "{\"machine\": {\"cores\": %d, \"busy_cores_before_run\": %.3f, "
        "\"loadavg_at_start\": %s},\n"
        " \"settings\": {\"quick\": %s, \"step_seconds\": %.3f, "
        "\"max_objects\": %d, \"count_clients\": %d, \"fill_clients\": %d, "
        "\"count_object_bytes\": %d, \"bend_gain\": %.3f},\n"
        " \"concurrency\": %s,\n \"count\": %s,\n \"bends\": [%s],\n"
        " \"seconds\": %.1f, \"interrupted\": %s}\n",
        setup.cores, background, JsonString(loadavg), quick ? "true" : "false",
        step_seconds, max_objects, count_clients, fill_clients, object_bytes,
        min_gain, concurrency_json, count_json, absl::StrJoin(quoted, ",\n   "),
        total, interrupted ? "true" : "false");
    if (!out) {
      std::cerr << "scale_bench: cannot write " << path << "\n";
      return kRunFailed;
    }
  }
  return interrupted ? kRunFailed : 0;
}

}  // namespace
}  // namespace residency::bench

int main(int argc, char** argv) { return residency::bench::Main(argc, argv); }
