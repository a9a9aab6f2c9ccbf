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

TEST(TorrentRecordTest, SuperSeedRoundTripsAndStaysUnsetWhenAbsent) {
  TorrentRecord r;
  r.download_dir = "/srv/data";
  EXPECT_EQ(EncodeTorrentRecord(r).find("super-seed"), std::string::npos);
  for (bool on : {true, false}) {
    r.super_seed = on;
    const std::string bytes = EncodeTorrentRecord(r);
    EXPECT_NE(bytes.find(on ? "10:super-seedi1e" : "10:super-seedi0e"), std::string::npos);
    absl::StatusOr<TorrentRecord> back = DecodeTorrentRecord(bytes);
    ASSERT_TRUE(back.ok()) << back.status();
    EXPECT_EQ(back->super_seed, on);
  }
  absl::StatusOr<TorrentRecord> old = DecodeTorrentRecord("d12:download-dir1:xe");
  ASSERT_TRUE(old.ok());
  EXPECT_FALSE(old->super_seed.has_value());
  EXPECT_FALSE(DecodeTorrentRecord("d12:download-dir1:x10:super-seed1:ye").ok());
}

TEST(TorrentRecordTest, HonorsSessionLimitsIsOnUnlessARecordSaysOff) {
  TorrentRecord r;
  r.download_dir = "/srv/data";
  EXPECT_EQ(EncodeTorrentRecord(r).find("honors-session-limits"), std::string::npos);
  r.honors_session_limits = false;
  const std::string bytes = EncodeTorrentRecord(r);
  EXPECT_NE(bytes.find("21:honors-session-limitsi0e"), std::string::npos);
  absl::StatusOr<TorrentRecord> back = DecodeTorrentRecord(bytes);
  ASSERT_TRUE(back.ok()) << back.status();
  EXPECT_FALSE(back->honors_session_limits);
  absl::StatusOr<TorrentRecord> old = DecodeTorrentRecord("d12:download-dir1:xe");
  ASSERT_TRUE(old.ok());
  EXPECT_TRUE(old->honors_session_limits);
  EXPECT_FALSE(DecodeTorrentRecord("d12:download-dir1:x21:honors-session-limits1:ne").ok());
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

namespace torrenty::engine {
namespace {

TEST(TorrentRecordTest, SeedLimitsAndQueuePositionRoundTrip) {
  TorrentRecord r;
  r.download_dir = "/srv/data";
  r.finished = true;
  r.queue_position = 7;
  r.seed_ratio_mode = 1;
  r.seed_ratio_milli = 500;
  r.seed_idle_mode = 2;
  r.seed_idle_minutes = 45;
  absl::StatusOr<TorrentRecord> back = DecodeTorrentRecord(EncodeTorrentRecord(r));
  ASSERT_TRUE(back.ok()) << back.status();
  EXPECT_EQ(*back, r);
  // A record written before these fields existed gets the defaults.
  absl::StatusOr<TorrentRecord> old = DecodeTorrentRecord("d12:download-dir4:/srv6:pausedi0ee");
  ASSERT_TRUE(old.ok()) << old.status();
  EXPECT_FALSE(old->finished);
  EXPECT_EQ(old->seed_ratio_mode, 0);
  EXPECT_EQ(old->seed_ratio_milli, 2000);
  EXPECT_FALSE(DecodeTorrentRecord("d12:download-dir4:/srv15:seed-ratio-modei3ee").ok());
}

}  // namespace
}  // namespace torrenty::engine
