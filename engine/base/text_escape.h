// Makes untrusted text (names and paths from a .torrent, tracker failure and warning messages)
// safe to print: a newline in it must not split a promised single line, and an escape sequence
// must not reach the terminal.
#pragma once

#include <cstddef>
#include <cstdint>
#include <string>
#include <string_view>

namespace torrenty::engine {

// Returns `text` with C0 controls (bytes < 0x20), DEL and C1 controls (U+0080..U+009F, which some
// terminals obey as CSI and friends) written as \n, \r, \t or \xNN, and every byte that is not
// part of valid UTF-8 written as \xNN. Valid printable UTF-8 passes unchanged. For display only:
// a backslash is not escaped, so the result cannot be decoded back.
std::string EscapeForTerminal(std::string_view text);

// Length of the valid UTF-8 sequence starting at text[pos] (1 to 4), or 0 if the bytes there
// are not valid UTF-8 (overlong forms, surrogates and code points past U+10FFFF are invalid).
size_t Utf8SequenceLength(std::string_view text, size_t pos);

// True if all of `text` is valid UTF-8.
bool IsValidUtf8(std::string_view text);

// Percent-encoding (RFC 3986) for URL query values: unreserved characters pass, every other byte
// (binary info-hashes too) becomes %XX, which every tracker and client decodes.
void AppendPercentEncoded(const uint8_t* data, size_t len, std::string* out);
inline void AppendPercentEncoded(std::string_view bytes, std::string* out) {
  AppendPercentEncoded(reinterpret_cast<const uint8_t*>(bytes.data()), bytes.size(), out);
}

}  // namespace torrenty::engine
