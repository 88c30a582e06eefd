#ifndef RESIDENCY_SIM_DATA_FLOW_H_
#define RESIDENCY_SIM_DATA_FLOW_H_

// The data-flow picture of a run, as threat modellers draw it: each
// jurisdiction is a trust boundary holding its parties (users, storage
// nodes, key services, authorities); each arrow says what crossed from one
// party to another (ciphertext, wrapped keys, data keys, KEKs, plaintext),
// in red when plaintext or keys reached an authority. Built from a report
// alone; the HTML (SVG), Markdown (Mermaid) and text reports draw it.

#include <string>
#include <vector>

#include "sim/report.h"

namespace residency::sim {

struct FlowNode {
  enum class Kind { kUsers, kStorageNode, kKeyService, kAuthority };
  // [a-z0-9_], unique: "users", "sn_cn_node", "ks_us_custodian",
  // "auth_cn" (usable as a Mermaid id).
  std::string id;
  Kind kind = Kind::kUsers;
  std::string jurisdiction;
  std::string label;                 // "key service us-custodian"
  std::vector<std::string> details;  // a few short lines
  // Holds users' plaintext or keys that open it, beyond its role: an
  // authority that got any, a provider that keeps plaintext.
  bool exposed = false;
};

struct FlowEdge {
  std::string from;  // FlowNode ids
  std::string to;
  // One or two words: "ciphertext", "data keys", "KEKs", "plaintext",
  // "refused".
  std::string kind;
  // What crossed, with figures: "ciphertext 1.2 MiB, 8 wrapped keys".
  std::string label;
  // Plaintext or keys reached an authority (or a provider kept plaintext).
  bool red = false;
  // Asked for and refused: nothing crossed.
  bool refused = false;
  // The two parties are in different jurisdictions.
  bool crosses = false;
};

struct DataFlow {
  // Jurisdictions with at least one party, the users' first.
  std::vector<std::string> jurisdictions;
  std::vector<FlowNode> nodes;
  std::vector<FlowEdge> edges;

  const FlowNode* Node(const std::string& id) const;
};

DataFlow BuildDataFlow(const Report& report);

// "1.2 MiB", "512 B".
std::string HumanBytes(double bytes);

}  // namespace residency::sim

#endif  // RESIDENCY_SIM_DATA_FLOW_H_
