// Tests for .torrent parsing: accepted layouts, info-hash over raw bytes, every rejection.
#include "engine/metainfo/metainfo.h"

#include <random>
#include <string>
#include <vector>

#include "absl/types/span.h"
#include "engine/base/sha1.h"
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
}

TEST(Metainfo, RejectsMissingName) {
  EXPECT_THAT(
      ErrorOf(Torrent(S("length") + I(1) + S("piece length") + I(16) + S("pieces") + Pieces(1))),
      HasSubstr("missing name"));
  EXPECT_THAT(ErrorOf(Torrent(S("length") + I(1) + S("name") + I(5) + S("piece length") + I(16) +
                              S("pieces") + Pieces(1))),
              HasSubstr("missing name"));
}

std::string NameOf(const std::string& name) {
  absl::StatusOr<Metainfo> m = ParseMetainfo(Torrent(SingleInfo(100, 64, 2, name)));
  EXPECT_TRUE(m.ok()) << m.status();
  return m.ok() ? m->name : "<error>";
}

TEST(Metainfo, NameIsCleanedLikeAPathComponent) {
  EXPECT_EQ(NameOf("a/b"), "a_b");
  EXPECT_EQ(NameOf("/etc"), "etc");
  EXPECT_EQ(NameOf("../escaped.bin"), ".._escaped.bin");
  EXPECT_EQ(NameOf(std::string("a\0b", 3)), "a_b");
  EXPECT_EQ(NameOf("line\nbreak\x1b[2J"), "line_break_[2J");
  EXPECT_EQ(NameOf(std::string(5000, 'n')), std::string(kMaxComponentLength, 'n'));
}

TEST(Metainfo, NameThatCleansToNothingBecomesTheInfoHash) {
  for (const std::string name : {"", ".", "..", "/", "//"}) {
    const std::string info = SingleInfo(100, 64, 2, name);
    absl::StatusOr<Metainfo> m = ParseMetainfo(Torrent(info));
    ASSERT_TRUE(m.ok()) << name << ": " << m.status();
    EXPECT_EQ(m->name, ToHex(m->info_hash)) << name;
    EXPECT_EQ(m->name.size(), 40u);
  }
}

