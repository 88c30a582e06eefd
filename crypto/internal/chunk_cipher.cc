#include "crypto/internal/chunk_cipher.h"

#include <cstring>
#include <utility>

#include "absl/strings/str_cat.h"

namespace residency::crypto::internal {

absl::StatusOr<ChunkCipher> ChunkCipher::Create(absl::string_view aead_key,
                                                absl::string_view base_nonce) {
  if (base_nonce.size() != AeadCipher::kNonceSize) {
    return absl::InvalidArgumentError(absl::StrCat(
        "chunked encryption base nonce must be ", AeadCipher::kNonceSize,
        " bytes, got ", base_nonce.size()));
  }
  absl::StatusOr<AeadCipher> aead =
      AeadCipher::Create(AeadCipher::Kind::kAesGcm, aead_key);
  if (!aead.ok()) return aead.status();
  std::array<uint8_t, 12> nonce;
  std::memcpy(nonce.data(), base_nonce.data(), nonce.size());
  return ChunkCipher(*std::move(aead), nonce);
}

std::array<uint8_t, 12> ChunkCipher::NonceFor(uint64_t index) const {
  // The counter is XORed big-endian into the low-order (last) bytes; a
  // 64-bit index never reaches the first four bytes.
  std::array<uint8_t, 12> nonce = base_nonce_;
  for (int i = 0; i < 8; ++i) {
    nonce[11 - i] ^= static_cast<uint8_t>(index >> (8 * i));
  }
  return nonce;
}

absl::Status ChunkCipher::SealChunk(uint64_t index, absl::string_view plaintext,
                                    absl::Span<uint8_t> out) {
  return aead_.Seal(NonceFor(index), plaintext, /*associated_data=*/"", out);
}

absl::Status ChunkCipher::OpenChunk(uint64_t index, absl::string_view sealed,
                                    absl::Span<uint8_t> out) {
  if (sealed.size() < AeadCipher::kTagSize) {
    return absl::InvalidArgumentError(
        absl::StrCat("chunk ", index, " has ", sealed.size(),
                     " bytes, fewer than its 16-byte tag"));
  }
  return aead_.Open(NonceFor(index), sealed, /*associated_data=*/"", out);
}

absl::Status ChunkCipher::SealChunk(uint64_t index, absl::string_view plaintext,
                                    std::string* out) {
  const size_t at = out->size();
  out->resize(at + plaintext.size() + AeadCipher::kTagSize);
  absl::Status status = SealChunk(
      index, plaintext,
      absl::Span<uint8_t>(reinterpret_cast<uint8_t*>(out->data()) + at,
                          out->size() - at));
  if (!status.ok()) out->resize(at);
  return status;
}

absl::Status ChunkCipher::OpenChunk(uint64_t index, absl::string_view sealed,
                                    std::string* out) {
  if (sealed.size() < AeadCipher::kTagSize) {
    return OpenChunk(index, sealed, absl::Span<uint8_t>());
  }
  const size_t at = out->size();
  out->resize(at + sealed.size() - AeadCipher::kTagSize);
  absl::Status status = OpenChunk(
      index, sealed,
      absl::Span<uint8_t>(reinterpret_cast<uint8_t*>(out->data()) + at,
                          out->size() - at));
  if (!status.ok()) out->resize(at);
  return status;
}

}  // namespace residency::crypto::internal
