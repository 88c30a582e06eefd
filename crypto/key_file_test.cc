#include "crypto/key_file.h"

#include <sys/stat.h>
#include <unistd.h>

#include <fstream>
#include <string>

#include "gmock/gmock.h"
#include "gtest/gtest.h"
#include "tests/status_matchers.h"
#include "tests/temp_dir.h"

namespace residency::crypto {
namespace {

using ::residency::testing::StatusIs;
using ::residency::testing::TempDir;
using ::testing::HasSubstr;

class KeyFileTest : public ::testing::Test {
 protected:
  void SetUp() override {
    ASSERT_OK_AND_ASSIGN(dir_, temp_.Make("keyfile"));
    path_ = dir_ + "/device.key";
  }

  KeyFileOptions Options(bool create) {
    return {.what = "device key", .size = 32, .create_if_missing = create};
  }

  TempDir temp_;
  std::string dir_;
  std::string path_;
};

TEST_F(KeyFileTest, CreatesAPrivateFileAndReadsTheSameKeyBack) {
  const mode_t old_umask = ::umask(0);  // A lax umask must not matter.
  absl::StatusOr<SecretBytes> created =
      LoadOrCreateKeyFile(path_, Options(true));
  ::umask(old_umask);
  ASSERT_OK(created.status());
  EXPECT_EQ(created->size(), 32u);
  struct stat st;
  ASSERT_EQ(::stat(path_.c_str(), &st), 0);
  EXPECT_EQ(st.st_mode & 0777, 0600);
  EXPECT_EQ(st.st_size, 32);
  ASSERT_OK_AND_ASSIGN(SecretBytes again,
                       LoadOrCreateKeyFile(path_, Options(false)));
  EXPECT_TRUE(again == *created);
}

TEST_F(KeyFileTest, MissingFileWithoutCreateIsNotFound) {
  EXPECT_THAT(LoadOrCreateKeyFile(path_, Options(false)),
              StatusIs(absl::StatusCode::kNotFound,
                       HasSubstr("device key file " + path_)));
  EXPECT_NE(::access(path_.c_str(), F_OK), 0);
}

TEST_F(KeyFileTest, GroupReadableFileIsRefused) {
  ASSERT_OK(LoadOrCreateKeyFile(path_, Options(true)).status());
  ASSERT_EQ(::chmod(path_.c_str(), 0640), 0);
  EXPECT_THAT(
      LoadOrCreateKeyFile(path_, Options(false)),
      StatusIs(absl::StatusCode::kFailedPrecondition, HasSubstr("mode 0640")));
}

TEST_F(KeyFileTest, WrongSizeIsDataLoss) {
  {
    std::ofstream out(path_);
    out << "short";
  }
  ASSERT_EQ(::chmod(path_.c_str(), 0600), 0);
  EXPECT_THAT(LoadOrCreateKeyFile(path_, Options(true)),
              StatusIs(absl::StatusCode::kDataLoss,
                       HasSubstr("exactly 32 bytes, found 5")));
}

TEST_F(KeyFileTest, SymlinkIsNotFollowed) {
  const std::string target = dir_ + "/target.key";
  ASSERT_OK(LoadOrCreateKeyFile(target, Options(true)).status());
  ASSERT_EQ(::symlink(target.c_str(), path_.c_str()), 0);
  EXPECT_THAT(LoadOrCreateKeyFile(path_, Options(false)),
              StatusIs(absl::StatusCode::kInternal, HasSubstr(path_)));
  ::unlink(target.c_str());
}

TEST_F(KeyFileTest, TwoCreatedKeysDiffer) {
  ASSERT_OK_AND_ASSIGN(SecretBytes a,
                       LoadOrCreateKeyFile(path_, Options(true)));
  const std::string other = dir_ + "/other.key";
  ASSERT_OK_AND_ASSIGN(SecretBytes b,
                       LoadOrCreateKeyFile(other, Options(true)));
  EXPECT_FALSE(a == b);
  ::unlink(other.c_str());
}

}  // namespace
}  // namespace residency::crypto
