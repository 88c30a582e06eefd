#include "sim/world.h"

#include <algorithm>
#include <cmath>
#include <cstring>
#include <filesystem>
#include <fstream>
#include <random>

#include "absl/strings/match.h"
#include "absl/strings/str_cat.h"
#include "absl/strings/str_replace.h"
#include "absl/strings/strip.h"
#include "google/protobuf/text_format.h"
#include "key_service/policy.h"
#include "key_service/server.h"
#include "rpc/process.h"
#include "sim/data_dir.h"
#include "storage_node/ceph_cluster.h"
#include "storage_node/rados_store.h"
#include "storage_node/server.h"

namespace residency::sim {
namespace {

namespace fs = std::filesystem;

// The pool the run's Ceph cluster keeps RADOS-backed nodes in; each node
// uses the namespace of its name.
constexpr char kRadosPool[] = "residency";

bool OnRados(const residency::v1::StorageNodeSpec& spec) {
  return spec.store() == residency::v1::StorageNodeSpec::STORE_RADOS;
}

uint32_t GatewayCount(const residency::v1::StorageNodeSpec& spec) {
  return OnRados(spec) ? std::max<uint32_t>(1, spec.gateways()) : 1;
}

client::CustodyMode ModeOf(residency::v1::CustodyMode mode) {
  switch (mode) {
    case residency::v1::CUSTODY_MODE_E2E:
      return client::CustodyMode::kE2e;
    case residency::v1::CUSTODY_MODE_SPLIT:
      return client::CustodyMode::kSplit;
    default:
      return client::CustodyMode::kCustodian;
  }
}

absl::StatusOr<std::string> ReadSmallFile(const std::string& path) {
  std::error_code ec;
  if (!fs::is_regular_file(path, ec)) {
    return absl::NotFoundError(absl::StrCat("cannot read ", path));
  }
  std::string text = process::ReadFileOrEmpty(path);
  if (text.empty()) return absl::NotFoundError(absl::StrCat(path, " is empty"));
  return text;
}

// The policy of a key service as the file its process reads.
absl::Status WritePolicyFile(const residency::v1::Policy& policy,
                             const std::string& path) {
  std::string text;
  if (!google::protobuf::TextFormat::PrintToString(policy, &text)) {
    return absl::InternalError("cannot print a policy");
  }
  std::ofstream out(path, std::ios::trunc);
  out << "# residency.v1.Policy (proto/residency/v1/policy.proto)\n" << text;
  out.close();
  if (!out) return absl::InternalError(absl::StrCat("cannot write ", path));
  return absl::OkStatus();
}

}  // namespace

const char* ServiceModeName(ServiceMode mode) {
  switch (mode) {
    case ServiceMode::kSpawn:
      return "spawn";
    case ServiceMode::kTopology:
      return "topology";
    default:
      return "in-process";
  }
}

std::string IdentityStem(absl::string_view principal) {
  absl::string_view rest = principal;
  absl::ConsumePrefix(&rest, "residency://");
  return absl::StrReplaceAll(rest, {{"/", "."}});
}

World::World(const residency::v1::Scenario& scenario, std::string work_dir,
             uint64_t seed, const WorldOptions& options)
    : scenario_(scenario),
      work_dir_(std::move(work_dir)),
      seed_(seed),
      mode_(options.mode),
      options_(options) {
  // A canary no stored object can contain by chance.
  std::mt19937_64 rng(seed_ ^ 0x5eedca9a7ull);
  canary_ =
      absl::StrCat("RESIDENCY-CANARY-", absl::Hex(rng(), absl::kZeroPad16));
}

World::~World() { Stop(); }

absl::StatusOr<std::unique_ptr<World>> World::Start(
    const residency::v1::Scenario& scenario, const std::string& work_dir,
    uint64_t seed, const WorldOptions& options) {
  std::unique_ptr<World> world(new World(scenario, work_dir, seed, options));
  if (options.mode != ServiceMode::kTopology) {
    absl::StatusOr<tls::CertificateAuthority> ca =
        tls::CertificateAuthority::Create("residency-sim-ca");
    if (!ca.ok()) return ca.status();
    world->ca_ = std::make_unique<tls::CertificateAuthority>(*std::move(ca));
  }
  world->links_ = std::make_unique<Links>(scenario.world(), seed);
  absl::Status started =
      options.mode == ServiceMode::kSpawn      ? world->SpawnServices()
      : options.mode == ServiceMode::kTopology ? world->ConnectServices()
                                               : world->StartServices();
  if (!started.ok()) return started;
  if (absl::Status s = world->StartUsers(); !s.ok()) return s;
  return world;
}

absl::Status World::StartServices() {
  for (const auto& spec : scenario_.world().key_services()) {
    Endpoint endpoint{spec.name(),
                      "residency://service/" + spec.name(),
                      spec.jurisdiction(),
                      "",
                      Dir("ks-" + spec.name()),
                      {}};
    absl::StatusOr<const tls::Identity*> id = Identity(endpoint.principal);
    if (!id.ok()) return id.status();
    key_service::KeyServiceServerOptions options;
    options.tls = (*id)->Material();
    options.jurisdiction = spec.jurisdiction();
    options.data_dir = endpoint.data_dir;
    std::string text;
    google::protobuf::TextFormat::PrintToString(spec.policy(), &text);
    absl::StatusOr<key_service::PolicyEngine> policy =
        key_service::PolicyEngine::Parse(text, spec.name());
    if (!policy.ok()) return policy.status();
    absl::StatusOr<std::unique_ptr<key_service::KeyServiceServer>> server =
        key_service::KeyServiceServer::Start(std::move(options),
                                             *std::move(policy));
    if (!server.ok()) return server.status();
    endpoint.address = (*server)->address();
    key_service_servers_[spec.name()] = *std::move(server);
    key_services_.push_back(std::move(endpoint));
  }
  for (const auto& spec : scenario_.world().storage_nodes()) {
    Endpoint endpoint{spec.name(),
                      "residency://service/" + spec.name(),
                      spec.jurisdiction(),
                      "",
                      OnRados(spec) ? "" : Dir("sn-" + spec.name()),
                      {}};
    absl::StatusOr<const tls::Identity*> id = Identity(endpoint.principal);
    if (!id.ok()) return id.status();
    std::string conf;
    if (OnRados(spec)) {
      absl::StatusOr<storage_node::CephCluster*> ceph = Ceph();
      if (!ceph.ok()) return ceph.status();
      conf = (*ceph)->conf_path();
    }
    for (uint32_t g = 0; g < GatewayCount(spec); ++g) {
      storage_node::StorageNodeServerOptions options;
      options.tls = (*id)->Material();
      options.jurisdiction = spec.jurisdiction();
      options.operator_principal = "residency://operator/" + spec.operator_();
      options.data_dir = endpoint.data_dir;
      if (OnRados(spec)) {
        options.open_store = [conf, name = spec.name()](
                                 const std::string&,
                                 const storage_node::ObjectStoreOptions& store)
            -> absl::StatusOr<std::unique_ptr<storage_node::ObjectStore>> {
          storage_node::RadosStoreOptions rados;
          rados.conf_path = conf;
          rados.pool = kRadosPool;
          rados.rados_namespace = name;
          rados.store = store;
          return storage_node::RadosObjectStore::Open(std::move(rados));
        };
      }
      absl::StatusOr<std::unique_ptr<storage_node::StorageNodeServer>> server =
          storage_node::StorageNodeServer::Start(std::move(options));
      if (!server.ok()) return server.status();
      endpoint.gateways.push_back((*server)->address());
      node_servers_[g == 0 ? spec.name()
                           : absl::StrCat(spec.name(), "#", g + 1)] =
          *std::move(server);
    }
    endpoint.address = endpoint.gateways.front();
    nodes_.push_back(std::move(endpoint));
  }
  return absl::OkStatus();
}

absl::StatusOr<storage_node::CephCluster*> World::Ceph() {
  if (ceph_ == nullptr) {
    storage_node::CephClusterOptions options;
    options.dir = Dir("ceph");
    options.pool = kRadosPool;
    absl::StatusOr<std::unique_ptr<storage_node::CephCluster>> cluster =
        storage_node::CephCluster::Start(options);
    if (!cluster.ok()) return cluster.status();
    ceph_ = *std::move(cluster);
  }
  return ceph_.get();
}

absl::Status World::SpawnServices() {
  const std::string tls_dir = Dir("tls");
  const std::string procs_dir = Dir("processes");
  for (const std::string& dir : {tls_dir, procs_dir}) {
    std::error_code ec;
    fs::create_directories(dir, ec);
    if (ec) {
      return absl::InternalError(
          absl::StrCat("cannot create ", dir, ": ", ec.message()));
    }
  }
  // Writes `principal`'s certificate and key for its process; returns the
  // TLS flags.
  auto tls_flags = [&](const std::string& principal)
      -> absl::StatusOr<std::vector<std::string>> {
    absl::StatusOr<const tls::Identity*> id = Identity(principal);
    if (!id.ok()) return id.status();
    const std::string stem = IdentityStem(principal);
    if (absl::Status s = (*id)->WriteFiles(tls_dir, stem); !s.ok()) return s;
    return std::vector<std::string>{
        "--tls_ca=" + tls_dir + "/ca.crt",
        absl::StrCat("--tls_cert=", tls_dir, "/", stem, ".crt"),
        absl::StrCat("--tls_key=", tls_dir, "/", stem, ".key")};
  };
  auto spawn = [&](const std::string& binary, std::vector<std::string> args,
                   const std::string& name) -> absl::StatusOr<std::string> {
    absl::StatusOr<std::unique_ptr<process::ServerProcess>> started =
        process::ServerProcess::Start(binary, std::move(args), procs_dir, name);
    if (!started.ok()) return started.status();
    std::string address = (*started)->address();
    processes_[name] = *std::move(started);
    return address;
  };
  for (const auto& spec : scenario_.world().key_services()) {
    Endpoint endpoint{spec.name(),
                      "residency://service/" + spec.name(),
                      spec.jurisdiction(),
                      "",
                      Dir("ks-" + spec.name()),
                      {}};
    absl::StatusOr<std::vector<std::string>> args =
        tls_flags(endpoint.principal);
    if (!args.ok()) return args.status();
    const std::string policy_file =
        absl::StrCat(procs_dir, "/", spec.name(), ".policy.textproto");
    if (absl::Status s = WritePolicyFile(spec.policy(), policy_file); !s.ok()) {
      return s;
    }
    args->push_back("--jurisdiction=" + spec.jurisdiction());
    args->push_back("--policy=" + policy_file);
    args->push_back("--data_dir=" + endpoint.data_dir);
    absl::StatusOr<std::string> address =
        spawn(options_.key_service_binary, *std::move(args), spec.name());
    if (!address.ok()) return address.status();
    endpoint.address = *std::move(address);
    key_services_.push_back(std::move(endpoint));
  }
  for (const auto& spec : scenario_.world().storage_nodes()) {
    Endpoint endpoint{spec.name(),
                      "residency://service/" + spec.name(),
                      spec.jurisdiction(),
                      "",
                      OnRados(spec) ? "" : Dir("sn-" + spec.name()),
                      {}};
    absl::StatusOr<std::vector<std::string>> args =
        tls_flags(endpoint.principal);
    if (!args.ok()) return args.status();
    args->push_back("--jurisdiction=" + spec.jurisdiction());
    args->push_back("--operator_principal=residency://operator/" +
                    spec.operator_());
    if (OnRados(spec)) {
      absl::StatusOr<storage_node::CephCluster*> ceph = Ceph();
      if (!ceph.ok()) return ceph.status();
      args->push_back("--store=rados");
      args->push_back("--rados_conf=" + (*ceph)->conf_path());
      args->push_back(absl::StrCat("--rados_pool=", kRadosPool));
      args->push_back("--rados_namespace=" + spec.name());
    } else {
      args->push_back("--data_dir=" + endpoint.data_dir);
    }
    for (uint32_t g = 0; g < GatewayCount(spec); ++g) {
      absl::StatusOr<std::string> address = spawn(
          options_.storage_node_binary, *args,
          g == 0 ? spec.name() : absl::StrCat(spec.name(), "-gateway-", g + 1));
      if (!address.ok()) return address.status();
      endpoint.gateways.push_back(*std::move(address));
    }
    endpoint.address = endpoint.gateways.front();
    nodes_.push_back(std::move(endpoint));
  }
  return absl::OkStatus();
}

absl::Status World::ConnectServices() {
  const residency::v1::Topology& topology = options_.topology;
  auto find = [&](const std::string& name)
      -> absl::StatusOr<const residency::v1::Topology::Service*> {
    for (const auto& s : topology.services()) {
      if (s.name() == name) return &s;
    }
    return absl::InvalidArgumentError(
        absl::StrCat("the topology does not list '", name, "'"));
  };
  auto endpoint =
      [&](const std::string& name,
          const std::string& jurisdiction) -> absl::StatusOr<Endpoint> {
    absl::StatusOr<const residency::v1::Topology::Service*> s = find(name);
    if (!s.ok()) return s.status();
    Endpoint e{name,
               (*s)->principal().empty() ? "residency://service/" + name
                                         : (*s)->principal(),
               jurisdiction,
               (*s)->address(),
               "",
               {}};
    return e;
  };
  for (const auto& spec : scenario_.world().key_services()) {
    absl::StatusOr<Endpoint> e = endpoint(spec.name(), spec.jurisdiction());
    if (!e.ok()) return e.status();
    key_services_.push_back(*std::move(e));
  }
  for (const auto& spec : scenario_.world().storage_nodes()) {
    absl::StatusOr<Endpoint> e = endpoint(spec.name(), spec.jurisdiction());
    if (!e.ok()) return e.status();
    e->gateways.push_back(e->address);
    absl::StatusOr<const residency::v1::Topology::Service*> s =
        find(spec.name());
    if (!s.ok()) return s.status();
    for (const std::string& gateway : (*s)->gateways()) {
      e->gateways.push_back(gateway);
    }
    nodes_.push_back(*std::move(e));
  }
  return absl::OkStatus();
}

absl::Status World::StartUsers() {
  const auto& population = scenario_.population();
  users_.reserve(population.users());
  for (uint32_t i = 1; i <= population.users(); ++i) {
    User user;
    user.name = absl::StrCat("user-", i);
    user.principal = "residency://user/" + user.name;
    users_.push_back(std::move(user));
  }
  for (User& user : users_) {
    absl::StatusOr<client::Client*> client = ClientFor(user);
    if (!client.ok()) return client.status();
    for (int k = 0; k < population.key_services_size(); ++k) {
      absl::Status s = (*client)->CreateKey(user.name + "-key", k).status();
      if (!s.ok()) {
        return absl::Status(
            s.code(),
            absl::StrCat(
                user.name, " cannot create its key at ",
                population.key_services(k), ": ", s.message(),
                absl::IsAlreadyExists(s) && mode_ == ServiceMode::kTopology
                    ? " (a topology run needs fresh services: "
                      "restart them with empty data directories)"
                    : ""));
      }
    }
  }
  return absl::OkStatus();
}

void World::Stop() {
  for (User& user : users_) user.clients.clear();
  for (auto& [name, node] : node_servers_) {
    node->Shutdown(absl::Milliseconds(200));
  }
  for (auto& [name, ks] : key_service_servers_) {
    ks->Shutdown(absl::Milliseconds(200));
  }
  // Storage nodes first, as above; each closes its stores on SIGTERM.
  for (const bool key_services : {false, true}) {
    for (auto& [name, process] : processes_) {
      const bool is_ks =
          std::any_of(key_services_.begin(), key_services_.end(),
                      [&, n = name](const Endpoint& e) { return e.name == n; });
      if (is_ks == key_services) process->Terminate(absl::Seconds(10));
    }
  }
}

absl::Status World::NeedDataDirs(absl::string_view what) const {
  if (mode_ != ServiceMode::kTopology) return absl::OkStatus();
  return absl::FailedPreconditionError(absl::StrCat(
      what,
      " needs the services' data directories, which a --topology run cannot "
      "reach (its services run elsewhere); run this scenario in-process or "
      "with --spawn"));
}

absl::StatusOr<std::string> World::AuditPublicKeyPem(const std::string& name) {
  absl::StatusOr<const Endpoint*> ks = KeyService(name);
  if (!ks.ok()) return ks.status();
  switch (mode_) {
    case ServiceMode::kInProcess: {
      key_service::KeyServiceServer* server = KeyServiceServer(name);
      if (server == nullptr) {
        return absl::NotFoundError(absl::StrCat("no key service '", name, "'"));
      }
      return server->audit_public_key_pem();
    }
    case ServiceMode::kSpawn:
      return ReadSmallFile((*ks)->data_dir + "/audit_public_key.pem");
    case ServiceMode::kTopology:
      for (const auto& s : options_.topology.services()) {
        if (s.name() == name) return ReadSmallFile(s.audit_public_key_file());
      }
      break;
  }
  return absl::NotFoundError(
      absl::StrCat("no audit public key for key service '", name, "'"));
}

absl::Status World::ReadStoredAuditLog(const std::string& name,
                                       const key_service::AuditSink& sink) {
  if (absl::Status s = NeedDataDirs("reading an audit log from its files");
      !s.ok()) {
    return s;
  }
  if (key_service::KeyServiceServer* server = KeyServiceServer(name)) {
    return server->custodian().audit().Read(/*start_sequence=*/1,
                                            /*max_entries=*/0, sink);
  }
  absl::StatusOr<const Endpoint*> ks = KeyService(name);
  if (!ks.ok()) return ks.status();
  absl::StatusOr<std::unique_ptr<key_service::AuditLogReader>> reader =
      key_service::AuditLogReader::Open((*ks)->data_dir + "/audit");
  if (!reader.ok()) return reader.status();
  return (*reader)->Read(/*start_sequence=*/1, /*max_entries=*/0, sink);
}

absl::StatusOr<std::map<std::string, key_service::KeyStore::Snapshot>>
World::ReadKeks(const std::string& name,
                const std::vector<std::string>& key_ids) {
  if (absl::Status s = NeedDataDirs("reading KEKs from a key store"); !s.ok()) {
    return s;
  }
  std::map<std::string, key_service::KeyStore::Snapshot> keks;
  if (key_service::KeyServiceServer* server = KeyServiceServer(name)) {
    for (const std::string& id : key_ids) {
      key_service::KeyStore::Snapshot key = server->custodian().keys().Find(id);
      if (key != nullptr) keks[id] = std::move(key);
    }
    return keks;
  }
  absl::StatusOr<const Endpoint*> ks = KeyService(name);
  if (!ks.ok()) return ks.status();
  // The process holds its store open; its custodian reads a copy with the
  // root key file. A copy taken while RocksDB flushes may miss a file its
  // MANIFEST names: copy again.
  const std::string copy = Dir("kek-read-" + name);
  absl::StatusOr<std::unique_ptr<key_service::KeyStore>> store =
      absl::UnknownError("not copied");
  for (int attempt = 0; attempt < 3 && !store.ok(); ++attempt) {
    absl::StatusOr<CopyStats> copied =
        CopyTree((*ks)->data_dir + "/keys", copy);
    if (!copied.ok()) return copied.status();
    absl::StatusOr<crypto::SecretBytes> root = key_service::LoadOrCreateRootKey(
        (*ks)->data_dir + "/root.key", /*create_if_missing=*/false);
    if (!root.ok()) return root.status();
    store = key_service::KeyStore::Open(copy, *std::move(root));
  }
  if (store.ok()) {
    for (const std::string& id : key_ids) {
      key_service::KeyStore::Snapshot key = (*store)->Find(id);
      if (key != nullptr) keks[id] = std::move(key);
    }
    store->reset();
  }
  std::error_code ec;
  fs::remove_all(copy, ec);
  if (!store.ok()) {
    return absl::Status(
        store.status().code(),
        absl::StrCat("cannot open a copy of ", name,
                     "'s key store: ", store.status().message()));
  }
  return keks;
}

std::string World::Dir(const std::string& name) const {
  return work_dir_ + "/" + name;
}

std::string World::PlaintextDir(const std::string& node) const {
  return Dir("sn-" + node) + "/plaintext";
}

absl::StatusOr<const Endpoint*> World::KeyService(
    const std::string& name) const {
  for (const Endpoint& e : key_services_) {
    if (e.name == name) return &e;
  }
  return absl::NotFoundError(absl::StrCat("no key service '", name, "'"));
}

absl::StatusOr<const Endpoint*> World::StorageNode(
    const std::string& name) const {
  for (const Endpoint& e : nodes_) {
    if (e.name == name) return &e;
  }
  return absl::NotFoundError(absl::StrCat("no storage node '", name, "'"));
}

const residency::v1::StorageNodeSpec& World::NodeSpec(
    const std::string& name) const {
  for (const auto& spec : scenario_.world().storage_nodes()) {
    if (spec.name() == name) return spec;
  }
  return residency::v1::StorageNodeSpec::default_instance();
}

const Endpoint* World::KeyServiceByPrincipal(
    const std::string& principal) const {
  for (const Endpoint& e : key_services_) {
    if (e.principal == principal) return &e;
  }
  return nullptr;
}

key_service::KeyServiceServer* World::KeyServiceServer(
    const std::string& name) {
  auto it = key_service_servers_.find(name);
  return it == key_service_servers_.end() ? nullptr : it->second.get();
}

absl::StatusOr<const tls::Identity*> World::Identity(
    const std::string& principal) {
  std::lock_guard<std::mutex> lock(mu_);
  auto it = identities_.find(principal);
  if (it != identities_.end()) return &it->second;
  if (ca_ == nullptr) {
    // A topology's parties present the certificates it provides.
    const std::string stem =
        options_.topology.identity_dir() + "/" + IdentityStem(principal);
    absl::StatusOr<tls::TlsMaterial> material = tls::LoadTlsMaterial(
        options_.topology.ca_file(), stem + ".crt", stem + ".key");
    if (!material.ok()) {
      return absl::Status(
          material.status().code(),
          absl::StrCat("no usable certificate for ", principal, " (", stem,
                       ".crt and .key, from the topology's "
                       "identity_dir): ",
                       material.status().message()));
    }
    tls::Identity loaded;
    loaded.principal = principal;
    loaded.certificate_pem = std::move(material->certificate_pem);
    loaded.private_key_pem = std::move(material->private_key_pem);
    loaded.ca_certificate_pem = std::move(material->ca_certificate_pem);
    return &identities_.emplace(principal, std::move(loaded)).first->second;
  }
  absl::StatusOr<tls::Identity> issued = ca_->Issue(principal);
  if (!issued.ok()) return issued.status();
  return &identities_.emplace(principal, *std::move(issued)).first->second;
}

absl::StatusOr<std::shared_ptr<grpc::Channel>> World::Channel(
    const std::string& from, const Endpoint& to, const std::string& principal) {
  absl::StatusOr<const tls::Identity*> id = Identity(principal);
  if (!id.ok()) return id.status();
  std::string address = to.address;
  {
    // Only storage nodes are ever rerouted.
    std::lock_guard<std::mutex> lock(mu_);
    auto route = node_routes_.find(to.name);
    const bool is_node =
        std::any_of(nodes_.begin(), nodes_.end(),
                    [&](const Endpoint& n) { return &n == &to; });
    if (route != node_routes_.end() && is_node) address = route->second;
  }
  return links_->Channel(from, to.jurisdiction, address, (*id)->Material());
}

absl::StatusOr<client::Client*> World::ClientFor(
    User& user, const std::string& node,
    std::optional<uint32_t> data_key_cache) {
  const auto& population = scenario_.population();
  const std::string name = node.empty() ? population.storage_node() : node;
  const uint32_t cache = data_key_cache.value_or(population.data_key_cache());
  const std::pair<std::string, uint32_t> key(name, cache);
  {
    std::lock_guard<std::mutex> lock(mu_);
    auto it = user.clients.find(key);
    if (it != user.clients.end()) return it->second.get();
  }
  client::ClientOptions options;
  options.owner = user.name;
  options.mode = ModeOf(population.custody_mode());
  for (const std::string& ks : population.key_services()) {
    absl::StatusOr<const Endpoint*> endpoint = KeyService(ks);
    if (!endpoint.ok()) return endpoint.status();
    client::KeyServiceTarget target;
    absl::StatusOr<std::shared_ptr<grpc::Channel>> channel =
        Channel(population.jurisdiction(), **endpoint, user.principal);
    if (!channel.ok()) return channel.status();
    target.channel = *std::move(channel);
    target.key_id = user.name + "-key";
    target.principal = (*endpoint)->principal;
    options.key_services.push_back(std::move(target));
  }
  absl::StatusOr<const Endpoint*> endpoint = StorageNode(name);
  if (!endpoint.ok()) return endpoint.status();
  // Users reach a node's gateways in turn.
  Endpoint via;
  const Endpoint* to = *endpoint;
  if ((*endpoint)->gateways.size() > 1) {
    const size_t index = static_cast<size_t>(&user - users_.data());
    via = **endpoint;
    via.address = via.gateways[index % via.gateways.size()];
    to = &via;
  }
  absl::StatusOr<std::shared_ptr<grpc::Channel>> storage =
      Channel(population.jurisdiction(), *to, user.principal);
  if (!storage.ok()) return storage.status();
  options.storage = *std::move(storage);
  if (options.mode == client::CustodyMode::kE2e) {
    fs::create_directories(Dir("devices"));
    absl::StatusOr<std::shared_ptr<const client::DeviceKey>> device =
        client::LoadDeviceKey(Dir("devices") + "/" + user.name + ".key",
                              /*create=*/true);
    if (!device.ok()) return device.status();
    options.device_key = *std::move(device);
  }
  options.cache.max_entries = cache;
  options.deadline = absl::Seconds(20);
  // Two tries, not the library's four: a call lost on a lossy link is
  // retried once, and in a partition each call costs one 100 ms backoff
  // instead of 0.7 s (a read, retried whole, about 0.3 s instead of 3.5 s),
  // so scenarios can pin down what fails (sim/README.md, "Retries:";
  // border_partition.textproto counts on it).
  options.retry.max_attempts = 2;
  absl::StatusOr<std::unique_ptr<client::Client>> created =
      client::Client::Create(std::move(options));
  if (!created.ok()) return created.status();
  std::lock_guard<std::mutex> lock(mu_);
  auto& slot = user.clients[key];
  if (slot == nullptr) slot = *std::move(created);
  return slot.get();
}

void World::RouteStorageNode(const std::string& node,
                             const std::string& address) {
  std::lock_guard<std::mutex> lock(mu_);
  node_routes_[node] = address;
  for (User& user : users_) {
    for (auto it = user.clients.begin(); it != user.clients.end();) {
      it = it->first.first == node ? user.clients.erase(it) : std::next(it);
    }
  }
}

std::string World::Content(const std::string& user, uint32_t index,
                           uint64_t version) const {
  const auto& p = scenario_.population();
  std::seed_seq seq{seed_,
                    static_cast<uint64_t>(std::hash<std::string>{}(user)),
                    uint64_t{index}, version};
  std::mt19937_64 rng(seq);
  const double lo =
      std::log(static_cast<double>(std::max<uint64_t>(1, p.min_bytes())));
  const double hi =
      std::log(static_cast<double>(std::max<uint64_t>(1, p.max_bytes())));
  // The draw from rng() directly (not std::uniform_real_distribution,
  // whose results differ between standard libraries).
  const double u = static_cast<double>(rng() >> 11) * 0x1.0p-53;
  uint64_t size = static_cast<uint64_t>(std::exp(lo + u * (hi - lo)));
  size = std::clamp<uint64_t>(size, p.min_bytes(), p.max_bytes());
  std::string data(size, '\0');
  for (size_t i = 0; i < size; i += 8) {
    const uint64_t r = rng();
    std::memcpy(data.data() + i, &r, std::min<size_t>(8, size - i));
  }
  for (size_t at = 0; at + canary_.size() <= size; at += 64 * 1024) {
    data.replace(at, canary_.size(), canary_);
  }
  return data;
}

}  // namespace residency::sim
