// Tests for the strict bencode decoder and the encoder.
#include "engine/codec/bencode.h"

#include <string>

#include "gmock/gmock.h"
#include "gtest/gtest.h"

namespace torrenty::engine::bencode {
namespace {

using ::testing::HasSubstr;

std::string ErrorOf(std::string_view input, const DecodeLimits& limits = {}) {
  absl::StatusOr<Value> v = Decode(input, limits);
  EXPECT_FALSE(v.ok()) << "accepted: " << input;
  return v.ok() ? "" : std::string(v.status().message());
}

TEST(BencodeDecode, Integers) {
  for (auto [text, value] :
       std::vector<std::pair<std::string, int64_t>>{{"i0e", 0},
                                                    {"i42e", 42},
                                                    {"i-7e", -7},
                                                    {"i9223372036854775807e", INT64_MAX},
                                                    {"i-9223372036854775808e", INT64_MIN}}) {
    absl::StatusOr<Value> v = Decode(text);
    ASSERT_TRUE(v.ok()) << text << ": " << v.status();
    EXPECT_TRUE(v->is_int());
    EXPECT_EQ(v->integer, value);
    EXPECT_EQ(v->raw, text);
  }
}

TEST(BencodeDecode, RejectsBadIntegers) {
  EXPECT_THAT(ErrorOf("i03e"), HasSubstr("leading zero"));
  EXPECT_THAT(ErrorOf("i-0e"), HasSubstr("negative zero"));
  EXPECT_THAT(ErrorOf("ie"), HasSubstr("without digits"));
  EXPECT_THAT(ErrorOf("i-e"), HasSubstr("without digits"));
  EXPECT_THAT(ErrorOf("i12"), HasSubstr("expected 'e'"));
  EXPECT_THAT(ErrorOf("i1x2e"), HasSubstr("expected 'e'"));
  EXPECT_THAT(ErrorOf("i9223372036854775808e"), HasSubstr("out of range"));
  EXPECT_THAT(ErrorOf("i-9223372036854775809e"), HasSubstr("out of range"));
  EXPECT_THAT(ErrorOf("i99999999999999999999999999e"), HasSubstr("out of range"));
}

TEST(BencodeDecode, Strings) {
  absl::StatusOr<Value> v = Decode("5:hello");
  ASSERT_TRUE(v.ok());
  EXPECT_TRUE(v->is_string());
  EXPECT_EQ(v->string, "hello");
  v = Decode("0:");
  ASSERT_TRUE(v.ok());
  EXPECT_EQ(v->string, "");
  const std::string binary("3:\0\xff\x01", 5);
  v = Decode(binary);
  ASSERT_TRUE(v.ok());
  EXPECT_EQ(v->string, std::string_view("\0\xff\x01", 3));
}

TEST(BencodeDecode, RejectsBadStrings) {
  EXPECT_THAT(ErrorOf("03:abc"), HasSubstr("leading zero"));
  EXPECT_THAT(ErrorOf("5:abc"), HasSubstr("past end"));
  EXPECT_THAT(ErrorOf("3abc"), HasSubstr("expected ':'"));
  EXPECT_THAT(ErrorOf("1"), HasSubstr("expected ':'"));
  // Lengths that would overflow size_t must be rejected, not wrap around.
  EXPECT_THAT(ErrorOf("18446744073709551617:a"), HasSubstr("past end"));
  EXPECT_THAT(ErrorOf("99999999999999999999999999999999:a"), HasSubstr("past end"));
}

TEST(BencodeDecode, ErrorsNameTheOffset) {
  EXPECT_THAT(ErrorOf("l5:abcd"), HasSubstr("past end of input at byte 1"));
  EXPECT_THAT(ErrorOf("li1ei03ee"), HasSubstr("at byte 5"));
  EXPECT_THAT(ErrorOf("i1ei2e"), HasSubstr("trailing bytes after value at byte 3"));
}

TEST(BencodeDecode, ListsAndDicts) {
  const std::string input = "d3:bari1e3:fool4:spami-3eee";
  absl::StatusOr<Value> v = Decode(input);
  ASSERT_TRUE(v.ok()) << v.status();
  ASSERT_TRUE(v->is_dict());
  ASSERT_EQ(v->dict.size(), 2u);
  const Value* foo = v->Find("foo");
  ASSERT_NE(foo, nullptr);
  ASSERT_TRUE(foo->is_list());
  ASSERT_EQ(foo->list.size(), 2u);
  EXPECT_EQ(foo->list[0].string, "spam");
  EXPECT_EQ(foo->list[1].integer, -3);
  EXPECT_EQ(foo->raw, "l4:spami-3ee");
  EXPECT_EQ(v->Find("bar")->integer, 1);
  EXPECT_EQ(v->Find("baz"), nullptr);
  EXPECT_EQ(foo->Find("x"), nullptr);
  EXPECT_EQ(v->raw, input);
  // raw must view the caller's buffer, not a copy.
  EXPECT_EQ(foo->raw.data(), input.data() + input.find("l4"));
}

TEST(BencodeDecode, EmptyContainers) {
  absl::StatusOr<Value> v = Decode("le");
  ASSERT_TRUE(v.ok());
  EXPECT_TRUE(v->is_list());
  EXPECT_TRUE(v->list.empty());
  v = Decode("de");
  ASSERT_TRUE(v.ok());
  EXPECT_TRUE(v->is_dict());
}

TEST(BencodeDecode, AcceptsUnsortedKeys) {
  absl::StatusOr<Value> v = Decode("d1:bi1e1:ai2ee");
  ASSERT_TRUE(v.ok()) << v.status();
  EXPECT_EQ(v->Find("a")->integer, 2);
}

TEST(BencodeDecode, RejectsDuplicateKeys) {
  EXPECT_THAT(ErrorOf("d1:ai1e1:ai2ee"), HasSubstr("duplicate dict key at byte 7"));
  // Duplicates that are not adjacent, in an unsorted dict.
  EXPECT_THAT(ErrorOf("d1:ai1e1:ci2e1:bi3e1:ai4ee"), HasSubstr("duplicate dict key"));
}

TEST(BencodeDecode, DuplicateKeysKeepTheFirstWhenAllowed) {
  DecodeLimits tolerant;
  tolerant.allow_duplicate_keys = true;
  for (const std::string input : {"d1:ai1e1:ai2ee", "d1:ai1e1:ci2e1:bi3e1:ai4ee"}) {
    absl::StatusOr<Value> v = Decode(input, tolerant);
    ASSERT_TRUE(v.ok()) << input << ": " << v.status();
    EXPECT_EQ(v->Find("a")->integer, 1) << input;
    EXPECT_EQ(v->raw, input);
  }
  // The option does not relax anything else.
  EXPECT_THAT(ErrorOf("d1:ai1e1:ae", tolerant), HasSubstr("unexpected character"));
}

TEST(BencodeDecode, TrailingBytesWhenAllowed) {
  DecodeLimits tolerant;
  tolerant.allow_trailing_bytes = true;
  absl::StatusOr<Value> v = Decode("d1:ai1ee\n", tolerant);
  ASSERT_TRUE(v.ok()) << v.status();
  EXPECT_EQ(v->raw, "d1:ai1ee");
  EXPECT_TRUE(Decode("i1eGARBAGE", tolerant).ok());
  // The leading value must still be complete and well formed.
  EXPECT_THAT(ErrorOf("d1:ai1e", tolerant), HasSubstr("unterminated dict"));
  EXPECT_THAT(ErrorOf("", tolerant), HasSubstr("unexpected end"));
}

TEST(BencodeDecode, RejectsNonStringKeys) {
  EXPECT_THAT(ErrorOf("di1ei2ee"), HasSubstr("dict key is not a string at byte 1"));
  EXPECT_THAT(ErrorOf("dlei2ee"), HasSubstr("dict key is not a string"));
}

TEST(BencodeDecode, RejectsStructuralErrors) {
  EXPECT_THAT(ErrorOf(""), HasSubstr("unexpected end"));
  EXPECT_THAT(ErrorOf("l"), HasSubstr("unterminated list"));
  EXPECT_THAT(ErrorOf("li1e"), HasSubstr("unterminated list"));
  EXPECT_THAT(ErrorOf("d1:a"), HasSubstr("unexpected end"));
  EXPECT_THAT(ErrorOf("d1:ai1e"), HasSubstr("unterminated dict"));
  EXPECT_THAT(ErrorOf("e"), HasSubstr("unexpected character at byte 0"));
  EXPECT_THAT(ErrorOf("x"), HasSubstr("unexpected character"));
  EXPECT_THAT(ErrorOf("i1ee"), HasSubstr("trailing bytes"));
  EXPECT_THAT(ErrorOf("lee"), HasSubstr("trailing bytes"));
}

TEST(BencodeDecode, DepthLimit) {
  DecodeLimits limits;
  limits.max_depth = 3;
  EXPECT_TRUE(Decode("llleee", limits).ok());
  EXPECT_THAT(ErrorOf("lllleeee", limits), HasSubstr("nesting too deep at byte 3"));
  // Far deeper than any stack could take if depth were unbounded.
  const std::string deep = std::string(1'000'000, 'l') + std::string(1'000'000, 'e');
  EXPECT_THAT(ErrorOf(deep), HasSubstr("nesting too deep at byte 256"));
  const std::string deep_dicts = [] {
    std::string s;
    for (int i = 0; i < 100'000; ++i) s += "d1:a";
    return s;
  }();
  EXPECT_THAT(ErrorOf(deep_dicts), HasSubstr("nesting too deep"));
}

TEST(BencodeDecode, ItemAndSizeLimits) {
  DecodeLimits limits;
  limits.max_items = 3;
  EXPECT_TRUE(Decode("li1ei2ee", limits).ok());
  EXPECT_THAT(ErrorOf("li1ei2ei3ee", limits), HasSubstr("too many items"));
  limits = {};
  limits.max_input_bytes = 4;
  EXPECT_TRUE(Decode("i12e", limits).ok());
  EXPECT_THAT(ErrorOf("i123e", limits), HasSubstr("exceeds limit"));
}

TEST(BencodeEncode, RoundTrip) {
  Encoder e;
  e.BeginDict();
  e.String("a");
  e.Int(-5);
  e.String("b");
  e.BeginList();
  e.String("xyz");
  e.Int(0);
  e.String("");
  e.End();
  e.String("c");
  e.BeginDict();
  e.End();
  e.End();
  const std::string encoded = e.Take();
  EXPECT_EQ(encoded, "d1:ai-5e1:bl3:xyzi0e0:e1:cdee");
  absl::StatusOr<Value> v = Decode(encoded);
  ASSERT_TRUE(v.ok()) << v.status();
  EXPECT_EQ(v->Find("b")->list[0].string, "xyz");
  EXPECT_EQ(e.Take(), "");
  e.Int(INT64_MIN);
  EXPECT_EQ(e.Take(), "i-9223372036854775808e");
}

TEST(BencodeValue, FindIntAcceptsAbsentOrInRangeOnly) {
  auto v = Decode("d1:ai5e1:bi-1e1:ci100e1:d1:xe");
  ASSERT_TRUE(v.ok());
  int64_t out = 7;
  EXPECT_TRUE(v->FindInt("missing", 10, &out));
  EXPECT_EQ(out, 7);
  EXPECT_TRUE(v->FindInt("a", 10, &out));
  EXPECT_EQ(out, 5);
  EXPECT_FALSE(v->FindInt("b", 10, &out));
  EXPECT_FALSE(v->FindInt("c", 10, &out));
  EXPECT_FALSE(v->FindInt("d", 10, &out));
  EXPECT_EQ(out, 5);
}

}  // namespace
}  // namespace torrenty::engine::bencode
