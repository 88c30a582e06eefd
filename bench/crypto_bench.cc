// Crypto throughput: our Aead and Cobblestone-256 chunked encryption beside
// one-shot OpenSSL EVP AES-256-GCM, the baseline, at the same sizes in the
// same run.
//
// Each operation is a small class with Run(); the same class serves a
// standalone benchmark and a paired one. A paired benchmark runs the baseline
// and the subject alternately in one loop and reports their time ratio: on a
// shared machine whose speed drifts, that is far steadier than dividing two
// figures measured seconds apart.
#include <openssl/evp.h>

#include <chrono>
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

std::string Message(size_t size) { return *RandomBytes(size); }
const uint8_t* Bytes(const std::string& s) {
  return reinterpret_cast<const uint8_t*>(s.data());
}

// The encryption baseline: one AES-256-GCM encryption of the whole message
// with raw EVP calls (key schedule included, as a one-shot caller pays it),
// into a buffer allocated once.
class EvpEncrypt {
 public:
  explicit EvpEncrypt(size_t size)
      : msg_(Message(size)),
        key_(*RandomSecret(32)),
        iv_(*RandomBytes(12)),
        out_(size + 16),
        cipher_(EVP_CIPHER_fetch(nullptr, "AES-256-GCM", nullptr)),
        ctx_(EVP_CIPHER_CTX_new()) {}
  ~EvpEncrypt() {
    EVP_CIPHER_CTX_free(ctx_);
    EVP_CIPHER_free(cipher_);
  }
  void Run(benchmark::State& state) {
    int len = 0;
    if (EVP_EncryptInit_ex2(ctx_, cipher_, key_.data(), Bytes(iv_), nullptr) !=
            1 ||
        EVP_EncryptUpdate(ctx_, out_.data(), &len, Bytes(msg_),
                          static_cast<int>(msg_.size())) != 1 ||
        EVP_EncryptFinal_ex(ctx_, out_.data() + len, &len) != 1 ||
        EVP_CIPHER_CTX_ctrl(ctx_, EVP_CTRL_AEAD_GET_TAG, 16,
                            out_.data() + msg_.size()) != 1) {
      state.SkipWithError("EVP encryption failed");
    }
    benchmark::DoNotOptimize(out_.data());
    benchmark::ClobberMemory();
  }

 private:
  std::string msg_;
  SecretBytes key_;
  std::string iv_;
  std::vector<uint8_t> out_;
  EVP_CIPHER* cipher_;
  EVP_CIPHER_CTX* ctx_;
};

// The decryption baseline: one-shot AES-256-GCM decryption and tag check.
class EvpDecrypt {
 public:
  explicit EvpDecrypt(size_t size)
      : key_(*RandomSecret(32)),
        iv_(*RandomBytes(12)),
        ct_(size + 16),
        out_(size),
        cipher_(EVP_CIPHER_fetch(nullptr, "AES-256-GCM", nullptr)),
        ctx_(EVP_CIPHER_CTX_new()) {
    const std::string msg = Message(size);
    int len = 0;
    EVP_EncryptInit_ex2(ctx_, cipher_, key_.data(), Bytes(iv_), nullptr);
    EVP_EncryptUpdate(ctx_, ct_.data(), &len, Bytes(msg),
                      static_cast<int>(size));
    EVP_EncryptFinal_ex(ctx_, ct_.data() + len, &len);
    EVP_CIPHER_CTX_ctrl(ctx_, EVP_CTRL_AEAD_GET_TAG, 16, ct_.data() + size);
  }
  ~EvpDecrypt() {
    EVP_CIPHER_CTX_free(ctx_);
    EVP_CIPHER_free(cipher_);
  }
  void Run(benchmark::State& state) {
    const size_t size = out_.size();
    int len = 0;
    if (EVP_DecryptInit_ex2(ctx_, cipher_, key_.data(), Bytes(iv_), nullptr) !=
            1 ||
        EVP_CIPHER_CTX_ctrl(ctx_, EVP_CTRL_AEAD_SET_TAG, 16,
                            ct_.data() + size) != 1 ||
        EVP_DecryptUpdate(ctx_, out_.data(), &len, ct_.data(),
                          static_cast<int>(size)) != 1 ||
        EVP_DecryptFinal_ex(ctx_, out_.data() + len, &len) != 1) {
      state.SkipWithError("EVP decryption failed");
    }
    benchmark::DoNotOptimize(out_.data());
    benchmark::ClobberMemory();
  }

 private:
  SecretBytes key_;
  std::string iv_;
  std::vector<uint8_t> ct_;
  std::vector<uint8_t> out_;
  EVP_CIPHER* cipher_;
  EVP_CIPHER_CTX* ctx_;
};

