#include "client/client.h"

#include <openssl/sha.h>

#include <algorithm>
#include <chrono>
#include <future>
#include <limits>
#include <list>
#include <map>
#include <mutex>
#include <random>
#include <thread>
#include <utility>

#include "absl/strings/escaping.h"
#include "absl/strings/str_cat.h"
#include "absl/strings/str_join.h"
#include "crypto/chunked.h"
#include "crypto/hkdf.h"
#include "crypto/key_file.h"
#include "crypto/object_context.h"
#include "crypto/random.h"
#include "crypto/secret_bytes.h"
#include "google/protobuf/util/time_util.h"
#include "key_service/wrapped_key.h"
#include "rpc/printable.h"
#include "rpc/status.h"

namespace residency::client {
namespace {

using ::residency::crypto::SecretBytes;
using ::residency::v1::KeyInfo;
using ::residency::v1::ObjectHeader;
using ::residency::v1::ObjectInfo;
using ::residency::v1::ObjectRef;
using ::residency::v1::WrappedKey;

// Reads the plaintext in pieces of at most this many bytes.
constexpr size_t kReadBytes = 64 * 1024;
// How long an upload stream opened ahead may wait for the data keys before
// a Put opens a fresh one instead.
constexpr absl::Duration kEarlyStreamWait = absl::Seconds(1);
// A message this close to full goes out rather than waiting for a piece too
// small to be worth its own read.
constexpr size_t kMessageSlack = 512;
// The version a device key wraps under: device keys have one version.
constexpr uint32_t kDeviceKeyVersion = 1;
// Share sizes: each share is a full 256-bit key.
constexpr size_t kShareSize = key_service::kDataKeySize;

// Moves a plaintext key out of a response field into SecretBytes.
SecretBytes TakeKey(std::string* field) {
  SecretBytes key = SecretBytes::CopyFrom(*field);
  crypto::WipeString(field);
  return key;
}

residency::v1::CustodyMode ToProto(CustodyMode mode) {
  switch (mode) {
    case CustodyMode::kCustodian:
      return residency::v1::CUSTODY_MODE_CUSTODIAN;
    case CustodyMode::kE2e:
      return residency::v1::CUSTODY_MODE_E2E;
    case CustodyMode::kSplit:
      return residency::v1::CUSTODY_MODE_SPLIT;
  }
  return residency::v1::CUSTODY_MODE_UNSPECIFIED;
}

// Appends the next ciphertext bytes of an upload to `out`, never letting it
// grow beyond the message size; sets *finished after the last.
using CiphertextSource =
    std::function<absl::Status(std::string* out, bool* finished)>;

}  // namespace

std::string DescribeObject(const ObjectRef& object) {
  return absl::StrCat("object '", rpc::Printable(object.owner()), "/",
                      rpc::Printable(object.object_id()), "' v",
                      object.version());
}

absl::StatusOr<SecretBytes> DeriveDataKey(CustodyMode mode,
                                          const SecretBytes& share1,
                                          const SecretBytes& share2,
                                          absl::string_view object_context) {
  if (share1.size() != kShareSize || share2.size() != kShareSize) {
    return absl::DataLossError(absl::StrCat("a key share is not ", kShareSize,
                                            " bytes: ", share1.size(), ", ",
                                            share2.size()));
  }
  SecretBytes ikm(2 * kShareSize);
  std::copy(share1.data(), share1.data() + kShareSize, ikm.mutable_data());
  std::copy(share2.data(), share2.data() + kShareSize,
            ikm.mutable_data() + kShareSize);
  std::string info("residency/dek/v1");
  info.push_back('\0');
  absl::StrAppend(&info, CustodyModeName(mode));
  info.push_back('\0');
  absl::StrAppend(&info, object_context);
  return crypto::Hkdf(crypto::HkdfHash::kSha256, ikm, /*salt=*/"", info,
                      key_service::kDataKeySize);
}

absl::StatusOr<CustodyMode> ParseCustodyMode(absl::string_view name) {
  if (name == "custodian") return CustodyMode::kCustodian;
  if (name == "e2e") return CustodyMode::kE2e;
  if (name == "split") return CustodyMode::kSplit;
  return absl::InvalidArgumentError(
      absl::StrCat("unknown custody mode '", rpc::Printable(name),
                   "': use custodian, e2e or split"));
}

absl::string_view CustodyModeName(CustodyMode mode) {
  switch (mode) {
    case CustodyMode::kCustodian:
      return "custodian";
    case CustodyMode::kE2e:
      return "e2e";
    case CustodyMode::kSplit:
      return "split";
  }
  return "unknown";
}

absl::StatusOr<std::shared_ptr<const DeviceKey>> LoadDeviceKey(
    const std::string& path, bool create) {
  absl::StatusOr<SecretBytes> key =
      crypto::LoadOrCreateKeyFile(path, {.what = "device key",
                                         .size = key_service::kDataKeySize,
                                         .create_if_missing = create});
  if (!key.ok()) return key.status();
  unsigned char digest[SHA256_DIGEST_LENGTH];
  SHA256(key->data(), key->size(), digest);
  auto device = std::make_shared<DeviceKey>();
  device->key_id =
      absl::StrCat("device-", absl::BytesToHexString(absl::string_view(
                                  reinterpret_cast<const char*>(digest), 8)));
  device->key = *std::move(key);
  return std::shared_ptr<const DeviceKey>(std::move(device));
}

// ------------------------------------------------------------------ Impl

class Client::Impl {
 public:
  explicit Impl(const ClientOptions& options) : options_(options) {
    for (const KeyServiceTarget& target : options.key_services) {
      keys_.push_back(residency::v1::KeyService::NewStub(target.channel));
    }
    if (options.storage != nullptr) {
      storage_ = residency::v1::StorageNode::NewStub(options.storage);
    }
  }

  residency::v1::RequestMetadata Metadata() const {
    residency::v1::RequestMetadata metadata;
    metadata.set_request_id(
        absl::BytesToHexString(crypto::RandomBytes(8).value_or("00000000")));
    metadata.mutable_justification()->set_reason(
        residency::v1::Justification::CUSTOMER_INITIATED_ACCESS);
    return metadata;
  }

