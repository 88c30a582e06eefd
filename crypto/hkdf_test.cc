#include "crypto/hkdf.h"

#include <cstddef>
#include <string>
#include <vector>

#include "absl/strings/escaping.h"
#include "absl/strings/string_view.h"
#include "gtest/gtest.h"
#include "tests/status_matchers.h"

namespace residency::crypto {
namespace {

using ::residency::testing::StatusIs;

std::string Hex(absl::string_view bytes) {
  return absl::BytesToHexString(bytes);
}
std::string Unhex(absl::string_view hex) { return absl::HexStringToBytes(hex); }

// Bytes first, first+1, ..., last.
std::string Range(int first, int last) {
  std::string out;
  for (int b = first; b <= last; ++b) out.push_back(static_cast<char>(b));
  return out;
}

struct Rfc5869Case {
  const char* name;
  std::string ikm;
  std::string salt;
  std::string info;
  size_t length;
  const char* prk_hex;
  const char* okm_hex;
};

// RFC 5869 Appendix A, test cases 1-3 (SHA-256).
std::vector<Rfc5869Case> Rfc5869Sha256Cases() {
  return {
      {"Case1", std::string(22, '\x0b'), Range(0x00, 0x0c), Range(0xf0, 0xf9),
       42, "077709362c2e32df0ddc3f0dc47bba6390b6c73bb50f9c3122ec844ad7c2b3e5",
       "3cb25f25faacd57a90434f64d0362f2a2d2d0a90cf1a5a4c5db02d56ecc4c5bf340072"
       "08d5b887185865"},
      {"Case2", Range(0x00, 0x4f), Range(0x60, 0xaf), Range(0xb0, 0xff), 82,
       "06a6b88c5853361a06104c9ceb35b45cef760014904671014a193f40c15fc244",
       "b11e398dc80327a1c8e7f78c596a49344f012eda2d4efad8a050cc4c19afa97c59045a"
       "99cac7827271cb41c65e590e09da3275600c2f09b8367793a9aca3db71cc30c58179ec"
       "3e87c14c01d5c1f3434f1d87"},
      {"Case3", std::string(22, '\x0b'), "", "", 42,
       "19ef24a32c717b167f33a91d6f648bdf96596776afdb6377ac434c1c293ccb04",
       "8da4e775a563c18f715f802a063c5a31b8a11f5c5ee1879ec3454e5f3c738d2d9d2013"
       "95faa4b61a96c8"},
  };
}

TEST(HkdfTest, HashLengths) {
  EXPECT_EQ(HkdfHashLength(HkdfHash::kSha256), 32u);
  EXPECT_EQ(HkdfHashLength(HkdfHash::kSha512), 64u);
}

TEST(HkdfTest, Rfc5869Sha256KnownAnswers) {
  for (const Rfc5869Case& c : Rfc5869Sha256Cases()) {
    SCOPED_TRACE(c.name);
    const SecretBytes ikm = SecretBytes::CopyFrom(c.ikm);

    ASSERT_OK_AND_ASSIGN(SecretBytes okm, Hkdf(HkdfHash::kSha256, ikm, c.salt,
                                               c.info, c.length));
    EXPECT_EQ(Hex(okm.view()), c.okm_hex);

    ASSERT_OK_AND_ASSIGN(SecretBytes prk,
                         HkdfExtract(HkdfHash::kSha256, ikm, c.salt));
    EXPECT_EQ(Hex(prk.view()), c.prk_hex);

    ASSERT_OK_AND_ASSIGN(
        SecretBytes expanded,
        HkdfExpand(HkdfHash::kSha256, SecretBytes::CopyFrom(Unhex(c.prk_hex)),
                   c.info, c.length));
    EXPECT_EQ(Hex(expanded.view()), c.okm_hex);
  }
}

TEST(HkdfTest, Sha512KnownAnswer) {
  // RFC 5869 case 1 inputs over SHA-512; expected values computed
  // independently with Python's hmac module.
  const SecretBytes ikm = SecretBytes::CopyFrom(std::string(22, '\x0b'));
  ASSERT_OK_AND_ASSIGN(SecretBytes prk,
                       HkdfExtract(HkdfHash::kSha512, ikm, Range(0x00, 0x0c)));
  EXPECT_EQ(Hex(prk.view()),
            "665799823737ded04a88e47e54a5890bb2c3d247c7a4254a8e61350723590a26"
            "c36238127d8661b88cf80ef802d57e2f7cebcf1e00e083848be19929c61b4237");
  ASSERT_OK_AND_ASSIGN(SecretBytes okm,
                       Hkdf(HkdfHash::kSha512, ikm, Range(0x00, 0x0c),
                            Range(0xf0, 0xf9), /*length=*/42));
  EXPECT_EQ(Hex(okm.view()),
            "832390086cda71fb47625bb5ceb168e4c8e26a1a16ed34d9fc7fe92c14815793"
            "38da362cb8d9f925d7cb");
}

TEST(HkdfTest, LongInfoKnownAnswers) {
  // RFC 5869 puts no limit on the info length; chunked encryption's info
  // carries the whole object context. Expected values computed independently
  // with Python's hmac module.
  std::string info;
  for (int i = 0; i < 2000; ++i) info.push_back(static_cast<char>(i % 251));
  ASSERT_OK_AND_ASSIGN(SecretBytes okm,
                       Hkdf(HkdfHash::kSha256, SecretBytes::CopyFrom("ikm"),
                            "salt", info, /*length=*/42));
  EXPECT_EQ(Hex(okm.view()),
            "6debe0169f6eb3ac4c249b26035661b6bc10f3272e27b87f9e5f4db8587d132a"
            "5db2066580e46e234ce9");
  ASSERT_OK_AND_ASSIGN(
      SecretBytes expanded,
      HkdfExpand(HkdfHash::kSha512, SecretBytes::CopyFrom(std::string(32, 'k')),
                 info, /*length=*/76));
  EXPECT_EQ(Hex(expanded.view()),
            "dc9852cfb98e1fca89bd5a50fd81c643a9abf3df9b15dbdd59c9270be239bbb5"
            "592abcf6f7f668c264d1d45f7ed1be6aaf317f19bf07c48e9da54df11103a5e0"
            "34de2d1eb0317e2077902dbd");
}

TEST(HkdfTest, ExpandAfterLongerInfoUsesOnlyTheNewInfo) {
  // Derivations may share state (a cached context): a short info after a
  // long one must give the same bytes as on its own.
  const SecretBytes prk = SecretBytes::CopyFrom(std::string(64, 'p'));
  ASSERT_OK_AND_ASSIGN(SecretBytes first,
                       HkdfExpand(HkdfHash::kSha512, prk, "short", 64));
  ASSERT_OK(HkdfExpand(HkdfHash::kSha512, prk, std::string(500, 'i'), 64));
  ASSERT_OK(HkdfExpand(HkdfHash::kSha512, SecretBytes::CopyFrom("other prk"),
                       "short", 64));
  ASSERT_OK_AND_ASSIGN(SecretBytes again,
                       HkdfExpand(HkdfHash::kSha512, prk, "short", 64));
  EXPECT_TRUE(first == again);
  // And an empty info after a non-empty one.
  ASSERT_OK_AND_ASSIGN(SecretBytes empty_info,
                       HkdfExpand(HkdfHash::kSha512, prk, "", 64));
  EXPECT_FALSE(empty_info == first);
  ASSERT_OK_AND_ASSIGN(SecretBytes empty_again,
                       HkdfExpand(HkdfHash::kSha512, prk, "", 64));
  EXPECT_TRUE(empty_info == empty_again);
}

class HkdfHashTest : public ::testing::TestWithParam<HkdfHash> {};

TEST_P(HkdfHashTest, ExtractThenExpandEqualsHkdf) {
  const HkdfHash hash = GetParam();
  const SecretBytes ikm = SecretBytes::CopyFrom("input keying material");
  for (absl::string_view salt :
       {absl::string_view(""), absl::string_view("s"),
        absl::string_view("a salt longer than a hash "
                          "block of sixty-four bytes, "
                          "which HMAC hashes first")}) {
    for (size_t length : {size_t{1}, size_t{32}, size_t{65}, size_t{1000}}) {
      ASSERT_OK_AND_ASSIGN(SecretBytes prk, HkdfExtract(hash, ikm, salt));
      EXPECT_EQ(prk.size(), HkdfHashLength(hash));
      ASSERT_OK_AND_ASSIGN(SecretBytes expanded,
                           HkdfExpand(hash, prk, "info", length));
      ASSERT_OK_AND_ASSIGN(SecretBytes okm,
                           Hkdf(hash, ikm, salt, "info", length));
      EXPECT_EQ(okm.size(), length);
      EXPECT_TRUE(okm == expanded)
          << "salt size " << salt.size() << ", length " << length;
    }
  }
}

TEST_P(HkdfHashTest, EmptySaltMeansHashLenZeros) {
  const HkdfHash hash = GetParam();
  const SecretBytes ikm = SecretBytes::CopyFrom("ikm");
  const std::string zeros(HkdfHashLength(hash), '\0');
  ASSERT_OK_AND_ASSIGN(SecretBytes empty_salt, Hkdf(hash, ikm, "", "i", 48));
  ASSERT_OK_AND_ASSIGN(SecretBytes zero_salt, Hkdf(hash, ikm, zeros, "i", 48));
  EXPECT_TRUE(empty_salt == zero_salt);
}

TEST_P(HkdfHashTest, OutputDependsOnEveryInput) {
  const HkdfHash hash = GetParam();
  const SecretBytes ikm = SecretBytes::CopyFrom("ikm");
  ASSERT_OK_AND_ASSIGN(SecretBytes base, Hkdf(hash, ikm, "salt", "info", 32));
  ASSERT_OK_AND_ASSIGN(
      SecretBytes other_ikm,
      Hkdf(hash, SecretBytes::CopyFrom("ikn"), "salt", "info", 32));
  ASSERT_OK_AND_ASSIGN(SecretBytes other_salt,
                       Hkdf(hash, ikm, "salu", "info", 32));
  ASSERT_OK_AND_ASSIGN(SecretBytes other_info,
                       Hkdf(hash, ikm, "salt", "infp", 32));
  EXPECT_FALSE(base == other_ikm);
  EXPECT_FALSE(base == other_salt);
  EXPECT_FALSE(base == other_info);
  // A shorter output is a prefix of a longer one (RFC 5869 T(1) || T(2)...).
  ASSERT_OK_AND_ASSIGN(SecretBytes longer,
                       Hkdf(hash, ikm, "salt", "info", 100));
  EXPECT_EQ(longer.view().substr(0, 32), base.view());
}

TEST_P(HkdfHashTest, LengthZeroIsInvalidArgument) {
  const HkdfHash hash = GetParam();
  const SecretBytes ikm = SecretBytes::CopyFrom("ikm");
  const SecretBytes prk(HkdfHashLength(hash));
  EXPECT_THAT(Hkdf(hash, ikm, "salt", "info", 0),
              StatusIs(absl::StatusCode::kInvalidArgument));
  EXPECT_THAT(HkdfExpand(hash, prk, "info", 0),
              StatusIs(absl::StatusCode::kInvalidArgument));
}

TEST_P(HkdfHashTest, MaximumLengthIsAccepted) {
  const HkdfHash hash = GetParam();
  const size_t max = 255 * HkdfHashLength(hash);
  ASSERT_OK_AND_ASSIGN(SecretBytes okm, Hkdf(hash, SecretBytes::CopyFrom("k"),
                                             "salt", "info", max));
  EXPECT_EQ(okm.size(), max);
  ASSERT_OK_AND_ASSIGN(
      SecretBytes expanded,
      HkdfExpand(hash, SecretBytes::CopyFrom("prk"), "info", max));
  EXPECT_EQ(expanded.size(), max);
}

TEST_P(HkdfHashTest, LengthAbove255HashLenIsInvalidArgument) {
  const HkdfHash hash = GetParam();
  const size_t too_long = 255 * HkdfHashLength(hash) + 1;
  EXPECT_EQ(too_long, hash == HkdfHash::kSha256 ? 8161u : 16321u);
  for (size_t length : {too_long, too_long + 1000, size_t{1} << 40}) {
    EXPECT_THAT(Hkdf(hash, SecretBytes::CopyFrom("k"), "salt", "info", length),
                StatusIs(absl::StatusCode::kInvalidArgument))
        << length;
    EXPECT_THAT(HkdfExpand(hash, SecretBytes::CopyFrom("prk"), "info", length),
                StatusIs(absl::StatusCode::kInvalidArgument))
        << length;
  }
}

TEST_P(HkdfHashTest, ExpandWithEmptyPrkIsInvalidArgument) {
  // The header: INVALID_ARGUMENT "when a required key is empty"; the PRK is
  // Expand's key.
  EXPECT_THAT(HkdfExpand(GetParam(), SecretBytes(), "info", 32),
              StatusIs(absl::StatusCode::kInvalidArgument));
}

INSTANTIATE_TEST_SUITE_P(Hashes, HkdfHashTest,
                         ::testing::Values(HkdfHash::kSha256,
                                           HkdfHash::kSha512),
                         [](const ::testing::TestParamInfo<HkdfHash>& info) {
                           return info.param == HkdfHash::kSha256 ? "Sha256"
                                                                  : "Sha512";
                         });

}  // namespace
}  // namespace residency::crypto
