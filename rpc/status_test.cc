#include "rpc/status.h"

#include <grpcpp/support/status.h>

#include <string>

#include "absl/status/status.h"
#include "absl/strings/str_cat.h"
#include "gtest/gtest.h"

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

}  // namespace
}  // namespace residency::rpc
