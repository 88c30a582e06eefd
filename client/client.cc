#include "client/client.h"

#include <algorithm>
#include <utility>

#include "absl/strings/escaping.h"
#include "absl/strings/str_cat.h"
#include "crypto/chunked.h"
#include "crypto/object_context.h"
#include "crypto/random.h"
#include "crypto/secret_bytes.h"
#include "google/protobuf/util/time_util.h"
#include "rpc/status.h"

namespace residency::client {
namespace {

using ::residency::crypto::SecretBytes;
using ::residency::v1::ObjectHeader;
using ::residency::v1::ObjectRef;

// Reads the plaintext in pieces of this many bytes.
constexpr size_t kReadBytes = 64 * 1024;

std::string Describe(const ObjectRef& object) {
  return absl::StrCat("object '", absl::CHexEscape(object.owner()), "/",
                      absl::CHexEscape(object.object_id()), "' v",
                      object.version());
}

// Moves a plaintext data key out of a response field into SecretBytes.
SecretBytes TakeKey(std::string* field) {
  SecretBytes key = SecretBytes::CopyFrom(*field);
  crypto::WipeString(field);
  return key;
}

}  // namespace

Client::Client(ClientOptions options)
    : options_(std::move(options)),
      keys_(residency::v1::KeyService::NewStub(options_.key_service)),
      storage_(residency::v1::StorageNode::NewStub(options_.storage)) {}

absl::StatusOr<std::unique_ptr<Client>> Client::Create(ClientOptions options) {
  if (options.owner.empty() || options.key_id.empty()) {
    return absl::InvalidArgumentError("a client needs an owner and a key id");
  }
  if (options.key_service == nullptr || options.storage == nullptr) {
    return absl::InvalidArgumentError(
        "a client needs channels to a key service and a storage node");
  }
  if (options.message_bytes == 0 || options.message_bytes > (1 << 20)) {
    return absl::InvalidArgumentError("message_bytes must be 1 B - 1 MiB");
  }
  return std::unique_ptr<Client>(new Client(std::move(options)));
}

void Client::Prepare(grpc::ClientContext* context) const {
  context->set_deadline(absl::ToChronoTime(absl::Now() + options_.deadline));
}

residency::v1::RequestMetadata Client::Metadata() const {
  residency::v1::RequestMetadata metadata;
  metadata.set_request_id(
      absl::BytesToHexString(crypto::RandomBytes(8).value_or("00000000")));
  metadata.mutable_justification()->set_reason(
      residency::v1::Justification::CUSTOMER_INITIATED_ACCESS);
  return metadata;
}

absl::StatusOr<ObjectRef> Client::Put(absl::string_view object_id,
                                      std::istream& input, uint64_t size) {
  ObjectRef object;
  object.set_owner(options_.owner);
  object.set_object_id(std::string(object_id));
  // The writer picks the version: one above the latest stored.
  {
    residency::v1::HeadRequest head;
    *head.mutable_metadata() = Metadata();
    *head.mutable_object() = object;
    residency::v1::HeadResponse latest;
    grpc::ClientContext context;
    Prepare(&context);
    absl::Status status =
        rpc::FromGrpcStatus(storage_->Head(&context, head, &latest));
    if (status.ok()) {
      object.set_version(latest.object().header().object().version() + 1);
    } else if (absl::IsNotFound(status)) {
      object.set_version(1);
    } else {
      return status;
    }
  }
  absl::StatusOr<std::string> context_bytes = crypto::EncodeObjectContext(
      object.owner(), object.object_id(), object.version());
  if (!context_bytes.ok()) return context_bytes.status();

  residency::v1::GenerateDataKeyRequest generate;
  *generate.mutable_metadata() = Metadata();
  generate.set_key_id(options_.key_id);
  *generate.mutable_context() = object;
  residency::v1::GenerateDataKeyResponse generated;
  {
    grpc::ClientContext context;
    Prepare(&context);
    absl::Status status = rpc::FromGrpcStatus(
        keys_->GenerateDataKey(&context, generate, &generated));
    if (!status.ok()) return status;
  }
  SecretBytes dek = TakeKey(generated.mutable_plaintext_key());
  absl::StatusOr<crypto::ChunkedEncryptor> encryptor =
      crypto::ChunkedEncryptor::Create(dek, *context_bytes);
  if (!encryptor.ok()) return encryptor.status();

  ObjectHeader header;
  *header.mutable_object() = object;
  header.set_custody_mode(residency::v1::CUSTODY_MODE_CUSTODIAN);
  header.set_payload_algorithm(
      residency::v1::PAYLOAD_ALGORITHM_COBBLESTONE_256);
  *header.add_wrapped_keys() = generated.wrapped_key();
  header.set_plaintext_length(size);
  header.set_ciphertext_length(crypto::ChunkedCiphertextLength(size));
  for (const std::string& j : options_.residency) {
    header.mutable_residency()->add_allowed_jurisdictions(j);
  }
  *header.mutable_created_at() =
      google::protobuf::util::TimeUtil::NanosecondsToTimestamp(
          absl::ToUnixNanos(absl::Now()));

  grpc::ClientContext context;
  // A whole upload may take longer than one call's deadline.
  context.set_deadline(
      absl::ToChronoTime(absl::Now() + options_.deadline +
                         absl::Seconds(static_cast<double>(size) / (8 << 20))));
  residency::v1::PutResponse response;
  auto writer = storage_->Put(&context, &response);
  residency::v1::PutRequest message;
  *message.mutable_start()->mutable_metadata() = Metadata();
  *message.mutable_start()->mutable_header() = header;
  bool open = writer->Write(message);
  std::string pending = encryptor->header();
  std::string plaintext(kReadBytes, '\0');
  uint64_t read = 0;
  auto flush = [&](bool all) {
    while (open && (pending.size() >= options_.message_bytes ||
                    (all && !pending.empty()))) {
      const size_t n = std::min(pending.size(), options_.message_bytes);
      message.set_data(pending.substr(0, n));
      pending.erase(0, n);
      open = writer->Write(message);
    }
  };
  absl::Status local;
  while (open && read < size) {
    const size_t want =
        static_cast<size_t>(std::min<uint64_t>(kReadBytes, size - read));
    input.read(plaintext.data(), static_cast<std::streamsize>(want));
    const size_t got = static_cast<size_t>(input.gcount());
    if (got == 0) {
      local = absl::InvalidArgumentError(
          absl::StrCat("input ended after ", read, " of ", size, " bytes"));
      break;
    }
    read += got;
    if (absl::Status s = encryptor->Update(
            absl::string_view(plaintext.data(), got), &pending);
        !s.ok()) {
      local = s;
      break;
    }
    flush(/*all=*/false);
  }
  if (local.ok() && open) {
    local = encryptor->Finish(&pending);
    if (local.ok()) flush(/*all=*/true);
  }
  if (!local.ok()) {
    context.TryCancel();
    writer->Finish();
    return local;
  }
  writer->WritesDone();
  absl::Status status = rpc::FromGrpcStatus(writer->Finish());
  if (!status.ok()) return status;
  return response.object();
}

absl::StatusOr<std::string> Client::UnwrapFor(const ObjectHeader& header) {
  if (header.custody_mode() != residency::v1::CUSTODY_MODE_CUSTODIAN ||
      header.wrapped_keys_size() != 1) {
    return absl::UnimplementedError(
        absl::StrCat(Describe(header.object()),
                     " uses a custody mode this client does not read yet"));
  }
  residency::v1::UnwrapRequest unwrap;
  *unwrap.mutable_metadata() = Metadata();
  *unwrap.mutable_wrapped_key() = header.wrapped_keys(0);
  *unwrap.mutable_context() = header.object();
  residency::v1::UnwrapResponse unwrapped;
  grpc::ClientContext context;
  Prepare(&context);
  absl::Status status =
      rpc::FromGrpcStatus(keys_->Unwrap(&context, unwrap, &unwrapped));
  // The key service refuses a wrapped key that does not authenticate for
  // this object as malformed input; for the reader that means the stored
  // header was tampered with or belongs to another object.
  if (absl::IsInvalidArgument(status)) {
    return absl::DataLossError(absl::StrCat(
        Describe(header.object()),
        ": its wrapped data key does not open for this object (tampered, "
        "or taken from another object or version): ",
        status.message()));
  }
  if (!status.ok()) return status;
  std::string key = std::move(*unwrapped.mutable_plaintext_key());
  return key;
}

absl::StatusOr<ObjectHeader> Client::Get(absl::string_view object_id,
                                         uint64_t version, std::ostream& output,
                                         std::optional<Range> range) {
  residency::v1::GetRequest request;
  *request.mutable_metadata() = Metadata();
  request.mutable_object()->set_owner(options_.owner);
  request.mutable_object()->set_object_id(std::string(object_id));
  request.mutable_object()->set_version(version);
  if (range.has_value()) {
    request.mutable_range()->set_offset(range->offset);
    request.mutable_range()->set_length(range->length);
  }
  grpc::ClientContext context;
  context.set_deadline(
      absl::ToChronoTime(absl::Now() + options_.deadline * 10));
  auto reader = storage_->Get(&context, request);
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
  if (header.object().owner() != options_.owner ||
      header.object().object_id() != object_id ||
      (version != 0 && header.object().version() != version)) {
    context.TryCancel();
    reader->Finish();
    return absl::DataLossError(absl::StrCat(
        "the storage node answered with ", Describe(header.object()),
        " for a request of '", absl::CHexEscape(object_id), "' v", version));
  }
  absl::StatusOr<std::string> raw_key = UnwrapFor(header);
  if (!raw_key.ok()) {
    context.TryCancel();
    reader->Finish();
    return raw_key.status();
  }
  SecretBytes dek = TakeKey(&*raw_key);
  absl::StatusOr<std::string> context_bytes = crypto::EncodeObjectContext(
      header.object().owner(), header.object().object_id(),
      header.object().version());
  if (!context_bytes.ok()) return context_bytes.status();

  absl::Status status;
  if (!range.has_value()) {
    absl::StatusOr<crypto::ChunkedDecryptor> decryptor =
        crypto::ChunkedDecryptor::Create(dek, *context_bytes);
    if (!decryptor.ok()) return decryptor.status();
    std::string plaintext;
    uint64_t received = 0;
    while (status.ok() && reader->Read(&message)) {
      received += message.data().size();
      plaintext.clear();
      status = decryptor->Update(message.data(), &plaintext);
      if (status.ok()) output.write(plaintext.data(), plaintext.size());
    }
    if (status.ok()) {
      plaintext.clear();
      status = decryptor->Finish(&plaintext);
      if (status.ok()) output.write(plaintext.data(), plaintext.size());
    }
    if (status.ok() && received != header.ciphertext_length()) {
      status = absl::DataLossError(absl::StrCat(
          Describe(header.object()), ": received ", received,
          " ciphertext bytes, the header says ", header.ciphertext_length()));
    }
  } else {
    absl::StatusOr<crypto::ChunkedRangeDecryptor> decryptor =
        crypto::ChunkedRangeDecryptor::Create(dek, *context_bytes,
                                              start.ciphertext_prefix(),
                                              header.ciphertext_length());
    if (!decryptor.ok()) {
      context.TryCancel();
      reader->Finish();
      return decryptor.status();
    }
    // Only the chunks covering the range came; they are decrypted once all
    // have arrived (a range is read whole by design of DecryptRange).
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
      output.write(plaintext->data(), plaintext->size());
    } else {
      status = plaintext.status();
    }
  }
  if (!status.ok()) {
    context.TryCancel();
    reader->Finish();
    if (absl::IsDataLoss(status) || absl::IsInvalidArgument(status)) {
      return absl::DataLossError(absl::StrCat(
          Describe(header.object()),
          ": stored data does not authenticate: ", status.message()));
    }
    return status;
  }
  status = rpc::FromGrpcStatus(reader->Finish());
  if (!status.ok()) return status;
  return header;
}

}  // namespace residency::client
