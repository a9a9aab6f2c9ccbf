// Validates a decoded .torrent and flattens it into Metainfo; the info-hash is taken over
// the original bytes of the info dict so it matches what every other client computes.
#include "engine/metainfo/metainfo.h"

#include <algorithm>
#include <limits>
#include <utility>

#include "absl/container/flat_hash_map.h"
#include "absl/container/flat_hash_set.h"
#include "absl/status/status.h"
#include "absl/strings/ascii.h"
#include "absl/strings/str_cat.h"
#include "absl/strings/str_join.h"
#include "engine/codec/bencode.h"
#include "engine/base/sha1.h"
#include "engine/base/text_escape.h"

namespace torrenty::engine {
namespace {

using bencode::Value;

absl::Status Invalid(absl::string_view what) {
  return absl::InvalidArgumentError(absl::StrCat("metainfo: ", what));
}

// This abseil build has its own string_view type, distinct from std::string_view.
absl::string_view AsAbsl(std::string_view s) { return {s.data(), s.size()}; }
std::string_view AsStd(absl::string_view s) { return {s.data(), s.size()}; }

absl::Span<const uint8_t> Bytes(std::string_view s) {
  return {reinterpret_cast<const uint8_t*>(s.data()), s.size()};
}

// Longest suffix starting at the last '.' that is still treated as an extension when a
// component has to be cut or renamed.
constexpr size_t kMaxExtensionLength = 32;

// Where the extension of a component starts (its last '.', not at the start), or npos.
size_t ExtensionStart(std::string_view component) {
  const size_t dot = component.rfind('.');
  if (dot == std::string_view::npos || dot == 0) return std::string_view::npos;
  if (component.size() - dot > kMaxExtensionLength) return std::string_view::npos;
  return dot;
}

// The longest prefix of `s` that is at most `max` bytes and does not end inside a UTF-8
// sequence (`s` is valid UTF-8 here, so backing off continuation bytes is enough).
std::string_view Utf8Prefix(std::string_view s, size_t max) {
  if (s.size() <= max) return s;
  size_t cut = max;
  while (cut > 0 && (static_cast<uint8_t>(s[cut]) & 0xc0) == 0x80) --cut;
  return s.substr(0, cut);
}

// `stem` + `suffix` within kMaxComponentLength bytes, cutting the stem.
std::string FitComponent(std::string_view stem, std::string_view suffix) {
  return absl::StrCat(AsAbsl(Utf8Prefix(stem, kMaxComponentLength - suffix.size())),
                      AsAbsl(suffix));
}

// The n-th alternative name for a component whose path is taken: "name.n.ext".
std::string NumberedComponent(std::string_view component, int n) {
  size_t dot = ExtensionStart(component);
  if (dot == std::string_view::npos) dot = component.size();
  const std::string suffix = absl::StrCat(".", n, AsAbsl(component.substr(dot)));
  if (suffix.size() >= kMaxComponentLength) return FitComponent(component, absl::StrCat(".", n));
  return FitComponent(component.substr(0, dot), suffix);
}

// Unicode bidirectional controls: they can make "evil\u202Eexe.txt" display as
// "eviltxt.exe", so (like libtorrent) they never reach a file name.
bool IsBidiControl(uint32_t cp) {
  return (cp >= 0x202a && cp <= 0x202e) || cp == 0x200e || cp == 0x200f ||
         (cp >= 0x2066 && cp <= 0x2069);
}

uint32_t DecodeCodePoint(std::string_view s, size_t pos, size_t len) {
  const auto b = [&](size_t i) { return static_cast<uint32_t>(static_cast<uint8_t>(s[pos + i])); };
  switch (len) {
    case 1:
      return b(0);
    case 2:
      return ((b(0) & 0x1f) << 6) | (b(1) & 0x3f);
    case 3:
      return ((b(0) & 0x0f) << 12) | ((b(1) & 0x3f) << 6) | (b(2) & 0x3f);
    default:
      return ((b(0) & 0x07) << 18) | ((b(1) & 0x3f) << 12) | ((b(2) & 0x3f) << 6) | (b(3) & 0x3f);
  }
}

// A string value, preferring `utf8_key` when it is a string of valid UTF-8 (BEP 3 leaves the
// encoding of `name` open; `name.utf-8` is what creators add when theirs was not UTF-8).
const Value* PreferUtf8String(const Value& dict, std::string_view utf8_key, std::string_view key) {
  if (const Value* v = dict.Find(utf8_key);
      v != nullptr && v->is_string() && IsValidUtf8(v->string)) {
    return v;
  }
  const Value* v = dict.Find(key);
  return v != nullptr && v->is_string() ? v : nullptr;
}

// The `path.utf-8` list when it is a non-empty list of valid UTF-8 strings, else `path`.
const Value* PreferUtf8Path(const Value& file) {
  if (const Value* v = file.Find("path.utf-8"); v != nullptr && v->is_list() && !v->list.empty()) {
    const bool usable = std::all_of(v->list.begin(), v->list.end(), [](const Value& c) {
      return c.is_string() && IsValidUtf8(c.string);
    });
    if (usable) return v;
  }
  return file.Find("path");
}

std::string Trimmed(std::string_view s) {
  return std::string(AsStd(absl::StripAsciiWhitespace(AsAbsl(s))));
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
        if (!url.is_string()) continue;
        std::string trimmed = Trimmed(url.string);
        if (!trimmed.empty()) tier.push_back(std::move(trimmed));
      }
      if (!tier.empty()) tiers.push_back(std::move(tier));
    }
  }
  if (tiers.empty()) {
    if (const Value* announce = root.Find("announce");
        announce != nullptr && announce->is_string()) {
      std::string trimmed = Trimmed(announce->string);
      if (!trimmed.empty()) tiers.push_back({std::move(trimmed)});
    }
  }
  return tiers;
}

