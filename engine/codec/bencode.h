// Bencode (BEP 3) decoding into a tree of views over the input, and a streaming encoder.
// Decoding is strict by default; each value keeps its raw bytes, which is what peers hash.
#pragma once

#include <cstddef>
#include <cstdint>
#include <string>
#include <string_view>
#include <utility>
#include <vector>

#include "absl/status/statusor.h"

namespace torrenty::engine::bencode {

struct Value {
  enum class Type { kInt, kString, kList, kDict };

  // Declared here and defaulted in bencode.cc: clang 14 with libstdc++ 12 in C++20 mode rejects
  // the implicit inline constructor, because checking std::pair<string_view, Value>'s
  // explicit(bool) default constructor needs Value while it is still incomplete.
  Value();

  Type type = Type::kInt;
  int64_t integer = 0;
  std::string_view string;
  std::vector<Value> list;
  // Kept in input order; a repeated key is rejected by Decode unless allow_duplicate_keys,
  // and then Find returns the first.
  std::vector<std::pair<std::string_view, Value>> dict;
  // The exact encoded bytes of this value within the input, so callers can hash the
  // original `info` dict instead of a re-encoding that might differ.
  std::string_view raw;

  bool is_int() const { return type == Type::kInt; }
  bool is_string() const { return type == Type::kString; }
  bool is_list() const { return type == Type::kList; }
  bool is_dict() const { return type == Type::kDict; }

  // Returns the value stored under `key` in a dict, or nullptr (also for non-dicts).
  const Value* Find(std::string_view key) const;
  // For optional integer keys of saved state: true when `key` is absent (`*out` untouched) or an
  // integer in [0, max] (stored in `*out`); false for any other type or value.
  bool FindInt(std::string_view key, int64_t max, int64_t* out) const;
};

struct DecodeLimits {
  // Each level of nesting costs a stack frame; hostile input must not exhaust the stack.
  size_t max_depth = 256;
  // Torrents of real-world content stay far below this; bigger inputs are almost
  // certainly garbage or an attempt to make us allocate.
  size_t max_input_bytes = 64 << 20;
  // Every decoded item costs a Value (~100 bytes); this caps memory at a few hundred MiB
  // even for inputs crafted from tiny items like "le".
  size_t max_items = 4'000'000;
  // Tolerance for .torrent files as real creators write them: many end in a newline or other
  // junk after the top-level value, and some repeat a dict key (the first one counts, as in
  // libtorrent). Other inputs (tracker replies, resume data) stay strict.
  bool allow_trailing_bytes = false;
  bool allow_duplicate_keys = false;
};

// Decodes one value spanning all of `input` (or its start, with allow_trailing_bytes). The
// returned string_views point into `input`, which must outlive the result.
[[nodiscard]] absl::StatusOr<Value> Decode(std::string_view input, const DecodeLimits& limits = {});

// Writes bencode into a string. The caller is responsible for structure: every
// BeginList/BeginDict needs a matching End, and dict keys (written with String) must be
// emitted in ascending raw-byte order, each followed by its value, as BEP 3 requires.
class Encoder {
 public:
  void Int(int64_t value);
  void String(std::string_view value);
  void BeginList();
  void BeginDict();
  void End();
  // Returns the encoded bytes and leaves the encoder empty.
  std::string Take();

 private:
  std::string out_;
};

}  // namespace torrenty::engine::bencode
