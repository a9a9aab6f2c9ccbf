#include "engine/metainfo/resume.h"

#include <cstring>

#include "absl/strings/str_cat.h"
#include "engine/codec/bencode.h"

namespace torrenty::engine {
namespace {

constexpr int64_t kResumeVersion = 1;

absl::Status Bad(absl::string_view what) {
  return absl::InvalidArgumentError(absl::StrCat("resume data: ", what));
}

std::string_view Std(absl::string_view s) { return std::string_view(s.data(), s.size()); }

}  // namespace

std::string EncodeResume(const ResumeData& data) {
  bencode::Encoder e;
  e.BeginDict();  // keys in sorted order
  e.String("files");
  e.BeginList();
  for (const FileStamp& f : data.files) {
    e.BeginList();
    e.Int(f.size);
    e.Int(f.mtime_ns);
    e.End();
  }
  e.End();
  e.String("info-hash");
  e.String(std::string_view(reinterpret_cast<const char*>(data.info_hash.data()),
                            data.info_hash.size()));
  if (data.live) {
    e.String("live");
    e.Int(1);
  }
  e.String("num pieces");
  e.Int(data.have.size());
  e.String("pieces");
  const auto bits = data.have.bytes();
  e.String(std::string_view(reinterpret_cast<const char*>(bits.data()), bits.size()));
  e.String("version");
  e.Int(kResumeVersion);
  e.End();
  return e.Take();
}

absl::StatusOr<ResumeData> DecodeResume(absl::string_view bytes, const Metainfo& meta) {
  if (bytes.size() > kMaxResumeFileBytes) return Bad("too large");
  absl::StatusOr<bencode::Value> root = bencode::Decode(Std(bytes));
  if (!root.ok()) return Bad(root.status().message());
  if (!root->is_dict()) return Bad("not a dictionary");
  const bencode::Value* version = root->Find("version");
  if (version == nullptr || !version->is_int() || version->integer != kResumeVersion) {
    return Bad("unknown version");
  }
  const bencode::Value* hash = root->Find("info-hash");
  if (hash == nullptr || !hash->is_string() || hash->string.size() != meta.info_hash.size() ||
      std::memcmp(hash->string.data(), meta.info_hash.data(), meta.info_hash.size()) != 0) {
    return Bad("belongs to another torrent");
  }
  const bencode::Value* num = root->Find("num pieces");
  if (num == nullptr || !num->is_int() || num->integer != meta.num_pieces()) {
    return Bad("piece count differs from the torrent");
  }
  ResumeData out;
  out.info_hash = meta.info_hash;
  out.have = Bitfield(meta.num_pieces());
  const bencode::Value* pieces = root->Find("pieces");
  if (pieces == nullptr || !pieces->is_string() ||
      !out.have.AssignFromWire(absl::MakeConstSpan(
          reinterpret_cast<const uint8_t*>(pieces->string.data()), pieces->string.size()))) {
    return Bad("bad piece bitfield");
  }
  const bencode::Value* files = root->Find("files");
  if (files == nullptr || !files->is_list() || files->list.size() != meta.files.size()) {
    return Bad("file count differs from the torrent");
  }
  for (const bencode::Value& f : files->list) {
    if (!f.is_list() || f.list.size() != 2 || !f.list[0].is_int() || !f.list[1].is_int()) {
      return Bad("bad file stamp");
    }
    out.files.push_back(FileStamp{f.list[0].integer, f.list[1].integer});
  }
  const bencode::Value* live = root->Find("live");
  out.live = live != nullptr && live->is_int() && live->integer == 1;
  return out;
}

ResumeTrust TrustResume(const ResumeData& resume, const std::vector<FileStamp>& current) {
  if (current == resume.files) return ResumeTrust::kExact;
  if (!resume.live || current.size() != resume.files.size()) return ResumeTrust::kNone;
  for (size_t i = 0; i < current.size(); ++i) {
    if (current[i].size != resume.files[i].size) return ResumeTrust::kNone;
  }
  return ResumeTrust::kLive;
}

Bitfield TrustedPieces(const ResumeData& resume, const std::vector<FileStamp>& current) {
  if (TrustResume(resume, current) == ResumeTrust::kNone) return Bitfield(resume.have.size());
  return resume.have;
}

}  // namespace torrenty::engine