  // Runs `call` with a fresh context and deadline, again after a backoff
  // while it fails with UNAVAILABLE and attempts remain.
  template <typename Call>
  absl::Status WithRetry(Call&& call) {
    absl::Duration backoff = options_.retry.initial_backoff;
    for (int attempt = 1;; ++attempt) {
      grpc::ClientContext context;
      context.set_deadline(absl::ToChronoTime(absl::Now() + options_.deadline));
      absl::Status status = call(&context);
      if (!absl::IsUnavailable(status) ||
          attempt >= std::max(1, options_.retry.max_attempts)) {
        return status;
      }
      Backoff(&backoff);
    }
  }

  void Backoff(absl::Duration* backoff) {
    double jitter;
    {
      std::lock_guard<std::mutex> lock(mu_);
      jitter = std::uniform_real_distribution<double>(1.0, 1.2)(rng_);
    }
    absl::SleepFor(*backoff * jitter);
    *backoff = std::min(*backoff * 2, options_.retry.max_backoff);
  }

  residency::v1::KeyService::Stub* keys(size_t i) { return keys_[i].get(); }

  // One KEK administration call at key service `service`.
  template <typename Request, typename Response>
  absl::StatusOr<KeyInfo> KeyCall(
      size_t service, Request request,
      grpc::Status (residency::v1::KeyService::Stub::*method)(
          grpc::ClientContext*, const Request&, Response*)) {
    if (service >= keys_.size()) {
      return absl::InvalidArgumentError(
          absl::StrCat("no key service ", service + 1, " is configured"));
    }
    *request.mutable_metadata() = Metadata();
    Response response;
    absl::Status status = WithRetry([&](grpc::ClientContext* context) {
      return rpc::FromGrpcStatus(
          (keys_[service].get()->*method)(context, request, &response));
    });
    if (!status.ok()) return status;
    return std::move(*response.mutable_key());
  }
  residency::v1::StorageNode::Stub* storage() { return storage_.get(); }

  // FAILED_PRECONDITION naming what a call needs and this client lacks.
  absl::Status NeedStorage() const {
    if (storage_ != nullptr) return absl::OkStatus();
    return absl::FailedPreconditionError(
        "this client has no storage node configured");
  }
  absl::Status NeedKeyService() const {
    if (!keys_.empty()) return absl::OkStatus();
    return absl::FailedPreconditionError(
        "this client has no key service configured");
  }

  // GenerateDataKey at key service `service` for `object`: the plaintext
  // key (a share in E2E and SPLIT) and its wrap.
  absl::Status Generate(size_t service, const ObjectRef& object,
                        SecretBytes* key, WrappedKey* wrapped) {
    const KeyServiceTarget& target = options_.key_services[service];
    if (target.key_id.empty()) {
      return absl::FailedPreconditionError(absl::StrCat(
          "no key id for key service ", service + 1,
          ": new objects need the KEK that wraps their data keys"));
    }
    residency::v1::GenerateDataKeyRequest request;
    *request.mutable_metadata() = Metadata();
    request.set_key_id(target.key_id);
    *request.mutable_context() = object;
    residency::v1::GenerateDataKeyResponse response;
    absl::Status status = WithRetry([&](grpc::ClientContext* context) {
      return rpc::FromGrpcStatus(
          keys(service)->GenerateDataKey(context, request, &response));
    });
    if (!status.ok()) return status;
    return TakeGenerated(service, &response, key, wrapped);
  }

  absl::Status TakeGenerated(size_t service,
                             residency::v1::GenerateDataKeyResponse* response,
                             SecretBytes* key, WrappedKey* wrapped) {
    if (response->plaintext_key().size() != kShareSize) {
      return absl::InternalError(
          absl::StrCat("key service ", service + 1, " returned a data key of ",
                       response->plaintext_key().size(), " bytes"));
    }
    *key = TakeKey(response->mutable_plaintext_key());
    *wrapped = std::move(*response->mutable_wrapped_key());
    return absl::OkStatus();
  }

  // A GenerateDataKey sent ahead, answered while the Put prepares its
  // upload.
  //  - Alone (custodian and e2e custody), it runs on its own completion
  //    queue, and the thread that waits for the answer reads it itself, as
  //    a blocking call would: no hand-off from another thread.
  //  - Two at once (split custody, `own_queue` false) run on gRPC's
  //    callback threads, so that their answers are taken in side by side
  //    rather than one after the other (the simulator's links, for one,
  //    spend their modelled response delay in that step).
  struct PendingKey {
    // The call writes into this object: it must not go before the call
    // completes. An answer nobody waits for any more is cancelled.
    ~PendingKey() {
      if (!answered) {
        context.TryCancel();
        Wait();
      }
    }
    grpc::Status Wait() {
      if (answered) return status;
      answered = true;
      if (!own_queue) return status = result.get();
      void* tag;
      bool ok;
      queue.Next(&tag, &ok);
      return status;
    }
    bool own_queue = true;
    grpc::CompletionQueue queue;
    grpc::ClientContext context;
    residency::v1::GenerateDataKeyRequest request;
    residency::v1::GenerateDataKeyResponse response;
    grpc::Status status;
    std::unique_ptr<
        grpc::ClientAsyncResponseReader<residency::v1::GenerateDataKeyResponse>>
        call;
    std::promise<grpc::Status> done;
    std::future<grpc::Status> result = done.get_future();
    bool answered = false;
  };

  // Sends GenerateDataKey for `object` to key service `service` without
  // waiting; nullptr when the service has no key id (Generate says why).
  std::unique_ptr<PendingKey> StartGenerate(size_t service,
                                            const ObjectRef& object) {
    const KeyServiceTarget& target = options_.key_services[service];
    if (target.key_id.empty()) return nullptr;
    auto pending = std::make_unique<PendingKey>();
    pending->context.set_deadline(
        absl::ToChronoTime(absl::Now() + options_.deadline));
    *pending->request.mutable_metadata() = Metadata();
    pending->request.set_key_id(target.key_id);
    *pending->request.mutable_context() = object;
    PendingKey* p = pending.get();
    if (options_.mode == CustodyMode::kSplit) {
      p->own_queue = false;
      keys(service)->async()->GenerateDataKey(
          &p->context, &p->request, &p->response,
          [p](grpc::Status status) { p->done.set_value(std::move(status)); });
      return pending;
    }
    p->call =
        keys(service)->AsyncGenerateDataKey(&p->context, p->request, &p->queue);
    p->call->Finish(&p->response, &p->status, p);
    return pending;
  }

