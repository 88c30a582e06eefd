#include "sim/data_flow.h"

#include <algorithm>
#include <map>

#include "absl/strings/ascii.h"
#include "absl/strings/match.h"
#include "absl/strings/str_cat.h"
#include "absl/strings/str_format.h"
#include "absl/strings/str_join.h"

namespace residency::sim {
namespace {

std::string Id(absl::string_view prefix, absl::string_view name) {
  std::string id(prefix);
  for (char c : name) {
    id += absl::ascii_isalnum(c) ? absl::ascii_tolower(c) : '_';
  }
  return id;
}

uint64_t Get(const std::map<std::string, uint64_t>& m, const std::string& k) {
  auto it = m.find(k);
  return it == m.end() ? 0 : it->second;
}

// Sums one outcome over `ops` ("unwrap" -> outcome -> n).
uint64_t Outcome(
    const std::map<std::string, std::map<std::string, uint64_t>>& ops,
    const std::string& op, const std::string& outcome) {
  auto it = ops.find(op);
  return it == ops.end() ? 0 : Get(it->second, outcome);
}

std::string Rules(const std::map<std::string, uint64_t>& rules) {
  std::vector<std::string> names;
  for (const auto& [rule, n] : rules) names.push_back(rule);
  return absl::StrJoin(names, ", ");
}

}  // namespace

std::string HumanBytes(double bytes) {
  if (bytes >= 1 << 20) return absl::StrFormat("%.1f MiB", bytes / (1 << 20));
  if (bytes >= 1 << 10) return absl::StrFormat("%.1f KiB", bytes / (1 << 10));
  return absl::StrFormat("%.0f B", bytes);
}

const FlowNode* DataFlow::Node(const std::string& id) const {
  for (const FlowNode& n : nodes) {
    if (n.id == id) return &n;
  }
  return nullptr;
}

DataFlow BuildDataFlow(const Report& r) {
  DataFlow flow;
  const std::map<std::string, double> metrics = r.Metrics();
  auto metric = [&](const std::string& name) {
    auto it = metrics.find(name);
    return it == metrics.end() ? 0.0 : it->second;
  };
  const bool shares =
      r.population.custody_mode() != residency::v1::CUSTODY_MODE_CUSTODIAN &&
      r.population.custody_mode() != residency::v1::CUSTODY_MODE_UNSPECIFIED;

  // Parties.
  uint64_t stored = 0;
  for (const auto& [user, bytes] : r.user_bytes) stored += bytes;
  FlowNode users;
  users.id = "users";
  users.kind = FlowNode::Kind::kUsers;
  users.jurisdiction = r.population.jurisdiction();
  users.label = absl::StrCat("users (", r.user_bytes.size(), ")");
  users.details.push_back(
      absl::StrCat("stored ", HumanBytes(static_cast<double>(stored))));
  if (r.population.custody_mode() != residency::v1::CUSTODY_MODE_UNSPECIFIED) {
    std::string mode = absl::AsciiStrToLower(
        residency::v1::CustodyMode_Name(r.population.custody_mode()));
    if (absl::StartsWith(mode, "custody_mode_")) mode = mode.substr(13);
    users.details.push_back("custody: " + mode);
  }
  flow.nodes.push_back(users);

  std::map<std::string, std::string> node_of_operator;
  for (const auto& spec : r.world.storage_nodes()) {
    FlowNode n;
    n.id = Id("sn_", spec.name());
    n.kind = FlowNode::Kind::kStorageNode;
    n.jurisdiction = spec.jurisdiction();
    n.label = "storage node " + spec.name();
    const std::string op = "operator/" + spec.operator_();
    n.details.push_back(op);
    auto got = r.actors.find(op);
    if (got != r.actors.end()) {
      n.details.push_back(absl::StrCat(
          "holds ", got->second.objects, " objects, ",
          HumanBytes(static_cast<double>(got->second.ciphertext_bytes))));
      n.exposed = got->second.plaintext_bytes > 0;
    }
    if (spec.keeps_plaintext()) n.details.push_back("keeps plaintext copies");
    flow.nodes.push_back(n);
  }
  for (const auto& spec : r.world.key_services()) {
    FlowNode n;
    n.id = Id("ks_", spec.name());
    n.kind = FlowNode::Kind::kKeyService;
    n.jurisdiction = spec.jurisdiction();
    n.label = "key service " + spec.name();
    n.details.push_back("holds KEKs");
    auto log = r.audit_logs.find(spec.name());
    if (log != r.audit_logs.end()) {
      n.details.push_back(
          absl::StrCat("audit log: ", log->second.entries, " entries, ",
                       log->second.verified ? "verified" : "NOT verified"));
    }
    flow.nodes.push_back(n);
  }
  for (const auto& [actor, got] : r.actors) {
    if (!absl::StartsWith(actor, "authority/")) continue;
    FlowNode n;
    n.id = Id("auth_", actor.substr(10));
    n.kind = FlowNode::Kind::kAuthority;
    n.jurisdiction = absl::AsciiStrToUpper(actor.substr(10));
    n.label = actor;
    n.details.push_back(absl::StrCat(
        "plaintext ", HumanBytes(static_cast<double>(got.plaintext_bytes))));
    n.details.push_back(absl::StrFormat(
        "exposure max %.0f%%",
        100 * metric(absl::StrCat("exposure_max{actor=", actor, "}"))));
    n.exposed = got.plaintext_bytes > 0;
    flow.nodes.push_back(n);
  }

  // Jurisdictions: the users' first, then the world's order.
  std::vector<std::string> order;
  order.push_back(r.population.jurisdiction());
  for (const std::string& j : r.world.jurisdictions()) order.push_back(j);
  for (const FlowNode& n : flow.nodes) order.push_back(n.jurisdiction);
  for (const std::string& j : order) {
    if (std::find(flow.jurisdictions.begin(), flow.jurisdictions.end(), j) !=
        flow.jurisdictions.end()) {
      continue;
    }
    if (std::any_of(flow.nodes.begin(), flow.nodes.end(),
                    [&](const FlowNode& n) { return n.jurisdiction == j; })) {
      flow.jurisdictions.push_back(j);
    }
  }

  // Users store ciphertext and wrapped keys on the storage nodes.
  for (const auto& spec : r.world.storage_nodes()) {
    auto got = r.actors.find("operator/" + spec.operator_());
    if (got == r.actors.end() || got->second.objects == 0) continue;
    FlowEdge e;
    e.from = "users";
    e.to = Id("sn_", spec.name());
    e.kind = spec.keeps_plaintext() ? "plaintext" : "ciphertext";
    e.label = absl::StrCat(
        "ciphertext ",
        HumanBytes(static_cast<double>(got->second.ciphertext_bytes)), ", ",
        got->second.wrapped_keys, " wrapped keys");
    if (spec.keeps_plaintext()) {
      absl::StrAppend(&e.label, "; the provider keeps plaintext copies");
      e.red = true;
    }
    flow.edges.push_back(e);
  }
  // Key services hand users their data keys (and wrapped copies to store).
  for (const std::string& ks : r.population.key_services()) {
    FlowEdge e;
    e.from = Id("ks_", ks);
    e.to = "users";
    e.kind = shares ? "key shares" : "data keys";
    uint64_t generated = 0, unwrapped = 0;
    auto log = r.audit_logs.find(ks);
    if (log != r.audit_logs.end()) {
      for (const auto& [principal, ops] : log->second.operations) {
        if (!absl::StartsWith(principal, "user/")) continue;
        generated += Outcome(ops, "generate_data_key", "granted");
        unwrapped += Outcome(ops, "unwrap", "granted");
      }
    }
    e.label = absl::StrCat(e.kind, ": ", generated, " generated (with ",
                           "wrapped copies), ", unwrapped, " unwrapped");
    flow.edges.push_back(e);
  }
  // Authorities: operators in their jurisdiction export; key services answer
  // by their policies.
  for (const auto& [actor, got] : r.actors) {
    if (!absl::StartsWith(actor, "authority/")) continue;
    const std::string auth_id = Id("auth_", actor.substr(10));
    const std::string j = absl::AsciiStrToUpper(actor.substr(10));
    int nodes_in_j = 0;
    for (const auto& spec : r.world.storage_nodes()) {
      nodes_in_j += spec.jurisdiction() == j;
    }
    for (const auto& spec : r.world.storage_nodes()) {
      if (spec.jurisdiction() != j) continue;
      const std::string op = "operator/" + spec.operator_();
      uint64_t refused = 0;
      for (const auto& [why, n] : got.refusals) {
        if (absl::StartsWith(why, op + ":")) refused += n;
      }
      if (got.objects == 0 && refused == 0) continue;
      FlowEdge e;
      e.from = Id("sn_", spec.name());
      e.to = auth_id;
      if (got.objects == 0) {
        e.kind = "refused";
        e.refused = true;
        e.label = absl::StrCat("export refused ", refused, "x");
      } else {
        e.kind = "ciphertext";
        e.label = absl::StrCat(
            nodes_in_j > 1 ? absl::StrCat("from the ", j, " operators: ") : "",
            "ciphertext ",
            HumanBytes(static_cast<double>(got.ciphertext_bytes)), ", ",
            got.wrapped_keys, " wrapped keys");
        if (spec.keeps_plaintext() && got.plaintext_bytes > 0) {
          e.kind = "plaintext";
          e.red = true;
          absl::StrAppend(&e.label, ", plaintext copies");
        }
      }
      flow.edges.push_back(e);
    }
    for (const auto& spec : r.world.key_services()) {
      auto log = r.audit_logs.find(spec.name());
      FlowEdge e;
      e.from = Id("ks_", spec.name());
      e.to = auth_id;
      if (log == r.audit_logs.end()) {
        // No audit read: fall back on what the authority was refused.
        uint64_t refused = 0;
        for (const auto& [why, n] : got.refusals) {
          if (absl::StartsWith(why, "service/" + spec.name() + ":")) {
            refused += n;
          }
        }
        if (refused == 0) continue;
        e.kind = "refused";
        e.refused = true;
        e.label = absl::StrCat("refused ", refused, "x");
        flow.edges.push_back(e);
        continue;
      }
      auto ops = log->second.operations.find(actor);
      if (ops == log->second.operations.end()) continue;
      const uint64_t keys = Outcome(ops->second, "unwrap", "granted");
      const uint64_t keks = Outcome(ops->second, "export_key", "granted");
      uint64_t denied = 0, failed = 0;
      for (const auto& [op, outcomes] : ops->second) {
        denied += Get(outcomes, "denied");
        failed += Get(outcomes, "failed");
      }
      std::vector<std::string> parts;
      if (keys > 0) {
        parts.push_back(
            absl::StrCat(keys, shares ? " key shares" : " data keys"));
      }
      if (keks > 0) parts.push_back(absl::StrCat(keks, " KEK export(s)"));
      const auto third = log->second.third_party.find(actor);
      auto rules = [&](const char* decision) -> std::string {
        if (third == log->second.third_party.end()) return "";
        auto d = third->second.find(decision);
        return d == third->second.end() ? "" : Rules(d->second);
      };
      if (!parts.empty()) {
        absl::StrAppend(&parts.back(), " (rule ", rules("ALLOW"), ")");
      }
      if (failed > 0) {
        parts.push_back(
            absl::StrCat(failed, " allowed but failed (key state)"));
      }
      if (denied > 0) {
        parts.push_back(
            absl::StrCat("refused ", denied, "x (rule ", rules("DENY"), ")"));
      }
      if (parts.empty()) continue;
      e.label = absl::StrJoin(parts, "; ");
      if (keys + keks > 0) {
        e.kind = keks > 0 ? "KEKs" : (shares ? "key shares" : "data keys");
        e.red = true;
      } else {
        e.kind = "refused";
        e.refused = true;
      }
      flow.edges.push_back(e);
    }
  }
  for (FlowEdge& e : flow.edges) {
    const FlowNode* a = flow.Node(e.from);
    const FlowNode* b = flow.Node(e.to);
    e.crosses =
        a != nullptr && b != nullptr && a->jurisdiction != b->jurisdiction;
  }
  // Drop edges to parties that are not drawn (a name missing from the world).
  flow.edges.erase(std::remove_if(flow.edges.begin(), flow.edges.end(),
                                  [&](const FlowEdge& e) {
                                    return flow.Node(e.from) == nullptr ||
                                           flow.Node(e.to) == nullptr;
                                  }),
                   flow.edges.end());
  return flow;
}

}  // namespace residency::sim
