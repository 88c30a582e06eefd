// Crypto throughput: our Aead and Cobblestone-256 chunked encryption beside
// one-shot OpenSSL EVP AES-256-GCM, the baseline, at the same sizes in the
// same run.
#include <openssl/evp.h>

#include <cstdint>
#include <cstring>
#include <string>
#include <vector>

#include "absl/strings/str_cat.h"
#include "bench/bench_summary.h"
#include "benchmark/benchmark.h"
#include "crypto/aead.h"
#include "crypto/chunked.h"
#include "crypto/random.h"

namespace residency::crypto {
namespace {

constexpr int64_t kSizes[] = {1 << 10, 16 << 10, 1 << 20, 64 << 20};
constexpr absl::string_view kContext = "bench-owner/bench-object/v1";

std::string Message(size_t size) { return std::string(*RandomBytes(size)); }

SecretBytes Key() { return *RandomSecret(32); }

// The baseline: one AES-256-GCM encryption of the whole message with raw EVP
// calls (key schedule included, as a one-shot caller would pay it), into a
// buffer allocated once.
void BM_EvpAes256GcmOneShot(benchmark::State& state) {
  const size_t size = state.range(0);
  const std::string msg = Message(size);
  const SecretBytes key = Key();
  const std::string iv = *RandomBytes(12);
  std::vector<uint8_t> out(size + 16);
  EVP_CIPHER* cipher = EVP_CIPHER_fetch(nullptr, "AES-256-GCM", nullptr);
  EVP_CIPHER_CTX* ctx = EVP_CIPHER_CTX_new();
  for (auto _ : state) {
    int len = 0;
    EVP_EncryptInit_ex2(ctx, cipher, key.data(),
                        reinterpret_cast<const uint8_t*>(iv.data()), nullptr);
    EVP_EncryptUpdate(ctx, out.data(), &len,
                      reinterpret_cast<const uint8_t*>(msg.data()),
                      static_cast<int>(size));
    EVP_EncryptFinal_ex(ctx, out.data() + len, &len);
    EVP_CIPHER_CTX_ctrl(ctx, EVP_CTRL_AEAD_GET_TAG, 16, out.data() + size);
    benchmark::DoNotOptimize(out.data());
    benchmark::ClobberMemory();
  }
  EVP_CIPHER_CTX_free(ctx);
  EVP_CIPHER_free(cipher);
  state.SetBytesProcessed(state.iterations() * size);
}

// The decryption baseline: one-shot AES-256-GCM decryption and tag check of
// the whole message.
void BM_EvpAes256GcmOneShotDecrypt(benchmark::State& state) {
  const size_t size = state.range(0);
  const std::string msg = Message(size);
  const SecretBytes key = Key();
  const std::string iv = *RandomBytes(12);
  const auto* iv_bytes = reinterpret_cast<const uint8_t*>(iv.data());
  EVP_CIPHER* cipher = EVP_CIPHER_fetch(nullptr, "AES-256-GCM", nullptr);
  EVP_CIPHER_CTX* ctx = EVP_CIPHER_CTX_new();
  std::vector<uint8_t> ct(size + 16);
  int len = 0;
  EVP_EncryptInit_ex2(ctx, cipher, key.data(), iv_bytes, nullptr);
  EVP_EncryptUpdate(ctx, ct.data(), &len,
                    reinterpret_cast<const uint8_t*>(msg.data()),
                    static_cast<int>(size));
  EVP_EncryptFinal_ex(ctx, ct.data() + len, &len);
  EVP_CIPHER_CTX_ctrl(ctx, EVP_CTRL_AEAD_GET_TAG, 16, ct.data() + size);
  std::vector<uint8_t> out(size);
  for (auto _ : state) {
    EVP_DecryptInit_ex2(ctx, cipher, key.data(), iv_bytes, nullptr);
    EVP_CIPHER_CTX_ctrl(ctx, EVP_CTRL_AEAD_SET_TAG, 16, ct.data() + size);
    EVP_DecryptUpdate(ctx, out.data(), &len, ct.data(), static_cast<int>(size));
    if (EVP_DecryptFinal_ex(ctx, out.data() + len, &len) != 1) {
      state.SkipWithError("baseline tag check failed");
    }
    benchmark::DoNotOptimize(out.data());
    benchmark::ClobberMemory();
  }
  EVP_CIPHER_CTX_free(ctx);
  EVP_CIPHER_free(cipher);
  state.SetBytesProcessed(state.iterations() * size);
}

void BM_AeadEncrypt(benchmark::State& state) {
  const size_t size = state.range(0);
  const std::string msg = Message(size);
  Aead aead = *Aead::Create(AeadAlgorithm::kAes256Gcm, Key());
  for (auto _ : state) {
    absl::StatusOr<std::string> ct = aead.Encrypt(msg, "");
    if (!ct.ok()) state.SkipWithError(ct.status().ToString().c_str());
    benchmark::DoNotOptimize(ct->data());
  }
  state.SetBytesProcessed(state.iterations() * size);
}

void BM_AeadDecrypt(benchmark::State& state) {
  const size_t size = state.range(0);
  Aead aead = *Aead::Create(AeadAlgorithm::kAes256Gcm, Key());
  const std::string ct = *aead.Encrypt(Message(size), "");
  for (auto _ : state) {
    absl::StatusOr<std::string> pt = aead.Decrypt(ct, "");
    if (!pt.ok()) state.SkipWithError(pt.status().ToString().c_str());
    benchmark::DoNotOptimize(pt->data());
  }
  state.SetBytesProcessed(state.iterations() * size);
}

// Cobblestone-256 streaming encryption of a whole message: new salt, HKDF key
// schedule and every chunk, written into a buffer the caller reuses (as a
// storage client reuses its send buffer), like the baseline.
void BM_CobblestoneEncrypt(benchmark::State& state) {
  const size_t size = state.range(0);
  const std::string msg = Message(size);
  const SecretBytes key = Key();
  std::vector<uint8_t> out(ChunkedCiphertextLength(size));
  for (auto _ : state) {
    absl::StatusOr<ChunkedEncryptor> enc =
        ChunkedEncryptor::Create(key, kContext);
    if (!enc.ok()) state.SkipWithError(enc.status().ToString().c_str());
    std::memcpy(out.data(), enc->header().data(), kChunkedHeaderSize);
    absl::Span<uint8_t> rest = absl::MakeSpan(out).subspan(kChunkedHeaderSize);
    absl::StatusOr<size_t> n = enc->Update(msg, rest);
    if (n.ok()) n = enc->Finish(rest.subspan(*n));
    if (!n.ok()) state.SkipWithError(n.status().ToString().c_str());
    benchmark::DoNotOptimize(out.data());
    benchmark::ClobberMemory();
  }
  state.SetBytesProcessed(state.iterations() * size);
}

void BM_CobblestoneDecrypt(benchmark::State& state) {
  const size_t size = state.range(0);
  const SecretBytes key = Key();
  const std::string ct = *ChunkedEncrypt(key, kContext, Message(size));
  std::vector<uint8_t> out(size);
  for (auto _ : state) {
    absl::StatusOr<ChunkedDecryptor> dec =
        ChunkedDecryptor::Create(key, kContext);
    if (!dec.ok()) state.SkipWithError(dec.status().ToString().c_str());
    absl::Span<uint8_t> span = absl::MakeSpan(out);
    absl::StatusOr<size_t> n = dec->Update(ct, span);
    if (n.ok()) n = dec->Finish(span.subspan(*n));
    if (!n.ok()) state.SkipWithError(n.status().ToString().c_str());
    benchmark::DoNotOptimize(out.data());
    benchmark::ClobberMemory();
  }
  state.SetBytesProcessed(state.iterations() * size);
}

// One-shot helpers, which allocate their result each call.
void BM_CobblestoneEncryptOneShot(benchmark::State& state) {
  const size_t size = state.range(0);
  const std::string msg = Message(size);
  const SecretBytes key = Key();
  for (auto _ : state) {
    absl::StatusOr<std::string> ct = ChunkedEncrypt(key, kContext, msg);
    if (!ct.ok()) state.SkipWithError(ct.status().ToString().c_str());
    benchmark::DoNotOptimize(ct->data());
  }
  state.SetBytesProcessed(state.iterations() * size);
}

void Sizes(benchmark::internal::Benchmark* b) {
  for (int64_t size : kSizes) b->Arg(size);
}

BENCHMARK(BM_EvpAes256GcmOneShot)->Apply(Sizes);
BENCHMARK(BM_EvpAes256GcmOneShotDecrypt)->Apply(Sizes);
BENCHMARK(BM_AeadEncrypt)->Apply(Sizes);
BENCHMARK(BM_AeadDecrypt)->Apply(Sizes);
BENCHMARK(BM_CobblestoneEncrypt)->Apply(Sizes);
BENCHMARK(BM_CobblestoneDecrypt)->Apply(Sizes);
BENCHMARK(BM_CobblestoneEncryptOneShot)->Apply(Sizes);

std::string SizeName(int64_t size) {
  if (size >= (1 << 20)) return absl::StrCat(size >> 20, " MiB");
  return absl::StrCat(size >> 10, " KiB");
}

std::vector<bench::Comparison> Comparisons() {
  std::vector<bench::Comparison> out;
  for (int64_t size : kSizes) {
    const std::string base = absl::StrCat("BM_EvpAes256GcmOneShot/", size);
    const std::string base_decrypt =
        absl::StrCat("BM_EvpAes256GcmOneShotDecrypt/", size);
    const double target = size == (1 << 20) ? 0.90 : 0;
    out.push_back({absl::StrCat("Cobblestone encrypt ", SizeName(size)),
                   absl::StrCat("BM_CobblestoneEncrypt/", size), base, target});
    out.push_back({absl::StrCat("Cobblestone decrypt ", SizeName(size)),
                   absl::StrCat("BM_CobblestoneDecrypt/", size), base_decrypt,
                   target});
    out.push_back({absl::StrCat("Aead encrypt ", SizeName(size)),
                   absl::StrCat("BM_AeadEncrypt/", size), base, 0});
    out.push_back({absl::StrCat("Aead decrypt ", SizeName(size)),
                   absl::StrCat("BM_AeadDecrypt/", size), base_decrypt, 0});
  }
  return out;
}

}  // namespace
}  // namespace residency::crypto

int main(int argc, char** argv) {
  return residency::bench::RunWithSummary(argc, argv,
                                          residency::crypto::Comparisons());
}
