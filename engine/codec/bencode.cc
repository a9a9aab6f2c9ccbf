// Recursive-descent bencode decoder (depth-bounded, strict unless told otherwise) and the encoder.
#include "engine/codec/bencode.h"

#include <algorithm>
#include <limits>

#include "absl/status/status.h"
#include "absl/strings/str_cat.h"

namespace torrenty::engine::bencode {
namespace {

class Parser {
 public:
  Parser(std::string_view input, const DecodeLimits& limits) : in_(input), limits_(limits) {}

  absl::StatusOr<Value> ParseTop() {
    Value v;
    if (absl::Status s = ParseValue(0, &v); !s.ok()) return s;
    if (pos_ != in_.size() && !limits_.allow_trailing_bytes) {
      return Error("trailing bytes after value");
    }
    return v;
  }

 private:
  absl::Status Error(absl::string_view what) const { return ErrorAt(what, pos_); }
  static absl::Status ErrorAt(absl::string_view what, size_t offset) {
    return absl::InvalidArgumentError(absl::StrCat("bencode: ", what, " at byte ", offset));
  }

  bool AtEnd() const { return pos_ >= in_.size(); }
  static bool IsDigit(char c) { return c >= '0' && c <= '9'; }

  absl::Status ParseValue(size_t depth, Value* out) {
    if (AtEnd()) return Error("unexpected end of input");
    if (++items_ > limits_.max_items) return Error("too many items");
    const size_t start = pos_;
    const char c = in_[pos_];
    absl::Status s;
    if (c == 'i') {
      out->type = Value::Type::kInt;
      s = ParseInt(&out->integer);
    } else if (IsDigit(c)) {
      out->type = Value::Type::kString;
      s = ParseString(&out->string);
    } else if (c == 'l' || c == 'd') {
      // Depth counts containers, so max_depth bounds the recursion below.
      if (depth >= limits_.max_depth) return Error("nesting too deep");
      s = c == 'l' ? ParseList(depth + 1, out) : ParseDict(depth + 1, out);
    } else {
      return Error("unexpected character");
    }
    if (!s.ok()) return s;
    out->raw = in_.substr(start, pos_ - start);
    return absl::OkStatus();
  }

  absl::Status ParseInt(int64_t* out) {
    ++pos_;  // 'i'
    const size_t start = pos_;
    bool negative = false;
    if (!AtEnd() && in_[pos_] == '-') {
      negative = true;
      ++pos_;
    }
    const size_t digits_start = pos_;
    // Accumulate the magnitude unsigned so INT64_MIN is representable.
    const uint64_t limit = negative ? uint64_t{1} << 63 : std::numeric_limits<int64_t>::max();
    uint64_t magnitude = 0;
    while (!AtEnd() && IsDigit(in_[pos_])) {
      const uint64_t d = static_cast<uint64_t>(in_[pos_] - '0');
      if (magnitude > (limit - d) / 10) return ErrorAt("integer out of range", start);
      magnitude = magnitude * 10 + d;
      ++pos_;
    }
    const size_t ndigits = pos_ - digits_start;
    if (ndigits == 0) return ErrorAt("integer without digits", start);
    if (AtEnd() || in_[pos_] != 'e') return Error("expected 'e' to end integer");
    if (in_[digits_start] == '0' && ndigits > 1) return ErrorAt("integer with leading zero", start);
    if (negative && magnitude == 0) return ErrorAt("negative zero", start);
    ++pos_;  // 'e'
    *out = negative ? static_cast<int64_t>(~magnitude + 1) : static_cast<int64_t>(magnitude);
    return absl::OkStatus();
  }

  absl::Status ParseString(std::string_view* out) {
    const size_t start = pos_;
    size_t length = 0;
    while (!AtEnd() && IsDigit(in_[pos_])) {
      length = length * 10 + static_cast<size_t>(in_[pos_] - '0');
      // Checking against the input size on every digit also keeps `length` far from
      // overflowing, because the input size is bounded.
      if (length > in_.size()) return ErrorAt("string length past end of input", start);
      ++pos_;
    }
    if (pos_ - start > 1 && in_[start] == '0')
      return ErrorAt("string length with leading zero", start);
    if (AtEnd() || in_[pos_] != ':') return Error("expected ':' after string length");
    ++pos_;
    if (length > in_.size() - pos_) return ErrorAt("string length past end of input", start);
    *out = in_.substr(pos_, length);
    pos_ += length;
    return absl::OkStatus();
  }

