#include "engine/session/session_record.h"

#include "gtest/gtest.h"

namespace torrenty::engine {
namespace {

TEST(SessionRecordTest, RoundTrips) {
  SessionRecord r;
  r.download_dir = "/srv/dl";
  r.start_added_torrents = false;
  r.seed_ratio_limited = true;
  r.seed_ratio_milli = 1500;
  r.idle_seeding_limit_enabled = true;
  r.idle_seeding_minutes = 12;
  r.download_queue_enabled = true;
  r.download_queue_size = 1;
  r.seed_queue_enabled = true;
  r.seed_queue_size = 0;
  r.queue_stalled_enabled = true;
  r.queue_stalled_minutes = 3;
  absl::StatusOr<SessionRecord> back = DecodeSessionRecord(EncodeSessionRecord(r));
  ASSERT_TRUE(back.ok()) << back.status();
  EXPECT_EQ(*back, r);
}

TEST(SessionRecordTest, MissingKeysKeepDefaultsBadOnesFail) {
  absl::StatusOr<SessionRecord> empty = DecodeSessionRecord("de");
  ASSERT_TRUE(empty.ok());
  EXPECT_EQ(*empty, SessionRecord{});
  EXPECT_FALSE(DecodeSessionRecord("le").ok());
  EXPECT_FALSE(DecodeSessionRecord("d19:download-queue-sizei-1ee").ok());
  EXPECT_FALSE(DecodeSessionRecord("d18:seed-queue-enabledi2ee").ok());
  EXPECT_FALSE(DecodeSessionRecord("d12:download-diri1ee").ok());
  EXPECT_FALSE(DecodeSessionRecord("d12:download-dir").ok());
}

}  // namespace
}  // namespace torrenty::engine
