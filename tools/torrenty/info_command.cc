// `torrenty info`: prints a .torrent's name, info-hash, sizes, files, trackers and web seeds, as
// text or (--json) as one JSON object. Everything that comes from the torrent is escaped, so a
// hostile name cannot forge output lines or reach the terminal as a control sequence.
#include <cstdint>
#include <cstdio>
#include <string>
#include <string_view>
#include <vector>

#include "absl/status/status.h"
#include "absl/status/statusor.h"
#include "absl/strings/str_cat.h"
#include "absl/strings/str_join.h"
#include "engine/base/text_escape.h"
#include "engine/base/types.h"
#include "engine/metainfo/magnet.h"
#include "engine/metainfo/metainfo.h"
#include "tools/torrenty/cli_util.h"
#include "tools/torrenty/commands.h"

namespace torrenty::tools {
namespace {

constexpr char kUsage[] =
    "usage: torrenty info [--json] TORRENT\n"
    "\n"
    "Prints the name, info-hash, size, files, trackers and web seeds of a .torrent file.\n"
    "  --json      print one JSON object instead of text\n"
    "  -h, --help  show this help\n";

std::string Shown(std::string_view text) { return engine::EscapeForTerminal(text); }
// This abseil build has its own string_view type, distinct from std::string_view.
std::string ShownAbsl(absl::string_view text) {
  return Shown(std::string_view(text.data(), text.size()));
}

// A JSON string literal. Control characters (C0, DEL, C1) are written as \uXXXX, and bytes that
// are not valid UTF-8 become U+FFFD, so the output is valid JSON (RFC 8259 requires UTF-8) and
// safe to print.
std::string JsonString(std::string_view s) {
  std::string out = "\"";
  for (size_t pos = 0; pos < s.size();) {
    const auto b = static_cast<uint8_t>(s[pos]);
    const size_t len = engine::Utf8SequenceLength(s, pos);
    if (len == 0) {
      out += "\\ufffd";
      ++pos;
      continue;
    }
    uint32_t cp = b;
    if (len == 2) cp = ((b & 0x1fu) << 6) | (static_cast<uint8_t>(s[pos + 1]) & 0x3fu);
    if (cp == '"') {
      out += "\\\"";
    } else if (cp == '\\') {
      out += "\\\\";
    } else if (cp == '\n') {
      out += "\\n";
    } else if (cp == '\r') {
      out += "\\r";
    } else if (cp == '\t') {
      out += "\\t";
    } else if (cp < 0x20 || cp == 0x7f || (cp >= 0x80 && cp < 0xa0)) {
      out += "\\u00";
      const uint8_t byte = static_cast<uint8_t>(cp);
      engine::AppendHex(&byte, 1, &out);
    } else {
      out.append(s.substr(pos, len));
    }
    pos += len;
  }
  out += "\"";
  return out;
}

std::string JsonStrings(const std::vector<std::string>& v) {
  std::vector<std::string> quoted;
  quoted.reserve(v.size());
  for (const std::string& s : v) quoted.push_back(JsonString(s));
  return absl::StrCat("[", absl::StrJoin(quoted, ", "), "]");
}

// Where a symlink points, in the same form as the file paths that are printed.
std::string SymlinkTarget(const engine::Metainfo& m, const engine::FileEntry& f) {
  return absl::StrCat(m.name, "/", absl::StrJoin(f.symlink_path, "/"));
}

std::string Attrs(const engine::FileEntry& f) {
  std::string a;
  if (f.executable) a += 'x';
  if (f.hidden) a += 'h';
  if (f.is_symlink()) a += 'l';
  return a;
}

std::string Text(const engine::Metainfo& m) {
  std::string out;
  const int64_t size = m.payload_length();
  absl::StrAppend(&out, "name: ", Shown(m.name), "\n");
  absl::StrAppend(&out, "info-hash: ", engine::ToHex(m.info_hash), "\n");
  absl::StrAppend(&out, "magnet: ", engine::MakeMagnet(m), "\n");
  absl::StrAppend(&out, "total size: ", size, " bytes (", HumanBytes(static_cast<double>(size)),
                  ")\n");
  absl::StrAppend(&out, "piece length: ", m.piece_length, "\n");
  absl::StrAppend(&out, "pieces: ", m.num_pieces(), "\n");
  absl::StrAppend(&out, "private: ", m.is_private ? "yes" : "no", "\n");
  if (!m.comment.empty()) absl::StrAppend(&out, "comment: ", Shown(m.comment), "\n");
  if (!m.created_by.empty()) absl::StrAppend(&out, "created by: ", Shown(m.created_by), "\n");
  absl::StrAppend(&out, "files:\n");
  for (size_t i = 0; i < m.files.size(); ++i) {
    const engine::FileEntry& f = m.files[i];
    if (f.pad) continue;
    absl::StrAppend(&out, "  ", f.length, "  ", Shown(m.RelativePath(i)));
    std::vector<std::string> notes;
    if (f.is_symlink()) notes.push_back(absl::StrCat("symlink to ", Shown(SymlinkTarget(m, f))));
    if (f.executable) notes.push_back("executable");
    if (f.hidden) notes.push_back("hidden");
    if (!notes.empty()) absl::StrAppend(&out, "  (", absl::StrJoin(notes, ", "), ")");
    out += "\n";
  }
  absl::StrAppend(&out, "trackers:\n");
  for (size_t tier = 0; tier < m.trackers.size(); ++tier) {
    for (const std::string& url : m.trackers[tier]) {
      absl::StrAppend(&out, "  tier ", tier, ": ", Shown(url), "\n");
    }
  }
  if (!m.web_seeds.empty()) {
    absl::StrAppend(&out, "web seeds:\n");
    for (const std::string& url : m.web_seeds) absl::StrAppend(&out, "  ", Shown(url), "\n");
  }
  if (!m.http_seeds.empty()) {
    absl::StrAppend(&out, "http seeds:\n");
    for (const std::string& url : m.http_seeds) absl::StrAppend(&out, "  ", Shown(url), "\n");
  }
  return out;
}

std::string Json(const engine::Metainfo& m) {
  std::vector<std::string> files;
  for (size_t i = 0; i < m.files.size(); ++i) {
    const engine::FileEntry& f = m.files[i];
    if (f.pad) continue;
    std::string entry =
        absl::StrCat("{\"path\": ", JsonString(m.RelativePath(i)), ", \"size\": ", f.length,
                     ", \"attrs\": ", JsonString(Attrs(f)));
    if (f.is_symlink())
      absl::StrAppend(&entry, ", \"symlink_target\": ", JsonString(SymlinkTarget(m, f)));
    files.push_back(entry + "}");
  }
  std::vector<std::string> tiers;
  for (const auto& tier : m.trackers) tiers.push_back(JsonStrings(tier));
  std::string out = "{\n";
  absl::StrAppend(&out, "  \"name\": ", JsonString(m.name), ",\n");
  absl::StrAppend(&out, "  \"info_hash\": \"", engine::ToHex(m.info_hash), "\",\n");
  absl::StrAppend(&out, "  \"magnet\": ", JsonString(engine::MakeMagnet(m)), ",\n");
  absl::StrAppend(&out, "  \"piece_length\": ", m.piece_length, ",\n");
  absl::StrAppend(&out, "  \"pieces\": ", m.num_pieces(), ",\n");
  absl::StrAppend(&out, "  \"total_size\": ", m.payload_length(), ",\n");
  absl::StrAppend(&out, "  \"private\": ", m.is_private ? "true" : "false", ",\n");
  absl::StrAppend(&out, "  \"files\": [", files.empty() ? "" : "\n    ",
                  absl::StrJoin(files, ",\n    "), files.empty() ? "" : "\n  ", "],\n");
  absl::StrAppend(&out, "  \"trackers\": [", absl::StrJoin(tiers, ", "), "],\n");
  absl::StrAppend(&out, "  \"web_seeds\": ", JsonStrings(m.web_seeds), ",\n");
  absl::StrAppend(&out, "  \"http_seeds\": ", JsonStrings(m.http_seeds), ",\n");
  absl::StrAppend(&out, "  \"comment\": ", JsonString(m.comment), ",\n");
  absl::StrAppend(&out, "  \"created_by\": ", JsonString(m.created_by), "\n");
  out += "}\n";
  return out;
}

}  // namespace

int RunInfo(int argc, char** argv) {
  std::string path;
  bool json = false;
  for (int i = 1; i < argc; ++i) {
    const absl::string_view arg = argv[i];
    if (arg == "-h" || arg == "--help") {
      fputs(kUsage, stdout);
      return 0;
    }
    if (arg == "--json") {
      json = true;
      continue;
    }
    if (arg.size() > 1 && arg[0] == '-')
      return UsageError("info", absl::StrCat("unknown option ", ShownAbsl(arg)));
    if (!path.empty())
      return UsageError("info", absl::StrCat("unexpected argument ", ShownAbsl(arg)));
    path = std::string(arg);
  }
  if (path.empty()) return UsageError("info", "missing TORRENT file");

  absl::StatusOr<engine::Metainfo> m = LoadTorrent(path);
  if (!m.ok()) return Fail("info", ShownAbsl(m.status().message()));

  const std::string out = json ? Json(*m) : Text(*m);
  fwrite(out.data(), 1, out.size(), stdout);
  return 0;
}

}  // namespace torrenty::tools
