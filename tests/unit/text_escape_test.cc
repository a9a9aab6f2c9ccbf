// Tests for terminal escaping of untrusted text and the UTF-8 validator behind it.
#include "engine/base/text_escape.h"

#include <string>

#include "engine/base/types.h"
#include "gtest/gtest.h"

namespace torrenty::engine {
namespace {

TEST(EscapeForTerminal, PrintableTextIsUnchanged) {
  EXPECT_EQ(EscapeForTerminal("plain name-1.2 (x)/y\\z"), "plain name-1.2 (x)/y\\z");
  EXPECT_EQ(EscapeForTerminal("caf\xc3\xa9 \xe6\x97\xa5\xe6\x9c\xac \xf0\x9f\x98\x80"),
            "caf\xc3\xa9 \xe6\x97\xa5\xe6\x9c\xac \xf0\x9f\x98\x80");
  EXPECT_EQ(EscapeForTerminal(""), "");
}

TEST(EscapeForTerminal, ControlCharactersAreEscaped) {
  EXPECT_EQ(EscapeForTerminal("a\nb\rc\td"), "a\\nb\\rc\\td");
  EXPECT_EQ(EscapeForTerminal("\x1b[31mred"), "\\x1b[31mred");
  EXPECT_EQ(EscapeForTerminal(std::string("a\0b", 3)), "a\\x00b");
  EXPECT_EQ(EscapeForTerminal("\x7f"), "\\x7f");
  EXPECT_EQ(EscapeForTerminal("\x01\x1f"), "\\x01\\x1f");
}

TEST(EscapeForTerminal, C1ControlsAndInvalidUtf8AreEscaped) {
  // U+009B is CSI on terminals that honour C1 controls.
  EXPECT_EQ(EscapeForTerminal("a\xc2\x9b"
                              "2J"),
            "a\\xc2\\x9b2J");
  EXPECT_EQ(EscapeForTerminal("\xc2\xa0"), "\xc2\xa0");  // U+00A0 is printable
  EXPECT_EQ(EscapeForTerminal("\x9b"), "\\x9b");
  EXPECT_EQ(EscapeForTerminal("\xff\xfe"), "\\xff\\xfe");
  EXPECT_EQ(EscapeForTerminal("\xc3"), "\\xc3");                    // truncated sequence
  EXPECT_EQ(EscapeForTerminal("\xc0\xaf"), "\\xc0\\xaf");           // overlong '/'
  EXPECT_EQ(EscapeForTerminal("\xed\xa0\x80"), "\\xed\\xa0\\x80");  // surrogate
}

TEST(EscapeForTerminal, OutputHasNoRawControlBytes) {
  std::string all;
  for (int b = 0; b < 256; ++b) all.push_back(static_cast<char>(b));
  all += "\xc2\x85\xc2\x9f";
  const std::string escaped = EscapeForTerminal(all);
  ASSERT_TRUE(IsValidUtf8(escaped));
  for (size_t i = 0; i < escaped.size(); ++i) {
    const auto b = static_cast<unsigned char>(escaped[i]);
    EXPECT_FALSE(b < 0x20 || b == 0x7f) << i;
    if (b == 0xc2) {
      EXPECT_GE(static_cast<unsigned char>(escaped[i + 1]), 0xa0) << i;
    }
  }
}

TEST(Utf8, Validation) {
  EXPECT_TRUE(IsValidUtf8("abc"));
  EXPECT_TRUE(IsValidUtf8("\xc3\xa9\xe2\x82\xac\xf4\x8f\xbf\xbf"));
  EXPECT_FALSE(IsValidUtf8("\xf4\x90\x80\x80"));  // past U+10FFFF
  EXPECT_FALSE(IsValidUtf8("\xe2\x82"));
  EXPECT_FALSE(IsValidUtf8("\x80"));
  EXPECT_FALSE(IsValidUtf8("\xe0\x80\x80"));  // overlong
  EXPECT_EQ(Utf8SequenceLength("\xe2\x82\xac", 0), 3u);
  EXPECT_EQ(Utf8SequenceLength("a", 1), 0u);
}

TEST(PercentEncode, UnreservedPassEveryOtherByteIsUppercaseHex) {
  std::string out;
  AppendPercentEncoded(std::string("aZ09-._~ /%\x00\xff", 13), &out);
  EXPECT_EQ(out, "aZ09-._~%20%2F%25%00%FF");
  const uint8_t hash[] = {0x12, 0xab, 'x'};
  AppendPercentEncoded(hash, sizeof(hash), &out);
  EXPECT_EQ(out, "aZ09-._~%20%2F%25%00%FF%12%ABx");
}

TEST(Hex, LowercaseTwoDigitsAByte) {
  const uint8_t bytes[] = {0x00, 0x0f, 0xa5, 0xff};
  EXPECT_EQ(ToHex(bytes, sizeof(bytes)), "000fa5ff");
  std::string out = "\\x";
  AppendHex(bytes + 2, 1, &out);
  EXPECT_EQ(out, "\\xa5");
  EXPECT_EQ(ToHex(bytes, 0), "");
}

}  // namespace
}  // namespace torrenty::engine
