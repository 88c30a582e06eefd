#ifndef RESIDENCY_CLIENT_CLIENT_H_
#define RESIDENCY_CLIENT_CLIENT_H_

#include <grpcpp/grpcpp.h>

#include <cstdint>
#include <functional>
#include <istream>
#include <memory>
#include <optional>
#include <ostream>
#include <string>
#include <vector>

#include "absl/status/status.h"
#include "absl/status/statusor.h"
#include "absl/strings/string_view.h"
#include "absl/time/time.h"
#include "crypto/secret_bytes.h"
#include "residency/v1/key_service.grpc.pb.h"
#include "residency/v1/storage.grpc.pb.h"

namespace residency::client {

// Who can unwrap a new object's data key (DESIGN.md, "Envelope encryption and
// key custody"); recorded in each header as residency.v1.CustodyMode.
enum class CustodyMode {
  // One key service wraps the whole DEK: the custodian alone can decrypt.
  kCustodian,
  // The DEK is derived from two shares, one wrapped by the key service and
  // one by a device key the client keeps: a compelled custodian gets a share
  // that is useless alone.
  kE2e,
  // The DEK is derived from two shares wrapped by two key services in two
  // jurisdictions: both must agree to unwrap.
  kSplit,
};

// "object 'OWNER/ID' vN", as messages name an object version; the names are
// escaped (rpc::Printable).
std::string DescribeObject(const residency::v1::ObjectRef& object);

// "custodian", "e2e", "split"; anything else is INVALID_ARGUMENT naming the
// three.
absl::StatusOr<CustodyMode> ParseCustodyMode(absl::string_view name);
absl::string_view CustodyModeName(CustodyMode mode);

// The DEK of a two-share object (E2E and SPLIT custody): HKDF-SHA-256 over
// share 1 || share 2 (32 bytes each), salt empty, info
// "residency/dek/v1" 0x00 CustodyModeName(mode) 0x00 object_context
// (crypto::EncodeObjectContext), 32 bytes out. So a pair of shares yields a
// different key for another mode or another object. DATA_LOSS when a share
// is not 32 bytes. Exposed for whoever holds both shares by other means (the
// simulator's compelled parties).
absl::StatusOr<crypto::SecretBytes> DeriveDataKey(
    CustodyMode mode, const crypto::SecretBytes& share1,
    const crypto::SecretBytes& share2, absl::string_view object_context);

// One key service the client talks to.
struct KeyServiceTarget {
  // mTLS channel to it.
  std::shared_ptr<grpc::Channel> channel;
  // The owner's KEK there, wrapping the data keys (or shares) of new objects.
  std::string key_id;
  // Its principal ("residency://service/keys-us"), compared with the
  // key_service recorded in a header to route an Unwrap; empty routes by
  // position (the first target for share 0 and 1, the second for share 2).
  std::string principal;
};

// The device key of E2E custody: 32 bytes that never leave the client.
struct DeviceKey {
  // "device-" and the first 16 hex digits of SHA-256 of the key: recorded in
  // headers so a reader with another device key is told which one is needed.
  std::string key_id;
  crypto::SecretBytes key;
};

// Reads the device key from `path` (32 raw bytes, mode 0600, owned by this
// user; see crypto/key_file.h), creating it when missing and `create` is
// set.
absl::StatusOr<std::shared_ptr<const DeviceKey>> LoadDeviceKey(
    const std::string& path, bool create);

// Retries of calls that failed with UNAVAILABLE (and only UNAVAILABLE: any
// other status is an answer). Backoff doubles from `initial_backoff` up to
// `max_backoff`, with up to 20% random jitter; a retry reuses the request id.
// A retry after a refused connection helps only if the channel has tried to
// connect again meanwhile. Channels from tls::MakeChannel try again 100 ms
// after a failure, then at growing intervals (tls::ChannelOptions), so the
// default retries reach a server that is back within about half a second;
// gRPC's defaults would make every retry of the first second fail at once.
struct RetryPolicy {
  // Attempts in all, the first included; 1 disables retries.
  int max_attempts = 4;
  absl::Duration initial_backoff = absl::Milliseconds(100);
  absl::Duration max_backoff = absl::Seconds(2);
};

// Plaintext data keys kept for reads, so reading one object version again
// needs no Unwrap. Off by default: a cached key outlives a key disabled or
// destroyed at the key service for up to `ttl`.
struct DataKeyCacheOptions {
  // 0 disables the cache.
  size_t max_entries = 0;
  absl::Duration ttl = absl::Minutes(5);
};

struct ClientOptions {
  // The owner this client acts for ("alice"); its certificate must be
  // residency://user/<owner>.
  std::string owner;
  // Custody of new objects. A Get follows the mode recorded in the object's
  // header, whatever this says.
  CustodyMode mode = CustodyMode::kCustodian;
  // Every mode needs the first key service; split needs the second too.
  // Without any, the client can still List, Head and Delete (Put and Get
  // fail FAILED_PRECONDITION).
  std::vector<KeyServiceTarget> key_services;
  // E2E: the device key (see LoadDeviceKey); needed to write E2E objects and
  // to read them back.
  std::shared_ptr<const DeviceKey> device_key;
  // mTLS channel to the storage node. Without it, the client can still
  // manage keys (every object call fails FAILED_PRECONDITION).
  std::shared_ptr<grpc::Channel> storage;
  // Jurisdictions allowed to hold new objects (empty: anywhere).
  std::vector<std::string> residency;
  // Deadline of every unary call; a stream gets it plus time for its bytes
  // at 8 MiB/s.
  absl::Duration deadline = absl::Seconds(30);
  RetryPolicy retry;
  DataKeyCacheOptions cache;
  // Ciphertext bytes per Put data message.
  size_t message_bytes = 256 * 1024;
};

// A plaintext byte range of an object; length 0 means to the end.
struct Range {
  uint64_t offset = 0;
  uint64_t length = 0;
};

// Called during a Put or Get with the plaintext bytes moved so far.
using ProgressFn = std::function<void(uint64_t bytes_done)>;

// Envelope encryption against key services and a storage node: a fresh data
// key per object version from GenerateDataKey, wrapped under the owner's KEK
// and bound to the object; the payload in Cobblestone-256 with the object's
// context; the storage node holds only ciphertext and wrapped keys.
//
// Put and Get stream: memory holds one message of ciphertext and one chunk
// of plaintext, whatever the object size (a ranged Get holds the chunks of
// its range).
//
// Errors: the services' statuses as they come (PERMISSION_DENIED naming a
// policy rule, NOT_FOUND, FAILED_PRECONDITION for a disabled key, ...);
// DATA_LOSS, with what failed, when stored bytes do not authenticate: a Get
// never writes unauthenticated plaintext to its output, except that a
// streaming Get may already have written the chunks before a bad one (their
// authentication passed). FAILED_PRECONDITION when an object needs a key
// this client lacks (a device key, a second key service), naming it.
//
// Retries: unary calls, and a Get that failed before writing any output, are
// retried on UNAVAILABLE (RetryPolicy). A Put's upload stream is not: its
// input may not be readable twice.
//
// Thread safety: calls may run concurrently.
class Client {
 public:
  static absl::StatusOr<std::unique_ptr<Client>> Create(ClientOptions options);

