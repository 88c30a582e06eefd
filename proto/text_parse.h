#ifndef RESIDENCY_PROTO_TEXT_PARSE_H_
#define RESIDENCY_PROTO_TEXT_PARSE_H_

// Text-format protobuf files written by people (policies, scenarios): parse
// errors that point at the line and column of the mistake.

#include "absl/status/status.h"
#include "absl/strings/string_view.h"
#include "google/protobuf/message.h"
#include "google/protobuf/text_format.h"

namespace residency::proto {

// Parses `text` into `message` (cleared first). On failure returns
// INVALID_ARGUMENT "WHAT:LINE:COL: the parser's message", 1-based, pointing
// at the token at fault (the parser reports some mistakes, such as a
// misspelt field name, one token late; those are moved back), or
// "WHAT: not a valid text-format TYPE" when the parser gives no location.
// `locations`, when given, receives where each field was written, for
// validation errors that point into the file.
absl::Status ParseTextProto(
    absl::string_view text, absl::string_view what,
    google::protobuf::Message* message,
    google::protobuf::TextFormat::ParseInfoTree* locations = nullptr);

}  // namespace residency::proto

#endif  // RESIDENCY_PROTO_TEXT_PARSE_H_
