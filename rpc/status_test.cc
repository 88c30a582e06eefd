#include "rpc/status.h"

#include <grpcpp/support/status.h>

#include <string>

#include "absl/status/status.h"
#include "absl/strings/str_cat.h"
#include "gtest/gtest.h"
#include "residency/v1/common.pb.h"
#include "residency/v1/storage.pb.h"

namespace residency::rpc {
namespace {

// Every canonical code with the names both libraries give it, so that a
// mapping by position that drifted (or a switch with a swapped case) fails.
struct CodePair {
  absl::StatusCode absl_code;
  grpc::StatusCode grpc_code;
};

class StatusCodeTest : public ::testing::TestWithParam<CodePair> {};

TEST_P(StatusCodeTest, ToGrpcKeepsCodeAndMessage) {
  const std::string message = absl::StrCat(
      "object 'a/b' v3: code ", static_cast<int>(GetParam().absl_code));
  const grpc::Status converted =
      ToGrpcStatus(absl::Status(GetParam().absl_code, message));
  EXPECT_EQ(converted.error_code(), GetParam().grpc_code);
  EXPECT_EQ(converted.error_message(), message);
}

TEST_P(StatusCodeTest, FromGrpcKeepsCodeAndMessage) {
  const std::string message = "policy rule 'no-export' denied the unwrap";
  const absl::Status converted =
      FromGrpcStatus(grpc::Status(GetParam().grpc_code, message));
  EXPECT_EQ(converted.code(), GetParam().absl_code);
  EXPECT_EQ(converted.message(), message);
}

TEST_P(StatusCodeTest, RoundTripIsIdentity) {
  const absl::Status original(GetParam().absl_code, "round trip");
  EXPECT_EQ(FromGrpcStatus(ToGrpcStatus(original)), original);
}

INSTANTIATE_TEST_SUITE_P(
    AllCanonicalCodes, StatusCodeTest,
    ::testing::Values(
        CodePair{absl::StatusCode::kCancelled, grpc::StatusCode::CANCELLED},
        CodePair{absl::StatusCode::kUnknown, grpc::StatusCode::UNKNOWN},
        CodePair{absl::StatusCode::kInvalidArgument,
                 grpc::StatusCode::INVALID_ARGUMENT},
        CodePair{absl::StatusCode::kDeadlineExceeded,
                 grpc::StatusCode::DEADLINE_EXCEEDED},
        CodePair{absl::StatusCode::kNotFound, grpc::StatusCode::NOT_FOUND},
        CodePair{absl::StatusCode::kAlreadyExists,
                 grpc::StatusCode::ALREADY_EXISTS},
        CodePair{absl::StatusCode::kPermissionDenied,
                 grpc::StatusCode::PERMISSION_DENIED},
        CodePair{absl::StatusCode::kResourceExhausted,
                 grpc::StatusCode::RESOURCE_EXHAUSTED},
        CodePair{absl::StatusCode::kFailedPrecondition,
                 grpc::StatusCode::FAILED_PRECONDITION},
        CodePair{absl::StatusCode::kAborted, grpc::StatusCode::ABORTED},
        CodePair{absl::StatusCode::kOutOfRange, grpc::StatusCode::OUT_OF_RANGE},
        CodePair{absl::StatusCode::kUnimplemented,
                 grpc::StatusCode::UNIMPLEMENTED},
        CodePair{absl::StatusCode::kInternal, grpc::StatusCode::INTERNAL},
        CodePair{absl::StatusCode::kUnavailable, grpc::StatusCode::UNAVAILABLE},
        CodePair{absl::StatusCode::kDataLoss, grpc::StatusCode::DATA_LOSS},
        CodePair{absl::StatusCode::kUnauthenticated,
                 grpc::StatusCode::UNAUTHENTICATED}));

TEST(StatusTest, OkMapsToOkBothWays) {
  EXPECT_TRUE(ToGrpcStatus(absl::OkStatus()).ok());
  EXPECT_TRUE(FromGrpcStatus(grpc::Status::OK).ok());
}

TEST(StatusTest, NonCanonicalGrpcCodeBecomesUnknownWithMessage) {
  // 20: past the last canonical code but inside the enum's range of values
  // (grpc::StatusCode has no fixed underlying type, so a larger value would
  // be undefined behaviour in the test itself).
  const absl::Status converted =
      FromGrpcStatus(grpc::Status(static_cast<grpc::StatusCode>(20), "odd"));
  EXPECT_EQ(converted.code(), absl::StatusCode::kUnknown);
  EXPECT_EQ(converted.message(), "odd");
}

TEST(StatusTest, DoNotUseGrpcCodeBecomesUnknown) {
  const absl::Status converted =
      FromGrpcStatus(grpc::Status(grpc::StatusCode::DO_NOT_USE, "odd"));
  EXPECT_EQ(converted.code(), absl::StatusCode::kUnknown);
}

residency::v1::VersionTaken Taken(uint64_t latest) {
  residency::v1::VersionTaken taken;
  taken.set_latest_version(latest);
  return taken;
}

TEST(StatusDetailTest, ADetailTravelsAsGoogleRpcStatusDetails) {
  const absl::Status refused = WithDetail(
      absl::AlreadyExistsError("alice/a v1: version 7 exists"), Taken(7));
  const grpc::Status sent = ToGrpcStatus(refused);
  EXPECT_EQ(sent.error_code(), grpc::StatusCode::ALREADY_EXISTS);
  EXPECT_EQ(sent.error_message(), "alice/a v1: version 7 exists");
  // What a gRPC tool reads as google.rpc.Status.
  residency::v1::RpcStatus details;
  ASSERT_TRUE(details.ParseFromString(sent.error_details()));
  EXPECT_EQ(details.code(), static_cast<int>(grpc::StatusCode::ALREADY_EXISTS));
  EXPECT_EQ(details.message(), "alice/a v1: version 7 exists");
  ASSERT_EQ(details.details_size(), 1);
  EXPECT_EQ(details.details(0).type_url(),
            "type.googleapis.com/residency.v1.VersionTaken");
  residency::v1::VersionTaken taken;
  ASSERT_TRUE(details.details(0).UnpackTo(&taken));
  EXPECT_EQ(taken.latest_version(), 7u);

  const absl::Status received = FromGrpcStatus(sent);
  EXPECT_EQ(received.code(), absl::StatusCode::kAlreadyExists);
  EXPECT_EQ(received.message(), "alice/a v1: version 7 exists");
  const std::optional<residency::v1::VersionTaken> detail =
      DetailOf<residency::v1::VersionTaken>(received);
  ASSERT_TRUE(detail.has_value());
  EXPECT_EQ(detail->latest_version(), 7u);
}

TEST(StatusDetailTest, AStatusWithoutDetailsSendsNone) {
  EXPECT_EQ(ToGrpcStatus(absl::AlreadyExistsError("exists")).error_details(),
            "");
  EXPECT_FALSE(
      DetailOf<residency::v1::VersionTaken>(absl::AlreadyExistsError("exists"))
          .has_value());
}

TEST(StatusDetailTest, DetailsThatDoNotParseAreDroppedAndTheErrorStands) {
  const absl::Status received =
      FromGrpcStatus(grpc::Status(grpc::StatusCode::ALREADY_EXISTS, "exists",
                                  std::string("\xff\xff\x01", 3)));
  EXPECT_EQ(received.code(), absl::StatusCode::kAlreadyExists);
  EXPECT_EQ(received.message(), "exists");
  int payloads = 0;
  received.ForEachPayload(
      [&](absl::string_view, const absl::Cord&) { ++payloads; });
  EXPECT_EQ(payloads, 0);
}

TEST(StatusDetailTest, OversizedDetailsAreDropped) {
  residency::v1::RpcStatus details;
  details.set_code(static_cast<int>(grpc::StatusCode::ALREADY_EXISTS));
  google::protobuf::Any* any = details.add_details();
  any->set_type_url("type.googleapis.com/residency.v1.VersionTaken");
  any->set_value(std::string(kMaxDetailsBytes, 'x'));
  const absl::Status received = FromGrpcStatus(grpc::Status(
      grpc::StatusCode::ALREADY_EXISTS, "exists", details.SerializeAsString()));
  EXPECT_EQ(received.code(), absl::StatusCode::kAlreadyExists);
  EXPECT_FALSE(received.GetPayload(any->type_url()).has_value());
}

int PayloadCount(const absl::Status& status) {
  int payloads = 0;
  status.ForEachPayload(
      [&](absl::string_view, const absl::Cord&) { ++payloads; });
  return payloads;
}

TEST(StatusDetailTest, OnlyTheProjectsOwnDetailsAreSent) {
  absl::Status refused =
      WithDetail(absl::AlreadyExistsError("exists"), Taken(3));
  // A payload some library might set: it must not reach the peer.
  refused.SetPayload("type.googleapis.com/google.rpc.DebugInfo",
                     absl::Cord("stack trace"));
  refused.SetPayload("type.googleapis.com/residency.v1.", absl::Cord("x"));
  const grpc::Status sent = ToGrpcStatus(refused);
  residency::v1::RpcStatus details;
  ASSERT_TRUE(details.ParseFromString(sent.error_details()));
  ASSERT_EQ(details.details_size(), 1);
  EXPECT_EQ(details.details(0).type_url(),
            "type.googleapis.com/residency.v1.VersionTaken");

  // With only foreign payloads, no details at all.
  absl::Status foreign = absl::InternalError("failed");
  foreign.SetPayload("type.googleapis.com/google.rpc.DebugInfo",
                     absl::Cord("stack trace"));
  EXPECT_EQ(ToGrpcStatus(foreign).error_details(), "");
}

TEST(StatusDetailTest, ForeignDetailsFromAPeerAreNotTaken) {
  residency::v1::RpcStatus details;
  details.set_code(static_cast<int>(grpc::StatusCode::ALREADY_EXISTS));
  google::protobuf::Any* own = details.add_details();
  own->set_type_url("type.googleapis.com/residency.v1.VersionTaken");
  own->set_value(Taken(5).SerializeAsString());
  google::protobuf::Any* foreign = details.add_details();
  foreign->set_type_url("type.googleapis.com/google.rpc.DebugInfo");
  foreign->set_value("from the peer");
  const absl::Status received = FromGrpcStatus(grpc::Status(
      grpc::StatusCode::ALREADY_EXISTS, "exists", details.SerializeAsString()));
  EXPECT_EQ(PayloadCount(received), 1);
  const std::optional<residency::v1::VersionTaken> taken =
      DetailOf<residency::v1::VersionTaken>(received);
  ASSERT_TRUE(taken.has_value());
  EXPECT_EQ(taken->latest_version(), 5u);
}

TEST(DescribeTest, CodeAndMessageWithoutPayloads) {
  EXPECT_EQ(Describe(absl::OkStatus()), "OK");
  const absl::Status refused = WithDetail(
      absl::AlreadyExistsError("alice/a v1: version 7 exists"), Taken(7));
  EXPECT_EQ(Describe(refused), "ALREADY_EXISTS: alice/a v1: version 7 exists");
  // ToString would show the payload's bytes.
  EXPECT_NE(refused.ToString(), Describe(refused));
}

TEST(DescribeTest, AMessageFromAPeerCannotForgeALine) {
  EXPECT_EQ(Describe(absl::PermissionDeniedError(
                "rule 'r1'\n\x1b[2Jresidency: OK \\ caf\xc3\xa9\x7f")),
            "PERMISSION_DENIED: rule 'r1'\\x0a\\x1b[2Jresidency: OK "
            "\\ caf\xc3\xa9\\x7f");
}

TEST(DescribeTest, ANameQuotedInAMessageIsEscapedOnce) {
  // The node quotes the name with Printable; the client shows the message
  // with Describe. A Chinese name reads as itself, an apostrophe stays, and
  // the escape of a control character is not escaped again.
  const std::string name = "\xe6\x8a\xa5\xe5\x91\x8a's\x1b[2J\\.txt";
  EXPECT_EQ(Describe(absl::NotFoundError(
                absl::StrCat("object 'alice/", Printable(name), "' v2"))),
            "NOT_FOUND: object 'alice/\xe6\x8a\xa5\xe5\x91\x8a's"
            "\\x1b[2J\\x5c.txt' v2");
}

TEST(PrintableTest, EscapesBidirectionalControlsAndLineSeparators) {
  // U+202E (right-to-left override), U+2028, U+2029, U+200E, U+200F,
  // U+2066, U+2069, U+061C; kept: U+2010 and U+2030 beside them, and
  // U+0627 beside U+061C.
  EXPECT_EQ(Printable("a\xe2\x80\xae"
                      "b\xe2\x80\xa8"
                      "c\xe2\x80\xa9"
                      "d\xe2\x80\x8e\xe2\x80\x8f"
                      "e\xe2\x81\xa6"
                      "f\xe2\x81\xa9"
                      "g\xd8\x9c"),
            "a\\xe2\\x80\\xae"
            "b\\xe2\\x80\\xa8"
            "c\\xe2\\x80\\xa9"
            "d\\xe2\\x80\\x8e\\xe2\\x80\\x8f"
            "e\\xe2\\x81\\xa6"
            "f\\xe2\\x81\\xa9"
            "g\\xd8\\x9c");
  EXPECT_EQ(Printable("\xe2\x80\x90\xe2\x80\xb0\xd8\xa7"),
            "\xe2\x80\x90\xe2\x80\xb0\xd8\xa7");
  EXPECT_EQ(PrintableMessage("x\xe2\x80\xaey"), "x\\xe2\\x80\\xaey");
  // Just outside each range: U+061B, U+061D, U+200D, U+2010, U+2027,
  // U+202F, U+2065, U+206A.
  for (const char* kept :
       {"\xd8\x9b", "\xd8\x9d", "\xe2\x80\x8d", "\xe2\x80\x90", "\xe2\x80\xa7",
        "\xe2\x80\xaf", "\xe2\x81\xa5", "\xe2\x81\xaa"}) {
    EXPECT_EQ(Printable(kept), kept) << Printable(std::string("\\") + kept);
  }
}

TEST(CutAtCharacterTest, NeverEndsInsideACharacter) {
  const std::string report = "\xe6\x8a\xa5\xe5\x91\x8a";  // two characters
  EXPECT_EQ(CutAtCharacter(report, 6), report);
  EXPECT_EQ(CutAtCharacter(report, 5), "\xe6\x8a\xa5");
  EXPECT_EQ(CutAtCharacter(report, 4), "\xe6\x8a\xa5");
  EXPECT_EQ(CutAtCharacter(report, 3), "\xe6\x8a\xa5");
  EXPECT_EQ(CutAtCharacter(report, 2), "");
  EXPECT_EQ(CutAtCharacter("abc", 2), "ab");
  EXPECT_EQ(CutAtCharacter("", 0), "");
}

TEST(PrintableMessageTest, KeepsTheBackslashEscapesTheRestAsPrintable) {
  EXPECT_EQ(PrintableMessage("a\\x1b b\x1b c\xc2\x9b d\xe6\x96\x87 e\xff"),
            "a\\x1b b\\x1b c\\xc2\\x9b d\xe6\x96\x87 e\\xff");
}

TEST(PrintableTest, EscapesControlBytesAndTheBackslashKeepsTheRest) {
  EXPECT_EQ(Printable(""), "");
  EXPECT_EQ(Printable("alice/report \"2014\" \xe6\x96\x87"),
            "alice/report \"2014\" \xe6\x96\x87");
  EXPECT_EQ(Printable(std::string("a\0b\tc\\", 6)), "a\\x00b\\x09c\\x5c");
}

TEST(PrintableTest, EscapesC1ControlsAndBytesThatAreNotUtf8) {
  // Kept: two-, three- and four-byte characters, the first just above C1.
  EXPECT_EQ(Printable("\xc2\xa0 caf\xc3\xa9 \xe6\x96\x87 \xf0\x9f\x94\x91"),
            "\xc2\xa0 caf\xc3\xa9 \xe6\x96\x87 \xf0\x9f\x94\x91");
  // C1 as UTF-8 (U+009B, CSI) and as a lone byte.
  EXPECT_EQ(Printable("a\xc2\x9b"
                      "2J b\x9b"
                      "2J"),
            "a\\xc2\\x9b2J b\\x9b2J");
  // A cut sequence, an overlong form, a surrogate, above U+10FFFF.
  EXPECT_EQ(Printable("\xe6\x96"), "\\xe6\\x96");
  EXPECT_EQ(Printable("\xc0\xaf"), "\\xc0\\xaf");
  EXPECT_EQ(Printable("\xed\xa0\x80"), "\\xed\\xa0\\x80");
  EXPECT_EQ(Printable("\xf4\x90\x80\x80"), "\\xf4\\x90\\x80\\x80");
  // Overlong three- and four-byte forms, a lead byte above F4, a four-byte
  // character cut at the end.
  EXPECT_EQ(Printable("\xe0\x9f\xbf"), "\\xe0\\x9f\\xbf");
  EXPECT_EQ(Printable("\xf0\x8f\xbf\xbf"), "\\xf0\\x8f\\xbf\\xbf");
  EXPECT_EQ(Printable("\xf5\x80\x80\x80"), "\\xf5\\x80\\x80\\x80");
  EXPECT_EQ(Printable("ok \xf0\x9f\x94"), "ok \\xf0\\x9f\\x94");
  // The edges that are kept: the last before the surrogates, U+10FFFF,
  // the first after C1.
  EXPECT_EQ(Printable("\xed\x9f\xbf"), "\xed\x9f\xbf");
  EXPECT_EQ(Printable("\xf4\x8f\xbf\xbf"), "\xf4\x8f\xbf\xbf");
  EXPECT_EQ(Printable("\xc2\x9f\xc2\xa0"), "\\xc2\\x9f\xc2\xa0");
}

}  // namespace
}  // namespace residency::rpc
