// Validates a decoded .torrent and flattens it into Metainfo; the info-hash is taken over
// the original bytes of the info dict so it matches what every other client computes.
#include "engine/metainfo.h"

#include <algorithm>
#include <limits>
#include <utility>

#include "absl/container/flat_hash_set.h"
#include "absl/status/status.h"
#include "absl/strings/escaping.h"
#include "absl/strings/str_cat.h"
#include "absl/strings/str_join.h"
#include "engine/bencode.h"
#include "engine/sha1.h"

namespace torrenty::engine {
namespace {

using bencode::Value;

absl::Status Invalid(absl::string_view what) {
  return absl::InvalidArgumentError(absl::StrCat("metainfo: ", what));
}

// This abseil build has its own string_view type, distinct from std::string_view.
absl::string_view AsAbsl(std::string_view s) { return {s.data(), s.size()}; }

absl::Span<const uint8_t> Bytes(std::string_view s) {
  return {reinterpret_cast<const uint8_t*>(s.data()), s.size()};
}

// Trackers are advisory: a malformed announce-list should not make an otherwise valid
// torrent unusable (DHT-less clients still get `announce`), so bad entries are skipped.
std::vector<std::vector<std::string>> ParseTrackers(const Value& root) {
  std::vector<std::vector<std::string>> tiers;
  if (const Value* list = root.Find("announce-list"); list != nullptr && list->is_list()) {
    for (const Value& tier_value : list->list) {
      if (!tier_value.is_list()) continue;
      std::vector<std::string> tier;
      for (const Value& url : tier_value.list) {
        if (url.is_string() && !url.string.empty()) tier.emplace_back(url.string);
      }
      if (!tier.empty()) tiers.push_back(std::move(tier));
    }
  }
  if (tiers.empty()) {
    if (const Value* announce = root.Find("announce");
        announce != nullptr && announce->is_string() && !announce->string.empty()) {
      tiers.push_back({std::string(announce->string)});
    }
  }
  return tiers;
}

absl::Status ParseFileList(const Value& files_value, size_t name_length, Metainfo* out) {
  if (!files_value.is_list()) return Invalid("files must be a list");
  if (files_value.list.empty()) return Invalid("files list is empty");
  if (files_value.list.size() > kMaxFiles) {
    return Invalid(absl::StrCat("more than ", kMaxFiles, " files"));
  }
  out->files.reserve(files_value.list.size());
  int64_t offset = 0;
  for (size_t i = 0; i < files_value.list.size(); ++i) {
    const Value& f = files_value.list[i];
    if (!f.is_dict()) return Invalid(absl::StrCat("file ", i, " is not a dict"));
    const Value* length = f.Find("length");
    if (length == nullptr || !length->is_int()) {
      return Invalid(absl::StrCat("file ", i, " has no integer length"));
    }
    if (length->integer < 0) return Invalid(absl::StrCat("file ", i, " has negative length"));
    if (length->integer > std::numeric_limits<int64_t>::max() - offset) {
      return Invalid("total length overflows");
    }
    const Value* path = f.Find("path");
    if (path == nullptr || !path->is_list()) {
      return Invalid(absl::StrCat("file ", i, " has no path list"));
    }
    if (path->list.empty()) return Invalid(absl::StrCat("file ", i, " has an empty path"));
    FileEntry entry;
    size_t path_length = name_length;
    for (const Value& component : path->list) {
      if (!component.is_string()) {
        return Invalid(absl::StrCat("file ", i, " has a non-string path component"));
      }
      if (!IsSafePathComponent(component.string)) {
        return Invalid(absl::StrCat("file ", i, " has unsafe path component \"",
                                    absl::CHexEscape(AsAbsl(component.string)), "\""));
      }
      // +1 for the separator; sizes are bounded by the input size, so no overflow.
      path_length += 1 + component.string.size();
      if (path_length > kMaxPathLength) {
        return Invalid(absl::StrCat("file ", i, " path longer than ", kMaxPathLength, " bytes"));
      }
      entry.path.emplace_back(component.string);
    }
    entry.length = length->integer;
    entry.offset = offset;
    offset += entry.length;
    out->files.push_back(std::move(entry));
  }
  out->total_length = offset;

  // Two entries writing to the same path, or a file also used as a directory, would
  // corrupt each other's data on disk.
  absl::flat_hash_set<std::string> paths;
  paths.reserve(out->files.size());
  for (const FileEntry& f : out->files) {
    if (!paths.insert(absl::StrJoin(f.path, "/")).second) {
      return Invalid(absl::StrCat("duplicate file path \"", absl::StrJoin(f.path, "/"), "\""));
    }
  }
  for (const FileEntry& f : out->files) {
    std::string prefix;
    for (size_t c = 0; c + 1 < f.path.size(); ++c) {
      if (c > 0) prefix.push_back('/');
      prefix.append(f.path[c]);
      if (paths.contains(prefix)) {
        return Invalid(absl::StrCat("file path \"", prefix, "\" is also a directory"));
      }
    }
  }
  return absl::OkStatus();
}

}  // namespace

bool IsSafePathComponent(std::string_view component) {
  if (component.empty() || component == "." || component == "..") return false;
  return component.find('/') == std::string_view::npos &&
         component.find('\0') == std::string_view::npos;
}

uint32_t Metainfo::PieceSize(uint32_t piece) const {
  if (piece >= num_pieces() || piece_length <= 0) return 0;
  const int64_t start = static_cast<int64_t>(piece) * piece_length;
  const int64_t remaining = total_length - start;
  return static_cast<uint32_t>(remaining < piece_length ? remaining : piece_length);
}

int64_t Metainfo::payload_length() const {
  int64_t sum = 0;
  for (const FileEntry& f : files) {
    if (!f.pad) sum += f.length;
  }
  return sum;
}

std::string Metainfo::RelativePath(size_t file_index) const {
  if (!multi_file || file_index >= files.size()) return name;
  return absl::StrCat(name, "/", absl::StrJoin(files[file_index].path, "/"));
}

absl::StatusOr<Metainfo> ParseMetainfo(std::string_view torrent_bytes) {
  // Each file costs at least four items (dict, length, path list, component), so the
  // default item cap would reject torrents well below kMaxFiles; raise it so the file
  // limit is the one that applies.
  bencode::DecodeLimits limits;
  limits.max_items = 6 * kMaxFiles;
  absl::StatusOr<Value> root = bencode::Decode(torrent_bytes, limits);
  if (!root.ok()) return Invalid(root.status().message());
  if (!root->is_dict()) return Invalid("top level is not a dict");
  const Value* info = root->Find("info");
  if (info == nullptr) return Invalid("missing info dict");
  if (!info->is_dict()) return Invalid("info is not a dict");

  Metainfo m;
  m.info_hash = Sha1(Bytes(info->raw));

  const Value* name = info->Find("name");
  if (name == nullptr || !name->is_string()) return Invalid("missing name");
  if (name->string.empty()) return Invalid("name is empty");
  if (!IsSafePathComponent(name->string)) {
    return Invalid(absl::StrCat("unsafe name \"", absl::CHexEscape(AsAbsl(name->string)), "\""));
  }
  if (name->string.size() > kMaxPathLength) return Invalid("name too long");
  m.name = std::string(name->string);

  const Value* piece_length = info->Find("piece length");
  if (piece_length == nullptr || !piece_length->is_int()) {
    return Invalid("missing integer piece length");
  }
  if (piece_length->integer <= 0) return Invalid("piece length must be > 0");
  if (piece_length->integer > kMaxPieceLength) {
    return Invalid(absl::StrCat("piece length must be <= ", kMaxPieceLength));
  }
  m.piece_length = piece_length->integer;

  const Value* length = info->Find("length");
  const Value* files = info->Find("files");
  if (length != nullptr && files != nullptr) return Invalid("both length and files present");
  if (length != nullptr) {
    if (!length->is_int()) return Invalid("length is not an integer");
    if (length->integer < 0) return Invalid("length must be >= 0");
    m.total_length = length->integer;
    m.files.push_back(FileEntry{.path = {}, .length = length->integer, .offset = 0});
  } else if (files != nullptr) {
    m.multi_file = true;
    if (absl::Status s = ParseFileList(*files, m.name.size(), &m); !s.ok()) return s;
  } else {
    return Invalid("neither length nor files present");
  }
  if (m.total_length == 0) return Invalid("total length must be > 0");

  const Value* pieces = info->Find("pieces");
  if (pieces == nullptr || !pieces->is_string()) return Invalid("missing pieces string");
  if (pieces->string.size() % 20 != 0) return Invalid("pieces length is not a multiple of 20");
  // total_length > 0 and piece_length > 0, so this cannot overflow.
  const int64_t expected_pieces = (m.total_length - 1) / m.piece_length + 1;
  if (expected_pieces > kMaxPieces) {
    return Invalid(absl::StrCat("more than ", kMaxPieces, " pieces"));
  }
  const int64_t actual_pieces = static_cast<int64_t>(pieces->string.size() / 20);
  if (actual_pieces != expected_pieces) {
    return Invalid(
        absl::StrCat("pieces has ", actual_pieces, " hashes but the data needs ", expected_pieces));
  }
  m.piece_hashes.resize(static_cast<size_t>(actual_pieces));
  for (size_t i = 0; i < m.piece_hashes.size(); ++i) {
    const std::string_view h = pieces->string.substr(i * 20, 20);
    std::copy(h.begin(), h.end(), m.piece_hashes[i].begin());
  }

  // BEP 27: only private=1 marks a private torrent.
  if (const Value* priv = info->Find("private"); priv != nullptr && priv->is_int()) {
    m.is_private = priv->integer == 1;
  }

  m.trackers = ParseTrackers(*root);
  if (const Value* comment = root->Find("comment"); comment != nullptr && comment->is_string()) {
    m.comment = std::string(comment->string);
  }
  if (const Value* created_by = root->Find("created by");
      created_by != nullptr && created_by->is_string()) {
    m.created_by = std::string(created_by->string);
  }
  return m;
}

}  // namespace torrenty::engine
