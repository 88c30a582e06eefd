#include "key_service/policy.h"

#include <fcntl.h>
#include <unistd.h>

#include <algorithm>
#include <cerrno>
#include <iterator>
#include <map>
#include <utility>

#include "absl/status/status.h"
#include "absl/strings/ascii.h"
#include "absl/strings/match.h"
#include "absl/strings/str_cat.h"
#include "google/protobuf/descriptor.h"
#include "google/protobuf/repeated_field.h"
#include "google/protobuf/text_format.h"
#include "proto/text_parse.h"
#include "rpc/printable.h"

namespace residency::key_service {
namespace {

using ::google::protobuf::FieldDescriptor;
using ::google::protobuf::RepeatedField;
using ::google::protobuf::RepeatedPtrField;
using ::google::protobuf::TextFormat;
using ::residency::v1::Justification;
using ::residency::v1::Policy;

constexpr absl::string_view kUserPrincipalPrefix = "residency://user/";

// "policy NAME:LINE:COL: what" from the parser's 0-based location, or
// "policy NAME: what" when there is none.
absl::Status LoadError(absl::string_view source_name,
                       TextFormat::ParseLocation location,
                       absl::string_view what) {
  if (location.line < 0) {
    return absl::InvalidArgumentError(
        absl::StrCat("policy ", source_name, ": ", what));
  }
  return absl::InvalidArgumentError(
      absl::StrCat("policy ", source_name, ":", location.line + 1, ":",
                   location.column + 1, ": ", what));
}

// Where to point a validation error at: the offending value of one rule, or
// the rule itself when the value was not written out (a missing field) or
// cannot be told apart (several values written as one "[a, b]" list).
class RuleLocator {
 public:
  RuleLocator(const TextFormat::ParseInfoTree& root, int rule_index,
              int rule_count) {
    const FieldDescriptor* rules =
        Policy::descriptor()->FindFieldByNumber(Policy::kRulesFieldNumber);
    // Rules written as one "rules: [{...}, {...}]" list share a location, so
    // then a rule has none of its own (see Value below).
    if (root.GetLocation(rules, rule_count - 1).line >= 0) {
      rule_location_ = root.GetLocation(rules, rule_index);
    }
    tree_ = root.GetTreeForNested(rules, rule_index);
  }

  TextFormat::ParseLocation Rule() const { return rule_location_; }

  TextFormat::ParseLocation Field(int field_number) const {
    const FieldDescriptor* field = FieldFor(field_number);
    if (tree_ == nullptr || field->is_repeated()) return rule_location_;
    return Found(tree_->GetLocation(field, -1));
  }

  TextFormat::ParseLocation Value(int field_number, int index,
                                  int field_size) const {
    const FieldDescriptor* field = FieldFor(field_number);
    // Each written occurrence of a field records one location; only when
    // there is one per value do locations and values line up.
    if (tree_ == nullptr ||
        tree_->GetLocation(field, field_size - 1).line < 0) {
      return rule_location_;
    }
    return Found(tree_->GetLocation(field, index));
  }

 private:
  static const FieldDescriptor* FieldFor(int field_number) {
    return Policy::Rule::descriptor()->FindFieldByNumber(field_number);
  }
  TextFormat::ParseLocation Found(TextFormat::ParseLocation location) const {
    return location.line < 0 ? rule_location_ : location;
  }

