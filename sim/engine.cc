#include "sim/engine.h"

#include <openssl/sha.h>
#include <sys/stat.h>

#include <algorithm>
#include <cstring>
#include <atomic>
#include <cmath>
#include <filesystem>
#include <fstream>
#include <map>
#include <memory>
#include <mutex>
#include <random>
#include <set>
#include <sstream>
#include <thread>
#include <vector>

#include "absl/strings/ascii.h"
#include "absl/strings/escaping.h"
#include "absl/strings/str_cat.h"
#include "absl/time/clock.h"
#include "client/client.h"
#include "crypto/chunked.h"
#include "crypto/object_context.h"
#include "google/protobuf/text_format.h"
#include "key_service/policy.h"
#include "key_service/server.h"
#include "key_service/wrapped_key.h"
#include "rpc/status.h"
#include "sim/links.h"
#include "storage_node/server.h"
#include "tls/pki.h"

namespace residency::sim {
namespace {

namespace fs = std::filesystem;
using ::residency::crypto::SecretBytes;
using ::residency::v1::ObjectHeader;
using ::residency::v1::Scenario;
using ::residency::v1::WrappedKey;

std::string Sha256(absl::string_view data) {
  unsigned char digest[SHA256_DIGEST_LENGTH];
  SHA256(reinterpret_cast<const unsigned char*>(data.data()), data.size(),
         digest);
  return std::string(reinterpret_cast<const char*>(digest), sizeof(digest));
}

std::string Lower(absl::string_view s) { return absl::AsciiStrToLower(s); }

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

// One stored object as its owner knows it.
struct Truth {
  std::string owner;
  std::string object_id;
  uint64_t version = 0;
  uint64_t size = 0;
  std::string sha256;
};

struct User {
  std::string name;  // "user-1"
  tls::Identity identity;
  std::unique_ptr<client::Client> client;
  std::vector<Truth> objects;  // Latest version of each object.
};

class Run {
 public:
  Run(const Scenario& scenario, const RunOptions& options)
      : s_(scenario),
        options_(options),
        seed_(options.seed != 0 ? options.seed : scenario.population().seed()) {
    report_.scenario = s_.name();
    report_.title = s_.title();
    report_.description = s_.description();
    report_.models.assign(s_.models().begin(), s_.models().end());
    report_.seed = seed_;
    // A canary no stored object can contain by chance: it marks users'
    // plaintext for auditors.
    std::mt19937_64 rng(seed_ ^ 0x5eedca9a7ull);
    canary_ = absl::StrCat("RESIDENCY-CANARY-", absl::Hex(rng(), absl::kZeroPad16));
  }

  absl::StatusOr<Report> Execute() {
    const absl::Time start = absl::Now();
    if (absl::Status s = StartWorld(); !s.ok()) return s;
    // Partition windows count from the first phase, not from set-up.
    links_->Start();
    int index = 0;
    for (const residency::v1::Phase& phase : s_.phases()) {
      ++index;
      Progress(absl::StrCat("phase ", index, "/", s_.phases_size(), " ",
                            phase.name(), ": ", Describe(phase)));
      if (absl::Status s = RunPhase(phase); !s.ok()) {
        return absl::Status(s.code(), absl::StrCat("phase ", index, " (",
                                                   phase.name(), "): ",
                                                   s.message()));
      }
    }
    report_.seconds = absl::ToDoubleSeconds(absl::Now() - start);
    if (absl::Status s = OperatorHoldings(); !s.ok()) return s;
    for (const LinkStats& link : links_->Stats()) {
      auto& f = report_.links[absl::StrCat(link.a, "-", link.b)];
      f["calls"] += link.calls;
      f["lost"] += link.lost;
      f["partitioned"] += link.partitioned;
      f["request_bytes"] += link.request_bytes;
      f["response_bytes"] += link.response_bytes;
    }
    Notes();
    report_.Check(s_.expectations());
    Shutdown();
    return std::move(report_);
  }

