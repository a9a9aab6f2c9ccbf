// Tests for creating torrents from real files: layout, ordering, hashes re-verified from disk.
#include "io/disk/torrent_creator.h"

#include <stdlib.h>
#include <sys/stat.h>
#include <unistd.h>

#include <cstdio>
#include <filesystem>
#include <fstream>
#include <random>
#include <string>

#include "absl/types/span.h"
#include "engine/metainfo/metainfo.h"
#include "engine/base/sha1.h"
#include "gmock/gmock.h"
#include "gtest/gtest.h"

namespace torrenty::io {
namespace {

using ::testing::ElementsAre;
using ::testing::HasSubstr;

class TorrentCreatorTest : public ::testing::Test {
 protected:
  void SetUp() override {
    std::string tmpl = ::testing::TempDir() + "/creator_XXXXXX";
    ASSERT_NE(mkdtemp(tmpl.data()), nullptr);
    dir_ = tmpl;
  }
  void TearDown() override { std::filesystem::remove_all(dir_); }

  std::string Write(const std::string& rel, const std::string& data) {
    const std::filesystem::path p = std::filesystem::path(dir_) / rel;
    std::filesystem::create_directories(p.parent_path());
    std::ofstream(p, std::ios::binary)
        .write(data.data(), static_cast<std::streamsize>(data.size()));
    return p.string();
  }

  static std::string Random(size_t n, uint32_t seed) {
    std::mt19937 rng(seed);
    std::string s(n, '\0');
    for (char& c : s) c = static_cast<char>(rng());
    return s;
  }

  static void ExpectHashes(const engine::Metainfo& m, const std::string& data) {
    ASSERT_EQ(static_cast<int64_t>(data.size()), m.total_length);
    for (uint32_t p = 0; p < m.num_pieces(); ++p) {
      const std::string_view piece =
          std::string_view(data).substr(static_cast<size_t>(p) * m.piece_length, m.PieceSize(p));
      EXPECT_EQ(m.piece_hashes[p],
                engine::Sha1({reinterpret_cast<const uint8_t*>(piece.data()), piece.size()}))
          << "piece " << p;
    }
  }

