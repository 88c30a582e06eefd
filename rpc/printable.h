#ifndef RESIDENCY_RPC_PRINTABLE_H_
#define RESIDENCY_RPC_PRINTABLE_H_

#include <cstddef>
#include <string>

#include "absl/strings/string_view.h"

namespace residency::rpc {

// The length (2 to 4) of the well-formed UTF-8 sequence that starts at
// text[i], a byte of 0x80 or above; 0 when there is none there (a stray
// continuation byte, an overlong form, a surrogate, a cut sequence).
inline size_t Utf8SequenceLength(absl::string_view text, size_t i) {
  const unsigned char lead = static_cast<unsigned char>(text[i]);
  size_t length = 0;
  unsigned char low = 0x80, high = 0xbf;  // range of the second byte
  if (lead >= 0xc2 && lead <= 0xdf) {
    length = 2;
  } else if (lead >= 0xe0 && lead <= 0xef) {
    length = 3;
    if (lead == 0xe0) low = 0xa0;   // overlong
    if (lead == 0xed) high = 0x9f;  // surrogates
  } else if (lead >= 0xf0 && lead <= 0xf4) {
    length = 4;
    if (lead == 0xf0) low = 0x90;   // overlong
    if (lead == 0xf4) high = 0x8f;  // above U+10FFFF
  } else {
    return 0;
  }
  if (text.size() - i < length) return 0;
  for (size_t k = 1; k < length; ++k) {
    const unsigned char b = static_cast<unsigned char>(text[i + k]);
    if (k == 1 ? (b < low || b > high) : (b < 0x80 || b > 0xbf)) return 0;
  }
  return length;
}

// The longest prefix of `text` of at most `max` bytes that does not end
// inside a UTF-8 character: a bounded copy of a well-formed message stays
// well-formed (a protobuf string must be) and no character is shown half.
// It does not mend malformed input: escape that with Printable first.
inline absl::string_view CutAtCharacter(absl::string_view text, size_t max) {
  if (text.size() <= max) return text;
  size_t cut = max;
  while (cut > 0 && (static_cast<unsigned char>(text[cut]) & 0xc0) == 0x80) {
    --cut;
  }
  return text.substr(0, cut);
}

namespace internal {

// Characters that are well-formed UTF-8 but reorder or break what a
// terminal or an editor shows: U+061C, U+200E, U+200F, U+2028 to U+202E
// and U+2066 to U+2069 (the bidirectional controls and the line and
// paragraph separators).
inline bool IsLayoutControl(absl::string_view text, size_t i, size_t length) {
  const auto byte = [&](size_t k) {
    return static_cast<unsigned char>(text[i + k]);
  };
  if (length == 2) return byte(0) == 0xd8 && byte(1) == 0x9c;
  if (length != 3 || byte(0) != 0xe2) return false;
  if (byte(1) == 0x80) {
    return byte(2) == 0x8e || byte(2) == 0x8f ||
           (byte(2) >= 0xa8 && byte(2) <= 0xae);
  }
  return byte(1) == 0x81 && byte(2) >= 0xa6 && byte(2) <= 0xa9;
}

inline void AppendByteEscape(unsigned char b, std::string* out) {
  constexpr char kHex[] = "0123456789abcdef";
  out->append("\\x");
  out->push_back(kHex[b >> 4]);
  out->push_back(kHex[b & 0xf]);
}

// Printable and PrintableMessage: the backslash is escaped or kept.
inline std::string EscapeForTerminal(absl::string_view text,
                                     bool escape_backslash) {
  std::string out;
  out.reserve(text.size());
  for (size_t i = 0; i < text.size();) {
    const unsigned char b = static_cast<unsigned char>(text[i]);
    if (b < 0x80) {
      if (b < 0x20 || b == 0x7f || (b == '\\' && escape_backslash)) {
        AppendByteEscape(b, &out);
      } else {
        out.push_back(static_cast<char>(b));
      }
      ++i;
      continue;
    }
    const size_t length = Utf8SequenceLength(text, i);
    const bool c1 = length == 2 && b == 0xc2 &&
                    static_cast<unsigned char>(text[i + 1]) <= 0x9f;
    if (length == 0 || c1) {
      // The lead byte now; a C1 character's second byte, left alone, is
      // escaped as a stray byte next.
      AppendByteEscape(b, &out);
      ++i;
      continue;
    }
    if (IsLayoutControl(text, i, length)) {
      for (size_t k = 0; k < length; ++k) {
        AppendByteEscape(static_cast<unsigned char>(text[i + k]), &out);
      }
      i += length;
      continue;
    }
    out.append(text.data() + i, length);
    i += length;
  }
  return out;
}

}  // namespace internal

// One value from elsewhere (an object name, a key id, a jurisdiction, a
// path) made safe to print on a terminal or in a report, and to quote in an
// error message. Each byte of a control character becomes \xNN: C0 (below
// 0x20), DEL and C1 (U+0080 to U+009F, which some terminals obey), and so
// does every byte that is not part of well-formed UTF-8 (a lone 0x9b is CSI
// to some terminals) and the backslash, so that an escape in the value
// stays recognisable. The value can neither move the cursor nor fake a line
// of its own; nor can a bidirectional control or a line separator (see
// IsLayoutControl) reorder what is shown. Everything else, UTF-8 characters
// (a Chinese file name reads as itself) and quotes included, is kept.
inline std::string Printable(absl::string_view text) {
  return internal::EscapeForTerminal(text, /*escape_backslash=*/true);
}

// A message (an error's text, a note) made safe to print the same way,
// except that backslashes are kept: the values it quotes went through
// Printable when it was composed, and their escapes read as they were
// written. Text from a peer gets the same treatment where it is shown, so
// a control character in it cannot reach the terminal either.
inline std::string PrintableMessage(absl::string_view text) {
  return internal::EscapeForTerminal(text, /*escape_backslash=*/false);
}

}  // namespace residency::rpc

#endif  // RESIDENCY_RPC_PRINTABLE_H_
