// The `tap` phase: a tap on the link between two jurisdictions records what
// crosses it while the following phases run.
#include <algorithm>
#include <map>
#include <set>
#include <vector>

#include "absl/strings/str_cat.h"
#include "absl/strings/str_format.h"
#include "absl/strings/str_join.h"
#include "sim/phases.h"

namespace residency::sim {
namespace {

// "/residency.v1.KeyService/Unwrap" -> "Unwrap".
std::string MethodName(const std::string& method) {
  const size_t slash = method.rfind('/');
  return slash == std::string::npos ? method : method.substr(slash + 1);
}

std::string Ms(double ms) { return absl::StrFormat("%.1f s", ms / 1000); }

// What the tap learned, in words.
std::string Note(const TapStats& tap) {
  std::string note = absl::StrFormat(
      "Tap on %s (%s to %s): %d calls from %d connections, %d bytes out "
      "and %d back.",
      tap.link, Ms(tap.start_ms), Ms(tap.end_ms), tap.calls(), tap.connections,
      tap.request_bytes(), tap.response_bytes());
  if (tap.canary_hits == 0) {
    absl::StrAppend(&note,
                    " No message carried users' plaintext (the canary), "
                    "even read before TLS.");
  } else {
    absl::StrAppendFormat(&note,
                          " PLAINTEXT CROSSED: %d messages (%d bytes) "
                          "carried users' plaintext (the canary).",
                          tap.canary_hits, tap.canary_bytes);
  }
  std::vector<std::string> owners;
  for (const auto& [owner, seen] : tap.owners) {
    if (owners.size() == 4) {
      owners.push_back("...");
      break;
    }
    owners.push_back(absl::StrFormat("%s: %d calls, %s to %s", owner,
                                     seen.calls, Ms(seen.first_ms),
                                     Ms(seen.last_ms)));
  }
  if (!owners.empty() || tap.data_keys > 0) {
    absl::StrAppendFormat(
        &note,
        " Read before TLS, the messages name %d owners and %d object "
        "versions (each GenerateDataKey and Unwrap carries its object's "
        "ObjectRef), so they say who writes and reads what, and when (%s), "
        "and they carry %d data keys or shares. TLS hides all of this from "
        "a real tap.",
        tap.owners.size(), tap.object_versions,
        owners.empty() ? "no owner named" : absl::StrJoin(owners, "; "),
        tap.data_keys);
  }
  // What sizes give away: methods whose request sizes do not overlap any
  // other method's can be told apart on the wire.
  std::vector<std::string> ranges;
  bool overlap = false;
  for (auto a = tap.methods.begin(); a != tap.methods.end(); ++a) {
    if (a->second.request_messages == 0) continue;
    const TapMethodStats& m = a->second;
    ranges.push_back(m.min_request_bytes == m.max_request_bytes
                         ? absl::StrFormat("%s %d B", MethodName(a->first),
                                           m.min_request_bytes)
                         : absl::StrFormat("%s %d-%d B", MethodName(a->first),
                                           m.min_request_bytes,
                                           m.max_request_bytes));
    for (auto b = std::next(a); b != tap.methods.end(); ++b) {
      if (b->second.request_messages == 0) continue;
      overlap = overlap ||
                (a->second.min_request_bytes <= b->second.max_request_bytes &&
                 b->second.min_request_bytes <= a->second.max_request_bytes);
    }
  }
  absl::StrAppend(
      &note,
      " What a real tap still learns from metadata alone: when each "
      "connection is active (one per user's client, and its source address "
      "names the user), how many calls, their sizes and timing");
  if (ranges.size() > 1 && !overlap) {
    const bool keys =
        tap.methods.count("/residency.v1.KeyService/GenerateDataKey") > 0 &&
        tap.methods.count("/residency.v1.KeyService/Unwrap") > 0;
    absl::StrAppend(
        &note, "; request sizes per method (", absl::StrJoin(ranges, ", "),
        ") do not overlap, so size alone tells the calls apart",
        keys ? " (GenerateDataKey is a write, Unwrap a read)." : ".");
  } else {
    absl::StrAppend(&note, ".");
  }
  return note;
}

// Adds one tap's record to the report: the actor, the metrics (summed over
// every tap of the link) and the note.
void Record(TapStats tap, Ledger& ledger) {
  ledger.Update([&](Report& report) {
    const std::string link = tap.link;
    Obtained& got = report.actors["tap/" + link];
    // All it holds is TLS records: ciphertext to it, whatever is inside.
    got.ciphertext_bytes += tap.request_bytes() + tap.response_bytes();
    // Plaintext only when the canary crossed: the messages that carried
    // it. (The tap does not reassemble objects, so exposure stays 0.)
    got.plaintext_bytes += tap.canary_bytes;
    report.notes.push_back(Note(tap));
    report.taps.push_back(std::move(tap));

    std::map<std::string, double> metrics;
    const auto label = [&](absl::string_view name) {
      return absl::StrCat(name, "{link=", link, "}");
    };
    std::set<std::string> owners;
    for (const TapStats& t : report.taps) {
      if (t.link != link) continue;
      metrics[label("tap_calls")] += t.calls();
      metrics[label("tap_request_bytes")] += t.request_bytes();
      metrics[label("tap_response_bytes")] += t.response_bytes();
      metrics[label("tap_bytes")] += t.request_bytes() + t.response_bytes();
      metrics[label("tap_canary_hits")] += t.canary_hits;
      metrics[label("tap_connections")] += t.connections;
      metrics[label("tap_data_keys")] += t.data_keys;
      for (const auto& [owner, seen] : t.owners) owners.insert(owner);
      for (const auto& [method, m] : t.methods) {
        metrics[absl::StrCat("tap_calls{link=", link,
                             ",method=", MethodName(method), "}")] += m.calls;
      }
    }
    metrics[label("tap_owners_named")] = owners.size();
    for (const auto& [name, value] : metrics) report.extra[name] = value;
  });
}

}  // namespace

absl::Status RunTap(const residency::v1::NetworkTap& tap, World& world,
                    Ledger& ledger) {
  if (absl::Status s = FinishTaps(world, ledger); !s.ok()) return s;
  if (absl::Status s = world.links().Tap(tap.a(), tap.b(), world.canary());
      !s.ok()) {
    return s;
  }
  ledger.Progress(absl::StrCat("  tap armed on ", tap.a(), "-", tap.b(),
                               " until the end or the next tap"));
  return absl::OkStatus();
}

absl::Status FinishTaps(World& world, Ledger& ledger) {
  for (TapStats& tap : world.links().UntapAll()) {
    Record(std::move(tap), ledger);
  }
  return absl::OkStatus();
}

}  // namespace residency::sim
