#include "sim/topology.h"

#include <filesystem>
#include <fstream>
#include <iterator>
#include <map>
#include <set>

#include "absl/strings/str_cat.h"
#include "absl/strings/str_join.h"
#include "google/protobuf/text_format.h"
#include "proto/text_parse.h"

namespace residency::sim {
namespace {

namespace fs = std::filesystem;
using ::google::protobuf::TextFormat;
using ::residency::v1::Topology;

// "PATH:LINE:COL" of field `field` (index `index`, -1 for a singular one)
// in `tree`, or "PATH" when it was not written.
std::string Where(const std::string& source,
                  const TextFormat::ParseInfoTree* tree, const char* field,
                  int index, const google::protobuf::Descriptor* descriptor) {
  if (tree != nullptr) {
    const google::protobuf::FieldDescriptor* f =
        descriptor->FindFieldByName(field);
    if (f != nullptr) {
      const auto loc = tree->GetLocation(f, index);
      if (loc.line >= 0) {
        return absl::StrCat(source, ":", loc.line + 1, ":", loc.column + 1);
      }
    }
  }
  return source;
}

std::string Resolve(const fs::path& base, const std::string& path) {
  if (path.empty() || fs::path(path).is_absolute()) return path;
  return (base / path).lexically_normal().string();
}

}  // namespace

absl::StatusOr<Topology> ParseTopology(
    const std::string& text, const std::string& path,
    const residency::v1::Scenario& scenario) {
  const std::string source = absl::StrCat("topology file ", path);
  Topology topology;
  TextFormat::ParseInfoTree locations;
  if (absl::Status s =
          proto::ParseTextProto(text, source, &topology, &locations);
      !s.ok()) {
    return s;
  }
  const auto* top = Topology::descriptor();
  const auto* svc = Topology::Service::descriptor();
  auto fail = [](const std::string& where, const std::string& what) {
    return absl::InvalidArgumentError(absl::StrCat(where, ": ", what));
  };
  // What the world has: name -> "key service" / "storage node".
  std::map<std::string, std::string> kinds;
  for (const auto& ks : scenario.world().key_services()) {
    kinds[ks.name()] = "key service";
  }
  for (const auto& node : scenario.world().storage_nodes()) {
    kinds[node.name()] = "storage node";
  }
  std::set<std::string> listed;
  for (int i = 0; i < topology.services_size(); ++i) {
    const Topology::Service& s = topology.services(i);
    const TextFormat::ParseInfoTree* tree =
        locations.GetTreeForNested(top->FindFieldByName("services"), i);
    const std::string entry = Where(source, &locations, "services", i, top);
    auto at = [&](const char* field) {
      const std::string w = Where(source, tree, field, -1, svc);
      return w == source ? entry : w;
    };
    if (s.name().empty()) return fail(entry, "a service without a name");
    auto kind = kinds.find(s.name());
    if (kind == kinds.end()) {
      return fail(at("name"), absl::StrCat("'", s.name(),
                                           "' is not a key service or "
                                           "storage node of scenario ",
                                           scenario.name()));
    }
    if (!listed.insert(s.name()).second) {
      return fail(at("name"), absl::StrCat("'", s.name(), "' listed twice"));
    }
    if (s.address().empty()) {
      return fail(entry, absl::StrCat(kind->second, " '", s.name(),
                                      "' has no address (host:port)"));
    }
    if (kind->second == "key service" && s.audit_public_key_file().empty()) {
      return fail(entry,
                  absl::StrCat("key service '", s.name(),
                               "' has no audit_public_key_file (the auditor "
                               "verifies its audit log with that key)"));
    }
    if (kind->second == "storage node" && !s.audit_public_key_file().empty()) {
      return fail(at("audit_public_key_file"),
                  absl::StrCat("'", s.name(),
                               "' is a storage node: it has no audit log"));
    }
  }
  std::vector<std::string> missing;
  for (const auto& [name, kind] : kinds) {
    if (listed.count(name) == 0) {
      missing.push_back(absl::StrCat(kind, " '", name, "'"));
    }
  }
  if (!missing.empty()) {
    return fail(source,
                absl::StrCat("no address for ", absl::StrJoin(missing, ", "),
                             " of scenario ", scenario.name(),
                             "'s world: list every service in "
                             "`services { name: ... address: ... }`"));
  }
  if (topology.ca_file().empty()) {
    return fail(source, "no ca_file (the CA certificate the parties trust)");
  }
  if (topology.identity_dir().empty()) {
    return fail(source, "no identity_dir (the parties' certificates and keys)");
  }
  const fs::path base = fs::path(path).parent_path();
  topology.set_ca_file(Resolve(base, topology.ca_file()));
  topology.set_identity_dir(Resolve(base, topology.identity_dir()));
  for (Topology::Service& s : *topology.mutable_services()) {
    s.set_audit_public_key_file(Resolve(base, s.audit_public_key_file()));
  }
  return topology;
}

absl::StatusOr<Topology> LoadTopology(const std::string& path,
                                      const residency::v1::Scenario& scenario) {
  std::ifstream in(path, std::ios::binary);
  if (!in) {
    return absl::NotFoundError(
        absl::StrCat("cannot open topology file ", path));
  }
  std::string text((std::istreambuf_iterator<char>(in)),
                   std::istreambuf_iterator<char>());
  return ParseTopology(text, path, scenario);
}

}  // namespace residency::sim
