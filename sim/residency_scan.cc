#include "sim/residency_scan.h"

#include <algorithm>
#include <filesystem>
#include <fstream>
#include <functional>
#include <map>
#include <optional>
#include <set>

#include "absl/strings/match.h"
#include "absl/strings/str_cat.h"
#include "absl/strings/str_format.h"
#include "absl/strings/str_join.h"
#include "crypto/chunked.h"
#include "crypto/object_context.h"
#include "key_service/wrapped_key.h"
#include "rpc/printable.h"
#include "rpc/status.h"

namespace residency::sim {
namespace {

namespace fs = std::filesystem;
using ::residency::crypto::SecretBytes;
using ::residency::v1::ObjectHeader;
using ::residency::v1::WrappedKey;

// Bytes read from a file at a time. An occurrence may straddle two blocks:
// the last (longest needle - 1) bytes of a block are searched again with
// the next one.
constexpr size_t kBlockBytes = 4 << 20;

using Searcher = std::boyer_moore_horspool_searcher<const char*>;

// Scans one file; false with `error` set when it cannot be read, true when
// it was read or vanished before it could be opened (`*vanished`).
bool ScanFile(const fs::path& path, const std::string& relative,
              const std::vector<Needle>& needles,
              const std::vector<Searcher>& searchers, size_t overlap,
              ScanResult& result, bool* vanished, std::string* error) {
  *vanished = false;
  std::ifstream in(path, std::ios::binary);
  if (!in) {
    std::error_code ec;
    if (!fs::exists(path, ec) && !ec) {
      *vanished = true;
      return true;
    }
    *error = absl::StrCat("cannot read ", path.string());
    return false;
  }
  result.files.push_back(relative);
  // buffer holds file bytes [base, base + buffer.size()); `seen` of them
  // (a prefix) were searched with the previous block.
  std::string buffer;
  uint64_t base = 0;
  size_t seen = 0;
  std::string block(kBlockBytes, '\0');
  for (;;) {
    in.read(block.data(), static_cast<std::streamsize>(block.size()));
    const size_t got = static_cast<size_t>(in.gcount());
    if (got == 0) break;
    result.bytes += got;
    buffer.append(block.data(), got);
    const char* begin = buffer.data();
    const char* end = begin + buffer.size();
    for (size_t i = 0; i < needles.size(); ++i) {
      const size_t size = needles[i].bytes.size();
      for (const char* at = begin;;) {
        at = std::search(at, end, searchers[i]);
        if (at == end) break;
        const size_t offset = static_cast<size_t>(at - begin);
        // Found with the previous block already when it ends within it.
        if (offset + size > seen) {
          result.hits.push_back({needles[i].name, relative, base + offset});
        }
        ++at;
      }
    }
    if (buffer.size() > overlap) {
      const size_t drop = buffer.size() - overlap;
      base += drop;
      buffer.erase(0, drop);
    }
    seen = buffer.size();
  }
  if (in.bad()) {
    *error = absl::StrCat("error reading ", path.string());
    return false;
  }
  // Hits of one block come needle by needle; order them by offset.
  std::stable_sort(
      std::find_if(result.hits.begin(), result.hits.end(),
                   [&](const Hit& h) { return h.file == relative; }),
      result.hits.end(),
      [](const Hit& a, const Hit& b) { return a.offset < b.offset; });
  return true;
}

}  // namespace

std::vector<Hit> ScanResult::HitsOf(absl::string_view needle) const {
  std::vector<Hit> out;
  for (const Hit& h : hits) {
    if (h.needle == needle) out.push_back(h);
  }
  return out;
}

uint64_t ScanResult::CountWithPrefix(absl::string_view prefix) const {
  return std::count_if(hits.begin(), hits.end(), [&](const Hit& h) {
    return absl::StartsWith(h.needle, prefix);
  });
}

std::vector<std::string> ScanResult::Describe(absl::string_view prefix) const {
  std::vector<std::string> out;
  for (const Hit& h : hits) {
    if (absl::StartsWith(h.needle, prefix)) {
      out.push_back(absl::StrCat(h.needle, " in ", h.file, "@", h.offset));
    }
  }
  return out;
}

std::vector<std::string> ScanResult::FilesWith(absl::string_view prefix) const {
  std::vector<std::string> out;
  std::set<std::string> seen;
  for (const Hit& h : hits) {
    if (absl::StartsWith(h.needle, prefix) && seen.insert(h.file).second) {
      out.push_back(h.file);
    }
  }
  return out;
}

std::string ScanResult::Summary() const {
  std::map<std::string, int> kinds;
  for (const std::string& f : files) ++kinds[FileKind(f)];
  return absl::StrCat(
      files.size(), " files, ", absl::StrFormat("%.1f", bytes / 1e6),
      " MB: ", absl::StrJoin(kinds, ", ", absl::PairFormatter(" ")));
}

bool ScanResult::HasFileMatching(
    const std::function<bool(const std::string&)>& pred) const {
  return std::any_of(files.begin(), files.end(), pred);
}

std::string FileKind(const std::string& relative) {
  const fs::path path(relative);
  if (!path.empty() && *path.begin() == "plaintext") return "plaintext";
  const std::string name = path.filename().string();
  if (absl::EndsWith(name, ".log")) return "wal";
  if (absl::EndsWith(name, ".sst")) return "sst";
  if (absl::EndsWith(name, ".blob")) return "blob";
  if (absl::StartsWith(name, "MANIFEST-")) return "manifest";
  if (absl::StartsWith(name, "OPTIONS-")) return "options";
  if (name == "LOG" || absl::StartsWith(name, "LOG.old")) return "info-log";
  return "other";
}

absl::StatusOr<ScanResult> ScanTree(const std::string& root,
                                    const std::vector<Needle>& needles) {
  std::vector<Searcher> searchers;
  size_t longest = 0;
  for (const Needle& needle : needles) {
    if (needle.bytes.empty()) {
      return absl::InvalidArgumentError(
          absl::StrCat("needle '", needle.name, "' has no bytes"));
    }
    const char* bytes = needle.bytes.view().data();
    searchers.emplace_back(bytes, bytes + needle.bytes.size());
    longest = std::max(longest, needle.bytes.size());
  }
  std::error_code ec;
  if (!fs::is_directory(root, ec)) {
    return absl::NotFoundError(absl::StrCat(root, " is not a directory"));
  }
  // The files first, in name order, so that findings come out the same
  // way every time.
  std::vector<fs::path> paths;
  fs::recursive_directory_iterator it(root, ec), end;
  for (; !ec && it != end; it.increment(ec)) {
    std::error_code type_ec;
    if (fs::is_regular_file(fs::symlink_status(it->path(), type_ec))) {
      paths.push_back(it->path());
    }
  }
  // A directory that vanished under the walk ends it early; anything else
  // is a failure.
  if (ec && ec != std::errc::no_such_file_or_directory) {
    return absl::InternalError(
        absl::StrCat("walking ", root, ": ", ec.message()));
  }
  std::sort(paths.begin(), paths.end());
  ScanResult result;
  for (const fs::path& path : paths) {
    bool vanished = false;
    std::string error;
    if (!ScanFile(path, fs::relative(path, root).string(), needles, searchers,
                  longest > 0 ? longest - 1 : 0, result, &vanished, &error)) {
      return absl::InternalError(error);
    }
  }
  return result;
}

absl::StatusOr<RecoveredKeys> RecoverDataKey(
    const ObjectHeader& header, const UnwrapFn& unwrap,
    const client::DeviceKey* device_key) {
  const std::string name = client::DescribeObject(header.object());
  absl::StatusOr<std::string> context = crypto::EncodeObjectContext(
      header.object().owner(), header.object().object_id(),
      header.object().version());
  if (!context.ok()) return context.status();
  RecoveredKeys out;
  if (header.custody_mode() == residency::v1::CUSTODY_MODE_CUSTODIAN) {
    if (header.wrapped_keys_size() != 1 ||
        header.wrapped_keys(0).wrapper() != WrappedKey::KEY_SERVICE ||
        header.wrapped_keys(0).share_index() != 0) {
      return absl::DataLossError(absl::StrCat(
          name,
          ": a custodian header needs exactly one key-service wrap of "
          "the whole data key"));
    }
    absl::StatusOr<SecretBytes> dek = unwrap(header, header.wrapped_keys(0));
    if (!dek.ok()) return dek.status();
    out.dek = *std::move(dek);
    return out;
  }
  client::CustodyMode mode;
  switch (header.custody_mode()) {
    case residency::v1::CUSTODY_MODE_E2E:
      mode = client::CustodyMode::kE2e;
      break;
    case residency::v1::CUSTODY_MODE_SPLIT:
      mode = client::CustodyMode::kSplit;
      break;
    default:
      return absl::DataLossError(
          absl::StrCat(name, ": unknown custody mode ", header.custody_mode()));
  }
  std::optional<SecretBytes> shares[2];
  for (const WrappedKey& wrapped : header.wrapped_keys()) {
    const uint32_t index = wrapped.share_index();
    if ((index != 1 && index != 2) || shares[index - 1].has_value()) {
      return absl::DataLossError(absl::StrCat(
          name,
          ": a two-share header needs shares 1 and 2, once each; got "
          "share ",
          index));
    }
    absl::StatusOr<SecretBytes> share = absl::InternalError("unset");
    if (wrapped.wrapper() == WrappedKey::DEVICE) {
      if (device_key == nullptr || device_key->key_id != wrapped.key_id()) {
        return absl::FailedPreconditionError(absl::StrCat(
            name, ": share ", index, " is wrapped by device key '",
            rpc::Printable(wrapped.key_id()), "', which is not at hand"));
      }
      share = key_service::UnwrapDataKey(device_key->key, wrapped.key_id(),
                                         wrapped.key_version(), *context,
                                         wrapped.wrapped());
      if (!share.ok()) {
        return absl::DataLossError(
            absl::StrCat(name, ": the device-wrapped share does not open: ",
                         share.status().message()));
      }
    } else {
      share = unwrap(header, wrapped);
      if (!share.ok()) return share.status();
    }
    shares[index - 1].emplace(*std::move(share));
  }
  if (!shares[0] || !shares[1]) {
    return absl::DataLossError(
        absl::StrCat(name, ": a two-share header lacks a share"));
  }
  absl::StatusOr<SecretBytes> dek =
      client::DeriveDataKey(mode, *shares[0], *shares[1], *context);
  if (!dek.ok()) return dek.status();
  out.dek = *std::move(dek);
  out.shares.emplace_back(1, *std::move(shares[0]));
  out.shares.emplace_back(2, *std::move(shares[1]));
  return out;
}

absl::StatusOr<SecretBytes> UnwrapAsOwner(residency::v1::KeyService::Stub& stub,
                                          const ObjectHeader& header,
                                          const WrappedKey& wrapped,
                                          absl::string_view request_id,
                                          absl::Duration deadline) {
  residency::v1::UnwrapRequest request;
  request.mutable_metadata()->set_request_id(std::string(request_id));
  request.mutable_metadata()->mutable_justification()->set_reason(
      residency::v1::Justification::CUSTOMER_INITIATED_ACCESS);
  *request.mutable_wrapped_key() = wrapped;
  *request.mutable_context() = header.object();
  residency::v1::UnwrapResponse response;
  grpc::ClientContext context;
  context.set_deadline(absl::ToChronoTime(absl::Now() + deadline));
  absl::Status status =
      rpc::FromGrpcStatus(stub.Unwrap(&context, request, &response));
  if (!status.ok()) return status;
  SecretBytes key = SecretBytes::CopyFrom(response.plaintext_key());
  crypto::WipeString(response.mutable_plaintext_key());
  return key;
}

absl::StatusOr<std::string> OpenObject(const SecretBytes& dek,
                                       const ObjectHeader& header,
                                       absl::string_view ciphertext) {
  absl::StatusOr<std::string> context = crypto::EncodeObjectContext(
      header.object().owner(), header.object().object_id(),
      header.object().version());
  if (!context.ok()) return context.status();
  absl::StatusOr<std::string> plaintext =
      crypto::ChunkedDecrypt(dek, *context, ciphertext);
  if (!plaintext.ok()) {
    return absl::DataLossError(
        absl::StrCat(client::DescribeObject(header.object()),
                     ": the data key does not open the stored "
                     "ciphertext: ",
                     plaintext.status().message()));
  }
  return plaintext;
}

}  // namespace residency::sim