 private:
  // ------------------------------------------------------------ the world

  absl::Status StartWorld() {
    absl::StatusOr<tls::CertificateAuthority> ca =
        tls::CertificateAuthority::Create("residency-sim-ca");
    if (!ca.ok()) return ca.status();
    ca_ = std::make_unique<tls::CertificateAuthority>(*std::move(ca));
    links_ = std::make_unique<Links>(s_.world(), seed_);

    for (const auto& spec : s_.world().key_services()) {
      absl::StatusOr<tls::Identity> id =
          ca_->Issue("residency://service/" + spec.name());
      if (!id.ok()) return id.status();
      key_service::KeyServiceServerOptions options;
      options.tls = id->Material();
      options.jurisdiction = spec.jurisdiction();
      options.data_dir = Dir("ks-" + spec.name());
      std::string text;
      google::protobuf::TextFormat::PrintToString(spec.policy(), &text);
      absl::StatusOr<key_service::PolicyEngine> policy =
          key_service::PolicyEngine::Parse(text, spec.name());
      if (!policy.ok()) return policy.status();
      absl::StatusOr<std::unique_ptr<key_service::KeyServiceServer>> server =
          key_service::KeyServiceServer::Start(std::move(options),
                                               *std::move(policy));
      if (!server.ok()) return server.status();
      key_services_[spec.name()] = *std::move(server);
      ks_spec_[spec.name()] = &spec;
      ks_by_principal_["residency://service/" + spec.name()] = spec.name();
    }
    for (const auto& spec : s_.world().storage_nodes()) {
      absl::StatusOr<tls::Identity> id =
          ca_->Issue("residency://service/" + spec.name());
      if (!id.ok()) return id.status();
      storage_node::StorageNodeServerOptions options;
      options.tls = id->Material();
      options.jurisdiction = spec.jurisdiction();
      options.operator_principal = "residency://operator/" + spec.operator_();
      options.data_dir = Dir("sn-" + spec.name());
      absl::StatusOr<std::unique_ptr<storage_node::StorageNodeServer>> server =
          storage_node::StorageNodeServer::Start(std::move(options));
      if (!server.ok()) return server.status();
      nodes_[spec.name()] = *std::move(server);
      node_spec_[spec.name()] = &spec;
    }

    const auto& population = s_.population();
    for (uint32_t i = 1; i <= population.users(); ++i) {
      User user;
      user.name = absl::StrCat("user-", i);
      absl::StatusOr<tls::Identity> id =
          ca_->Issue("residency://user/" + user.name);
      if (!id.ok()) return id.status();
      user.identity = *std::move(id);
      client::ClientOptions options;
      options.owner = user.name;
      options.mode = ModeOf(population.custody_mode());
      for (const std::string& ks : population.key_services()) {
        client::KeyServiceTarget target;
        absl::StatusOr<std::shared_ptr<grpc::Channel>> channel =
            ChannelToKeyService(population.jurisdiction(), ks,
                                user.identity.Material());
        if (!channel.ok()) return channel.status();
        target.channel = *std::move(channel);
        target.key_id = user.name + "-key";
        target.principal = "residency://service/" + ks;
        options.key_services.push_back(std::move(target));
      }
      absl::StatusOr<std::shared_ptr<grpc::Channel>> storage =
          ChannelToNode(population.jurisdiction(), population.storage_node(),
                        user.identity.Material());
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
      options.cache.max_entries = population.data_key_cache();
      options.deadline = absl::Seconds(20);
      options.retry.max_attempts = 2;
      absl::StatusOr<std::unique_ptr<client::Client>> c =
          client::Client::Create(std::move(options));
      if (!c.ok()) return c.status();
      user.client = *std::move(c);
      for (int k = 0; k < population.key_services_size(); ++k) {
        absl::Status s = user.client->CreateKey(user.name + "-key", k).status();
        if (!s.ok()) {
          return absl::Status(
              s.code(), absl::StrCat(user.name, " cannot create its key at ",
                                     population.key_services(k), ": ",
                                     s.message()));
        }
      }
      users_.push_back(std::move(user));
    }
    return absl::OkStatus();
  }

