#include "rpc/status.h"

#include <string>

#include "absl/strings/string_view.h"
#include "residency/v1/common.pb.h"

namespace residency::rpc {
namespace {

// Both enums number the canonical codes 0 (OK) to 16 (UNAUTHENTICATED).
constexpr int kLastCanonicalCode = 16;

bool IsCanonical(int code) { return code >= 0 && code <= kLastCanonicalCode; }

}  // namespace

grpc::Status ToGrpcStatus(const absl::Status& status) {
  if (status.ok()) return grpc::Status::OK;
  const int code = static_cast<int>(status.code());
  const grpc::StatusCode grpc_code = IsCanonical(code)
                                         ? static_cast<grpc::StatusCode>(code)
                                         : grpc::StatusCode::UNKNOWN;
  std::string message(status.message());
  residency::v1::RpcStatus carried;
  status.ForEachPayload([&](absl::string_view url, const absl::Cord& value) {
    if (!IsResidencyDetailUrl(url)) return;
    google::protobuf::Any* detail = carried.add_details();
    detail->set_type_url(std::string(url));
    detail->set_value(std::string(value));
  });
  if (carried.details().empty()) return grpc::Status(grpc_code, message);
  carried.set_code(static_cast<int32_t>(grpc_code));
  carried.set_message(message);
  return grpc::Status(grpc_code, std::move(message),
                      carried.SerializeAsString());
}

absl::Status FromGrpcStatus(const grpc::Status& status) {
  if (status.ok()) return absl::OkStatus();
  const int code = static_cast<int>(status.error_code());
  absl::Status result(IsCanonical(code) ? static_cast<absl::StatusCode>(code)
                                        : absl::StatusCode::kUnknown,
                      status.error_message());
  const std::string& details = status.error_details();
  residency::v1::RpcStatus carried;
  if (details.empty() || details.size() > kMaxDetailsBytes ||
      !carried.ParseFromString(details)) {
    return result;
  }
  for (const google::protobuf::Any& detail : carried.details()) {
    if (!IsResidencyDetailUrl(detail.type_url())) continue;
    result.SetPayload(detail.type_url(), absl::Cord(detail.value()));
  }
  return result;
}

}  // namespace residency::rpc
