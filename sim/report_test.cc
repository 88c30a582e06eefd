// Report formats (HTML, Markdown), the audit-log findings of real runs, and
// --compare. Built-ins run once per test binary; their reports are shared.
#include "sim/report.h"

#include <rocksdb/db.h>
#include <stdlib.h>

#include <filesystem>
#include <map>
#include <memory>
#include <sstream>
#include <string>

#include "absl/strings/match.h"
#include "gmock/gmock.h"
#include "gtest/gtest.h"
#include "rpc/printable.h"
#include "sim/audit_trail.h"
#include "sim/compare.h"
#include "sim/data_flow.h"
#include "sim/engine.h"
#include "sim/report_markup.h"
#include "sim/scenario.h"
#include "tests/status_matchers.h"
#include "tests/temp_dir.h"

namespace residency::sim {
namespace {

using ::residency::testing::TempDir;

using ::testing::AllOf;
using ::testing::Contains;
using ::testing::HasSubstr;
using ::testing::Not;
using ::testing::StartsWith;

double MetricOr(const Report& r, const std::string& name, double missing) {
  const std::map<std::string, double> m = r.Metrics();
  auto it = m.find(name);
  return it == m.end() ? missing : it->second;
}

uint64_t RefusalsBy(const Report& r, const std::string& actor,
                    const std::string& by) {
  uint64_t n = 0;
  auto it = r.actors.find(actor);
  if (it == r.actors.end()) return 0;
  for (const auto& [why, count] : it->second.refusals) {
    if (absl::StartsWith(why, by + ":")) n += count;
  }
  return n;
}

// A report made by hand, with hostile strings where a scenario file could
// put them.
Report HostileReport() {
  Report r;
  r.scenario = "evil<scenario>";
  r.title = "<script>alert(1)</script>";
  r.description = "desc with <img src=x onerror=alert(2)> & \"quotes\"";
  r.models.push_back("models <b>bold</b>");
  r.notes.push_back("note <iframe>");
  r.world.add_jurisdictions("CN");
  r.world.add_jurisdictions("US");
  auto* node = r.world.add_storage_nodes();
  node->set_name("cn-node");
  node->set_jurisdiction("CN");
  node->set_operator_("cn-telecom");
  auto* ks = r.world.add_key_services();
  ks->set_name("us-custodian");
  ks->set_jurisdiction("US");
  r.population.set_jurisdiction("CN");
  r.population.add_key_services("us-custodian");
  r.population.set_custody_mode(v1::CUSTODY_MODE_CUSTODIAN);
  r.user_bytes["user-1"] = 1000;
  r.actors["operator/cn-telecom"].objects = 3;
  r.actors["operator/cn-telecom"].ciphertext_bytes = 1100;
  r.actors["operator/cn-telecom"].wrapped_keys = 3;
  Obtained& cn = r.actors["authority/cn"];
  cn.objects = 3;
  cn.ciphertext_bytes = 1100;
  cn.wrapped_keys = 3;
  cn.data_keys = 3;
  cn.plaintext_bytes = 1000;
  r.exposed["authority/cn"]["user-1"] = 1000;
  AuditLogFindings& f = r.audit_logs["us-custodian"];
  f.jurisdiction = "US";
  f.entries = 10;
  f.verified = true;
  f.verification = "OK <verified>";
  f.read_by = "ReadAuditLog";
  f.operations["authority/cn"]["unwrap"]["granted"] = 3;
  f.third_party["authority/cn"]["ALLOW"]["rule<x>"] = 3;
  f.foreign_allowed = 3;
  r.audit["us-custodian"]["ALLOW"]["authority/cn"] = 3;
  r.findings.push_back("finding <script>x</script>");
  r.operations["put"].ok = 2;
  r.operations["put"].latencies_ms = {1.5, 2.5};
  v1::Scenario s;
  auto* e = s.add_expectations();
  e->set_name("<script>expectation</script>");
  e->set_metric("plaintext_bytes{actor=authority/cn}");
  e->set_op(v1::Expectation::EQ);
  r.Check(s.expectations());
  return r;
}

TEST(ReportFormatTest, HtmlEscapesScenarioStringsAndIsSelfContained) {
  std::ostringstream html;
  WriteHtmlReport(HostileReport(), html);
  const std::string out = html.str();
  EXPECT_THAT(out, HasSubstr("&lt;script&gt;alert(1)&lt;/script&gt;"));
  EXPECT_THAT(out, HasSubstr("evil&lt;scenario&gt;"));
  EXPECT_THAT(out, HasSubstr("&lt;img src=x onerror=alert(2)&gt; &amp; "
                             "&quot;quotes&quot;"));
  EXPECT_THAT(out, HasSubstr("rule&lt;x&gt;"));
  // Nothing from the scenario comes out as markup, and nothing is loaded
  // from elsewhere.
  EXPECT_THAT(out, Not(HasSubstr("<script")));
  EXPECT_THAT(out, Not(HasSubstr("<img")));
  EXPECT_THAT(out, Not(HasSubstr("<iframe")));
  EXPECT_THAT(out, Not(HasSubstr("<b>")));
  EXPECT_THAT(out, Not(HasSubstr("<link")));
  EXPECT_THAT(out, Not(HasSubstr("src=\"")));
  EXPECT_THAT(out, StartsWith("<!DOCTYPE html>"));
  // The data-flow diagram and the latency chart are inline SVG.
  EXPECT_THAT(out, HasSubstr("<svg xmlns=\"http://www.w3.org/2000/svg\" "
                             "class=\"flow\""));
  EXPECT_THAT(out, HasSubstr("class=\"chart\""));
  // Keys reached the authority across the border: a red arrow.
  EXPECT_THAT(out, HasSubstr("marker-end=\"url(#arr-red)\""));
}

TEST(ReportFormatTest, HtmlAndMarkdownEscapeControlCharacters) {
  // A report saved as a file is read with cat and less as well.
  EXPECT_EQ(HtmlEscape("a\x1b[2J<b>\xe2\x80\xae"),
            "a\\x1b[2J&lt;b&gt;\\xe2\\x80\\xae");
  EXPECT_EQ(MarkdownEscape("a\x1b[2J|b\nc"), "a\\\\x1b\\[2J\\|b c");
  // One line each: breaks and tabs become spaces, in HTML as in Markdown.
  EXPECT_EQ(HtmlEscape("a\nb\r\tc"), "a b  c");
  EXPECT_THAT(MermaidEscape("rule\x1b[1m\xe2\x80\xae\n"),
              AllOf(HasSubstr("rule\\x1b"), HasSubstr("\\xe2\\x80\\xae"),
                    Not(HasSubstr("\x1b")), Not(HasSubstr("\n"))));
  Report r = HostileReport();
  r.notes.push_back("node said \x1b]0;title\x07");
  std::ostringstream html, markdown;
  WriteHtmlReport(r, html);
  WriteMarkdownReport(r, markdown);
  EXPECT_THAT(html.str(), Not(HasSubstr("\x1b")));
  EXPECT_THAT(markdown.str(), Not(HasSubstr("\x1b")));
}

TEST(ReportFormatTest, DataFlowShowsKeysCrossingToTheAuthorityInRed) {
  const DataFlow flow = BuildDataFlow(HostileReport());
  EXPECT_EQ(flow.jurisdictions, (std::vector<std::string>{"CN", "US"}));
  const FlowEdge* keys = nullptr;
  const FlowEdge* stored = nullptr;
  for (const FlowEdge& e : flow.edges) {
    if (e.from == "ks_us_custodian" && e.to == "auth_cn") keys = &e;
    if (e.from == "users" && e.to == "sn_cn_node") stored = &e;
  }
  ASSERT_NE(keys, nullptr);
  EXPECT_TRUE(keys->red);
  EXPECT_TRUE(keys->crosses);
  EXPECT_THAT(keys->label, HasSubstr("3 data keys (rule rule<x>)"));
  ASSERT_NE(stored, nullptr);
  EXPECT_FALSE(stored->red);
  EXPECT_FALSE(stored->crosses);
  EXPECT_THAT(stored->label, HasSubstr("3 wrapped keys"));
  const FlowNode* authority = flow.Node("auth_cn");
  ASSERT_NE(authority, nullptr);
  EXPECT_TRUE(authority->exposed);
}

TEST(ReportFormatTest, MarkdownHasAMermaidFlowchartAndEscapes) {
  std::ostringstream md;
  WriteMarkdownReport(HostileReport(), md);
  const std::string out = md.str();
  EXPECT_THAT(out, HasSubstr("```mermaid\nflowchart LR\n"));
  EXPECT_THAT(out, HasSubstr("subgraph j0[\"CN (trust boundary)\"]"));
  // The keys to the authority: a thick arrow, styled red.
  EXPECT_THAT(out, HasSubstr("ks_us_custodian ==>|"));
  EXPECT_THAT(out, HasSubstr("linkStyle"));
  EXPECT_THAT(out, HasSubstr("rule#lt;x#gt;"));
  EXPECT_THAT(out, HasSubstr("&lt;script&gt;alert(1)&lt;/script&gt;"));
  EXPECT_THAT(out, Not(HasSubstr("<script")));
  EXPECT_THAT(out, HasSubstr("> **Finding:**"));
}

TEST(ReportFormatTest, TextNamesTheFirstErrorOfEachOperation) {
  Report r;
  r.operations["put"].ok = 8;
  r.operations["put"].errors["UNAVAILABLE"] = 4;
  r.operations["put"].first_error =
      "UNAVAILABLE: connection 'refused'\r\n\x1b[2J";
  r.operations["get"].ok = 12;
  std::ostringstream text;
  WriteTextReport(r, text);
  // From a peer: control characters escaped, quotes kept.
  EXPECT_THAT(text.str(),
              HasSubstr("first put error: UNAVAILABLE: connection 'refused'"
                        "\\x0d\\x0a\\x1b[2J\n"));
  EXPECT_THAT(text.str(), Not(HasSubstr("first get error")));
}

TEST(ReportFormatTest, TextEscapesControlCharactersFromPeersAndScenarioFiles) {
  Report r;
  r.notes.push_back("node said 'no'\n\x1b[2JAll expectations met.");
  r.findings.push_back("key service said \r\x1b[Kfine");
  AuditLogFindings& f = r.audit_logs["us-custodian"];
  f.verification = "stream failed: \x1b[1A";
  // From a scenario file, which may come from anywhere.
  r.title = "A title\x1b]0;pwned\x07";
  r.models.push_back("model\x1b[31m");
  ExpectationResult e;
  e.expectation.set_name("name\x1b[1A");
  e.expectation.set_metric("metric\x9b");
  r.expectations.push_back(e);
  // A value quoted with Printable when the note was written: escaped once.
  r.notes.push_back("key '" + rpc::Printable("k\x1b") + "' refused");
  r.operations["get"].first_error =
      "NOT_FOUND: object '" + rpc::Printable("o\x07") + "'";
  // From the audit logs.
  r.audit["us-custodian"]["ALLOW"]["authority/\x1b[8m"] = 1;
  f.third_party["authority/cn\x1b[1m"]["DENY"]["rule\x1b[0m"] = 2;
  std::ostringstream text;
  WriteTextReport(r, text);
  EXPECT_THAT(text.str(),
              HasSubstr("Note: node said 'no'\\x0a\\x1b[2JAll expectations "
                        "met.\n"));
  EXPECT_THAT(text.str(),
              HasSubstr("FINDING: key service said \\x0d\\x1b[Kfine\n"));
  EXPECT_THAT(text.str(), HasSubstr("    stream failed: \\x1b[1A\n"));
  EXPECT_THAT(text.str(), HasSubstr("\nA title\\x1b]0;pwned\\x07\n"));
  EXPECT_THAT(text.str(), HasSubstr("  models: model\\x1b[31m\n"));
  EXPECT_THAT(text.str(), HasSubstr("] name\\x1b[1A: metric\\x9b "));
  EXPECT_THAT(text.str(), HasSubstr("Note: key 'k\\x1b' refused\n"));
  EXPECT_THAT(text.str(),
              HasSubstr("first get error: NOT_FOUND: object 'o\\x07'\n"));
  EXPECT_THAT(text.str(), HasSubstr("    authority/\\x1b[8m "));
  EXPECT_THAT(text.str(), HasSubstr("DENIED authority/cn\\x1b[1m 2 request(s), "
                                    "rule \"rule\\x1b[0m\"\n"));
  EXPECT_THAT(text.str(), Not(HasSubstr("\x1b")));
}

TEST(ReportFormatTest, TextComparisonEscapesTitlesAndAuditRuleNames) {
  Report a, b;
  a.scenario = "a";
  b.scenario = "b";
  a.title = "A\x1b]0;x\x07";
  b.title = "B\xc2\x9b";
  a.actors["authority/cn"];
  a.audit_logs["ks"].third_party["authority/cn"]["DENY"]["rule\x1b[1m"] = 1;
  const Comparison c = Compare(a, b);
  std::ostringstream text;
  WriteTextComparison(c, text);
  EXPECT_THAT(text.str(), HasSubstr("A: a: A\\x1b]0;x\\x07\n"));
  EXPECT_THAT(text.str(), HasSubstr("B: b: B\\xc2\\x9b\n"));
  EXPECT_THAT(text.str(), HasSubstr("(rule rule\\x1b[1m)"));
  EXPECT_THAT(text.str(),
              HasSubstr("principal=authority/cn,rule=rule\\x1b[1m}"));
  EXPECT_THAT(text.str(), Not(HasSubstr("\x1b")));
}

class ReportRunsTest : public ::testing::Test {
 protected:
  static void SetUpTestSuite() {
    temp_ = new TempDir;
    reports_ = new std::map<std::string, Report>();
    ASSERT_OK(temp_->Make("report_test").status());
    dir_ = &temp_->path();
  }
  static void TearDownTestSuite() {
    delete temp_;
    delete reports_;
  }

