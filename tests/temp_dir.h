#ifndef RESIDENCY_TESTS_TEMP_DIR_H_
#define RESIDENCY_TESTS_TEMP_DIR_H_

// A directory of a test's own, removed with all it holds when the TempDir
// goes. Header-only, as status_matchers.h.
//
//   class StoreTest : public ::testing::Test {
//    protected:
//     void SetUp() override {
//       ASSERT_OK_AND_ASSIGN(dir_, temp_.Make("store_test"));
//     }
//     TempDir temp_;  // first: removed after the members that use it
//     std::string dir_;
//   };

#include <stdlib.h>

#include <cerrno>
#include <cstring>
#include <filesystem>
#include <string>
#include <system_error>

#include "absl/status/status.h"
#include "absl/status/statusor.h"
#include "absl/strings/str_cat.h"
#include "absl/strings/string_view.h"
#include "gtest/gtest.h"

namespace residency::testing {

class TempDir {
 public:
  TempDir() = default;
  TempDir(const TempDir&) = delete;
  TempDir& operator=(const TempDir&) = delete;
  ~TempDir() { Remove(); }

  // Makes a new, empty directory <prefix>.XXXXXX under GoogleTest's
  // temporary directory ($TEST_TMPDIR, else $TMPDIR, else /tmp) and returns
  // its path. Keep that short where a test puts Unix sockets under it (a
  // Ceph cluster's admin sockets): socket paths are limited to 107 bytes.
  // A directory made earlier by this TempDir is removed first.
  absl::StatusOr<std::string> Make(absl::string_view prefix) {
    Remove();
    std::string pattern = ::testing::TempDir();
    if (!pattern.empty() && pattern.back() != '/') pattern += '/';
    absl::StrAppend(&pattern, prefix, ".XXXXXX");
    if (::mkdtemp(pattern.data()) == nullptr) {
      const int error = errno;
      return absl::InternalError(
          absl::StrCat("mkdtemp(", pattern, "): ", std::strerror(error)));
    }
    path_ = pattern;
    return path_;
  }

  // Empty until Make succeeds.
  const std::string& path() const { return path_; }

 private:
  void Remove() {
    if (path_.empty()) return;
    std::error_code error;
    std::filesystem::remove_all(path_, error);
    EXPECT_FALSE(error) << "removing " << path_ << ": " << error.message();
    path_.clear();
  }

  std::string path_;
};

}  // namespace residency::testing

#endif  // RESIDENCY_TESTS_TEMP_DIR_H_
