#include "crypto/random.h"

#include <array>
#include <cstddef>
#include <string>

#include "gtest/gtest.h"
#include "tests/status_matchers.h"

namespace residency::crypto {
namespace {

TEST(RandomBytesTest, ReturnsRequestedSize) {
  for (size_t size : {size_t{0}, size_t{1}, size_t{12}, size_t{32},
                      size_t{1000}, size_t{1} << 20}) {
    ASSERT_OK_AND_ASSIGN(std::string bytes, RandomBytes(size));
    EXPECT_EQ(bytes.size(), size);
  }
}

TEST(RandomBytesTest, TwoDrawsDiffer) {
  ASSERT_OK_AND_ASSIGN(std::string a, RandomBytes(/*size=*/32));
  ASSERT_OK_AND_ASSIGN(std::string b, RandomBytes(/*size=*/32));
  EXPECT_NE(a, b);
}

TEST(RandomBytesTest, FillsTheWholeBuffer) {
  // A buffer filled only in part would leave zeros at the end; 32 zero bytes
  // in a row from a working DRBG has probability 2^-256.
  ASSERT_OK_AND_ASSIGN(std::string bytes, RandomBytes(/*size=*/1000));
  EXPECT_NE(bytes.substr(0, 32), std::string(32, '\0'));
  EXPECT_NE(bytes.substr(1000 - 32), std::string(32, '\0'));
}

TEST(RandomBytesTest, EveryByteValueOccursInOneMebibyte) {
  // Each value is expected 4096 times; missing one has probability ~2^-5900.
  // Catches output drawn from a reduced alphabet (e.g. a hex or text
  // conversion slipping in).
  ASSERT_OK_AND_ASSIGN(std::string bytes, RandomBytes(size_t{1} << 20));
  std::array<size_t, 256> counts{};
  for (char c : bytes) ++counts[static_cast<unsigned char>(c)];
  for (size_t value = 0; value < counts.size(); ++value) {
    EXPECT_GT(counts[value], 3000u) << "byte value " << value;
    EXPECT_LT(counts[value], 5200u) << "byte value " << value;
  }
}

TEST(RandomSecretTest, ReturnsRequestedSize) {
  for (size_t size : {size_t{0}, size_t{16}, size_t{32}, size_t{64}}) {
    ASSERT_OK_AND_ASSIGN(SecretBytes secret, RandomSecret(size));
    EXPECT_EQ(secret.size(), size);
  }
}

TEST(RandomSecretTest, TwoSecretsDiffer) {
  ASSERT_OK_AND_ASSIGN(SecretBytes a, RandomSecret(/*size=*/32));
  ASSERT_OK_AND_ASSIGN(SecretBytes b, RandomSecret(/*size=*/32));
  EXPECT_FALSE(a == b);
  EXPECT_NE(a.view(), std::string(32, '\0'));
}

}  // namespace
}  // namespace residency::crypto
