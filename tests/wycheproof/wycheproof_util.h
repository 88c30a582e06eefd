#ifndef RESIDENCY_TESTS_WYCHEPROOF_WYCHEPROOF_UTIL_H_
#define RESIDENCY_TESTS_WYCHEPROOF_WYCHEPROOF_UTIL_H_

// Reading Project Wycheproof test vector files (tests/data/wycheproof/, from
// C2SP/wycheproof) without a JSON library: the file is parsed into a
// google::protobuf::Struct. JSON numbers arrive as doubles, which is exact
// for every integer these files hold (< 2^53).
//
// Field accessors record a GoogleTest failure (ADD_FAILURE) when a field is
// missing or has the wrong type, so a schema change cannot silently turn a
// check into a no-op; the tests also count the vectors they check.

#include <cstdint>
#include <memory>
#include <string>
#include <utility>
#include <vector>

#include "absl/status/statusor.h"
#include "absl/strings/string_view.h"
#include "google/protobuf/struct.pb.h"

namespace residency::wycheproof {

// Hex (either case) to bytes; INVALID_ARGUMENT for odd length or a non-hex
// digit.
absl::StatusOr<std::string> HexDecode(absl::string_view hex);
// Bytes to lower-case hex.
std::string HexEncode(absl::string_view bytes);

// Inflates a zlib stream (RFC 1950), as used for `ct` in the chunked
// encryption vectors. DATA_LOSS for a corrupt or truncated stream or
// trailing bytes after it.
absl::StatusOr<std::string> ZlibInflate(absl::string_view compressed);

// Lower-case hex of SHA-512(data), computed with OpenSSL EVP.
std::string Sha512Hex(absl::string_view data);

// A JSON object: a test group or a test vector.
class JsonObject {
 public:
  explicit JsonObject(const google::protobuf::Struct* fields)
      : fields_(fields) {}

  bool Has(absl::string_view key) const;
  // A string field.
  std::string String(absl::string_view key) const;
  // A hex string field, decoded.
  std::string Bytes(absl::string_view key) const;
  // A number field that must hold an integer.
  int64_t Int(absl::string_view key) const;
  // A list-of-strings field.
  std::vector<std::string> Strings(absl::string_view key) const;

  // Conveniences for test vectors.
  int64_t tc_id() const { return Int("tcId"); }
  std::string result() const { return String("result"); }
  bool IsValid() const { return result() == "valid"; }
  bool HasFlag(absl::string_view flag) const;

 private:
  const google::protobuf::Value* Find(absl::string_view key) const;

  const google::protobuf::Struct* fields_;
};

struct TestGroup {
  JsonObject params;  // the group's own fields (keySize, ivSize, ...)
  std::vector<JsonObject> tests;
};

// A parsed test vector file.
class TestFile {
 public:
  // Loads RESIDENCY_TESTDATA_DIR "/wycheproof/" + file_name.
  static absl::StatusOr<TestFile> Load(absl::string_view file_name);

  const JsonObject& header() const { return header_; }
  std::string algorithm() const { return header_.String("algorithm"); }
  int64_t number_of_tests() const { return header_.Int("numberOfTests"); }
  const std::vector<TestGroup>& groups() const { return groups_; }
  // Sum of the tests in all groups.
  size_t test_count() const;

 private:
  TestFile(std::unique_ptr<google::protobuf::Struct> root,
           std::vector<TestGroup> groups)
      : root_(std::move(root)),
        header_(root_.get()),
        groups_(std::move(groups)) {}

  // Owned on the heap so that the pointers in header_ and groups_ survive a
  // move of the TestFile.
  std::unique_ptr<google::protobuf::Struct> root_;
  JsonObject header_;
  std::vector<TestGroup> groups_;
};

}  // namespace residency::wycheproof

#endif  // RESIDENCY_TESTS_WYCHEPROOF_WYCHEPROOF_UTIL_H_
