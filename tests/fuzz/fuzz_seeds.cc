// Writes the seed corpora of the fuzz targets: valid inputs made with the
// throwaway keys of fuzz_util.h (never a real secret), and copies of the
// built-in scenarios and policies.
//
// Usage: fuzz_seeds SOURCE_ROOT OUT_DIR
//   e.g. build/default/tests/fuzz/fuzz_seeds . tests/fuzz/corpus
//
// Each target's directory under OUT_DIR is replaced. Ciphertexts and wraps
// draw fresh salts and nonces, so two runs write different bytes.

#include <cstdint>
#include <cstdio>
#include <cstring>
#include <filesystem>
#include <fstream>
#include <iterator>
#include <string>
#include <vector>

#include "absl/status/status.h"
#include "absl/strings/str_cat.h"
#include "crypto/chunked.h"
#include "crypto/object_context.h"
#include "google/protobuf/io/coded_stream.h"
#include "google/protobuf/io/zero_copy_stream_impl_lite.h"
#include "key_service/audit_format.h"
#include "key_service/audit_signer.h"
#include "key_service/wrapped_key.h"
#include "residency/v1/common.pb.h"
#include "residency/v1/key_service.pb.h"
#include "tests/fuzz/fuzz_util.h"

namespace residency::fuzz {
namespace {

namespace fs = std::filesystem;

[[noreturn]] void Die(const std::string& what) {
  std::fprintf(stderr, "fuzz_seeds: %s\n", what.c_str());
  std::exit(1);
}

template <typename T>
T Must(absl::StatusOr<T> v) {
  if (!v.ok()) Die(std::string(v.status().ToString()));
  return *std::move(v);
}

void Write(const fs::path& dir, const std::string& name,
           const std::string& bytes) {
  std::ofstream out(dir / name, std::ios::binary | std::ios::trunc);
  out.write(bytes.data(), static_cast<std::streamsize>(bytes.size()));
  if (!out) Die(absl::StrCat("cannot write ", (dir / name).string()));
}

fs::path Fresh(const fs::path& out, const std::string& target) {
  const fs::path dir = out / target;
  fs::remove_all(dir);
  fs::create_directories(dir);
  return dir;
}

std::string BigEndian(uint64_t v, int bytes) {
  std::string s;
  for (int i = bytes - 1; i >= 0; --i) {
    s.push_back(static_cast<char>((v >> (8 * i)) & 0xff));
  }
  return s;
}

std::string Plaintext(size_t n) {
  std::string s(n, '\0');
  for (size_t i = 0; i < n; ++i) s[i] = static_cast<char>('a' + i % 26);
  return s;
}

std::string Ciphertext(crypto::ChunkedAead aead, size_t plaintext_size) {
  return Must(crypto::ChunkedEncrypt(
      ThrowawayKey(crypto::ChunkedKeySize(aead), kChunkedKeyFill),
      kChunkedContext, Plaintext(plaintext_size), aead));
}

void ChunkedSeeds(const fs::path& out) {
  const fs::path stream = Fresh(out, "chunked_stream");
  const fs::path range = Fresh(out, "chunked_range");
  // Sizes around the chunk boundary, kept to two chunks at most.
  for (size_t n : {0, 1, 100, 16383, 16384, 16385}) {
    for (int control : {0, 1, 2}) {
      const crypto::ChunkedAead aead = (control & 1)
                                           ? crypto::ChunkedAead::kAes128Gcm
                                           : crypto::ChunkedAead::kAes256Gcm;
      if (n >= 16383 && control != 0) continue;
      const std::string ct = Ciphertext(aead, n);
      Write(stream, absl::StrCat("pt", n, "_c", control),
            std::string(1, static_cast<char>(control)) + "\x03" + ct);
      // Ranges: the head, the middle, the tail and past the end.
      const uint64_t ranges[][2] = {
          {0, 10}, {n / 2, 1}, {n > 5 ? n - 5 : 0, 100}, {n + 1, 0}};
      int i = 0;
      for (const auto& r : ranges) {
        // Of the two-chunk messages, one is enough, read at both ends.
        if (n >= 16383 && (n != 16385 || i == 1 || i == 3)) {
          ++i;
          continue;
        }
        const int rc = control & 1;
        Write(range, absl::StrCat("pt", n, "_c", rc, "_r", i++),
              std::string(1, static_cast<char>(rc)) + BigEndian(r[0], 8) +
                  BigEndian(r[1], 8) + ct);
      }
    }
  }
}

std::string Wrap(absl::string_view key_id, uint32_t version,
                 absl::string_view context) {
  return Must(key_service::WrapDataKey(
      ThrowawayKey(key_service::kKekSize, kKekFill), key_id, version, context,
      ThrowawayKey(key_service::kDataKeySize, 0x44)));
}

void WrappedKeySeeds(const fs::path& out) {
  const fs::path dir = Fresh(out, "wrapped_key");
  const std::string context =
      Must(crypto::EncodeObjectContext("alice", "photos/a.jpg", 3));
  int i = 0;
  for (const char* key_id : {"alice-key", "k", "residency://user/bob key"}) {
    for (uint32_t version : {1u, 7u}) {
      Write(dir, absl::StrCat("wrap", i++),
            BigEndian(version, 4) + BigEndian(strlen(key_id), 1) + key_id +
                BigEndian(context.size(), 2) + context +
                Wrap(key_id, version, context));
    }
  }
}

v1::WrappedKey Key(v1::WrappedKey::Wrapper wrapper, const char* key_id,
                   uint32_t share, const char* jurisdiction,
                   const v1::ObjectRef& object) {
  v1::WrappedKey k;
  k.set_wrapper(wrapper);
  k.set_key_id(key_id);
  k.set_key_version(1);
  k.set_share_index(share);
  if (wrapper == v1::WrappedKey::KEY_SERVICE) {
    k.set_key_service(absl::StrCat("residency://service/", key_id));
    k.set_jurisdiction(jurisdiction);
  }
  k.set_wrapped(
      Wrap(key_id, 1,
           Must(crypto::EncodeObjectContext(object.owner(), object.object_id(),
                                            object.version()))));
  return k;
}

void ObjectHeaderSeeds(const fs::path& out) {
  const fs::path dir = Fresh(out, "object_header");
  int i = 0;
  for (v1::CustodyMode mode : {v1::CUSTODY_MODE_CUSTODIAN, v1::CUSTODY_MODE_E2E,
                               v1::CUSTODY_MODE_SPLIT}) {
    for (uint64_t plaintext : {0, 16384, 1000000}) {
      v1::ObjectHeader h;
      h.mutable_object()->set_owner("alice");
      h.mutable_object()->set_object_id("photos/a.jpg");
      h.mutable_object()->set_version(1 + i);
      h.set_custody_mode(mode);
      h.set_payload_algorithm(i % 2 ? v1::PAYLOAD_ALGORITHM_CHUNKED_AES_128_GCM
                                    : v1::PAYLOAD_ALGORITHM_COBBLESTONE_256);
      const v1::ObjectRef& o = h.object();
      switch (mode) {
        case v1::CUSTODY_MODE_CUSTODIAN:
          *h.add_wrapped_keys() =
              Key(v1::WrappedKey::KEY_SERVICE, "alice-key", 0, "US", o);
          break;
        case v1::CUSTODY_MODE_E2E:
          *h.add_wrapped_keys() =
              Key(v1::WrappedKey::KEY_SERVICE, "alice-key", 1, "US", o);
          *h.add_wrapped_keys() =
              Key(v1::WrappedKey::DEVICE, "alice-device", 2, "", o);
          break;
        default:
          *h.add_wrapped_keys() =
              Key(v1::WrappedKey::KEY_SERVICE, "alice-us", 1, "US", o);
          *h.add_wrapped_keys() =
              Key(v1::WrappedKey::KEY_SERVICE, "alice-de", 2, "DE", o);
          break;
      }
      h.set_plaintext_length(plaintext);
      h.set_ciphertext_length(crypto::ChunkedCiphertextLength(plaintext));
      if (i % 2 == 0) h.mutable_residency()->add_allowed_jurisdictions("CN");
      h.mutable_created_at()->set_seconds(1400000000 + i);
      Write(dir, absl::StrCat("header", i++), h.SerializeAsString());
    }
  }
}

// Frames `items` as the audit_log target reads them.
std::string Framed(uint8_t control,
                   const std::vector<v1::ReadAuditLogResponse>& items) {
  std::string out(1, static_cast<char>(control));
  {
    google::protobuf::io::StringOutputStream stream(&out);
    google::protobuf::io::CodedOutputStream coded(&stream);
    for (const auto& item : items) {
      coded.WriteVarint32(static_cast<uint32_t>(item.ByteSizeLong()));
      item.SerializeToCodedStream(&coded);
    }
  }
  return out;
}

void AuditLogSeeds(const fs::path& out) {
  const fs::path dir = Fresh(out, "audit_log");
  const key_service::AuditSigner signer = Must(
      key_service::AuditSigner::FromSeed(ThrowawayKey(32, kAuditSeedFill)));
  // Six entries with a checkpoint after the third and the last.
  std::vector<v1::ReadAuditLogResponse> log;
  std::string prev = key_service::ZeroAuditHash();
  for (uint64_t s = 1; s <= 6; ++s) {
    v1::ReadAuditLogResponse item;
    v1::AuditEntry& e = *item.mutable_entry();
    e.set_sequence(s);
    e.mutable_time()->set_seconds(1400000000 + static_cast<int64_t>(s));
    e.set_principal(s % 2 ? "residency://user/alice"
                          : "residency://authority/cn");
    e.set_operation(s % 2 ? v1::OPERATION_UNWRAP : v1::OPERATION_EXPORT_KEY);
    e.set_request_id(absl::StrCat("req-", s));
    e.mutable_justification()->set_reason(
        s % 2 ? v1::Justification::CUSTOMER_INITIATED_ACCESS
              : v1::Justification::THIRD_PARTY_DATA_REQUEST);
    e.set_key_id("alice-key");
    e.set_key_version(1);
    e.mutable_object()->set_owner("alice");
    e.mutable_object()->set_object_id("a.jpg");
    e.mutable_object()->set_version(s);
    e.set_decision(s % 2 ? v1::AuditEntry::ALLOW : v1::AuditEntry::DENY);
    e.set_rule(s % 2 ? "owners-use-own-keys" : "default-deny");
    e.set_status_code(s % 2 ? 0 : 7);
    e.set_prev_hash(prev);
    e.set_entry_hash(key_service::ComputeAuditEntryHash(e));
    prev = e.entry_hash();
    log.push_back(item);
    if (s == 3 || s == 6) {
      v1::ReadAuditLogResponse c;
      v1::AuditCheckpoint& cp = *c.mutable_checkpoint();
      cp.set_sequence(s);
      cp.set_head_hash(prev);
      cp.mutable_time()->set_seconds(1400000100 + static_cast<int64_t>(s));
      cp.set_public_key_id(signer.public_key_id());
      cp.set_signature(
          Must(signer.Sign(key_service::CheckpointSigningInput(cp))));
      log.push_back(c);
    }
  }
  // The whole log from the start.
  Write(dir, "full", Framed(1, log));
  // With the checkpoint at 3 as the trusted one (control bit 2).
  std::vector<v1::ReadAuditLogResponse> trusted = {log[3]};
  trusted.insert(trusted.end(), log.begin(), log.end());
  Write(dir, "trusted", Framed(4 | 1, trusted));
  // A read from entry 3 (control bits 0-1): entries 3-6.
  Write(dir, "from3", Framed(3, {log.begin() + 2, log.end()}));
  // A bounded read: entries 1-3 and the checkpoint covering them.
  Write(dir, "prefix", Framed(1, {log.begin(), log.begin() + 4}));
}

void CopyTextSeeds(const fs::path& from, const fs::path& out,
                   const std::string& target) {
  const fs::path dir = Fresh(out, target);
  for (const auto& entry : fs::directory_iterator(from)) {
    if (entry.path().extension() != ".textproto") continue;
    fs::copy_file(entry.path(), dir / entry.path().filename());
  }
}

void PolicySeeds(const fs::path& root, const fs::path& out) {
  CopyTextSeeds(root / "key_service" / "policies", out, "policy");
  const fs::path dir = out / "policy";
  Write(dir, "empty.textproto", "jurisdiction: \"CN\"\n");
  Write(dir, "patterns.textproto",
        "jurisdiction: \"CN\"\n"
        "rules {\n"
        "  name: \"deny-authority\"\n"
        "  effect: DENY\n"
        "  principals: \"residency://authority/*\"\n"
        "  key_ids: \"*-key\"\n"
        "}\n"
        "rules {\n"
        "  name: \"any\"\n"
        "  effect: ALLOW\n"
        "  principals: [\"residency://*/a*b*c\", \"*\"]\n"
        "  operations: OPERATION_UNWRAP\n"
        "  justifications: [THIRD_PARTY_DATA_REQUEST, REASON_UNSPECIFIED]\n"
        "  legal_process_jurisdictions: \"CN\"\n"
        "}\n");
}

}  // namespace
}  // namespace residency::fuzz

int main(int argc, char** argv) {
  using namespace residency::fuzz;
  if (argc != 3) {
    std::fprintf(stderr, "usage: %s SOURCE_ROOT OUT_DIR\n", argv[0]);
    return 2;
  }
  const fs::path root = argv[1];
  const fs::path out = argv[2];
  ChunkedSeeds(out);
  WrappedKeySeeds(out);
  ObjectHeaderSeeds(out);
  AuditLogSeeds(out);
  CopyTextSeeds(root / "sim" / "scenarios", out, "scenario");
  PolicySeeds(root, out);
  return 0;
}