  TextFormat::ParseLocation rule_location_;
  const TextFormat::ParseInfoTree* tree_ = nullptr;
};

// The principal kinds a caller can have: tls/principal.h's Principal::Kind,
// spelt as in its URIs. Restated here so that policy does not depend on tls.
constexpr absl::string_view kPrincipalScheme = "residency://";
constexpr absl::string_view kPrincipalKinds[] = {"user", "operator",
                                                 "authority", "service"};
constexpr absl::string_view kPrincipalForms =
    "a principal pattern is \"*\" or residency://KIND/NAME with KIND one of "
    "user, operator, authority, service";

bool IsPrincipalKind(absl::string_view kind) {
  return std::find(std::begin(kPrincipalKinds), std::end(kPrincipalKinds),
                   kind) != std::end(kPrincipalKinds);
}

// Why no caller's principal can match `pattern`, or "" if one can. Callers
// are residency://KIND/NAME with a lower-case scheme and kind and a non-empty
// NAME; a '*' in the kind may stand for any kind and the '/' after it.
std::string PrincipalPatternDefect(absl::string_view pattern) {
  if (pattern == "*") return "";
  if (!absl::StartsWith(pattern, kPrincipalScheme)) {
    if (absl::StartsWithIgnoreCase(pattern, kPrincipalScheme)) {
      return absl::StrCat("the scheme must be written \"", kPrincipalScheme,
                          "\", in lower case");
    }
    return absl::StrCat("it does not start with \"", kPrincipalScheme, "\"");
  }
  const absl::string_view rest = pattern.substr(kPrincipalScheme.size());
  const size_t slash = rest.find('/');
  const absl::string_view kind = rest.substr(0, slash);
  if (absl::StrContains(kind, '*')) return "";
  if (kind.empty()) {
    return absl::StrCat("it has no kind after \"", kPrincipalScheme, "\"");
  }
  if (!IsPrincipalKind(kind)) {
    if (IsPrincipalKind(absl::AsciiStrToLower(kind))) {
      return absl::StrCat("the kind \"", rpc::Printable(kind),
                          "\" must be written in lower case");
    }
    return absl::StrCat("\"", rpc::Printable(kind),
                        "\" is not a principal kind");
  }
  if (slash == absl::string_view::npos) {
    return absl::StrCat("it has no '/' and name after the kind \"", kind, "\"");
  }
  if (slash + 1 == rest.size()) {
    return absl::StrCat("it has an empty name after \"", kPrincipalScheme, kind,
                        "/\"");
  }
  return "";
}

// The rest of the error message for a principal pattern no caller can
// match, or "" when `pattern` is acceptable.
std::string PrincipalPatternProblem(absl::string_view pattern) {
  const std::string defect = PrincipalPatternDefect(pattern);
  if (defect.empty()) return "";
  return absl::StrCat("matches no caller: ", defect, "; ", kPrincipalForms);
}

// The rest of the error message for a legal_process_jurisdictions entry that
// is not a jurisdiction, or "" when `jurisdiction` is one (or is empty, which
// is reported separately).
std::string JurisdictionProblem(absl::string_view jurisdiction) {
  constexpr size_t kMaxJurisdictionSize = 16;
  if (jurisdiction.size() > kMaxJurisdictionSize ||
      !std::all_of(jurisdiction.begin(), jurisdiction.end(),
                   [](char c) { return c >= 'A' && c <= 'Z'; })) {
    return absl::StrCat("is not a jurisdiction: one is 1 to ",
                        kMaxJurisdictionSize,
                        " upper-case ASCII letters, such as \"US\", and "
                        "legal processes are matched case-sensitively");
  }
  return "";
}

// Checks that each of `values` (field `field_name` of one rule) is non-empty
// and, when `problem` is given, that `problem` finds nothing wrong with it.
absl::Status CheckValues(const RepeatedPtrField<std::string>& values,
                         absl::string_view field_name, int field_number,
                         absl::string_view rule_label,
                         const RuleLocator& locator,
                         absl::string_view source_name,
                         std::string (*problem)(absl::string_view) = nullptr) {
  for (int j = 0; j < values.size(); ++j) {
    const TextFormat::ParseLocation location =
        locator.Value(field_number, j, values.size());
    if (values.Get(j).empty()) {
      return LoadError(
          source_name, location,
          absl::StrCat(rule_label, ": ", field_name, "[", j, "] is empty"));
    }
    if (problem == nullptr) continue;
    if (std::string why = problem(values.Get(j)); !why.empty()) {
      return LoadError(
          source_name, location,
          absl::StrCat(rule_label, ": ", field_name, "[", j, "] \"",
                       rpc::Printable(values.Get(j)), "\" ", why));
    }
  }
  return absl::OkStatus();
}

absl::Status Validate(const Policy& policy,
                      const TextFormat::ParseInfoTree& locations,
                      absl::string_view source_name) {
  using Rule = Policy::Rule;
  std::map<absl::string_view, int> first_use;  // name -> rule number
  for (int i = 0; i < policy.rules_size(); ++i) {
    const Rule& rule = policy.rules(i);
    const RuleLocator locator(locations, i, policy.rules_size());
    const int number = i + 1;
    if (rule.name().empty()) {
      return LoadError(source_name, locator.Rule(),
                       absl::StrCat("rule #", number, " has no name"));
    }
    const std::string label =
        absl::StrCat("rule #", number, " '", rpc::Printable(rule.name()), "'");
    if (rule.name() == kDefaultDenyRule) {
      return LoadError(
          source_name, locator.Field(Rule::kNameFieldNumber),
          absl::StrCat(label, ": the name '", kDefaultDenyRule,
                       "' is reserved for the implicit last rule"));
    }
    if (auto [it, inserted] = first_use.try_emplace(rule.name(), number);
        !inserted) {
      return LoadError(
          source_name, locator.Field(Rule::kNameFieldNumber),
          absl::StrCat(label, ": name already used by rule #", it->second));
    }
    if (rule.effect() != Rule::ALLOW && rule.effect() != Rule::DENY) {
      const std::string effect =
          Rule::Effect_IsValid(rule.effect())
              ? Rule::Effect_Name(rule.effect())
              : absl::StrCat(static_cast<int>(rule.effect()));
      return LoadError(source_name, locator.Field(Rule::kEffectFieldNumber),
                       absl::StrCat(label, ": effect is ", effect,
                                    "; it must be ALLOW or DENY"));
    }
    for (int j = 0; j < rule.operations_size(); ++j) {
      const int op = rule.operations(j);
      if (op == v1::OPERATION_UNSPECIFIED || !v1::Operation_IsValid(op)) {
        return LoadError(
            source_name,
            locator.Value(Rule::kOperationsFieldNumber, j,
                          rule.operations_size()),
            absl::StrCat(label, ": operations[", j, "] is ",
                         op == v1::OPERATION_UNSPECIFIED
                             ? "OPERATION_UNSPECIFIED"
                             : absl::StrCat(op, ", not an Operation")));
      }
    }
    for (int j = 0; j < rule.justifications_size(); ++j) {
      const int reason = rule.justifications(j);
      if (!Justification::Reason_IsValid(reason)) {
        return LoadError(source_name,
                         locator.Value(Rule::kJustificationsFieldNumber, j,
                                       rule.justifications_size()),
                         absl::StrCat(label, ": justifications[", j, "] is ",
                                      reason, ", not a Justification.Reason"));
      }
    }
    if (absl::Status status = CheckValues(
            rule.principals(), "principals", Rule::kPrincipalsFieldNumber,
            label, locator, source_name, PrincipalPatternProblem);
        !status.ok()) {
      return status;
    }
    if (absl::Status status =
            CheckValues(rule.key_ids(), "key_ids", Rule::kKeyIdsFieldNumber,
                        label, locator, source_name);
        !status.ok()) {
      return status;
    }
    if (absl::Status status = CheckValues(
            rule.legal_process_jurisdictions(), "legal_process_jurisdictions",
            Rule::kLegalProcessJurisdictionsFieldNumber, label, locator,
            source_name, JurisdictionProblem);
        !status.ok()) {
      return status;
    }
  }
  return absl::OkStatus();
}

bool AnyPatternMatches(const RepeatedPtrField<std::string>& patterns,
                       absl::string_view text) {
  for (const std::string& pattern : patterns) {
    if (PolicyPatternMatches(pattern, text)) return true;
  }
  return false;
}

bool Contains(const RepeatedField<int>& values, int value) {
  return std::find(values.begin(), values.end(), value) != values.end();
}

bool CallerIsOwner(const PolicyRequest& request) {
  if (!request.key_id.has_value() || !request.key_owner.has_value() ||
      request.key_owner->empty()) {
    return false;
  }
  const absl::string_view owner = *request.key_owner;
  return request.principal.size() ==
             kUserPrincipalPrefix.size() + owner.size() &&
         absl::StartsWith(request.principal, kUserPrincipalPrefix) &&
         absl::EndsWith(request.principal, owner);
}

bool LegalProcessMatches(const RepeatedPtrField<std::string>& jurisdictions,
                         const PolicyRequest& request) {
  if (request.reason != Justification::THIRD_PARTY_DATA_REQUEST ||
      !request.legal_process_jurisdiction.has_value()) {
    return false;
  }
  for (const std::string& jurisdiction : jurisdictions) {
    if (jurisdiction == *request.legal_process_jurisdiction) return true;
  }
  return false;
}

bool RuleMatches(const Policy::Rule& rule, const PolicyRequest& request) {
  if (!rule.principals().empty() &&
      !AnyPatternMatches(rule.principals(), request.principal)) {
    return false;
  }
  if (rule.caller_is_owner() && !CallerIsOwner(request)) return false;
  if (!rule.operations().empty() &&
      !Contains(rule.operations(), request.operation)) {
    return false;
  }
  if (!rule.key_ids().empty() &&
      (!request.key_id.has_value() ||
       !AnyPatternMatches(rule.key_ids(), *request.key_id))) {
    return false;
  }
  if (!rule.justifications().empty() &&
      !Contains(rule.justifications(), request.reason)) {
    return false;
  }
  if (!rule.legal_process_jurisdictions().empty() &&
      !LegalProcessMatches(rule.legal_process_jurisdictions(), request)) {
    return false;
  }
  return true;
}

}  // namespace

bool PolicyPatternMatches(absl::string_view pattern, absl::string_view text) {
  // Greedy matching that, on a mismatch, lets the most recent '*' take one
  // more character. Linear in the common case, O(pattern * text) at worst,
  // and allocation-free.
  size_t p = 0;
  size_t t = 0;
  size_t star = absl::string_view::npos;
  size_t star_text = 0;
  while (t < text.size()) {
    if (p < pattern.size() && pattern[p] == '*') {
      star = p++;
      star_text = t;
    } else if (p < pattern.size() && pattern[p] == text[t]) {
      ++p;
      ++t;
    } else if (star != absl::string_view::npos) {
      p = star + 1;
      t = ++star_text;
    } else {
      return false;
    }
  }
  while (p < pattern.size() && pattern[p] == '*') ++p;
  return p == pattern.size();
}

absl::StatusOr<PolicyEngine> PolicyEngine::Parse(
    absl::string_view text_proto, absl::string_view source_name) {
  if (text_proto.size() > kMaxPolicyFileSize) {
    return absl::InvalidArgumentError(
        absl::StrCat("policy ", source_name, " is ", text_proto.size(),
                     " bytes, more than the limit of ", kMaxPolicyFileSize));
  }
  Policy policy;
  TextFormat::ParseInfoTree locations;
  if (absl::Status status = proto::ParseTextProto(
          text_proto, absl::StrCat("policy ", source_name), &policy,
          &locations);
      !status.ok()) {
    return status;
  }
  if (absl::Status status = Validate(policy, locations, source_name);
      !status.ok()) {
    return status;
  }
  return PolicyEngine(std::move(policy));
}

absl::StatusOr<PolicyEngine> PolicyEngine::LoadFile(const std::string& path) {
  const std::string what = absl::StrCat("policy file ", path);
  int fd;
  do {
    fd = open(path.c_str(), O_RDONLY | O_CLOEXEC);
  } while (fd < 0 && errno == EINTR);
  if (fd < 0) return absl::ErrnoToStatus(errno, what);

  // One byte past the limit tells an over-long file from one at the limit.
  std::string text;
  char buffer[16384];
  absl::Status status;
  while (text.size() <= kMaxPolicyFileSize) {
    const ssize_t n = read(fd, buffer, sizeof(buffer));
    if (n < 0 && errno == EINTR) continue;
    if (n < 0) {
      status = absl::ErrnoToStatus(errno, what);
      break;
    }
    if (n == 0) break;
    text.append(buffer, static_cast<size_t>(n));
  }
  close(fd);
  if (!status.ok()) return status;
  if (text.size() > kMaxPolicyFileSize) {
    return absl::InvalidArgumentError(absl::StrCat(
        what, " is larger than the limit of ", kMaxPolicyFileSize, " bytes"));
  }
  return Parse(text, path);
}

PolicyDecision PolicyEngine::Decide(const PolicyRequest& request) const {
  // The service refuses an unspecified operation before asking; should one
  // get here anyway, no rule (not even one with no conditions) may allow it.
  if (request.operation != v1::OPERATION_UNSPECIFIED) {
    for (const Policy::Rule& rule : policy_.rules()) {
      if (RuleMatches(rule, request)) {
        return {rule.effect() == Policy::Rule::ALLOW, rule.name()};
      }
    }
  }
  return {false, std::string(kDefaultDenyRule)};
}

}  // namespace residency::key_service