// BEP 19 `url-list` and BEP 17 `httpseeds`: one string or a list of strings. Like trackers,
// bad entries are skipped rather than failing the torrent.
std::vector<std::string> ParseUrlList(const Value* value) {
  std::vector<std::string> urls;
  if (value == nullptr) return urls;
  const auto add = [&](const Value& v) {
    if (!v.is_string()) return;
    std::string url = Trimmed(v.string);
    if (url.empty() || std::find(urls.begin(), urls.end(), url) != urls.end()) return;
    urls.push_back(std::move(url));
  };
  if (value->is_string()) add(*value);
  if (value->is_list()) {
    for (const Value& v : value->list) add(v);
  }
  return urls;
}

struct Attributes {
  bool pad = false;
  bool executable = false;
  bool hidden = false;
  bool symlink = false;
};

// BEP 47 `attr`: one letter per attribute; letters we do not know are ignored, as the BEP asks.
Attributes ParseAttributes(const Value& dict) {
  Attributes a;
  const Value* attr = dict.Find("attr");
  if (attr == nullptr || !attr->is_string()) return a;
  for (const char c : attr->string) {
    if (c == 'p') a.pad = true;
    if (c == 'x') a.executable = true;
    if (c == 'h') a.hidden = true;
    if (c == 'l') a.symlink = true;
  }
  return a;
}

// Cleaned components of a path list; components that clean to nothing are dropped.
absl::StatusOr<std::vector<std::string>> CleanPathList(const Value& list, size_t file_index,
                                                       std::string_view what) {
  std::vector<std::string> out;
  for (const Value& component : list.list) {
    if (!component.is_string()) {
      return Invalid(
          absl::StrCat("file ", file_index, " has a non-string ", AsAbsl(what), " component"));
    }
    std::string clean = CleanPathComponent(component.string);
    if (!clean.empty()) out.push_back(std::move(clean));
  }
  return out;
}

// BitComet marks its pad files by name only, and libtorrent honours that.
bool IsBitCometPadName(std::string_view last_component) {
  return last_component.find("_____padding_file_") != std::string_view::npos;
}