  // The result of a StartGenerate, waited for; UNAVAILABLE is retried by
  // asking again.
  absl::Status FinishGenerate(size_t service, const ObjectRef& object,
                              PendingKey* pending, SecretBytes* key,
                              WrappedKey* wrapped) {
    if (pending == nullptr) return Generate(service, object, key, wrapped);
    absl::Status status = rpc::FromGrpcStatus(pending->Wait());
    if (absl::IsUnavailable(status)) {
      return Generate(service, object, key, wrapped);
    }
    if (!status.ok()) return status;
    return TakeGenerated(service, &pending->response, key, wrapped);
  }

  // The version a Put of `object_id` will most likely get: one above the
  // last this client wrote, or 1. None after the largest version: then the
  // Put looks up (and fails, saying why) without asking for a data key.
  std::optional<uint64_t> GuessVersion(const std::string& object_id) {
    std::lock_guard<std::mutex> lock(mu_);
    auto it = written_.find(object_id);
    if (it == written_.end()) return 1;
    if (it->second == std::numeric_limits<uint64_t>::max()) {
      return std::nullopt;
    }
    return it->second + 1;
  }

  void Wrote(const ObjectRef& object) {
    std::lock_guard<std::mutex> lock(mu_);
    // A bounded memory: forgetting only costs a wrong guess.
    if (written_.size() >= 4096) written_.clear();
    uint64_t& last = written_[object.object_id()];
    last = std::max(last, object.version());
  }

  // This client deleted `version` of `object_id` (0: every version): once
  // its last write is gone, an older latest version is no rollback.
  void Deleted(const std::string& object_id, uint64_t version) {
    std::lock_guard<std::mutex> lock(mu_);
    auto it = written_.find(object_id);
    if (it != written_.end() && (version == 0 || version == it->second)) {
      written_.erase(it);
    }
  }

  // Which configured key service holds the KEK of `wrapped`.
  absl::StatusOr<size_t> Route(const ObjectHeader& header,
                               const WrappedKey& wrapped) const {
    const auto& targets = options_.key_services;
    for (size_t i = 0; i < targets.size(); ++i) {
      if (!targets[i].principal.empty() &&
          targets[i].principal == wrapped.key_service()) {
        return i;
      }
    }
    const size_t position = wrapped.share_index() <= 1 ? 0 : 1;
    if (position < targets.size() && targets[position].principal.empty()) {
      return position;
    }
    return absl::FailedPreconditionError(
        absl::StrCat(DescribeObject(header.object()), " needs key service '",
                     rpc::Printable(wrapped.key_service()), "' (jurisdiction ",
                     rpc::Printable(wrapped.jurisdiction()), ", key '",
                     rpc::Printable(wrapped.key_id()), "') for share ",
                     wrapped.share_index(), "; this client is configured with ",
                     targets.size(), " key service(s) and none of them is it"));
  }

  absl::StatusOr<SecretBytes> Unwrap(const ObjectHeader& header,
                                     const WrappedKey& wrapped) {
    absl::StatusOr<size_t> service = Route(header, wrapped);
    if (!service.ok()) return service.status();
    residency::v1::UnwrapRequest request;
    *request.mutable_metadata() = Metadata();
    *request.mutable_wrapped_key() = wrapped;
    *request.mutable_context() = header.object();
    residency::v1::UnwrapResponse response;
    absl::Status status = WithRetry([&](grpc::ClientContext* context) {
      return rpc::FromGrpcStatus(
          keys(*service)->Unwrap(context, request, &response));
    });
    // The key service refuses a wrapped key that does not authenticate for
    // this object as malformed input; for the reader that means the stored
    // header was tampered with or belongs to another object.
    if (absl::IsInvalidArgument(status)) {
      return absl::DataLossError(absl::StrCat(
          DescribeObject(header.object()),
          ": its wrapped data key does not open for this object (tampered, "
          "or taken from another object or version): ",
          status.message()));
    }
    if (!status.ok()) return status;
    return TakeKey(response.mutable_plaintext_key());
  }

  absl::StatusOr<SecretBytes> UnwrapDevice(const ObjectHeader& header,
                                           const WrappedKey& wrapped,
                                           absl::string_view context) {
    const DeviceKey* device = options_.device_key.get();
    if (device == nullptr) {
      return absl::FailedPreconditionError(
          absl::StrCat(DescribeObject(header.object()),
                       " is end-to-end encrypted: reading it "
                       "needs device key '",
                       rpc::Printable(wrapped.key_id()),
                       "', and this client has no device key"));
    }
    if (device->key_id != wrapped.key_id()) {
      return absl::FailedPreconditionError(absl::StrCat(
          DescribeObject(header.object()),
          " is end-to-end encrypted under device "
          "key '",
          rpc::Printable(wrapped.key_id()), "'; this client's device key is '",
          device->key_id, "'"));
    }
    absl::StatusOr<SecretBytes> share = key_service::UnwrapDataKey(
        device->key, device->key_id, wrapped.key_version(), context,
        wrapped.wrapped());
    if (!share.ok()) {
      return absl::DataLossError(absl::StrCat(
          DescribeObject(header.object()),
          ": its device-wrapped key share does not open for this object: ",
          share.status().message()));
    }
    return share;
  }

