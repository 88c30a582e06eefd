#include "sim/compare.h"

#include <algorithm>
#include <cmath>
#include <map>
#include <set>

#include "absl/strings/ascii.h"
#include "absl/strings/match.h"
#include "absl/strings/str_cat.h"
#include "absl/strings/str_format.h"
#include "absl/strings/str_join.h"
#include "rpc/printable.h"
#include "sim/report_markup.h"

namespace residency::sim {
namespace {

std::string Lower(const std::string& s) { return absl::AsciiStrToLower(s); }

std::string EnumSuffix(std::string name, absl::string_view prefix) {
  if (absl::StartsWith(name, prefix)) name = name.substr(prefix.size());
  return Lower(name);
}

int GroupOf(const std::string& metric) {
  auto starts = [&](absl::string_view p) {
    return absl::StartsWith(metric, p);
  };
  if (starts("exposure") || starts("plaintext_bytes")) return 0;
  if (starts("keks") || starts("data_keys") || starts("wrapped_keys")) return 1;
  if (starts("objects") || starts("ciphertext_bytes") || starts("refusals")) {
    return 2;
  }
  if (starts("audit_")) return 3;
  if (absl::StrContains(metric, "_ms{")) return 6;
  if (starts("link_")) return 5;
  return 4;
}

bool Same(double a, double b) {
  return std::fabs(a - b) <= 1e-9 * std::max({1.0, std::fabs(a), std::fabs(b)});
}

// The rules of a key service's policy that let anyone but the keys' owners
// use or take keys: ALLOW rules for unwrap or export_key (or for every
// operation) that are not restricted to the owner.
std::string RulesForOthers(const residency::v1::KeyServiceSpec& ks) {
  std::vector<std::string> rules;
  for (const auto& rule : ks.policy().rules()) {
    if (rule.effect() != residency::v1::Policy::Rule::ALLOW ||
        rule.caller_is_owner()) {
      continue;
    }
    std::vector<std::string> ops;
    bool keys = rule.operations().empty();
    for (int op : rule.operations()) {
      if (op == residency::v1::OPERATION_UNWRAP ||
          op == residency::v1::OPERATION_EXPORT_KEY) {
        keys = true;
        ops.push_back(EnumSuffix(residency::v1::Operation_Name(
                                     static_cast<residency::v1::Operation>(op)),
                                 "OPERATION_"));
      }
    }
    if (!keys) continue;
    std::vector<std::string> who;
    for (const std::string& p : rule.principals()) {
      who.push_back(absl::StartsWith(p, "residency://") ? p.substr(12) : p);
    }
    std::string text = absl::StrCat(
        rule.name(), " (", who.empty() ? "anyone" : absl::StrJoin(who, ", "),
        ": ", ops.empty() ? "every operation" : absl::StrJoin(ops, ", "));
    if (!rule.legal_process_jurisdictions().empty()) {
      absl::StrAppend(&text, "; legal process of ",
                      absl::StrJoin(rule.legal_process_jurisdictions(), ", "));
    } else if (!rule.justifications().empty()) {
      std::vector<std::string> reasons;
      for (int j : rule.justifications()) {
        reasons.push_back(residency::v1::Justification::Reason_Name(
            static_cast<residency::v1::Justification::Reason>(j)));
      }
      absl::StrAppend(&text, "; ", absl::StrJoin(reasons, ", "));
    } else {
      absl::StrAppend(&text, "; any justification");
    }
    rules.push_back(absl::StrCat(ks.name(), ": ", text, ")"));
  }
  return rules.empty() ? absl::StrCat(ks.name(), ": none")
                       : absl::StrJoin(rules, "; ");
}

std::vector<Comparison::Aspect> Aspects(const Report& r) {
  std::vector<Comparison::Aspect> aspects;
  auto add = [&](const std::string& name, const std::string& value) {
    aspects.push_back({name, value, ""});
  };
  std::vector<std::string> ks, rules, nodes, links;
  for (const auto& k : r.world.key_services()) {
    ks.push_back(absl::StrCat(k.name(), " (", k.jurisdiction(), ")"));
    rules.push_back(RulesForOthers(k));
  }
  for (const auto& n : r.world.storage_nodes()) {
    nodes.push_back(absl::StrCat(
        n.name(), " (", n.jurisdiction(), ", operator/", n.operator_(),
        n.keeps_plaintext() ? ", keeps plaintext" : "", ")"));
  }
  for (const auto& l : r.world.links()) {
    links.push_back(absl::StrFormat(
        "%s-%s %d ms +-%d, loss %.3g, %d partition(s)", l.a(), l.b(),
        l.latency_ms(), l.jitter_ms(), l.loss(), l.partitions_size()));
  }
  add("key services", absl::StrJoin(ks, ", "));
  add("custody mode",
      EnumSuffix(residency::v1::CustodyMode_Name(r.population.custody_mode()),
                 "CUSTODY_MODE_"));
  add("users' key services", absl::StrJoin(r.population.key_services(), ", "));
  add("rules for others than owners", absl::StrJoin(rules, "; "));
  add("storage nodes", absl::StrJoin(nodes, ", "));
  add("links", links.empty() ? "none (perfect)" : absl::StrJoin(links, "; "));
  add("population",
      absl::StrFormat("%d users in %s, %d objects each, %d-%d bytes, seed %d",
                      r.population.users(), r.population.jurisdiction(),
                      r.population.objects_per_user(), r.population.min_bytes(),
                      r.population.max_bytes(), r.seed));
  return aspects;
}

// How each key service answered `authority` in `r`, one line per service.
std::vector<std::string> Answers(const Report& r,
                                 const std::string& authority) {
  std::vector<std::string> lines;
  for (const auto& [ks, f] : r.audit_logs) {
    auto third = f.third_party.find(authority);
    if (third == f.third_party.end()) continue;
    std::vector<std::string> parts;
    for (const auto& [decision, rules] : third->second) {
      for (const auto& [rule, n] : rules) {
        parts.push_back(
            absl::StrCat(decision == "ALLOW" ? "ALLOWED " : "DENIED ", n,
                         " (rule ", rule, ")"));
      }
    }
    std::vector<std::string> granted;
    auto ops = f.operations.find(authority);
    if (ops != f.operations.end()) {
      for (const auto& [op, outcomes] : ops->second) {
        auto g = outcomes.find("granted");
        if (g != outcomes.end())
          granted.push_back(absl::StrCat(op, " ", g->second));
      }
    }
    lines.push_back(absl::StrCat(
        ks, " (", f.jurisdiction, ") ", absl::StrJoin(parts, ", "),
        granted.empty()
            ? "; nothing granted"
            : absl::StrCat("; granted ", absl::StrJoin(granted, ", "))));
  }
  if (lines.empty()) lines.push_back("no key service was asked");
  return lines;
}

std::string Value(const std::optional<double>& v) {
  if (!v.has_value()) return "-";
  const double x = *v;
  if (std::isfinite(x) && x == std::floor(x) && std::fabs(x) < 1e15) {
    return absl::StrFormat("%.0f", x);
  }
  return absl::StrFormat("%.4g", x);
}

std::string Passed(const Report& r) {
  int failed = 0;
  for (const ExpectationResult& e : r.expectations) failed += !e.passed;
  return failed == 0
             ? absl::StrCat("all ", r.expectations.size(), " expectations met")
             : absl::StrCat(failed, " of ", r.expectations.size(),
                            " expectations FAILED");
}

std::string JsonValue(const std::optional<double>& v) {
  if (!v.has_value() || !std::isfinite(*v)) return "null";
  return Value(v);
}

}  // namespace

const std::vector<std::string>& Comparison::Groups() {
  static const auto* groups =
      new std::vector<std::string>{"exposure",
                                   "keys",
                                   "holdings and refusals",
                                   "audit logs",
                                   "operations and data",
                                   "links",
                                   "timing (varies from run to run)"};
  return *groups;
}

Comparison Compare(const Report& a, const Report& b) {
  Comparison c;
  c.a = &a;
  c.b = &b;
  const std::vector<Comparison::Aspect> wa = Aspects(a), wb = Aspects(b);
  for (size_t i = 0; i < wa.size(); ++i) {
    if (wa[i].a == wb[i].a) {
      c.unchanged.push_back(wa[i].name);
    } else {
      c.changed.push_back({wa[i].name, wa[i].a, wb[i].a});
    }
  }

  const std::map<std::string, double> ma = a.Metrics(), mb = b.Metrics();
  std::set<std::string> names;
  for (const auto& [name, v] : ma) names.insert(name);
  for (const auto& [name, v] : mb) names.insert(name);
  for (const std::string& name : names) {
    Comparison::Row row;
    row.metric = name;
    if (auto it = ma.find(name); it != ma.end()) row.a = it->second;
    if (auto it = mb.find(name); it != mb.end()) row.b = it->second;
    if (row.a.has_value() && row.b.has_value() && Same(*row.a, *row.b))
      continue;
    row.group = GroupOf(name);
    c.rows.push_back(std::move(row));
  }
  std::stable_sort(c.rows.begin(), c.rows.end(),
                   [](const Comparison::Row& x, const Comparison::Row& y) {
                     return x.group < y.group;
                   });

  std::set<std::string> authorities;
  for (const Report* r : {&a, &b}) {
    for (const auto& [actor, got] : r->actors) {
      if (absl::StartsWith(actor, "authority/")) authorities.insert(actor);
    }
  }
  for (const std::string& authority : authorities) {
    const std::string key = absl::StrCat("exposure_max{actor=", authority, "}");
    auto ea = ma.find(key), eb = mb.find(key);
    auto pct = [](const std::map<std::string, double>::const_iterator& it,
                  const std::map<std::string, double>& m) {
      return it == m.end() ? std::string("(not acting)")
                           : absl::StrFormat("%.0f%%", 100 * it->second);
    };
    c.why.push_back(absl::StrCat(authority,
                                 ": largest share of a user's data "
                                 "it reads ",
                                 pct(ea, ma), " in ", a.scenario, ", ",
                                 pct(eb, mb), " in ", b.scenario));
    for (const std::string& line : Answers(a, authority)) {
      c.why.push_back(absl::StrCat("  ", a.scenario, ": ", line));
    }
    for (const std::string& line : Answers(b, authority)) {
      c.why.push_back(absl::StrCat("  ", b.scenario, ": ", line));
    }
  }
  return c;
}

void WriteTextComparison(const Comparison& c, std::ostream& out) {
  const Report& a = *c.a;
  const Report& b = *c.b;
  out << "== residency comparison: " << a.scenario << " vs " << b.scenario
      << " ==\n";
  out << "A: " << a.scenario << ": " << rpc::Printable(a.title) << "\n   ("
      << Passed(a) << ")\n";
  out << "B: " << b.scenario << ": " << rpc::Printable(b.title) << "\n   ("
      << Passed(b) << ")\n\n";

  out << "What changed in the world\n";
  for (const Comparison::Aspect& x : c.changed) {
    // The values quote rule names and principals from the scenarios.
    out << "  " << x.name << "\n    A: " << rpc::PrintableMessage(x.a)
        << "\n    B: " << rpc::PrintableMessage(x.b) << "\n";
  }
  if (c.changed.empty()) out << "  nothing\n";
  if (!c.unchanged.empty()) {
    out << "  unchanged: " << absl::StrJoin(c.unchanged, ", ") << "\n";
  }
  out << "\n";

  if (!c.why.empty()) {
    out << "Why exposure changed: how each key service answered each "
           "authority (from its audit log)\n";
    // The lines quote rule names from the audit logs.
    for (const std::string& line : c.why) {
      out << "  " << rpc::PrintableMessage(line) << "\n";
    }
    out << "\n";
  }

  out << "Metrics that differ (" << c.rows.size() << ")\n";
  int group = -1;
  for (const Comparison::Row& row : c.rows) {
    if (row.group != group) {
      group = row.group;
      out << "  " << Comparison::Groups()[group] << "\n";
      out << absl::StrFormat("    %16s %16s  %s\n", a.scenario.substr(0, 16),
                             b.scenario.substr(0, 16), "metric");
    }
    // A label may hold a rule name from an audit log.
    out << absl::StrFormat("    %16s %16s  %s\n", Value(row.a), Value(row.b),
                           rpc::Printable(row.metric));
  }
  if (c.rows.empty()) out << "  none\n";
}

void WriteJsonComparison(const Comparison& c, std::ostream& out) {
  auto side = [&](const Report& r) {
    bool passed = true;
    for (const ExpectationResult& e : r.expectations)
      passed = passed && e.passed;
    return absl::StrCat("{\"scenario\": ", JsonQuote(r.scenario),
                        ", \"title\": ", JsonQuote(r.title),
                        ", \"seed\": ", r.seed,
                        ", \"passed\": ", passed ? "true" : "false", "}");
  };
  out << "{\n  \"a\": " << side(*c.a) << ",\n  \"b\": " << side(*c.b)
      << ",\n  \"world_changes\": [";
  for (size_t i = 0; i < c.changed.size(); ++i) {
    out << (i ? ",\n" : "\n")
        << "    {\"aspect\": " << JsonQuote(c.changed[i].name)
        << ", \"a\": " << JsonQuote(c.changed[i].a)
        << ", \"b\": " << JsonQuote(c.changed[i].b) << "}";
  }
  out << "\n  ],\n  \"unchanged\": [";
  for (size_t i = 0; i < c.unchanged.size(); ++i) {
    out << (i ? ", " : "") << JsonQuote(c.unchanged[i]);
  }
  out << "],\n  \"why\": [";
  for (size_t i = 0; i < c.why.size(); ++i) {
    out << (i ? ",\n" : "\n") << "    " << JsonQuote(c.why[i]);
  }
  out << "\n  ],\n  \"metrics\": [";
  for (size_t i = 0; i < c.rows.size(); ++i) {
    const Comparison::Row& row = c.rows[i];
    out << (i ? ",\n" : "\n") << "    {\"name\": " << JsonQuote(row.metric)
        << ", \"group\": " << JsonQuote(Comparison::Groups()[row.group])
        << ", \"a\": " << JsonValue(row.a) << ", \"b\": " << JsonValue(row.b)
        << "}";
  }
  out << "\n  ]\n}\n";
}

void WriteMarkdownComparison(const Comparison& c, std::ostream& out) {
  const Report& a = *c.a;
  const Report& b = *c.b;
  out << "## residency comparison: " << MarkdownEscape(a.scenario) << " vs "
      << MarkdownEscape(b.scenario) << "\n\n"
      << "- A: **" << MarkdownEscape(a.scenario)
      << "**: " << MarkdownEscape(a.title) << " (" << Passed(a) << ")\n"
      << "- B: **" << MarkdownEscape(b.scenario)
      << "**: " << MarkdownEscape(b.title) << " (" << Passed(b) << ")\n\n";
  out << "### What changed in the world\n\n| aspect | A | B |\n|---|---|---|\n";
  for (const Comparison::Aspect& x : c.changed) {
    out << "| " << MarkdownEscape(x.name) << " | " << MarkdownEscape(x.a)
        << " | " << MarkdownEscape(x.b) << " |\n";
  }
  out << "\nUnchanged: " << MarkdownEscape(absl::StrJoin(c.unchanged, ", "))
      << "\n\n### Why exposure changed\n\n";
  for (const std::string& line : c.why) {
    out << (absl::StartsWith(line, "  ") ? "  - " : "- ")
        << MarkdownEscape(absl::StripLeadingAsciiWhitespace(line)) << "\n";
  }
  out << "\n### Metrics that differ\n\n| group | metric | "
      << MarkdownEscape(a.scenario) << " | " << MarkdownEscape(b.scenario)
      << " |\n|---|---|---:|---:|\n";
  for (const Comparison::Row& row : c.rows) {
    out << "| " << MarkdownEscape(Comparison::Groups()[row.group]) << " | "
        << MarkdownEscape(row.metric) << " | " << Value(row.a) << " | "
        << Value(row.b) << " |\n";
  }
  out << "\n";
}

void WriteHtmlComparison(const Comparison& c, std::ostream& out) {
  const Report& a = *c.a;
  const Report& b = *c.b;
  out << "<!DOCTYPE html>\n<html lang=\"en\">\n<head>\n<meta "
         "charset=\"utf-8\">\n"
      << "<title>residency: " << HtmlEscape(a.scenario) << " vs "
      << HtmlEscape(b.scenario) << "</title>\n<style>"
      << "body{font:14px/1.45 system-ui,sans-serif;max-width:1200px;margin:2em "
         "auto;padding:0 1em}table{border-collapse:collapse}th,td{border:1px "
         "solid #ddd;padding:3px 8px;text-align:left;vertical-align:top}"
         "th{background:#f4f4f4}td.n{text-align:right}tr.g "
         "td{background:#fafafa;"
         "font-weight:600}.flows{display:flex;gap:1em;flex-wrap:wrap}"
         ".flows>div{flex:1 1 480px}svg{max-width:100%;height:auto}"
      << "</style>\n</head>\n<body>\n<h1>" << HtmlEscape(a.scenario) << " vs "
      << HtmlEscape(b.scenario) << "</h1>\n<ul><li>A: <strong>"
      << HtmlEscape(a.scenario) << "</strong>: " << HtmlEscape(a.title) << " ("
      << HtmlEscape(Passed(a)) << ")</li><li>B: <strong>"
      << HtmlEscape(b.scenario) << "</strong>: " << HtmlEscape(b.title) << " ("
      << HtmlEscape(Passed(b)) << ")</li></ul>\n";
  out << "<h2>What changed in the world</h2>\n<table><tr><th>aspect</th><th>A"
         "</th><th>B</th></tr>\n";
  for (const Comparison::Aspect& x : c.changed) {
    out << "<tr><td>" << HtmlEscape(x.name) << "</td><td>" << HtmlEscape(x.a)
        << "</td><td>" << HtmlEscape(x.b) << "</td></tr>\n";
  }
  out << "</table>\n<p>Unchanged: "
      << HtmlEscape(absl::StrJoin(c.unchanged, ", ")) << "</p>\n";
  out << "<h2>Why exposure changed</h2>\n<ul>\n";
  for (const std::string& line : c.why) {
    out << "<li"
        << (absl::StartsWith(line, "  ") ? " style=\"margin-left:2em\"" : "")
        << ">" << HtmlEscape(absl::StripLeadingAsciiWhitespace(line))
        << "</li>\n";
  }
  out << "</ul>\n<h2>Data flows</h2>\n<div class=\"flows\"><div><h3>A: "
      << HtmlEscape(a.scenario) << "</h3>" << DataFlowSvg(BuildDataFlow(a))
      << "</div><div><h3>B: " << HtmlEscape(b.scenario) << "</h3>"
      << DataFlowSvg(BuildDataFlow(b)) << "</div></div>\n";
  out << "<h2>Metrics that differ</h2>\n<table><tr><th>metric</th><th>"
      << HtmlEscape(a.scenario) << "</th><th>" << HtmlEscape(b.scenario)
      << "</th></tr>\n";
  int group = -1;
  for (const Comparison::Row& row : c.rows) {
    if (row.group != group) {
      group = row.group;
      out << "<tr class=\"g\"><td colspan=\"3\">"
          << HtmlEscape(Comparison::Groups()[group]) << "</td></tr>\n";
    }
    out << "<tr><td>" << HtmlEscape(row.metric) << "</td><td class=\"n\">"
        << Value(row.a) << "</td><td class=\"n\">" << Value(row.b)
        << "</td></tr>\n";
  }
  out << "</table>\n</body>\n</html>\n";
}

}  // namespace residency::sim
