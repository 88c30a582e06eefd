// storage_node: the onshore ciphertext-only object store as a gRPC server.
//
//   storage_node --jurisdiction=CN --data_dir=/var/sn
//       --operator_principal=residency://operator/cn-telecom
//       --tls_ca=ca.crt --tls_cert=sn.crt --tls_key=sn.key
//
// or, as one of several gateways over a Ceph cluster:
//
//   storage_node --store=rados --rados_conf=/etc/ceph/ceph.conf
//       --rados_pool=residency --jurisdiction=CN ...
//
// Exit codes: 0 after a clean shutdown (SIGINT/SIGTERM), 1 when start-up
// fails (the message says why), 2 for usage errors.
#include <malloc.h>

#include <cstdio>
#include <string>
#include <vector>

#include "absl/flags/flag.h"
#include "absl/flags/parse.h"
#include "absl/flags/usage.h"
#include "absl/strings/str_cat.h"
#include "absl/synchronization/mutex.h"
#include "rpc/heap.h"
#include "rpc/server.h"
#include "storage_node/rados_store.h"
#include "storage_node/server.h"
#include "tls/credentials.h"
#include "tls/flags.h"

ABSL_FLAG(std::string, listen, "127.0.0.1:7444",
          "host:port to listen on; port 0 picks a free port (see --port_file)");
ABSL_FLAG(std::string, jurisdiction, "",
          "the jurisdiction this node declares, e.g. CN (required); objects "
          "whose residency rule excludes it are refused");
ABSL_FLAG(std::string, operator_principal, "",
          "the node's operator, residency://operator/NAME (required): the "
          "one identity that may Export and read every owner's Stats");
ABSL_FLAG(std::string, store, "rocksdb",
          "where objects are kept: rocksdb (embedded, in --data_dir) or "
          "rados (a Ceph pool that several nodes may share as gateways)");
ABSL_FLAG(std::string, data_dir, "",
          "directory of the RocksDB object store (required with "
          "--store=rocksdb; created with mode 0700)");
ABSL_FLAG(std::string, rados_conf, "",
          "with --store=rados: the cluster's ceph.conf (required)");
ABSL_FLAG(std::string, rados_pool, "",
          "with --store=rados: the pool holding the objects (required; "
          "must exist)");
ABSL_FLAG(std::string, rados_namespace, "",
          "with --store=rados: a RADOS namespace within the pool (empty: "
          "the default); gateways must agree on it");
ABSL_FLAG(std::string, rados_client, "client.admin",
          "with --store=rados: the cephx client name to connect as");
ABSL_FLAG(absl::Duration, rados_op_timeout, absl::Seconds(10),
          "with --store=rados: how long a RADOS operation waits for the "
          "cluster before the call fails UNAVAILABLE");
ABSL_FLAG(int64_t, max_object_bytes, int64_t{4} << 30,
          "largest object (ciphertext bytes) accepted");
ABSL_FLAG(int64_t, max_streams, 64,
          "most concurrent calls (one handler thread each)");
ABSL_FLAG(absl::Duration, stream_idle_timeout, absl::Seconds(60),
          "a Put, Get or Export that moves fewer than --stream_min_bytes "
          "within this long is cancelled (e.g. 60s, 2m)");
ABSL_FLAG(int64_t, stream_min_bytes, 64 * 1024,
          "bytes a stream must move per --stream_idle_timeout (1 = only "
          "idle streams are cancelled)");
ABSL_FLAG(std::string, port_file, "",
          "if set, write the bound port here once serving (for --listen "
          "with port 0)");

namespace {

int Usage(const std::string& message) {
  std::fprintf(stderr, "storage_node: %s\nRun storage_node --help for usage.\n",
               message.c_str());
  return 2;
}

int Fail(absl::string_view what, const absl::Status& status) {
  std::fprintf(stderr, "storage_node: %s: %s\n", std::string(what).c_str(),
               std::string(status.message()).c_str());
  return 1;
}

}  // namespace

