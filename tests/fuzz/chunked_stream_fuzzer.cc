// Streaming Cobblestone decryption (crypto::ChunkedDecryptor) of arbitrary
// ciphertext, fed in arbitrary pieces through both Update overloads.
//
// Input: one control byte (bit 0: AES-128-GCM instead of Cobblestone-256;
// bit 1: write into caller-owned buffers), one byte of piece-size seed, then
// the ciphertext. The key and context are the throwaway ones in fuzz_util.h.
//
// Invariants: a failure is INVALID_ARGUMENT or DATA_LOSS and leaves no
// plaintext behind; a success has exactly ChunkedPlaintextLength(ciphertext)
// bytes, equals the one-shot ChunkedDecrypt of the same bytes, and does not
// open under another key; a decryptor that failed keeps failing.

#include <algorithm>
#include <cstddef>
#include <cstdint>
#include <string>

#include "absl/status/status.h"
#include "crypto/chunked.h"
#include "tests/fuzz/fuzz_util.h"

namespace residency::fuzz {
namespace {

using crypto::ChunkedAead;

bool ExpectedFailure(const absl::Status& s) {
  return s.code() == absl::StatusCode::kInvalidArgument ||
         s.code() == absl::StatusCode::kDataLoss;
}

// Decrypts `ciphertext` in pieces whose sizes come from `piece_seed`.
absl::Status DecryptInPieces(const crypto::SecretBytes& key, ChunkedAead aead,
                             bool spans, uint8_t piece_seed,
                             absl::string_view ciphertext, std::string* out) {
  absl::StatusOr<crypto::ChunkedDecryptor> dec =
      crypto::ChunkedDecryptor::Create(key, kChunkedContext, aead);
  FUZZ_CHECK(dec.ok());
  // Piece sizes cycle through a few values around the chunk and header
  // boundaries, chosen by the seed.
  const size_t sizes[] = {1,
                          7,
                          crypto::kChunkedHeaderSize,
                          crypto::kSealedChunkSize - 1,
                          crypto::kSealedChunkSize,
                          crypto::kSealedChunkSize + 1,
                          size_t{piece_seed} + 1,
                          ciphertext.size()};
  size_t turn = piece_seed;
  absl::Status status;
  while (!ciphertext.empty() && status.ok()) {
    const size_t n = std::min(ciphertext.size(), sizes[turn++ % 8]);
    const absl::string_view piece = ciphertext.substr(0, n);
    ciphertext.remove_prefix(n);
    const size_t before = out->size();
    if (spans) {
      std::string buffer(dec->UpdateOutputSize(piece.size()), '\0');
      absl::StatusOr<size_t> wrote = dec->Update(
          piece, absl::MakeSpan(reinterpret_cast<uint8_t*>(buffer.data()),
                                buffer.size()));
      status = wrote.status();
      if (wrote.ok()) {
        FUZZ_CHECK(*wrote <= buffer.size());
        out->append(buffer.data(), *wrote);
      }
    } else {
      status = dec->Update(piece, out);
      // A failed Update takes back what it appended.
      if (!status.ok()) FUZZ_CHECK(out->size() == before);
    }
  }
  if (status.ok()) {
    if (spans) {
      std::string buffer(dec->FinishOutputSize(), '\0');
      absl::StatusOr<size_t> wrote = dec->Finish(absl::MakeSpan(
          reinterpret_cast<uint8_t*>(buffer.data()), buffer.size()));
      status = wrote.status();
      if (wrote.ok()) {
        FUZZ_CHECK(*wrote <= buffer.size());
        out->append(buffer.data(), *wrote);
      }
    } else {
      status = dec->Finish(out);
    }
  }
  if (!status.ok()) {
    // Sticky: the next call fails the same way.
    std::string more;
    const absl::Status again = dec->Finish(&more);
    FUZZ_CHECK(again == status);
    FUZZ_CHECK(more.empty());
  }
  return status;
}

}  // namespace
}  // namespace residency::fuzz

extern "C" int LLVMFuzzerTestOneInput(const uint8_t* data, size_t size) {
  using namespace residency;
  using namespace residency::fuzz;
  InputReader in(data, size);
  const uint8_t control = in.U8();
  const uint8_t piece_seed = in.U8();
  const absl::string_view ciphertext = in.rest();
  const crypto::ChunkedAead aead = (control & 1)
                                       ? crypto::ChunkedAead::kAes128Gcm
                                       : crypto::ChunkedAead::kAes256Gcm;
  const size_t key_size = crypto::ChunkedKeySize(aead);
  const crypto::SecretBytes key = ThrowawayKey(key_size, kChunkedKeyFill);

  std::string plaintext;
  const absl::Status status = DecryptInPieces(
      key, aead, (control & 2) != 0, piece_seed, ciphertext, &plaintext);
  const absl::StatusOr<std::string> one_shot =
      crypto::ChunkedDecrypt(key, kChunkedContext, ciphertext, aead);
  FUZZ_CHECK(one_shot.ok() == status.ok());
  if (!status.ok()) {
    FUZZ_CHECK(ExpectedFailure(status));
    FUZZ_CHECK(ExpectedFailure(one_shot.status()));
    return 0;
  }
  const absl::StatusOr<uint64_t> length =
      crypto::ChunkedPlaintextLength(ciphertext.size());
  FUZZ_CHECK(length.ok());
  FUZZ_CHECK(plaintext.size() == *length);
  FUZZ_CHECK(*one_shot == plaintext);
  FUZZ_CHECK(crypto::ChunkedCiphertextLength(plaintext.size()) ==
             ciphertext.size());
  const crypto::SecretBytes other = ThrowawayKey(key_size, kOtherKeyFill);
  FUZZ_CHECK(
      !crypto::ChunkedDecrypt(other, kChunkedContext, ciphertext, aead).ok());
  FUZZ_CHECK(
      !crypto::ChunkedDecrypt(key, "fuzz/other v1", ciphertext, aead).ok());
  return 0;
}
