#ifndef RESIDENCY_RPC_PRINTABLE_H_
#define RESIDENCY_RPC_PRINTABLE_H_

#include <string>

#include "absl/strings/str_format.h"
#include "absl/strings/string_view.h"

namespace residency::rpc {

// Text from elsewhere (a peer's error message, an object name) made safe to
// print on a terminal or in a report: control characters (below 0x20, and
// 0x7f) and the backslash become \xNN, so that the text can neither move
// the cursor nor fake a line of its own, and an escape in it stays
// recognisable. Every other byte, UTF-8 and quotes included, is kept.
inline std::string Printable(absl::string_view text) {
  std::string out;
  out.reserve(text.size());
  for (char c : text) {
    const unsigned char b = static_cast<unsigned char>(c);
    if (b < 0x20 || b == 0x7f || c == '\\') {
      absl::StrAppendFormat(&out, "\\x%02x", b);
    } else {
      out.push_back(c);
    }
  }
  return out;
}

}  // namespace residency::rpc

#endif  // RESIDENCY_RPC_PRINTABLE_H_