int main(int argc, char** argv) {
  // Streams pass through buffers of up to a few MiB. Serving them from
  // mmap, returned to the system when freed, keeps the node's memory flat
  // instead of letting per-thread heaps keep every peak of them. Smaller
  // buffers stay in the (at most four) heaps for reuse: rpc/heap.h says
  // what that saves and costs.
  mallopt(M_MMAP_THRESHOLD, 256 * 1024);
  mallopt(M_ARENA_MAX, 4);
  residency::rpc::KeepFreedHeapMemory();
  absl::SetProgramUsageMessage(
      "the residency storage node: an onshore object store that holds "
      "ciphertext, wrapped keys and headers only.\n\n"
      "  storage_node --jurisdiction=CN --data_dir=DIR \\\n"
      "      --operator_principal=residency://operator/cn-telecom \\\n"
      "      --tls_ca=ca.crt --tls_cert=sn.crt --tls_key=sn.key");
  residency::tls::HelpShowsTlsFlags(__FILE__);
  std::vector<char*> rest = absl::ParseCommandLine(argc, argv);
  // Abseil's mutex deadlock detection is a debugging aid that costs every
  // lock (gRPC's included) a graph update; the node runs without it.
  absl::SetMutexDeadlockDetectionMode(absl::OnDeadlockCycle::kIgnore);
  if (rest.size() > 1) {
    return Usage(absl::StrCat("unexpected argument '", rest[1], "'"));
  }
  const std::string store = absl::GetFlag(FLAGS_store);
  if (store != "rocksdb" && store != "rados") {
    return Usage(
        absl::StrCat("--store must be rocksdb or rados, not '", store, "'"));
  }
  std::vector<std::pair<const char*, std::string>> required = {
      {"--jurisdiction", absl::GetFlag(FLAGS_jurisdiction)},
      {"--operator_principal", absl::GetFlag(FLAGS_operator_principal)}};
  if (store == "rocksdb") {
    required.emplace_back("--data_dir", absl::GetFlag(FLAGS_data_dir));
  } else {
    required.emplace_back("--rados_conf", absl::GetFlag(FLAGS_rados_conf));
    required.emplace_back("--rados_pool", absl::GetFlag(FLAGS_rados_pool));
  }
  for (const auto& [name, value] : required) {
    if (value.empty()) return Usage(absl::StrCat(name, " is required"));
  }
  if (absl::GetFlag(FLAGS_rados_op_timeout) < absl::Seconds(1)) {
    return Usage("--rados_op_timeout must be at least 1s");
  }
  if (const std::string missing = residency::tls::MissingTlsFlag();
      !missing.empty()) {
    return Usage(absl::StrCat(missing, " is required"));
  }
  if (absl::GetFlag(FLAGS_max_object_bytes) < 72) {
    return Usage("--max_object_bytes must be at least 72");
  }
  if (absl::GetFlag(FLAGS_max_streams) < 4 ||
      absl::GetFlag(FLAGS_max_streams) > 4096) {
    return Usage("--max_streams must be between 4 and 4096");
  }
  if (absl::GetFlag(FLAGS_stream_idle_timeout) < absl::Seconds(1)) {
    return Usage("--stream_idle_timeout must be at least 1s");
  }
  if (absl::GetFlag(FLAGS_stream_min_bytes) < 1) {
    return Usage("--stream_min_bytes must be at least 1");
  }
  residency::rpc::BlockShutdownSignals();

  absl::StatusOr<residency::tls::TlsMaterial> tls =
      residency::tls::LoadTlsMaterialFromFlags();
  if (!tls.ok()) return Fail("cannot start", tls.status());
  residency::storage_node::StorageNodeServerOptions options;
  options.listen_address = absl::GetFlag(FLAGS_listen);
  options.tls = *std::move(tls);
  options.jurisdiction = absl::GetFlag(FLAGS_jurisdiction);
  options.operator_principal = absl::GetFlag(FLAGS_operator_principal);
  options.data_dir = absl::GetFlag(FLAGS_data_dir);
  options.store.max_object_bytes =
      static_cast<uint64_t>(absl::GetFlag(FLAGS_max_object_bytes));
  if (store == "rados") {
    residency::storage_node::RadosStoreOptions rados;
    rados.conf_path = absl::GetFlag(FLAGS_rados_conf);
    rados.pool = absl::GetFlag(FLAGS_rados_pool);
    rados.rados_namespace = absl::GetFlag(FLAGS_rados_namespace);
    rados.client = absl::GetFlag(FLAGS_rados_client);
    rados.op_timeout = absl::GetFlag(FLAGS_rados_op_timeout);
    options.open_store =
        [rados](const std::string&,
                const residency::storage_node::ObjectStoreOptions& store)
        -> absl::StatusOr<
            std::unique_ptr<residency::storage_node::ObjectStore>> {
      residency::storage_node::RadosStoreOptions o = rados;
      o.store = store;
      return residency::storage_node::RadosObjectStore::Open(std::move(o));
    };
  }
  options.max_threads = static_cast<int>(absl::GetFlag(FLAGS_max_streams));
  options.limits.idle_timeout = absl::GetFlag(FLAGS_stream_idle_timeout);
  options.limits.min_progress_bytes =
      static_cast<uint64_t>(absl::GetFlag(FLAGS_stream_min_bytes));
  absl::StatusOr<std::unique_ptr<residency::storage_node::StorageNodeServer>>
      server =
          residency::storage_node::StorageNodeServer::Start(std::move(options));
  if (!server.ok()) return Fail("cannot start", server.status());
  std::fprintf(stderr, "storage_node: %s serving on %s (jurisdiction %s)\n",
               (*server)->principal().c_str(), (*server)->address().c_str(),
               absl::GetFlag(FLAGS_jurisdiction).c_str());
  absl::Status served = residency::rpc::ServeUntilSignal(
      (*server)->rpc_server(), absl::GetFlag(FLAGS_port_file), "storage_node");
  server->reset();
  if (!served.ok()) return Fail("stopped", served);
  return 0;
}
