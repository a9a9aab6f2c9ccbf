// Fuzzes bencode::Decode. On success it checks that every raw span lies inside its parent's
// (and the top one is the whole input), that containers' children tile their raw bytes in order,
// and that re-encoding with bencode::Encoder (dict keys sorted) is a fixed point which equals the
// input exactly when every dict in the input was already sorted: the decoder is strict, so sorted
// input is the one canonical encoding.
#include <algorithm>
#include <cstddef>
#include <cstdint>
#include <string>
#include <string_view>
#include <vector>

#include "engine/codec/bencode.h"
#include "tests/fuzz/fuzz_check.h"

namespace {

using torrenty::engine::bencode::Decode;
using torrenty::engine::bencode::DecodeLimits;
using torrenty::engine::bencode::Encoder;
using torrenty::engine::bencode::Value;

bool Inside(std::string_view inner, std::string_view outer) {
  return inner.data() >= outer.data() && inner.data() + inner.size() <= outer.data() + outer.size();
}

// Checks span containment and tiling; returns whether every dict below is sorted, and the depth.
bool CheckSpans(const Value& v, size_t depth, size_t* max_depth) {
  *max_depth = std::max(*max_depth, depth);
  FUZZ_CHECK(!v.raw.empty());
  bool sorted = true;
  switch (v.type) {
    case Value::Type::kInt:
      FUZZ_CHECK(v.raw.front() == 'i' && v.raw.back() == 'e');
      break;
    case Value::Type::kString:
      FUZZ_CHECK(Inside(v.string, v.raw));
      FUZZ_CHECK(v.string.data() + v.string.size() == v.raw.data() + v.raw.size());
      break;
    case Value::Type::kList: {
      FUZZ_CHECK(v.raw.front() == 'l' && v.raw.back() == 'e');
      const char* pos = v.raw.data() + 1;
      for (const Value& item : v.list) {
        FUZZ_CHECK(Inside(item.raw, v.raw));
        FUZZ_CHECK(item.raw.data() == pos);  // children are contiguous and in order
        pos += item.raw.size();
        sorted = CheckSpans(item, depth + 1, max_depth) && sorted;
      }
      FUZZ_CHECK(pos == v.raw.data() + v.raw.size() - 1);
      break;
    }
    case Value::Type::kDict: {
      FUZZ_CHECK(v.raw.front() == 'd' && v.raw.back() == 'e');
      const char* pos = v.raw.data() + 1;
      for (size_t i = 0; i < v.dict.size(); ++i) {
        const auto& [key, value] = v.dict[i];
        FUZZ_CHECK(Inside(key, v.raw));
        FUZZ_CHECK(key.data() > pos);  // after its "<len>:" prefix
        FUZZ_CHECK(Inside(value.raw, v.raw));
        FUZZ_CHECK(value.raw.data() == key.data() + key.size());
        pos = value.raw.data() + value.raw.size();
        if (i > 0) {
          FUZZ_CHECK(key != v.dict[i - 1].first);  // duplicates are rejected
          if (key < v.dict[i - 1].first) sorted = false;
        }
        sorted = CheckSpans(value, depth + 1, max_depth) && sorted;
      }
      FUZZ_CHECK(pos == v.raw.data() + v.raw.size() - 1);
      break;
    }
  }
  return sorted;
}

std::vector<const std::pair<std::string_view, Value>*> SortedEntries(const Value& v) {
  std::vector<const std::pair<std::string_view, Value>*> entries;
  entries.reserve(v.dict.size());
  for (const auto& entry : v.dict) entries.push_back(&entry);
  std::sort(entries.begin(), entries.end(),
            [](const auto* a, const auto* b) { return a->first < b->first; });
  return entries;
}

void Encode(const Value& v, Encoder* enc) {
  switch (v.type) {
    case Value::Type::kInt:
      enc->Int(v.integer);
      break;
    case Value::Type::kString:
      enc->String(v.string);
      break;
    case Value::Type::kList:
      enc->BeginList();
      for (const Value& item : v.list) Encode(item, enc);
      enc->End();
      break;
    case Value::Type::kDict: {
      enc->BeginDict();
      for (const auto* entry : SortedEntries(v)) {
        enc->String(entry->first);
        Encode(entry->second, enc);
      }
      enc->End();
      break;
    }
  }
}

// Structural equality up to dict key order.
bool SameValue(const Value& a, const Value& b) {
  if (a.type != b.type) return false;
  switch (a.type) {
    case Value::Type::kInt:
      return a.integer == b.integer;
    case Value::Type::kString:
      return a.string == b.string;
    case Value::Type::kList:
      if (a.list.size() != b.list.size()) return false;
      for (size_t i = 0; i < a.list.size(); ++i) {
        if (!SameValue(a.list[i], b.list[i])) return false;
      }
      return true;
    case Value::Type::kDict:
      if (a.dict.size() != b.dict.size()) return false;
      {
        const auto sa = SortedEntries(a);
        const auto sb = SortedEntries(b);
        for (size_t i = 0; i < sa.size(); ++i) {
          if (sa[i]->first != sb[i]->first || !SameValue(sa[i]->second, sb[i]->second)) {
            return false;
          }
        }
      }
      return true;
  }
  return false;
}

}  // namespace

extern "C" int LLVMFuzzerTestOneInput(const uint8_t* data, size_t size) {
  const std::string_view input(reinterpret_cast<const char*>(data), size);
  absl::StatusOr<Value> decoded = Decode(input);

  // Tight limits may only turn a success into a failure, never change the value.
  DecodeLimits tight;
  tight.max_depth = 4;
  tight.max_items = 64;
  absl::StatusOr<Value> limited = Decode(input, tight);
  if (limited.ok()) {
    FUZZ_CHECK(decoded.ok());
    FUZZ_CHECK(SameValue(*limited, *decoded));
  }
  if (!decoded.ok()) return 0;

  const Value& v = *decoded;
  FUZZ_CHECK(v.raw.data() == input.data() && v.raw.size() == input.size());
  size_t depth = 0;
  const bool sorted = CheckSpans(v, 0, &depth);
  FUZZ_CHECK(depth <= DecodeLimits{}.max_depth);

  Encoder enc;
  Encode(v, &enc);
  const std::string canonical = enc.Take();
  FUZZ_CHECK(canonical.size() == input.size());  // strictness: only key order may differ
  if (sorted) FUZZ_CHECK(canonical == input);

  absl::StatusOr<Value> again = Decode(canonical);
  FUZZ_CHECK(again.ok());
  FUZZ_CHECK(SameValue(*again, v));
  Encoder enc2;
  Encode(*again, &enc2);
  FUZZ_CHECK(enc2.Take() == canonical);
  return 0;
}
