#include "sim/data_dir.h"

#include <filesystem>
#include <fstream>
#include <iterator>
#include <map>

#include "absl/strings/str_cat.h"
#include "absl/strings/str_join.h"

namespace residency::sim {

namespace fs = std::filesystem;

std::vector<std::string> RecordReadablePlaintext(
    World& world, Ledger& ledger, const std::string& actor,
    const std::string& root, const std::vector<std::string>& files) {
  std::multimap<std::string, const Truth*> by_digest;
  for (const User& user : world.users()) {
    for (const Truth& t : user.objects) by_digest.emplace(t.sha256, &t);
  }
  std::vector<std::string> readable;
  for (const std::string& file : files) {
    std::ifstream in(fs::path(root) / file, std::ios::binary);
    if (!in) continue;
    const std::string data((std::istreambuf_iterator<char>(in)),
                           std::istreambuf_iterator<char>());
    auto [first, last] = by_digest.equal_range(Sha256(data));
    // Ledger::Exposed counts each object version once per actor, however
    // many copies of it there are.
    for (auto it = first; it != last; ++it) {
      const Truth& t = *it->second;
      ledger.Exposed(actor, t.owner, t.object_id, t.version, data);
    }
    if (first != last) readable.push_back(file);
  }
  return readable;
}

absl::StatusOr<CopyStats> CopyTree(const std::string& from,
                                   const std::string& to) {
  std::error_code ec;
  fs::remove_all(to, ec);
  if (ec) {
    return absl::InternalError(
        absl::StrCat("cannot clear ", to, ": ", ec.message()));
  }
  fs::create_directories(to, ec);
  if (ec) {
    return absl::InternalError(
        absl::StrCat("cannot create ", to, ": ", ec.message()));
  }
  CopyStats stats;
  fs::recursive_directory_iterator it(from, ec), end;
  for (; !ec && it != end; it.increment(ec)) {
    const fs::path path = it->path();
    std::error_code type_ec;
    const fs::file_status status = fs::symlink_status(path, type_ec);
    const fs::path target = fs::path(to) / fs::relative(path, from);
    if (fs::is_directory(status)) {
      fs::create_directories(target, type_ec);
      continue;
    }
    if (!fs::is_regular_file(status)) continue;
    fs::create_directories(target.parent_path(), type_ec);
    std::error_code copy_ec;
    fs::copy_file(path, target, fs::copy_options::overwrite_existing, copy_ec);
    if (copy_ec) {
      std::error_code exists_ec;
      if (!fs::exists(path, exists_ec) && !exists_ec) continue;  // vanished
      return absl::InternalError(
          absl::StrCat("cannot copy ", path.string(), ": ", copy_ec.message()));
    }
    ++stats.files;
    stats.bytes += fs::file_size(target, type_ec);
  }
  if (ec && ec != std::errc::no_such_file_or_directory) {
    return absl::InternalError(
        absl::StrCat("walking ", from, ": ", ec.message()));
  }
  return stats;
}

std::string FirstFew(const std::vector<std::string>& items, size_t n) {
  if (items.size() <= n) return absl::StrJoin(items, ", ");
  return absl::StrCat(
      absl::StrJoin(items.begin(), items.begin() + static_cast<long>(n), ", "),
      " and ", items.size() - n, " more");
}

}  // namespace residency::sim
