// Tests for .torrent parsing: accepted layouts, info-hash over raw bytes, every rejection.
#include "engine/metainfo.h"

#include <random>
#include <string>
#include <vector>

#include "absl/types/span.h"
#include "engine/sha1.h"
#include "gmock/gmock.h"
#include "gtest/gtest.h"

namespace torrenty::engine {
namespace {

using ::testing::ElementsAre;
using ::testing::HasSubstr;

std::string S(std::string_view s) { return std::to_string(s.size()) + ":" + std::string(s); }
std::string I(int64_t v) { return "i" + std::to_string(v) + "e"; }
std::string Pieces(size_t n) {
  std::string p;
  for (size_t i = 0; i < n; ++i) p += std::string(20, static_cast<char>('a' + i % 26));
  return S(p);
}
std::string Torrent(const std::string& info_body,
                    const std::string& outer = S("announce") + S("http://t/a")) {
  return "d" + outer + S("info") + "d" + info_body + "ee";
}
std::string SingleInfo(int64_t length = 100, int64_t piece_length = 64, size_t pieces = 2,
                       std::string name = "a.bin") {
  return S("length") + I(length) + S("name") + S(name) + S("piece length") + I(piece_length) +
         S("pieces") + Pieces(pieces);
}
std::string FileDict(int64_t length, const std::vector<std::string>& path) {
  std::string p = "l";
  for (const auto& c : path) p += S(c);
  return "d" + S("length") + I(length) + S("path") + p + "ee";
}
std::string MultiInfo(const std::vector<std::string>& file_dicts, int64_t piece_length,
                      size_t pieces, std::string name = "dir") {
  std::string files = "l";
  for (const auto& f : file_dicts) files += f;
  files += "e";
  return S("files") + files + S("name") + S(name) + S("piece length") + I(piece_length) +
         S("pieces") + Pieces(pieces);
}

std::string ErrorOf(const std::string& torrent) {
  absl::StatusOr<Metainfo> m = ParseMetainfo(torrent);
  EXPECT_FALSE(m.ok()) << "accepted: " << torrent;
  return m.ok() ? "" : std::string(m.status().message());
}

TEST(Metainfo, SingleFile) {
  const std::string info_body = SingleInfo() + S("private") + I(1);
  const std::string t = Torrent(info_body, S("announce") + S("http://t/a") + S("comment") +
                                               S("hi") + S("created by") + S("me"));
  absl::StatusOr<Metainfo> m = ParseMetainfo(t);
  ASSERT_TRUE(m.ok()) << m.status();
  EXPECT_EQ(m->name, "a.bin");
  EXPECT_FALSE(m->multi_file);
  EXPECT_TRUE(m->is_private);
  EXPECT_EQ(m->total_length, 100);
  EXPECT_EQ(m->piece_length, 64);
  EXPECT_EQ(m->num_pieces(), 2u);
  EXPECT_EQ(m->PieceSize(0), 64u);
  EXPECT_EQ(m->PieceSize(1), 36u);
  EXPECT_EQ(m->PieceSize(2), 0u);
  EXPECT_EQ(m->piece_hashes[1][0], 'b');
  ASSERT_EQ(m->files.size(), 1u);
  EXPECT_TRUE(m->files[0].path.empty());
  EXPECT_EQ(m->files[0].length, 100);
  EXPECT_EQ(m->RelativePath(0), "a.bin");
  EXPECT_EQ(m->trackers, std::vector<std::vector<std::string>>{{"http://t/a"}});
  EXPECT_EQ(m->comment, "hi");
  EXPECT_EQ(m->created_by, "me");
  const std::string info_raw = "d" + info_body + "e";
  EXPECT_EQ(m->info_hash, Sha1(absl::MakeConstSpan(
                              reinterpret_cast<const uint8_t*>(info_raw.data()), info_raw.size())));
}

TEST(Metainfo, InfoHashUsesRawBytesOfUnsortedInfo) {
  // Keys out of order: a re-encoding would sort them and change the hash.
  const std::string info_body = S("name") + S("x") + S("length") + I(10) + S("piece length") +
                                I(16) + S("pieces") + Pieces(1);
  absl::StatusOr<Metainfo> m = ParseMetainfo(Torrent(info_body));
  ASSERT_TRUE(m.ok()) << m.status();
  const std::string info_raw = "d" + info_body + "e";
  EXPECT_EQ(m->info_hash, Sha1(absl::MakeConstSpan(
                              reinterpret_cast<const uint8_t*>(info_raw.data()), info_raw.size())));
}

TEST(Metainfo, MultiFile) {
  const std::string t = Torrent(MultiInfo(
      {FileDict(10, {"a", "x.txt"}), FileDict(0, {"empty"}), FileDict(30, {"b"})}, 16, 3));
  absl::StatusOr<Metainfo> m = ParseMetainfo(t);
  ASSERT_TRUE(m.ok()) << m.status();
  EXPECT_TRUE(m->multi_file);
  EXPECT_EQ(m->total_length, 40);
  ASSERT_EQ(m->files.size(), 3u);
  EXPECT_THAT(m->files[0].path, ElementsAre("a", "x.txt"));
  EXPECT_EQ(m->files[1].offset, 10);
  EXPECT_EQ(m->files[1].length, 0);
  EXPECT_EQ(m->files[2].offset, 10);
  EXPECT_EQ(m->RelativePath(0), "dir/a/x.txt");
  EXPECT_EQ(m->RelativePath(2), "dir/b");
  EXPECT_EQ(m->PieceSize(2), 8u);
}

TEST(Metainfo, TrackerTiers) {
  const std::string outer = S("announce") + S("http://a") + S("announce-list") + "l" + "l" +
                            S("http://a") + S("http://b") + "e" + "le" + "l" + S("udp://c") + "e" +
                            "e";
  absl::StatusOr<Metainfo> m = ParseMetainfo(Torrent(SingleInfo(), outer));
  ASSERT_TRUE(m.ok()) << m.status();
  EXPECT_EQ(m->trackers,
            (std::vector<std::vector<std::string>>{{"http://a", "http://b"}, {"udp://c"}}));
  m = ParseMetainfo(Torrent(SingleInfo(), ""));
  ASSERT_TRUE(m.ok()) << m.status();
  EXPECT_TRUE(m->trackers.empty());
}

TEST(Metainfo, PrivateOnlyWhenOne) {
  absl::StatusOr<Metainfo> m = ParseMetainfo(Torrent(SingleInfo() + S("private") + I(0)));
  ASSERT_TRUE(m.ok()) << m.status();
  EXPECT_FALSE(m->is_private);
}

TEST(Metainfo, RejectsBadStructure) {
  EXPECT_THAT(ErrorOf("garbage"), HasSubstr("metainfo: bencode:"));
  EXPECT_THAT(ErrorOf("le"), HasSubstr("top level is not a dict"));
  EXPECT_THAT(ErrorOf("d" + S("announce") + S("x") + "e"), HasSubstr("missing info dict"));
  EXPECT_THAT(ErrorOf("d" + S("info") + I(1) + "e"), HasSubstr("info is not a dict"));
  EXPECT_THAT(ErrorOf(Torrent(SingleInfo()) + "x"), HasSubstr("trailing bytes"));
}

TEST(Metainfo, RejectsBadName) {
  EXPECT_THAT(
      ErrorOf(Torrent(S("length") + I(1) + S("piece length") + I(16) + S("pieces") + Pieces(1))),
      HasSubstr("missing name"));
  EXPECT_THAT(ErrorOf(Torrent(SingleInfo(100, 64, 2, ""))), HasSubstr("name is empty"));
  EXPECT_THAT(ErrorOf(Torrent(SingleInfo(100, 64, 2, ".."))), HasSubstr("unsafe name"));
  EXPECT_THAT(ErrorOf(Torrent(SingleInfo(100, 64, 2, "."))), HasSubstr("unsafe name"));
  EXPECT_THAT(ErrorOf(Torrent(SingleInfo(100, 64, 2, "a/b"))), HasSubstr("unsafe name"));
  EXPECT_THAT(ErrorOf(Torrent(SingleInfo(100, 64, 2, "/etc"))), HasSubstr("unsafe name"));
  EXPECT_THAT(ErrorOf(Torrent(SingleInfo(100, 64, 2, std::string("a\0b", 3)))),
              HasSubstr("unsafe name"));
}

TEST(Metainfo, RejectsBadPieceLength) {
  EXPECT_THAT(ErrorOf(Torrent(SingleInfo(100, 0, 2))), HasSubstr("piece length must be > 0"));
  EXPECT_THAT(ErrorOf(Torrent(SingleInfo(100, -16, 2))), HasSubstr("piece length must be > 0"));
  EXPECT_THAT(ErrorOf(Torrent(SingleInfo(100, kMaxPieceLength + 1, 1))),
              HasSubstr("piece length must be <="));
  EXPECT_TRUE(ParseMetainfo(Torrent(SingleInfo(100, kMaxPieceLength, 1))).ok());
  EXPECT_THAT(ErrorOf(Torrent(S("length") + I(1) + S("name") + S("n") + S("pieces") + Pieces(1))),
              HasSubstr("missing integer piece length"));
}

TEST(Metainfo, RejectsBadPieces) {
  EXPECT_THAT(ErrorOf(Torrent(SingleInfo(100, 64, 1))), HasSubstr("1 hashes but the data needs 2"));
  EXPECT_THAT(ErrorOf(Torrent(SingleInfo(100, 64, 3))), HasSubstr("3 hashes but the data needs 2"));
  EXPECT_THAT(ErrorOf(Torrent(S("length") + I(100) + S("name") + S("n") + S("piece length") +
                              I(64) + S("pieces") + S(std::string(39, 'x')))),
              HasSubstr("multiple of 20"));
  EXPECT_THAT(
      ErrorOf(Torrent(S("length") + I(100) + S("name") + S("n") + S("piece length") + I(64))),
      HasSubstr("missing pieces"));
  // 2^40 bytes in 16 KiB pieces needs 2^26 hashes.
  EXPECT_THAT(ErrorOf(Torrent(SingleInfo(int64_t{1} << 40, 16384, 1))), HasSubstr("pieces"));
}

TEST(Metainfo, RejectsBadLengths) {
  EXPECT_THAT(ErrorOf(Torrent(SingleInfo(0, 64, 0))), HasSubstr("total length must be > 0"));
  EXPECT_THAT(ErrorOf(Torrent(SingleInfo(-1, 64, 0))), HasSubstr("length must be >= 0"));
  EXPECT_THAT(
      ErrorOf(Torrent(S("name") + S("n") + S("piece length") + I(16) + S("pieces") + Pieces(1))),
      HasSubstr("neither length nor files"));
  EXPECT_THAT(
      ErrorOf(Torrent(S("files") + "l" + FileDict(1, {"a"}) + "e" + S("length") + I(1) + S("name") +
                      S("n") + S("piece length") + I(16) + S("pieces") + Pieces(1))),
      HasSubstr("both length and files"));
  EXPECT_THAT(ErrorOf(Torrent(MultiInfo({FileDict(-5, {"a"})}, 16, 1))),
              HasSubstr("negative length"));
  EXPECT_THAT(ErrorOf(Torrent(MultiInfo({FileDict(0, {"a"}), FileDict(0, {"b"})}, 16, 0))),
              HasSubstr("total length must be > 0"));
  EXPECT_THAT(ErrorOf(Torrent(MultiInfo({}, 16, 0))), HasSubstr("files list is empty"));
  EXPECT_THAT(ErrorOf(Torrent(MultiInfo({FileDict(INT64_MAX, {"a"}), FileDict(1, {"b"})}, 16, 1))),
              HasSubstr("overflows"));
}

TEST(Metainfo, RejectsBadFileEntries) {
  EXPECT_THAT(ErrorOf(Torrent(MultiInfo({I(3)}, 16, 1))), HasSubstr("file 0 is not a dict"));
  EXPECT_THAT(ErrorOf(Torrent(MultiInfo({"d" + S("path") + "l" + S("a") + "ee"}, 16, 1))),
              HasSubstr("no integer length"));
  EXPECT_THAT(ErrorOf(Torrent(MultiInfo({"d" + S("length") + I(1) + "e"}, 16, 1))),
              HasSubstr("no path list"));
  EXPECT_THAT(ErrorOf(Torrent(MultiInfo({FileDict(1, {})}, 16, 1))), HasSubstr("empty path"));
  EXPECT_THAT(ErrorOf(Torrent(MultiInfo({"d" + S("length") + I(1) + S("path") + "li1eee"}, 16, 1))),
              HasSubstr("non-string path component"));
}

TEST(Metainfo, RejectsUnsafePathComponents) {
  for (const std::string& bad : {std::string(".."), std::string("."), std::string(""),
                                 std::string("a/b"), std::string("/abs"), std::string("x\0y", 3)}) {
    EXPECT_THAT(ErrorOf(Torrent(MultiInfo({FileDict(1, {"ok", bad})}, 16, 1))),
                HasSubstr("unsafe path component"))
        << bad;
  }
}

TEST(Metainfo, RejectsLongPaths) {
  const std::string long_component(2000, 'x');
  EXPECT_TRUE(
      ParseMetainfo(Torrent(MultiInfo({FileDict(1, {long_component, long_component})}, 16, 1)))
          .ok());
  EXPECT_THAT(ErrorOf(Torrent(MultiInfo(
                  {FileDict(1, {long_component, long_component, long_component})}, 16, 1))),
              HasSubstr("path longer than 4096"));
}

TEST(Metainfo, RejectsConflictingPaths) {
  EXPECT_THAT(ErrorOf(Torrent(MultiInfo({FileDict(1, {"a"}), FileDict(1, {"a"})}, 16, 1))),
              HasSubstr("duplicate file path"));
  EXPECT_THAT(ErrorOf(Torrent(MultiInfo({FileDict(1, {"a"}), FileDict(1, {"a", "b"})}, 16, 1))),
              HasSubstr("is also a directory"));
}

TEST(Metainfo, RejectsTooManyFiles) {
  std::vector<std::string> files;
  files.reserve(kMaxFiles + 1);
  for (size_t i = 0; i <= kMaxFiles; ++i) files.push_back(FileDict(0, {std::to_string(i)}));
  files[0] = FileDict(1, {"0"});
  EXPECT_THAT(ErrorOf(Torrent(MultiInfo(files, 16, 1))), HasSubstr("more than 1000000 files"));
}

TEST(Metainfo, MutatedInputsNeverBreakInvariants) {
  const std::string base = Torrent(MultiInfo(
      {FileDict(10, {"a", "x.txt"}), FileDict(0, {"empty"}), FileDict(30, {"b"})}, 16, 3));
  std::mt19937 rng(7);
  for (int round = 0; round < 20000; ++round) {
    std::string t = base;
    const int edits = 1 + static_cast<int>(rng() % 4);
    for (int e = 0; e < edits; ++e) {
      const size_t pos = rng() % t.size();
      switch (rng() % 3) {
        case 0:
          t[pos] = static_cast<char>(rng());
          break;
        case 1:
          t.erase(pos, 1 + rng() % 8);
          break;
        default:
          t.insert(pos, 1, "0123456789ilde:-"[rng() % 16]);
      }
      if (t.empty()) t = "x";
    }
    absl::StatusOr<Metainfo> m = ParseMetainfo(t);
    if (!m.ok()) continue;
    int64_t sum = 0;
    for (const FileEntry& f : m->files) {
      EXPECT_EQ(f.offset, sum);
      EXPECT_GE(f.length, 0);
      sum += f.length;
    }
    EXPECT_EQ(sum, m->total_length);
    EXPECT_GT(m->total_length, 0);
    EXPECT_EQ(m->num_pieces(), (m->total_length + m->piece_length - 1) / m->piece_length);
  }
}

}  // namespace
}  // namespace torrenty::engine