  void Shutdown() {
    users_.clear();
    for (auto& [name, node] : nodes_) node->Shutdown(absl::Milliseconds(200));
    for (auto& [name, ks] : key_services_) ks->Shutdown(absl::Milliseconds(200));
  }

  std::string Dir(const std::string& name) const {
    return options_.work_dir + "/" + name;
  }

  absl::StatusOr<std::shared_ptr<grpc::Channel>> ChannelToKeyService(
      const std::string& from, const std::string& name,
      const tls::TlsMaterial& material) {
    return links_->Channel(from, ks_spec_.at(name)->jurisdiction(),
                           key_services_.at(name)->address(), material);
  }

  absl::StatusOr<std::shared_ptr<grpc::Channel>> ChannelToNode(
      const std::string& from, const std::string& name,
      const tls::TlsMaterial& material) {
    return links_->Channel(from, node_spec_.at(name)->jurisdiction(),
                           nodes_.at(name)->address(), material);
  }

  void Progress(const std::string& line) {
    if (options_.progress != nullptr) {
      std::lock_guard<std::mutex> lock(mu_);
      *options_.progress << "[sim] " << line << std::endl;
    }
  }

  static std::string Describe(const residency::v1::Phase& phase) {
    switch (phase.action_case()) {
      case residency::v1::Phase::kWorkload:
        return absl::StrCat(
            "users ",
            residency::v1::Workload::Kind_Name(phase.workload().kind()));
      case residency::v1::Phase::kCompulsion:
        return absl::StrCat("authority/", Lower(phase.compulsion().jurisdiction()),
                            " compels operators and custodians");
      case residency::v1::Phase::kKeyAction:
        return absl::StrCat(
            "owners ",
            residency::v1::KeyAction::Kind_Name(phase.key_action().kind()),
            " their keys");
      case residency::v1::Phase::kAudit:
        return "security audit of " + phase.audit().storage_node();
      case residency::v1::Phase::kInsider:
        return "insider at " + phase.insider().storage_node();
      case residency::v1::Phase::kTap:
        return absl::StrCat("tap on ", phase.tap().a(), "-", phase.tap().b());
      default:
        return "";
    }
  }

  absl::Status RunPhase(const residency::v1::Phase& phase) {
    switch (phase.action_case()) {
      case residency::v1::Phase::kWorkload:
        switch (phase.workload().kind()) {
          case residency::v1::Workload::PUT_ALL:
            return PutAll(phase.workload());
          case residency::v1::Workload::GET_ALL:
            return GetAll(phase.workload());
          default:
            break;
        }
        break;
      case residency::v1::Phase::kCompulsion:
        return Compel(phase.compulsion());
      case residency::v1::Phase::kKeyAction:
        return KeyAction(phase.key_action());
      default:
        break;
    }
    return absl::UnimplementedError(
        absl::StrCat("this phase kind (", Describe(phase),
                     ") is not implemented by the simulator yet"));
  }

  // ------------------------------------------------------------- users

