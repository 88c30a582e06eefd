#ifndef RESIDENCY_RPC_STATUS_DETAIL_H_
#define RESIDENCY_RPC_STATUS_DETAIL_H_

// Protobuf messages attached to an absl::Status as payloads, for a caller
// to act on; rpc/status.h carries them across a gRPC call. Header-only and
// free of gRPC, so that a store can attach them.

#include <optional>
#include <string>

#include "absl/status/status.h"
#include "absl/strings/cord.h"
#include "absl/strings/str_cat.h"

namespace residency::rpc {

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
