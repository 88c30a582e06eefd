// Owners act on their own KEKs at every key service of the population.
#include <set>

#include "absl/strings/ascii.h"
#include "absl/strings/str_cat.h"
#include "absl/time/clock.h"
#include "sim/phases.h"

namespace residency::sim {

absl::Status RunKeyAction(const residency::v1::KeyAction& action, World& world,
                          Ledger& ledger) {
  if (action.kind() == residency::v1::KeyAction::KIND_UNSPECIFIED) {
    return absl::InvalidArgumentError("key action kind is not set");
  }
  const std::string op =
      absl::AsciiStrToLower(
          residency::v1::KeyAction::Kind_Name(action.kind())) +
      "_key";
  const std::set<std::string> only(action.users().begin(),
                                   action.users().end());
  const int services = world.scenario().population().key_services_size();
  for (User& user : world.users()) {
    if (!only.empty() && only.count(user.name) == 0) continue;
    absl::StatusOr<client::Client*> client = world.ClientFor(user);
    if (!client.ok()) return client.status();
    const std::string key = user.name + "-key";
    for (int k = 0; k < services; ++k) {
      const absl::Time start = absl::Now();
      absl::Status status;
      switch (action.kind()) {
        case residency::v1::KeyAction::DISABLE:
          status = (*client)->DisableKey(key, k).status();
          break;
        case residency::v1::KeyAction::ENABLE:
          status = (*client)->EnableKey(key, k).status();
          break;
        default:
          status = (*client)->DestroyKey(key, k).status();
          break;
      }
      ledger.Record(op, status, absl::Now() - start);
    }
  }
  return absl::OkStatus();
}

}  // namespace residency::sim
