// Policy parsing (key_service::PolicyEngine::Parse) of arbitrary text, and
// decisions under whatever policy parses.
//
// Input: a text-format residency.v1.Policy.
//
// Invariants: a failure is INVALID_ARGUMENT; a policy that loads prints to
// text that loads to the same policy and the same decisions; a decision is
// made by a rule of the policy or by "default-deny"; OPERATION_UNSPECIFIED
// is always denied by "default-deny"; every pattern matches itself (written
// without '*') and "*" matches anything.

#include <cstddef>
#include <cstdint>
#include <string>
#include <vector>

#include "absl/strings/str_replace.h"
#include "google/protobuf/text_format.h"
#include "google/protobuf/util/message_differencer.h"
#include "key_service/policy.h"
#include "tests/fuzz/fuzz_util.h"

namespace residency::fuzz {
namespace {

using key_service::PolicyDecision;
using key_service::PolicyEngine;
using key_service::PolicyRequest;

const char* const kPrincipals[] = {
    "residency://user/alice", "residency://operator/us-ops",
    "residency://authority/us", "residency://authority/cn",
    "residency://service/auditor"};

// A spread of requests: each kind of caller, an owner and a stranger, each
// operation and reason, with and without a key and a legal process.
std::vector<PolicyRequest> Requests(const std::vector<std::string>& names) {
  std::vector<PolicyRequest> requests;
  for (const char* principal : kPrincipals) {
    for (int op = 0; op <= 12; ++op) {
      for (int reason = 0; reason <= 4; ++reason) {
        PolicyRequest r;
        r.principal = principal;
        r.operation = static_cast<v1::Operation>(op);
        r.reason = static_cast<v1::Justification::Reason>(reason);
        if (op % 3 != 0) {
          r.key_id = names[static_cast<size_t>(op + reason) % names.size()];
          r.key_owner = "alice";
        }
        if (reason == 3) r.legal_process_jurisdiction = (op & 1) ? "US" : "CN";
        requests.push_back(r);
      }
    }
  }
  return requests;
}

// The reference semantics of a pattern, by dynamic programming over
// prefixes: match[i][j] is whether pattern[0, i) matches text[0, j).
bool ReferenceMatch(absl::string_view pattern, absl::string_view text) {
  std::vector<std::vector<bool>> match(
      pattern.size() + 1, std::vector<bool>(text.size() + 1, false));
  match[0][0] = true;
  for (size_t i = 1; i <= pattern.size(); ++i) {
    for (size_t j = 0; j <= text.size(); ++j) {
      if (pattern[i - 1] == '*') {
        match[i][j] = match[i - 1][j] || (j > 0 && match[i][j - 1]);
      } else {
        match[i][j] =
            j > 0 && match[i - 1][j - 1] && pattern[i - 1] == text[j - 1];
      }
    }
  }
  return match[pattern.size()][text.size()];
}

bool Same(const PolicyDecision& a, const PolicyDecision& b) {
  return a.allowed == b.allowed && a.rule == b.rule;
}

}  // namespace
}  // namespace residency::fuzz

extern "C" int LLVMFuzzerTestOneInput(const uint8_t* data, size_t size) {
  using namespace residency;
  using namespace residency::fuzz;
  const absl::string_view text(reinterpret_cast<const char*>(data), size);
  absl::StatusOr<PolicyEngine> policy = PolicyEngine::Parse(text, "fuzz");
  if (!policy.ok()) {
    FUZZ_CHECK(policy.status().code() == absl::StatusCode::kInvalidArgument);
    FUZZ_CHECK(
        ErrorLineIsInText(policy.status().message(), "policy fuzz", text));
    return 0;
  }

  std::string printed;
  FUZZ_CHECK(
      google::protobuf::TextFormat::PrintToString(policy->policy(), &printed));
  absl::StatusOr<PolicyEngine> again = PolicyEngine::Parse(printed, "printed");
  FUZZ_CHECK(again.ok());
  FUZZ_CHECK(google::protobuf::util::MessageDifferencer::Equals(
      policy->policy(), again->policy()));

  // Key ids that the policy's own patterns name, '*' filled in.
  std::vector<std::string> names = {"alice-key"};
  for (const auto& rule : policy->policy().rules()) {
    for (const std::string& pattern : rule.key_ids()) {
      names.push_back(absl::StrReplaceAll(pattern, {{"*", "x"}}));
      FUZZ_CHECK(key_service::PolicyPatternMatches(pattern, names.back()));
      if (pattern.size() <= 256) {
        FUZZ_CHECK(ReferenceMatch(pattern, names.back()));
      }
    }
    for (const std::string& pattern : rule.principals()) {
      FUZZ_CHECK(key_service::PolicyPatternMatches("*", pattern));
      for (absl::string_view principal : kPrincipals) {
        FUZZ_CHECK(key_service::PolicyPatternMatches(pattern, principal) ==
                   ReferenceMatch(pattern, principal));
      }
      if (pattern.find('*') == std::string::npos) {
        FUZZ_CHECK(key_service::PolicyPatternMatches(pattern, pattern));
      }
    }
  }
  for (const PolicyRequest& r : Requests(names)) {
    const PolicyDecision d = policy->Decide(r);
    FUZZ_CHECK(Same(d, again->Decide(r)));
    if (r.operation == v1::OPERATION_UNSPECIFIED) {
      FUZZ_CHECK(!d.allowed && d.rule == key_service::kDefaultDenyRule);
    }
    if (d.rule == key_service::kDefaultDenyRule) {
      FUZZ_CHECK(!d.allowed);
      continue;
    }
    bool named = false;
    for (const auto& rule : policy->policy().rules()) {
      if (rule.name() == d.rule) {
        named = true;
        FUZZ_CHECK(d.allowed == (rule.effect() == v1::Policy::Rule::ALLOW));
        break;
      }
    }
    FUZZ_CHECK(named);
  }
  return 0;
}
