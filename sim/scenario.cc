#include "sim/scenario.h"

#include <algorithm>
#include <fstream>
#include <iterator>
#include <set>
#include <sstream>

#include "absl/strings/ascii.h"
#include "absl/strings/str_cat.h"
#include "absl/strings/str_join.h"
#include "google/protobuf/text_format.h"
#include "key_service/policy.h"
#include "proto/text_parse.h"
#include "rpc/printable.h"

namespace residency::sim {

// Generated at build time from sim/scenarios/*.textproto (see
// sim/CMakeLists.txt): name and text of every built-in.
extern const std::vector<BuiltinScenario>& GeneratedBuiltinScenarios();

namespace {

using ::residency::v1::CustodyMode;
using ::residency::v1::Scenario;

bool ValidName(absl::string_view name) {
  if (name.empty() || name.size() > 64) return false;
  return std::all_of(name.begin(), name.end(), [](char c) {
    return absl::ascii_islower(c) || absl::ascii_isdigit(c) || c == '-';
  });
}

class Validator {
 public:
  Validator(const Scenario& scenario, absl::string_view source)
      : s_(scenario), source_(source) {}

  absl::Status Run() {
    const auto& world = s_.world();
    if (world.jurisdictions().empty())
      return Error("world.jurisdictions", "is empty");
    for (const std::string& j : world.jurisdictions()) {
      if (j.empty() || j.size() > 16 ||
          !std::all_of(j.begin(), j.end(), absl::ascii_isupper)) {
        return Error("world.jurisdictions",
                     absl::StrCat("'", rpc::Printable(j),
                                  "' is not 1-16 upper-case letters"));
      }
      if (!jurisdictions_.insert(j).second) {
        return Error("world.jurisdictions",
                     absl::StrCat(j, " is listed twice"));
      }
    }
    if (world.storage_nodes().empty()) {
      return Error("world.storage_nodes", "is empty");
    }
    for (int i = 0; i < world.storage_nodes_size(); ++i) {
      const auto& node = world.storage_nodes(i);
      const std::string field = absl::StrCat("world.storage_nodes[", i, "]");
      if (absl::Status s = Name(field, node.name(), &nodes_); !s.ok()) return s;
      if (absl::Status s = Jurisdiction(field, node.jurisdiction()); !s.ok()) {
        return s;
      }
      if (!ValidName(node.operator_())) {
        return Error(field + ".operator", "must be 1-64 characters [a-z0-9-]");
      }
      if (node.store() == v1::StorageNodeSpec::STORE_RADOS) {
        rados_nodes_.insert(node.name());
        if (node.keeps_plaintext()) {
          return Error(field + ".keeps_plaintext",
                       "needs the node's data directory; a node on RADOS "
                       "has none (use STORE_ROCKSDB)");
        }
        if (node.gateways() > 16) {
          return Error(field + ".gateways", "must be at most 16");
        }
      } else if (node.gateways() > 1) {
        return Error(field + ".gateways",
                     "more than one gateway needs store: STORE_RADOS (a "
                     "RocksDB store belongs to one node)");
      }
    }
    for (int i = 0; i < world.key_services_size(); ++i) {
      const auto& ks = world.key_services(i);
      const std::string field = absl::StrCat("world.key_services[", i, "]");
      if (absl::Status s = Name(field, ks.name(), &key_services_); !s.ok()) {
        return s;
      }
      if (absl::Status s = Jurisdiction(field, ks.jurisdiction()); !s.ok()) {
        return s;
      }
      if (ks.policy().jurisdiction() != ks.jurisdiction()) {
        return Error(
            field + ".policy.jurisdiction",
            absl::StrCat("is '", ks.policy().jurisdiction(),
                         "', the key service is in ", ks.jurisdiction()));
      }
      // The key service will parse the same policy; refuse it here first.
      std::string text;
      google::protobuf::TextFormat::PrintToString(ks.policy(), &text);
      absl::StatusOr<key_service::PolicyEngine> policy =
          key_service::PolicyEngine::Parse(text, ks.name());
      if (!policy.ok()) {
        return Error(field + ".policy", policy.status().message());
      }
      jurisdiction_of_[ks.name()] = ks.jurisdiction();
    }
    for (int i = 0; i < world.links_size(); ++i) {
      const auto& link = world.links(i);
      const std::string field = absl::StrCat("world.links[", i, "]");
      for (const std::string* j : {&link.a(), &link.b()}) {
        if (absl::Status s = Jurisdiction(field, *j); !s.ok()) return s;
      }
      if (link.loss() < 0 || link.loss() > 1) {
        return Error(field + ".loss", "must be between 0 and 1");
      }
      for (const auto& w : link.partitions()) {
        if (w.end_ms() <= w.start_ms()) {
          return Error(field + ".partitions", "a window ends before it starts");
        }
        if (!w.phase().empty() &&
            std::none_of(s_.phases().begin(), s_.phases().end(),
                         [&](const residency::v1::Phase& p) {
                           return p.name() == w.phase();
                         })) {
          return Error(field + ".partitions",
                       absl::StrCat("a window counts from phase \"", w.phase(),
                                    "\", which the scenario does not have"));
        }
      }
    }
    if (absl::Status s = CheckPopulation(); !s.ok()) return s;
    if (s_.phases().empty()) return Error("phases", "is empty");
    for (int i = 0; i < s_.phases_size(); ++i) {
      if (absl::Status s = CheckPhase(i); !s.ok()) return s;
    }
    for (int i = 0; i < s_.expectations_size(); ++i) {
      const auto& e = s_.expectations(i);
      const std::string field = absl::StrCat("expectations[", i, "]");
      if (e.metric().empty()) return Error(field + ".metric", "is empty");
      if (e.op() == v1::Expectation::OP_UNSPECIFIED) {
        return Error(field + ".op", "is not set (EQ, LE, GE, LT or GT)");
      }
    }
    return absl::OkStatus();
  }