// Aead: a fresh nonce and a newly allocated result per message.
class AeadEncrypt {
 public:
  explicit AeadEncrypt(size_t size)
      : msg_(Message(size)),
        aead_(*Aead::Create(AeadAlgorithm::kAes256Gcm, *RandomSecret(32))) {}
  void Run(benchmark::State& state) {
    absl::StatusOr<std::string> ct = aead_.Encrypt(msg_, "");
    if (!ct.ok()) return state.SkipWithError(ct.status().ToString().c_str());
    benchmark::DoNotOptimize(ct->data());
  }

 private:
  std::string msg_;
  Aead aead_;
};

class AeadDecrypt {
 public:
  explicit AeadDecrypt(size_t size)
      : aead_(*Aead::Create(AeadAlgorithm::kAes256Gcm, *RandomSecret(32))),
        ct_(*aead_.Encrypt(Message(size), "")) {}
  void Run(benchmark::State& state) {
    absl::StatusOr<std::string> pt = aead_.Decrypt(ct_, "");
    if (!pt.ok()) return state.SkipWithError(pt.status().ToString().c_str());
    benchmark::DoNotOptimize(pt->data());
  }

 private:
  Aead aead_;
  std::string ct_;
};

// Cobblestone-256 streaming encryption of a whole message: new salt, HKDF key
// schedule and every chunk, written into a buffer the caller reuses (as a
// storage client reuses its send buffer), like the baseline.
class CobblestoneEncrypt {
 public:
  explicit CobblestoneEncrypt(size_t size)
      : msg_(Message(size)),
        key_(*RandomSecret(32)),
        out_(ChunkedCiphertextLength(size)) {}
  void Run(benchmark::State& state) {
    absl::StatusOr<ChunkedEncryptor> enc =
        ChunkedEncryptor::Create(key_, kContext);
    if (!enc.ok()) return state.SkipWithError(enc.status().ToString().c_str());
    std::memcpy(out_.data(), enc->header().data(), kChunkedHeaderSize);
    absl::Span<uint8_t> rest = absl::MakeSpan(out_).subspan(kChunkedHeaderSize);
    absl::StatusOr<size_t> n = enc->Update(msg_, rest);
    if (n.ok()) n = enc->Finish(rest.subspan(*n));
    if (!n.ok()) return state.SkipWithError(n.status().ToString().c_str());
    benchmark::DoNotOptimize(out_.data());
    benchmark::ClobberMemory();
  }

 private:
  std::string msg_;
  SecretBytes key_;
  std::vector<uint8_t> out_;
};

class CobblestoneDecrypt {
 public:
  explicit CobblestoneDecrypt(size_t size)
      : key_(*RandomSecret(32)),
        ct_(*ChunkedEncrypt(key_, kContext, Message(size))),
        out_(size) {}
  void Run(benchmark::State& state) {
    absl::StatusOr<ChunkedDecryptor> dec =
        ChunkedDecryptor::Create(key_, kContext);
    if (!dec.ok()) return state.SkipWithError(dec.status().ToString().c_str());
    absl::Span<uint8_t> out = absl::MakeSpan(out_);
    absl::StatusOr<size_t> n = dec->Update(ct_, out);
    if (n.ok()) n = dec->Finish(out.subspan(*n));
    if (!n.ok()) return state.SkipWithError(n.status().ToString().c_str());
    benchmark::DoNotOptimize(out_.data());
    benchmark::ClobberMemory();
  }

 private:
  SecretBytes key_;
  std::string ct_;
  std::vector<uint8_t> out_;
};

// The one-shot helper, which allocates its result on every call.
class CobblestoneEncryptOneShot {
 public:
  explicit CobblestoneEncryptOneShot(size_t size)
      : msg_(Message(size)), key_(*RandomSecret(32)) {}
  void Run(benchmark::State& state) {
    absl::StatusOr<std::string> ct = ChunkedEncrypt(key_, kContext, msg_);
    if (!ct.ok()) return state.SkipWithError(ct.status().ToString().c_str());
    benchmark::DoNotOptimize(ct->data());
  }

 private:
  std::string msg_;
  SecretBytes key_;
};

template <typename Op>
void BM_Op(benchmark::State& state) {
  Op op(state.range(0));
  for (auto _ : state) op.Run(state);
  state.SetBytesProcessed(state.iterations() * state.range(0));
}

