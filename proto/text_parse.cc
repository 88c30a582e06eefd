#include "proto/text_parse.h"

#include <string>

#include "absl/strings/match.h"
#include "absl/strings/str_cat.h"
#include "google/protobuf/io/tokenizer.h"
#include "google/protobuf/io/zero_copy_stream_impl_lite.h"

namespace residency::proto {
namespace {

using ::google::protobuf::TextFormat;

// Keeps the parser's first error; later ones are usually consequences of it.
class FirstErrorCollector : public google::protobuf::io::ErrorCollector {
 public:
  void AddError(int line, google::protobuf::io::ColumnNumber column,
                const std::string& message) override {
    if (has_error_) return;
    has_error_ = true;
    line_ = line;
    column_ = column;
    message_ = message;
  }
  void AddWarning(int, google::protobuf::io::ColumnNumber,
                  const std::string&) override {}

  bool has_error() const { return has_error_; }
  int line() const { return line_; }
  int column() const { return column_; }
  const std::string& message() const { return message_; }

 private:
  bool has_error_ = false;
  int line_ = -1;
  int column_ = -1;
  std::string message_;
};

class SilentErrorCollector : public google::protobuf::io::ErrorCollector {
 public:
  void AddError(int, google::protobuf::io::ColumnNumber,
                const std::string&) override {}
};

// TextFormat::Parser notices some mistakes only after consuming the token at
// fault, and reports them at the token that follows: a misspelt field name at
// its ':', an unknown enum value at whatever comes next (often a '}' on the
// next line). These are recognised by their message.
bool ReportedAfterTheFaultyToken(absl::string_view message) {
  constexpr absl::string_view kPrefixes[] = {
      "Message type \"",                     // ... has no field named "x".
      "Unknown enumeration value of \"",     // ... for field "x".
      "Invalid value for boolean field \"",  // ... Value: "x".
      "Non-repeated field \"",               // ... is specified multiple times.
  };
  for (absl::string_view prefix : kPrefixes) {
    if (absl::StartsWith(message, prefix)) return true;
  }
  return false;
}

// The start of the last token that begins before `location`, found by
// tokenizing `text` as TextFormat::Parser does; `location` itself if there is
// none.
TextFormat::ParseLocation TokenBefore(absl::string_view text,
                                      TextFormat::ParseLocation location) {
  google::protobuf::io::ArrayInputStream input(text.data(),
                                               static_cast<int>(text.size()));
  SilentErrorCollector silent;
  google::protobuf::io::Tokenizer tokenizer(&input, &silent);
  tokenizer.set_allow_f_after_float(true);
  tokenizer.set_comment_style(
      google::protobuf::io::Tokenizer::SH_COMMENT_STYLE);
  tokenizer.set_require_space_after_number(false);
  tokenizer.set_allow_multiline_strings(true);
  TextFormat::ParseLocation before = location;
  while (tokenizer.Next()) {
    const google::protobuf::io::Tokenizer::Token& token = tokenizer.current();
    if (token.line > location.line ||
        (token.line == location.line && token.column >= location.column)) {
      break;
    }
    before = TextFormat::ParseLocation(token.line, token.column);
  }
  return before;
}

}  // namespace

absl::Status ParseTextProto(absl::string_view text, absl::string_view what,
                            google::protobuf::Message* message,
                            TextFormat::ParseInfoTree* locations) {
  message->Clear();
  FirstErrorCollector errors;
  TextFormat::Parser parser;
  parser.RecordErrorsTo(&errors);
  if (locations != nullptr) parser.WriteLocationsTo(locations);
  google::protobuf::io::ArrayInputStream input(text.data(),
                                               static_cast<int>(text.size()));
  if (parser.Parse(&input, message)) return absl::OkStatus();
  if (!errors.has_error()) {
    return absl::InvalidArgumentError(
        absl::StrCat(what, ": not a valid text-format ",
                     message->GetDescriptor()->full_name()));
  }
  if (errors.line() < 0) {
    return absl::InvalidArgumentError(
        absl::StrCat(what, ": ", errors.message()));
  }
  TextFormat::ParseLocation at(errors.line(), errors.column());
  if (ReportedAfterTheFaultyToken(errors.message())) {
    at = TokenBefore(text, at);
  }
  return absl::InvalidArgumentError(absl::StrCat(
      what, ":", at.line + 1, ":", at.column + 1, ": ", errors.message()));
}

}  // namespace residency::proto
