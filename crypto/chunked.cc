#include "crypto/chunked.h"

#include <openssl/crypto.h>
#include <openssl/rand.h>
#include <unistd.h>

#include <algorithm>
#include <array>
#include <limits>
#include <utility>

#include "absl/strings/str_cat.h"
#include "crypto/hkdf.h"

namespace residency::crypto {
namespace {

constexpr absl::string_view kInfoPrefix = "c2sp.org/chunked-encryption@v1+";
constexpr size_t kBaseNonceSize = 12;

absl::string_view AeadName(ChunkedAead aead) {
  return aead == ChunkedAead::kAes256Gcm ? "AEAD_AES_256_GCM"
                                         : "AEAD_AES_128_GCM";
}

absl::Status CheckKeySize(const SecretBytes& key, ChunkedAead aead) {
  if (key.size() != ChunkedKeySize(aead)) {
    return absl::InvalidArgumentError(absl::StrCat(
        "chunked encryption with ", AeadName(aead), " needs a ",
        ChunkedKeySize(aead), "-byte key, got ", key.size(), " bytes"));
  }
  return absl::OkStatus();
}

// The key schedule's output: AEAD key, base nonce and commitment, as one
// buffer of Nk + 12 + 32 bytes.
struct Schedule {
  SecretBytes okm;
  size_t key_size;
  absl::string_view aead_key() const { return okm.view().substr(0, key_size); }
  absl::string_view base_nonce() const {
    return okm.view().substr(key_size, kBaseNonceSize);
  }
  absl::string_view commitment() const {
    return okm.view().substr(key_size + kBaseNonceSize, kChunkedCommitmentSize);
  }
};

// Salts are public (every ciphertext starts with its own), so they can be
// drawn from OpenSSL's DRBG in batches: one RAND_bytes call per 32 salts
// rather than one per message, which saves most of what the DRBG costs per
// call. A batch belongs to one thread and to the process that drew it: a
// forked child finds another process id and discards what it inherited, so a
// parent and its child never hand out the same salt. (OpenSSL's DRBG detects
// a fork the same way; an atfork handler would miss a child made by _Fork or
// a raw clone.)
absl::StatusOr<std::string> NewSalt() {
  constexpr size_t kBatch = 32;
  struct Pool {
    std::array<uint8_t, kBatch * kChunkedSaltSize> bytes;
    size_t next = kBatch;  // index of the next unused salt; kBatch: none left
    pid_t pid = 0;         // the process that drew the batch
  };
  thread_local Pool pool;
  const pid_t pid = getpid();
  if (pool.next == kBatch || pool.pid != pid) {
    if (RAND_bytes(pool.bytes.data(), static_cast<int>(pool.bytes.size())) !=
        1) {
      pool.next = kBatch;
      return absl::InternalError("RAND_bytes failed to produce a salt");
    }
    pool.next = 0;
    pool.pid = pid;
  }
  const uint8_t* const salt = pool.bytes.data() + pool.next * kChunkedSaltSize;
  ++pool.next;
  return std::string(reinterpret_cast<const char*>(salt), kChunkedSaltSize);
}

absl::Status CheckContext(absl::string_view context) {
  if (context.size() > kMaxChunkedContextSize) {
    return absl::InvalidArgumentError(absl::StrCat(
        "chunked encryption context of ", context.size(),
        " bytes is longer than the limit of ", kMaxChunkedContextSize));
  }
  return absl::OkStatus();
}

absl::StatusOr<Schedule> DeriveSchedule(const SecretBytes& key,
                                        absl::string_view salt,
                                        absl::string_view context,
                                        ChunkedAead aead) {
  if (absl::Status s = CheckContext(context); !s.ok()) return s;
  std::string info;
  info.reserve(kInfoPrefix.size() + 17 + 1 + salt.size() + context.size());
  absl::StrAppend(&info, kInfoPrefix, AeadName(aead));
  info.push_back('\0');
  absl::StrAppend(&info, salt, context);
  const size_t key_size = ChunkedKeySize(aead);
  absl::StatusOr<SecretBytes> okm =
      HkdfExpand(HkdfHash::kSha512, key, info,
                 key_size + kBaseNonceSize + kChunkedCommitmentSize);
  if (!okm.ok()) return okm.status();
  return Schedule{*std::move(okm), key_size};
}

// Derives the schedule for a stored header and checks its commitment in
// constant time. DATA_LOSS names the likely causes: the commitment binds the
// key and the context, so either being wrong fails here, before any chunk.
absl::StatusOr<internal::ChunkCipher> OpenHeader(const SecretBytes& key,
                                                 absl::string_view context,
                                                 absl::string_view header,
                                                 ChunkedAead aead) {
  absl::StatusOr<Schedule> schedule =
      DeriveSchedule(key, header.substr(0, kChunkedSaltSize), context, aead);
  if (!schedule.ok()) return schedule.status();
  if (CRYPTO_memcmp(schedule->commitment().data(),
                    header.data() + kChunkedSaltSize,
                    kChunkedCommitmentSize) != 0) {
    return absl::DataLossError(
        "chunked encryption: key commitment mismatch (wrong key, wrong "
        "context, or a modified header)");
  }
  return internal::ChunkCipher::Create(schedule->aead_key(),
                                       schedule->base_nonce());
}

}  // namespace

size_t ChunkedKeySize(ChunkedAead aead) {
  return aead == ChunkedAead::kAes256Gcm ? 32 : 16;
}

uint64_t ChunkCount(uint64_t plaintext_length) {
  return plaintext_length / kChunkSize + 1;
}

uint64_t ChunkedCiphertextLength(uint64_t plaintext_length) {
  if (plaintext_length > kMaxChunkedPlaintextLength) {
    return std::numeric_limits<uint64_t>::max();
  }
  return kChunkedHeaderSize + plaintext_length +
         kChunkTagSize * ChunkCount(plaintext_length);
}

absl::StatusOr<uint64_t> ChunkedPlaintextLength(uint64_t ciphertext_length) {
  if (ciphertext_length > ChunkedCiphertextLength(kMaxChunkedPlaintextLength)) {
    return absl::InvalidArgumentError(
        absl::StrCat("ciphertext length ", ciphertext_length,
                     " is above that of the largest allowed message (",
                     kMaxChunkedPlaintextLength, " bytes)"));
  }
  if (ciphertext_length < kChunkedHeaderSize + kChunkTagSize) {
    return absl::InvalidArgumentError(absl::StrCat(
        "ciphertext of ", ciphertext_length,
        " bytes is shorter than the smallest chunked-encryption message (",
        kChunkedHeaderSize + kChunkTagSize, " bytes)"));
  }
  const uint64_t body = ciphertext_length - kChunkedHeaderSize;
  const uint64_t full = body / kSealedChunkSize;
  const uint64_t last = body % kSealedChunkSize;
  if (last < kChunkTagSize) {
    return absl::InvalidArgumentError(absl::StrCat(
        "ciphertext length ", ciphertext_length,
        " is not a valid chunked-encryption length: its last chunk has ", last,
        " bytes, which is ",
        last == 0 ? "a full chunk with no short final chunk after it"
                  : "shorter than a 16-byte tag"));
  }
  return full * kChunkSize + (last - kChunkTagSize);
}

// ---------------------------------------------------------------- encryptor

ChunkedEncryptor::ChunkedEncryptor(internal::ChunkCipher cipher,
                                   std::string header)
    : cipher_(std::move(cipher)), header_(std::move(header)) {
  pending_.reserve(kChunkSize);
}

ChunkedEncryptor::~ChunkedEncryptor() {
  OPENSSL_cleanse(pending_.data(), pending_.size());
}

absl::Status ChunkedEncryptor::Fail(absl::Status status) {
  status_ = status;
  OPENSSL_cleanse(pending_.data(), pending_.size());
  pending_.clear();
  return status;
}

absl::StatusOr<ChunkedEncryptor> ChunkedEncryptor::Create(
    const SecretBytes& key, absl::string_view context, ChunkedAead aead) {
  if (absl::Status s = CheckKeySize(key, aead); !s.ok()) return s;
  absl::StatusOr<std::string> salt = NewSalt();
  if (!salt.ok()) return salt.status();
  absl::StatusOr<Schedule> schedule = DeriveSchedule(key, *salt, context, aead);
  if (!schedule.ok()) return schedule.status();
  absl::StatusOr<internal::ChunkCipher> cipher = internal::ChunkCipher::Create(
      schedule->aead_key(), schedule->base_nonce());
  if (!cipher.ok()) return cipher.status();
  std::string header = *std::move(salt);
  absl::StrAppend(&header, schedule->commitment());
  return ChunkedEncryptor(*std::move(cipher), std::move(header));
}

size_t ChunkedEncryptor::UpdateOutputSize(size_t plaintext_size) const {
  return (pending_.size() + plaintext_size) / kChunkSize * kSealedChunkSize;
}

size_t ChunkedEncryptor::FinishOutputSize() const {
  return pending_.size() + kChunkTagSize;
}

absl::StatusOr<size_t> ChunkedEncryptor::Update(absl::string_view plaintext,
                                                absl::Span<uint8_t> out) {
  if (!status_.ok()) return status_;
  if (finished_) {
    return Fail(absl::FailedPreconditionError(
        "chunked encryptor: Update after Finish"));
  }
  // A too-small buffer is refused before any state changes, so the caller
  // may retry with a larger one.
  const size_t needed = UpdateOutputSize(plaintext.size());
  if (out.size() < needed) {
    return absl::InvalidArgumentError(
        absl::StrCat("chunked encryptor: output buffer of ", out.size(),
                     " bytes, need ", needed));
  }
  if (plaintext.size() > kMaxChunkedPlaintextLength - plaintext_length_) {
    return Fail(absl::InvalidArgumentError(
        absl::StrCat("chunked encryptor: message would exceed the limit of ",
                     kMaxChunkedPlaintextLength, " bytes")));
  }
  plaintext_length_ += plaintext.size();
  size_t written = 0;
  // A full chunk is never the final one (the final chunk is always short),
  // so each is sealed as soon as its plaintext is complete.
  if (!pending_.empty()) {
    const size_t take =
        std::min(kChunkSize - pending_.size(), plaintext.size());
    pending_.append(plaintext.data(), take);
    plaintext.remove_prefix(take);
    if (pending_.size() < kChunkSize) return written;
    absl::Status s = cipher_.SealChunk(next_chunk_++, pending_,
                                       out.subspan(0, kSealedChunkSize));
    OPENSSL_cleanse(pending_.data(), pending_.size());
    pending_.clear();
    if (!s.ok()) return Fail(s);
    written += kSealedChunkSize;
  }
  while (plaintext.size() >= kChunkSize) {
    absl::Status s =
        cipher_.SealChunk(next_chunk_++, plaintext.substr(0, kChunkSize),
                          out.subspan(written, kSealedChunkSize));
    if (!s.ok()) return Fail(s);
    written += kSealedChunkSize;
    plaintext.remove_prefix(kChunkSize);
  }
  pending_.assign(plaintext.data(), plaintext.size());
  return written;
}

absl::StatusOr<size_t> ChunkedEncryptor::Finish(absl::Span<uint8_t> out) {
  if (!status_.ok()) return status_;
  if (finished_) {
    return Fail(absl::FailedPreconditionError(
        "chunked encryptor: Finish called twice"));
  }
  const size_t needed = FinishOutputSize();
  if (out.size() < needed) {
    return absl::InvalidArgumentError(
        absl::StrCat("chunked encryptor: output buffer of ", out.size(),
                     " bytes, need ", needed));
  }
  finished_ = true;
  absl::Status s =
      cipher_.SealChunk(next_chunk_++, pending_, out.subspan(0, needed));
  OPENSSL_cleanse(pending_.data(), pending_.size());
  pending_.clear();
  if (!s.ok()) return Fail(s);
  return needed;
}

namespace {

// Runs a span-writing step against the tail of a string: grows `out` by
// `bound`, lets `step` write, and keeps only what it wrote (nothing on
// failure).
template <typename Step>
absl::Status AppendWith(std::string* out, size_t bound, Step step) {
  const size_t at = out->size();
  out->resize(at + bound);
  absl::StatusOr<size_t> written = step(
      absl::Span<uint8_t>(reinterpret_cast<uint8_t*>(out->data()) + at, bound));
  out->resize(at + (written.ok() ? *written : 0));
  return written.status();
}

}  // namespace

absl::Status ChunkedEncryptor::Update(absl::string_view plaintext,
                                      std::string* out) {
  return AppendWith(
      out, UpdateOutputSize(plaintext.size()),
      [&](absl::Span<uint8_t> span) { return Update(plaintext, span); });
}

absl::Status ChunkedEncryptor::Finish(std::string* out) {
  return AppendWith(out, FinishOutputSize(),
                    [&](absl::Span<uint8_t> span) { return Finish(span); });
}

// ---------------------------------------------------------------- decryptor

ChunkedDecryptor::ChunkedDecryptor(SecretBytes key, std::string context,
                                   ChunkedAead aead)
    : key_(std::move(key)), context_(std::move(context)), aead_(aead) {}

absl::StatusOr<ChunkedDecryptor> ChunkedDecryptor::Create(
    const SecretBytes& key, absl::string_view context, ChunkedAead aead) {
  if (absl::Status s = CheckKeySize(key, aead); !s.ok()) return s;
  if (absl::Status s = CheckContext(context); !s.ok()) return s;
  return ChunkedDecryptor(key.Clone(), std::string(context), aead);
}

absl::Status ChunkedDecryptor::Fail(absl::Status status) {
  status_ = status;
  key_ = SecretBytes();
  OPENSSL_cleanse(pending_.data(), pending_.size());
  pending_.clear();
  cipher_.reset();
  return status;
}

absl::Status ChunkedDecryptor::ReadHeader() {
  absl::StatusOr<internal::ChunkCipher> cipher =
      OpenHeader(key_, context_, pending_, aead_);
  if (!cipher.ok()) return Fail(cipher.status());
  cipher_.emplace(*std::move(cipher));
  key_ = SecretBytes();  // the cipher holds what it needs; wipe the input key
  pending_.clear();
  return absl::OkStatus();
}

absl::Status ChunkedDecryptor::OpenChunk(absl::string_view sealed,
                                         bool final_chunk,
                                         absl::Span<uint8_t> out) {
  const uint64_t index = next_chunk_++;
  absl::Status s = cipher_->OpenChunk(index, sealed, out);
  if (!s.ok()) {
    return Fail(absl::DataLossError(absl::StrCat(
        "chunked encryption: ", final_chunk ? "final " : "", "chunk ", index,
        " failed authentication (modified, reordered, truncated or trailing "
        "data)")));
  }
  return absl::OkStatus();
}

size_t ChunkedDecryptor::UpdateOutputSize(size_t ciphertext_size) const {
  size_t buffered = pending_.size();
  if (!cipher_.has_value()) {
    // The first bytes complete the header and release nothing.
    const size_t header_part =
        std::min(kChunkedHeaderSize - pending_.size(), ciphertext_size);
    ciphertext_size -= header_part;
    buffered = 0;
  }
  return (buffered + ciphertext_size) / kSealedChunkSize * kChunkSize;
}

size_t ChunkedDecryptor::FinishOutputSize() const {
  if (!cipher_.has_value() || pending_.size() < kChunkTagSize) return 0;
  return pending_.size() - kChunkTagSize;
}

absl::StatusOr<size_t> ChunkedDecryptor::Update(absl::string_view ciphertext,
                                                absl::Span<uint8_t> out) {
  if (!status_.ok()) return status_;
  if (finished_) {
    return absl::FailedPreconditionError(
        "chunked decryptor: Update after Finish");
  }
  const size_t needed = UpdateOutputSize(ciphertext.size());
  if (out.size() < needed) {
    return absl::InvalidArgumentError(
        absl::StrCat("chunked decryptor: output buffer of ", out.size(),
                     " bytes, need ", needed));
  }
  if (!cipher_.has_value()) {
    const size_t take =
        std::min(kChunkedHeaderSize - pending_.size(), ciphertext.size());
    pending_.append(ciphertext.data(), take);
    ciphertext.remove_prefix(take);
    if (pending_.size() < kChunkedHeaderSize) return 0;
    if (absl::Status s = ReadHeader(); !s.ok()) return s;
  }
  size_t written = 0;
  auto fail = [&](absl::Status s) {
    OPENSSL_cleanse(out.data(), written);
    return s;
  };
  // A sealed chunk of full size is never the final one, so it can be opened
  // and released as soon as it is complete. Whatever is left shorter than a
  // full chunk waits for more input or for Finish.
  if (!pending_.empty()) {
    const size_t take =
        std::min(kSealedChunkSize - pending_.size(), ciphertext.size());
    pending_.append(ciphertext.data(), take);
    ciphertext.remove_prefix(take);
    if (pending_.size() < kSealedChunkSize) return written;
    if (absl::Status s = OpenChunk(pending_, /*final_chunk=*/false,
                                   out.subspan(0, kChunkSize));
        !s.ok()) {
      return fail(s);
    }
    written += kChunkSize;
    pending_.clear();
  }
  while (ciphertext.size() >= kSealedChunkSize) {
    if (absl::Status s =
            OpenChunk(ciphertext.substr(0, kSealedChunkSize),
                      /*final_chunk=*/false, out.subspan(written, kChunkSize));
        !s.ok()) {
      return fail(s);
    }
    written += kChunkSize;
    ciphertext.remove_prefix(kSealedChunkSize);
  }
  pending_.assign(ciphertext.data(), ciphertext.size());
  return written;
}

absl::StatusOr<size_t> ChunkedDecryptor::Finish(absl::Span<uint8_t> out) {
  if (!status_.ok()) return status_;
  if (finished_) {
    return absl::FailedPreconditionError(
        "chunked decryptor: Finish called twice");
  }
  const size_t needed = FinishOutputSize();
  if (out.size() < needed) {
    return absl::InvalidArgumentError(
        absl::StrCat("chunked decryptor: output buffer of ", out.size(),
                     " bytes, need ", needed));
  }
  finished_ = true;
  if (!cipher_.has_value()) {
    return Fail(absl::DataLossError(
        absl::StrCat("chunked encryption: ciphertext ends after ",
                     pending_.size(), " bytes, inside the ", kChunkedHeaderSize,
                     "-byte header (truncated)")));
  }
  if (pending_.size() < kChunkTagSize) {
    return Fail(absl::DataLossError(
        absl::StrCat("chunked encryption: ciphertext ends ", pending_.size(),
                     " bytes into chunk ", next_chunk_,
                     ", with no complete final chunk (truncated)")));
  }
  if (absl::Status s =
          OpenChunk(pending_, /*final_chunk=*/true, out.subspan(0, needed));
      !s.ok()) {
    return s;
  }
  pending_.clear();
  return needed;
}

absl::Status ChunkedDecryptor::Update(absl::string_view ciphertext,
                                      std::string* out) {
  return AppendWith(
      out, UpdateOutputSize(ciphertext.size()),
      [&](absl::Span<uint8_t> span) { return Update(ciphertext, span); });
}

absl::Status ChunkedDecryptor::Finish(std::string* out) {
  return AppendWith(out, FinishOutputSize(),
                    [&](absl::Span<uint8_t> span) { return Finish(span); });
}

// ------------------------------------------------------------- random access

absl::StatusOr<ChunkedRangeDecryptor> ChunkedRangeDecryptor::Create(
    const SecretBytes& key, absl::string_view context, absl::string_view header,
    uint64_t ciphertext_length, ChunkedAead aead) {
  if (absl::Status s = CheckKeySize(key, aead); !s.ok()) return s;
  if (header.size() != kChunkedHeaderSize) {
    return absl::InvalidArgumentError(
        absl::StrCat("chunked encryption header must be ", kChunkedHeaderSize,
                     " bytes, got ", header.size()));
  }
  absl::StatusOr<uint64_t> plaintext_length =
      ChunkedPlaintextLength(ciphertext_length);
  if (!plaintext_length.ok()) return plaintext_length.status();
  absl::StatusOr<internal::ChunkCipher> cipher =
      OpenHeader(key, context, header, aead);
  if (!cipher.ok()) return cipher.status();
  return ChunkedRangeDecryptor(*std::move(cipher), *plaintext_length);
}

ChunkSpan ChunkedCiphertextSpan(uint64_t plaintext_length, uint64_t offset,
                                uint64_t length) {
  ChunkSpan span;
  const uint64_t final_chunk = plaintext_length / kChunkSize;
  const bool reaches_end =
      offset >= plaintext_length || length >= plaintext_length - offset;
  if (!reaches_end && length == 0) {
    span.offset = kChunkedHeaderSize + (offset / kChunkSize) * kSealedChunkSize;
    return span;
  }
  // A range that reaches the end always takes the final chunk, even when it
  // holds no byte of the range (an empty final chunk, or a range starting at
  // the end): opening it is what proves the message ends there, so a read of
  // the tail of a truncated or extended message fails.
  span.first_chunk = std::min(offset, plaintext_length) / kChunkSize;
  const uint64_t last_chunk =
      reaches_end ? final_chunk : (offset + length - 1) / kChunkSize;
  span.first_chunk = std::min(span.first_chunk, last_chunk);
  span.chunk_count = last_chunk - span.first_chunk + 1;
  span.offset = kChunkedHeaderSize + span.first_chunk * kSealedChunkSize;
  span.length = span.chunk_count * kSealedChunkSize;
  if (last_chunk == final_chunk) {
    // The final chunk is short: it holds plaintext_length mod 16384 bytes.
    span.length -= kChunkSize - plaintext_length % kChunkSize;
  }
  return span;
}

absl::StatusOr<std::string> ChunkedRangeDecryptor::DecryptChunk(
    uint64_t index, absl::string_view sealed) {
  const uint64_t chunks = ChunkCount(plaintext_length_);
  if (index >= chunks) {
    return absl::InvalidArgumentError(
        absl::StrCat("chunk ", index, " is past the last chunk (", chunks - 1,
                     ") of a ", plaintext_length_, "-byte message"));
  }
  const uint64_t expected =
      index + 1 < chunks ? kSealedChunkSize
                         : plaintext_length_ % kChunkSize + kChunkTagSize;
  if (sealed.size() != expected) {
    return absl::InvalidArgumentError(
        absl::StrCat("chunk ", index, " must be ", expected,
                     " sealed bytes, got ", sealed.size()));
  }
  std::string out;
  if (absl::Status s = cipher_.OpenChunk(index, sealed, &out); !s.ok()) {
    return absl::DataLossError(absl::StrCat("chunked encryption: chunk ", index,
                                            " failed authentication"));
  }
  return out;
}

absl::StatusOr<std::string> ChunkedRangeDecryptor::DecryptRange(
    uint64_t offset, uint64_t length, absl::string_view sealed) {
  const ChunkSpan span = CiphertextSpan(offset, length);
  if (sealed.size() != span.length) {
    return absl::InvalidArgumentError(absl::StrCat(
        "range [", offset, ", +", length, ") needs ", span.length,
        " sealed bytes (chunks ", span.first_chunk, "..",
        span.first_chunk + span.chunk_count, "), got ", sealed.size()));
  }
  if (span.chunk_count == 0) return std::string();
  std::string plaintext;
  plaintext.reserve(span.chunk_count * kChunkSize);
  for (uint64_t k = 0; k < span.chunk_count; ++k) {
    const uint64_t index = span.first_chunk + k;
    const absl::string_view chunk =
        sealed.substr(k * kSealedChunkSize,
                      std::min<uint64_t>(kSealedChunkSize,
                                         sealed.size() - k * kSealedChunkSize));
    if (absl::Status s = cipher_.OpenChunk(index, chunk, &plaintext); !s.ok()) {
      OPENSSL_cleanse(plaintext.data(), plaintext.size());
      return absl::DataLossError(absl::StrCat("chunked encryption: chunk ",
                                              index, " failed authentication"));
    }
  }
  const uint64_t start = std::min(offset, plaintext_length_);
  const uint64_t skip = start - span.first_chunk * kChunkSize;
  const uint64_t take = std::min(length, plaintext_length_ - start);
  return plaintext.substr(skip, take);
}

// ------------------------------------------------------------------ one-shot

absl::StatusOr<std::string> ChunkedEncrypt(const SecretBytes& key,
                                           absl::string_view context,
                                           absl::string_view plaintext,
                                           ChunkedAead aead) {
  absl::StatusOr<ChunkedEncryptor> enc =
      ChunkedEncryptor::Create(key, context, aead);
  if (!enc.ok()) return enc.status();
  std::string out;
  out.reserve(ChunkedCiphertextLength(plaintext.size()));
  out = enc->header();
  if (absl::Status s = enc->Update(plaintext, &out); !s.ok()) return s;
  if (absl::Status s = enc->Finish(&out); !s.ok()) return s;
  return out;
}

absl::StatusOr<std::string> ChunkedDecrypt(const SecretBytes& key,
                                           absl::string_view context,
                                           absl::string_view ciphertext,
                                           ChunkedAead aead) {
  absl::StatusOr<ChunkedDecryptor> dec =
      ChunkedDecryptor::Create(key, context, aead);
  if (!dec.ok()) return dec.status();
  std::string out;
  absl::Status s = dec->Update(ciphertext, &out);
  if (s.ok()) s = dec->Finish(&out);
  if (!s.ok()) {
    OPENSSL_cleanse(out.data(), out.size());
    return s;
  }
  return out;
}

}  // namespace residency::crypto
