#include "storage_node/node.h"

#include <algorithm>
#include <utility>

#include "absl/strings/str_cat.h"
#include "crypto/chunked.h"
#include "rpc/printable.h"
#include "storage_node/envelope.h"

namespace residency::storage_node {
namespace {

using ::residency::v1::RequestMetadata;
using Kind = ::residency::tls::Principal::Kind;

constexpr size_t kMaxRequestIdSize = 128;

std::string Quote(absl::string_view s) {
  constexpr size_t kShown = 128;
  return absl::StrCat("'", rpc::Printable(rpc::CutAtCharacter(s, kShown)),
                      s.size() > kShown ? "...'" : "'");
}

absl::Status CheckMetadata(bool has_metadata, const RequestMetadata& metadata) {
  if (!has_metadata || metadata.request_id().empty()) {
    return absl::InvalidArgumentError(
        "request has no metadata.request_id: every request needs one");
  }
  if (metadata.request_id().size() > kMaxRequestIdSize) {
    return absl::InvalidArgumentError(
        absl::StrCat("metadata.request_id is ", metadata.request_id().size(),
                     " bytes; the limit is ", kMaxRequestIdSize));
  }
  if (metadata.justification().reason() ==
          residency::v1::Justification::THIRD_PARTY_DATA_REQUEST &&
      !metadata.justification().has_legal_process()) {
    return absl::InvalidArgumentError(
        "THIRD_PARTY_DATA_REQUEST needs a legal_process");
  }
  return absl::OkStatus();
}

// Users act on their own objects only.
absl::Status CheckOwner(const tls::Principal& caller, absl::string_view owner,
                        absl::string_view action) {
  if (caller.kind == Kind::kUser && caller.name == owner) {
    return absl::OkStatus();
  }
  return absl::PermissionDeniedError(absl::StrCat(
      caller.uri, " may not ", action, " objects of owner ", Quote(owner),
      ": only residency://user/", Quote(owner), " may"));
}

// The checks every user request starts with.
absl::Status CheckUserRequest(const tls::Principal& caller, bool has_metadata,
                              const RequestMetadata& metadata,
                              absl::string_view owner,
                              absl::string_view action) {
  if (absl::Status s = CheckMetadata(has_metadata, metadata); !s.ok()) {
    return s;
  }
  return CheckOwner(caller, owner, action);
}

}  // namespace

NodeCore::NodeCore(NodeOptions options, std::unique_ptr<ObjectStore> store)
    : options_(std::move(options)), store_(std::move(store)) {}

absl::StatusOr<std::unique_ptr<Upload>> NodeCore::BeginPut(
    const tls::Principal& caller,
    const residency::v1::PutRequest::Start& start) {
  if (absl::Status s = CheckMetadata(start.has_metadata(), start.metadata());
      !s.ok()) {
    return s;
  }
  if (absl::Status s =
          CheckOwner(caller, start.header().object().owner(), "write");
      !s.ok()) {
    return s;
  }
  if (absl::Status s = ValidateEnvelope(start.header()); !s.ok()) return s;
  if (absl::Status s = CheckResidency(start.header(), options_.jurisdiction);
      !s.ok()) {
    return s;
  }
  return store_->BeginPut(start.header());
}

template <typename Response>
absl::Status NodeCore::SendCiphertext(
    const StoredVersion& version, uint64_t offset, uint64_t length,
    const std::function<bool(const Response&)>& sink) {
  if (length == 0) return absl::OkStatus();
  // Data messages are cut to the message limit; the store hands over at
  // most one segment at a time, so memory stays bounded either way.
  Response message;
  bool open = true;
  absl::Status status = store_->ReadCiphertext(
      version, CiphertextRange{offset, length}, [&](absl::string_view piece) {
        while (!piece.empty() && open) {
          const size_t n =
              std::min(piece.size(), options_.max_data_message_bytes);
          message.set_data(std::string(piece.substr(0, n)));
          open = sink(message);
          piece.remove_prefix(n);
        }
        return open;
      });
  return status;
}

absl::Status NodeCore::Get(const tls::Principal& caller,
                           const residency::v1::GetRequest& request,
                           const GetSink& sink) {
  const residency::v1::ObjectRef& object = request.object();
  if (absl::Status s =
          CheckUserRequest(caller, request.has_metadata(), request.metadata(),
                           object.owner(), "read");
      !s.ok()) {
    return s;
  }
  absl::StatusOr<StoredVersion> version =
      store_->Head(object.owner(), object.object_id(), object.version());
  if (!version.ok()) return version.status();
  const residency::v1::ObjectHeader& header = version->info.header();

  residency::v1::GetResponse start;
  *start.mutable_start()->mutable_header() = header;
  uint64_t offset = 0;
  uint64_t length = header.ciphertext_length();
  if (request.has_range()) {
    const uint64_t plaintext = header.plaintext_length();
    if (request.range().offset() > plaintext) {
      return absl::OutOfRangeError(absl::StrCat(
          "range offset ", request.range().offset(),
          " is beyond the end of object ", DescribeObject(header.object()),
          " (", plaintext, " plaintext bytes)"));
    }
    const uint64_t wanted = request.range().length() == 0
                                ? plaintext - request.range().offset()
                                : request.range().length();
    const crypto::ChunkSpan span = crypto::ChunkedCiphertextSpan(
        plaintext, request.range().offset(), wanted);
    offset = span.offset;
    length = span.length;
    // The reader needs salt || commitment to derive the chunk key.
    std::string prefix;
    absl::Status read = store_->ReadCiphertext(
        *version, CiphertextRange{0, crypto::kChunkedHeaderSize},
        [&](absl::string_view piece) {
          prefix.append(piece.data(), piece.size());
          return true;
        });
    if (!read.ok()) return read;
    start.mutable_start()->set_ciphertext_prefix(std::move(prefix));
  }
  start.mutable_start()->set_ciphertext_offset(offset);
  start.mutable_start()->set_ciphertext_length(length);
  if (!sink(start)) return absl::OkStatus();
  return SendCiphertext<residency::v1::GetResponse>(*version, offset, length,
                                                    sink);
}

absl::StatusOr<residency::v1::HeadResponse> NodeCore::Head(
    const tls::Principal& caller, const residency::v1::HeadRequest& request) {
  const residency::v1::ObjectRef& object = request.object();
  if (absl::Status s =
          CheckUserRequest(caller, request.has_metadata(), request.metadata(),
                           object.owner(), "read");
      !s.ok()) {
    return s;
  }
  absl::StatusOr<StoredVersion> version =
      store_->Head(object.owner(), object.object_id(), object.version());
  if (!version.ok()) return version.status();
  residency::v1::HeadResponse response;
  *response.mutable_object() = version->info;
  return response;
}

absl::StatusOr<residency::v1::ListResponse> NodeCore::List(
    const tls::Principal& caller, const residency::v1::ListRequest& request) {
  if (absl::Status s =
          CheckUserRequest(caller, request.has_metadata(), request.metadata(),
                           request.owner(), "list");
      !s.ok()) {
    return s;
  }
  absl::StatusOr<ObjectStore::ListResult> listed = store_->List(
      request.owner(), request.object_id_prefix(), request.all_versions(),
      request.page_size(), request.page_token());
  if (!listed.ok()) return listed.status();
  residency::v1::ListResponse response;
  for (residency::v1::ObjectInfo& info : listed->objects) {
    *response.add_objects() = std::move(info);
  }
  response.set_next_page_token(std::move(listed->next_page_token));
  return response;
}

absl::StatusOr<residency::v1::DeleteResponse> NodeCore::Delete(
    const tls::Principal& caller, const residency::v1::DeleteRequest& request) {
  const residency::v1::ObjectRef& object = request.object();
  if (absl::Status s =
          CheckUserRequest(caller, request.has_metadata(), request.metadata(),
                           object.owner(), "delete");
      !s.ok()) {
    return s;
  }
  absl::StatusOr<uint64_t> deleted =
      store_->Delete(object.owner(), object.object_id(), object.version());
  if (!deleted.ok()) return deleted.status();
  residency::v1::DeleteResponse response;
  response.set_versions_deleted(*deleted);
  return response;
}

absl::Status NodeCore::Export(const tls::Principal& caller,
                              const residency::v1::ExportRequest& request,
                              const ExportSink& sink) {
  if (absl::Status s =
          CheckMetadata(request.has_metadata(), request.metadata());
      !s.ok()) {
    return s;
  }
  if (caller.uri != options_.operator_principal) {
    return absl::PermissionDeniedError(
        absl::StrCat(caller.uri, " may not Export: only the node's operator (",
                     options_.operator_principal, ") may"));
  }
  if (request.owner().empty()) {
    return absl::InvalidArgumentError("Export needs an owner");
  }
  absl::Status streamed;
  absl::Status status =
      store_->ForEachObject(request.owner(), [&](const StoredVersion& version) {
        residency::v1::ExportResponse head;
        *head.mutable_object() = version.info;
        if (!sink(head)) return false;
        streamed = SendCiphertext<residency::v1::ExportResponse>(
            version, 0, version.info.header().ciphertext_length(), sink);
        // A version deleted since the listing began is skipped, not fatal.
        if (absl::IsNotFound(streamed)) streamed = absl::OkStatus();
        return streamed.ok();
      });
  if (!streamed.ok()) return streamed;
  return status;
}

absl::StatusOr<residency::v1::StatsResponse> NodeCore::Stats(
    const tls::Principal& caller, const residency::v1::StatsRequest& request) {
  if (absl::Status s =
          CheckMetadata(request.has_metadata(), request.metadata());
      !s.ok()) {
    return s;
  }
  if (caller.uri != options_.operator_principal) {
    if (request.owner().empty()) {
      return absl::PermissionDeniedError(
          absl::StrCat(caller.uri,
                       " may not read every owner's usage: only the operator "
                       "may"));
    }
    if (absl::Status s = CheckOwner(caller, request.owner(), "read usage of");
        !s.ok()) {
      return s;
    }
  }
  absl::StatusOr<std::vector<residency::v1::StatsResponse::OwnerUsage>> usage =
      store_->Usage(request.owner());
  if (!usage.ok()) return usage.status();
  residency::v1::StatsResponse response;
  response.set_jurisdiction(options_.jurisdiction);
  for (auto& owner : *usage) *response.add_owners() = std::move(owner);
  return response;
}

}  // namespace residency::storage_node