 private:
  absl::Status Error(absl::string_view field, absl::string_view what) const {
    return absl::InvalidArgumentError(
        absl::StrCat(source_, ": ", field, " ", what));
  }

  absl::Status Name(const std::string& field, const std::string& name,
                    std::set<std::string>* seen) {
    if (!ValidName(name)) {
      return Error(field + ".name", absl::StrCat("'", rpc::Printable(name),
                                                 "' is not 1-64 characters "
                                                 "[a-z0-9-]"));
    }
    if (!seen->insert(name).second) {
      return Error(field + ".name", absl::StrCat("'", name, "' is used twice"));
    }
    return absl::OkStatus();
  }

  absl::Status Jurisdiction(const std::string& field, const std::string& j) {
    if (jurisdictions_.count(j) == 0) {
      return Error(field,
                   absl::StrCat("names jurisdiction '", rpc::Printable(j),
                                "', which world.jurisdictions lacks"));
    }
    return absl::OkStatus();
  }

  absl::Status KnownNode(const std::string& field, const std::string& name) {
    if (nodes_.count(name) == 0) {
      return Error(field,
                   absl::StrCat("names storage node '", rpc::Printable(name),
                                "', which the world lacks"));
    }
    return absl::OkStatus();
  }

  // A known node whose objects are files the simulator can read (not one
  // on RADOS).
  absl::Status FileBackedNode(const std::string& field, const std::string& name,
                              absl::string_view why) {
    if (absl::Status s = KnownNode(field, name); !s.ok()) return s;
    if (rados_nodes_.count(name) > 0) {
      return Error(field, absl::StrCat("names '", name, "', a node on RADOS: ",
                                       why, ", and a Ceph pool has none"));
    }
    return absl::OkStatus();
  }

  absl::Status KnownKeyService(const std::string& field,
                               const std::string& name) {
    if (key_services_.count(name) == 0) {
      return Error(field,
                   absl::StrCat("names key service '", rpc::Printable(name),
                                "', which the world lacks"));
    }
    return absl::OkStatus();
  }

  absl::Status CheckPopulation() {
    const auto& p = s_.population();
    if (p.users() == 0 || p.users() > 10000) {
      return Error("population.users", "must be 1-10000");
    }
    if (p.objects_per_user() > 100000) {
      return Error("population.objects_per_user", "must be at most 100000");
    }
    if (absl::Status s =
            Jurisdiction("population.jurisdiction", p.jurisdiction());
        !s.ok()) {
      return s;
    }
    if (p.min_bytes() > p.max_bytes()) {
      return Error("population.min_bytes", "is above max_bytes");
    }
    if (p.max_bytes() > (uint64_t{1} << 30)) {
      return Error("population.max_bytes", "must be at most 1 GiB");
    }
    if (absl::Status s = KnownNode("population.storage_node", p.storage_node());
        !s.ok()) {
      return s;
    }
    for (const std::string& ks : p.key_services()) {
      if (absl::Status s = KnownKeyService("population.key_services", ks);
          !s.ok()) {
        return s;
      }
    }
    const size_t wanted = p.custody_mode() == v1::CUSTODY_MODE_SPLIT ? 2 : 1;
    switch (p.custody_mode()) {
      case v1::CUSTODY_MODE_CUSTODIAN:
      case v1::CUSTODY_MODE_E2E:
      case v1::CUSTODY_MODE_SPLIT:
        break;
      default:
        return Error("population.custody_mode",
                     "must be CUSTODY_MODE_CUSTODIAN, _E2E or _SPLIT");
    }
    if (static_cast<size_t>(p.key_services_size()) != wanted) {
      return Error("population.key_services",
                   absl::StrCat("must name ", wanted, " key service(s) for ",
                                CustodyMode_Name(p.custody_mode())));
    }
    if (wanted == 2 && jurisdiction_of_[p.key_services(0)] ==
                           jurisdiction_of_[p.key_services(1)]) {
      return Error("population.key_services",
                   "split custody needs key services in two jurisdictions");
    }
    return absl::OkStatus();
  }