// Times the subject (reported as the benchmark's own time and rate) and its
// baseline alternately; the "ratio" counter is subject speed over baseline
// speed.
template <typename Baseline, typename Subject>
void BM_Paired(benchmark::State& state) {
  using Clock = std::chrono::steady_clock;
  Baseline baseline(state.range(0));
  Subject subject(state.range(0));
  double baseline_seconds = 0, subject_seconds = 0;
  bool baseline_first = true;
  for (auto _ : state) {
    // Alternate which runs first, so that neither always finds the caches
    // as the other left them.
    double b = 0, s = 0;
    const Clock::time_point t0 = Clock::now();
    if (baseline_first) {
      baseline.Run(state);
    } else {
      subject.Run(state);
    }
    const Clock::time_point t1 = Clock::now();
    if (baseline_first) {
      subject.Run(state);
    } else {
      baseline.Run(state);
    }
    const Clock::time_point t2 = Clock::now();
    const double first = std::chrono::duration<double>(t1 - t0).count();
    const double second = std::chrono::duration<double>(t2 - t1).count();
    b = baseline_first ? first : second;
    s = baseline_first ? second : first;
    baseline_first = !baseline_first;
    baseline_seconds += b;
    subject_seconds += s;
    state.SetIterationTime(s);
  }
  state.SetBytesProcessed(state.iterations() * state.range(0));
  if (subject_seconds > 0) {
    state.counters["ratio"] = baseline_seconds / subject_seconds;
  }
}

void Sizes(benchmark::internal::Benchmark* b) {
  for (int64_t size : kSizes) b->Arg(size);
}

BENCHMARK_TEMPLATE(BM_Op, EvpEncrypt)
    ->Name("BM_EvpAes256GcmOneShot")
    ->Apply(Sizes);
BENCHMARK_TEMPLATE(BM_Op, EvpDecrypt)
    ->Name("BM_EvpAes256GcmOneShotDecrypt")
    ->Apply(Sizes);
BENCHMARK_TEMPLATE(BM_Op, AeadEncrypt)->Name("BM_AeadEncrypt")->Apply(Sizes);
BENCHMARK_TEMPLATE(BM_Op, AeadDecrypt)->Name("BM_AeadDecrypt")->Apply(Sizes);
BENCHMARK_TEMPLATE(BM_Op, CobblestoneEncrypt)
    ->Name("BM_CobblestoneEncrypt")
    ->Apply(Sizes);
BENCHMARK_TEMPLATE(BM_Op, CobblestoneDecrypt)
    ->Name("BM_CobblestoneDecrypt")
    ->Apply(Sizes);
BENCHMARK_TEMPLATE(BM_Op, CobblestoneEncryptOneShot)
    ->Name("BM_CobblestoneEncryptOneShot")
    ->Apply(Sizes);
// The targets' figures: at least half a second per repetition even in a
// quick pass (this overrides --benchmark_min_time), so that a few hundred
// pairs, not a few dozen, decide each ratio.
BENCHMARK_TEMPLATE(BM_Paired, EvpEncrypt, CobblestoneEncrypt)
    ->Name("BM_PairedCobblestoneEncrypt")
    ->Arg(1 << 20)
    ->MinTime(0.5)
    ->UseManualTime();
BENCHMARK_TEMPLATE(BM_Paired, EvpDecrypt, CobblestoneDecrypt)
    ->Name("BM_PairedCobblestoneDecrypt")
    ->Arg(1 << 20)
    ->MinTime(0.5)
    ->UseManualTime();

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
    const bool target_size = size == (1 << 20);
    const double target = target_size ? 0.90 : 0;
    out.push_back({absl::StrCat("Cobblestone encrypt ", SizeName(size)),
                   absl::StrCat("BM_CobblestoneEncrypt/", size), base, target,
                   target_size
                       ? absl::StrCat("BM_PairedCobblestoneEncrypt/", size,
                                      "/min_time:0.500/manual_time")
                       : ""});
    out.push_back(
        {absl::StrCat("Cobblestone decrypt ", SizeName(size)),
         absl::StrCat("BM_CobblestoneDecrypt/", size), base_decrypt, target,
         target_size ? absl::StrCat("BM_PairedCobblestoneDecrypt/", size,
                                    "/min_time:0.500/manual_time")
                     : ""});
    out.push_back({absl::StrCat("Aead encrypt ", SizeName(size)),
                   absl::StrCat("BM_AeadEncrypt/", size), base, 0, ""});
    out.push_back({absl::StrCat("Aead decrypt ", SizeName(size)),
                   absl::StrCat("BM_AeadDecrypt/", size), base_decrypt, 0, ""});
  }
  return out;
}

}  // namespace
}  // namespace residency::crypto

int main(int argc, char** argv) {
  return residency::bench::RunWithSummary(argc, argv,
                                          residency::crypto::Comparisons());
}
