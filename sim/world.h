#ifndef RESIDENCY_SIM_WORLD_H_
#define RESIDENCY_SIM_WORLD_H_

// A scenario's world while it runs: the services (in-process, each on its own
// loopback port with mTLS; or each its own process of the real binary; or
// already running elsewhere, see ServiceMode), the identities every party
// presents, the links between jurisdictions, and the users with their
// clients and what they stored.

#include <grpcpp/grpcpp.h>

#include <cstdint>
#include <map>
#include <memory>
#include <mutex>
#include <optional>
#include <string>
#include <utility>
#include <vector>

#include "absl/status/statusor.h"
#include "absl/strings/string_view.h"
#include "client/client.h"
#include "key_service/audit_log.h"
#include "key_service/key_store.h"
#include "residency/v1/scenario.pb.h"
#include "sim/links.h"
#include "tls/credentials.h"
#include "tls/pki.h"

namespace residency::key_service {
class KeyServiceServer;
}
namespace residency::storage_node {
class CephCluster;
class StorageNodeServer;
}  // namespace residency::storage_node
namespace residency::process {
class ServerProcess;
}

namespace residency::sim {

// Where the world's services run.
enum class ServiceMode {
  // In this process, each on its own loopback port (the default).
  kInProcess,
  // Each its own process of the real key_service / storage_node binary,
  // on a loopback port, its state under the work directory (--spawn).
  kSpawn,
  // Already running elsewhere, as a Topology names them (--topology): the
  // simulator reaches them over the network only, never their files.
  kTopology,
};

const char* ServiceModeName(ServiceMode mode);

struct WorldOptions {
  ServiceMode mode = ServiceMode::kInProcess;
  // kSpawn: the key_service and storage_node binaries to run.
  std::string key_service_binary;
  std::string storage_node_binary;
  // kTopology: the services and credentials, validated (LoadTopology in
  // sim/topology.h) and with every path usable as it is.
  residency::v1::Topology topology;
};

// The file stem of `principal`'s certificate and key in a directory of
// identities: "residency://user/user-1" -> "user.user-1".
std::string IdentityStem(absl::string_view principal);

// A running service as parties see it.
struct Endpoint {
  std::string name;          // "us-custodian"
  std::string principal;     // "residency://service/us-custodian"
  std::string jurisdiction;  // "US"
  std::string address;       // "127.0.0.1:PORT"
  // Where it keeps its state; empty when the simulator cannot reach it
  // (ServiceMode::kTopology, a storage node on RADOS).
  std::string data_dir;
  // Storage nodes: every gateway's address, `address` first (one entry
  // unless the node is on RADOS with several gateways).
  std::vector<std::string> gateways;
};

// One object version as its owner knows it.
struct Truth {
  std::string owner;
  std::string object_id;
  uint64_t version = 0;
  uint64_t size = 0;
  std::string sha256;
  std::string node;  // The storage node that holds it.
};

struct User {
  std::string name;       // "user-1"
  std::string principal;  // "residency://user/user-1"
  // By storage node name and data-key cache entries; see World::ClientFor.
  std::map<std::pair<std::string, uint32_t>, std::unique_ptr<client::Client>>
      clients;
  // The latest version of each object the user stored, in order of first
  // store.
  std::vector<Truth> objects;
};

class World {
 public:
  // Starts every service of `scenario.world()` with its state under
  // `work_dir`, and creates each user's KEK at the population's key
  // services. `seed` seeds links and contents.
  static absl::StatusOr<std::unique_ptr<World>> Start(
      const residency::v1::Scenario& scenario, const std::string& work_dir,
      uint64_t seed, const WorldOptions& options = {});
  ~World();

  const residency::v1::Scenario& scenario() const { return scenario_; }
  uint64_t seed() const { return seed_; }
  // Marks users' plaintext for auditors: "RESIDENCY-CANARY-<16 hex>", at
  // the start of every object and every 64 KiB.
  const std::string& canary() const { return canary_; }
  Links& links() { return *links_; }
  // work_dir/name.
  std::string Dir(const std::string& name) const;

