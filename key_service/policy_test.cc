#include "key_service/policy.h"

#include <fstream>
#include <optional>
#include <ostream>
#include <string>
#include <thread>
#include <vector>

#include "absl/status/status.h"
#include "absl/strings/str_cat.h"
#include "absl/strings/string_view.h"
#include "gmock/gmock.h"
#include "gtest/gtest.h"
#include "tests/status_matchers.h"

namespace residency::key_service {
namespace {

using ::residency::testing::StatusIs;
using ::residency::v1::Justification;
using ::testing::HasSubstr;

constexpr absl::StatusCode kInvalidArgument =
    absl::StatusCode::kInvalidArgument;

// The example in proto/residency/v1/policy.proto's header comment, verbatim.
constexpr absl::string_view kExamplePolicy = R"pb(
  jurisdiction: "US"
  rules {
    name: "owners-use-own-keys"
    effect: ALLOW
    caller_is_owner: true
    operations: [
      OPERATION_GENERATE_DATA_KEY,
      OPERATION_UNWRAP,
      OPERATION_GET_KEY_INFO
    ]
    justifications: CUSTOMER_INITIATED_ACCESS
  }
  rules {
    name: "obey-us-legal-process-only"
    effect: ALLOW
    principals: "residency://authority/*"
    operations: OPERATION_UNWRAP
    justifications: THIRD_PARTY_DATA_REQUEST
    legal_process_jurisdictions: "US"
  }
  rules {
    name: "ops-rotate"
    effect: ALLOW
    principals: "residency://operator/us-ops"
    operations: [ OPERATION_CREATE_KEY, OPERATION_ROTATE_KEY, OPERATION_REWRAP ]
    justifications: CUSTODIAN_INITIATED_SERVICE
  }
)pb";

// ---------------------------------------------------------------------------
// Decisions over the example policy.

struct DecisionCase {
  std::string name;
  PolicyRequest request;
  bool allowed;
  std::string rule;
};
void PrintTo(const DecisionCase& c, std::ostream* os) { *os << c.name; }

PolicyRequest Request(absl::string_view principal, v1::Operation operation,
                      std::optional<absl::string_view> key_id,
                      std::optional<absl::string_view> key_owner,
                      Justification::Reason reason,
                      std::optional<absl::string_view> jurisdiction = {}) {
  PolicyRequest request;
  request.principal = principal;
  request.operation = operation;
  request.key_id = key_id;
  request.key_owner = key_owner;
  request.reason = reason;
  request.legal_process_jurisdiction = jurisdiction;
  return request;
}

constexpr auto kCustomer = Justification::CUSTOMER_INITIATED_ACCESS;
constexpr auto kCustodian = Justification::CUSTODIAN_INITIATED_SERVICE;
constexpr auto kThirdParty = Justification::THIRD_PARTY_DATA_REQUEST;
constexpr auto kAudit = Justification::SECURITY_AUDIT;
constexpr absl::string_view kAlice = "residency://user/alice";
constexpr absl::string_view kOwnRules = "owners-use-own-keys";
constexpr absl::string_view kUsLegal = "obey-us-legal-process-only";

std::vector<DecisionCase> ExampleCases() {
  const std::string deny(kDefaultDenyRule);
  const std::string own(kOwnRules);
  const std::string us(kUsLegal);
  return {
      {"OwnerUnwrapsOwnKey",
       Request(kAlice, v1::OPERATION_UNWRAP, "alice-photos", "alice",
               kCustomer),
       true, own},
      {"OwnerGeneratesDataKeyWithOwnKey",
       Request(kAlice, v1::OPERATION_GENERATE_DATA_KEY, "alice-photos", "alice",
               kCustomer),
       true, own},
      {"OwnerUnwrapsOtherUsersKey",
       Request(kAlice, v1::OPERATION_UNWRAP, "bob-photos", "bob", kCustomer),
       false, deny},
      {"OwnerWhosePrincipalOnlyStartsWithTheOwner",
       Request("residency://user/alicex", v1::OPERATION_UNWRAP, "k", "alice",
               kCustomer),
       false, deny},
      {"OwnerNameUnderAnotherPrincipalKind",
       Request("residency://operator/alice", v1::OPERATION_UNWRAP, "k", "alice",
               kCustomer),
       false, deny},
      {"OwnerOfUnknownKeyOwner",
       Request(kAlice, v1::OPERATION_UNWRAP, "alice-photos", std::nullopt,
               kCustomer),
       false, deny},
      {"OwnerWithEmptyKeyOwner",
       Request("residency://user/", v1::OPERATION_UNWRAP, "k", "", kCustomer),
       false, deny},
      {"OwnerWithUnlistedOperation",
       Request(kAlice, v1::OPERATION_EXPORT_KEY, "alice-photos", "alice",
               kCustomer),
       false, deny},
      {"OwnerWithUnlistedJustification",
       Request(kAlice, v1::OPERATION_UNWRAP, "alice-photos", "alice", kAudit),
       false, deny},
      {"OwnerReadsAuditLogWithoutAKey",
       Request(kAlice, v1::OPERATION_READ_AUDIT_LOG, std::nullopt, "alice",
               kCustomer),
       false, deny},
      {"CnAuthorityWithCnLegalProcess",
       Request("residency://authority/cn", v1::OPERATION_UNWRAP, "alice-photos",
               "alice", kThirdParty, "CN"),
       false, deny},
      {"UsAuthorityWithUsLegalProcess",
       Request("residency://authority/us", v1::OPERATION_UNWRAP, "alice-photos",
               "alice", kThirdParty, "US"),
       true, us},
      {"AnyAuthorityWithUsLegalProcess",
       Request("residency://authority/cn", v1::OPERATION_UNWRAP, "alice-photos",
               "alice", kThirdParty, "US"),
       true, us},
      {"AuthorityWildcardSpansSlashes",
       Request("residency://authority/us/doj/fbi", v1::OPERATION_UNWRAP,
               "alice-photos", "alice", kThirdParty, "US"),
       true, us},
      {"AuthorityWithoutTrailingSlash",
       Request("residency://authority", v1::OPERATION_UNWRAP, "alice-photos",
               "alice", kThirdParty, "US"),
       false, deny},
      {"UsAuthorityWithoutLegalProcess",
       Request("residency://authority/us", v1::OPERATION_UNWRAP, "alice-photos",
               "alice", kThirdParty, std::nullopt),
       false, deny},
      {"UsLegalProcessIsCaseSensitive",
       Request("residency://authority/us", v1::OPERATION_UNWRAP, "alice-photos",
               "alice", kThirdParty, "us"),
       false, deny},
      {"UsLegalProcessUnderAnotherJustification",
       Request("residency://authority/us", v1::OPERATION_UNWRAP, "alice-photos",
               "alice", kCustomer, "US"),
       false, deny},
      {"UsAuthorityExportsKey",
       Request("residency://authority/us", v1::OPERATION_EXPORT_KEY,
               "alice-photos", "alice", kThirdParty, "US"),
       false, deny},
      {"OpsRotates",
       Request("residency://operator/us-ops", v1::OPERATION_ROTATE_KEY,
               "alice-photos", "alice", kCustodian),
       true, "ops-rotate"},
      {"OpsUnwraps",
       Request("residency://operator/us-ops", v1::OPERATION_UNWRAP,
               "alice-photos", "alice", kCustodian),
       false, deny},
      {"OpsSubprincipalIsNotOps",
       Request("residency://operator/us-ops2", v1::OPERATION_ROTATE_KEY,
               "alice-photos", "alice", kCustodian),
       false, deny},
  };
}

class ExamplePolicyTest : public ::testing::TestWithParam<DecisionCase> {
 protected:
  void SetUp() override {
    ASSERT_OK_AND_ASSIGN(PolicyEngine engine,
                         PolicyEngine::Parse(kExamplePolicy, "example"));
    engine_.emplace(std::move(engine));
  }
  std::optional<PolicyEngine> engine_;
};

TEST_P(ExamplePolicyTest, DecidesAsExpected) {
  const DecisionCase& c = GetParam();
  const PolicyDecision decision = engine_->Decide(c.request);
  EXPECT_EQ(decision.allowed, c.allowed);
  EXPECT_EQ(decision.rule, c.rule);
}

INSTANTIATE_TEST_SUITE_P(
    Table, ExamplePolicyTest, ::testing::ValuesIn(ExampleCases()),
    [](const ::testing::TestParamInfo<DecisionCase>& info) {
      return info.param.name;
    });

TEST(PolicyEngineTest, ExamplePolicyLoadsAsWritten) {
  ASSERT_OK_AND_ASSIGN(PolicyEngine engine,
                       PolicyEngine::Parse(kExamplePolicy, "example"));
  EXPECT_EQ(engine.policy().jurisdiction(), "US");
  ASSERT_EQ(engine.policy().rules_size(), 3);
  EXPECT_EQ(engine.policy().rules(0).operations_size(), 3);
  EXPECT_EQ(engine.policy().rules(2).name(), "ops-rotate");
}

// ---------------------------------------------------------------------------
// Patterns.

struct PatternCase {
  absl::string_view pattern;
  absl::string_view text;
  bool matches;
};

TEST(PolicyPatternTest, StarMatchesAnyRunIncludingSlashes) {
  const PatternCase cases[] = {
      {"", "", true},
      {"", "a", false},
      {"abc", "abc", true},
      {"abc", "abcd", false},
      {"abc", "ab", false},
      {"*", "", true},
      {"*", "residency://user/alice", true},
      {"residency://user/*", "residency://user/alice", true},
      {"residency://user/*", "residency://user/", true},
      {"residency://user/*", "residency://user/a/b/c", true},
      {"residency://user/*", "residency://users/alice", false},
      {"residency://user/*", "residency://user", false},
      {"*/keys/*", "residency://user/alice/keys/photos", true},
      {"*/keys/*", "residency://user/alice/keys", false},
      {"a*b*c", "abc", true},
      {"a*b*c", "aXbYc/Zc", true},
      {"a*b*c", "aXbYc/Zcd", false},
      {"a*b", "ab/", false},
      {"*a", "bbba", true},
      {"a**b", "ab", true},
      {"alice-*", "alice-photos", true},
      {"alice-*", "bob-photos", false},
      {"*-photos", "alice-photos", true},
      {"?", "a", false},  // '?' is literal
      {"[a]", "a", false},
  };
  for (const PatternCase& c : cases) {
    EXPECT_EQ(PolicyPatternMatches(c.pattern, c.text), c.matches)
        << "pattern '" << c.pattern << "' text '" << c.text << "'";
  }
}

TEST(PolicyPatternTest, BacktrackingWorstCaseStaysCorrect) {
  const std::string text(2000, 'a');
  EXPECT_FALSE(PolicyPatternMatches("*a*a*a*a*a*a*a*b", text));
  EXPECT_TRUE(PolicyPatternMatches("*a*a*a*a*a*a*a*a", text));
}

// ---------------------------------------------------------------------------
// Rule semantics beyond the example.

PolicyEngine MustParse(absl::string_view text) {
  absl::StatusOr<PolicyEngine> engine = PolicyEngine::Parse(text, "test");
  EXPECT_OK(engine);
  if (!engine.ok()) return *PolicyEngine::Parse("", "empty");
  return *std::move(engine);
}

TEST(PolicyEngineTest, EarlierDenyWinsOverLaterAllow) {
  const PolicyEngine engine = MustParse(R"pb(
    rules {
      name: "bob-may-not-export"
      effect: DENY
      principals: "residency://user/bob"
      operations: OPERATION_EXPORT_KEY
    }
    rules {
      name: "users-do-anything"
      effect: ALLOW
      principals: "residency://user/*"
    }
  )pb");
  PolicyDecision bob = engine.Decide(Request(
      "residency://user/bob", v1::OPERATION_EXPORT_KEY, "k", "bob", kCustomer));
  EXPECT_FALSE(bob.allowed);
  EXPECT_EQ(bob.rule, "bob-may-not-export");
  PolicyDecision alice = engine.Decide(
      Request(kAlice, v1::OPERATION_EXPORT_KEY, "k", "alice", kCustomer));
  EXPECT_TRUE(alice.allowed);
  EXPECT_EQ(alice.rule, "users-do-anything");
  PolicyDecision bob_unwrap = engine.Decide(Request(
      "residency://user/bob", v1::OPERATION_UNWRAP, "k", "bob", kCustomer));
  EXPECT_TRUE(bob_unwrap.allowed);
  EXPECT_EQ(bob_unwrap.rule, "users-do-anything");
}

TEST(PolicyEngineTest, EarlierAllowWinsOverLaterDeny) {
  const PolicyEngine engine = MustParse(R"pb(
    rules {
      name: "users-do-anything"
      effect: ALLOW
      principals: "residency://user/*"
    }
    rules {
      name: "bob-may-not-export"
      effect: DENY
      principals: "residency://user/bob"
      operations: OPERATION_EXPORT_KEY
    }
  )pb");
  PolicyDecision bob = engine.Decide(Request(
      "residency://user/bob", v1::OPERATION_EXPORT_KEY, "k", "bob", kCustomer));
  EXPECT_TRUE(bob.allowed);
  EXPECT_EQ(bob.rule, "users-do-anything");
}

TEST(PolicyEngineTest, CatchAllDenyNamesItself) {
  const PolicyEngine engine = MustParse(R"pb(
    rules { name: "nothing-else" effect: DENY }
  )pb");
  PolicyDecision keyed = engine.Decide(
      Request(kAlice, v1::OPERATION_UNWRAP, "k", "alice", kCustomer));
  EXPECT_FALSE(keyed.allowed);
  EXPECT_EQ(keyed.rule, "nothing-else");
  PolicyDecision keyless =
      engine.Decide(Request(kAlice, v1::OPERATION_READ_AUDIT_LOG, std::nullopt,
                            std::nullopt, kAudit));
  EXPECT_EQ(keyless.rule, "nothing-else");
}

TEST(PolicyEngineTest, EmptyPolicyDeniesEverythingByDefault) {
  const PolicyEngine engine = MustParse("");
  EXPECT_EQ(engine.policy().rules_size(), 0);
  PolicyDecision decision = engine.Decide(
      Request(kAlice, v1::OPERATION_UNWRAP, "k", "alice", kCustomer));
  EXPECT_FALSE(decision.allowed);
  EXPECT_EQ(decision.rule, "default-deny");
}

TEST(PolicyEngineTest, UnspecifiedOperationIsDeniedEvenByCatchAllAllow) {
  const PolicyEngine engine = MustParse(R"pb(
    rules { name: "anything" effect: ALLOW }
  )pb");
  PolicyDecision unspecified = engine.Decide(
      Request(kAlice, v1::OPERATION_UNSPECIFIED, "k", "alice", kCustomer));
  EXPECT_FALSE(unspecified.allowed);
  EXPECT_EQ(unspecified.rule, "default-deny");
  EXPECT_TRUE(engine
                  .Decide(Request(kAlice, v1::OPERATION_UNWRAP, "k", "alice",
                                  kCustomer))
                  .allowed);
}

class KeylessPolicyTest : public ::testing::Test {
 protected:
  // Each rule would allow an auditor's ReadAuditLog but for one condition.
  const PolicyEngine engine_ = MustParse(R"pb(
    rules {
      name: "any-key"
      effect: ALLOW
      principals: "residency://operator/auditor-*"
      key_ids: "*"
    }
    rules { name: "owners" effect: ALLOW caller_is_owner: true }
    rules {
      name: "auditors-read-log"
      effect: ALLOW
      principals: "residency://operator/auditor-*"
      operations: OPERATION_READ_AUDIT_LOG
      justifications: SECURITY_AUDIT
    }
  )pb");
};

TEST_F(KeylessPolicyTest, KeyIdsPatternNeverMatchesKeylessRequest) {
  PolicyDecision decision = engine_.Decide(
      Request("residency://operator/auditor-kpmg", v1::OPERATION_READ_AUDIT_LOG,
              std::nullopt, std::nullopt, kAudit));
  EXPECT_TRUE(decision.allowed);
  EXPECT_EQ(decision.rule, "auditors-read-log");
}

TEST_F(KeylessPolicyTest, KeyIdsStarMatchesAnyKeyedRequest) {
  PolicyDecision decision = engine_.Decide(
      Request("residency://operator/auditor-kpmg", v1::OPERATION_UNWRAP,
              "alice-photos", "alice", kAudit));
  EXPECT_TRUE(decision.allowed);
  EXPECT_EQ(decision.rule, "any-key");
}

TEST_F(KeylessPolicyTest, CallerIsOwnerNeverMatchesKeylessRequest) {
  // Even with an owner supplied, no key means no ownership to check.
  PolicyDecision decision = engine_.Decide(Request(
      kAlice, v1::OPERATION_READ_AUDIT_LOG, std::nullopt, "alice", kAudit));
  EXPECT_FALSE(decision.allowed);
  EXPECT_EQ(decision.rule, "default-deny");
}

TEST_F(KeylessPolicyTest, CallerIsOwnerMatchesKeyedRequestOfTheOwner) {
  PolicyDecision decision = engine_.Decide(
      Request(kAlice, v1::OPERATION_UNWRAP, "alice-photos", "alice", kAudit));
  EXPECT_TRUE(decision.allowed);
  EXPECT_EQ(decision.rule, "owners");
}

TEST(PolicyEngineTest, KeyIdPatternsSelectKeys) {
  const PolicyEngine engine = MustParse(R"pb(
    rules {
      name: "alice-keys"
      effect: ALLOW
      principals: "residency://operator/us-ops"
      key_ids: [ "alice-*", "shared" ]
    }
  )pb");
  auto decide = [&](absl::string_view key_id) {
    return engine
        .Decide(Request("residency://operator/us-ops", v1::OPERATION_REWRAP,
                        key_id, "alice", kCustodian))
        .rule;
  };
  EXPECT_EQ(decide("alice-photos"), "alice-keys");
  EXPECT_EQ(decide("alice-"), "alice-keys");
  EXPECT_EQ(decide("shared"), "alice-keys");
  EXPECT_EQ(decide("shared2"), "default-deny");
  EXPECT_EQ(decide("bob-photos"), "default-deny");
}

TEST(PolicyEngineTest, LegalProcessRuleNeedsThirdPartyReason) {
  // No justifications filter: only the legal-process condition decides.
  const PolicyEngine engine = MustParse(R"pb(
    rules {
      name: "us-courts"
      effect: ALLOW
      legal_process_jurisdictions: [ "US", "GB" ]
    }
  )pb");
  auto decide = [&](Justification::Reason reason,
                    std::optional<absl::string_view> jurisdiction) {
    return engine
        .Decide(Request("residency://authority/x", v1::OPERATION_UNWRAP, "k",
                        "alice", reason, jurisdiction))
        .rule;
  };
  EXPECT_EQ(decide(kThirdParty, "US"), "us-courts");
  EXPECT_EQ(decide(kThirdParty, "GB"), "us-courts");
  EXPECT_EQ(decide(kThirdParty, "CN"), "default-deny");
  EXPECT_EQ(decide(kThirdParty, ""), "default-deny");
  EXPECT_EQ(decide(kThirdParty, std::nullopt), "default-deny");
  EXPECT_EQ(decide(kCustomer, "US"), "default-deny");
  EXPECT_EQ(decide(Justification::REASON_UNSPECIFIED, "US"), "default-deny");
}

TEST(PolicyEngineTest, UnspecifiedReasonMatchesOnlyWhenNamed) {
  const PolicyEngine engine = MustParse(R"pb(
    rules {
      name: "customers"
      effect: ALLOW
      justifications: CUSTOMER_INITIATED_ACCESS
    }
    rules {
      name: "unexplained"
      effect: DENY
      justifications: REASON_UNSPECIFIED
    }
  )pb");
  EXPECT_EQ(engine
                .Decide(Request(kAlice, v1::OPERATION_UNWRAP, "k", "alice",
                                Justification::REASON_UNSPECIFIED))
                .rule,
            "unexplained");
  EXPECT_EQ(
      engine.Decide(Request(kAlice, v1::OPERATION_UNWRAP, "k", "alice", kAudit))
          .rule,
      "default-deny");
}

TEST(PolicyEngineTest, ConcurrentDecisionsAgree) {
  const PolicyEngine engine = MustParse(kExamplePolicy);
  const std::vector<DecisionCase> cases = ExampleCases();
  std::vector<std::thread> threads;
  std::vector<int> mismatches(4, 0);
  for (int t = 0; t < 4; ++t) {
    threads.emplace_back([&, t] {
      for (int round = 0; round < 200; ++round) {
        for (const DecisionCase& c : cases) {
          const PolicyDecision d = engine.Decide(c.request);
          if (d.allowed != c.allowed || d.rule != c.rule) ++mismatches[t];
        }
      }
    });
  }
  for (std::thread& thread : threads) thread.join();
  EXPECT_THAT(mismatches, ::testing::Each(0));
}

// ---------------------------------------------------------------------------
// Load errors.

void ExpectLoadError(absl::string_view text, absl::string_view message) {
  absl::StatusOr<PolicyEngine> engine = PolicyEngine::Parse(text, "p.txtpb");
  EXPECT_THAT(engine, StatusIs(kInvalidArgument));
  EXPECT_EQ(std::string(engine.status().message()), message);
}

TEST(PolicyLoadTest, MisspeltFieldNameReportsItsLineAndColumn) {
  ExpectLoadError(
      "jurisdiction: \"US\"\n"
      "rules {\n"
      "  name: \"r\"\n"
      "  efect: ALLOW\n"
      "}\n",
      "policy p.txtpb:4:3: Message type \"residency.v1.Policy.Rule\" has no "
      "field named \"efect\".");
}

TEST(PolicyLoadTest, UnknownOperationReportsItsLineAndColumn) {
  ExpectLoadError(
      "rules {\n"
      "  name: \"r\"\n"
      "  effect: ALLOW\n"
      "  operations: OPERATION_UNWARP\n"
      "}\n",
      "policy p.txtpb:4:15: Unknown enumeration value of \"OPERATION_UNWARP\" "
      "for field \"operations\".");
}

TEST(PolicyLoadTest, UnknownOperationInsideAListReportsItsColumn) {
  ExpectLoadError(
      "rules {\n"
      "  name: \"r\"\n"
      "  effect: ALLOW\n"
      "  operations: [OPERATION_UNWRAP,\n"
      "               OPERATION_UNWARP]\n"
      "}\n",
      "policy p.txtpb:5:16: Unknown enumeration value of \"OPERATION_UNWARP\" "
      "for field \"operations\".");
}

TEST(PolicyLoadTest, UnknownEffectReportsItsLineAndColumn) {
  ExpectLoadError("rules { name: \"r\" effect: PERMIT }\n",
                  "policy p.txtpb:1:27: Unknown enumeration value of "
                  "\"PERMIT\" for field \"effect\".");
}

TEST(PolicyLoadTest, UnclosedRuleIsASyntaxError) {
  absl::StatusOr<PolicyEngine> engine =
      PolicyEngine::Parse("rules {\n  name: \"r\"\n", "p.txtpb");
  EXPECT_THAT(engine, StatusIs(kInvalidArgument));
  EXPECT_THAT(std::string(engine.status().message()),
              HasSubstr("policy p.txtpb:3:1: "));
}

TEST(PolicyLoadTest, SyntaxErrorIsReportedAtTheUnexpectedToken) {
  // Errors the parser finds at the token it is looking at are not moved.
  absl::StatusOr<PolicyEngine> engine =
      PolicyEngine::Parse("rules { name: \"r\" effect ALLOW }\n", "p.txtpb");
  EXPECT_THAT(engine, StatusIs(kInvalidArgument));
  EXPECT_THAT(std::string(engine.status().message()),
              HasSubstr("policy p.txtpb:1:26: Expected \":\""));
}

TEST(PolicyLoadTest, RepeatedSingularFieldReportsTheRepetition) {
  ExpectLoadError(
      "rules {\n"
      "  name: \"a\"\n"
      "  name: \"b\"\n"
      "}\n",
      "policy p.txtpb:3:3: Non-repeated field \"name\" is specified multiple "
      "times.");
}

TEST(PolicyLoadTest, BadBooleanReportsItsLineAndColumn) {
  ExpectLoadError(
      "rules {\n"
      "  name: \"a\"\n"
      "  caller_is_owner: maybe\n"
      "}\n",
      "policy p.txtpb:3:20: Invalid value for boolean field "
      "\"caller_is_owner\". Value: \"maybe\".");
}

TEST(PolicyLoadTest, UnknownEnumValueAtEndOfTextReportsItsLineAndColumn) {
  ExpectLoadError(
      "rules { name: \"r\"\n"
      " effect: ALLOW\n"
      " operations: OPERATION_UNWARP",
      "policy p.txtpb:3:14: Unknown enumeration value of \"OPERATION_UNWARP\" "
      "for field \"operations\".");
}

TEST(PolicyLoadTest, RuleWithoutNameIsRejected) {
  ExpectLoadError(
      "rules { name: \"a\" effect: ALLOW }\n"
      "rules { effect: DENY }\n",
      "policy p.txtpb:2:1: rule #2 has no name");
}

TEST(PolicyLoadTest, DuplicateRuleNameIsRejected) {
  ExpectLoadError(
      "rules { name: \"a\" effect: ALLOW }\n"
      "rules { name: \"b\" effect: ALLOW }\n"
      "rules {\n"
      "  effect: DENY\n"
      "  name: \"a\"\n"
      "}\n",
      "policy p.txtpb:5:3: rule #3 'a': name already used by rule #1");
}

TEST(PolicyLoadTest, DefaultDenyNameIsReserved) {
  ExpectLoadError("rules { name: \"default-deny\" effect: DENY }\n",
                  "policy p.txtpb:1:9: rule #1 'default-deny': the name "
                  "'default-deny' is reserved for the implicit last rule");
}

TEST(PolicyLoadTest, MissingEffectIsRejectedAtTheRule) {
  ExpectLoadError(
      "\n"
      "  rules { name: \"r\" principals: \"x\" }\n",
      "policy p.txtpb:2:3: rule #1 'r': effect is EFFECT_UNSPECIFIED; it must "
      "be ALLOW or DENY");
}

TEST(PolicyLoadTest, ExplicitUnspecifiedEffectIsRejectedAtTheField) {
  ExpectLoadError(
      "rules {\n"
      "  name: \"r\"\n"
      "  effect: EFFECT_UNSPECIFIED\n"
      "}\n",
      "policy p.txtpb:3:3: rule #1 'r': effect is EFFECT_UNSPECIFIED; it must "
      "be ALLOW or DENY");
}

TEST(PolicyLoadTest, UndefinedEffectNumberIsRejected) {
  // Proto3 enums are open, so the parser accepts any number; validation
  // must not.
  ExpectLoadError("rules { name: \"r\" effect: 7 }\n",
                  "policy p.txtpb:1:19: rule #1 'r': effect is 7; it must be "
                  "ALLOW or DENY");
}

TEST(PolicyLoadTest, UnspecifiedOperationIsRejected) {
  ExpectLoadError(
      "rules {\n"
      "  name: \"r\"\n"
      "  effect: ALLOW\n"
      "  operations: OPERATION_UNWRAP\n"
      "  operations: OPERATION_UNSPECIFIED\n"
      "}\n",
      "policy p.txtpb:5:3: rule #1 'r': operations[1] is "
      "OPERATION_UNSPECIFIED");
}

TEST(PolicyLoadTest, UnspecifiedOperationInAListIsRejectedAtTheRule) {
  ExpectLoadError(
      "rules {\n"
      "  name: \"r\"\n"
      "  effect: ALLOW\n"
      "  operations: [OPERATION_UNWRAP, OPERATION_UNSPECIFIED]\n"
      "}\n",
      "policy p.txtpb:1:1: rule #1 'r': operations[1] is "
      "OPERATION_UNSPECIFIED");
}

TEST(PolicyLoadTest, UndefinedOperationNumberIsRejected) {
  ExpectLoadError("rules { name: \"r\" effect: ALLOW operations: 99 }\n",
                  "policy p.txtpb:1:33: rule #1 'r': operations[0] is 99, not "
                  "an Operation");
}

TEST(PolicyLoadTest, UndefinedJustificationNumberIsRejected) {
  ExpectLoadError(
      "rules { name: \"r\" effect: ALLOW justifications: 42 }\n",
      "policy p.txtpb:1:33: rule #1 'r': justifications[0] is 42, not a "
      "Justification.Reason");
}

TEST(PolicyLoadTest, RulesWrittenAsAListAreStillNumbered) {
  // The parser records one location for the whole list, so the error names
  // the rule by number only.
  ExpectLoadError(
      "rules: [\n"
      "  { name: \"a\" effect: ALLOW },\n"
      "  { name: \"b\" }\n"
      "]\n",
      "policy p.txtpb: rule #2 'b': effect is EFFECT_UNSPECIFIED; it must be "
      "ALLOW or DENY");
}

TEST(PolicyLoadTest, EmptyPrincipalIsRejected) {
  ExpectLoadError(
      "rules {\n"
      "  name: \"r\"\n"
      "  effect: ALLOW\n"
      "  principals: \"residency://user/*\"\n"
      "  principals: \"\"\n"
      "}\n",
      "policy p.txtpb:5:3: rule #1 'r': principals[1] is empty");
}

TEST(PolicyLoadTest, EmptyKeyIdIsRejected) {
  ExpectLoadError("rules { name: \"r\" effect: ALLOW key_ids: \"\" }\n",
                  "policy p.txtpb:1:33: rule #1 'r': key_ids[0] is empty");
}

TEST(PolicyLoadTest, EmptyLegalProcessJurisdictionIsRejected) {
  ExpectLoadError(
      "rules {\n"
      "  name: \"r\"\n"
      "  effect: ALLOW\n"
      "  legal_process_jurisdictions: \"\"\n"
      "}\n",
      "policy p.txtpb:4:3: rule #1 'r': legal_process_jurisdictions[0] is "
      "empty");
}

// ---------------------------------------------------------------------------
// Principal patterns and jurisdictions a caller or legal process can carry.

// A policy with one rule whose only condition is `field: "value"`.
std::string OneValuePolicy(absl::string_view field, absl::string_view value) {
  return absl::StrCat("rules {\n  name: \"r\"\n  effect: ALLOW\n  ", field,
                      ": \"", value, "\"\n}\n");
}

// What every principal pattern error ends with.
constexpr absl::string_view kPrincipalForms =
    "; a principal pattern is \"*\" or residency://KIND/NAME with KIND one of "
    "user, operator, authority, service";

// The message for OneValuePolicy("principals", pattern) when `pattern` is
// refused because of `why`.
std::string PrincipalError(absl::string_view pattern, absl::string_view why) {
  return absl::StrCat("policy p.txtpb:4:3: rule #1 'r': principals[0] \"",
                      pattern, "\" matches no caller: ", why, kPrincipalForms);
}

TEST(PolicyPrincipalPatternTest, PatternsThatCanMatchACallerLoad) {
  const absl::string_view accepted[] = {
      "*",
      "residency://user/alice",
      "residency://operator/us-ops",
      "residency://authority/us",
      "residency://service/key-service",
      "residency://user/*",
      "residency://authority/*",
      "residency://user/a*",
      "residency://user/*/",  // odd, but the '*' may match a whole name
      "residency://*",
      "residency://*/alice",
      "residency://*/",
      "residency://*user/alice",
      "residency://us*",  // the '*' covers the '/' after the kind
      "residency://op*/us-ops",
  };
  for (absl::string_view pattern : accepted) {
    EXPECT_OK(
        PolicyEngine::Parse(OneValuePolicy("principals", pattern), "p.txtpb"))
        << pattern;
  }
}

TEST(PolicyPrincipalPatternTest, StarKindPatternsMatchEveryKind) {
  const PolicyEngine engine = MustParse(R"pb(
    rules { name: "alices" effect: ALLOW principals: "residency://*/alice" }
  )pb");
  for (absl::string_view principal :
       {"residency://user/alice", "residency://operator/alice",
        "residency://authority/alice", "residency://service/alice"}) {
    EXPECT_EQ(engine
                  .Decide(Request(principal, v1::OPERATION_UNWRAP, "k", "alice",
                                  kCustomer))
                  .rule,
              "alices")
        << principal;
  }
  EXPECT_EQ(engine
                .Decide(Request("residency://user/bob", v1::OPERATION_UNWRAP,
                                "k", "bob", kCustomer))
                .rule,
            "default-deny");
}

TEST(PolicyPrincipalPatternTest, UnknownKindIsRejected) {
  ExpectLoadError(OneValuePolicy("principals", "residency://custodian/ops"),
                  PrincipalError("residency://custodian/ops",
                                 "\"custodian\" is not a principal kind"));
}

TEST(PolicyPrincipalPatternTest, PluralKindIsRejected) {
  ExpectLoadError(OneValuePolicy("principals", "residency://users/*"),
                  PrincipalError("residency://users/*",
                                 "\"users\" is not a principal kind"));
}

TEST(PolicyPrincipalPatternTest, UnknownKindWithoutSlashIsRejected) {
  ExpectLoadError(OneValuePolicy("principals", "residency://auditor"),
                  PrincipalError("residency://auditor",
                                 "\"auditor\" is not a principal kind"));
}

TEST(PolicyPrincipalPatternTest, UpperCaseKindIsRejected) {
  ExpectLoadError(OneValuePolicy("principals", "residency://User/alice"),
                  PrincipalError("residency://User/alice",
                                 "the kind \"User\" must be written in lower "
                                 "case"));
}

TEST(PolicyPrincipalPatternTest, UpperCaseSchemeIsRejected) {
  ExpectLoadError(OneValuePolicy("principals", "RESIDENCY://user/alice"),
                  PrincipalError("RESIDENCY://user/alice",
                                 "the scheme must be written \"residency://\", "
                                 "in lower case"));
}

TEST(PolicyPrincipalPatternTest, MixedCaseSchemeIsRejected) {
  ExpectLoadError(OneValuePolicy("principals", "Residency://*"),
                  PrincipalError("Residency://*",
                                 "the scheme must be written \"residency://\", "
                                 "in lower case"));
}

TEST(PolicyPrincipalPatternTest, BareNameIsRejected) {
  ExpectLoadError(
      OneValuePolicy("principals", "alice"),
      PrincipalError("alice", "it does not start with \"residency://\""));
}

TEST(PolicyPrincipalPatternTest, OtherSchemeIsRejected) {
  ExpectLoadError(OneValuePolicy("principals", "spiffe://user/alice"),
                  PrincipalError("spiffe://user/alice",
                                 "it does not start with \"residency://\""));
}

TEST(PolicyPrincipalPatternTest, LeadingStarOtherThanAloneIsRejected) {
  // Only "*" alone may stand for the scheme.
  ExpectLoadError(
      OneValuePolicy("principals", "*/alice"),
      PrincipalError("*/alice", "it does not start with \"residency://\""));
}

TEST(PolicyPrincipalPatternTest, LeadingSpaceIsRejected) {
  ExpectLoadError(OneValuePolicy("principals", " residency://user/alice"),
                  PrincipalError(" residency://user/alice",
                                 "it does not start with \"residency://\""));
}

TEST(PolicyPrincipalPatternTest, SchemeAloneIsRejected) {
  ExpectLoadError(
      OneValuePolicy("principals", "residency://"),
      PrincipalError("residency://", "it has no kind after \"residency://\""));
}

TEST(PolicyPrincipalPatternTest, EmptyKindIsRejected) {
  ExpectLoadError(OneValuePolicy("principals", "residency:///alice"),
                  PrincipalError("residency:///alice",
                                 "it has no kind after \"residency://\""));
}

TEST(PolicyPrincipalPatternTest, KindWithoutSlashIsRejected) {
  ExpectLoadError(
      OneValuePolicy("principals", "residency://user"),
      PrincipalError("residency://user",
                     "it has no '/' and name after the kind \"user\""));
}

TEST(PolicyPrincipalPatternTest, EmptyNameIsRejected) {
  ExpectLoadError(OneValuePolicy("principals", "residency://user/"),
                  PrincipalError("residency://user/",
                                 "it has an empty name after "
                                 "\"residency://user/\""));
}

TEST(PolicyPrincipalPatternTest, EmptyAuthorityJurisdictionIsRejected) {
  ExpectLoadError(OneValuePolicy("principals", "residency://authority/"),
                  PrincipalError("residency://authority/",
                                 "it has an empty name after "
                                 "\"residency://authority/\""));
}

TEST(PolicyPrincipalPatternTest, BadPatternIsReportedAtItsOccurrence) {
  ExpectLoadError(
      "rules {\n"
      "  name: \"a\"\n"
      "  effect: ALLOW\n"
      "  principals: \"residency://user/alice\"\n"
      "}\n"
      "rules {\n"
      "  name: \"b\"\n"
      "  effect: ALLOW\n"
      "  principals: \"residency://user/*\"\n"
      "    principals: \"residency://custodian/ops\"\n"
      "}\n",
      absl::StrCat("policy p.txtpb:10:5: rule #2 'b': principals[1] "
                   "\"residency://custodian/ops\" matches no caller: "
                   "\"custodian\" is not a principal kind",
                   kPrincipalForms));
}

TEST(PolicyPrincipalPatternTest, BadPatternInAListIsReportedAtTheRule) {
  ExpectLoadError(
      "rules {\n"
      "  name: \"r\"\n"
      "  effect: ALLOW\n"
      "  principals: [\"residency://user/alice\", "
      "\"residency://custodian/ops\"]\n"
      "}\n",
      absl::StrCat("policy p.txtpb:1:1: rule #1 'r': principals[1] "
                   "\"residency://custodian/ops\" matches no caller: "
                   "\"custodian\" is not a principal kind",
                   kPrincipalForms));
}

TEST(PolicyPrincipalPatternTest, UnprintablePatternIsEscapedInTheMessage) {
  ExpectLoadError(OneValuePolicy("principals", "residency://us\\ter/a"),
                  PrincipalError("residency://us\\x09er/a",
                                 "\"us\\x09er\" is not a principal kind"));
}

TEST(PolicyJurisdictionTest, UpperCaseLettersLoad) {
  for (absl::string_view jurisdiction :
       {"US", "CN", "GB", "X", "ABCDEFGHIJKLMNOP"}) {
    EXPECT_OK(PolicyEngine::Parse(
        OneValuePolicy("legal_process_jurisdictions", jurisdiction), "p.txtpb"))
        << jurisdiction;
  }
}

// The message for OneValuePolicy("legal_process_jurisdictions", value).
std::string JurisdictionError(absl::string_view value) {
  return absl::StrCat(
      "policy p.txtpb:4:3: rule #1 'r': legal_process_jurisdictions[0] \"",
      value,
      "\" is not a jurisdiction: one is 1 to 16 upper-case ASCII letters, such "
      "as \"US\", and legal processes are matched case-sensitively");
}

TEST(PolicyJurisdictionTest, LowerCaseIsRejected) {
  ExpectLoadError(OneValuePolicy("legal_process_jurisdictions", "us"),
                  JurisdictionError("us"));
}

TEST(PolicyJurisdictionTest, MixedCaseIsRejected) {
  ExpectLoadError(OneValuePolicy("legal_process_jurisdictions", "Us"),
                  JurisdictionError("Us"));
}

TEST(PolicyJurisdictionTest, SpaceIsRejected) {
  ExpectLoadError(OneValuePolicy("legal_process_jurisdictions", "U S"),
                  JurisdictionError("U S"));
}

TEST(PolicyJurisdictionTest, DigitsAndPunctuationAreRejected) {
  ExpectLoadError(OneValuePolicy("legal_process_jurisdictions", "US-CA"),
                  JurisdictionError("US-CA"));
  ExpectLoadError(OneValuePolicy("legal_process_jurisdictions", "840"),
                  JurisdictionError("840"));
}

TEST(PolicyJurisdictionTest, NonAsciiIsRejected) {
  // "É" in UTF-8, which the message shows as itself.
  ExpectLoadError(OneValuePolicy("legal_process_jurisdictions", "\\303\\211"),
                  JurisdictionError("\xc3\x89"));
}

TEST(PolicyJurisdictionTest, MoreThanSixteenLettersIsRejected) {
  ExpectLoadError(
      OneValuePolicy("legal_process_jurisdictions", "ABCDEFGHIJKLMNOPQ"),
      JurisdictionError("ABCDEFGHIJKLMNOPQ"));
}

TEST(PolicyJurisdictionTest, LaterEntryIsReportedAtItsOccurrence) {
  ExpectLoadError(
      "rules {\n"
      "  name: \"r\"\n"
      "  effect: ALLOW\n"
      "  legal_process_jurisdictions: \"US\"\n"
      "  legal_process_jurisdictions: \"gb\"\n"
      "}\n",
      "policy p.txtpb:5:3: rule #1 'r': legal_process_jurisdictions[1] \"gb\" "
      "is not a jurisdiction: one is 1 to 16 upper-case ASCII letters, such "
      "as \"US\", and legal processes are matched case-sensitively");
}

TEST(PolicyLoadTest, OversizedTextIsRejected) {
  const std::string text(PolicyEngine::kMaxPolicyFileSize + 1, ' ');
  absl::StatusOr<PolicyEngine> engine = PolicyEngine::Parse(text, "p.txtpb");
  EXPECT_THAT(engine, StatusIs(kInvalidArgument));
  EXPECT_THAT(std::string(engine.status().message()),
              HasSubstr("more than the limit"));
  // Whitespace at the limit is an empty, valid policy.
  EXPECT_OK(PolicyEngine::Parse(
      std::string(PolicyEngine::kMaxPolicyFileSize, ' '), "p.txtpb"));
}

// ---------------------------------------------------------------------------
// Files.

std::string WriteTempFile(absl::string_view name, absl::string_view text) {
  const std::string path = absl::StrCat(::testing::TempDir(), name);
  std::ofstream out(path, std::ios::binary | std::ios::trunc);
  out.write(text.data(), static_cast<std::streamsize>(text.size()));
  out.close();
  EXPECT_TRUE(out.good()) << path;
  return path;
}

TEST(PolicyFileTest, LoadsTheExamplePolicy) {
  const std::string path = WriteTempFile("example.txtpb", kExamplePolicy);
  ASSERT_OK_AND_ASSIGN(PolicyEngine engine, PolicyEngine::LoadFile(path));
  EXPECT_EQ(engine.policy().rules_size(), 3);
  EXPECT_TRUE(engine
                  .Decide(Request(kAlice, v1::OPERATION_UNWRAP, "k", "alice",
                                  kCustomer))
                  .allowed);
}

TEST(PolicyFileTest, MissingFileIsNotFound) {
  const std::string path =
      absl::StrCat(::testing::TempDir(), "no-such-dir/policy.txtpb");
  absl::StatusOr<PolicyEngine> engine = PolicyEngine::LoadFile(path);
  EXPECT_THAT(engine, StatusIs(absl::StatusCode::kNotFound));
  EXPECT_EQ(std::string(engine.status().message()),
            absl::StrCat("policy file ", path, ": No such file or directory"));
}

TEST(PolicyFileTest, ParseErrorsNameThePath) {
  const std::string path =
      WriteTempFile("typo.txtpb", "rules {\n  nmae: \"r\"\n}\n");
  absl::StatusOr<PolicyEngine> engine = PolicyEngine::LoadFile(path);
  EXPECT_THAT(engine, StatusIs(kInvalidArgument));
  EXPECT_THAT(std::string(engine.status().message()),
              HasSubstr(absl::StrCat("policy ", path, ":2:3: ")));
}

TEST(PolicyFileTest, UnmatchablePrincipalNamesThePathLineAndColumn) {
  const std::string path =
      WriteTempFile("custodian.txtpb",
                    "rules {\n"
                    "  name: \"ops-rotate\"\n"
                    "  effect: ALLOW\n"
                    "  principals: \"residency://custodian/ops\"\n"
                    "}\n");
  absl::StatusOr<PolicyEngine> engine = PolicyEngine::LoadFile(path);
  EXPECT_THAT(engine, StatusIs(kInvalidArgument));
  EXPECT_EQ(std::string(engine.status().message()),
            absl::StrCat("policy ", path,
                         ":4:3: rule #1 'ops-rotate': principals[0] "
                         "\"residency://custodian/ops\" matches no caller: "
                         "\"custodian\" is not a principal kind",
                         kPrincipalForms));
}

TEST(PolicyFileTest, LowerCaseJurisdictionNamesThePathLineAndColumn) {
  const std::string path =
      WriteTempFile("lower.txtpb",
                    "rules {\n"
                    "  name: \"courts\"\n"
                    "  effect: ALLOW\n"
                    "  legal_process_jurisdictions: \"us\"\n"
                    "}\n");
  absl::StatusOr<PolicyEngine> engine = PolicyEngine::LoadFile(path);
  EXPECT_THAT(engine, StatusIs(kInvalidArgument));
  EXPECT_THAT(std::string(engine.status().message()),
              HasSubstr(absl::StrCat(
                  "policy ", path,
                  ":4:3: rule #1 'courts': legal_process_jurisdictions[0] "
                  "\"us\" is not a jurisdiction")));
}

TEST(PolicyFileTest, DirectoryIsRefused) {
  absl::StatusOr<PolicyEngine> engine =
      PolicyEngine::LoadFile(::testing::TempDir());
  EXPECT_FALSE(engine.ok());
  EXPECT_THAT(std::string(engine.status().message()),
              HasSubstr(absl::StrCat("policy file ", ::testing::TempDir())));
}

TEST(PolicyFileTest, OversizedFileIsRefused) {
  const std::string path = WriteTempFile(
      "huge.txtpb", std::string(PolicyEngine::kMaxPolicyFileSize + 1, ' '));
  absl::StatusOr<PolicyEngine> engine = PolicyEngine::LoadFile(path);
  EXPECT_THAT(engine, StatusIs(kInvalidArgument));
  EXPECT_EQ(std::string(engine.status().message()),
            absl::StrCat("policy file ", path,
                         " is larger than the limit of 1048576 bytes"));
}

}  // namespace
}  // namespace residency::key_service
