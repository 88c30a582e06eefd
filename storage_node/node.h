#ifndef RESIDENCY_STORAGE_NODE_NODE_H_
#define RESIDENCY_STORAGE_NODE_NODE_H_

#include <cstddef>
#include <functional>
#include <memory>
#include <string>

#include "absl/status/status.h"
#include "absl/status/statusor.h"
#include "residency/v1/storage.pb.h"
#include "storage_node/object_store.h"
#include "tls/principal.h"

namespace residency::storage_node {

struct NodeOptions {
  // The jurisdiction this node declares; residency rules are checked
  // against it.
  std::string jurisdiction;
  // Largest `data` message the node sends in Get and Export.
  size_t max_data_message_bytes = 1 << 20;
  // The one operator principal of this node (residency://operator/NAME):
  // only it may Export and read every owner's Stats.
  std::string operator_principal;
};

// The storage node without its transport: authorization by role, envelope
// checks, and the object store. The gRPC service (grpc_service.h) is a thin
// adapter over it.
//
// Roles, from the caller's verified principal only:
//   residency://user/<owner>   Put, Get, Head, List, Delete and Stats of
//                              <owner>'s objects.
//   the node's operator        Export and Stats, for any owner (one
//                              principal, NodeOptions::operator_principal;
//                              other operators are refused).
// Anything else is PERMISSION_DENIED, naming the caller and the owner.
//
// Every request needs metadata with a request id (INVALID_ARGUMENT).
//
// Thread safety: all methods may be called concurrently.
class NodeCore {
 public:
  using GetSink = std::function<bool(const residency::v1::GetResponse&)>;
  using ExportSink = std::function<bool(const residency::v1::ExportResponse&)>;

  NodeCore(NodeOptions options, std::unique_ptr<ObjectStore> store);

  // Checks the caller, the metadata, the envelope and the residency rule,
  // then starts the upload. Feed it the data messages, then Commit.
  absl::StatusOr<std::unique_ptr<Upload>> BeginPut(
      const tls::Principal& caller,
      const residency::v1::PutRequest::Start& start);

  // Streams `start` then `data` messages to `sink` (false stops it).
  absl::Status Get(const tls::Principal& caller,
                   const residency::v1::GetRequest& request,
                   const GetSink& sink);
  absl::StatusOr<residency::v1::HeadResponse> Head(
      const tls::Principal& caller, const residency::v1::HeadRequest& request);
  absl::StatusOr<residency::v1::ListResponse> List(
      const tls::Principal& caller, const residency::v1::ListRequest& request);
  absl::StatusOr<residency::v1::DeleteResponse> Delete(
      const tls::Principal& caller,
      const residency::v1::DeleteRequest& request);
  absl::Status Export(const tls::Principal& caller,
                      const residency::v1::ExportRequest& request,
                      const ExportSink& sink);
  absl::StatusOr<residency::v1::StatsResponse> Stats(
      const tls::Principal& caller, const residency::v1::StatsRequest& request);

  const NodeOptions& options() const { return options_; }
  const ObjectStore& store() const { return *store_; }

 private:
  // Streams ciphertext [offset, offset + length) as `data` messages of at
  // most max_data_message_bytes.
  template <typename Response>
  absl::Status SendCiphertext(const StoredVersion& version, uint64_t offset,
                              uint64_t length,
                              const std::function<bool(const Response&)>& sink);

  const NodeOptions options_;
  std::unique_ptr<ObjectStore> store_;
};

}  // namespace residency::storage_node

#endif  // RESIDENCY_STORAGE_NODE_NODE_H_