  // Stores `size` bytes read from `input` as the next version of
  // `object_id`, in options().mode custody, and returns the stored
  // reference. The version is the one this client expects (one above its
  // own last write of the object, else 1), checked by the node, which
  // refuses a version at or below one it holds (ALREADY_EXISTS).
  //  - When `input` can seek back to where it was, the upload goes out at
  //    once under the expected version. If the node refuses it (before
  //    storing anything), the Put starts over at once from the same bytes,
  //    one above the latest version that the refusal names (VersionTaken);
  //    with no usable version named, after a lookup. The refused upload
  //    may have sent up to a stream window of ciphertext first.
  //  - Otherwise the latest version is looked up first, while the data key
  //    is asked for the expected version; when the node says otherwise,
  //    the key is asked for again and the first one discarded.
  // Either way a wrong expectation costs one more GenerateDataKey per key
  // service (both are audited). It is usual for the first write of an existing
  // object by a new client, e.g. each `residency put` over a stored object.
  //
  // Another writer may take the version first (two clients, or two
  // gateways over one RADOS pool): the node says ALREADY_EXISTS, and when
  // `input` can seek back to where it was, the Put starts over with the
  // next version after a short random pause (up to
  // kConcurrentWriterAttempts attempts in all, a fresh data key each time);
  // otherwise the ALREADY_EXISTS is returned.
  //
  // `progress` never goes back: an attempt that starts over reports again
  // only once it passes what an earlier attempt reached.
  //
  // After the largest version (UINT64_MAX) there is none: a Put of such an
  // object fails OUT_OF_RANGE, saying so.
  static constexpr int kConcurrentWriterAttempts = 16;
  absl::StatusOr<residency::v1::ObjectRef> Put(absl::string_view object_id,
                                               std::istream& input,
                                               uint64_t size,
                                               const ProgressFn& progress = {});

