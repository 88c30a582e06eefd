// The report's timelines (MIXED workloads) and taps, as text and JSON.
#include <algorithm>
#include <cmath>

#include "absl/strings/str_cat.h"
#include "absl/strings/str_format.h"
#include "absl/strings/str_join.h"
#include "absl/strings/string_view.h"
#include "sim/report.h"

namespace residency::sim {
namespace {

std::string Size(uint64_t bytes) {
  if (bytes >= (uint64_t{1} << 20)) {
    return absl::StrFormat("%.1f MiB", static_cast<double>(bytes) / (1 << 20));
  }
  if (bytes >= (uint64_t{1} << 10)) {
    return absl::StrFormat("%.1f KiB", static_cast<double>(bytes) / (1 << 10));
  }
  return absl::StrCat(bytes, " B");
}

// One column of an availability line: '#' all ok, '+' some failed, '-' most
// failed, 'x' all failed, '.' no operation started.
char Cell(uint64_t ok, uint64_t failed) {
  if (ok + failed == 0) return '.';
  if (failed == 0) return '#';
  if (ok == 0) return 'x';
  return ok >= failed ? '+' : '-';
}

// "/residency.v1.KeyService/Unwrap" -> "KeyService/Unwrap".
std::string ShortMethod(absl::string_view method) {
  const size_t slash = method.rfind('/');
  if (slash == absl::string_view::npos || slash == 0)
    return std::string(method);
  absl::string_view service = method.substr(1, slash - 1);
  const size_t dot = service.rfind('.');
  if (dot != absl::string_view::npos) service = service.substr(dot + 1);
  return absl::StrCat(service, "/", method.substr(slash + 1));
}

std::string Bound(uint64_t bound) {
  return bound == TapStats::SizeBounds().back()
             ? "larger"
             : absl::StrCat("<=", Size(bound));
}

}  // namespace

void WriteTimelinesText(const Report& r, std::ostream& out) {
  if (r.timelines.empty()) return;
  out << "Availability over time (MIXED phases; one column per "
      << r.timelines.front().bucket_ms
      << " ms of operation starts: # all ok, + some failed, - most failed, "
         "x all failed, . none; P: a link was partitioned)\n";
  for (const Timeline& t : r.timelines) {
    std::string gets, puts, link;
    bool partitioned = false;
    for (const TimelineBucket& b : t.buckets) {
      gets += Cell(b.get_ok, b.get_failed);
      puts += Cell(b.put_ok, b.put_failed);
      link += b.partitioned ? 'P' : '.';
      partitioned = partitioned || b.partitioned;
    }
    const std::string head =
        absl::StrFormat("  %-16s at %5.1f s ", t.phase, t.start_ms / 1000);
    const std::string pad(head.size(), ' ');
    out << head << "get " << gets << "\n";
    out << pad << "put " << puts << "\n";
    if (partitioned) out << pad << "    " << link << "\n";
  }
  out << "\n";
}

void WriteTapsText(const Report& r, std::ostream& out) {
  for (const TapStats& tap : r.taps) {
    out << absl::StrFormat(
        "Network tap on %s (from %.1f s to %.1f s): %d calls from %d "
        "connections\n",
        tap.link, tap.start_ms / 1000, tap.end_ms / 1000, tap.calls(),
        tap.connections);
    out << absl::StrFormat("  %-30s %6s %10s %10s %13s %13s\n", "method",
                           "calls", "requests", "responses", "request size",
                           "response size");
    for (const auto& [method, m] : tap.methods) {
      const auto range = [](uint64_t messages, uint64_t lo, uint64_t hi) {
        if (messages == 0) return std::string("-");
        return lo == hi ? Size(lo) : absl::StrCat(lo, "-", Size(hi));
      };
      out << absl::StrFormat(
          "  %-30s %6d %10s %10s %13s %13s\n", ShortMethod(method), m.calls,
          Size(m.request_bytes), Size(m.response_bytes),
          range(m.request_messages, m.min_request_bytes, m.max_request_bytes),
          range(m.response_messages, m.min_response_bytes,
                m.max_response_bytes));
    }
    std::vector<std::string> sizes;
    for (const auto& [bound, n] : tap.message_sizes) {
      sizes.push_back(absl::StrCat(Bound(bound), ": ", n));
    }
    out << "  message sizes: " << absl::StrJoin(sizes, ", ") << "\n";
    // Calls per second, one figure per second of the tap.
    const size_t per_second =
        std::max<size_t>(1, static_cast<size_t>(1000 / TapStats::kBucketMs));
    std::vector<std::string> rates;
    for (size_t i = 0; i < tap.calls_over_time.size(); i += per_second) {
      uint64_t n = 0;
      for (size_t j = i;
           j < std::min(i + per_second, tap.calls_over_time.size()); ++j) {
        n += tap.calls_over_time[j];
      }
      rates.push_back(absl::StrCat(n));
    }
    out << "  calls per second: " << absl::StrJoin(rates, " ") << "\n";
    out << absl::StrFormat(
        "  users' plaintext (the canary) in %d messages%s\n", tap.canary_hits,
        tap.canary_hits == 0 ? ", even before TLS" : " (PLAINTEXT CROSSED)");
    out << absl::StrFormat(
        "  inside the messages, hidden by TLS: %d owners and %d object "
        "versions named, %d data keys or shares\n\n",
        tap.owners.size(), tap.object_versions, tap.data_keys);
  }
}

void WriteTrafficJson(const Report& r, std::ostream& out) {
  out << "\"timelines\": [";
  bool first = true;
  for (const Timeline& t : r.timelines) {
    out << (first ? "\n" : ",\n") << "    {\"phase\": " << JsonQuote(t.phase)
        << ", \"get_op\": " << JsonQuote(t.get_op)
        << ", \"put_op\": " << JsonQuote(t.put_op)
        << ", \"start_ms\": " << absl::StrFormat("%.0f", t.start_ms)
        << ", \"bucket_ms\": " << absl::StrFormat("%.0f", t.bucket_ms)
        << ", \"buckets\": [";
    for (size_t i = 0; i < t.buckets.size(); ++i) {
      const TimelineBucket& b = t.buckets[i];
      out << (i == 0 ? "" : ", ")
          << absl::StrFormat(
                 "{\"get_ok\": %d, \"get_failed\": %d, \"put_ok\": %d, "
                 "\"put_failed\": %d, \"partitioned\": %s}",
                 b.get_ok, b.get_failed, b.put_ok, b.put_failed,
                 b.partitioned ? "true" : "false");
    }
    out << "]}";
    first = false;
  }
  out << (r.timelines.empty() ? "]" : "\n  ]") << ",\n  \"taps\": [";
  first = true;
  for (const TapStats& tap : r.taps) {
    out << (first ? "\n" : ",\n") << "    {\"link\": " << JsonQuote(tap.link)
        << absl::StrFormat(", \"start_ms\": %.0f, \"end_ms\": %.0f",
                           tap.start_ms, tap.end_ms)
        << ", \"methods\": {";
    bool first_method = true;
    for (const auto& [method, m] : tap.methods) {
      out << (first_method ? "" : ", ") << JsonQuote(method)
          << absl::StrFormat(
                 ": {\"calls\": %d, \"request_messages\": %d, "
                 "\"request_bytes\": %d, \"response_messages\": %d, "
                 "\"response_bytes\": %d}",
                 m.calls, m.request_messages, m.request_bytes,
                 m.response_messages, m.response_bytes);
      first_method = false;
    }
    out << "}, \"message_sizes\": [";
    bool first_size = true;
    for (const auto& [bound, n] : tap.message_sizes) {
      out << (first_size ? "" : ", ") << "{\"le\": "
          << (bound == TapStats::SizeBounds().back() ? "null"
                                                     : absl::StrCat(bound))
          << ", \"messages\": " << n << "}";
      first_size = false;
    }
    out << "], \"bucket_ms\": " << absl::StrFormat("%.0f", TapStats::kBucketMs)
        << ", \"calls_over_time\": ["
        << absl::StrJoin(tap.calls_over_time, ", ") << "]"
        << absl::StrFormat(
               ", \"connections\": %d, \"canary_hits\": %d, "
               "\"canary_bytes\": %d, \"owners_named\": %d, "
               "\"object_versions_named\": %d, \"data_keys\": %d}",
               tap.connections, tap.canary_hits, tap.canary_bytes,
               tap.owners.size(), tap.object_versions, tap.data_keys);
    first = false;
  }
  out << (r.taps.empty() ? "]" : "\n  ]");
}

}  // namespace residency::sim
