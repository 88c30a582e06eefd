#include "key_service/wrapped_key.h"

#include <utility>

#include "absl/status/status.h"
#include "absl/strings/ascii.h"
#include "absl/strings/str_cat.h"
#include "crypto/aead.h"
#include "crypto/big_endian.h"
#include "crypto/object_context.h"

namespace residency::key_service {
namespace {

using ::residency::crypto::Aead;
using ::residency::crypto::AeadAlgorithm;
using ::residency::crypto::SecretBytes;

static_assert(kKekSize == Aead::kKeySize);
static_assert(kWrappedDataKeySize == kDataKeySize + Aead::kOverhead);
static_assert(kWrappedDekLabel.size() == 24);

absl::Status CheckKeySize(const SecretBytes& key, absl::string_view what,
                          size_t expected) {
  if (key.size() != expected) {
    return absl::InvalidArgumentError(
        absl::StrCat(what, " is ", key.size(), " bytes, expected ", expected));
  }
  return absl::OkStatus();
}

// Checks everything but the two keys and the wrapped value, and returns the
// associated data.
absl::StatusOr<std::string> AssociatedData(absl::string_view key_id,
                                           uint32_t key_version,
                                           absl::string_view object_context) {
  if (key_id.empty() || key_id.size() > kMaxKeyIdSize) {
    return absl::InvalidArgumentError(
        absl::StrCat("key id is ", key_id.size(), " bytes, must be 1-",
                     kMaxKeyIdSize, " bytes of printable ASCII"));
  }
  for (size_t i = 0; i < key_id.size(); ++i) {
    const unsigned char c = static_cast<unsigned char>(key_id[i]);
    if (!absl::ascii_isprint(c)) {
      // The id is not echoed: it is not printable.
      return absl::InvalidArgumentError(absl::StrCat(
          "key id (", key_id.size(), " bytes) has a non-printable byte 0x",
          absl::Hex(c, absl::kZeroPad2), " at offset ", i));
    }
  }
  if (key_version == 0) {
    return absl::InvalidArgumentError(absl::StrCat(
        "key '", key_id, "': key version is 0, must be 1 or more"));
  }
  if (object_context.empty() ||
      object_context.size() > crypto::kMaxObjectContextSize) {
    return absl::InvalidArgumentError(
        absl::StrCat("object context is ", object_context.size(),
                     " bytes, must be 1-", crypto::kMaxObjectContextSize));
  }
  std::string ad;
  ad.reserve(kWrappedDekLabel.size() + 1 + 4 + key_id.size() + 4 +
             object_context.size());
  ad.append(kWrappedDekLabel.data(), kWrappedDekLabel.size());
  ad.push_back('\0');
  crypto::AppendBigEndian32(&ad, static_cast<uint32_t>(key_id.size()));
  ad.append(key_id.data(), key_id.size());
  crypto::AppendBigEndian32(&ad, key_version);
  ad.append(object_context.data(), object_context.size());
  return ad;
}

absl::StatusOr<Aead> KekAead(const SecretBytes& kek) {
  if (absl::Status status = CheckKeySize(kek, "key-encryption key", kKekSize);
      !status.ok()) {
    return status;
  }
  return Aead::Create(AeadAlgorithm::kAes256Gcm, kek.Clone());
}

}  // namespace

absl::StatusOr<std::string> WrapDataKey(const SecretBytes& kek,
                                        absl::string_view key_id,
                                        uint32_t key_version,
                                        absl::string_view object_context,
                                        const SecretBytes& dek) {
  absl::StatusOr<Aead> aead = KekAead(kek);
  if (!aead.ok()) return aead.status();
  if (absl::Status status = CheckKeySize(dek, "data key", kDataKeySize);
      !status.ok()) {
    return status;
  }
  absl::StatusOr<std::string> ad =
      AssociatedData(key_id, key_version, object_context);
  if (!ad.ok()) return ad.status();
  return aead->Encrypt(dek.view(), *ad);
}

absl::StatusOr<SecretBytes> UnwrapDataKey(const SecretBytes& kek,
                                          absl::string_view key_id,
                                          uint32_t key_version,
                                          absl::string_view object_context,
                                          absl::string_view wrapped) {
  absl::StatusOr<Aead> aead = KekAead(kek);
  if (!aead.ok()) return aead.status();
  absl::StatusOr<std::string> ad =
      AssociatedData(key_id, key_version, object_context);
  if (!ad.ok()) return ad.status();
  if (wrapped.size() != kWrappedDataKeySize) {
    return absl::InvalidArgumentError(
        absl::StrCat("wrapped key is ", wrapped.size(), " bytes, expected ",
                     kWrappedDataKeySize));
  }
  absl::StatusOr<SecretBytes> dek = aead->DecryptToSecret(wrapped, *ad);
  if (absl::IsDataLoss(dek.status())) {
    return absl::InvalidArgumentError(absl::StrCat(
        "wrapped key does not authenticate under key '", key_id, "' version ",
        key_version,
        " for this context (tampered, wrong key version or wrong object)"));
  }
  return dek;
}

}  // namespace residency::key_service
