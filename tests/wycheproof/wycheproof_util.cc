#include "tests/wycheproof/wycheproof_util.h"

#include <openssl/evp.h>
#include <zlib.h>

#include <cmath>
#include <fstream>
#include <sstream>
#include <utility>

#include "absl/status/status.h"
#include "absl/strings/str_cat.h"
#include "absl/strings/string_view.h"
#include "google/protobuf/util/json_util.h"
#include "gtest/gtest.h"

#ifndef RESIDENCY_TESTDATA_DIR
#error "RESIDENCY_TESTDATA_DIR must name the tests/data directory"
#endif

namespace residency::wycheproof {
namespace {

using ::google::protobuf::Struct;
using ::google::protobuf::Value;

// Larger than any vector (the biggest inflates to about 4 MiB); a corrupt
// stream cannot make a test allocate without bound.
constexpr size_t kMaxInflatedSize = size_t{64} << 20;

int HexDigit(char c) {
  if (c >= '0' && c <= '9') return c - '0';
  if (c >= 'a' && c <= 'f') return c - 'a' + 10;
  if (c >= 'A' && c <= 'F') return c - 'A' + 10;
  return -1;
}

}  // namespace

absl::StatusOr<std::string> HexDecode(absl::string_view hex) {
  if (hex.size() % 2 != 0) {
    return absl::InvalidArgumentError(
        absl::StrCat("hex string of odd length ", hex.size()));
  }
  std::string out;
  out.reserve(hex.size() / 2);
  for (size_t i = 0; i < hex.size(); i += 2) {
    const int hi = HexDigit(hex[i]);
    const int lo = HexDigit(hex[i + 1]);
    if (hi < 0 || lo < 0) {
      return absl::InvalidArgumentError(
          absl::StrCat("not a hex digit at offset ", hi < 0 ? i : i + 1));
    }
    out.push_back(static_cast<char>(hi << 4 | lo));
  }
  return out;
}

std::string HexEncode(absl::string_view bytes) {
  static constexpr char kDigits[] = "0123456789abcdef";
  std::string out;
  out.reserve(bytes.size() * 2);
  for (char c : bytes) {
    const unsigned char b = static_cast<unsigned char>(c);
    out.push_back(kDigits[b >> 4]);
    out.push_back(kDigits[b & 0x0f]);
  }
  return out;
}

absl::StatusOr<std::string> ZlibInflate(absl::string_view compressed) {
  z_stream stream{};
  if (inflateInit(&stream) != Z_OK) {
    return absl::InternalError("inflateInit failed");
  }
  stream.next_in =
      reinterpret_cast<Bytef*>(const_cast<char*>(compressed.data()));
  stream.avail_in = static_cast<uInt>(compressed.size());
  std::string out;
  int rc = Z_OK;
  while (rc == Z_OK) {
    const size_t before = out.size();
    if (before >= kMaxInflatedSize) {
      inflateEnd(&stream);
      return absl::ResourceExhaustedError(
          absl::StrCat("inflated data exceeds ", kMaxInflatedSize, " bytes"));
    }
    out.resize(before + (size_t{1} << 16));
    stream.next_out = reinterpret_cast<Bytef*>(out.data() + before);
    stream.avail_out = static_cast<uInt>(out.size() - before);
    rc = inflate(&stream, Z_NO_FLUSH);
    out.resize(out.size() - stream.avail_out);
    // With 64 KiB of room each round, Z_BUF_ERROR can only mean the input
    // ran out before the end of the stream; it ends the loop as an error.
  }
  const bool complete = rc == Z_STREAM_END && stream.avail_in == 0;
  const std::string message = stream.msg != nullptr ? stream.msg : "";
  inflateEnd(&stream);
  if (!complete) {
    return absl::DataLossError(
        absl::StrCat("corrupt or truncated zlib stream (zlib code ", rc, ", ",
                     stream.avail_in, " input bytes left) ", message));
  }
  return out;
}

std::string Sha512Hex(absl::string_view data) {
  unsigned char digest[EVP_MAX_MD_SIZE];
  unsigned int size = 0;
  if (EVP_Digest(data.data(), data.size(), digest, &size, EVP_sha512(),
                 nullptr) != 1) {
    ADD_FAILURE() << "EVP_Digest(SHA-512) failed";
    return "";
  }
  return HexEncode(
      absl::string_view(reinterpret_cast<const char*>(digest), size));
}

const Value* JsonObject::Find(absl::string_view key) const {
  const auto& fields = fields_->fields();
  auto it = fields.find(std::string(key));
  return it == fields.end() ? nullptr : &it->second;
}

bool JsonObject::Has(absl::string_view key) const {
  return Find(key) != nullptr;
}

std::string JsonObject::String(absl::string_view key) const {
  const Value* value = Find(key);
  if (value == nullptr || value->kind_case() != Value::kStringValue) {
    ADD_FAILURE() << "missing string field '" << key << "'";
    return "";
  }
  return value->string_value();
}

std::string JsonObject::Bytes(absl::string_view key) const {
  absl::StatusOr<std::string> bytes = HexDecode(String(key));
  if (!bytes.ok()) {
    ADD_FAILURE() << "field '" << key << "': " << bytes.status();
    return "";
  }
  return *std::move(bytes);
}

int64_t JsonObject::Int(absl::string_view key) const {
  const Value* value = Find(key);
  if (value == nullptr || value->kind_case() != Value::kNumberValue) {
    ADD_FAILURE() << "missing number field '" << key << "'";
    return -1;
  }
  const double number = value->number_value();
  if (number != std::trunc(number) || std::fabs(number) > 9007199254740992.0) {
    ADD_FAILURE() << "field '" << key
                  << "' is not an exact integer: " << number;
    return -1;
  }
  return static_cast<int64_t>(number);
}

std::vector<std::string> JsonObject::Strings(absl::string_view key) const {
  const Value* value = Find(key);
  if (value == nullptr || value->kind_case() != Value::kListValue) {
    ADD_FAILURE() << "missing list field '" << key << "'";
    return {};
  }
  std::vector<std::string> out;
  for (const Value& item : value->list_value().values()) {
    if (item.kind_case() != Value::kStringValue) {
      ADD_FAILURE() << "non-string item in list '" << key << "'";
      continue;
    }
    out.push_back(item.string_value());
  }
  return out;
}

bool JsonObject::HasFlag(absl::string_view flag) const {
  for (const std::string& f : Strings("flags")) {
    if (f == flag) return true;
  }
  return false;
}

absl::StatusOr<TestFile> TestFile::Load(absl::string_view file_name) {
  const std::string path =
      absl::StrCat(RESIDENCY_TESTDATA_DIR, "/wycheproof/", file_name);
  std::ifstream in(path, std::ios::binary);
  if (!in) return absl::NotFoundError(absl::StrCat("cannot open ", path));
  std::stringstream contents;
  contents << in.rdbuf();
  if (!in.good() && !in.eof()) {
    return absl::DataLossError(absl::StrCat("cannot read ", path));
  }

  auto root = std::make_unique<Struct>();
  google::protobuf::util::JsonParseOptions options;
  options.ignore_unknown_fields = false;
  const auto parsed = google::protobuf::util::JsonStringToMessage(
      contents.str(), root.get(), options);
  if (!parsed.ok()) {
    return absl::InvalidArgumentError(
        absl::StrCat(path, ": not valid JSON: ", parsed.ToString()));
  }

  auto groups_it = root->fields().find("testGroups");
  if (groups_it == root->fields().end() ||
      groups_it->second.kind_case() != Value::kListValue) {
    return absl::InvalidArgumentError(
        absl::StrCat(path, ": no testGroups list"));
  }
  std::vector<TestGroup> groups;
  for (const Value& group : groups_it->second.list_value().values()) {
    if (group.kind_case() != Value::kStructValue) {
      return absl::InvalidArgumentError(
          absl::StrCat(path, ": a test group is not an object"));
    }
    const Struct& group_fields = group.struct_value();
    auto tests_it = group_fields.fields().find("tests");
    if (tests_it == group_fields.fields().end() ||
        tests_it->second.kind_case() != Value::kListValue) {
      return absl::InvalidArgumentError(
          absl::StrCat(path, ": a test group has no tests list"));
    }
    TestGroup parsed_group{JsonObject(&group_fields), {}};
    for (const Value& test : tests_it->second.list_value().values()) {
      if (test.kind_case() != Value::kStructValue) {
        return absl::InvalidArgumentError(
            absl::StrCat(path, ": a test vector is not an object"));
      }
      parsed_group.tests.emplace_back(&test.struct_value());
    }
    groups.push_back(std::move(parsed_group));
  }
  return TestFile(std::move(root), std::move(groups));
}

size_t TestFile::test_count() const {
  size_t count = 0;
  for (const TestGroup& group : groups_) count += group.tests.size();
  return count;
}

}  // namespace residency::wycheproof