absl::Status ParseFileList(const Value& files_value, Metainfo* out) {
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
    const Attributes attr = ParseAttributes(f);
    FileEntry entry;
    entry.pad = attr.pad;
    entry.executable = attr.executable;
    entry.hidden = attr.hidden;

    // A symlink occupies no bytes of the torrent's data whatever its `length` says (BEP 47);
    // counting it would shift every later file and make the torrent impossible to finish.
    const bool symlink = attr.symlink && !attr.pad;
    if (!symlink) {
      const Value* length = f.Find("length");
      if (length == nullptr || !length->is_int()) {
        return Invalid(absl::StrCat("file ", i, " has no integer length"));
      }
      if (length->integer < 0) return Invalid(absl::StrCat("file ", i, " has negative length"));
      if (length->integer > std::numeric_limits<int64_t>::max() - offset) {
        return Invalid("total length overflows");
      }
      entry.length = length->integer;
    }

    const Value* path = PreferUtf8Path(f);
    if (entry.pad && (path == nullptr || !path->is_list() || path->list.empty())) {
      // Pad files need no name (libtorrent's convention for nameless ones).
      entry.path = {".pad", absl::StrCat(entry.length)};
    } else {
      if (path == nullptr || !path->is_list()) {
        return Invalid(absl::StrCat("file ", i, " has no path list"));
      }
      if (path->list.empty()) return Invalid(absl::StrCat("file ", i, " has an empty path"));
      absl::StatusOr<std::vector<std::string>> clean = CleanPathList(*path, i, "path");
      if (!clean.ok()) return clean.status();
      entry.path = *std::move(clean);
      // Every component was "", "." or "..": the file still needs a name of its own.
      if (entry.path.empty()) entry.path.push_back("_");
    }
    if (IsBitCometPadName(entry.path.back())) entry.pad = true;

    if (symlink) {
      // Without a usable target the entry is an empty regular file, as in libtorrent.
      if (const Value* target = f.Find("symlink path"); target != nullptr && target->is_list()) {
        absl::StatusOr<std::vector<std::string>> clean = CleanPathList(*target, i, "symlink path");
        if (!clean.ok()) return clean.status();
        entry.symlink_path = *std::move(clean);
      }
    }

    entry.offset = offset;
    offset += entry.length;
    out->files.push_back(std::move(entry));
  }
  out->total_length = offset;
  return absl::OkStatus();
}

