#ifndef RESIDENCY_TESTS_STATUS_MATCHERS_H_
#define RESIDENCY_TESTS_STATUS_MATCHERS_H_

// Test-only helpers for absl::Status / absl::StatusOr (Abseil 20220623 ships
// no public status matchers). Header-only so that any test target can use it
// without a link dependency.
//
//   EXPECT_OK(status_or_statusor);
//   ASSERT_OK_AND_ASSIGN(std::string pt, aead.Decrypt(ct, ad));
//   EXPECT_THAT(result.status(), StatusIs(absl::StatusCode::kDataLoss));

#include <ostream>
#include <string>
#include <utility>

#include "absl/base/config.h"
#include "absl/status/status.h"
#include "absl/status/statusor.h"
#include "gmock/gmock.h"
#include "gtest/gtest.h"

namespace residency::testing {

inline const absl::Status& GetStatus(const absl::Status& status) {
  return status;
}
template <typename T>
const absl::Status& GetStatus(const absl::StatusOr<T>& status_or) {
  return status_or.status();
}

// Matches an absl::Status (or StatusOr) with the given code.
MATCHER_P(StatusIs, code,
          std::string(negation ? "does not have" : "has") + " status code " +
              absl::StatusCodeToString(code)) {
  const absl::Status& status = ::residency::testing::GetStatus(arg);
  *result_listener << "whose status is " << status;
  return status.code() == code;
}

// Matches a Status (or StatusOr) with the given code and a message that
// matches `message_matcher`, e.g. StatusIs(kPermissionDenied,
// HasSubstr("default-deny")).
MATCHER_P2(StatusIs, code, message_matcher,
           std::string(negation ? "does not have" : "has") + " status code " +
               absl::StatusCodeToString(code) + " and a matching message") {
  const absl::Status& status = ::residency::testing::GetStatus(arg);
  *result_listener << "whose status is " << status;
  return status.code() == code &&
         ::testing::Value(std::string(status.message()), message_matcher);
}

// Matches an OK StatusOr whose value matches `value_matcher`. The fixed
// description keeps the expected value (often a key) out of failure output.
MATCHER_P(IsOkAndHolds, value_matcher,
          std::string(negation ? "is not" : "is") +
              " OK holding the expected value") {
  if (!arg.ok()) {
    *result_listener << "whose status is " << arg.status();
    return false;
  }
  return ::testing::Value(*arg, value_matcher);
}

}  // namespace residency::testing

#if defined(ABSL_LTS_RELEASE_VERSION) && ABSL_LTS_RELEASE_VERSION <= 20220623
namespace absl {
ABSL_NAMESPACE_BEGIN
// GoogleTest prints the value of a failed EXPECT_THAT. This Abseil has no
// printer for StatusOr, so GoogleTest would dump its object bytes; print only
// the status instead. Never the value: it may be a key or a plaintext.
// (Later Abseil releases bring their own PrintTo, hence the version check.)
template <typename T>
void PrintTo(const StatusOr<T>& status_or, std::ostream* os) {
  *os << status_or.status();
}
ABSL_NAMESPACE_END
}  // namespace absl
#endif

#define RESIDENCY_STATUS_CONCAT_INNER_(a, b) a##b
#define RESIDENCY_STATUS_CONCAT_(a, b) RESIDENCY_STATUS_CONCAT_INNER_(a, b)

// Both evaluate `expr` exactly once. The switch keeps a following `else` from
// binding to the hidden `if` (the same trick GoogleTest uses).
#define EXPECT_OK(expr)                            \
  switch (0)                                       \
  case 0:                                          \
  default:                                         \
    if (const ::absl::Status residency_status_ =   \
            ::residency::testing::GetStatus(expr); \
        residency_status_.ok()) {                  \
    } else                                         \
      ADD_FAILURE() << #expr << ": " << residency_status_

#define ASSERT_OK(expr)                            \
  switch (0)                                       \
  case 0:                                          \
  default:                                         \
    if (const ::absl::Status residency_status_ =   \
            ::residency::testing::GetStatus(expr); \
        residency_status_.ok()) {                  \
    } else                                         \
      FAIL() << #expr << ": " << residency_status_

#define ASSERT_OK_AND_ASSIGN(lhs, rexpr) \
  RESIDENCY_ASSERT_OK_AND_ASSIGN_IMPL_(  \
      RESIDENCY_STATUS_CONCAT_(residency_status_or_, __LINE__), lhs, rexpr)

#define RESIDENCY_ASSERT_OK_AND_ASSIGN_IMPL_(statusor, lhs, rexpr)   \
  auto statusor = (rexpr);                                           \
  ASSERT_TRUE(statusor.ok()) << #rexpr << ": " << statusor.status(); \
  lhs = std::move(statusor).value()

#endif  // RESIDENCY_TESTS_STATUS_MATCHERS_H_
