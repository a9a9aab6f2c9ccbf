// Tests for torrent encoding: round trip through ParseMetainfo and piece-size defaults.
#include "engine/metainfo/torrent_builder.h"

#include "absl/types/span.h"
#include "engine/codec/bencode.h"
#include "engine/metainfo/metainfo.h"
#include "engine/base/sha1.h"
#include "gmock/gmock.h"
#include "gtest/gtest.h"

namespace torrenty::engine {
namespace {

using ::testing::ElementsAre;

Sha1Digest Digest(uint8_t fill) {
  Sha1Digest d;
  d.fill(fill);
  return d;
}

absl::Span<const uint8_t> Bytes(std::string_view s) {
  return {reinterpret_cast<const uint8_t*>(s.data()), s.size()};
}

TEST(TorrentBuilder, DefaultPieceLength) {
  EXPECT_EQ(DefaultPieceLength(1), 32 * 1024);
  EXPECT_EQ(DefaultPieceLength(0), 32 * 1024);
  EXPECT_EQ(DefaultPieceLength(int64_t{1} << 50), 16 << 20);
  for (int64_t total :
       {int64_t{100} << 20, int64_t{700} << 20, int64_t{4} << 30, int64_t{20} << 30}) {
    const int64_t p = DefaultPieceLength(total);
    EXPECT_EQ(p & (p - 1), 0) << total;
    const int64_t pieces = (total + p - 1) / p;
    EXPECT_GE(pieces, 1000) << total;
    EXPECT_LE(pieces, 2000) << total;
  }
}

TEST(TorrentBuilder, SingleFileRoundTrip) {
  NewTorrent t{.name = "movie.mkv",
               .files = {FileEntry{.path = {}, .length = 100000, .offset = 0}},
               .multi_file = false,
               .piece_length = 32768,
               .piece_hashes = {Digest(1), Digest(2), Digest(3), Digest(4)},
               .tiers = {{"http://tracker/announce"}},
               .is_private = false,
               .created_by = "torrenty",
               .creation_date = 1700000000};
  const std::string encoded = EncodeTorrent(t);
  absl::StatusOr<Metainfo> m = ParseMetainfo(encoded);
  ASSERT_TRUE(m.ok()) << m.status();
  EXPECT_EQ(m->name, "movie.mkv");
  EXPECT_FALSE(m->multi_file);
  EXPECT_FALSE(m->is_private);
  EXPECT_EQ(m->total_length, 100000);
  EXPECT_EQ(m->piece_length, 32768);
  EXPECT_EQ(m->piece_hashes, t.piece_hashes);
  EXPECT_EQ(m->trackers, std::vector<std::vector<std::string>>{{"http://tracker/announce"}});
  EXPECT_EQ(m->created_by, "torrenty");
  EXPECT_EQ(encoded.find("announce-list"), std::string::npos);
  EXPECT_EQ(encoded.find("7:private"), std::string::npos);

  absl::StatusOr<bencode::Value> root = bencode::Decode(encoded);
  ASSERT_TRUE(root.ok());
  EXPECT_EQ(m->info_hash, Sha1(Bytes(root->Find("info")->raw)));
  EXPECT_EQ(root->Find("creation date")->integer, 1700000000);
}

TEST(TorrentBuilder, MultiFileRoundTripWithTiersAndPrivate) {
  NewTorrent t{.name = "album",
               .files = {FileEntry{.path = {"cd1", "01.flac"}, .length = 40000, .offset = 0},
                         FileEntry{.path = {"cover.jpg"}, .length = 0, .offset = 40000},
                         FileEntry{.path = {"notes.txt"}, .length = 1000, .offset = 40000}},
               .multi_file = true,
               .piece_length = 16384,
               .piece_hashes = {Digest(9), Digest(8), Digest(7)},
               .tiers = {{"http://a/announce"}, {"udp://b:80"}},
               .is_private = true};
  const std::string encoded = EncodeTorrent(t);
  absl::StatusOr<Metainfo> m = ParseMetainfo(encoded);
  ASSERT_TRUE(m.ok()) << m.status();
  EXPECT_TRUE(m->multi_file);
  EXPECT_TRUE(m->is_private);
  EXPECT_EQ(m->total_length, 41000);
  ASSERT_EQ(m->files.size(), 3u);
  EXPECT_THAT(m->files[0].path, ElementsAre("cd1", "01.flac"));
  EXPECT_EQ(m->files[1].length, 0);
  EXPECT_EQ(m->files[2].offset, 40000);
  EXPECT_EQ(m->RelativePath(0), "album/cd1/01.flac");
  EXPECT_EQ(m->piece_hashes, t.piece_hashes);
  EXPECT_EQ(m->trackers,
            (std::vector<std::vector<std::string>>{{"http://a/announce"}, {"udp://b:80"}}));
  EXPECT_TRUE(m->created_by.empty());

  // Canonical encoding: keys sorted at every level, so the raw info equals what the
  // decoder sees and re-encoding would be a no-op.
  absl::StatusOr<bencode::Value> root = bencode::Decode(encoded);
  ASSERT_TRUE(root.ok());
  std::vector<std::string_view> keys;
  for (const auto& [k, v] : root->dict) keys.push_back(k);
  EXPECT_THAT(keys, ElementsAre("announce", "announce-list", "info"));
  keys.clear();
  for (const auto& [k, v] : root->Find("info")->dict) keys.push_back(k);
  EXPECT_THAT(keys, ElementsAre("files", "name", "piece length", "pieces", "private"));
  EXPECT_EQ(m->info_hash, Sha1(Bytes(root->Find("info")->raw)));
}

TEST(TorrentBuilder, TiersWithSeveralUrlsCommentSourceAndWebSeeds) {
  NewTorrent t{.name = "x",
               .files = {FileEntry{.path = {}, .length = 1, .offset = 0}},
               .piece_length = 16384,
               .piece_hashes = {Digest(0)},
               .tiers = {{}, {"http://a/ann", "http://b/ann"}, {"udp://c:1"}},
               .comment = "a comment",
               .source = "SRC",
               .web_seeds = {"http://seed/one/"}};
  const std::string encoded = EncodeTorrent(t);
  absl::StatusOr<Metainfo> m = ParseMetainfo(encoded);
  ASSERT_TRUE(m.ok()) << m.status();
  EXPECT_EQ(m->trackers, (std::vector<std::vector<std::string>>{{"http://a/ann", "http://b/ann"},
                                                                {"udp://c:1"}}));
  absl::StatusOr<bencode::Value> root = bencode::Decode(encoded);
  ASSERT_TRUE(root.ok());
  std::vector<std::string_view> keys;
  for (const auto& [k, v] : root->dict) keys.push_back(k);
  EXPECT_THAT(keys, ElementsAre("announce", "announce-list", "comment", "info", "url-list"));
  EXPECT_EQ(root->Find("announce")->string, "http://a/ann");
  EXPECT_EQ(root->Find("comment")->string, "a comment");
  EXPECT_EQ(root->Find("info")->Find("source")->string, "SRC");
  ASSERT_EQ(root->Find("url-list")->list.size(), 1u);
  EXPECT_EQ(root->Find("url-list")->list[0].string, "http://seed/one/");
  // `source` is inside info, so it changes the info-hash.
  NewTorrent other = t;
  other.source = "OTHER";
  EXPECT_NE(ParseMetainfo(EncodeTorrent(other))->info_hash, m->info_hash);
}

TEST(TorrentBuilder, OneTrackerMeansNoAnnounceList) {
  NewTorrent t{.name = "x",
               .files = {FileEntry{.path = {}, .length = 1, .offset = 0}},
               .piece_length = 16384,
               .piece_hashes = {Digest(0)},
               .tiers = {{"http://only/announce"}}};
  const std::string encoded = EncodeTorrent(t);
  EXPECT_EQ(encoded.find("announce-list"), std::string::npos);
  EXPECT_NE(encoded.find("8:announce20:http://only/announce"), std::string::npos);
}

TEST(TorrentBuilder, NoTrackers) {
  NewTorrent t{.name = "x",
               .files = {FileEntry{.path = {}, .length = 1, .offset = 0}},
               .piece_length = 16384,
               .piece_hashes = {Digest(0)}};
  absl::StatusOr<Metainfo> m = ParseMetainfo(EncodeTorrent(t));
  ASSERT_TRUE(m.ok()) << m.status();
  EXPECT_TRUE(m->trackers.empty());
  EXPECT_EQ(EncodeTorrent(t).find("announce"), std::string::npos);
}

}  // namespace
}  // namespace torrenty::engine
