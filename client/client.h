#ifndef RESIDENCY_CLIENT_CLIENT_H_
#define RESIDENCY_CLIENT_CLIENT_H_

#include <grpcpp/grpcpp.h>

#include <cstdint>
#include <istream>
#include <memory>
#include <optional>
#include <ostream>
#include <string>
#include <vector>

#include "absl/status/statusor.h"
#include "absl/strings/string_view.h"
#include "absl/time/time.h"
#include "residency/v1/key_service.grpc.pb.h"
#include "residency/v1/storage.grpc.pb.h"

namespace residency::client {

struct ClientOptions {
  // The owner this client acts for ("alice"); its certificate must be
  // residency://user/<owner>.
  std::string owner;
  // The KEK that wraps the data keys of new objects.
  std::string key_id;
  // mTLS channels to the key service and the storage node.
  std::shared_ptr<grpc::Channel> key_service;
  std::shared_ptr<grpc::Channel> storage;
  // Jurisdictions allowed to hold new objects (empty: anywhere).
  std::vector<std::string> residency;
  // Deadline of every unary call; streams get it per message.
  absl::Duration deadline = absl::Seconds(30);
  // Ciphertext bytes per Put data message.
  size_t message_bytes = 256 * 1024;
};

// A plaintext byte range of an object; length 0 means to the end.
struct Range {
  uint64_t offset = 0;
  uint64_t length = 0;
};

// Envelope encryption against a key service and a storage node, custodian
// custody (the 2014 arrangement): a fresh data key per object version from
// GenerateDataKey, wrapped under the owner's KEK and bound to the object;
// the payload in Cobblestone-256 with the object's context; the storage node
// holds only ciphertext and the wrapped key.
//
// Put and Get stream: memory holds one message of ciphertext and one chunk
// of plaintext, whatever the object size.
//
// Errors: the services' statuses as they come (PERMISSION_DENIED naming a
// policy rule, NOT_FOUND, ...); DATA_LOSS, with what failed, when stored
// bytes do not authenticate: a Get never writes unauthenticated plaintext
// to its output, except that a streaming Get may already have written the
// chunks before a bad one (their authentication passed).
//
// Thread safety: calls may run concurrently.
class Client {
 public:
  static absl::StatusOr<std::unique_ptr<Client>> Create(ClientOptions options);

  // Stores `size` bytes read from `input` as the next version of
  // `object_id` and returns the stored reference.
  absl::StatusOr<residency::v1::ObjectRef> Put(absl::string_view object_id,
                                               std::istream& input,
                                               uint64_t size);

  // Writes the plaintext of `object_id` (version 0: the latest) to `output`,
  // or only `range` of it; returns the object's header.
  absl::StatusOr<residency::v1::ObjectHeader> Get(
      absl::string_view object_id, uint64_t version, std::ostream& output,
      std::optional<Range> range = std::nullopt);

  const ClientOptions& options() const { return options_; }

 private:
  explicit Client(ClientOptions options);

  void Prepare(grpc::ClientContext* context) const;
  residency::v1::RequestMetadata Metadata() const;
  absl::StatusOr<std::string> UnwrapFor(
      const residency::v1::ObjectHeader& header);

  const ClientOptions options_;
  std::unique_ptr<residency::v1::KeyService::Stub> keys_;
  std::unique_ptr<residency::v1::StorageNode::Stub> storage_;
};

}  // namespace residency::client

#endif  // RESIDENCY_CLIENT_CLIENT_H_
