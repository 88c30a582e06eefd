#include "sim/ledger.h"

#include <openssl/sha.h>

#include "absl/strings/str_cat.h"
#include "rpc/printable.h"
#include "rpc/status_detail.h"

namespace residency::sim {

std::string Sha256(absl::string_view data) {
  unsigned char digest[SHA256_DIGEST_LENGTH];
  SHA256(reinterpret_cast<const unsigned char*>(data.data()), data.size(),
         digest);
  return std::string(reinterpret_cast<const char*>(digest), sizeof(digest));
}

void Ledger::Record(const std::string& operation, const absl::Status& status,
                    absl::Duration elapsed) {
  std::lock_guard<std::mutex> lock(mu_);
  OperationStats& stats = report_.operations[operation];
  if (status.ok()) {
    ++stats.ok;
    stats.latencies_ms.push_back(absl::ToDoubleMilliseconds(elapsed));
  } else {
    ++stats.errors[absl::StatusCodeToString(status.code())];
    if (stats.first_error.empty()) {
      // From a peer: bounded, cut between characters; each report format
      // escapes it. Code and message only: payloads (status details) are
      // for programs.
      constexpr size_t kMaxShown = 240;
      const absl::string_view message = status.message();
      const absl::string_view shown = rpc::CutAtCharacter(message, kMaxShown);
      stats.first_error = rpc::StatusText(absl::Status(status.code(), shown));
      if (shown.size() < message.size()) stats.first_error += "...";
    }
  }
}

void Ledger::Refused(const std::string& actor, const std::string& by,
                     const absl::Status& status) {
  std::lock_guard<std::mutex> lock(mu_);
  report_.actors[actor].refusals[absl::StrCat(
      by, ": ", absl::StatusCodeToString(status.code()))]++;
}

bool Ledger::Exposed(const std::string& actor, const std::string& owner,
                     const std::string& object_id, uint64_t version,
                     const std::string& plaintext) {
  const std::string digest = Sha256(plaintext);
  std::lock_guard<std::mutex> lock(mu_);
  for (const User& user : world_.users()) {
    if (user.name != owner) continue;
    for (const Truth& t : user.objects) {
      if (t.object_id != object_id || (version != 0 && version != t.version) ||
          digest != t.sha256) {
        continue;
      }
      if (!counted_[actor]
               .insert(absl::StrCat(owner, "/", object_id, "/", t.version))
               .second) {
        return false;
      }
      report_.actors[actor].plaintext_bytes += plaintext.size();
      report_.exposed[actor][owner] += plaintext.size();
      return true;
    }
  }
  return false;
}

void Ledger::Progress(const std::string& line) {
  if (progress_ == nullptr) return;
  std::lock_guard<std::mutex> lock(mu_);
  *progress_ << "[sim] " << rpc::PrintableMessage(line) << std::endl;
}

}  // namespace residency::sim
