#include "tls/principal.h"

#include <string>

#include "absl/status/status.h"
#include "absl/strings/match.h"
#include "gmock/gmock.h"
#include "gtest/gtest.h"
#include "tests/status_matchers.h"

namespace residency::tls {
namespace {

using ::residency::testing::StatusIs;
using ::testing::HasSubstr;
using ::testing::Not;

struct Accepted {
  std::string uri;
  Principal::Kind kind;
  std::string name;
};

class ParsePrincipalAcceptsTest : public ::testing::TestWithParam<Accepted> {};

TEST_P(ParsePrincipalAcceptsTest, ReturnsKindNameAndUri) {
  ASSERT_OK_AND_ASSIGN(Principal principal, ParsePrincipal(GetParam().uri));
  EXPECT_EQ(principal.kind, GetParam().kind);
  EXPECT_EQ(principal.name, GetParam().name);
  EXPECT_EQ(principal.uri, GetParam().uri);
}

INSTANTIATE_TEST_SUITE_P(
    ValidUris, ParsePrincipalAcceptsTest,
    ::testing::Values(
        Accepted{"residency://user/alice", Principal::Kind::kUser, "alice"},
        Accepted{"residency://operator/cn-telecom", Principal::Kind::kOperator,
                 "cn-telecom"},
        Accepted{"residency://authority/cn", Principal::Kind::kAuthority, "cn"},
        Accepted{"residency://service/key-service", Principal::Kind::kService,
                 "key-service"},
        Accepted{"residency://user/a", Principal::Kind::kUser, "a"},
        Accepted{"residency://user/Alice.Smith_2@example+x,y:z",
                 Principal::Kind::kUser, "Alice.Smith_2@example+x,y:z"},
        Accepted{"residency://user/..a", Principal::Kind::kUser, "..a"},
        Accepted{"residency://user/" + std::string(kMaxPrincipalNameSize, 'x'),
                 Principal::Kind::kUser,
                 std::string(kMaxPrincipalNameSize, 'x')}));

struct Rejected {
  std::string label;
  std::string uri;
  std::string reason;  // a fragment of the expected message
};

class ParsePrincipalRejectsTest : public ::testing::TestWithParam<Rejected> {};

TEST_P(ParsePrincipalRejectsTest, IsInvalidArgumentSayingWhy) {
  absl::StatusOr<Principal> principal = ParsePrincipal(GetParam().uri);
  EXPECT_THAT(principal, StatusIs(absl::StatusCode::kInvalidArgument));
  EXPECT_THAT(std::string(principal.status().message()),
              HasSubstr(GetParam().reason));
}

INSTANTIATE_TEST_SUITE_P(
    InvalidUris, ParsePrincipalRejectsTest,
    ::testing::Values(
        Rejected{"Empty", "", "does not start with 'residency://'"},
        Rejected{"OtherScheme", "https://user/alice", "does not start with"},
        Rejected{"SpiffeScheme", "spiffe://user/alice", "does not start with"},
        Rejected{"UpperCaseScheme", "RESIDENCY://user/alice",
                 "does not start with"},
        Rejected{"SingleSlash", "residency:/user/alice", "does not start with"},
        Rejected{"NoKindSeparator", "residency://user", "has no '/'"},
        Rejected{"UnknownKind", "residency://admin/alice",
                 "kind 'admin' is not one of"},
        Rejected{"UpperCaseKind", "residency://User/alice", "kind 'User'"},
        Rejected{"EmptyKind", "residency:///alice", "kind ''"},
        Rejected{"EmptyName", "residency://user/", "name is empty"},
        Rejected{
            "NameTooLong",
            "residency://user/" + std::string(kMaxPrincipalNameSize + 1, 'x'),
            "129 bytes long; the limit is 128"},
        Rejected{"NameWithSlash", "residency://user/alice/admin",
                 "'/', which is reserved"},
        Rejected{"NameWithQuery", "residency://user/alice?x=1",
                 "'?', which is reserved"},
        Rejected{"NameWithFragment", "residency://user/alice#x",
                 "'#', which is reserved"},
        Rejected{"NameWithEscape", "residency://user/%61lice",
                 "'%', which is reserved"},
        Rejected{"Dot", "residency://user/.", "dot segment"},
        Rejected{"DotDot", "residency://user/..", "dot segment"},
        Rejected{"NameWithNewline", "residency://user/ali\nce", "byte 0x0a"},
        Rejected{"NameWithNul", std::string("residency://user/ali\0ce", 23),
                 "byte 0x00"},
        Rejected{"NameWithSpace", "residency://user/ali ce", "byte 0x20"},
        Rejected{"NameWithDel",
                 "residency://user/ali\x7f"
                 "ce",
                 "byte 0x7f"},
        Rejected{"NameWithNonAscii", "residency://user/caf\xc3\xa9",
                 "byte 0xc3"}),
    [](const ::testing::TestParamInfo<Rejected>& info) {
      return info.param.label;
    });

TEST(ParsePrincipalTest, MessageEscapesControlCharacters) {
  absl::StatusOr<Principal> principal =
      ParsePrincipal("residency://user/alice\nFAKE LOG LINE");
  ASSERT_THAT(principal, StatusIs(absl::StatusCode::kInvalidArgument));
  EXPECT_THAT(std::string(principal.status().message()), Not(HasSubstr("\n")));
  EXPECT_THAT(std::string(principal.status().message()),
              HasSubstr("alice\\x0aFAKE"));
}

TEST(ParsePrincipalTest, MessageQuotesAHugeUriOnlyInPart) {
  const std::string uri = "https://" + std::string(100000, 'x');
  absl::StatusOr<Principal> principal = ParsePrincipal(uri);
  ASSERT_THAT(principal, StatusIs(absl::StatusCode::kInvalidArgument));
  EXPECT_LT(principal.status().message().size(), 400u);
  EXPECT_THAT(std::string(principal.status().message()),
              HasSubstr("(100008 bytes)"));
}

TEST(PrincipalHelpersTest, BuildUrisThatParseToTheirKind) {
  struct Case {
    std::string uri;
    Principal::Kind kind;
    std::string expected;
  };
  for (const Case& c : {
           Case{UserPrincipal("alice"), Principal::Kind::kUser,
                "residency://user/alice"},
           Case{OperatorPrincipal("cn-telecom"), Principal::Kind::kOperator,
                "residency://operator/cn-telecom"},
           Case{AuthorityPrincipal("cn"), Principal::Kind::kAuthority,
                "residency://authority/cn"},
           Case{ServicePrincipal("key-service"), Principal::Kind::kService,
                "residency://service/key-service"},
       }) {
    EXPECT_EQ(c.uri, c.expected);
    ASSERT_OK_AND_ASSIGN(Principal principal, ParsePrincipal(c.uri));
    EXPECT_EQ(principal.kind, c.kind);
  }
}

TEST(PrincipalHelpersTest, BadNameMakesAnUriThatIsRefused) {
  EXPECT_THAT(ParsePrincipal(UserPrincipal("a/b")),
              StatusIs(absl::StatusCode::kInvalidArgument));
}

TEST(PrincipalKindNameTest, NamesEveryKind) {
  EXPECT_EQ(PrincipalKindName(Principal::Kind::kUser), "user");
  EXPECT_EQ(PrincipalKindName(Principal::Kind::kOperator), "operator");
  EXPECT_EQ(PrincipalKindName(Principal::Kind::kAuthority), "authority");
  EXPECT_EQ(PrincipalKindName(Principal::Kind::kService), "service");
}

}  // namespace
}  // namespace residency::tls