  const std::vector<Endpoint>& key_services() const { return key_services_; }
  const std::vector<Endpoint>& storage_nodes() const { return nodes_; }
  // NOT_FOUND for an unknown name.
  absl::StatusOr<const Endpoint*> KeyService(const std::string& name) const;
  absl::StatusOr<const Endpoint*> StorageNode(const std::string& name) const;
  const residency::v1::StorageNodeSpec& NodeSpec(const std::string& name) const;
  // The key service whose principal is `principal`, or nullptr.
  const Endpoint* KeyServiceByPrincipal(const std::string& principal) const;
  ServiceMode mode() const { return mode_; }
  // OK when the services' data directories are on this machine (not
  // kTopology); else FAILED_PRECONDITION saying that `what` needs them.
  absl::Status NeedDataDirs(absl::string_view what) const;
  // The in-process server behind a key service (audit log, custodian);
  // nullptr unless kInProcess.
  key_service::KeyServiceServer* KeyServiceServer(const std::string& name);
  // Key service `name`'s audit public key (PEM), as an auditor obtains it
  // out of band: from the in-process service, from the file the process
  // wrote into its data directory (kSpawn), or from the topology's
  // audit_public_key_file.
  absl::StatusOr<std::string> AuditPublicKeyPem(const std::string& name);
  // Reads key service `name`'s stored audit log from entry 1 into `sink`,
  // as its custodian can, without ReadAuditLog: from the in-process log,
  // or from its files while the process runs (kSpawn: a RocksDB secondary
  // instance, key_service::AuditLogReader). FAILED_PRECONDITION for
  // kTopology.
  absl::Status ReadStoredAuditLog(const std::string& name,
                                  const key_service::AuditSink& sink);
  // The KEKs `key_ids` (those that exist) at key service `name`, as its
  // custodian can read them: from the in-process store, or (kSpawn) from a
  // copy of the running process's key store opened with its root key file.
  // FAILED_PRECONDITION for kTopology.
  absl::StatusOr<std::map<std::string, key_service::KeyStore::Snapshot>>
  ReadKeks(const std::string& name, const std::vector<std::string>& key_ids);

  // The certificate and key of `principal` ("residency://authority/cn"),
  // issued by the world's CA on first use.
  // The pointer stays valid as long as the world.
  absl::StatusOr<const tls::Identity*> Identity(const std::string& principal);

  // A channel from a party in jurisdiction `from`, presenting `principal`'s
  // certificate, to a service; it crosses the link between the two
  // jurisdictions.
  absl::StatusOr<std::shared_ptr<grpc::Channel>> Channel(
      const std::string& from, const Endpoint& to,
      const std::string& principal);

  std::vector<User>& users() { return users_; }
  // `user`'s client for storage node `node` (empty: the population's),
  // created on first use with the population's custody mode and key
  // services, and a data-key cache of `data_key_cache` entries (nullopt:
  // the population's). Clients with different caches are different clients
  // (their own channels, their own caches); each lives as long as the world,
  // so a cache filled in one phase is still warm in the next phase that
  // asks for the same size.
  absl::StatusOr<client::Client*> ClientFor(
      User& user, const std::string& node = "",
      std::optional<uint32_t> data_key_cache = std::nullopt);
  // From now on users reach storage node `node` at `address` (an insider's
  // proxy, say): their clients for it are rebuilt on next use.
  void RouteStorageNode(const std::string& node, const std::string& address);

  // The content `user` stores as object `index` at `version`: its size
  // drawn log-uniformly from the population's range, its bytes from the
  // seed, the canary at the start and every 64 KiB.
  std::string Content(const std::string& user, uint32_t index,
                      uint64_t version) const;

  // Where a provider that keeps plaintext (StorageNodeSpec.keeps_plaintext)
  // keeps its readable copies: <node data dir>/plaintext/<owner>/<object>.
  std::string PlaintextDir(const std::string& node) const;

  // Stops every service (in-flight calls get a short grace period; a
  // process gets SIGTERM, then SIGKILL if it has not exited within 10 s).
  // Their stores are closed when it returns. Services of a topology are
  // left running.
  void Stop();

 private:
  World(const residency::v1::Scenario& scenario, std::string work_dir,
        uint64_t seed, const WorldOptions& options);
  absl::Status StartServices();
  absl::Status SpawnServices();
  absl::Status ConnectServices();
  absl::Status StartUsers();
  // The run's Ceph cluster, started on first call.
  absl::StatusOr<storage_node::CephCluster*> Ceph();

  const residency::v1::Scenario& scenario_;
  const std::string work_dir_;
  const uint64_t seed_;
  const ServiceMode mode_;
  const WorldOptions options_;
  std::string canary_;
  std::unique_ptr<tls::CertificateAuthority> ca_;
  std::unique_ptr<Links> links_;
  std::vector<Endpoint> key_services_;
  std::vector<Endpoint> nodes_;
  // The cluster of the nodes on RADOS (work_dir/ceph), started on first
  // need; outlives the nodes, declared before them.
  std::unique_ptr<storage_node::CephCluster> ceph_;
  std::map<std::string, std::unique_ptr<key_service::KeyServiceServer>>
      key_service_servers_;
  std::map<std::string, std::unique_ptr<storage_node::StorageNodeServer>>
      node_servers_;
  // kSpawn: by service name.
  std::map<std::string, std::unique_ptr<process::ServerProcess>> processes_;
  std::map<std::string, std::string> node_routes_;
  std::mutex mu_;  // Guards identities_ and users' client maps.
  std::map<std::string, tls::Identity> identities_;
  std::vector<User> users_;
};

}  // namespace residency::sim

#endif  // RESIDENCY_SIM_WORLD_H_
