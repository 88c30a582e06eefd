#ifndef RESIDENCY_KEY_SERVICE_POLICY_H_
#define RESIDENCY_KEY_SERVICE_POLICY_H_

#include <cstddef>
#include <optional>
#include <string>
#include <utility>

#include "absl/status/statusor.h"
#include "absl/strings/string_view.h"
#include "residency/v1/common.pb.h"
#include "residency/v1/policy.pb.h"

namespace residency::key_service {

// The facts of one request that policy decides on. The views must outlive
// the Decide call that reads them.
struct PolicyRequest {
  // The caller's verified mTLS URI SAN ("residency://user/alice").
  absl::string_view principal;
  residency::v1::Operation operation = residency::v1::OPERATION_UNSPECIFIED;
  // Absent for operations on no key (ReadAuditLog).
  std::optional<absl::string_view> key_id;
  // The owner of that key, if the key is known.
  std::optional<absl::string_view> key_owner;
  residency::v1::Justification::Reason reason =
      residency::v1::Justification::REASON_UNSPECIFIED;
  // The LegalProcess's jurisdiction, if the request carries one. Only read
  // when reason is THIRD_PARTY_DATA_REQUEST: Justification says a legal
  // process is ignored with any other reason, so it matches nothing then.
  std::optional<absl::string_view> legal_process_jurisdiction;
};

struct PolicyDecision {
  bool allowed = false;
  // The deciding rule's name; kDefaultDenyRule when no rule matched.
  std::string rule;
};

// The name of the implicit last rule, which denies everything. Reserved: a
// policy may not name a rule so.
inline constexpr absl::string_view kDefaultDenyRule = "default-deny";

// Decides requests against a residency.v1.Policy (proto/residency/v1/
// policy.proto has the full contract):
//
//  - Rules are tried in file order; the first whose every condition matches
//    decides. No match: denied by "default-deny".
//  - Each condition is a filter; an empty list matches anything.
//  - principals and key_ids are patterns: exact, except that '*' matches any
//    run of characters, '/' included. There is no escape for a literal '*'.
//  - caller_is_owner matches only when the request names a key, its owner is
//    known and non-empty, and principal == "residency://user/" + owner.
//  - A non-empty key_ids never matches a request without a key.
//  - A non-empty legal_process_jurisdictions matches only a
//    THIRD_PARTY_DATA_REQUEST carrying a legal process whose jurisdiction is
//    listed (exact, case-sensitive).
//  - A request with OPERATION_UNSPECIFIED (which the service refuses as
//    INVALID_ARGUMENT before asking) is denied by "default-deny" whatever the
//    rules say, so a catch-all ALLOW cannot let one through.
//
// Loading refuses, with INVALID_ARGUMENT:
//  - text that does not parse: "policy FILE:LINE:COL: <parser message>"
//    (line and column from 1, pointing at the faulty token; a tab advances
//    the column to the next multiple of 8, as protobuf's tokenizer counts),
//    e.g. a misspelt field name or enum value;
//  - a rule without a name, with a name used by an earlier rule, or named
//    "default-deny" ("policy FILE:LINE:COL: rule #N ..."; rules count from 1
//    in file order, and the location is that of the offending field, or of
//    the rule when the field is missing or its values were written as one
//    "[a, b]" list; "policy FILE: rule #N ..." when the rules themselves were
//    written as one list);
//  - effect EFFECT_UNSPECIFIED or not ALLOW/DENY; OPERATION_UNSPECIFIED or an
//    undefined number in operations; an undefined number in justifications
//    (REASON_UNSPECIFIED is allowed: policy.proto lets a rule name it);
//  - an empty string in principals, key_ids or legal_process_jurisdictions;
//  - a principals pattern no caller can match ("rule #N 'NAME':
//    principals[J] \"PATTERN\" matches no caller: <why>; <the valid forms>").
//    A caller is residency://KIND/NAME with KIND user, operator, authority
//    or service (lower case) and a non-empty NAME, so a pattern must be "*"
//    alone or start with "residency://" and a kind segment (up to the next
//    '/') that is one of those kinds or contains a '*'; when the kind
//    segment has no '*', a '/' and a non-empty rest must follow. Refused,
//    e.g.: "residency://custodian/ops", "RESIDENCY://user/a",
//    "residency://User/a", "residency://user", "residency://user/", "alice";
//  - a legal_process_jurisdictions entry that is not 1 to 16 upper-case ASCII
//    letters ("US" is one, "us" and "U S" are not), since it is compared
//    case-sensitively with the request's jurisdiction.
// A policy with no rules is valid and denies everything. LoadFile returns
// NOT_FOUND "policy file PATH: No such file or directory" for a missing file,
// the errno-derived code for other read failures; both Parse and LoadFile
// refuse text over kMaxPolicyFileSize with INVALID_ARGUMENT.
//
// Thread safety: immutable after loading; Decide may be called concurrently.
// Decide allocates only the returned rule name.
//
// Example:
//   ASSIGN_OR_RETURN(PolicyEngine policy, PolicyEngine::LoadFile(path));
//   PolicyDecision d = policy.Decide({.principal = peer_uri,
//                                     .operation = v1::OPERATION_UNWRAP,
//                                     .key_id = key_id,
//                                     .key_owner = owner,
//                                     .reason = reason});
//   if (!d.allowed) return PermissionDenied(... d.rule ...);
class PolicyEngine {
 public:
  static constexpr size_t kMaxPolicyFileSize = 1 << 20;

  // `source_name` names the text in error messages (the file path).
  static absl::StatusOr<PolicyEngine> Parse(absl::string_view text_proto,
                                            absl::string_view source_name);
  static absl::StatusOr<PolicyEngine> LoadFile(const std::string& path);

  PolicyDecision Decide(const PolicyRequest& request) const;

  const residency::v1::Policy& policy() const { return policy_; }

 private:
  explicit PolicyEngine(residency::v1::Policy policy)
      : policy_(std::move(policy)) {}

  residency::v1::Policy policy_;
};

// True if `text` matches `pattern`, where '*' matches any run of characters
// (including none, and including '/') and every other character matches
// itself. Exposed for tests.
bool PolicyPatternMatches(absl::string_view pattern, absl::string_view text);

}  // namespace residency::key_service

#endif  // RESIDENCY_KEY_SERVICE_POLICY_H_