  absl::Status CheckPhase(int i) {
    const auto& phase = s_.phases(i);
    const std::string field = absl::StrCat("phases[", i, "]");
    switch (phase.action_case()) {
      case v1::Phase::kWorkload:
        if (phase.workload().kind() == v1::Workload::KIND_UNSPECIFIED) {
          return Error(field + ".workload.kind", "is not set");
        }
        if (phase.workload().kind() == v1::Workload::MIXED &&
            phase.workload().duration_ms() == 0) {
          return Error(field + ".workload.duration_ms",
                       "is 0 for a MIXED workload");
        }
        return absl::OkStatus();
      case v1::Phase::kCompulsion: {
        const auto& c = phase.compulsion();
        if (absl::Status s = Jurisdiction(field + ".compulsion.jurisdiction",
                                          c.jurisdiction());
            !s.ok()) {
          return s;
        }
        for (const std::string& ks : c.key_services()) {
          if (absl::Status s =
                  KnownKeyService(field + ".compulsion.key_services", ks);
              !s.ok()) {
            return s;
          }
        }
        return absl::OkStatus();
      }
      case v1::Phase::kAudit:
        return FileBackedNode(field + ".audit.storage_node",
                              phase.audit().storage_node(),
                              "the audit reads every file of the node");
      case v1::Phase::kInsider:
        return FileBackedNode(field + ".insider.storage_node",
                              phase.insider().storage_node(),
                              "the insider copies the node's data directory");
      case v1::Phase::kTap: {
        const auto& tap = phase.tap();
        for (const std::string* j : {&tap.a(), &tap.b()}) {
          if (absl::Status s = Jurisdiction(field + ".tap", *j); !s.ok()) {
            return s;
          }
        }
        // A tap sits on a link's interceptor: the pair needs a link.
        for (const auto& link : s_.world().links()) {
          if ((link.a() == tap.a() && link.b() == tap.b()) ||
              (link.a() == tap.b() && link.b() == tap.a())) {
            return absl::OkStatus();
          }
        }
        return Error(field + ".tap",
                     absl::StrCat("names ", tap.a(), "-", tap.b(),
                                  ", which world.links lacks (add a link, "
                                  "latency_ms: 0 if need be)"));
      }
      case v1::Phase::kKeyAction:
        if (phase.key_action().kind() == v1::KeyAction::KIND_UNSPECIFIED) {
          return Error(field + ".key_action.kind", "is not set");
        }
        return absl::OkStatus();
      case v1::Phase::ACTION_NOT_SET:
        return Error(field, "has no action");
    }
    return Error(field, "has an unknown action");
  }

  const Scenario& s_;
  const std::string source_;
  std::set<std::string> jurisdictions_;
  std::set<std::string> nodes_;
  std::set<std::string> rados_nodes_;  // nodes with store: STORE_RADOS
  std::set<std::string> key_services_;
  std::map<std::string, std::string> jurisdiction_of_;
};

}  // namespace

absl::StatusOr<Scenario> ParseScenario(absl::string_view text,
                                       absl::string_view source) {
  if (text.size() > kMaxScenarioFileSize) {
    return absl::InvalidArgumentError(
        absl::StrCat(source, " is ", text.size(),
                     " bytes, more than the limit of ", kMaxScenarioFileSize));
  }
  Scenario scenario;
  if (absl::Status s = proto::ParseTextProto(text, source, &scenario);
      !s.ok()) {
    return s;
  }
  if (absl::Status s = Validator(scenario, source).Run(); !s.ok()) return s;
  return scenario;
}

absl::StatusOr<Scenario> LoadScenarioFile(const std::string& path) {
  std::ifstream in(path, std::ios::binary);
  if (!in) {
    return absl::NotFoundError(
        absl::StrCat("cannot open scenario file ", path));
  }
  std::string text;
  text.assign(std::istreambuf_iterator<char>(in),
              std::istreambuf_iterator<char>());
  if (in.bad()) {
    return absl::InternalError(
        absl::StrCat("cannot read scenario file ", path));
  }
  return ParseScenario(text, absl::StrCat("scenario file ", path));
}

const std::vector<BuiltinScenario>& BuiltinScenarios() {
  return GeneratedBuiltinScenarios();
}

absl::StatusOr<Scenario> LoadBuiltinScenario(absl::string_view name) {
  std::vector<std::string> known;
  for (const BuiltinScenario& b : BuiltinScenarios()) {
    if (b.name == name) {
      return ParseScenario(b.text, absl::StrCat("scenario ", b.name));
    }
    known.push_back(b.name);
  }
  return absl::NotFoundError(
      absl::StrCat("no built-in scenario named '", rpc::Printable(name),
                   "'; known: ", absl::StrJoin(known, ", ")));
}

}  // namespace residency::sim