  std::string dir_;
};

TEST_F(TorrentCreatorTest, MultiFileTreeWithEmptyAndNestedFiles) {
  const std::string deep = Random(100'000, 1);
  const std::string b = Random(5'000, 2);
  const std::string c = Random(70'001, 3);
  Write("share/b.txt", b);
  Write("share/a/nested/deep.bin", deep);
  Write("share/a/empty", "");
  Write("share/c.dat", c);
  Write("share/a-z", "x");  // '-' sorts before '/', so "a-z" precedes "a/..."
  CreateOptions options;
  options.tiers = {{"http://t1/announce"}, {"udp://t2:6969"}};
  options.piece_length = 16384;
  options.is_private = true;
  absl::StatusOr<std::string> torrent = CreateTorrent(dir_ + "/share/", options);
  ASSERT_TRUE(torrent.ok()) << torrent.status();
  absl::StatusOr<engine::Metainfo> m = engine::ParseMetainfo(*torrent);
  ASSERT_TRUE(m.ok()) << m.status();
  EXPECT_EQ(m->name, "share");
  EXPECT_TRUE(m->multi_file);
  EXPECT_TRUE(m->is_private);
  EXPECT_EQ(m->piece_length, 16384);
  ASSERT_EQ(m->files.size(), 5u);
  EXPECT_EQ(m->RelativePath(0), "share/a-z");
  EXPECT_EQ(m->RelativePath(1), "share/a/empty");
  EXPECT_EQ(m->RelativePath(2), "share/a/nested/deep.bin");
  EXPECT_EQ(m->RelativePath(3), "share/b.txt");
  EXPECT_EQ(m->RelativePath(4), "share/c.dat");
  EXPECT_THAT(m->files[2].path, ElementsAre("a", "nested", "deep.bin"));
  EXPECT_EQ(m->files[1].length, 0);
  EXPECT_EQ(m->trackers,
            (std::vector<std::vector<std::string>>{{"http://t1/announce"}, {"udp://t2:6969"}}));
  EXPECT_EQ(m->created_by, "torrenty");
  EXPECT_EQ(torrent->find("url-list"), std::string::npos);
  EXPECT_EQ(torrent->find("7:comment"), std::string::npos);
  ExpectHashes(*m, "x" + deep + b + c);
}

TEST_F(TorrentCreatorTest, SingleFileWithDefaultPieceLength) {
  const std::string data = Random(3'000'000, 4);
  const std::string path = Write("file.iso", data);
  CreateOptions options;
  options.tiers = {{"http://t/announce"}};
  absl::StatusOr<std::string> torrent = CreateTorrent(path, options);
  ASSERT_TRUE(torrent.ok()) << torrent.status();
  absl::StatusOr<engine::Metainfo> m = engine::ParseMetainfo(*torrent);
  ASSERT_TRUE(m.ok()) << m.status();
  EXPECT_EQ(m->name, "file.iso");
  EXPECT_FALSE(m->multi_file);
  EXPECT_FALSE(m->is_private);
  EXPECT_EQ(m->piece_length, 32768);
  EXPECT_EQ(m->RelativePath(0), "file.iso");
  ExpectHashes(*m, data);
}

TEST_F(TorrentCreatorTest, PiecesLargerThanReadChunk) {
  const std::string data = Random((8 << 20) + 123, 5);
  const std::string path = Write("big", data);
  CreateOptions options;
  options.piece_length = 8 << 20;
  absl::StatusOr<std::string> torrent = CreateTorrent(path, options);
  ASSERT_TRUE(torrent.ok()) << torrent.status();
  absl::StatusOr<engine::Metainfo> m = engine::ParseMetainfo(*torrent);
  ASSERT_TRUE(m.ok()) << m.status();
  EXPECT_EQ(m->num_pieces(), 2u);
  ExpectHashes(*m, data);
}

TEST_F(TorrentCreatorTest, RejectsEmptyInputs) {
  std::filesystem::create_directories(dir_ + "/empty_dir/sub");
  EXPECT_THAT(CreateTorrent(dir_ + "/empty_dir", {}).status().message(), HasSubstr("no data"));
  Write("zeros/a", "");
  Write("zeros/b/c", "");
  EXPECT_THAT(CreateTorrent(dir_ + "/zeros", {}).status().message(), HasSubstr("no data"));
  EXPECT_THAT(CreateTorrent(Write("zero_file", ""), {}).status().message(), HasSubstr("no data"));
}

TEST_F(TorrentCreatorTest, FollowsSymlinksInsideDirectoriesLikeMktorrent) {
  const std::string real = Random(40'000, 6);
  const std::string outside = Random(30'000, 7);
  Write("tree/real", real);
  Write("elsewhere/sub/inner.bin", outside);
  ASSERT_EQ(symlink("real", (dir_ + "/tree/link").c_str()), 0);
  ASSERT_EQ(symlink((dir_ + "/elsewhere/sub").c_str(), (dir_ + "/tree/dirlink").c_str()), 0);
  CreateOptions options;
  options.piece_length = 16384;
  absl::StatusOr<std::string> torrent = CreateTorrent(dir_ + "/tree", options);
  ASSERT_TRUE(torrent.ok()) << torrent.status();
  absl::StatusOr<engine::Metainfo> m = engine::ParseMetainfo(*torrent);
  ASSERT_TRUE(m.ok()) << m.status();
  ASSERT_EQ(m->files.size(), 3u);
  EXPECT_EQ(m->RelativePath(0), "tree/dirlink/inner.bin");
  EXPECT_EQ(m->RelativePath(1), "tree/link");
  EXPECT_EQ(m->RelativePath(2), "tree/real");
  EXPECT_EQ(m->files[1].length, 40'000);
  ExpectHashes(*m, outside + real + real);
}

TEST_F(TorrentCreatorTest, RefusesDanglingSymlinksAndLoopsWithAReason) {
  const std::string real_dir = std::filesystem::canonical(dir_);  // as the errors spell it
  Write("dangling/real", "data");
  ASSERT_EQ(symlink("missing-target", (dir_ + "/dangling/broken").c_str()), 0);
  EXPECT_THAT(
      CreateTorrent(dir_ + "/dangling", {}).status().message(),
      HasSubstr("dangling symbolic link: " + real_dir + "/dangling/broken -> missing-target"));

  Write("loop/sub/f", "data");
  ASSERT_EQ(symlink("..", (dir_ + "/loop/sub/up").c_str()), 0);
  EXPECT_THAT(CreateTorrent(dir_ + "/loop", {}).status().message(),
              HasSubstr("symbolic link loop: " + real_dir + "/loop/sub/up leads back to"));

  Write("selfloop/f", "data");
  ASSERT_EQ(symlink("a", (dir_ + "/selfloop/b").c_str()), 0);
  ASSERT_EQ(symlink("b", (dir_ + "/selfloop/a").c_str()), 0);
  EXPECT_THAT(CreateTorrent(dir_ + "/selfloop", {}).status().message(),
              HasSubstr("symbolic link loop: " + real_dir + "/selfloop/"));

  Write("fifo/f", "data");
  ASSERT_EQ(mkfifo((dir_ + "/fifo/pipe").c_str(), 0600), 0);
  EXPECT_THAT(CreateTorrent(dir_ + "/fifo", {}).status().message(),
              HasSubstr("not a regular file: " + real_dir + "/fifo/pipe"));
}

TEST_F(TorrentCreatorTest, WritesCommentSourceWebSeedsAndTiers) {
  const std::string path = Write("f.bin", Random(20'000, 8));
  CreateOptions options;
  options.tiers = {{"http://a/announce", "http://b/announce"}, {"udp://c:80"}};
  options.comment = "hello";
  options.source = "SRC";
  options.web_seeds = {"http://w1/", "http://w2/"};
  options.created_by = "torrenty/9.9.9";
  absl::StatusOr<std::string> torrent = CreateTorrent(path, options);
  ASSERT_TRUE(torrent.ok()) << torrent.status();
  absl::StatusOr<engine::Metainfo> m = engine::ParseMetainfo(*torrent);
  ASSERT_TRUE(m.ok()) << m.status();
  EXPECT_EQ(m->trackers, (std::vector<std::vector<std::string>>{
                             {"http://a/announce", "http://b/announce"}, {"udp://c:80"}}));
  EXPECT_EQ(m->created_by, "torrenty/9.9.9");
  EXPECT_NE(torrent->find("7:comment5:hello"), std::string::npos);
  EXPECT_NE(torrent->find("6:source3:SRC"), std::string::npos);
  EXPECT_NE(torrent->find("8:url-listl10:http://w1/10:http://w2/e"), std::string::npos);
}

TEST_F(TorrentCreatorTest, ReportsHashingProgressUpToTheTotal) {
  // Sparse: the holes read as zeros without touching the disk.
  const std::string path = dir_ + "/big.sparse";
  ASSERT_EQ(truncate(Write("big.sparse", "").c_str(), int64_t{768} << 20), 0);
  CreateOptions options;
  int64_t last = -1;
  int64_t reported_total = 0;
  int calls = 0;
  bool monotonic = true;
  options.on_progress = [&](int64_t hashed, int64_t total) {
    monotonic = monotonic && hashed >= last;
    last = hashed;
    reported_total = total;
    ++calls;
  };
  absl::StatusOr<std::string> torrent = CreateTorrent(path, options);
  ASSERT_TRUE(torrent.ok()) << torrent.status();
  // 768 MiB take at least 0.2 s at 2 x 1.7 GB/s (SHA-NI), two progress intervals.
  EXPECT_GE(calls, 1);
  EXPECT_TRUE(monotonic);
  EXPECT_EQ(reported_total, int64_t{768} << 20);
  EXPECT_LE(last, reported_total);
}

TEST_F(TorrentCreatorTest, FollowsTopLevelSymlinkKeepingItsName) {
  const std::string target = Write("target.bin", "payload");
  ASSERT_EQ(symlink(target.c_str(), (dir_ + "/alias.bin").c_str()), 0);
  absl::StatusOr<std::string> torrent = CreateTorrent(dir_ + "/alias.bin", {});
  ASSERT_TRUE(torrent.ok()) << torrent.status();
  absl::StatusOr<engine::Metainfo> m = engine::ParseMetainfo(*torrent);
  ASSERT_TRUE(m.ok());
  EXPECT_EQ(m->name, "alias.bin");
}

TEST_F(TorrentCreatorTest, RejectsBadArguments) {
  const std::string path = Write("f", "abc");
  CreateOptions options;
  for (int64_t bad : {int64_t{8192}, int64_t{20000}, int64_t{-16384}, int64_t{1} << 30}) {
    options.piece_length = bad;
    EXPECT_THAT(CreateTorrent(path, options).status().message(),
                HasSubstr("piece length must be a power of two"))
        << bad;
  }
  EXPECT_THAT(CreateTorrent(dir_ + "/missing", {}).status().message(), HasSubstr("cannot resolve"));
  EXPECT_FALSE(CreateTorrent("/", {}).ok());
}

TEST_F(TorrentCreatorTest, DotNamesUseTheCanonicalDirectory) {
  Write("proj/x", "12345");
  const std::string cwd = std::filesystem::current_path();
  ASSERT_EQ(chdir((dir_ + "/proj").c_str()), 0);
  absl::StatusOr<std::string> torrent = CreateTorrent(".", {});
  ASSERT_EQ(chdir(cwd.c_str()), 0);
  ASSERT_TRUE(torrent.ok()) << torrent.status();
  absl::StatusOr<engine::Metainfo> m = engine::ParseMetainfo(*torrent);
  ASSERT_TRUE(m.ok());
  EXPECT_EQ(m->name, "proj");
}

}  // namespace
}  // namespace torrenty::io