  absl::Status ParseList(size_t depth, Value* out) {
    out->type = Value::Type::kList;
    ++pos_;  // 'l'
    while (true) {
      if (AtEnd()) return Error("unterminated list");
      if (in_[pos_] == 'e') break;
      Value item;
      if (absl::Status s = ParseValue(depth, &item); !s.ok()) return s;
      out->list.push_back(std::move(item));
    }
    ++pos_;
    return absl::OkStatus();
  }

  absl::Status ParseDict(size_t depth, Value* out) {
    out->type = Value::Type::kDict;
    const size_t dict_start = pos_;
    ++pos_;  // 'd'
    bool sorted = true;
    while (true) {
      if (AtEnd()) return Error("unterminated dict");
      if (in_[pos_] == 'e') break;
      if (!IsDigit(in_[pos_])) return Error("dict key is not a string");
      const size_t key_pos = pos_;
      std::string_view key;
      if (absl::Status s = ParseString(&key); !s.ok()) return s;
      if (!out->dict.empty()) {
        const std::string_view prev = out->dict.back().first;
        if (key == prev && !limits_.allow_duplicate_keys) {
          return ErrorAt("duplicate dict key", key_pos);
        }
        if (key < prev) sorted = false;
      }
      Value value;
      if (absl::Status s = ParseValue(depth, &value); !s.ok()) return s;
      out->dict.emplace_back(key, std::move(value));
    }
    ++pos_;
    // Strictly ascending keys cannot repeat; only unsorted dicts (which real torrents
    // contain) need the full check.
    if (!sorted && !limits_.allow_duplicate_keys) {
      std::vector<std::string_view> keys;
      keys.reserve(out->dict.size());
      for (const auto& [k, v] : out->dict) keys.push_back(k);
      std::sort(keys.begin(), keys.end());
      if (std::adjacent_find(keys.begin(), keys.end()) != keys.end()) {
        return ErrorAt("duplicate dict key", dict_start);
      }
    }
    return absl::OkStatus();
  }

  std::string_view in_;
  const DecodeLimits& limits_;
  size_t pos_ = 0;
  size_t items_ = 0;
};

}  // namespace

Value::Value() = default;

const Value* Value::Find(std::string_view key) const {
  if (type != Type::kDict) return nullptr;
  for (const auto& [k, v] : dict) {
    if (k == key) return &v;
  }
  return nullptr;
}

bool Value::FindInt(std::string_view key, int64_t max, int64_t* out) const {
  const Value* n = Find(key);
  if (n == nullptr) return true;
  if (!n->is_int() || n->integer < 0 || n->integer > max) return false;
  *out = n->integer;
  return true;
}

absl::StatusOr<Value> Decode(std::string_view input, const DecodeLimits& limits) {
  if (input.size() > limits.max_input_bytes) {
    return absl::InvalidArgumentError(absl::StrCat("bencode: input of ", input.size(),
                                                   " bytes exceeds limit of ",
                                                   limits.max_input_bytes, " at byte 0"));
  }
  return Parser(input, limits).ParseTop();
}

void Encoder::Int(int64_t value) { absl::StrAppend(&out_, "i", value, "e"); }

void Encoder::String(std::string_view value) {
  absl::StrAppend(&out_, value.size(), ":");
  out_.append(value);
}

void Encoder::BeginList() { out_.push_back('l'); }
void Encoder::BeginDict() { out_.push_back('d'); }
void Encoder::End() { out_.push_back('e'); }

std::string Encoder::Take() {
  std::string result = std::move(out_);
  out_.clear();
  return result;
}

}  // namespace torrenty::engine::bencode
