// Tests for the single-writer instruments: bucketing, snapshots, and a writer thread racing a
// scraper thread (run under ThreadSanitizer by tools/test).
#include <atomic>
#include <functional>
#include <thread>

#include "absl/strings/str_cat.h"
#include "gtest/gtest.h"
#include "io/metrics/instruments.h"
#include "io/metrics/session_metrics.h"

namespace torrenty::io::metrics {
namespace {

TEST(MetricsInstrumentsTest, ExponentialBucketBounds) {
  absl::StatusOr<HistogramBuckets> b = HistogramBuckets::Exponential(10, 4, 4, 1000);
  ASSERT_TRUE(b.ok()) << b.status();
  EXPECT_EQ(std::vector<uint64_t>(b->bounds().begin(), b->bounds().end()),
            (std::vector<uint64_t>{10, 40, 160, 640}));
  EXPECT_EQ(EmptySnapshot(*b).upper_bounds, (std::vector<double>{0.01, 0.04, 0.16, 0.64}));
  EXPECT_EQ(EmptySnapshot(*b).counts, (std::vector<uint64_t>{0, 0, 0, 0, 0}));

  EXPECT_FALSE(HistogramBuckets::Exponential(0, 2, 4, 1).ok());
  EXPECT_FALSE(HistogramBuckets::Exponential(1, 1, 4, 1).ok());
  EXPECT_FALSE(HistogramBuckets::Exponential(1, 2, 0, 1).ok());
  EXPECT_FALSE(HistogramBuckets::Exponential(1, 2, kMaxHistogramBounds + 1, 1).ok());
  EXPECT_FALSE(HistogramBuckets::Exponential(1, 2, 4, 0).ok());
  EXPECT_FALSE(HistogramBuckets::Exponential(uint64_t{1} << 62, 2, 3, 1).ok());  // 2^64
  EXPECT_TRUE(HistogramBuckets::Exponential(uint64_t{1} << 62, 2, 2, 1).ok());   // 2^63 fits
}

// A bound is inclusive (Prometheus' le): a value equal to it counts in its bucket.
TEST(MetricsInstrumentsTest, BucketOfUsesInclusiveUpperBounds) {
  const HistogramBuckets b = *HistogramBuckets::Exponential(10, 10, 3, 1);  // 10, 100, 1000
  EXPECT_EQ(b.BucketOf(0), 0u);
  EXPECT_EQ(b.BucketOf(10), 0u);
  EXPECT_EQ(b.BucketOf(11), 1u);
  EXPECT_EQ(b.BucketOf(100), 1u);
  EXPECT_EQ(b.BucketOf(101), 2u);
  EXPECT_EQ(b.BucketOf(1000), 2u);
  EXPECT_EQ(b.BucketOf(1001), 3u);  // +Inf
  EXPECT_EQ(b.BucketOf(UINT64_MAX), 3u);
}

TEST(MetricsInstrumentsTest, HistogramSnapshotInBaseUnits) {
  ShardHistogram h(*HistogramBuckets::Exponential(1000, 10, 3, 1e6));  // 1 ms, 10 ms, 100 ms in µs
  for (uint64_t us : {500, 1000, 1001, 99'999, 100'000, 2'000'000}) h.Observe(us);
  HistogramSnapshot s;
  h.Snapshot(&s);
  EXPECT_EQ(s.upper_bounds, (std::vector<double>{0.001, 0.01, 0.1}));
  EXPECT_EQ(s.counts, (std::vector<uint64_t>{2, 1, 2, 1}));
  EXPECT_EQ(s.Count(), 6u);
  EXPECT_DOUBLE_EQ(s.sum, 2.2025);

  absl::StatusOr<std::string> text = [&] {
    TextWriter w;
    w.BeginFamily("t_seconds", MetricType::kHistogram, "h");
    w.Histogram({}, s);
    return std::move(w).Finish();
  }();
  ASSERT_TRUE(text.ok()) << text.status();
  EXPECT_NE(text->find("t_seconds_bucket{le=\"0.001\"} 2\n"
                       "t_seconds_bucket{le=\"0.01\"} 3\n"
                       "t_seconds_bucket{le=\"0.1\"} 5\n"
                       "t_seconds_bucket{le=\"+Inf\"} 6\n"
                       "t_seconds_sum 2.2025\n"
                       "t_seconds_count 6\n"),
            std::string::npos)
      << *text;
}

TEST(MetricsInstrumentsTest, DiskLatencyBucketsSpanTenMicrosecondsToOneSecond) {
  const HistogramSnapshot s = EmptySnapshot(DiskLatencyBuckets());
  ASSERT_EQ(s.upper_bounds.size(), 18u);
  EXPECT_EQ(s.upper_bounds.front(), 1e-5);
  EXPECT_EQ(s.upper_bounds.back(), 1.31072);
  EXPECT_EQ(FormatValue(s.upper_bounds[1]), "2e-05");
}

TEST(MetricsInstrumentsTest, CountersAndGauges) {
  ShardCounter c;
  c.Add();
  c.Add(41);
  EXPECT_EQ(c.Read(), 42u);
  ShardGauge g;
  g.Set(5);
  g.Add(-7);
  EXPECT_EQ(g.Read(), -2);
}

// Two shard threads and a coordinator thread count while a scraper thread snapshots and renders.
// Every value the scraper sees must be one the writer stored (monotonic, never torn), and after
// the joins the totals are exact. Under ThreadSanitizer this also proves the single-writer design
// has no data race.
TEST(MetricsInstrumentsTest, ScraperReadsWhileShardsWrite) {
  constexpr uint64_t kEvents = 1'000'000;
  ShardInstruments shards[2];
  SessionInstruments coordinator;
  std::atomic<int> running{3};
  // Halfway through, each writer waits for a scrape, so at least one lands while they write
  // even when a loaded machine would otherwise run the writers to the end before the scraper.
  std::atomic<uint64_t> scrapes_done{0};
  const auto halfway = [&](uint64_t i) {
    if (i != kEvents / 2) return;
    while (scrapes_done.load(std::memory_order_acquire) == 0) std::this_thread::yield();
  };

  auto shard_loop = [&](ShardInstruments& shard) {
    for (uint64_t i = 1; i <= kEvents; ++i) {
      halfway(i);
      shard.payload_received_bytes.Add(16384);
      shard.protocol_received_bytes.Add(13);
      shard.ring_submissions.Add();
      shard.ring_completions.Add();
      shard.disk_queue_depth.Set(static_cast<int64_t>(i % 8));
      shard.peers_in(PeerState::kActive).Add(i % 2 ? 1 : -1);
      shard.disk_latency.Observe((i % 1000) * 1000);  // 0 to 999 µs in ns
    }
    running.fetch_sub(1, std::memory_order_release);
  };
  std::thread shard0(shard_loop, std::ref(shards[0]));
  std::thread shard1(shard_loop, std::ref(shards[1]));
  std::thread announcer([&] {
    for (uint64_t i = 1; i <= kEvents; ++i) {
      halfway(i);
      coordinator.announces_with(AnnounceResult::kSuccess).Add();
      coordinator.torrents_in(TorrentState::kSeeding).Set(static_cast<int64_t>(i));
    }
    running.fetch_sub(1, std::memory_order_release);
  });

  uint64_t scrapes = 0;
  uint64_t last_bytes = 0;
  uint64_t last_count = 0;
  uint64_t last_announces = 0;
  ShardSnapshot snap;
  SessionSnapshot session;
  bool finished = false;
  while (!finished) {
    finished = running.load(std::memory_order_acquire) == 0;  // one more pass after the writers
    shards[1].Snapshot(&snap);
    ASSERT_GE(snap.payload_received_bytes, last_bytes);
    ASSERT_EQ(snap.payload_received_bytes % 16384, 0u);  // a torn read would show here
    ASSERT_LE(snap.payload_received_bytes, kEvents * 16384);
    ASSERT_GE(snap.disk_queue_depth, 0);
    ASSERT_LT(snap.disk_queue_depth, 8);
    ASSERT_GE(snap.peers[static_cast<int>(PeerState::kActive)], 0);
    ASSERT_LE(snap.peers[static_cast<int>(PeerState::kActive)], 1);
    ASSERT_GE(snap.disk_latency.Count(), last_count);
    last_bytes = snap.payload_received_bytes;
    last_count = snap.disk_latency.Count();
    coordinator.Snapshot(&session);
    const uint64_t announces = session.announces[static_cast<int>(AnnounceResult::kSuccess)];
    ASSERT_GE(announces, last_announces);
    last_announces = announces;
    const ShardInstruments* const all[] = {&shards[0], &shards[1]};
    ASSERT_TRUE(ScrapeSessionMetrics(all, coordinator).ok());
    ++scrapes;
    scrapes_done.store(scrapes, std::memory_order_release);
  }
  shard0.join();
  shard1.join();
  announcer.join();

  EXPECT_GT(scrapes, 1u);
  EXPECT_EQ(snap.payload_received_bytes, kEvents * 16384);
  EXPECT_EQ(snap.protocol_received_bytes, kEvents * 13);
  EXPECT_EQ(snap.ring_submissions, kEvents);
  EXPECT_EQ(snap.ring_completions, kEvents);
  EXPECT_EQ(snap.peers[static_cast<int>(PeerState::kActive)], 0);
  EXPECT_EQ(snap.disk_latency.Count(), kEvents);
  EXPECT_DOUBLE_EQ(snap.disk_latency.sum, (kEvents / 1000) * (999.0 * 1000 / 2) * 1000 / 1e9);
  EXPECT_EQ(last_announces, kEvents);
  const ShardInstruments* const all[] = {&shards[0], &shards[1]};
  absl::StatusOr<std::string> text = ScrapeSessionMetrics(all, coordinator);
  ASSERT_TRUE(text.ok()) << text.status();
  EXPECT_NE(text->find(absl::StrCat("\ntorrenty_payload_received_bytes_total ", 2 * kEvents * 16384,
                                    "\n")),
            std::string::npos);
  EXPECT_NE(text->find("\ntorrenty_torrents{state=\"seeding\"} 1000000\n"), std::string::npos);
}

}  // namespace
}  // namespace torrenty::io::metrics
