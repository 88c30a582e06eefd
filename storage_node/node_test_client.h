#ifndef RESIDENCY_STORAGE_NODE_NODE_TEST_CLIENT_H_
#define RESIDENCY_STORAGE_NODE_NODE_TEST_CLIENT_H_

// Tests' raw StorageNode client: well-formed headers and stand-in
// ciphertext (the node never decrypts, so any bytes of the right length
// do), streamed Puts and byte-checked Gets.

#include <grpcpp/grpcpp.h>

#include <algorithm>
#include <chrono>
#include <cstdint>
#include <string>

#include "absl/status/status.h"
#include "absl/strings/str_cat.h"
#include "absl/strings/string_view.h"
#include "crypto/chunked.h"
#include "residency/v1/storage.grpc.pb.h"
#include "rpc/status.h"

namespace residency::storage_node::testing {

// A well-formed header of alice's for `plaintext` bytes.
inline v1::ObjectHeader Header(absl::string_view id, uint64_t plaintext,
                               uint64_t version = 1) {
  v1::ObjectHeader h;
  h.mutable_object()->set_owner("alice");
  h.mutable_object()->set_object_id(std::string(id));
  h.mutable_object()->set_version(version);
  h.set_custody_mode(v1::CUSTODY_MODE_CUSTODIAN);
  h.set_payload_algorithm(v1::PAYLOAD_ALGORITHM_COBBLESTONE_256);
  auto* k = h.add_wrapped_keys();
  k->set_wrapper(v1::WrappedKey::KEY_SERVICE);
  k->set_key_id("alice-key");
  k->set_key_version(1);
  k->set_wrapped(std::string(60, 'w'));
  h.set_plaintext_length(plaintext);
  h.set_ciphertext_length(crypto::ChunkedCiphertextLength(plaintext));
  return h;
}

// Byte i of an object's stand-in ciphertext.
inline char Pattern(uint64_t seed, uint64_t i) {
  return static_cast<char>((i * 131 + seed * 7 + (i >> 12)) & 0xff);
}

// Streams `header` and its Pattern(seed) ciphertext in `piece`-byte
// messages. `after_piece(bytes sent so far)` runs after each message.
template <typename AfterPiece>
absl::Status PutPattern(v1::StorageNode::Stub& stub,
                        const v1::ObjectHeader& header, uint64_t seed,
                        size_t piece, AfterPiece after_piece) {
  grpc::ClientContext context;
  context.set_deadline(std::chrono::system_clock::now() +
                       std::chrono::minutes(5));
  v1::PutResponse response;
  auto writer = stub.Put(&context, &response);
  v1::PutRequest start;
  start.mutable_start()->mutable_metadata()->set_request_id("p");
  *start.mutable_start()->mutable_header() = header;
  if (!writer->Write(start)) return rpc::FromGrpcStatus(writer->Finish());
  v1::PutRequest data;
  const uint64_t total = header.ciphertext_length();
  for (uint64_t at = 0; at < total; at += piece) {
    const uint64_t n = std::min<uint64_t>(piece, total - at);
    std::string* bytes = data.mutable_data();
    bytes->resize(n);
    for (uint64_t i = 0; i < n; ++i) (*bytes)[i] = Pattern(seed, at + i);
    if (!writer->Write(data)) break;
    after_piece(at + n);
  }
  writer->WritesDone();
  return rpc::FromGrpcStatus(writer->Finish());
}

inline absl::Status PutPattern(v1::StorageNode::Stub& stub,
                               const v1::ObjectHeader& header, uint64_t seed,
                               size_t piece = 1 << 20) {
  return PutPattern(stub, header, seed, piece, [](uint64_t) {});
}

// Reads the version `object` names back and checks every byte against
// Pattern(seed) and the length against `ciphertext_length`.
inline absl::Status GetAndCheck(v1::StorageNode::Stub& stub,
                                const v1::ObjectRef& object,
                                uint64_t ciphertext_length, uint64_t seed) {
  v1::GetRequest request;
  request.mutable_metadata()->set_request_id("g");
  *request.mutable_object() = object;
  grpc::ClientContext context;
  context.set_deadline(std::chrono::system_clock::now() +
                       std::chrono::minutes(5));
  auto reader = stub.Get(&context, request);
  v1::GetResponse message;
  uint64_t at = 0;
  bool mismatch = false;
  while (reader->Read(&message)) {
    if (!message.has_data()) continue;
    for (char c : message.data()) mismatch |= c != Pattern(seed, at++);
  }
  absl::Status status = rpc::FromGrpcStatus(reader->Finish());
  if (!status.ok()) return status;
  if (at != ciphertext_length || mismatch) {
    return absl::DataLossError(absl::StrCat("read back ", at, " bytes of ",
                                            ciphertext_length,
                                            mismatch ? ", some differ" : ""));
  }
  return absl::OkStatus();
}

inline absl::Status GetAndCheck(v1::StorageNode::Stub& stub,
                                const v1::ObjectHeader& header, uint64_t seed) {
  return GetAndCheck(stub, header.object(), header.ciphertext_length(), seed);
}

}  // namespace residency::storage_node::testing

#endif  // RESIDENCY_STORAGE_NODE_NODE_TEST_CLIENT_H_