TEST(Metainfo, NameNeverTakesTheStateFolder) {
  EXPECT_EQ(NameOf(std::string(kStateDirName)), ".torrenty_");
  EXPECT_EQ(NameOf("/.torrenty"), ".torrenty_");
  EXPECT_EQ(NameOf(".torrenty.iso"), ".torrenty.iso");
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

std::vector<std::vector<std::string>> PathsOf(const std::string& torrent) {
  absl::StatusOr<Metainfo> m = ParseMetainfo(torrent);
  EXPECT_TRUE(m.ok()) << m.status();
  std::vector<std::vector<std::string>> paths;
  if (m.ok()) {
    for (const FileEntry& f : m->files) paths.push_back(f.path);
  }
  return paths;
}

TEST(Metainfo, CleanPathComponentRules) {
  // Dropped entirely.
  EXPECT_EQ(CleanPathComponent(""), "");
  EXPECT_EQ(CleanPathComponent("."), "");
  EXPECT_EQ(CleanPathComponent(".."), "");
  EXPECT_EQ(CleanPathComponent("/"), "");
  EXPECT_EQ(CleanPathComponent("//.."), "");
  // Leading separators dropped, inner ones replaced.
  EXPECT_EQ(CleanPathComponent("/abs"), "abs");
  EXPECT_EQ(CleanPathComponent("\\win"), "win");
  EXPECT_EQ(CleanPathComponent("a/../../b"), "a_.._.._b");
  EXPECT_EQ(CleanPathComponent("a\\b"), "a_b");
  // Control characters (C0, DEL, C1), bidi overrides and invalid UTF-8 replaced.
  EXPECT_EQ(CleanPathComponent(std::string("x\0y", 3)), "x_y");
  EXPECT_EQ(CleanPathComponent("a\nb\rc\td\x1b\x7f"), "a_b_c_d__");
  EXPECT_EQ(CleanPathComponent("c1\xc2\x9b"), "c1_");
  EXPECT_EQ(CleanPathComponent("evil\xe2\x80\xaetxt.exe"), "evil_txt.exe");
  EXPECT_EQ(CleanPathComponent("caf\xe9"), "caf_");
  // Valid names are untouched, including Windows-reserved ones and dot files.
  for (const std::string ok : {"a.txt", "...", ".hidden", "CON", "nul.txt", "caf\xc3\xa9",
                               "\xe6\x97\xa5\xe6\x9c\xac", "a b", "x:y*z?"}) {
    EXPECT_EQ(CleanPathComponent(ok), ok);
  }
}

TEST(Metainfo, CleanPathComponentCutsKeepingTheExtension) {
  EXPECT_EQ(CleanPathComponent(std::string(255, 'x')), std::string(255, 'x'));
  EXPECT_EQ(CleanPathComponent(std::string(300, 'x')), std::string(255, 'x'));
  EXPECT_EQ(CleanPathComponent(std::string(300, 'x') + ".mkv"), std::string(251, 'x') + ".mkv");
  // An "extension" longer than 32 bytes is not one.
  const std::string long_ext = std::string(300, 'x') + "." + std::string(40, 'e');
  EXPECT_EQ(CleanPathComponent(long_ext), long_ext.substr(0, 255));
  // Never cut inside a UTF-8 sequence: 100 three-byte characters are 300 bytes.
  std::string cjk;
  for (int i = 0; i < 100; ++i) cjk += "\xe6\x97\xa5";
  const std::string cut = CleanPathComponent(cjk + ".txt");
  EXPECT_EQ(cut, cjk.substr(0, 249) + ".txt");
  EXPECT_LE(CleanPathComponent(cjk).size(), 255u);
  EXPECT_EQ(CleanPathComponent(cjk).size() % 3, 0u);
}

TEST(Metainfo, PathComponentsAreCleanedNotRefused) {
  EXPECT_THAT(PathsOf(Torrent(MultiInfo({FileDict(1, {"..", "escaped.bin"})}, 16, 1))),
              ElementsAre(ElementsAre("escaped.bin")));
  EXPECT_THAT(PathsOf(Torrent(MultiInfo({FileDict(1, {"ok", "..", "..", "x"})}, 16, 1))),
              ElementsAre(ElementsAre("ok", "x")));
  EXPECT_THAT(PathsOf(Torrent(MultiInfo({FileDict(1, {"a", "", ".", "b"})}, 16, 1))),
              ElementsAre(ElementsAre("a", "b")));
  EXPECT_THAT(PathsOf(Torrent(MultiInfo({FileDict(1, {"/etc", "passwd"})}, 16, 1))),
              ElementsAre(ElementsAre("etc", "passwd")));
  EXPECT_THAT(PathsOf(Torrent(MultiInfo({FileDict(1, {"a/../../x"})}, 16, 1))),
              ElementsAre(ElementsAre("a_.._.._x")));
  // Nothing left: the file is called "_".
  EXPECT_THAT(PathsOf(Torrent(MultiInfo({FileDict(1, {"..", "."})}, 16, 1))),
              ElementsAre(ElementsAre("_")));
  // Whatever the input, every component is one the file store accepts.
  for (const std::string& bad :
       {std::string(".."), std::string("."), std::string(""), std::string("a/b"),
        std::string("/abs"), std::string("x\0y", 3), std::string("\\"), std::string(1000, '.')}) {
    for (const auto& path : PathsOf(Torrent(MultiInfo({FileDict(1, {"ok", bad})}, 16, 1)))) {
      for (const std::string& c : path) EXPECT_TRUE(IsSafePathComponent(c)) << c;
    }
  }
}

TEST(Metainfo, RejectsPathsTooLongAfterCleaning) {
  const std::string long_component(2000, 'x');
  // Each component is cut to 255 bytes first, so this fits.
  absl::StatusOr<Metainfo> m = ParseMetainfo(
      Torrent(MultiInfo({FileDict(1, {long_component, long_component, long_component})}, 16, 1)));
  ASSERT_TRUE(m.ok()) << m.status();
  EXPECT_EQ(m->files[0].path[0].size(), 255u);
  // 16 * 256 + "dir" = 4099 bytes.
  const std::vector<std::string> deep(16, std::string(255, 'd'));
  EXPECT_THAT(ErrorOf(Torrent(MultiInfo({FileDict(1, deep)}, 16, 1))),
              HasSubstr("file 0 path longer than 4096 bytes"));
  const std::vector<std::string> fits(15, std::string(255, 'd'));
  EXPECT_TRUE(ParseMetainfo(Torrent(MultiInfo({FileDict(1, fits)}, 16, 1))).ok());
}

TEST(Metainfo, DuplicatePathsAreRenamed) {
  EXPECT_THAT(PathsOf(Torrent(MultiInfo({FileDict(1, {"a"}), FileDict(1, {"a"})}, 16, 1))),
              ElementsAre(ElementsAre("a"), ElementsAre("a.1")));
  EXPECT_THAT(PathsOf(Torrent(MultiInfo({FileDict(1, {"d", "x.bin"}), FileDict(1, {"d", "x.bin"}),
                                         FileDict(1, {"d", "x.bin"})},
                                        16, 1))),
              ElementsAre(ElementsAre("d", "x.bin"), ElementsAre("d", "x.1.bin"),
                          ElementsAre("d", "x.2.bin")));
  // Paths that only collide after cleaning.
  EXPECT_THAT(
      PathsOf(Torrent(MultiInfo({FileDict(1, {"a", "b"}), FileDict(1, {"a", ".", "b"})}, 16, 1))),
      ElementsAre(ElementsAre("a", "b"), ElementsAre("a", "b.1")));
  // A new name that is already taken is skipped.
  EXPECT_THAT(PathsOf(Torrent(MultiInfo(
                  {FileDict(1, {"a.1"}), FileDict(1, {"a"}), FileDict(1, {"a"})}, 16, 1))),
              ElementsAre(ElementsAre("a.1"), ElementsAre("a"), ElementsAre("a.2")));
  // A renamed 255-byte component stays within 255 bytes and keeps its extension.
  const std::string longest = std::string(251, 'x') + ".mkv";
  const auto paths =
      PathsOf(Torrent(MultiInfo({FileDict(1, {longest}), FileDict(1, {longest})}, 16, 1)));
  ASSERT_EQ(paths.size(), 2u);
  EXPECT_EQ(paths[1][0], std::string(249, 'x') + ".1.mkv");
}

TEST(Metainfo, FileThatIsAlsoADirectoryIsRenamed) {
  // The directory wins wherever the file comes in the list.
  EXPECT_THAT(PathsOf(Torrent(MultiInfo({FileDict(1, {"a"}), FileDict(1, {"a", "b"})}, 16, 1))),
              ElementsAre(ElementsAre("a.1"), ElementsAre("a", "b")));
  EXPECT_THAT(PathsOf(Torrent(MultiInfo({FileDict(1, {"a", "b"}), FileDict(1, {"a"})}, 16, 1))),
              ElementsAre(ElementsAre("a", "b"), ElementsAre("a.1")));
}

TEST(Metainfo, ManyDuplicatesStayCheap) {
  std::vector<std::string> files;
  for (int i = 0; i < 20000; ++i) files.push_back(FileDict(i == 0 ? 1 : 0, {"same"}));
  const auto paths = PathsOf(Torrent(MultiInfo(files, 16, 1)));
  ASSERT_EQ(paths.size(), 20000u);
  EXPECT_EQ(paths.back()[0], "same.19999");
}

std::string PathList(const std::vector<std::string>& path) {
  std::string p = "l";
  for (const auto& c : path) p += S(c);
  return p + "e";
}
// A file dict with a BEP 47 attr string and any extra keys (already encoded).
std::string AttrFile(int64_t length, const std::vector<std::string>& path, std::string_view attr,
                     const std::string& extra = "") {
  return "d" + S("attr") + S(attr) + S("length") + I(length) + S("path") + PathList(path) + extra +
         "e";
}

TEST(Metainfo, PadFiles) {
  // Two pad files of the same size (what libtorrent 2 and qBittorrent write) are not duplicates.
  const std::string t =
      Torrent(MultiInfo({FileDict(10, {"a"}), AttrFile(6, {".pad", "6"}, "p"), FileDict(10, {"b"}),
                         AttrFile(6, {".pad", "6"}, "p"), FileDict(5, {"c"})},
                        16, 3));
  absl::StatusOr<Metainfo> m = ParseMetainfo(t);
  ASSERT_TRUE(m.ok()) << m.status();
  ASSERT_EQ(m->files.size(), 5u);
  EXPECT_FALSE(m->files[0].pad);
  EXPECT_TRUE(m->files[1].pad);
  EXPECT_TRUE(m->files[3].pad);
  EXPECT_THAT(m->files[3].path, ElementsAre(".pad", "6"));
  EXPECT_EQ(m->files[2].offset, 16);  // pad bytes still occupy torrent offsets
  EXPECT_EQ(m->files[4].offset, 32);
  EXPECT_EQ(m->total_length, 37);
  EXPECT_EQ(m->payload_length(), 25);
  EXPECT_EQ(m->num_pieces(), 3u);
}

TEST(Metainfo, PadFileVariants) {
  // No path at all (libtorrent accepts that for pad files), BitComet's naming, a pad named like
  // a real file, and unknown attribute letters next to `p`.
  const std::string t = Torrent(MultiInfo(
      {FileDict(10, {"a"}), "d" + S("attr") + S("p") + S("length") + I(6) + "e",
       FileDict(4, {"_____padding_file_0_if you see this file, please update to BitComet"}),
       AttrFile(2, {"a"}, "pzq"), FileDict(5, {"c"})},
      16, 2));
  absl::StatusOr<Metainfo> m = ParseMetainfo(t);
  ASSERT_TRUE(m.ok()) << m.status();
  EXPECT_TRUE(m->files[1].pad);
  EXPECT_THAT(m->files[1].path, ElementsAre(".pad", "6"));
  EXPECT_TRUE(m->files[2].pad);
  EXPECT_TRUE(m->files[3].pad);
  EXPECT_THAT(m->files[3].path, ElementsAre("a"));  // not renamed: it is never created
  EXPECT_EQ(m->payload_length(), 15);
  // A torrent of nothing but padding has no data.
  EXPECT_THAT(ErrorOf(Torrent(MultiInfo({AttrFile(16, {"p"}, "p")}, 16, 1))),
              HasSubstr("total length must be > 0"));
}

TEST(Metainfo, ExecutableAndHiddenAttributes) {
  const std::string t = Torrent(MultiInfo(
      {AttrFile(1, {"run.sh"}, "x"), AttrFile(1, {".h"}, "h"), AttrFile(1, {"both"}, "hx"),
       "d" + S("attr") + I(7) + S("length") + I(1) + S("path") + PathList({"int_attr"}) + "e"},
      16, 1));
  absl::StatusOr<Metainfo> m = ParseMetainfo(t);
  ASSERT_TRUE(m.ok()) << m.status();
  EXPECT_TRUE(m->files[0].executable);
  EXPECT_FALSE(m->files[0].hidden);
  EXPECT_TRUE(m->files[1].hidden);
  EXPECT_FALSE(m->files[1].executable);
  EXPECT_TRUE(m->files[2].executable && m->files[2].hidden);
  EXPECT_FALSE(m->files[3].executable || m->files[3].hidden || m->files[3].pad);
  // A single-file torrent carries its attributes in the info dict.
  m = ParseMetainfo(Torrent(SingleInfo() + S("attr") + S("xpl")));
  ASSERT_TRUE(m.ok()) << m.status();
  EXPECT_TRUE(m->files[0].executable);
  EXPECT_FALSE(m->files[0].pad);
  EXPECT_FALSE(m->files[0].is_symlink());
  EXPECT_EQ(m->payload_length(), 100);
}

TEST(Metainfo, SymlinksTakeNoBytes) {
  // The symlink says length 1000; the data is 10 + 5 bytes, one 16-byte piece.
  const std::string t = Torrent(MultiInfo(
      {FileDict(10, {"a"}),
       AttrFile(1000, {"link"}, "l", S("symlink path") + PathList({"..", "sub", ".", "a"})),
       "d" + S("attr") + S("l") + S("path") + PathList({"nolen"}) + S("symlink path") +
           PathList({"a"}) + "e",
       FileDict(5, {"sub", "a"})},
      16, 1));
  absl::StatusOr<Metainfo> m = ParseMetainfo(t);
  ASSERT_TRUE(m.ok()) << m.status();
  EXPECT_TRUE(m->files[1].is_symlink());
  EXPECT_EQ(m->files[1].length, 0);
  EXPECT_THAT(m->files[1].symlink_path, ElementsAre("sub", "a"));
  EXPECT_TRUE(m->files[2].is_symlink());
  EXPECT_EQ(m->files[3].offset, 10);
  EXPECT_EQ(m->total_length, 15);
  // With the length counted the pieces would not match.
  EXPECT_EQ(m->num_pieces(), 1u);
}

TEST(Metainfo, SymlinkWithoutUsableTargetIsAnEmptyFile) {
  const std::string t =
      Torrent(MultiInfo({FileDict(10, {"a"}), AttrFile(7, {"nolist"}, "l"),
                         AttrFile(7, {"dots"}, "l", S("symlink path") + PathList({"..", "."}))},
                        16, 1));
  absl::StatusOr<Metainfo> m = ParseMetainfo(t);
  ASSERT_TRUE(m.ok()) << m.status();
  EXPECT_FALSE(m->files[1].is_symlink());
  EXPECT_EQ(m->files[1].length, 0);
  EXPECT_FALSE(m->files[2].is_symlink());
  EXPECT_EQ(m->total_length, 10);
  EXPECT_THAT(
      ErrorOf(Torrent(MultiInfo(
          {FileDict(10, {"a"}), AttrFile(0, {"l"}, "l", S("symlink path") + "li1ee")}, 16, 1))),
      HasSubstr("non-string symlink path component"));
}

TEST(Metainfo, SymlinksTakePartInTheDuplicateCheck) {
  const std::string t = Torrent(
      MultiInfo({FileDict(10, {"a"}), AttrFile(0, {"a"}, "l", S("symlink path") + PathList({"b"})),
                 FileDict(1, {"b"})},
                16, 1));
  EXPECT_THAT(PathsOf(t), ElementsAre(ElementsAre("a"), ElementsAre("a.1"), ElementsAre("b")));
}

TEST(Metainfo, Utf8KeysWinWhenValid) {
  absl::StatusOr<Metainfo> m = ParseMetainfo(
      Torrent(SingleInfo(100, 64, 2, "caf\xe9") + S("name.utf-8") + S("caf\xc3\xa9"),
              S("comment") + S("latin \xe9") + S("comment.utf-8") + S("utf \xc3\xa9")));
  ASSERT_TRUE(m.ok()) << m.status();
  EXPECT_EQ(m->name, "caf\xc3\xa9");
  EXPECT_EQ(m->comment, "utf \xc3\xa9");
  // An invalid name.utf-8 loses to name (which is then cleaned).
  m = ParseMetainfo(Torrent(SingleInfo(100, 64, 2, "plain") + S("name.utf-8") + S("bad\xff")));
  ASSERT_TRUE(m.ok()) << m.status();
  EXPECT_EQ(m->name, "plain");

  const std::string good = "d" + S("length") + I(1) + S("path") + PathList({"l\xe9"}) +
                           S("path.utf-8") + PathList({"dir", "u\xc3\xa9"}) + "e";
  const std::string bad = "d" + S("length") + I(1) + S("path") + PathList({"p"}) + S("path.utf-8") +
                          PathList({"ok", "\xc3"}) + "e";
  const std::string not_list =
      "d" + S("length") + I(1) + S("path") + PathList({"q"}) + S("path.utf-8") + S("x") + "e";
  EXPECT_THAT(PathsOf(Torrent(MultiInfo({good, bad, not_list}, 16, 1))),
              ElementsAre(ElementsAre("dir", "u\xc3\xa9"), ElementsAre("p"), ElementsAre("q")));
}

TEST(Metainfo, ToleratesTrailingBytesAndRepeatedKeys) {
  const std::string t = Torrent(SingleInfo());
  for (const std::string& tail : {std::string("\n"), std::string("\r\n"), std::string("garbage")}) {
    absl::StatusOr<Metainfo> m = ParseMetainfo(t + tail);
    ASSERT_TRUE(m.ok()) << m.status();
    EXPECT_EQ(m->info_hash, ParseMetainfo(t)->info_hash);
  }
  // A repeated key keeps the first value, including a repeated info dict (the info-hash is the
  // first one's).
  const std::string first = "d" + SingleInfo(100, 64, 2, "first") + "e";
  const std::string second = "d" + SingleInfo(100, 64, 2, "second") + "e";
  absl::StatusOr<Metainfo> m = ParseMetainfo("d" + S("info") + first + S("info") + second + "e");
  ASSERT_TRUE(m.ok()) << m.status();
  EXPECT_EQ(m->name, "first");
  EXPECT_EQ(m->info_hash, Sha1(absl::MakeConstSpan(reinterpret_cast<const uint8_t*>(first.data()),
                                                   first.size())));
  m = ParseMetainfo(Torrent(SingleInfo() + S("name") + S("later")));
  ASSERT_TRUE(m.ok()) << m.status();
  EXPECT_EQ(m->name, "a.bin");
}

TEST(Metainfo, TrackerUrlsAreTrimmed) {
  const std::string outer = S("announce") + S(" http://a/ann \n") + S("announce-list") + "l" + "l" +
                            S("\thttp://b/ann ") + S("   ") + "e" + "e";
  absl::StatusOr<Metainfo> m = ParseMetainfo(Torrent(SingleInfo(), outer));
  ASSERT_TRUE(m.ok()) << m.status();
  EXPECT_EQ(m->trackers, std::vector<std::vector<std::string>>{{"http://b/ann"}});
  m = ParseMetainfo(Torrent(SingleInfo(), S("announce") + S(" http://a/ann \n")));
  ASSERT_TRUE(m.ok()) << m.status();
  EXPECT_EQ(m->trackers, std::vector<std::vector<std::string>>{{"http://a/ann"}});
  m = ParseMetainfo(Torrent(SingleInfo(), S("announce") + S(" \r\n")));
  ASSERT_TRUE(m.ok()) << m.status();
  EXPECT_TRUE(m->trackers.empty());
}

TEST(Metainfo, PieceLengthUpTo512MiB) {
  EXPECT_EQ(kMaxPieceLength, int64_t{512} << 20);
  absl::StatusOr<Metainfo> m = ParseMetainfo(Torrent(SingleInfo(int64_t{600} << 20, 512 << 20, 2)));
  ASSERT_TRUE(m.ok()) << m.status();
  EXPECT_EQ(m->PieceSize(0), 512u << 20);
  EXPECT_EQ(m->PieceSize(1), 88u << 20);
  EXPECT_THAT(ErrorOf(Torrent(SingleInfo(100, (int64_t{512} << 20) + 1, 1))),
              HasSubstr("piece length must be <="));
}

TEST(Metainfo, V2OnlyIsRefusedHybridIsV1) {
  const std::string file_tree = S("file tree") + "d" + S("a.bin") + "d" + S("") + "d" +
                                S("length") + I(100) + S("pieces root") + S(std::string(32, 'r')) +
                                "eee";
  const std::string v2_only =
      S("meta version") + I(2) + S("name") + S("v2") + S("piece length") + I(16384) + file_tree;
  EXPECT_EQ(ErrorOf(Torrent(v2_only)), "metainfo: v2-only torrents are not supported yet");
  // A file tree without `meta version` is still v2-only.
  EXPECT_EQ(ErrorOf(Torrent(S("name") + S("v2") + S("piece length") + I(16384) + file_tree)),
            "metainfo: v2-only torrents are not supported yet");
  absl::StatusOr<Metainfo> m =
      ParseMetainfo(Torrent(SingleInfo() + S("meta version") + I(2) + file_tree));
  ASSERT_TRUE(m.ok()) << m.status();
  EXPECT_EQ(m->total_length, 100);
  EXPECT_EQ(m->num_pieces(), 2u);
  // v1 without pieces is still just missing its pieces.
  EXPECT_THAT(ErrorOf(Torrent(S("length") + I(100) + S("name") + S("n") + S("piece length") +
                              I(64) + S("meta version") + I(1))),
              HasSubstr("missing pieces"));
}

TEST(Metainfo, WebSeeds) {
  absl::StatusOr<Metainfo> m =
      ParseMetainfo(Torrent(SingleInfo(), S("url-list") + S(" http://w/one ")));
  ASSERT_TRUE(m.ok()) << m.status();
  EXPECT_THAT(m->web_seeds, ElementsAre("http://w/one"));
  EXPECT_TRUE(m->http_seeds.empty());
  m = ParseMetainfo(Torrent(SingleInfo(), S("httpseeds") + "l" + S("http://h/seed") + "e" +
                                              S("url-list") + "l" + S("http://w/1") + S("") + I(3) +
                                              S("http://w/2") + S("http://w/1") + "e"));
  ASSERT_TRUE(m.ok()) << m.status();
  EXPECT_THAT(m->web_seeds, ElementsAre("http://w/1", "http://w/2"));
  EXPECT_THAT(m->http_seeds, ElementsAre("http://h/seed"));
  m = ParseMetainfo(Torrent(SingleInfo(), S("url-list") + I(5)));
  ASSERT_TRUE(m.ok()) << m.status();
  EXPECT_TRUE(m->web_seeds.empty());
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
