// Tests for mapping torrent byte ranges and pieces onto file slices.
#include "engine/metainfo/file_map.h"

#include <vector>

#include "gtest/gtest.h"

namespace torrenty::engine {
namespace {

Metainfo Layout(const std::vector<int64_t>& lengths, int64_t piece_length) {
  Metainfo m;
  m.name = "t";
  m.multi_file = lengths.size() > 1;
  m.piece_length = piece_length;
  for (size_t i = 0; i < lengths.size(); ++i) {
    m.files.push_back(
        FileEntry{.path = {std::to_string(i)}, .length = lengths[i], .offset = m.total_length});
    m.total_length += lengths[i];
  }
  m.piece_hashes.resize(static_cast<size_t>((m.total_length + piece_length - 1) / piece_length));
  return m;
}

struct S {
  uint32_t file;
  int64_t file_offset, length, range_offset;
  friend bool operator==(const S&, const S&) = default;
};

std::vector<S> Slices(const FileMap& map, int64_t offset, int64_t length) {
  std::vector<FileSlice> out;
  map.Map(offset, length, &out);
  std::vector<S> r;
  for (const FileSlice& s : out)
    r.push_back({s.file_index, s.file_offset, s.length, s.range_offset});
  return r;
}

TEST(FileMap, SingleFile) {
  const Metainfo m = Layout({100}, 32);
  const FileMap map(m);
  EXPECT_EQ(Slices(map, 0, 100), (std::vector<S>{{0, 0, 100, 0}}));
  EXPECT_EQ(Slices(map, 40, 10), (std::vector<S>{{0, 40, 10, 0}}));
  std::vector<FileSlice> out;
  map.MapPiece(3, &out);
  ASSERT_EQ(out.size(), 1u);
  EXPECT_EQ(out[0].file_offset, 96);
  EXPECT_EQ(out[0].length, 4);  // last piece is short
}

TEST(FileMap, PieceSpanningSeveralFilesSkipsEmptyOnes) {
  // Files: [0,10) [10,10) empty [10,15) [15,15) empty [15,40)
  const Metainfo m = Layout({10, 0, 5, 0, 25}, 16);
  const FileMap map(m);
  std::vector<FileSlice> out;
  map.MapPiece(0, &out);
  std::vector<S> got;
  for (const FileSlice& s : out)
    got.push_back({s.file_index, s.file_offset, s.length, s.range_offset});
  EXPECT_EQ(got, (std::vector<S>{{0, 0, 10, 0}, {2, 0, 5, 10}, {4, 0, 1, 15}}));
  EXPECT_EQ(Slices(map, 10, 5), (std::vector<S>{{2, 0, 5, 0}}));
  EXPECT_EQ(Slices(map, 12, 10), (std::vector<S>{{2, 2, 3, 0}, {4, 0, 7, 3}}));
  EXPECT_EQ(Slices(map, 9, 1), (std::vector<S>{{0, 9, 1, 0}}));
  EXPECT_EQ(Slices(map, 39, 1), (std::vector<S>{{4, 24, 1, 0}}));
}

TEST(FileMap, LeadingEmptyFiles) {
  const Metainfo m = Layout({0, 0, 8, 8}, 4);
  const FileMap map(m);
  EXPECT_EQ(Slices(map, 0, 16), (std::vector<S>{{2, 0, 8, 0}, {3, 0, 8, 8}}));
}

TEST(FileMap, AppendsToExistingOutput) {
  const Metainfo m = Layout({4, 4}, 4);
  const FileMap map(m);
  std::vector<FileSlice> out;
  map.MapPiece(0, &out);
  map.MapPiece(1, &out);
  ASSERT_EQ(out.size(), 2u);
  EXPECT_EQ(out[1].file_index, 1u);
}

TEST(FileMap, OutOfRangeIsClampedOrEmpty) {
  const Metainfo m = Layout({10, 10}, 8);
  const FileMap map(m);
  EXPECT_TRUE(Slices(map, 20, 5).empty());
  EXPECT_TRUE(Slices(map, -1, 5).empty());
  EXPECT_TRUE(Slices(map, 0, 0).empty());
  EXPECT_TRUE(Slices(map, INT64_MAX, INT64_MAX).empty());
  EXPECT_EQ(Slices(map, 18, INT64_MAX), (std::vector<S>{{1, 8, 2, 0}}));
  std::vector<FileSlice> out;
  map.MapPiece(3, &out);
  EXPECT_TRUE(out.empty());
  map.MapPiece(UINT32_MAX, &out);
  EXPECT_TRUE(out.empty());
}

TEST(FileMap, EveryByteMappedExactlyOnce) {
  const Metainfo m = Layout({3, 0, 7, 1, 0, 0, 20, 5}, 4);
  const FileMap map(m);
  for (uint32_t p = 0; p < m.num_pieces(); ++p) {
    std::vector<FileSlice> out;
    map.MapPiece(p, &out);
    int64_t covered = 0;
    for (const FileSlice& s : out) {
      EXPECT_EQ(s.range_offset, covered);
      EXPECT_GT(s.length, 0);
      const FileEntry& f = m.files[s.file_index];
      EXPECT_EQ(f.offset + s.file_offset, int64_t{p} * 4 + covered);
      EXPECT_LE(s.file_offset + s.length, f.length);
      covered += s.length;
    }
    EXPECT_EQ(covered, m.PieceSize(p));
  }
}

}  // namespace
}  // namespace torrenty::engine
