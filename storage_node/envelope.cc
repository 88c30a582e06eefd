#include "storage_node/envelope.h"

#include <string>

#include "absl/strings/str_cat.h"
#include "absl/strings/str_join.h"
#include "crypto/chunked.h"
#include "crypto/object_context.h"
#include "rpc/printable.h"

namespace residency::storage_node {
namespace {

using ::residency::v1::CustodyMode;
using ::residency::v1::ObjectHeader;
using ::residency::v1::WrappedKey;

// The wrapped-DEK format of key_service/wrapped_key.h and of device keys:
// AES-256-GCM nonce(12) || key(32) || tag(16).
constexpr size_t kWrappedKeySize = 60;
constexpr size_t kMaxHeaderBytes = 16 * 1024;
constexpr int kMaxAllowedJurisdictions = 64;

absl::Status Refuse(const ObjectHeader& header, absl::string_view what) {
  return absl::InvalidArgumentError(
      absl::StrCat("object ", DescribeObject(header.object()), ": ", what));
}

absl::Status CheckWrappedKeys(const ObjectHeader& header) {
  const auto& keys = header.wrapped_keys();
  if (keys.empty()) {
    return Refuse(header,
                  "no wrapped data key: the header must carry the "
                  "DEK wrapped for its custody mode");
  }
  for (int i = 0; i < keys.size(); ++i) {
    const WrappedKey& k = keys[i];
    if (k.wrapper() != WrappedKey::KEY_SERVICE &&
        k.wrapper() != WrappedKey::DEVICE) {
      return Refuse(header,
                    absl::StrCat("wrapped_keys[", i, "] has no known wrapper"));
    }
    if (k.key_id().empty() || k.key_id().size() > 128) {
      return Refuse(header, absl::StrCat("wrapped_keys[", i,
                                         "] key_id must be 1-128 bytes"));
    }
    if (k.key_version() == 0) {
      return Refuse(header,
                    absl::StrCat("wrapped_keys[", i, "] key_version is 0"));
    }
    if (k.wrapped().size() != kWrappedKeySize) {
      return Refuse(
          header, absl::StrCat("wrapped_keys[", i, "] is ", k.wrapped().size(),
                               " bytes, not ", kWrappedKeySize));
    }
  }
  auto count = [&](WrappedKey::Wrapper wrapper) {
    int n = 0;
    for (const WrappedKey& k : keys) n += k.wrapper() == wrapper;
    return n;
  };
  const int services = count(WrappedKey::KEY_SERVICE);
  const int devices = count(WrappedKey::DEVICE);
  auto shares_are = [&](std::initializer_list<uint32_t> want) {
    std::vector<uint32_t> got;
    for (const WrappedKey& k : keys) got.push_back(k.share_index());
    std::sort(got.begin(), got.end());
    return got == std::vector<uint32_t>(want);
  };
  switch (header.custody_mode()) {
    case residency::v1::CUSTODY_MODE_CUSTODIAN:
      if (keys.size() != 1 || services != 1 || !shares_are({0})) {
        return Refuse(header,
                      "CUSTODIAN custody needs exactly one KEY_SERVICE "
                      "wrapped key with share_index 0");
      }
      return absl::OkStatus();
    case residency::v1::CUSTODY_MODE_E2E:
      if (keys.size() != 2 || services != 1 || devices != 1 ||
          !shares_are({1, 2})) {
        return Refuse(header,
                      "E2E custody needs one KEY_SERVICE and one DEVICE "
                      "wrapped key, shares 1 and 2");
      }
      return absl::OkStatus();
    case residency::v1::CUSTODY_MODE_SPLIT:
      if (keys.size() != 2 || services != 2 || !shares_are({1, 2}) ||
          keys[0].jurisdiction().empty() || keys[1].jurisdiction().empty() ||
          keys[0].jurisdiction() == keys[1].jurisdiction()) {
        return Refuse(header,
                      "SPLIT custody needs two KEY_SERVICE wrapped keys of "
                      "different jurisdictions, shares 1 and 2");
      }
      return absl::OkStatus();
    default:
      return Refuse(
          header, absl::StrCat("unknown custody mode ", header.custody_mode()));
  }
}

}  // namespace

std::string DescribeObject(const residency::v1::ObjectRef& object) {
  constexpr size_t kShown = 96;
  const std::string name =
      absl::StrCat(object.owner(), "/", object.object_id());
  return absl::StrCat("'", rpc::Printable(rpc::CutAtCharacter(name, kShown)),
                      name.size() > kShown ? "...'" : "'", " v",
                      object.version());
}

absl::Status ValidateEnvelope(const ObjectHeader& header) {
  if (!header.has_object()) {
    return absl::InvalidArgumentError("header has no object");
  }
  // Every stored header is listed, exported and counted later: keep each
  // small, whatever the message limit.
  if (const size_t size = header.ByteSizeLong(); size > kMaxHeaderBytes) {
    return Refuse(header,
                  absl::StrCat("header is ", size, " bytes; the limit is ",
                               kMaxHeaderBytes));
  }
  if (header.residency().allowed_jurisdictions_size() >
      kMaxAllowedJurisdictions) {
    return Refuse(header,
                  absl::StrCat("residency rule lists ",
                               header.residency().allowed_jurisdictions_size(),
                               " jurisdictions; the limit is ",
                               kMaxAllowedJurisdictions));
  }
  const residency::v1::ObjectRef& object = header.object();
  if (object.owner().find('/') != std::string::npos) {
    return Refuse(header, "owner may not contain '/'");
  }
  if (absl::Status s = crypto::EncodeObjectContext(
                           object.owner(), object.object_id(), object.version())
                           .status();
      !s.ok()) {
    return Refuse(header, s.message());
  }
  switch (header.payload_algorithm()) {
    case residency::v1::PAYLOAD_ALGORITHM_COBBLESTONE_256:
    case residency::v1::PAYLOAD_ALGORITHM_CHUNKED_AES_128_GCM:
      break;
    default:
      return Refuse(header, absl::StrCat("unknown payload algorithm ",
                                         header.payload_algorithm()));
  }
  if (absl::Status s = CheckWrappedKeys(header); !s.ok()) return s;
  const uint64_t expected =
      crypto::ChunkedCiphertextLength(header.plaintext_length());
  if (header.plaintext_length() > crypto::kMaxChunkedPlaintextLength) {
    return Refuse(header,
                  absl::StrCat("plaintext length ", header.plaintext_length(),
                               " is above the chunked-encryption "
                               "limit"));
  }
  if (header.ciphertext_length() != expected) {
    return Refuse(header,
                  absl::StrCat("ciphertext length ", header.ciphertext_length(),
                               " is not a valid chunked-encryption length for ",
                               header.plaintext_length(),
                               " plaintext bytes (expected ", expected, ")"));
  }
  return absl::OkStatus();
}

absl::Status CheckResidency(const ObjectHeader& header,
                            absl::string_view node_jurisdiction) {
  const auto& allowed = header.residency().allowed_jurisdictions();
  if (allowed.empty()) return absl::OkStatus();
  for (const std::string& j : allowed) {
    if (j == node_jurisdiction) return absl::OkStatus();
  }
  return absl::FailedPreconditionError(
      absl::StrCat("object ", DescribeObject(header.object()),
                   " may be held only in ", absl::StrJoin(allowed, ", "),
                   ", and this node is in ", node_jurisdiction));
}

}  // namespace residency::storage_node