// Makes every path that is created on disk distinct and never also a directory, renaming the
// later file "name.1.ext", "name.2.ext", ... (libtorrent's rule). Pad files are skipped: they
// are never created, and two of the same size share a name. Fails only for a path that is too
// long to open, or a pathological number of collisions.
absl::Status ResolvePathConflicts(Metainfo* m) {
  absl::flat_hash_set<std::string> dirs;
  for (const FileEntry& f : m->files) {
    if (f.pad) continue;
    std::string prefix;
    for (size_t c = 0; c + 1 < f.path.size(); ++c) {
      if (c > 0) prefix.push_back('/');
      prefix.append(f.path[c]);
      dirs.insert(prefix);
    }
  }
  absl::flat_hash_set<std::string> taken;
  taken.reserve(m->files.size());
  // Next number to try per original path, so n copies of one name cost O(n), not O(n^2).
  absl::flat_hash_map<std::string, int> next_number;
  // Each failed attempt skips a name that is already taken, so this bounds the work even for
  // crafted sets such as "a", "a.1", "a.2", ... followed by many "a".
  size_t attempts_left = 4 * m->files.size() + 1000;
  for (size_t i = 0; i < m->files.size(); ++i) {
    FileEntry& f = m->files[i];
    if (f.pad) continue;
    std::string joined = absl::StrJoin(f.path, "/");
    if (!dirs.contains(joined) && taken.insert(joined).second) continue;
    const std::string parent =
        f.path.size() > 1 ? absl::StrCat(absl::StrJoin(f.path.begin(), f.path.end() - 1, "/"), "/")
                          : std::string();
    int& n = next_number[joined];
    while (true) {
      if (attempts_left-- == 0) return Invalid("too many conflicting file paths");
      std::string candidate = NumberedComponent(f.path.back(), ++n);
      std::string full = parent + candidate;
      if (!dirs.contains(full) && taken.insert(full).second) {
        f.path.back() = std::move(candidate);
        break;
      }
    }
  }
  for (size_t i = 0; i < m->files.size(); ++i) {
    const FileEntry& f = m->files[i];
    if (f.pad) continue;
    size_t length = m->name.size();
    for (const std::string& c : f.path) length += 1 + c.size();
    if (length > kMaxPathLength) {
      return Invalid(absl::StrCat("file ", i, " path longer than ", kMaxPathLength, " bytes"));
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

std::string CleanPathComponent(std::string_view component) {
  while (!component.empty() && (component.front() == '/' || component.front() == '\\')) {
    component.remove_prefix(1);
  }
  std::string out;
  out.reserve(component.size());
  for (size_t pos = 0; pos < component.size();) {
    const size_t len = Utf8SequenceLength(component, pos);
    if (len == 0) {
      out.push_back('_');
      ++pos;
      continue;
    }
    const uint32_t cp = DecodeCodePoint(component, pos, len);
    if (cp < 0x20 || cp == 0x7f || (cp >= 0x80 && cp < 0xa0) || cp == '/' || cp == '\\' ||
        IsBidiControl(cp)) {
      out.push_back('_');
    } else {
      out.append(component.substr(pos, len));
    }
    pos += len;
  }
  if (out == "." || out == "..") return "";
  if (out.size() > kMaxComponentLength) {
    const size_t dot = ExtensionStart(out);
    if (dot == std::string::npos) return std::string(Utf8Prefix(out, kMaxComponentLength));
    return FitComponent(std::string_view(out).substr(0, dot), std::string_view(out).substr(dot));
  }
  return out;
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
  limits.allow_trailing_bytes = true;
  limits.allow_duplicate_keys = true;
  absl::StatusOr<Value> root = bencode::Decode(torrent_bytes, limits);
  if (!root.ok()) return Invalid(root.status().message());
  if (!root->is_dict()) return Invalid("top level is not a dict");
  const Value* info = root->Find("info");
  if (info == nullptr) return Invalid("missing info dict");
  if (!info->is_dict()) return Invalid("info is not a dict");

  Metainfo m;
  m.info_hash = Sha1(Bytes(info->raw));
  m.info_bytes = std::string(info->raw);

  const Value* name = PreferUtf8String(*info, "name.utf-8", "name");
  if (name == nullptr) return Invalid("missing name");
  m.name = CleanPathComponent(name->string);
  // A name with nothing usable in it ("", ".", "..", "/") still needs a folder or file of its
  // own under the output directory; the info-hash is unique and says where it came from.
  if (m.name.empty()) m.name = ToHex(m.info_hash);
  // Its content would share the folder with every torrent's resume data.
  if (m.name == kStateDirName) m.name.push_back('_');

  const Value* piece_length = info->Find("piece length");
  if (piece_length == nullptr || !piece_length->is_int()) {
    return Invalid("missing integer piece length");
  }
  if (piece_length->integer <= 0) return Invalid("piece length must be > 0");
  if (piece_length->integer > kMaxPieceLength) {
    return Invalid(absl::StrCat("piece length must be <= ", kMaxPieceLength));
  }
  m.piece_length = piece_length->integer;

  const Value* pieces = info->Find("pieces");
  if (pieces == nullptr) {
    // BEP 52: v2-only torrents describe their files in `file tree` and hash them with SHA-256;
    // hybrids also carry the v1 keys and are read as v1 below.
    const Value* version = info->Find("meta version");
    if ((version != nullptr && version->is_int() && version->integer == 2) ||
        info->Find("file tree") != nullptr) {
      return Invalid("v2-only torrents are not supported yet");
    }
  }

  const Value* length = info->Find("length");
  const Value* files = info->Find("files");
  if (length != nullptr && files != nullptr) return Invalid("both length and files present");
  if (length != nullptr) {
    if (!length->is_int()) return Invalid("length is not an integer");
    if (length->integer < 0) return Invalid("length must be >= 0");
    // `p` and `l` make no sense for the only file; `x` and `h` do.
    const Attributes attr = ParseAttributes(*info);
    m.total_length = length->integer;
    m.files.push_back(FileEntry{.path = {},
                                .length = length->integer,
                                .offset = 0,
                                .executable = attr.executable,
                                .hidden = attr.hidden});
  } else if (files != nullptr) {
    m.multi_file = true;
    if (absl::Status s = ParseFileList(*files, &m); !s.ok()) return s;
    if (absl::Status s = ResolvePathConflicts(&m); !s.ok()) return s;
  } else {
    return Invalid("neither length nor files present");
  }
  if (m.payload_length() == 0) return Invalid("total length must be > 0");

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
  m.web_seeds = ParseUrlList(root->Find("url-list"));
  m.http_seeds = ParseUrlList(root->Find("httpseeds"));
  if (const Value* comment = PreferUtf8String(*root, "comment.utf-8", "comment")) {
    m.comment = std::string(comment->string);
  }
  if (const Value* created_by = root->Find("created by");
      created_by != nullptr && created_by->is_string()) {
    m.created_by = std::string(created_by->string);
  }
  return m;
}

}  // namespace torrenty::engine