  static absl::StatusOr<Report> Run(const v1::Scenario& scenario,
                                    RunOptions options = {}) {
    options.work_dir = *dir_ + "/" + std::to_string(runs_++);
    std::filesystem::create_directories(options.work_dir);
    return RunScenario(scenario, options);
  }

  // The built-in's report, run once per binary.
  static const Report& Builtin(const std::string& name) {
    auto it = reports_->find(name);
    if (it != reports_->end()) return it->second;
    absl::StatusOr<v1::Scenario> scenario = LoadBuiltinScenario(name);
    EXPECT_TRUE(scenario.ok()) << scenario.status();
    absl::StatusOr<Report> report =
        scenario.ok() ? Run(*scenario)
                      : absl::StatusOr<Report>(scenario.status());
    EXPECT_TRUE(report.ok()) << report.status();
    return reports_->emplace(name, report.ok() ? *report : Report())
        .first->second;
  }

  static TempDir* temp_;
  static const std::string* dir_;
  static std::map<std::string, Report>* reports_;
  static int runs_;
};

TempDir* ReportRunsTest::temp_ = nullptr;
const std::string* ReportRunsTest::dir_ = nullptr;
std::map<std::string, Report>* ReportRunsTest::reports_ = nullptr;
int ReportRunsTest::runs_ = 0;

TEST_F(ReportRunsTest, GovRequestAuditCountsTheRefusedAuthority) {
  const Report& r = Builtin("gov_request");
  const uint64_t refused =
      RefusalsBy(r, "authority/cn", "service/us-custodian");
  ASSERT_GT(refused, 0u);
  // Every refusal the authority met is a DENY in the custodian's log, by the
  // implicit rule; nothing of the authority's was allowed.
  EXPECT_EQ(MetricOr(r,
                     "audit_entries{key_service=us-custodian,decision=DENY,"
                     "principal=authority/cn}",
                     -1),
            static_cast<double>(refused));
  EXPECT_EQ(MetricOr(r,
                     "audit_third_party{key_service=us-custodian,decision="
                     "DENY,principal=authority/cn,rule=default-deny}",
                     -1),
            static_cast<double>(refused));
  EXPECT_EQ(MetricOr(r,
                     "audit_entries{key_service=us-custodian,decision=ALLOW,"
                     "principal=authority/cn}",
                     0),
            0);
  EXPECT_EQ(MetricOr(r, "audit_foreign_allowed{key_service=us-custodian}", -1),
            0);
  EXPECT_EQ(MetricOr(r, "audit_log_verified{key_service=us-custodian}", -1), 1);
  // The auditor's own read is in the log it read.
  EXPECT_EQ(MetricOr(r,
                     "audit_entries{key_service=us-custodian,decision=ALLOW,"
                     "principal=operator/auditor}",
                     -1),
            1);
  // Users' own requests: every put generated a data key.
  EXPECT_GE(MetricOr(r,
                     "audit_entries{key_service=us-custodian,decision=ALLOW,"
                     "principal=user/user-1}",
                     -1),
            8);
  const AuditLogFindings& f = r.audit_logs.at("us-custodian");
  EXPECT_THAT(f.read_by, StartsWith("ReadAuditLog as operator/auditor"));
  EXPECT_THAT(f.verification, StartsWith("OK: "));
  EXPECT_EQ(MetricOr(r, "audit_entries{key_service=us-custodian}", -1),
            static_cast<double>(f.entries));
  EXPECT_TRUE(r.findings.empty());
}

TEST_F(ReportRunsTest, EscrowBackdoorAuditShowsTheAllowedAuthorityAndRule) {
  const Report& r = Builtin("escrow_backdoor");
  for (const ExpectationResult& e : r.expectations) {
    EXPECT_TRUE(e.passed) << e.expectation.name();
  }
  // The authority's unwraps are the only "unwrap" calls in the run.
  const double unwrapped = static_cast<double>(r.operations.at("unwrap").ok);
  ASSERT_GT(unwrapped, 0);
  EXPECT_EQ(MetricOr(r,
                     "audit_entries{key_service=us-custodian,decision=ALLOW,"
                     "principal=authority/cn}",
                     -1),
            unwrapped);
  EXPECT_EQ(MetricOr(r,
                     "audit_third_party{key_service=us-custodian,decision="
                     "ALLOW,principal=authority/cn,rule=maintenance-access}",
                     -1),
            unwrapped);
  EXPECT_EQ(MetricOr(r, "audit_foreign_allowed{key_service=us-custodian}", -1),
            unwrapped);
  // Its KEK export is still refused, and logged as such.
  EXPECT_EQ(MetricOr(r,
                     "audit_entries{key_service=us-custodian,decision=DENY,"
                     "principal=authority/cn}",
                     -1),
            static_cast<double>(
                RefusalsBy(r, "authority/cn", "service/us-custodian")));
  EXPECT_EQ(MetricOr(r, "audit_log_verified{key_service=us-custodian}", -1), 1);
  EXPECT_GT(MetricOr(r, "plaintext_bytes{actor=authority/cn}", 0), 0);
  EXPECT_THAT(r.findings, Contains(AllOf(HasSubstr("us-custodian (US) ALLOWED"),
                                         HasSubstr("authority/cn"),
                                         HasSubstr("\"maintenance-access\""))));

  std::ostringstream text, json, html;
  WriteTextReport(r, text);
  EXPECT_THAT(text.str(), HasSubstr("FINDING: us-custodian (US) ALLOWED"));
  EXPECT_THAT(text.str(), HasSubstr("third-party: ALLOWED authority/cn"));
  WriteJsonReport(r, json);
  EXPECT_THAT(json.str(), HasSubstr("\"verified\": true"));
  EXPECT_THAT(json.str(), HasSubstr("\"rule\": \"maintenance-access\""));
  EXPECT_THAT(json.str(), HasSubstr("\"findings\": [\n    \"us-custodian"));
  WriteHtmlReport(r, html);
  EXPECT_THAT(html.str(), HasSubstr("marker-end=\"url(#arr-red)\""));
}

// An insider rewrites one of the backdoor's entries to DENY after the run,
// with valid RocksDB writes: the stored chain no longer verifies.
TEST_F(ReportRunsTest, TamperedAuditLogIsReportedAsNotVerified) {
  ASSERT_OK_AND_ASSIGN(v1::Scenario scenario,
                       LoadBuiltinScenario("escrow_backdoor"));
  int tampered = 0;
  RunOptions options;
  options.after_stop = [&](const std::string& work_dir) {
    rocksdb::DB* raw = nullptr;
    ASSERT_TRUE(rocksdb::DB::Open(rocksdb::Options(),
                                  work_dir + "/ks-us-custodian/audit", &raw)
                    .ok());
    std::unique_ptr<rocksdb::DB> db(raw);
    std::unique_ptr<rocksdb::Iterator> it(
        db->NewIterator(rocksdb::ReadOptions()));
    for (it->Seek("e"); it->Valid() && it->key().starts_with("e"); it->Next()) {
      v1::AuditEntry entry;
      ASSERT_TRUE(entry.ParseFromString(it->value().ToString()));
      if (entry.principal() != "residency://authority/cn" ||
          entry.decision() != v1::AuditEntry::ALLOW) {
        continue;
      }
      entry.set_decision(v1::AuditEntry::DENY);
      ASSERT_TRUE(
          db->Put(rocksdb::WriteOptions(), it->key(), entry.SerializeAsString())
              .ok());
      ++tampered;
      break;
    }
  };
  ASSERT_OK_AND_ASSIGN(Report r, Run(scenario, options));
  ASSERT_EQ(tampered, 1);
  EXPECT_EQ(MetricOr(r, "audit_log_verified{key_service=us-custodian}", -1), 0);
  const AuditLogFindings& f = r.audit_logs.at("us-custodian");
  EXPECT_FALSE(f.verified);
  EXPECT_THAT(f.verification, HasSubstr("does not match its contents"));
  EXPECT_THAT(r.findings,
              Contains(HasSubstr("audit log of us-custodian does NOT verify")));
  // The expectation that the log verifies fails, so the run fails.
  bool failed = false;
  for (const ExpectationResult& e : r.expectations) {
    if (e.expectation.metric() ==
        "audit_log_verified{key_service=us-custodian}") {
      failed = !e.passed;
    }
  }
  EXPECT_TRUE(failed);
}

TEST_F(ReportRunsTest, LogIsReadInProcessWhenThePolicyLetsNoAuditorRead) {
  ASSERT_OK_AND_ASSIGN(v1::Scenario scenario,
                       LoadBuiltinScenario("gov_request"));
  auto* rules = scenario.mutable_world()
                    ->mutable_key_services(0)
                    ->mutable_policy()
                    ->mutable_rules();
  for (int i = rules->size() - 1; i >= 0; --i) {
    if (rules->Get(i).name() == "auditor-reads-log")
      rules->DeleteSubrange(i, 1);
  }
  ASSERT_OK_AND_ASSIGN(Report r, Run(scenario));
  const AuditLogFindings& f = r.audit_logs.at("us-custodian");
  EXPECT_THAT(f.read_by, StartsWith("in-process"));
  EXPECT_TRUE(f.verified) << f.verification;
  // No read of the auditor's was logged, and the refusals still are.
  EXPECT_EQ(MetricOr(r,
                     "audit_entries{key_service=us-custodian,decision=ALLOW,"
                     "principal=operator/auditor}",
                     -1),
            -1);
  EXPECT_GT(MetricOr(r,
                     "audit_entries{key_service=us-custodian,decision=DENY,"
                     "principal=authority/cn}",
                     0),
            0);
}

TEST_F(ReportRunsTest, CompareListsTheExposureThatDiffersFirst) {
  const Report& a = Builtin("gov_request");
  const Report& b = Builtin("key_relocation");
  const Comparison c = Compare(a, b);
  int exposure = -1, first_timing = -1;
  for (size_t i = 0; i < c.rows.size(); ++i) {
    const Comparison::Row& row = c.rows[i];
    if (row.metric == "exposure_max{actor=authority/cn}") {
      exposure = static_cast<int>(i);
      ASSERT_TRUE(row.a.has_value() && row.b.has_value());
      EXPECT_EQ(*row.a, 0);
      EXPECT_EQ(*row.b, 1);
    }
    if (first_timing < 0 && absl::StrContains(row.metric, "_ms{")) {
      first_timing = static_cast<int>(i);
    }
  }
  ASSERT_GE(exposure, 0);
  EXPECT_EQ(c.rows[0].group, 0);
  if (first_timing >= 0) {
    EXPECT_LT(exposure, first_timing);
  }
  // What changed: the custodian and its jurisdiction; not the custody mode.
  bool key_services = false;
  for (const Comparison::Aspect& x : c.changed) {
    if (x.name == "key services") {
      key_services = true;
      EXPECT_EQ(x.a, "us-custodian (US)");
      EXPECT_EQ(x.b, "cn-custodian (CN)");
    }
  }
  EXPECT_TRUE(key_services);
  EXPECT_THAT(c.unchanged, Contains("custody mode"));
  // Why: the audit logs' deciding rules.
  EXPECT_THAT(c.why, Contains(AllOf(HasSubstr("gov_request: us-custodian"),
                                    HasSubstr("rule default-deny"))));
  EXPECT_THAT(c.why, Contains(AllOf(HasSubstr("key_relocation: cn-custodian"),
                                    HasSubstr("rule obey-cn-legal-process"))));

  std::ostringstream text, json;
  WriteTextComparison(c, text);
  EXPECT_THAT(text.str(), HasSubstr("exposure_max{actor=authority/cn}"));
  EXPECT_THAT(text.str(), HasSubstr("What changed in the world"));
  WriteJsonComparison(c, json);
  EXPECT_THAT(json.str(),
              HasSubstr("{\"name\": \"exposure_max{actor=authority/cn}\", "
                        "\"group\": \"exposure\", \"a\": 0, \"b\": 1}"));
}

}  // namespace
}  // namespace residency::sim
