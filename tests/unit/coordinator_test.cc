// The coordinator's torrent list without running the session: duplicates by info-hash, and a
// removed torrent's info-hash free again.
#include "io/session/coordinator.h"

#include <memory>
#include <string>
#include <vector>

#include "engine/base/bitfield.h"
#include "engine/metainfo/metainfo.h"
#include "gtest/gtest.h"
#include "io/session/session.h"

namespace torrenty::io {
namespace {

std::shared_ptr<const engine::Metainfo> Meta(int i) {
  auto m = std::make_shared<engine::Metainfo>();
  m->name = "t" + std::to_string(i);
  m->info_hash.fill(0);
  m->info_hash[0] = static_cast<uint8_t>(i);
  m->info_hash[1] = static_cast<uint8_t>(i >> 8);
  m->piece_length = 16 << 10;
  m->total_length = 16 << 10;
  m->piece_hashes.resize(1);
  return m;
}

AddTorrentParams Params(int i) {
  AddTorrentParams p;
  p.meta = Meta(i);
  p.data_dir = "/nonexistent";
  p.paused = true;  // never activated: no file is opened
  p.have = engine::Bitfield(1);
  return p;
}

std::unique_ptr<Session> NewSession() {
  SessionConfig config;
  config.port = 0;
  config.port_explicit = true;
  config.threads = 1;
  config.hash_threads = 1;
  config.handle_signals = false;
  absl::StatusOr<std::unique_ptr<Session>> s = Session::Create(std::move(config));
  EXPECT_TRUE(s.ok()) << s.status();
  return s.ok() ? std::move(*s) : nullptr;
}

TEST(CoordinatorTest, RefusesASecondTorrentWithTheSameInfoHash) {
  std::unique_ptr<Session> s = NewSession();
  ASSERT_NE(s, nullptr);
  for (int i = 0; i < 300; ++i) ASSERT_TRUE(s->AddTorrent(Params(i)).ok());
  absl::StatusOr<TorrentId> again = s->AddTorrent(Params(123));
  EXPECT_TRUE(absl::IsAlreadyExists(again.status())) << again.status();
  Coordinator& c = s->coordinator();
  ASSERT_NE(c.FindByHash(Meta(123)->info_hash), nullptr);
  EXPECT_EQ(c.FindByHash(Meta(123)->info_hash)->meta->name, "t123");
  EXPECT_EQ(c.FindByHash(Meta(999)->info_hash), nullptr);
}

TEST(CoordinatorTest, ARemovedTorrentCanBeAddedAgain) {
  std::unique_ptr<Session> s = NewSession();
  ASSERT_NE(s, nullptr);
  absl::StatusOr<TorrentId> first = s->AddTorrent(Params(7));
  ASSERT_TRUE(first.ok()) << first.status();
  ASSERT_TRUE(s->AddTorrent(Params(8)).ok());
  Coordinator& c = s->coordinator();
  bool removed = false;
  c.Remove(*first, /*delete_data=*/false, [&] { removed = true; });  // stopped: at once
  ASSERT_TRUE(removed);
  EXPECT_EQ(c.FindByHash(Meta(7)->info_hash), nullptr);
  absl::StatusOr<TorrentId> second = s->AddTorrent(Params(7));
  ASSERT_TRUE(second.ok()) << second.status();
  EXPECT_NE(*second, *first);
  EXPECT_TRUE(absl::IsAlreadyExists(s->AddTorrent(Params(8)).status()));
}

TEST(CoordinatorTest, RemoveWaitsForPendingFsyncsWithoutPolling) {
  std::unique_ptr<Session> s = NewSession();
  ASSERT_NE(s, nullptr);
  absl::StatusOr<TorrentId> id = s->AddTorrent(Params(7));
  ASSERT_TRUE(id.ok()) << id.status();
  Coordinator& c = s->coordinator();
  TorrentEntry* e = c.Find(*id);
  // As after a completion: an fsync in flight points into the entry.
  e->fsyncs_pending = 1;
  bool removed = false;
  c.Remove(*id, /*delete_data=*/false, [&] { removed = true; });
  EXPECT_FALSE(removed);
  ASSERT_EQ(c.Find(*id), e);
  std::vector<CoordinatorMessage> posted;
  c.inbox().Take(&posted);
  EXPECT_TRUE(posted.empty()) << "the removal re-posted itself while the fsync was in flight";

  e->fsync_c.Complete(0, 0);
  c.inbox().Take(&posted);
  ASSERT_EQ(posted.size(), 1u);
  EXPECT_FALSE(removed);  // not inside the completion, which the entry owns
  posted[0].call();
  EXPECT_TRUE(removed);
  EXPECT_EQ(c.Find(*id), nullptr);
}

}  // namespace
}  // namespace torrenty::io
