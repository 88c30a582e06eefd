#include "tests/temp_dir.h"

#include <sys/stat.h>

#include <cstdlib>
#include <filesystem>
#include <fstream>
#include <string>

#include "gtest/gtest.h"
#include "tests/status_matchers.h"

namespace residency::testing {
namespace {

namespace fs = std::filesystem;

TEST(TempDirTest, MakesAnEmptyPrivateDirectoryUnderTheTestTemporaryDirectory) {
  TempDir temp;
  EXPECT_EQ(temp.path(), "");
  ASSERT_OK_AND_ASSIGN(const std::string dir, temp.Make("temp_dir_test"));
  EXPECT_EQ(temp.path(), dir);
  EXPECT_TRUE(fs::is_directory(dir));
  EXPECT_TRUE(fs::is_empty(dir));
  EXPECT_EQ(fs::path(dir).parent_path(),
            fs::path(::testing::TempDir()).parent_path());
  EXPECT_EQ(fs::path(dir).filename().string().rfind("temp_dir_test.", 0), 0u)
      << dir;
  // mkdtemp makes it 0700: other users cannot read a test's keys.
  struct stat info;
  ASSERT_EQ(::stat(dir.c_str(), &info), 0);
  EXPECT_EQ(info.st_mode & 0777, 0700);
}

TEST(TempDirTest, GoesWhereTestTmpdirSays) {
  TempDir outer;
  ASSERT_OK_AND_ASSIGN(const std::string elsewhere,
                       outer.Make("temp_dir_test"));
  const char* const before = std::getenv("TEST_TMPDIR");
  const std::string saved = before == nullptr ? "" : before;
  ASSERT_EQ(::setenv("TEST_TMPDIR", elsewhere.c_str(), 1), 0);
  {
    TempDir inner;
    absl::StatusOr<std::string> dir = inner.Make("inner");
    if (before == nullptr) {
      ::unsetenv("TEST_TMPDIR");
    } else {
      ::setenv("TEST_TMPDIR", saved.c_str(), 1);
    }
    ASSERT_OK(dir.status());
    EXPECT_EQ(fs::path(*dir).parent_path(), fs::path(elsewhere));
  }
  EXPECT_TRUE(fs::is_empty(elsewhere));
}

TEST(TempDirTest, RemovesTheDirectoryAndAllItHoldsWhenItGoes) {
  std::string dir;
  {
    TempDir temp;
    ASSERT_OK_AND_ASSIGN(dir, temp.Make("temp_dir_test"));
    fs::create_directories(dir + "/a/b");
    std::ofstream(dir + "/a/b/file") << "contents";
    ASSERT_TRUE(fs::exists(dir + "/a/b/file"));
  }
  EXPECT_FALSE(fs::exists(dir)) << dir;
}

TEST(TempDirTest, AnotherMakeRemovesTheDirectoryMadeBefore) {
  TempDir temp;
  ASSERT_OK_AND_ASSIGN(const std::string first, temp.Make("temp_dir_test"));
  ASSERT_OK_AND_ASSIGN(const std::string second, temp.Make("temp_dir_test"));
  EXPECT_NE(first, second);
  EXPECT_FALSE(fs::exists(first));
  EXPECT_TRUE(fs::is_directory(second));
}

TEST(TempDirTest, AFailedMakeSaysWhyAndLeavesNothing) {
  TempDir temp;
  EXPECT_THAT(temp.Make("no/such/parent/temp_dir_test"),
              StatusIs(absl::StatusCode::kInternal,
                       ::testing::HasSubstr("No such file or directory")));
  EXPECT_EQ(temp.path(), "");
}

}  // namespace
}  // namespace residency::testing