  // The DEK of a stored object, by the custody mode its header records.
  absl::StatusOr<SecretBytes> DataKeyFor(const ObjectHeader& header,
                                         absl::string_view context) {
    const auto& entries = header.wrapped_keys();
    const WrappedKey* share[3] = {nullptr, nullptr, nullptr};
    for (const WrappedKey& k : entries) {
      if (k.share_index() < 3 && share[k.share_index()] == nullptr) {
        share[k.share_index()] = &k;
      }
    }
    // The node checks header shapes on Put; a header that breaks them now
    // was altered after it was stored.
    auto malformed = [&](absl::string_view why) {
      return absl::DataLossError(absl::StrCat(
          DescribeObject(header.object()), ": its stored header is malformed (",
          why, "): tampered with after it was stored"));
    };
    switch (header.custody_mode()) {
      case residency::v1::CUSTODY_MODE_CUSTODIAN:
        if (entries.size() != 1 || share[0] == nullptr ||
            share[0]->wrapper() != WrappedKey::KEY_SERVICE) {
          return malformed("custodian custody needs one key-service wrap");
        }
        return Unwrap(header, *share[0]);
      case residency::v1::CUSTODY_MODE_E2E: {
        if (entries.size() != 2 || share[1] == nullptr || share[2] == nullptr ||
            share[1]->wrapper() != WrappedKey::KEY_SERVICE ||
            share[2]->wrapper() != WrappedKey::DEVICE) {
          return malformed(
              "e2e custody needs a key-service share 1 and a device share 2");
        }
        // The local share first: without the device key there is no point
        // asking (and auditing) the key service.
        absl::StatusOr<SecretBytes> device =
            UnwrapDevice(header, *share[2], context);
        if (!device.ok()) return device.status();
        absl::StatusOr<SecretBytes> service = Unwrap(header, *share[1]);
        if (!service.ok()) return service.status();
        return DeriveDataKey(CustodyMode::kE2e, *service, *device, context);
      }
      case residency::v1::CUSTODY_MODE_SPLIT: {
        if (entries.size() != 2 || share[1] == nullptr || share[2] == nullptr ||
            share[1]->wrapper() != WrappedKey::KEY_SERVICE ||
            share[2]->wrapper() != WrappedKey::KEY_SERVICE) {
          return malformed("split custody needs two key-service shares");
        }
        // Both routes first, so a client lacking the second key service
        // says so before the first one audits an Unwrap.
        for (const WrappedKey* k : {share[1], share[2]}) {
          if (absl::StatusOr<size_t> r = Route(header, *k); !r.ok()) {
            return r.status();
          }
        }
        absl::StatusOr<SecretBytes> first = Unwrap(header, *share[1]);
        if (!first.ok()) return first.status();
        absl::StatusOr<SecretBytes> second = Unwrap(header, *share[2]);
        if (!second.ok()) return second.status();
        return DeriveDataKey(CustodyMode::kSplit, *first, *second, context);
      }
      default:
        return malformed(
            absl::StrCat("unknown custody mode ", header.custody_mode()));
    }
  }

  // The read path's data key, through the cache when it is on.
  absl::StatusOr<SecretBytes> CachedDataKeyFor(const ObjectHeader& header,
                                               absl::string_view context) {
    if (options_.cache.max_entries == 0) return DataKeyFor(header, context);
    // Everything the key depends on: the object and every wrap.
    std::string cache_key(context);
    for (const WrappedKey& k : header.wrapped_keys()) {
      absl::StrAppend(&cache_key, "|", k.SerializeAsString());
    }
    absl::StrAppend(&cache_key, "|", header.custody_mode());
    {
      std::lock_guard<std::mutex> lock(mu_);
      auto it = cache_.find(cache_key);
      if (it != cache_.end()) {
        if (absl::Now() < it->second.expires) {
          lru_.splice(lru_.begin(), lru_, it->second.position);
          return SecretBytes::CopyFrom(absl::string_view(
              reinterpret_cast<const char*>(it->second.key.data()),
              it->second.key.size()));
        }
        lru_.erase(it->second.position);
        cache_.erase(it);
      }
    }
    absl::StatusOr<SecretBytes> key = DataKeyFor(header, context);
    if (!key.ok()) return key;
    std::lock_guard<std::mutex> lock(mu_);
    if (cache_.find(cache_key) == cache_.end()) {
      while (cache_.size() >= options_.cache.max_entries) {
        cache_.erase(lru_.back());
        lru_.pop_back();
      }
      lru_.push_front(cache_key);
      cache_.emplace(
          cache_key,
          CacheEntry{
              SecretBytes::CopyFrom(absl::string_view(
                  reinterpret_cast<const char*>(key->data()), key->size())),
              absl::Now() + options_.cache.ttl, lru_.begin()});
    }
    return key;
  }

  // A Put stream, open before its header is sent: opening it can overlap
  // with waiting for the data key. One left without an answer is
  // cancelled.
  struct UploadStream {
    ~UploadStream() {
      if (!answered) {
        context.TryCancel();
        writer->Finish();
      }
    }
    grpc::ClientContext context;
    residency::v1::PutResponse response;
    std::unique_ptr<grpc::ClientWriter<residency::v1::PutRequest>> writer;
    bool answered = false;
  };

  std::unique_ptr<UploadStream> OpenUpload(uint64_t ciphertext_length) {
    auto stream = std::make_unique<UploadStream>();
    // A whole upload may take longer than one call's deadline.
    stream->context.set_deadline(absl::ToChronoTime(
        absl::Now() + options_.deadline +
        absl::Seconds(static_cast<double>(ciphertext_length) / (8 << 20))));
    stream->writer = storage()->Put(&stream->context, &stream->response);
    return stream;
  }

  // Sends `header` on `stream`, then what `source` produces, cut into
  // messages of at most options_.message_bytes.
  absl::StatusOr<ObjectRef> Upload(UploadStream& stream,
                                   const ObjectHeader& header,
                                   const CiphertextSource& source) {
    grpc::ClientWriter<residency::v1::PutRequest>* writer = stream.writer.get();
    residency::v1::PutRequest message;
    *message.mutable_start()->mutable_metadata() = Metadata();
    *message.mutable_start()->mutable_header() = header;
    bool open = writer->Write(message);
    // The source appends to the message itself; a message goes out when the
    // source says it is full (or done), so no byte is copied twice.
    std::string* data = message.mutable_data();
    data->reserve(options_.message_bytes);
    absl::Status local;
    bool finished = false;
    while (open && !finished) {
      const size_t before = data->size();
      local = source(data, &finished);
      if (!local.ok()) break;
      const bool stalled = data->size() == before;
      if (stalled && data->empty() && !finished) {
        local = absl::InternalError("upload source made no progress");
        break;
      }
      // Only a message size below one sealed chunk overfills a message.
      while (open && data->size() > options_.message_bytes) {
        std::string rest = data->substr(options_.message_bytes);
        data->resize(options_.message_bytes);
        open = writer->Write(message);
        *data = std::move(rest);
      }
      if (open && !data->empty() &&
          (finished || stalled ||
           data->size() + kMessageSlack >= options_.message_bytes)) {
        open = writer->Write(message);
        data->clear();
      }
    }
    if (!local.ok()) return local;  // ~UploadStream cancels the call.
    writer->WritesDone();
    stream.answered = true;
    absl::Status status = rpc::FromGrpcStatus(writer->Finish());
    if (!status.ok()) return status;
    return stream.response.object();
  }

  // One attempt at a Get; *wrote says whether any output was written.
  absl::StatusOr<ObjectHeader> GetOnce(const residency::v1::GetRequest& request,
                                       std::ostream& output,
                                       std::optional<Range> range,
                                       const ProgressFn& progress, bool* wrote);

