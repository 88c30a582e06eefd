#include "sim/report.h"

#include <algorithm>
#include <cmath>
#include <iomanip>

#include "absl/strings/escaping.h"
#include "absl/strings/str_cat.h"
#include "absl/strings/str_format.h"
#include "rpc/printable.h"
#include "sim/data_flow.h"

namespace residency::sim {
namespace {

std::string Label(absl::string_view name, absl::string_view key,
                  absl::string_view value) {
  return absl::StrCat(name, "{", key, "=", value, "}");
}

std::string Bytes(double bytes) {
  if (bytes >= 1 << 20) return absl::StrFormat("%.1f MiB", bytes / (1 << 20));
  if (bytes >= 1 << 10) return absl::StrFormat("%.1f KiB", bytes / (1 << 10));
  return absl::StrFormat("%.0f B", bytes);
}

std::string Number(double v) {
  if (std::isfinite(v) && v == std::floor(v) && std::fabs(v) < 1e15) {
    return absl::StrFormat("%.0f", v);
  }
  return absl::StrFormat("%.6g", v);
}

// What crossed between parties (the diagram of the HTML report, as lines).
void WriteTextDataFlow(const Report& r, std::ostream& out) {
  const DataFlow flow = BuildDataFlow(r);
  if (flow.edges.empty()) return;
  out << "Data flows (what crossed between parties)\n";
  auto name = [&](const std::string& id) {
    const FlowNode* n = flow.Node(id);
    return absl::StrCat(n->label, " (", n->jurisdiction, ")");
  };
  for (const FlowEdge& e : flow.edges) {
    out << "  " << name(e.from) << " -> " << name(e.to) << ": " << e.label;
    if (e.crosses) {
      out << "  [crosses " << flow.Node(e.from)->jurisdiction << " -> "
          << flow.Node(e.to)->jurisdiction << "]";
    }
    if (e.red) out << "  [! plaintext or keys to a third party]";
    out << "\n";
  }
  out << "\n";
}

// What the auditor found in each key service's audit log.
void WriteTextAudit(const Report& r, std::ostream& out) {
  if (r.audit_logs.empty()) return;
  out << "Audit logs (read by an auditor after the last phase, verified)\n";
  for (const auto& [ks, f] : r.audit_logs) {
    out << absl::StrFormat("  %s (%s): %d entries, %s\n", ks, f.jurisdiction,
                           f.entries, f.verified ? "verified" : "NOT VERIFIED");
    // It may quote the audited service's error.
    out << "    " << rpc::PrintableMessage(f.verification) << "\n";
    out << "    read by " << f.read_by << "\n";
    auto decisions = r.audit.find(ks);
    if (decisions != r.audit.end()) {
      std::map<std::string, std::pair<uint64_t, uint64_t>> rows;
      for (const auto& [decision, principals] : decisions->second) {
        for (const auto& [principal, n] : principals) {
          (decision == "ALLOW" ? rows[principal].first
                               : rows[principal].second) += n;
        }
      }
      out << absl::StrFormat("    %-24s %7s %7s\n", "principal", "ALLOW",
                             "DENY");
      for (const auto& [principal, n] : rows) {
        out << absl::StrFormat("    %-24s %7d %7d\n", rpc::Printable(principal),
                               n.first, n.second);
      }
    }
    for (const auto& [principal, decisions] : f.third_party) {
      for (const auto& [decision, rules] : decisions) {
        for (const auto& [rule, n] : rules) {
          out << absl::StrFormat(
              "    third-party: %s %s %d request(s), rule \"%s\"\n",
              decision == "ALLOW" ? "ALLOWED" : "DENIED",
              rpc::Printable(principal), n, rpc::Printable(rule));
        }
      }
    }
  }
  out << "\n";
}

void WriteJsonAudit(const Report& r, std::ostream& out) {
  out << "  \"findings\": [";
  bool first = true;
  for (const std::string& f : r.findings) {
    out << (first ? "\n" : ",\n") << "    " << JsonQuote(f);
    first = false;
  }
  out << "\n  ],\n  \"audit\": {";
  first = true;
  for (const auto& [ks, f] : r.audit_logs) {
    out << (first ? "\n" : ",\n") << "    " << JsonQuote(ks) << ": {"
        << "\"jurisdiction\": " << JsonQuote(f.jurisdiction)
        << ", \"read_by\": " << JsonQuote(f.read_by)
        << ", \"entries\": " << f.entries
        << ", \"checkpoints\": " << f.checkpoints
        << ", \"verified\": " << (f.verified ? "true" : "false")
        << ", \"verification\": " << JsonQuote(f.verification)
        << ", \"foreign_allowed\": " << f.foreign_allowed
        << ",\n      \"decisions\": {";
    first = false;
    bool first_decision = true;
    auto decisions = r.audit.find(ks);
    if (decisions != r.audit.end()) {
      for (const auto& [decision, principals] : decisions->second) {
        out << (first_decision ? "" : ", ") << JsonQuote(decision) << ": {";
        first_decision = false;
        bool first_principal = true;
        for (const auto& [principal, n] : principals) {
          out << (first_principal ? "" : ", ") << JsonQuote(principal) << ": "
              << n;
          first_principal = false;
        }
        out << "}";
      }
    }
    out << "},\n      \"third_party\": [";
    bool first_row = true;
    for (const auto& [principal, decisions] : f.third_party) {
      for (const auto& [decision, rules] : decisions) {
        for (const auto& [rule, n] : rules) {
          out << (first_row ? "" : ", ")
              << "{\"principal\": " << JsonQuote(principal)
              << ", \"decision\": " << JsonQuote(decision)
              << ", \"rule\": " << JsonQuote(rule) << ", \"entries\": " << n
              << "}";
          first_row = false;
        }
      }
    }
    out << "],\n      \"operations\": {";
    bool first_principal = true;
    for (const auto& [principal, ops] : f.operations) {
      out << (first_principal ? "" : ", ") << JsonQuote(principal) << ": {";
      first_principal = false;
      bool first_op = true;
      for (const auto& [op, outcomes] : ops) {
        out << (first_op ? "" : ", ") << JsonQuote(op) << ": {";
        first_op = false;
        bool first_outcome = true;
        for (const auto& [outcome, n] : outcomes) {
          out << (first_outcome ? "" : ", ") << JsonQuote(outcome) << ": " << n;
          first_outcome = false;
        }
        out << "}";
      }
      out << "}";
    }
    out << "}}";
  }
  out << "\n  },\n";
}

}  // namespace

std::string JsonQuote(absl::string_view s) {
  std::string out = "\"";
  for (char c : s) {
    switch (c) {
      case '"':
        out += "\\\"";
        break;
      case '\\':
        out += "\\\\";
        break;
      case '\n':
        out += "\\n";
        break;
      default:
        if (static_cast<unsigned char>(c) < 0x20) {
          absl::StrAppendFormat(&out, "\\u%04x", c);
        } else {
          out += c;
        }
    }
  }
  return out + "\"";
}

const char* ExpectationOpSymbol(residency::v1::Expectation::Op op) {
  switch (op) {
    case residency::v1::Expectation::EQ:
      return "==";
    case residency::v1::Expectation::LE:
      return "<=";
    case residency::v1::Expectation::GE:
      return ">=";
    case residency::v1::Expectation::LT:
      return "<";
    case residency::v1::Expectation::GT:
      return ">";
    default:
      return "?";
  }
}

double Percentile(std::vector<double> values, double p) {
  if (values.empty()) return 0;
  std::sort(values.begin(), values.end());
  const size_t rank = static_cast<size_t>(
      std::ceil(p / 100.0 * static_cast<double>(values.size())));
  return values[std::clamp<size_t>(rank, 1, values.size()) - 1];
}

std::map<std::string, double> Report::Metrics() const {
  std::map<std::string, double> m;
  uint64_t total = 0;
  for (const auto& [user, bytes] : user_bytes) total += bytes;
  m["stored_bytes"] = static_cast<double>(total);
  m["users"] = static_cast<double>(user_bytes.size());
  m["wrong_plaintext"] = static_cast<double>(wrong_plaintext);
  for (const auto& [actor, got] : actors) {
    m[Label("objects", "actor", actor)] = static_cast<double>(got.objects);
    m[Label("ciphertext_bytes", "actor", actor)] =
        static_cast<double>(got.ciphertext_bytes);
    m[Label("wrapped_keys", "actor", actor)] =
        static_cast<double>(got.wrapped_keys);
    m[Label("data_keys", "actor", actor)] = static_cast<double>(got.data_keys);
    m[Label("keks", "actor", actor)] = static_cast<double>(got.keks);
    m[Label("plaintext_bytes", "actor", actor)] =
        static_cast<double>(got.plaintext_bytes);
    uint64_t refusals = 0;
    for (const auto& [why, n] : got.refusals) refusals += n;
    m[Label("refusals", "actor", actor)] = static_cast<double>(refusals);
    // Exposure: the share of each user's data the actor can read; the
    // largest and the mean over users.
    double max_share = 0, sum_share = 0;
    auto exposed_it = exposed.find(actor);
    for (const auto& [user, bytes] : user_bytes) {
      uint64_t got_bytes = 0;
      if (exposed_it != exposed.end()) {
        auto it = exposed_it->second.find(user);
        if (it != exposed_it->second.end()) got_bytes = it->second;
      }
      const double share =
          bytes == 0 ? 0 : static_cast<double>(got_bytes) / bytes;
      m[absl::StrCat("exposure{actor=", actor, ",user=", user, "}")] = share;
      max_share = std::max(max_share, share);
      sum_share += share;
    }
    m[Label("exposure_max", "actor", actor)] = max_share;
    m[Label("exposure_mean", "actor", actor)] =
        user_bytes.empty() ? 0 : sum_share / user_bytes.size();
  }
  for (const auto& [name, value] : extra) m[name] = value;
  // Audit logs, as the auditor read them after the last phase: per key
  // service, and summed over key services (to compare worlds whose key
  // services differ).
  for (const auto& [ks, decisions] : audit) {
    for (const auto& [decision, principals] : decisions) {
      for (const auto& [principal, n] : principals) {
        m[absl::StrCat("audit_entries{decision=", decision,
                       ",principal=", principal, "}")] +=
            static_cast<double>(n);
      }
    }
  }
  for (const auto& [ks, decisions] : audit) {
    double total = 0;
    for (const auto& [decision, principals] : decisions) {
      for (const auto& [principal, n] : principals) {
        m[absl::StrCat("audit_entries{key_service=", ks, ",decision=", decision,
                       ",principal=", principal, "}")] = static_cast<double>(n);
        total += static_cast<double>(n);
      }
    }
    m[Label("audit_entries", "key_service", ks)] = total;
  }
  for (const auto& [ks, f] : audit_logs) {
    m[Label("audit_log_verified", "key_service", ks)] = f.verified ? 1 : 0;
    m[Label("audit_checkpoints", "key_service", ks)] =
        static_cast<double>(f.checkpoints);
    m[Label("audit_foreign_allowed", "key_service", ks)] =
        static_cast<double>(f.foreign_allowed);
    for (const auto& [principal, decisions] : f.third_party) {
      for (const auto& [decision, rules] : decisions) {
        for (const auto& [rule, n] : rules) {
          m[absl::StrCat("audit_third_party{key_service=", ks,
                         ",decision=", decision, ",principal=", principal,
                         ",rule=", rule, "}")] = static_cast<double>(n);
        }
      }
    }
  }
  for (const auto& [link, figures] : links) {
    for (const auto& [name, value] : figures) {
      m[Label(absl::StrCat("link_", name), "link", link)] = value;
    }
  }
  for (const auto& [op, stats] : operations) {
    uint64_t errors = 0;
    for (const auto& [code, n] : stats.errors) errors += n;
    m[Label("ok", "op", op)] = static_cast<double>(stats.ok);
    m[Label("errors", "op", op)] = static_cast<double>(errors);
    const double all = static_cast<double>(stats.ok + errors);
    m[Label("availability", "op", op)] = all == 0 ? 1 : stats.ok / all;
    m[Label("p50_ms", "op", op)] = Percentile(stats.latencies_ms, 50);
    m[Label("p95_ms", "op", op)] = Percentile(stats.latencies_ms, 95);
    m[Label("p99_ms", "op", op)] = Percentile(stats.latencies_ms, 99);
  }
  return m;
}

bool Report::Check(
    const google::protobuf::RepeatedPtrField<residency::v1::Expectation>&
        wanted) {
  const std::map<std::string, double> metrics = Metrics();
  expectations.clear();
  bool all = true;
  for (const residency::v1::Expectation& e : wanted) {
    ExpectationResult r;
    r.expectation = e;
    auto it = metrics.find(e.metric());
    if (it != metrics.end()) {
      r.found = true;
      r.actual = it->second;
      const double a = r.actual, v = e.value();
      switch (e.op()) {
        case residency::v1::Expectation::EQ:
          r.passed = std::fabs(a - v) <= 1e-9 * std::max(1.0, std::fabs(v));
          break;
        case residency::v1::Expectation::LE:
          r.passed = a <= v;
          break;
        case residency::v1::Expectation::GE:
          r.passed = a >= v;
          break;
        case residency::v1::Expectation::LT:
          r.passed = a < v;
          break;
        case residency::v1::Expectation::GT:
          r.passed = a > v;
          break;
        default:
          r.passed = false;
      }
    }
    all = all && r.passed;
    expectations.push_back(std::move(r));
  }
  return all;
}

void WriteTextReport(const Report& r, std::ostream& out) {
  out << "== residency scenario: " << r.scenario << " ==\n";
  // The title and models come from the scenario file, which may come from
  // anywhere.
  if (!r.title.empty()) out << rpc::Printable(r.title) << "\n";
  for (const std::string& m : r.models) {
    out << "  models: " << rpc::Printable(m) << "\n";
  }
  out << absl::StrFormat("  seed %d, %.1f s\n\n", r.seed, r.seconds);

  uint64_t total = 0;
  for (const auto& [user, bytes] : r.user_bytes) total += bytes;
  out << "Stored by users: " << r.user_bytes.size() << " users, "
      << Bytes(static_cast<double>(total)) << "\n\n";

  out << "What each party obtained\n";
  out << absl::StrFormat("  %-24s %7s %11s %7s %6s %5s %11s %9s\n", "actor",
                         "objects", "ciphertext", "wrapped", "DEKs", "KEKs",
                         "plaintext", "exposure");
  const std::map<std::string, double> metrics = r.Metrics();
  for (const auto& [actor, got] : r.actors) {
    const double exposure = metrics.at(Label("exposure_max", "actor", actor));
    out << absl::StrFormat(
        "  %-24s %7d %11s %7d %6d %5d %11s %8.1f%%\n", actor, got.objects,
        Bytes(static_cast<double>(got.ciphertext_bytes)), got.wrapped_keys,
        got.data_keys, got.keks,
        Bytes(static_cast<double>(got.plaintext_bytes)), 100 * exposure);
    for (const auto& [why, n] : got.refusals) {
      out << absl::StrFormat("      refused %d x by %s\n", n, why);
    }
  }
  if (r.actors.empty()) out << "  (no adversary acted)\n";
  out << "  exposure: the largest share of one user's data the party can "
         "read, checked byte for byte\n\n";

  out << "Operations\n";
  out << absl::StrFormat("  %-14s %7s %7s %9s %9s %9s %s\n", "op", "ok",
                         "errors", "p50 ms", "p95 ms", "p99 ms", "");
  for (const auto& [op, stats] : r.operations) {
    uint64_t errors = 0;
    std::string detail;
    for (const auto& [code, n] : stats.errors) {
      errors += n;
      absl::StrAppend(&detail, detail.empty() ? "" : ", ", code, " ", n);
    }
    out << absl::StrFormat("  %-14s %7d %7d %9.1f %9.1f %9.1f %s\n", op,
                           stats.ok, errors, Percentile(stats.latencies_ms, 50),
                           Percentile(stats.latencies_ms, 95),
                           Percentile(stats.latencies_ms, 99), detail);
  }
  for (const auto& [op, stats] : r.operations) {
    if (stats.first_error.empty()) continue;
    out << "  first " << op
        << " error: " << rpc::PrintableMessage(stats.first_error) << "\n";
  }
  if (r.wrong_plaintext > 0) {
    out << "  WRONG PLAINTEXT returned to users: " << r.wrong_plaintext << "\n";
  }
  out << "\n";
  if (!r.links.empty()) {
    out << "Links between jurisdictions\n";
    out << absl::StrFormat("  %-10s %7s %6s %11s %11s %11s\n", "link", "calls",
                           "lost", "partitioned", "requests", "responses");
    for (const auto& [link, f] : r.links) {
      // An init-capture: clang before 16 cannot capture a structured
      // binding.
      auto get = [&fields = f](const char* k) {
        auto it = fields.find(k);
        return it == fields.end() ? 0.0 : it->second;
      };
      out << absl::StrFormat("  %-10s %7.0f %6.0f %11.0f %11s %11s\n", link,
                             get("calls"), get("lost"), get("partitioned"),
                             Bytes(get("request_bytes")),
                             Bytes(get("response_bytes")));
    }
    out << "\n";
  }
  WriteTextDataFlow(r, out);
  WriteTextAudit(r, out);
  // Notes and findings may quote a peer's error message.
  for (const std::string& f : r.findings) {
    out << "FINDING: " << rpc::PrintableMessage(f) << "\n";
  }
  if (!r.findings.empty()) out << "\n";
  WriteTimelinesText(r, out);
  WriteTapsText(r, out);
  for (const std::string& note : r.notes) {
    out << "Note: " << rpc::PrintableMessage(note) << "\n";
  }
  if (!r.notes.empty()) out << "\n";

  int failed = 0;
  out << "Expectations\n";
  for (const ExpectationResult& e : r.expectations) {
    failed += !e.passed;
    out << "  [" << (e.passed ? "pass" : "FAIL") << "] "
        << rpc::Printable(e.expectation.name()) << ": "
        << rpc::Printable(e.expectation.metric()) << " "
        << ExpectationOpSymbol(e.expectation.op()) << " "
        << Number(e.expectation.value());
    if (e.found) {
      out << " (actual " << Number(e.actual) << ")\n";
    } else {
      out << " (no such metric in this run)\n";
    }
  }
  out << (failed == 0 ? "All expectations met.\n"
                      : absl::StrCat(failed, " expectation(s) failed.\n"));
}

void WriteJsonReport(const Report& r, std::ostream& out) {
  out << "{\n  \"scenario\": " << JsonQuote(r.scenario)
      << ",\n  \"title\": " << JsonQuote(r.title) << ",\n  \"seed\": " << r.seed
      << ",\n  \"seconds\": " << Number(r.seconds) << ",\n  \"metrics\": {";
  bool first = true;
  for (const auto& [name, value] : r.Metrics()) {
    out << (first ? "\n" : ",\n") << "    " << JsonQuote(name) << ": "
        << Number(value);
    first = false;
  }
  out << "\n  },\n  \"refusals\": {";
  first = true;
  for (const auto& [actor, got] : r.actors) {
    for (const auto& [why, n] : got.refusals) {
      out << (first ? "\n" : ",\n") << "    " << JsonQuote(actor + " <- " + why)
          << ": " << n;
      first = false;
    }
  }
  out << "\n  },\n  \"notes\": [";
  first = true;
  for (const std::string& note : r.notes) {
    out << (first ? "\n" : ",\n") << "    " << JsonQuote(note);
    first = false;
  }
  out << "\n  ],\n";
  WriteJsonAudit(r, out);
  out << "  ";
  WriteTrafficJson(r, out);
  out << ",\n  \"expectations\": [";
  first = true;
  for (const ExpectationResult& e : r.expectations) {
    out << (first ? "\n" : ",\n")
        << "    {\"name\": " << JsonQuote(e.expectation.name())
        << ", \"metric\": " << JsonQuote(e.expectation.metric())
        << ", \"op\": " << JsonQuote(ExpectationOpSymbol(e.expectation.op()))
        << ", \"value\": " << Number(e.expectation.value())
        << ", \"actual\": " << (e.found ? Number(e.actual) : "null")
        << ", \"passed\": " << (e.passed ? "true" : "false") << "}";
    first = false;
  }
  out << "\n  ]\n}\n";
}

}  // namespace residency::sim