  // Sends `header` and then header.ciphertext_length() bytes of already
  // sealed `ciphertext` exactly as Put sends what it encrypts (same stream,
  // message size and deadlines), without a key service. For benchmarks
  // (the transport baseline) and tools that move sealed objects.
  absl::StatusOr<residency::v1::ObjectRef> PutSealed(
      const residency::v1::ObjectHeader& header, std::istream& ciphertext);

  // Writes the plaintext of `object_id` (version 0: the latest) to `output`,
  // or only `range` of it; returns the object's header. A "latest" older
  // than the last version this client itself stored is DATA_LOSS
  // (rollback); a client that never wrote the object cannot tell an older
  // version served as the latest from the latest.
  absl::StatusOr<residency::v1::ObjectHeader> Get(
      absl::string_view object_id, uint64_t version, std::ostream& output,
      std::optional<Range> range = std::nullopt,
      const ProgressFn& progress = {});

  // Metadata of one version (0: the latest); no key service is asked.
  absl::StatusOr<residency::v1::ObjectInfo> Head(absl::string_view object_id,
                                                 uint64_t version = 0);

  // Every object whose id starts with `prefix` (the latest version of each,
  // or all versions), in id order, reading page after page.
  absl::StatusOr<std::vector<residency::v1::ObjectInfo>> List(
      absl::string_view prefix = "", bool all_versions = false);

  // Deletes one version, or all of them with version 0; returns how many.
  absl::StatusOr<uint64_t> Delete(absl::string_view object_id,
                                  uint64_t version = 0);

  // KEK administration on key_services[service], for options().owner.
  absl::StatusOr<residency::v1::KeyInfo> CreateKey(absl::string_view key_id,
                                                   size_t service = 0);
  absl::StatusOr<residency::v1::KeyInfo> RotateKey(absl::string_view key_id,
                                                   size_t service = 0);
  absl::StatusOr<residency::v1::KeyInfo> DisableKey(absl::string_view key_id,
                                                    size_t service = 0);
  absl::StatusOr<residency::v1::KeyInfo> EnableKey(absl::string_view key_id,
                                                   size_t service = 0);
  absl::StatusOr<residency::v1::KeyInfo> DestroyKey(absl::string_view key_id,
                                                    size_t service = 0);
  absl::StatusOr<residency::v1::KeyInfo> GetKeyInfo(absl::string_view key_id,
                                                    size_t service = 0);

  const ClientOptions& options() const { return options_; }

  ~Client();

 private:
  // How one attempt of Put picks the object's version.
  enum class VersionPick {
    kGuess,            // The guess alone.
    kLookUpWithGuess,  // The node's latest + 1; the data key is asked for
                       // the guess meanwhile.
    kLookUp,           // The node's latest + 1, then the data key.
  };
  // One attempt of Put. `guess`: one above this client's own last write of
  // the object, else 1, or one above the latest version a refusal named.
  // Sets *tried to the version it asked the node to store, once picked.
  absl::StatusOr<residency::v1::ObjectRef> PutOnce(
      absl::string_view object_id, std::istream& input, uint64_t size,
      const ProgressFn& progress, VersionPick pick, uint64_t guess,
      uint64_t* tried);

  class Impl;
  explicit Client(ClientOptions options);

  const ClientOptions options_;
  std::unique_ptr<Impl> impl_;
};

namespace internal {

// The latest version a Put's refusal (ALREADY_EXISTS) names in its
// VersionTaken detail, when it is one a writer can go on from: at least
// `refused`, the version the refusal was for, and below the largest. The
// node is not trusted with more than it could do anyway (refuse again).
std::optional<uint64_t> LatestVersionTaken(const absl::Status& refusal,
                                           uint64_t refused);

}  // namespace internal
}  // namespace residency::client

#endif  // RESIDENCY_CLIENT_CLIENT_H_
