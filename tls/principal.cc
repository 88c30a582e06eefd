#include "tls/principal.h"

#include <array>
#include <string>
#include <utility>

#include "absl/status/status.h"
#include "absl/strings/match.h"
#include "absl/strings/str_cat.h"
#include "absl/strings/string_view.h"
#include "rpc/printable.h"

namespace residency::tls {
namespace {

constexpr absl::string_view kScheme = "residency://";

struct KindEntry {
  Principal::Kind kind;
  absl::string_view name;
};
constexpr std::array<KindEntry, 4> kKinds = {{
    {Principal::Kind::kUser, "user"},
    {Principal::Kind::kOperator, "operator"},
    {Principal::Kind::kAuthority, "authority"},
    {Principal::Kind::kService, "service"},
}};

// The URI as it may appear in an error message: escaped, so that control
// characters cannot forge log lines, and cut short, so that a hostile
// certificate cannot make the message arbitrarily long.
std::string Quoted(absl::string_view uri) {
  constexpr size_t kMaxShown = 200;
  if (uri.size() <= kMaxShown) {
    return absl::StrCat("'", rpc::Printable(uri), "'");
  }
  return absl::StrCat("'", rpc::Printable(rpc::CutAtCharacter(uri, kMaxShown)),
                      "'... (", uri.size(), " bytes)");
}

absl::Status Invalid(absl::string_view uri, absl::string_view why) {
  return absl::InvalidArgumentError(
      absl::StrCat("principal ", Quoted(uri), ": ", why));
}

std::string Join(absl::string_view kind, absl::string_view name) {
  return absl::StrCat(kScheme, kind, "/", name);
}

}  // namespace

absl::string_view PrincipalKindName(Principal::Kind kind) {
  for (const KindEntry& entry : kKinds) {
    if (entry.kind == kind) return entry.name;
  }
  return "unknown";
}

absl::StatusOr<Principal> ParsePrincipal(absl::string_view uri) {
  if (!absl::StartsWith(uri, kScheme)) {
    return Invalid(uri, "does not start with 'residency://'");
  }
  const absl::string_view rest = uri.substr(kScheme.size());
  const size_t slash = rest.find('/');
  if (slash == absl::string_view::npos) {
    return Invalid(uri, "has no '/' between the kind and the name");
  }
  const absl::string_view kind_name = rest.substr(0, slash);
  const absl::string_view name = rest.substr(slash + 1);

  const KindEntry* kind = nullptr;
  for (const KindEntry& entry : kKinds) {
    if (entry.name == kind_name) kind = &entry;
  }
  if (kind == nullptr) {
    return Invalid(
        uri, absl::StrCat("kind '", rpc::Printable(kind_name.substr(0, 32)),
                          "' is not one of user, operator, "
                          "authority, service"));
  }

  if (name.empty()) return Invalid(uri, "name is empty");
  if (name.size() > kMaxPrincipalNameSize) {
    return Invalid(
        uri, absl::StrCat("name is ", name.size(), " bytes long; the limit is ",
                          kMaxPrincipalNameSize));
  }
  if (name == "." || name == "..") {
    return Invalid(uri, "name is a dot segment");
  }
  for (const char c : name) {
    const unsigned char byte = static_cast<unsigned char>(c);
    if (byte <= 0x20 || byte >= 0x7f) {
      return Invalid(uri, absl::StrCat("name has byte 0x",
                                       absl::Hex(byte, absl::kZeroPad2),
                                       ", which is not printable ASCII"));
    }
    if (c == '/' || c == '?' || c == '#' || c == '%') {
      return Invalid(uri, absl::StrCat("name has '", std::string(1, c),
                                       "', which is reserved in URIs"));
    }
  }
  return Principal{kind->kind, std::string(name), std::string(uri)};
}

std::string UserPrincipal(absl::string_view name) { return Join("user", name); }
std::string OperatorPrincipal(absl::string_view name) {
  return Join("operator", name);
}
std::string AuthorityPrincipal(absl::string_view jurisdiction) {
  return Join("authority", jurisdiction);
}
std::string ServicePrincipal(absl::string_view name) {
  return Join("service", name);
}

}  // namespace residency::tls
