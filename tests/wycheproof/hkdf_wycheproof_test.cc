// Wycheproof HKDF-SHA-256 and HKDF-SHA-512 vectors against crypto::Hkdf.

#include <cstddef>
#include <cstdint>
#include <ostream>
#include <string>

#include "absl/strings/str_cat.h"
#include "crypto/hkdf.h"
#include "crypto/secret_bytes.h"
#include "gtest/gtest.h"
#include "tests/status_matchers.h"
#include "tests/wycheproof/wycheproof_util.h"

namespace residency::wycheproof {
namespace {

using ::residency::crypto::Hkdf;
using ::residency::crypto::HkdfHash;
using ::residency::crypto::HkdfHashLength;
using ::residency::crypto::SecretBytes;
using ::residency::testing::StatusIs;

struct HkdfFile {
  const char* name;
  const char* file;
  const char* algorithm;
  HkdfHash hash;
  int expected_valid;
  int expected_invalid;
};
void PrintTo(const HkdfFile& file, std::ostream* os) { *os << file.file; }

class HkdfWycheproofTest : public ::testing::TestWithParam<HkdfFile> {};

TEST_P(HkdfWycheproofTest, VectorsMatch) {
  const HkdfFile& param = GetParam();
  ASSERT_OK_AND_ASSIGN(TestFile file, TestFile::Load(param.file));
  ASSERT_EQ(file.algorithm(), param.algorithm);
  ASSERT_EQ(file.number_of_tests(),
            param.expected_valid + param.expected_invalid);
  ASSERT_EQ(file.test_count(), static_cast<size_t>(file.number_of_tests()));

  int valid = 0, invalid = 0;
  for (const TestGroup& group : file.groups()) {
    ASSERT_EQ(group.params.String("type"), "HkdfTest");
    for (const JsonObject& test : group.tests) {
      SCOPED_TRACE(absl::StrCat("tcId ", test.tc_id()));
      const SecretBytes ikm = SecretBytes::CopyFrom(test.Bytes("ikm"));
      const std::string salt = test.Bytes("salt");
      const std::string info = test.Bytes("info");
      const int64_t size = test.Int("size");
      ASSERT_GT(size, 0);
      absl::StatusOr<SecretBytes> okm =
          Hkdf(param.hash, ikm, salt, info, static_cast<size_t>(size));
      if (test.IsValid()) {
        ASSERT_OK(okm);
        EXPECT_EQ(HexEncode(okm->view()), HexEncode(test.Bytes("okm")));
        ++valid;
      } else {
        // The only invalid vectors ask for more than 255 * HashLen bytes.
        EXPECT_TRUE(test.HasFlag("SizeTooLarge"));
        EXPECT_GT(static_cast<size_t>(size), 255 * HkdfHashLength(param.hash));
        EXPECT_THAT(okm, StatusIs(absl::StatusCode::kInvalidArgument));
        ++invalid;
      }
    }
  }
  EXPECT_EQ(valid, param.expected_valid);
  EXPECT_EQ(invalid, param.expected_invalid);
}

INSTANTIATE_TEST_SUITE_P(
    Hashes, HkdfWycheproofTest,
    ::testing::Values(HkdfFile{"Sha256", "hkdf_sha256_test.json",
                               "HKDF-SHA-256", HkdfHash::kSha256, 83, 3},
                      HkdfFile{"Sha512", "hkdf_sha512_test.json",
                               "HKDF-SHA-512", HkdfHash::kSha512, 80, 3}),
    [](const ::testing::TestParamInfo<HkdfFile>& info) {
      return info.param.name;
    });

}  // namespace
}  // namespace residency::wycheproof
