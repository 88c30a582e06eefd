#include "crypto/aead.h"

#include <utility>

#include "absl/strings/str_cat.h"
#include "crypto/random.h"

namespace residency::crypto {
namespace {

internal::AeadCipher::Kind KindOf(AeadAlgorithm algorithm) {
  return algorithm == AeadAlgorithm::kAes256Gcm
             ? internal::AeadCipher::Kind::kAesGcm
             : internal::AeadCipher::Kind::kChaCha20Poly1305;
}

absl::Span<uint8_t> Writable(std::string& s, size_t offset) {
  return absl::Span<uint8_t>(reinterpret_cast<uint8_t*>(s.data()) + offset,
                             s.size() - offset);
}

}  // namespace

absl::string_view AeadAlgorithmName(AeadAlgorithm algorithm) {
  switch (algorithm) {
    case AeadAlgorithm::kAes256Gcm:
      return "aes-256-gcm";
    case AeadAlgorithm::kChaCha20Poly1305:
      return "chacha20-poly1305";
  }
  return "unknown";
}

absl::StatusOr<Aead> Aead::Create(AeadAlgorithm algorithm, SecretBytes key) {
  if (key.size() != kKeySize) {
    return absl::InvalidArgumentError(absl::StrCat(AeadAlgorithmName(algorithm),
                                                   " key must be ", kKeySize,
                                                   " bytes, got ", key.size()));
  }
  // Check once that OpenSSL accepts the key, so Encrypt/Decrypt only fail on
  // their inputs.
  absl::StatusOr<internal::AeadCipher> probe =
      internal::AeadCipher::Create(KindOf(algorithm), key.view());
  if (!probe.ok()) return probe.status();
  return Aead(algorithm, std::move(key));
}

absl::StatusOr<std::string> Aead::Encrypt(
    absl::string_view plaintext, absl::string_view associated_data) const {
  // A context per call keeps Aead immutable and so safe to share across
  // threads; the key schedule costs far less than the message at any size
  // where it matters.
  absl::StatusOr<internal::AeadCipher> cipher =
      internal::AeadCipher::Create(KindOf(algorithm_), key_.view());
  if (!cipher.ok()) return cipher.status();
  if (absl::Status status = CheckMessageSize("plaintext", plaintext.size());
      !status.ok()) {
    return status;
  }
  absl::StatusOr<std::string> nonce = RandomBytes(kNonceSize);
  if (!nonce.ok()) return nonce.status();

  std::string out = *std::move(nonce);
  out.resize(kNonceSize + plaintext.size() + kTagSize);
  absl::Status status = cipher->Seal(
      absl::Span<const uint8_t>(reinterpret_cast<const uint8_t*>(out.data()),
                                kNonceSize),
      plaintext, associated_data, Writable(out, kNonceSize));
  if (!status.ok()) return status;
  return out;
}

absl::Status Aead::CheckMessageSize(absl::string_view what,
                                    uint64_t size) const {
  const uint64_t limit = internal::AeadCipher::MaxMessage(KindOf(algorithm_));
  if (size > limit) {
    return absl::InvalidArgumentError(absl::StrCat(
        AeadAlgorithmName(algorithm_), " ", what, " of ", size,
        " bytes exceeds the ", limit, "-byte limit for one nonce"));
  }
  return absl::OkStatus();
}

absl::Status Aead::CheckCiphertextSize(absl::string_view ciphertext) const {
  if (ciphertext.size() < kOverhead) {
    return absl::InvalidArgumentError(absl::StrCat(
        AeadAlgorithmName(algorithm_), " ciphertext of ", ciphertext.size(),
        " bytes is shorter than the ", kOverhead, "-byte nonce and tag"));
  }
  // Before the caller allocates room for the plaintext.
  return CheckMessageSize("ciphertext", ciphertext.size() - kOverhead);
}

absl::Status Aead::DecryptInto(absl::string_view ciphertext,
                               absl::string_view associated_data,
                               absl::Span<uint8_t> out) const {
  absl::StatusOr<internal::AeadCipher> cipher =
      internal::AeadCipher::Create(KindOf(algorithm_), key_.view());
  if (!cipher.ok()) return cipher.status();
  absl::Status status = cipher->Open(
      absl::Span<const uint8_t>(
          reinterpret_cast<const uint8_t*>(ciphertext.data()), kNonceSize),
      ciphertext.substr(kNonceSize), associated_data, out);
  if (!status.ok()) {
    return absl::Status(
        status.code(),
        absl::StrCat(AeadAlgorithmName(algorithm_), ": ", status.message()));
  }
  return absl::OkStatus();
}

absl::StatusOr<std::string> Aead::Decrypt(
    absl::string_view ciphertext, absl::string_view associated_data) const {
  if (absl::Status status = CheckCiphertextSize(ciphertext); !status.ok()) {
    return status;
  }
  std::string out(ciphertext.size() - kOverhead, '\0');
  absl::Status status =
      DecryptInto(ciphertext, associated_data, Writable(out, 0));
  if (!status.ok()) return status;
  return out;
}

absl::StatusOr<SecretBytes> Aead::DecryptToSecret(
    absl::string_view ciphertext, absl::string_view associated_data) const {
  if (absl::Status status = CheckCiphertextSize(ciphertext); !status.ok()) {
    return status;
  }
  // AeadCipher::Open wipes `out` on failure and SecretBytes wipes it when
  // dropped, so the plaintext exists only inside `out`.
  SecretBytes out(ciphertext.size() - kOverhead);
  absl::Status status =
      DecryptInto(ciphertext, associated_data,
                  absl::Span<uint8_t>(out.mutable_data(), out.size()));
  if (!status.ok()) return status;
  return out;
}

}  // namespace residency::crypto