 private:
  struct CacheEntry {
    SecretBytes key;
    absl::Time expires;
    std::list<std::string>::iterator position;
  };

  const ClientOptions& options_;
  std::vector<std::unique_ptr<residency::v1::KeyService::Stub>> keys_;
  std::unique_ptr<residency::v1::StorageNode::Stub> storage_;
  std::mutex mu_;
  std::mt19937_64 rng_{std::random_device{}()};
  std::map<std::string, CacheEntry> cache_;
  std::list<std::string> lru_;               // Most recently used first.
  std::map<std::string, uint64_t> written_;  // Object id -> last version.
};

absl::StatusOr<ObjectHeader> Client::Impl::GetOnce(
    const residency::v1::GetRequest& request, std::ostream& output,
    std::optional<Range> range, const ProgressFn& progress, bool* wrote) {
  const ObjectRef& asked = request.object();
  grpc::ClientContext context;
  context.set_deadline(
      absl::ToChronoTime(absl::Now() + options_.deadline * 10));
  auto reader = storage()->Get(&context, request);
  auto abandon = [&](absl::Status status) {
    context.TryCancel();
    reader->Finish();
    return status;
  };
  residency::v1::GetResponse message;
  if (!reader->Read(&message) || !message.has_start()) {
    absl::Status status = rpc::FromGrpcStatus(reader->Finish());
    return status.ok() ? absl::DataLossError(
                             "the storage node's Get began without a header")
                       : status;
  }
  const residency::v1::GetResponse::Start start = message.start();
  const ObjectHeader& header = start.header();
  // The node answers with what it holds; what the client asked for is what
  // the ciphertext must be bound to.
  if (header.object().owner() != asked.owner() ||
      header.object().object_id() != asked.object_id() ||
      (asked.version() != 0 && header.object().version() != asked.version())) {
    return abandon(absl::DataLossError(absl::StrCat(
        "the storage node answered with ", DescribeObject(header.object()),
        " for a request of '", rpc::Printable(asked.object_id()), "' v",
        asked.version())));
  }
  // A node can serve an older version, genuine header and all, for "the
  // latest"; the client catches that for the versions it wrote itself.
  if (asked.version() == 0) {
    uint64_t wrote = 0;
    {
      std::lock_guard<std::mutex> lock(mu_);
      auto it = written_.find(asked.object_id());
      if (it != written_.end()) wrote = it->second;
    }
    if (header.object().version() < wrote) {
      return abandon(absl::DataLossError(absl::StrCat(
          "the storage node answered with ", DescribeObject(header.object()),
          " as the latest version, but this client stored v", wrote,
          ": an older version served in place of the newer one (rollback)")));
    }
  }
  absl::StatusOr<std::string> context_bytes = crypto::EncodeObjectContext(
      header.object().owner(), header.object().object_id(),
      header.object().version());
  if (!context_bytes.ok()) return abandon(context_bytes.status());
  absl::StatusOr<SecretBytes> dek = CachedDataKeyFor(header, *context_bytes);
  if (!dek.ok()) return abandon(dek.status());

  absl::Status status;
  uint64_t written = 0;
  auto emit = [&](const std::string& plaintext) {
    if (plaintext.empty()) return;
    output.write(plaintext.data(),
                 static_cast<std::streamsize>(plaintext.size()));
    *wrote = true;
    written += plaintext.size();
    if (progress) progress(written);
  };
  if (!range.has_value()) {
    absl::StatusOr<crypto::ChunkedDecryptor> decryptor =
        crypto::ChunkedDecryptor::Create(*dek, *context_bytes);
    if (!decryptor.ok()) return abandon(decryptor.status());
    std::string plaintext;
    uint64_t received = 0;
    while (status.ok() && reader->Read(&message)) {
      received += message.data().size();
      plaintext.clear();
      status = decryptor->Update(message.data(), &plaintext);
      if (status.ok()) emit(plaintext);
    }
    if (status.ok()) {
      plaintext.clear();
      status = decryptor->Finish(&plaintext);
      if (status.ok()) emit(plaintext);
    }
    if (status.ok() && received != header.ciphertext_length()) {
      status = absl::DataLossError(absl::StrCat(
          DescribeObject(header.object()), ": received ", received,
          " ciphertext bytes, the header says ", header.ciphertext_length()));
    }
  } else {
    absl::StatusOr<crypto::ChunkedRangeDecryptor> decryptor =
        crypto::ChunkedRangeDecryptor::Create(*dek, *context_bytes,
                                              start.ciphertext_prefix(),
                                              header.ciphertext_length());
    if (!decryptor.ok()) return abandon(decryptor.status());
    // Only the chunks covering the range came; they are decrypted once all
    // have arrived (DecryptRange checks the whole span at once).
    std::string sealed;
    while (reader->Read(&message)) sealed += message.data();
    const uint64_t length =
        range->length == 0
            ? header.plaintext_length() -
                  std::min(range->offset, header.plaintext_length())
            : range->length;
    absl::StatusOr<std::string> plaintext =
        decryptor->DecryptRange(range->offset, length, sealed);
    if (plaintext.ok()) {
      emit(*plaintext);
    } else {
      status = plaintext.status();
    }
  }
  if (!status.ok()) {
    if (absl::IsDataLoss(status) || absl::IsInvalidArgument(status)) {
      status = absl::DataLossError(absl::StrCat(
          DescribeObject(header.object()),
          ": stored data does not authenticate: ", status.message()));
    }
    return abandon(status);
  }
  status = rpc::FromGrpcStatus(reader->Finish());
  if (!status.ok()) return status;
  return header;
}

namespace internal {

std::optional<uint64_t> LatestVersionTaken(const absl::Status& refusal,
                                           uint64_t refused) {
  if (!absl::IsAlreadyExists(refusal)) return std::nullopt;
  const std::optional<residency::v1::VersionTaken> taken =
      rpc::DetailOf<residency::v1::VersionTaken>(refusal);
  if (!taken.has_value()) return std::nullopt;
  const uint64_t latest = taken->latest_version();
  if (latest == 0 || latest < refused ||
      latest == std::numeric_limits<uint64_t>::max()) {
    return std::nullopt;
  }
  return latest;
}

}  // namespace internal

// ---------------------------------------------------------------- Client

Client::Client(ClientOptions options)
    : options_(std::move(options)), impl_(std::make_unique<Impl>(options_)) {}

Client::~Client() = default;

absl::StatusOr<std::unique_ptr<Client>> Client::Create(ClientOptions options) {
  if (options.owner.empty()) {
    return absl::InvalidArgumentError("a client needs an owner");
  }
  // Either may be missing for a client that only lists objects or only
  // manages keys; the calls that need it then fail FAILED_PRECONDITION.
  if (options.storage == nullptr && options.key_services.empty()) {
    return absl::InvalidArgumentError(
        "a client needs a storage node, a key service, or both");
  }
  for (const KeyServiceTarget& target : options.key_services) {
    if (target.channel == nullptr) {
      return absl::InvalidArgumentError("a key service target has no channel");
    }
  }
  if (options.mode == CustodyMode::kSplit && options.key_services.size() < 2) {
    return absl::InvalidArgumentError(
        "split custody needs two key services, in two jurisdictions");
  }
  if (options.mode == CustodyMode::kE2e && options.device_key == nullptr) {
    return absl::InvalidArgumentError("e2e custody needs a device key");
  }
  if (options.message_bytes < 1024 || options.message_bytes > (1 << 20)) {
    return absl::InvalidArgumentError("message_bytes must be 1 KiB - 1 MiB");
  }
  if (options.deadline <= absl::ZeroDuration()) {
    return absl::InvalidArgumentError("the deadline must be positive");
  }
  return std::unique_ptr<Client>(new Client(std::move(options)));
}

absl::StatusOr<ObjectRef> Client::Put(absl::string_view object_id,
                                      std::istream& input, uint64_t size,
                                      const ProgressFn& progress) {
  const std::istream::pos_type start = input.tellg();
  // An input that can be read again goes out at once under the guessed
  // version: right for a new object and for one this client wrote last, it
  // saves asking the node. A wrong guess (an object that exists but whose
  // last write this client did not make, or deleted) costs a refused
  // upload: the node refuses the header (ALREADY_EXISTS) before storing
  // anything, naming the latest version it holds, and the Put starts over
  // at once one above it, with a second data key. A refusal that names no
  // usable version (a node without VersionTaken) gets the lookup instead.
  const std::optional<uint64_t> expected =
      impl_->GuessVersion(std::string(object_id));
  VersionPick pick = !expected.has_value() ? VersionPick::kLookUp
                     : start == -1         ? VersionPick::kLookUpWithGuess
                                           : VersionPick::kGuess;
  uint64_t guess = expected.value_or(0);
  uint64_t reported = 0;
  ProgressFn forward;
  if (progress) {
    forward = [&](uint64_t done) {
      if (done <= reported) return;
      reported = done;
      progress(done);
    };
  }
  for (int attempt = 1;; ++attempt) {
    uint64_t tried = 0;
    absl::StatusOr<ObjectRef> stored =
        PutOnce(object_id, input, size, forward, pick, guess, &tried);
    if (!absl::IsAlreadyExists(stored.status()) ||
        attempt == kConcurrentWriterAttempts || start == -1) {
      return stored;
    }
    input.clear();
    input.seekg(start);
    if (!input) return stored;
    const bool wrong_guess = attempt == 1 && pick == VersionPick::kGuess;
    const std::optional<uint64_t> taken =
        internal::LatestVersionTaken(stored.status(), tried);
    if (taken.has_value()) {
      pick = VersionPick::kGuess;
      guess = *taken + 1;
    } else {
      pick = VersionPick::kLookUp;
    }
    if (wrong_guess) continue;
    // Another writer took the version: start over from the same bytes,
    // after a random pause that grows with the attempts, so that writers
    // that keep meeting spread out.
    thread_local std::mt19937_64 random{std::random_device{}()};
    std::this_thread::sleep_for(std::chrono::microseconds(
        random() % (static_cast<uint64_t>(attempt) * 10000 + 1)));
  }
}

absl::StatusOr<ObjectRef> Client::PutOnce(absl::string_view object_id,
                                          std::istream& input, uint64_t size,
                                          const ProgressFn& progress,
                                          VersionPick pick, uint64_t guess,
                                          uint64_t* tried) {
  if (absl::Status s = impl_->NeedStorage(); !s.ok()) return s;
  if (absl::Status s = impl_->NeedKeyService(); !s.ok()) return s;
  ObjectRef object;
  object.set_owner(options_.owner);
  object.set_object_id(std::string(object_id));
  // The writer picks the version: its guess, or one above the latest the
  // node holds. With kLookUpWithGuess the data keys are asked for the guess
  // during the lookup; when the node says otherwise that costs one more
  // GenerateDataKey, audited, its key discarded.
  const size_t services = options_.mode == CustodyMode::kSplit ? 2 : 1;
  object.set_version(guess);
  std::unique_ptr<Impl::PendingKey> pending[2];
  if (pick != VersionPick::kLookUp) {
    for (size_t i = 0; i < services; ++i) {
      pending[i] = impl_->StartGenerate(i, object);
    }
  }
  if (pick != VersionPick::kGuess) {
    const uint64_t guessed = object.version();
    residency::v1::HeadRequest head;
    *head.mutable_metadata() = impl_->Metadata();
    *head.mutable_object() = object;
    head.mutable_object()->set_version(0);
    residency::v1::HeadResponse latest;
    absl::Status status = impl_->WithRetry([&](grpc::ClientContext* context) {
      return rpc::FromGrpcStatus(
          impl_->storage()->Head(context, head, &latest));
    });
    if (status.ok()) {
      const uint64_t held = latest.object().header().object().version();
      if (held == std::numeric_limits<uint64_t>::max()) {
        ObjectRef largest = object;
        largest.set_version(held);
        return absl::OutOfRangeError(absl::StrCat(
            "the storage node holds ", DescribeObject(largest),
            ", the largest version there is: no later version can be "
            "written"));
      }
      object.set_version(held + 1);
    } else if (absl::IsNotFound(status)) {
      object.set_version(1);
    } else {
      return status;
    }
    if (object.version() != guessed) {
      for (auto& p : pending) p.reset();
    }
  }
  *tried = object.version();
  absl::StatusOr<std::string> context_bytes = crypto::EncodeObjectContext(
      object.owner(), object.object_id(), object.version());
  if (!context_bytes.ok()) return context_bytes.status();

  ObjectHeader header;
  *header.mutable_object() = object;
  header.set_custody_mode(ToProto(options_.mode));
  header.set_payload_algorithm(
      residency::v1::PAYLOAD_ALGORITHM_COBBLESTONE_256);
  header.set_plaintext_length(size);
  header.set_ciphertext_length(crypto::ChunkedCiphertextLength(size));
  for (const std::string& j : options_.residency) {
    header.mutable_residency()->add_allowed_jurisdictions(j);
  }
  *header.mutable_created_at() =
      google::protobuf::util::TimeUtil::NanosecondsToTimestamp(
          absl::ToUnixNanos(absl::Now()));

  // The upload stream opens while data keys asked for ahead are on their
  // way.
  std::unique_ptr<Impl::UploadStream> stream;
  if (pending[0] != nullptr) {
    stream = impl_->OpenUpload(header.ciphertext_length());
  }
  const absl::Time stream_opened = absl::Now();
  SecretBytes dek;
  SecretBytes first;
  WrappedKey* first_wrap = header.add_wrapped_keys();
  if (absl::Status s = impl_->FinishGenerate(0, object, pending[0].get(),
                                             &first, first_wrap);
      !s.ok()) {
    return s;
  }
  switch (options_.mode) {
    case CustodyMode::kCustodian:
      first_wrap->set_share_index(0);
      dek = std::move(first);
      break;
    case CustodyMode::kE2e: {
      first_wrap->set_share_index(1);
      absl::StatusOr<SecretBytes> second = crypto::RandomSecret(kShareSize);
      if (!second.ok()) return second.status();
      const DeviceKey& device = *options_.device_key;
      absl::StatusOr<std::string> wrapped =
          key_service::WrapDataKey(device.key, device.key_id, kDeviceKeyVersion,
                                   *context_bytes, *second);
      if (!wrapped.ok()) return wrapped.status();
      WrappedKey* device_wrap = header.add_wrapped_keys();
      device_wrap->set_wrapper(WrappedKey::DEVICE);
      device_wrap->set_key_id(device.key_id);
      device_wrap->set_key_version(kDeviceKeyVersion);
      device_wrap->set_wrapped(*std::move(wrapped));
      device_wrap->set_share_index(2);
      absl::StatusOr<SecretBytes> derived =
          DeriveDataKey(CustodyMode::kE2e, first, *second, *context_bytes);
      if (!derived.ok()) return derived.status();
      dek = *std::move(derived);
      break;
    }
    case CustodyMode::kSplit: {
      first_wrap->set_share_index(1);
      SecretBytes second;
      WrappedKey* second_wrap = header.add_wrapped_keys();
      if (absl::Status s = impl_->FinishGenerate(1, object, pending[1].get(),
                                                 &second, second_wrap);
          !s.ok()) {
        return s;
      }
      second_wrap->set_share_index(2);
      // One jurisdiction holding both shares would defeat the point.
      if (first_wrap->jurisdiction().empty() ||
          first_wrap->jurisdiction() == second_wrap->jurisdiction()) {
        return absl::FailedPreconditionError(absl::StrCat(
            "split custody needs key services in two jurisdictions; both "
            "are '",
            rpc::Printable(first_wrap->jurisdiction()), "'"));
      }
      absl::StatusOr<SecretBytes> derived =
          DeriveDataKey(CustodyMode::kSplit, first, second, *context_bytes);
      if (!derived.ok()) return derived.status();
      dek = *std::move(derived);
      break;
    }
  }

  // A stream that waited long for the keys (a retry, a slow key service)
  // has used up part of its deadline and held a call slot at the node:
  // a fresh one replaces it.
  if (stream == nullptr || absl::Now() - stream_opened > kEarlyStreamWait) {
    stream.reset();  // Its slot at the node first.
    stream = impl_->OpenUpload(header.ciphertext_length());
  }
  absl::StatusOr<crypto::ChunkedEncryptor> encryptor =
      crypto::ChunkedEncryptor::Create(dek, *context_bytes);
  if (!encryptor.ok()) return encryptor.status();
  std::string plaintext(kReadBytes, '\0');
  uint64_t read = 0;
  bool header_sent = false;
  // Fills each message as far as whole sealed chunks fit, so messages go
  // out without being cut or copied.
  auto source = [&](std::string* out, bool* finished) -> absl::Status {
    const size_t used = out->size();
    const size_t room =
        used < options_.message_bytes ? options_.message_bytes - used : 0;
    if (!header_sent) {
      out->append(encryptor->header());
      header_sent = true;
      return absl::OkStatus();
    }
    if (read == size) {
      if (used > 0 && encryptor->FinishOutputSize() > room) {
        return absl::OkStatus();  // Send what is there first.
      }
      *finished = true;
      return encryptor->Finish(out);
    }
    size_t want =
        static_cast<size_t>(std::min<uint64_t>(kReadBytes, size - read));
    while (used > 0 && want > crypto::kChunkSize &&
           encryptor->UpdateOutputSize(want) > room) {
      want -= crypto::kChunkSize;
    }
    if (used > 0 && encryptor->UpdateOutputSize(want) > room) {
      return absl::OkStatus();  // Send what is there first.
    }
    input.read(plaintext.data(), static_cast<std::streamsize>(want));
    const size_t got = static_cast<size_t>(input.gcount());
    if (got == 0) {
      return absl::InvalidArgumentError(
          absl::StrCat("input ended after ", read, " of ", size, " bytes"));
    }
    read += got;
    absl::Status s =
        encryptor->Update(absl::string_view(plaintext.data(), got), out);
    if (s.ok() && progress) progress(read);
    return s;
  };
  absl::StatusOr<ObjectRef> stored = impl_->Upload(*stream, header, source);
  if (stored.ok()) impl_->Wrote(*stored);
  return stored;
}

absl::StatusOr<ObjectRef> Client::PutSealed(const ObjectHeader& header,
                                            std::istream& ciphertext) {
  if (absl::Status s = impl_->NeedStorage(); !s.ok()) return s;
  const uint64_t size = header.ciphertext_length();
  uint64_t read = 0;
  auto source = [&](std::string* out, bool* finished) -> absl::Status {
    if (read == size) {
      *finished = true;
      return absl::OkStatus();
    }
    const size_t old = out->size();
    const size_t want = static_cast<size_t>(std::min<uint64_t>(
        old < options_.message_bytes ? options_.message_bytes - old : 0,
        size - read));
    if (want == 0) return absl::OkStatus();  // Send what is there first.
    out->resize(old + want);
    ciphertext.read(out->data() + old, static_cast<std::streamsize>(want));
    const size_t got = static_cast<size_t>(ciphertext.gcount());
    out->resize(old + got);
    if (got == 0) {
      return absl::InvalidArgumentError(absl::StrCat(
          "ciphertext ended after ", read, " of ", size, " bytes"));
    }
    read += got;
    return absl::OkStatus();
  };
  std::unique_ptr<Impl::UploadStream> stream =
      impl_->OpenUpload(header.ciphertext_length());
  return impl_->Upload(*stream, header, source);
}

absl::StatusOr<ObjectHeader> Client::Get(absl::string_view object_id,
                                         uint64_t version, std::ostream& output,
                                         std::optional<Range> range,
                                         const ProgressFn& progress) {
  if (absl::Status s = impl_->NeedStorage(); !s.ok()) return s;
  residency::v1::GetRequest request;
  *request.mutable_metadata() = impl_->Metadata();
  request.mutable_object()->set_owner(options_.owner);
  request.mutable_object()->set_object_id(std::string(object_id));
  request.mutable_object()->set_version(version);
  if (range.has_value()) {
    request.mutable_range()->set_offset(range->offset);
    request.mutable_range()->set_length(range->length);
  }
  absl::Duration backoff = options_.retry.initial_backoff;
  for (int attempt = 1;; ++attempt) {
    bool wrote = false;
    absl::StatusOr<ObjectHeader> header =
        impl_->GetOnce(request, output, range, progress, &wrote);
    // Once output was written a retry would repeat it.
    if (header.ok() || !absl::IsUnavailable(header.status()) || wrote ||
        attempt >= std::max(1, options_.retry.max_attempts)) {
      return header;
    }
    impl_->Backoff(&backoff);
  }
}

absl::StatusOr<ObjectInfo> Client::Head(absl::string_view object_id,
                                        uint64_t version) {
  if (absl::Status s = impl_->NeedStorage(); !s.ok()) return s;
  residency::v1::HeadRequest request;
  *request.mutable_metadata() = impl_->Metadata();
  request.mutable_object()->set_owner(options_.owner);
  request.mutable_object()->set_object_id(std::string(object_id));
  request.mutable_object()->set_version(version);
  residency::v1::HeadResponse response;
  absl::Status status = impl_->WithRetry([&](grpc::ClientContext* context) {
    return rpc::FromGrpcStatus(
        impl_->storage()->Head(context, request, &response));
  });
  if (!status.ok()) return status;
  return std::move(*response.mutable_object());
}

absl::StatusOr<std::vector<ObjectInfo>> Client::List(absl::string_view prefix,
                                                     bool all_versions) {
  if (absl::Status s = impl_->NeedStorage(); !s.ok()) return s;
  residency::v1::ListRequest request;
  *request.mutable_metadata() = impl_->Metadata();
  request.set_owner(options_.owner);
  request.set_object_id_prefix(std::string(prefix));
  request.set_all_versions(all_versions);
  request.set_page_size(1000);
  std::vector<ObjectInfo> objects;
  do {
    residency::v1::ListResponse response;
    absl::Status status = impl_->WithRetry([&](grpc::ClientContext* context) {
      return rpc::FromGrpcStatus(
          impl_->storage()->List(context, request, &response));
    });
    if (!status.ok()) return status;
    for (ObjectInfo& info : *response.mutable_objects()) {
      objects.push_back(std::move(info));
    }
    request.set_page_token(response.next_page_token());
  } while (!request.page_token().empty());
  return objects;
}

absl::StatusOr<uint64_t> Client::Delete(absl::string_view object_id,
                                        uint64_t version) {
  if (absl::Status s = impl_->NeedStorage(); !s.ok()) return s;
  residency::v1::DeleteRequest request;
  *request.mutable_metadata() = impl_->Metadata();
  request.mutable_object()->set_owner(options_.owner);
  request.mutable_object()->set_object_id(std::string(object_id));
  request.mutable_object()->set_version(version);
  residency::v1::DeleteResponse response;
  absl::Status status = impl_->WithRetry([&](grpc::ClientContext* context) {
    return rpc::FromGrpcStatus(
        impl_->storage()->Delete(context, request, &response));
  });
  // NOT_FOUND: already gone (an earlier try whose answer was lost, or
  // another client).
  if (status.ok() || absl::IsNotFound(status)) {
    impl_->Deleted(std::string(object_id), version);
  }
  if (!status.ok()) return status;
  return response.versions_deleted();
}

absl::StatusOr<KeyInfo> Client::CreateKey(absl::string_view key_id,
                                          size_t service) {
  residency::v1::CreateKeyRequest request;
  request.set_key_id(std::string(key_id));
  request.set_owner(options_.owner);
  return impl_->KeyCall(service, std::move(request),
                        &residency::v1::KeyService::Stub::CreateKey);
}

absl::StatusOr<KeyInfo> Client::RotateKey(absl::string_view key_id,
                                          size_t service) {
  residency::v1::RotateKeyRequest request;
  request.set_key_id(std::string(key_id));
  return impl_->KeyCall(service, std::move(request),
                        &residency::v1::KeyService::Stub::RotateKey);
}

absl::StatusOr<KeyInfo> Client::DisableKey(absl::string_view key_id,
                                           size_t service) {
  residency::v1::DisableKeyRequest request;
  request.set_key_id(std::string(key_id));
  return impl_->KeyCall(service, std::move(request),
                        &residency::v1::KeyService::Stub::DisableKey);
}

absl::StatusOr<KeyInfo> Client::EnableKey(absl::string_view key_id,
                                          size_t service) {
  residency::v1::EnableKeyRequest request;
  request.set_key_id(std::string(key_id));
  return impl_->KeyCall(service, std::move(request),
                        &residency::v1::KeyService::Stub::EnableKey);
}

absl::StatusOr<KeyInfo> Client::DestroyKey(absl::string_view key_id,
                                           size_t service) {
  residency::v1::DestroyKeyRequest request;
  request.set_key_id(std::string(key_id));
  return impl_->KeyCall(service, std::move(request),
                        &residency::v1::KeyService::Stub::DestroyKey);
}

absl::StatusOr<KeyInfo> Client::GetKeyInfo(absl::string_view key_id,
                                           size_t service) {
  residency::v1::GetKeyInfoRequest request;
  request.set_key_id(std::string(key_id));
  return impl_->KeyCall(service, std::move(request),
                        &residency::v1::KeyService::Stub::GetKeyInfo);
}

}  // namespace residency::client
