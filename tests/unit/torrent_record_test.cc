#include "engine/session/torrent_record.h"

#include <string>
#include <vector>

#include "gtest/gtest.h"

namespace torrenty::engine {
namespace {

TEST(TorrentRecordTest, RoundTrips) {
  TorrentRecord r;
  r.download_dir = "/srv/data";
  r.paused = true;
  r.added_date = 1700000000;
  r.done_date = 1700000100;
  r.downloaded = 1 << 30;
  r.uploaded = 12345;
  absl::StatusOr<TorrentRecord> back = DecodeTorrentRecord(EncodeTorrentRecord(r));
  ASSERT_TRUE(back.ok()) << back.status();
  EXPECT_EQ(*back, r);
}

TEST(TorrentRecordTest, FilesUnwantedRoundTrip) {
  TorrentRecord r;
  r.download_dir = "/srv/data";
  r.files_unwanted = {1, 4};
  const std::string bytes = EncodeTorrentRecord(r);
  EXPECT_NE(bytes.find("14:files-unwantedli1ei4ee"), std::string::npos) << bytes;
  absl::StatusOr<TorrentRecord> back = DecodeTorrentRecord(bytes);
  ASSERT_TRUE(back.ok()) << back.status();
  EXPECT_EQ(back->files_unwanted, (std::vector<uint32_t>{1, 4}));
  EXPECT_FALSE(DecodeTorrentRecord("d12:download-dir1:x14:files-unwantedi1ee").ok());
  EXPECT_FALSE(DecodeTorrentRecord("d12:download-dir1:x14:files-unwantedli-1eee").ok());
}

TEST(TorrentRecordTest, RefusesBrokenRecords) {
  EXPECT_FALSE(DecodeTorrentRecord("").ok());
  EXPECT_FALSE(DecodeTorrentRecord("le").ok());
  EXPECT_FALSE(DecodeTorrentRecord("de").ok());  // no download-dir
  EXPECT_FALSE(DecodeTorrentRecord("d12:download-dir0:e").ok());
  EXPECT_FALSE(DecodeTorrentRecord("d10:added-datei-1e12:download-dir1:xe").ok());
  EXPECT_FALSE(DecodeTorrentRecord("d12:download-dir1:x6:paused1:xe").ok());
}

TEST(TorrentRecordTest, IgnoresUnknownKeys) {
  absl::StatusOr<TorrentRecord> r = DecodeTorrentRecord("d12:download-dir1:x5:zzzzzi7ee");
  ASSERT_TRUE(r.ok()) << r.status();
  EXPECT_EQ(r->download_dir, "x");
  EXPECT_FALSE(r->paused);
}

}  // namespace
}  // namespace torrenty::engine