  // Object sizes log-uniform in [min, max]; contents pseudo-random from the
  // seed, with the canary at the start and every 64 KiB.
  std::string Content(const std::string& user, uint32_t index,
                      uint64_t version) const {
    const auto& p = s_.population();
    std::seed_seq seq{seed_, static_cast<uint64_t>(std::hash<std::string>{}(user)),
                      uint64_t{index}, version};
    std::mt19937_64 rng(seq);
    const double lo = std::log(static_cast<double>(std::max<uint64_t>(1, p.min_bytes())));
    const double hi = std::log(static_cast<double>(std::max<uint64_t>(1, p.max_bytes())));
    uint64_t size = static_cast<uint64_t>(
        std::exp(std::uniform_real_distribution<double>(lo, hi)(rng)));
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

  template <typename Fn>
  void ForEachUser(uint32_t concurrency, Fn&& fn) {
    std::atomic<size_t> next{0};
    std::vector<std::thread> threads;
    const size_t n = std::max<uint32_t>(1, concurrency);
    for (size_t t = 0; t < std::min(n, users_.size()); ++t) {
      threads.emplace_back([&] {
        for (size_t i; (i = next.fetch_add(1)) < users_.size();) fn(users_[i]);
      });
    }
    for (std::thread& t : threads) t.join();
  }

  void Record(const std::string& operation, const absl::Status& status,
              absl::Duration elapsed) {
    std::lock_guard<std::mutex> lock(mu_);
    OperationStats& stats = report_.operations[operation];
    if (status.ok()) {
      ++stats.ok;
      stats.latencies_ms.push_back(absl::ToDoubleMilliseconds(elapsed));
    } else {
      ++stats.errors[absl::StatusCodeToString(status.code())];
    }
  }

  absl::Status PutAll(const residency::v1::Workload& workload) {
    const uint32_t count = s_.population().objects_per_user();
    std::atomic<uint64_t> done{0};
    const uint64_t total = uint64_t{count} * users_.size();
    ForEachUser(workload.concurrency(), [&](User& user) {
      for (uint32_t k = 0; k < count; ++k) {
        const std::string id = absl::StrCat("obj-", k);
        const uint64_t version = user.objects.size() > k
                                     ? user.objects[k].version + 1
                                     : 1;
        const std::string data = Content(user.name, k, version);
        std::istringstream in(data);
        const absl::Time start = absl::Now();
        absl::StatusOr<residency::v1::ObjectRef> stored =
            user.client->Put(id, in, data.size());
        Record("put", stored.status(), absl::Now() - start);
        if (stored.ok()) {
          Truth truth{user.name, id, stored->version(), data.size(),
                      Sha256(data)};
          if (user.objects.size() > k) {
            user.objects[k] = truth;
          } else {
            user.objects.push_back(truth);
          }
          KeepPlaintextCopy(user, id, data);
        }
        const uint64_t n = ++done;
        if (n % 50 == 0 || n == total) {
          Progress(absl::StrCat("  put ", n, "/", total, " objects"));
        }
      }
    });
    std::lock_guard<std::mutex> lock(mu_);
    for (const User& user : users_) {
      uint64_t bytes = 0;
      for (const Truth& t : user.objects) bytes += t.size;
      report_.user_bytes[user.name] = bytes;
    }
    return absl::OkStatus();
  }

  // provider_plaintext: the provider's own services keep what users store
  // readable, beside the node's store.
  void KeepPlaintextCopy(const User& user, const std::string& id,
                         const std::string& data) {
    const auto& spec = *node_spec_.at(s_.population().storage_node());
    if (!spec.keeps_plaintext()) return;
    const std::string dir = PlaintextDir(spec.name()) + "/" + user.name;
    fs::create_directories(dir);
    std::ofstream(dir + "/" + id, std::ios::binary) << data;
  }

  std::string PlaintextDir(const std::string& node) const {
    return Dir("sn-" + node) + "/plaintext";
  }

  absl::Status GetAll(const residency::v1::Workload& workload) {
    ForEachUser(workload.concurrency(), [&](User& user) {
      for (const Truth& truth : user.objects) {
        std::ostringstream out;
        const absl::Time start = absl::Now();
        absl::StatusOr<ObjectHeader> header =
            user.client->Get(truth.object_id, 0, out);
        Record("get", header.status(), absl::Now() - start);
        if (header.ok() && Sha256(out.str()) != truth.sha256) {
          std::lock_guard<std::mutex> lock(mu_);
          ++report_.wrong_plaintext;
        }
      }
    });
    return absl::OkStatus();
  }

  absl::Status KeyAction(const residency::v1::KeyAction& action) {
    std::set<std::string> only(action.users().begin(), action.users().end());
    for (User& user : users_) {
      if (!only.empty() && only.count(user.name) == 0) continue;
      for (int k = 0; k < s_.population().key_services_size(); ++k) {
        const std::string key = user.name + "-key";
        absl::Status status;
        const absl::Time start = absl::Now();
        switch (action.kind()) {
          case residency::v1::KeyAction::DISABLE:
            status = user.client->DisableKey(key, k).status();
            break;
          case residency::v1::KeyAction::ENABLE:
            status = user.client->EnableKey(key, k).status();
            break;
          case residency::v1::KeyAction::DESTROY:
            status = user.client->DestroyKey(key, k).status();
            break;
          default:
            return absl::InvalidArgumentError("key action kind is not set");
        }
        Record(absl::AsciiStrToLower(
                   residency::v1::KeyAction::Kind_Name(action.kind())) +
                   "_key",
               status, absl::Now() - start);
      }
    }
    return absl::OkStatus();
  }

  // --------------------------------------------------------- compulsion

  struct Seized {
    residency::v1::ObjectInfo info;
    std::string ciphertext;
  };

  residency::v1::RequestMetadata LegalMetadata(
      const residency::v1::Compulsion& c, const std::string& target,
      int* counter) {
    residency::v1::RequestMetadata metadata;
    metadata.set_request_id(absl::StrCat("order-", Lower(c.jurisdiction()), "-",
                                         ++*counter));
    auto* j = metadata.mutable_justification();
    j->set_reason(residency::v1::Justification::THIRD_PARTY_DATA_REQUEST);
    auto* lp = j->mutable_legal_process();
    lp->set_issuing_authority(absl::StrCat(c.jurisdiction(), " authority"));
    lp->set_jurisdiction(c.jurisdiction());
    lp->set_legal_basis(c.legal_basis().empty() ? "national security law"
                                                : c.legal_basis());
    lp->set_target_owner(target);
    lp->set_scope("all stored data and the keys that open it");
    lp->set_reference_id(absl::StrCat("sim-", seed_));
    return metadata;
  }

  void Refused(const std::string& actor, const std::string& by,
               const absl::Status& status) {
    std::lock_guard<std::mutex> lock(mu_);
    report_.actors[actor].refusals[absl::StrCat(
        by, ": ", absl::StatusCodeToString(status.code()))]++;
  }

  absl::Status Compel(const residency::v1::Compulsion& c) {
    const std::string j = c.jurisdiction();
    const std::string authority = "authority/" + Lower(j);
    absl::StatusOr<tls::Identity> authority_id =
        ca_->Issue("residency://" + authority);
    if (!authority_id.ok()) return authority_id.status();
    std::vector<std::string> targets(c.target_users().begin(),
                                     c.target_users().end());
    if (targets.empty()) {
      for (const User& u : users_) targets.push_back(u.name);
    }
    report_.actors[authority];  // Present even when it obtains nothing.
    int counter = 0;

    // 1. Operators in the authority's jurisdiction hand over what they hold.
    std::vector<Seized> seized;
    for (const auto& [name, spec] : node_spec_) {
      if (spec->jurisdiction() != j) continue;
      const std::string op = "operator/" + spec->operator_();
      absl::StatusOr<tls::Identity> op_id = ca_->Issue("residency://" + op);
      if (!op_id.ok()) return op_id.status();
      absl::StatusOr<std::shared_ptr<grpc::Channel>> channel =
          ChannelToNode(j, name, op_id->Material());
      if (!channel.ok()) return channel.status();
      auto stub = residency::v1::StorageNode::NewStub(*channel);
      for (const std::string& target : targets) {
        residency::v1::ExportRequest request;
        *request.mutable_metadata() = LegalMetadata(c, target, &counter);
        request.set_owner(target);
        grpc::ClientContext context;
        context.set_deadline(absl::ToChronoTime(absl::Now() + absl::Minutes(2)));
        const absl::Time start = absl::Now();
        auto reader = stub->Export(&context, request);
        residency::v1::ExportResponse message;
        while (reader->Read(&message)) {
          if (message.has_object()) {
            seized.push_back(Seized{message.object(), ""});
          } else if (!seized.empty()) {
            seized.back().ciphertext += message.data();
          }
        }
        absl::Status status = rpc::FromGrpcStatus(reader->Finish());
        Record("export", status, absl::Now() - start);
        if (!status.ok()) Refused(authority, op, status);
        if (spec->keeps_plaintext()) HandOverPlaintext(authority, name, target);
      }
      Progress(absl::StrCat("  ", op, " handed over ", seized.size(),
                            " object versions"));
    }
    {
      std::lock_guard<std::mutex> lock(mu_);
      Obtained& got = report_.actors[authority];
      for (const Seized& s : seized) {
        ++got.objects;
        got.ciphertext_bytes += s.ciphertext.size();
        got.wrapped_keys += s.info.header().wrapped_keys_size();
      }
    }

    // 2. Key services are asked for the data keys (and the KEKs).
    std::set<std::string> asked(c.key_services().begin(),
                                c.key_services().end());
    std::map<std::string, std::unique_ptr<residency::v1::KeyService::Stub>>
        stubs;
    for (const auto& [name, spec] : ks_spec_) {
      if (!asked.empty() && asked.count(name) == 0) continue;
      absl::StatusOr<std::shared_ptr<grpc::Channel>> channel =
          ChannelToKeyService(j, name, authority_id->Material());
      if (!channel.ok()) return channel.status();
      stubs[name] = residency::v1::KeyService::NewStub(*channel);
    }
    // KEKs handed over: service -> key id -> version -> material.
    std::map<std::string, std::map<std::string, std::map<uint32_t, std::string>>>
        keks;
    if (c.request_keks()) {
      for (auto& [name, stub] : stubs) {
        for (const std::string& target : targets) {
          residency::v1::ExportKeyRequest request;
          *request.mutable_metadata() = LegalMetadata(c, target, &counter);
          request.set_key_id(target + "-key");
          residency::v1::ExportKeyResponse response;
          grpc::ClientContext context;
          context.set_deadline(
              absl::ToChronoTime(absl::Now() + absl::Seconds(20)));
          const absl::Time start = absl::Now();
          absl::Status status =
              rpc::FromGrpcStatus(stub->ExportKey(&context, request, &response));
          Record("export_key", status, absl::Now() - start);
          if (!status.ok()) {
            Refused(authority, "service/" + name, status);
            continue;
          }
          for (auto& v : *response.mutable_versions()) {
            keks[name][request.key_id()][v.version()] = v.material();
            crypto::WipeString(v.mutable_material());
            std::lock_guard<std::mutex> lock(mu_);
            ++report_.actors[authority].keks;
          }
        }
      }
    }

    // 3. Whatever opens, the authority decrypts.
    for (const Seized& s : seized) {
      const ObjectHeader& header = s.info.header();
      absl::StatusOr<std::string> context_bytes = crypto::EncodeObjectContext(
          header.object().owner(), header.object().object_id(),
          header.object().version());
      if (!context_bytes.ok()) return context_bytes.status();
      std::map<uint32_t, SecretBytes> shares;
      for (const WrappedKey& wrapped : header.wrapped_keys()) {
        if (wrapped.wrapper() != WrappedKey::KEY_SERVICE) continue;
        auto owner = ks_by_principal_.find(wrapped.key_service());
        if (owner == ks_by_principal_.end()) continue;
        const std::string& ks = owner->second;
        // A handed-over KEK opens the wrap without asking anyone.
        auto kek = keks[ks][wrapped.key_id()].find(wrapped.key_version());
        if (kek != keks[ks][wrapped.key_id()].end()) {
          absl::StatusOr<SecretBytes> key = key_service::UnwrapDataKey(
              SecretBytes::CopyFrom(kek->second), wrapped.key_id(),
              wrapped.key_version(), *context_bytes, wrapped.wrapped());
          if (key.ok()) {
            shares[wrapped.share_index()] = *std::move(key);
            continue;
          }
        }
        auto stub = stubs.find(ks);
        if (stub == stubs.end()) continue;
        residency::v1::UnwrapRequest request;
        *request.mutable_metadata() =
            LegalMetadata(c, header.object().owner(), &counter);
        *request.mutable_wrapped_key() = wrapped;
        *request.mutable_context() = header.object();
        residency::v1::UnwrapResponse response;
        grpc::ClientContext context;
        context.set_deadline(absl::ToChronoTime(absl::Now() + absl::Seconds(20)));
        const absl::Time start = absl::Now();
        absl::Status status = rpc::FromGrpcStatus(
            stub->second->Unwrap(&context, request, &response));
        Record("unwrap", status, absl::Now() - start);
        if (!status.ok()) {
          Refused(authority, "service/" + ks, status);
          continue;
        }
        SecretBytes key = SecretBytes::CopyFrom(response.plaintext_key());
        crypto::WipeString(response.mutable_plaintext_key());
        shares[wrapped.share_index()] = std::move(key);
      }
      {
        std::lock_guard<std::mutex> lock(mu_);
        report_.actors[authority].data_keys += shares.size();
      }
      absl::StatusOr<SecretBytes> dek = absl::NotFoundError("no data key");
      if (header.custody_mode() == residency::v1::CUSTODY_MODE_CUSTODIAN &&
          shares.count(0)) {
        dek = std::move(shares[0]);
      } else if (shares.count(1) && shares.count(2)) {
        dek = client::DeriveDataKey(
            header.custody_mode() == residency::v1::CUSTODY_MODE_SPLIT
                ? client::CustodyMode::kSplit
                : client::CustodyMode::kE2e,
            shares[1], shares[2], *context_bytes);
      }
      if (!dek.ok()) continue;
      std::string plaintext;
      absl::StatusOr<crypto::ChunkedDecryptor> decryptor =
          crypto::ChunkedDecryptor::Create(*dek, *context_bytes);
      if (!decryptor.ok()) continue;
      absl::Status status = decryptor->Update(s.ciphertext, &plaintext);
      if (status.ok()) status = decryptor->Finish(&plaintext);
      if (!status.ok()) continue;
      Exposed(authority, header.object().owner(), header.object().object_id(),
              header.object().version(), plaintext);
    }
    return absl::OkStatus();
  }

  void HandOverPlaintext(const std::string& actor, const std::string& node,
                         const std::string& target) {
    const std::string dir = PlaintextDir(node) + "/" + target;
    if (!fs::is_directory(dir)) return;
    for (const auto& entry : fs::directory_iterator(dir)) {
      std::ifstream in(entry.path(), std::ios::binary);
      std::string data((std::istreambuf_iterator<char>(in)),
                       std::istreambuf_iterator<char>());
      const std::string id = entry.path().filename().string();
      Exposed(actor, target, id, 0, data);
    }
  }

  // Counts `plaintext` as exposed when it is exactly what `owner` stored
  // under `object_id` (`version` 0: the latest), once per object.
  void Exposed(const std::string& actor, const std::string& owner,
               const std::string& object_id, uint64_t version,
               const std::string& plaintext) {
    std::lock_guard<std::mutex> lock(mu_);
    for (const User& user : users_) {
      if (user.name != owner) continue;
      for (const Truth& t : user.objects) {
        if (t.object_id == object_id &&
            (version == 0 || version == t.version) &&
            Sha256(plaintext) == t.sha256 &&
            counted_[actor].insert(absl::StrCat(owner, "/", object_id, "/",
                                                t.version))
                .second) {
          report_.actors[actor].plaintext_bytes += plaintext.size();
          report_.exposed[actor][owner] += plaintext.size();
        }
      }
    }
  }

  // What each storage operator holds at the end, without being compelled:
  // asked as the operator itself (Stats), as an audit of the provider
  // would. A provider that keeps plaintext holds all of it.
  absl::Status OperatorHoldings() {
    for (const auto& [name, spec] : node_spec_) {
      const std::string op = "operator/" + spec->operator_();
      absl::StatusOr<tls::Identity> id = ca_->Issue("residency://" + op);
      if (!id.ok()) return id.status();
      absl::StatusOr<std::shared_ptr<grpc::Channel>> channel =
          ChannelToNode(spec->jurisdiction(), name, id->Material());
      if (!channel.ok()) return channel.status();
      auto stub = residency::v1::StorageNode::NewStub(*channel);
      residency::v1::StatsRequest request;
      request.mutable_metadata()->set_request_id("operator-stats");
      request.mutable_metadata()->mutable_justification()->set_reason(
          residency::v1::Justification::CUSTODIAN_INITIATED_SERVICE);
      residency::v1::StatsResponse response;
      grpc::ClientContext context;
      context.set_deadline(absl::ToChronoTime(absl::Now() + absl::Seconds(20)));
      absl::Status status =
          rpc::FromGrpcStatus(stub->Stats(&context, request, &response));
      if (!status.ok()) {
        return absl::Status(status.code(),
                            absl::StrCat(op, " cannot read its own stats: ",
                                         status.message()));
      }
      const int wraps =
          s_.population().custody_mode() == residency::v1::CUSTODY_MODE_CUSTODIAN
              ? 1
              : 2;
      Obtained& got = report_.actors[op];
      for (const auto& usage : response.owners()) {
        got.objects += usage.version_count();
        got.ciphertext_bytes += usage.ciphertext_bytes();
        got.wrapped_keys += usage.version_count() * wraps;
      }
      if (spec->keeps_plaintext()) {
        for (const User& user : users_) HandOverPlaintext(op, name, user.name);
      }
    }
    return absl::OkStatus();
  }

  // What the report says beyond the figures.
  void Notes() {
    uint64_t objects = 0, bytes = 0;
    for (const User& u : users_) {
      objects += u.objects.size();
      for (const Truth& t : u.objects) bytes += t.size;
    }
    report_.notes.push_back(absl::StrCat(
        "Metadata the onshore operator holds without any key: ", users_.size(),
        " owners, ", objects, " object names and exact sizes (", bytes,
        " bytes), write times, and which key service and jurisdiction hold "
        "each key."));
  }

  const Scenario& s_;
  const RunOptions& options_;
  const uint64_t seed_;
  std::string canary_;
  Report report_;
  std::mutex mu_;
  std::unique_ptr<tls::CertificateAuthority> ca_;
  std::unique_ptr<Links> links_;
  std::map<std::string, std::unique_ptr<key_service::KeyServiceServer>>
      key_services_;
  std::map<std::string, const residency::v1::KeyServiceSpec*> ks_spec_;
  std::map<std::string, std::string> ks_by_principal_;
  std::map<std::string, std::unique_ptr<storage_node::StorageNodeServer>>
      nodes_;
  std::map<std::string, const residency::v1::StorageNodeSpec*> node_spec_;
  std::vector<User> users_;
  // Actor -> objects already counted as exposed, so two routes to the same
  // plaintext count once.
  std::map<std::string, std::set<std::string>> counted_;
};

}  // namespace

absl::StatusOr<Report> RunScenario(const Scenario& scenario,
                                   const RunOptions& options) {
  if (options.work_dir.empty() || !fs::is_directory(options.work_dir)) {
    return absl::InvalidArgumentError(
        "the run needs an existing work directory");
  }
  return Run(scenario, options).Execute();
}

}  // namespace residency::sim
