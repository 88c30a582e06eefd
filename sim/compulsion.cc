// An authority of one jurisdiction compels what its law reaches: the
// storage operators in that jurisdiction hand over what they hold, every key
// service is asked for keys (each answers by its policy), and the authority
// decrypts whatever opens. Also what each operator holds at the end.
#include <filesystem>
#include <fstream>
#include <iterator>
#include <map>
#include <set>

#include "absl/strings/ascii.h"
#include "absl/strings/str_cat.h"
#include "absl/time/clock.h"
#include "crypto/chunked.h"
#include "crypto/object_context.h"
#include "key_service/wrapped_key.h"
#include "residency/v1/key_service.grpc.pb.h"
#include "residency/v1/storage.grpc.pb.h"
#include "rpc/status.h"
#include "sim/phases.h"

namespace residency::sim {
namespace {

namespace fs = std::filesystem;
using ::residency::crypto::SecretBytes;
using ::residency::v1::ObjectHeader;
using ::residency::v1::WrappedKey;

std::string Lower(absl::string_view s) { return absl::AsciiStrToLower(s); }

// A provider that keeps plaintext hands its readable copies of `target`'s
// data to `actor`.
void HandOverPlaintext(World& world, Ledger& ledger, const std::string& actor,
                       const std::string& node, const std::string& target) {
  const std::string dir = world.PlaintextDir(node) + "/" + target;
  if (!fs::is_directory(dir)) return;
  for (const auto& entry : fs::directory_iterator(dir)) {
    std::ifstream in(entry.path(), std::ios::binary);
    std::string data((std::istreambuf_iterator<char>(in)),
                     std::istreambuf_iterator<char>());
    ledger.Exposed(actor, target, entry.path().filename().string(), 0, data);
  }
}

struct Seized {
  residency::v1::ObjectInfo info;
  std::string ciphertext;
};

residency::v1::RequestMetadata LegalMetadata(const residency::v1::Compulsion& c,
                                             const std::string& target,
                                             uint64_t seed, int* counter) {
  residency::v1::RequestMetadata metadata;
  metadata.set_request_id(
      absl::StrCat("order-", Lower(c.jurisdiction()), "-", ++*counter));
  auto* j = metadata.mutable_justification();
  j->set_reason(residency::v1::Justification::THIRD_PARTY_DATA_REQUEST);
  auto* lp = j->mutable_legal_process();
  lp->set_issuing_authority(absl::StrCat(c.jurisdiction(), " authority"));
  lp->set_jurisdiction(c.jurisdiction());
  lp->set_legal_basis(c.legal_basis().empty() ? "national security law"
                                              : c.legal_basis());
  lp->set_target_owner(target);
  lp->set_scope("all stored data and the keys that open it");
  lp->set_reference_id(absl::StrCat("sim-", seed));
  return metadata;
}

}  // namespace

absl::Status RunCompulsion(const residency::v1::Compulsion& c, World& world,
                           Ledger& ledger) {
  const std::string j = c.jurisdiction();
  const std::string authority = "authority/" + Lower(j);

  std::vector<std::string> targets(c.target_users().begin(),
                                   c.target_users().end());
  if (targets.empty()) {
    for (const User& u : world.users()) targets.push_back(u.name);
  }
  // Present in the report even when it obtains nothing.
  ledger.Update([&](Report& report) { report.actors[authority]; });
  int counter = 0;

  // 1. Operators in the authority's jurisdiction hand over what they hold.
  std::vector<Seized> seized;
  for (const Endpoint& node : world.storage_nodes()) {
    if (node.jurisdiction != j) continue;
    const residency::v1::StorageNodeSpec& spec = world.NodeSpec(node.name);
    const std::string op = "operator/" + spec.operator_();
    // What the operator hands over for the targets through one gateway.
    // `record`: count the calls and refusals in the report.
    // The code of the first refusal of the recorded export (OK if none).
    absl::StatusCode refused = absl::StatusCode::kOk;
    auto export_through = [&](const Endpoint& via, bool record,
                              std::vector<Seized>* out) -> absl::Status {
      absl::StatusOr<std::shared_ptr<grpc::Channel>> channel =
          world.Channel(j, via, "residency://" + op);
      if (!channel.ok()) return channel.status();
      auto stub = residency::v1::StorageNode::NewStub(*channel);
      for (const std::string& target : targets) {
        residency::v1::ExportRequest request;
        *request.mutable_metadata() =
            LegalMetadata(c, target, world.seed(), &counter);
        request.set_owner(target);
        grpc::ClientContext context;
        context.set_deadline(
            absl::ToChronoTime(absl::Now() + absl::Minutes(2)));
        const absl::Time start = absl::Now();
        auto reader = stub->Export(&context, request);
        residency::v1::ExportResponse message;
        while (reader->Read(&message)) {
          if (message.has_object()) {
            out->push_back(Seized{message.object(), ""});
          } else if (!out->empty()) {
            out->back().ciphertext += message.data();
          }
        }
        absl::Status status = rpc::FromGrpcStatus(reader->Finish());
        if (!record) {
          if (!status.ok()) return status;
          continue;
        }
        ledger.Record("export", status, absl::Now() - start);
        if (!status.ok()) {
          ledger.Refused(authority, op, status);
          if (refused == absl::StatusCode::kOk) refused = status.code();
        }
        if (spec.keeps_plaintext()) {
          HandOverPlaintext(world, ledger, authority, node.name, target);
        }
      }
      return absl::OkStatus();
    };
    const size_t before = seized.size();
    if (absl::Status s = export_through(node, true, &seized); !s.ok()) {
      return s;
    }
    ledger.Progress(absl::StrCat("  ", op, " handed over ",
                                 seized.size() - before, " object versions"));
    // A node with several gateways (on RADOS): every gateway must hand over
    // the same set, header for header and byte for byte.
    if (node.gateways.size() > 1) {
      bool agree = true;
      for (size_t g = 1; g < node.gateways.size(); ++g) {
        Endpoint via = node;
        via.address = node.gateways[g];
        std::vector<Seized> again;
        absl::Status s = export_through(via, false, &again);
        // Agreeing means the same refusal too, when the first refused.
        bool same =
            s.code() == refused && again.size() == seized.size() - before;
        for (size_t i = 0; same && i < again.size(); ++i) {
          const Seized& a = seized[before + i];
          same =
              a.info.SerializeAsString() == again[i].info.SerializeAsString() &&
              a.ciphertext == again[i].ciphertext;
        }
        if (!same) agree = false;
        ledger.Progress(absl::StrCat(
            "  gateway ", g + 1, " of ", node.name, ": ",
            same      ? (s.ok() ? "handed over the same object versions"
                                : "refused alike")
            : !s.ok() ? absl::StrCat("export failed: ", rpc::StatusText(s))
                      : "handed over different object versions"));
      }
      ledger.Update([&](Report& report) {
        report.extra[absl::StrCat("export_gateways_agree{node=", node.name,
                                  "}")] = agree ? 1 : 0;
        report.extra[absl::StrCat("gateways{node=", node.name, "}")] =
            static_cast<double>(node.gateways.size());
      });
    }
  }
  ledger.Update([&](Report& report) {
    Obtained& got = report.actors[authority];
    for (const Seized& s : seized) {
      ++got.objects;
      got.ciphertext_bytes += s.ciphertext.size();
      got.wrapped_keys += s.info.header().wrapped_keys_size();
    }
  });

  // 2. Key services are asked for the data keys (and the KEKs).
  std::set<std::string> asked(c.key_services().begin(), c.key_services().end());
  std::map<std::string, std::unique_ptr<residency::v1::KeyService::Stub>> stubs;
  for (const Endpoint& ks : world.key_services()) {
    if (!asked.empty() && asked.count(ks.name) == 0) continue;
    absl::StatusOr<std::shared_ptr<grpc::Channel>> channel =
        world.Channel(j, ks, "residency://" + authority);
    if (!channel.ok()) return channel.status();
    stubs[ks.name] = residency::v1::KeyService::NewStub(*channel);
  }
  // KEKs handed over: service -> key id -> version -> material.
  std::map<std::string, std::map<std::string, std::map<uint32_t, std::string>>>
      keks;
  if (c.request_keks()) {
    for (auto& [name, stub] : stubs) {
      for (const std::string& target : targets) {
        residency::v1::ExportKeyRequest request;
        *request.mutable_metadata() =
            LegalMetadata(c, target, world.seed(), &counter);
        request.set_key_id(target + "-key");
        residency::v1::ExportKeyResponse response;
        grpc::ClientContext context;
        context.set_deadline(
            absl::ToChronoTime(absl::Now() + absl::Seconds(20)));
        const absl::Time start = absl::Now();
        absl::Status status =
            rpc::FromGrpcStatus(stub->ExportKey(&context, request, &response));
        ledger.Record("export_key", status, absl::Now() - start);
        if (!status.ok()) {
          ledger.Refused(authority, "service/" + name, status);
          continue;
        }
        for (auto& v : *response.mutable_versions()) {
          keks[name][request.key_id()][v.version()] = v.material();
          crypto::WipeString(v.mutable_material());
          ledger.Update(
              [&](Report& report) { ++report.actors[authority].keks; });
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
      const Endpoint* owner =
          world.KeyServiceByPrincipal(wrapped.key_service());
      if (owner == nullptr) continue;
      const std::string& ks = owner->name;
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
          LegalMetadata(c, header.object().owner(), world.seed(), &counter);
      *request.mutable_wrapped_key() = wrapped;
      *request.mutable_context() = header.object();
      residency::v1::UnwrapResponse response;
      grpc::ClientContext context;
      context.set_deadline(absl::ToChronoTime(absl::Now() + absl::Seconds(20)));
      const absl::Time start = absl::Now();
      absl::Status status = rpc::FromGrpcStatus(
          stub->second->Unwrap(&context, request, &response));
      ledger.Record("unwrap", status, absl::Now() - start);
      if (!status.ok()) {
        ledger.Refused(authority, "service/" + ks, status);
        continue;
      }
      SecretBytes key = SecretBytes::CopyFrom(response.plaintext_key());
      crypto::WipeString(response.mutable_plaintext_key());
      shares[wrapped.share_index()] = std::move(key);
    }
    ledger.Update([&](Report& report) {
      report.actors[authority].data_keys += shares.size();
    });
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
    ledger.Exposed(authority, header.object().owner(),
                   header.object().object_id(), header.object().version(),
                   plaintext);
  }
  return absl::OkStatus();
}

absl::Status RecordOperatorHoldings(World& world, Ledger& ledger) {
  const int wraps = world.scenario().population().custody_mode() ==
                            residency::v1::CUSTODY_MODE_CUSTODIAN
                        ? 1
                        : 2;
  for (const Endpoint& node : world.storage_nodes()) {
    const residency::v1::StorageNodeSpec& spec = world.NodeSpec(node.name);
    const std::string op = "operator/" + spec.operator_();
    absl::StatusOr<std::shared_ptr<grpc::Channel>> channel =
        world.Channel(node.jurisdiction, node, "residency://" + op);
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
      return absl::Status(
          status.code(),
          absl::StrCat(op, " cannot read its own stats: ", status.message()));
    }
    ledger.Update([&](Report& report) {
      Obtained& got = report.actors[op];
      for (const auto& usage : response.owners()) {
        got.objects += usage.version_count();
        got.ciphertext_bytes += usage.ciphertext_bytes();
        got.wrapped_keys += usage.version_count() * wraps;
      }
    });
    if (spec.keeps_plaintext()) {
      for (const User& user : world.users()) {
        HandOverPlaintext(world, ledger, op, node.name, user.name);
      }
    }
  }
  return absl::OkStatus();
}

}  // namespace residency::sim
