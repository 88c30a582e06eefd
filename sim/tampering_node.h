#ifndef RESIDENCY_SIM_TAMPERING_NODE_H_
#define RESIDENCY_SIM_TAMPERING_NODE_H_

// An insider at the storage operator, as a storage node in front of the
// real one: users who reach it get what the real node holds, except that
// Get answers are edited according to a plan. The client library must
// refuse every edit with DATA_LOSS and never return bytes other than those
// stored (client/client.h); client_test and the simulator's insider phase
// (sim/insider.cc) check that it does.

#include <grpcpp/grpcpp.h>

#include <functional>
#include <map>
#include <memory>
#include <mutex>
#include <string>

#include "absl/strings/string_view.h"
#include "residency/v1/storage.grpc.pb.h"

namespace residency::sim {

// Serves residency.v1.StorageNode by forwarding to the real node. The
// caller is told apart by its mTLS certificate (residency://user/<owner>;
// anyone else is PERMISSION_DENIED), and each call goes on to the real node
// on `to_node(owner)`: a channel presenting that owner's certificate,
// standing in for the insider's direct access to the store. Put, Head,
// List, Delete and Stats pass through; Get follows the plan. Export is not
// served (UNIMPLEMENTED).
//
// Every Get answer is one `start` message and the ciphertext in messages of
// at most 1 MiB, whatever the real node's split.
//
// Thread safety: calls may run concurrently with each other and with
// set_plan / Serve.
class TamperingNode final : public residency::v1::StorageNode::Service {
 public:
  enum class Mode {
    kHonest,           // what the real node answers
    kFlipBit,          // one ciphertext bit flipped, in the middle
    kSwapCiphertext,   // another object's ciphertext behind this header
    kOlderVersion,     // an older version served, with its own header
    kOlderRelabelled,  // an older version, its header relabelled as asked
    kTruncate,         // the last 20 ciphertext bytes dropped
    kOtherOwner,       // another owner's header and ciphertext
  };
  // Every mode that edits the answer, in the order above.
  static constexpr Mode kTamperModes[] = {
      Mode::kFlipBit,         Mode::kSwapCiphertext, Mode::kOlderVersion,
      Mode::kOlderRelabelled, Mode::kTruncate,       Mode::kOtherOwner};

  // What to serve for one Get.
  struct Tampering {
    Mode mode = Mode::kHonest;
    // The object served instead of (or, for kSwapCiphertext, behind the
    // header of) the one asked for: kSwapCiphertext, another object of the
    // same owner; kOlderVersion and kOlderRelabelled, the older version;
    // kOtherOwner, another owner's object. Version 0 is its latest.
    // Ignored by the other modes.
    residency::v1::ObjectRef source;
  };
  // Chooses the tampering for the object a Get asks for.
  using Plan = std::function<Tampering(const residency::v1::ObjectRef& asked)>;
  // A channel to the real node presenting `owner`'s certificate.
  using ChannelFor =
      std::function<std::shared_ptr<grpc::Channel>(const std::string& owner)>;

  explicit TamperingNode(ChannelFor to_node);

  // From now on every Get follows `plan` (the default plan is honest).
  void set_plan(Plan plan);
  // Every Get is answered with `tampering`.
  void Serve(Tampering tampering);

  // "honest", "flip-bit", "swap-ciphertext", "older-version",
  // "older-relabelled", "truncate", "other-owner".
  static absl::string_view ModeName(Mode mode);

  grpc::Status Put(grpc::ServerContext* context,
                   grpc::ServerReader<residency::v1::PutRequest>* reader,
                   residency::v1::PutResponse* response) override;
  grpc::Status Get(
      grpc::ServerContext* context, const residency::v1::GetRequest* request,
      grpc::ServerWriter<residency::v1::GetResponse>* writer) override;
  grpc::Status Head(grpc::ServerContext* context,
                    const residency::v1::HeadRequest* request,
                    residency::v1::HeadResponse* response) override;
  grpc::Status List(grpc::ServerContext* context,
                    const residency::v1::ListRequest* request,
                    residency::v1::ListResponse* response) override;
  grpc::Status Delete(grpc::ServerContext* context,
                      const residency::v1::DeleteRequest* request,
                      residency::v1::DeleteResponse* response) override;
  grpc::Status Stats(grpc::ServerContext* context,
                     const residency::v1::StatsRequest* request,
                     residency::v1::StatsResponse* response) override;

 private:
  // The stub to the real node for the caller of `context`, or the
  // PERMISSION_DENIED status to answer with.
  grpc::Status CallerStub(grpc::ServerContext* context,
                          residency::v1::StorageNode::Stub** stub);
  residency::v1::StorageNode::Stub* StubFor(const std::string& owner);

  const ChannelFor to_node_;
  std::mutex mu_;
  Plan plan_;  // Guarded by mu_.
  std::map<std::string, std::unique_ptr<residency::v1::StorageNode::Stub>>
      stubs_;  // By owner; guarded by mu_.
};

}  // namespace residency::sim

#endif  // RESIDENCY_SIM_TAMPERING_NODE_H_
