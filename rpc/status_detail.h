#ifndef RESIDENCY_RPC_STATUS_DETAIL_H_
#define RESIDENCY_RPC_STATUS_DETAIL_H_

// Protobuf messages attached to an absl::Status as payloads, for a caller
// to act on; rpc/status.h carries them across a gRPC call. Header-only and
// free of gRPC, so that a store can attach them.

#include <optional>
#include <string>

#include "absl/status/status.h"
#include "absl/strings/cord.h"
#include "absl/strings/match.h"
#include "absl/strings/str_cat.h"
#include "absl/strings/string_view.h"
#include "rpc/printable.h"

namespace residency::rpc {

// Payload URLs of the project's own detail messages begin with this. Only
// these cross a gRPC call (rpc/status.h); any other payload stays home.
inline constexpr absl::string_view kDetailUrlPrefix =
    "type.googleapis.com/residency.v1.";

inline bool IsResidencyDetailUrl(absl::string_view url) {
  return absl::StartsWith(url, kDetailUrlPrefix) &&
         url.size() > kDetailUrlPrefix.size();
}

// "CODE: message", the message as it is, for text that is escaped where it
// is shown (the simulator's reports escape for each format). Unlike
// absl::Status::ToString it never shows payloads, which are for programs
// and may hold a peer's raw bytes. "OK" for an OK status.
inline std::string StatusText(const absl::Status& status) {
  if (status.ok()) return "OK";
  return absl::StrCat(absl::StatusCodeToString(status.code()), ": ",
                      status.message());
}

// StatusText made printable (the message may come from a peer), for an
// error line printed as it is made.
inline std::string Describe(const absl::Status& status) {
  return PrintableMessage(StatusText(status));
}

// The payload URL for a protobuf message type, as google.protobuf.Any names
// it: "type.googleapis.com/residency.v1.VersionTaken".
template <typename Message>
std::string DetailUrl() {
  return absl::StrCat("type.googleapis.com/",
                      Message::descriptor()->full_name());
}

// `status` with `detail` attached as a payload, for a caller to act on.
template <typename Message>
absl::Status WithDetail(absl::Status status, const Message& detail) {
  status.SetPayload(DetailUrl<Message>(),
                    absl::Cord(detail.SerializeAsString()));
  return status;
}

// The detail of type Message that `status` carries, if one parses.
template <typename Message>
std::optional<Message> DetailOf(const absl::Status& status) {
  const auto payload = status.GetPayload(DetailUrl<Message>());
  if (!payload.has_value()) return std::nullopt;
  Message detail;
  if (!detail.ParseFromString(std::string(*payload))) return std::nullopt;
  return detail;
}

}  // namespace residency::rpc

#endif  // RESIDENCY_RPC_STATUS_DETAIL_H_
