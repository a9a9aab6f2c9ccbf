// Tests for the metric families of `torrenty serve`: what a realistic snapshot renders to, and that
// the real `promtool check metrics` (Debian's prometheus package, installed by tools/setup)
// accepts it without a single lint problem.
#include <sys/wait.h>

#include <cstdlib>
#include <fstream>
#include <sstream>

#include "absl/strings/match.h"
#include "absl/strings/str_cat.h"
#include "gmock/gmock.h"
#include "gtest/gtest.h"
#include "io/metrics/session_metrics.h"
#include "tests/testing/metainfo_fixtures.h"

namespace torrenty::io::metrics {
namespace {

using ::testing::HasSubstr;
using ::testing::Not;
using ::torrenty::testing::TempDir;

// Three shards in the middle of a busy session, filled through the live instruments as the
// session will fill them.
SessionSnapshot BusySession() {
  SessionSnapshot session;
  for (int i = 0; i < 3; ++i) {
    ShardInstruments shard;
    shard.payload_received_bytes.Add(1'073'741'824ull * (i + 1));
    shard.payload_sent_bytes.Add(524'288ull * i);
    shard.protocol_received_bytes.Add(123'456 + i);
    shard.protocol_sent_bytes.Add(65'432 + i);
    shard.pieces_verified.Add(4096 * (i + 1));
    shard.pieces_failed.Add(i);
    shard.ring_submissions.Add(1'000'000 + i);
    shard.ring_completions.Add(999'990 + i);
    shard.hash_queue_depth.Set(3 + i);
    shard.disk_queue_depth.Set(7 * i);
    shard.peers_in(PeerState::kConnecting).Set(2);
    shard.peers_in(PeerState::kHandshaking).Set(1);
    shard.peers_in(PeerState::kActive).Set(40 + i);
    shard.peers_in(PeerState::kIdle).Set(10);
    for (uint64_t ns : {4'000ull, 25'000ull, 800'000ull, 12'000'000ull, 3'000'000'000ull}) {
      shard.disk_latency.Observe(ns * (i + 1));
    }
    shard.Snapshot(&session.shards.emplace_back());
  }
  SessionInstruments coordinator;
  coordinator.announces_with(AnnounceResult::kSuccess).Add(9'950);
  coordinator.announces_with(AnnounceResult::kTrackerFailure).Add(12);
  coordinator.announces_with(AnnounceResult::kTimeout).Add(30);
  coordinator.announces_with(AnnounceResult::kNetworkError).Add(7);
  coordinator.announces_with(AnnounceResult::kInvalidResponse).Add(1);
  coordinator.torrents_in(TorrentState::kSeeding).Set(9'800);
  coordinator.torrents_in(TorrentState::kDownloading).Set(150);
  coordinator.torrents_in(TorrentState::kStopped).Set(50);
  coordinator.Snapshot(&session);
  return session;
}

struct PromtoolResult {
  int exit_code = -1;
  std::string output;
};

// Runs the real `promtool check metrics` on `text`. promtool missing is a failure (exit 127), not
// a skip: tools/setup installs it.
PromtoolResult CheckWithPromtool(const std::string& text) {
  TempDir dir("torrenty-promtool");
  const std::string in = dir.path() + "/metrics.txt";
  const std::string out = dir.path() + "/promtool.out";
  std::ofstream(in) << text;
  const std::string cmd = absl::StrCat("promtool check metrics < '", in, "' > '", out, "' 2>&1");
  const int status = std::system(cmd.c_str());
  PromtoolResult r;
  if (status != -1 && WIFEXITED(status)) r.exit_code = WEXITSTATUS(status);
  std::ostringstream s;
  s << std::ifstream(out).rdbuf();
  r.output = s.str();
  return r;
}

TEST(MetricsSessionTest, RendersEveryFamilyOfTheIssue) {
  absl::StatusOr<std::string> text = RenderSessionMetrics(BusySession());
  ASSERT_TRUE(text.ok()) << text.status();
  const char* const expected_lines[] = {
      "# TYPE torrenty_payload_received_bytes_total counter",
      "torrenty_payload_received_bytes_total 6442450944",
      "torrenty_shard_payload_received_bytes_total{shard=\"2\"} 3221225472",
      "torrenty_payload_sent_bytes_total 1572864",
      "torrenty_protocol_received_bytes_total 370371",
      "torrenty_protocol_sent_bytes_total 196299",
      "torrenty_pieces_verified_total 24576",
      "torrenty_pieces_failed_total 3",
      "torrenty_shard_pieces_failed_total{shard=\"0\"} 0",
      "torrenty_ring_submissions_total 3000003",
      "torrenty_ring_completions_total 2999973",
      "# TYPE torrenty_hash_queue_depth gauge",
      "torrenty_hash_queue_depth 12",
      "torrenty_shard_hash_queue_depth{shard=\"1\"} 4",
      "torrenty_disk_queue_depth 21",
      "torrenty_peers{state=\"connecting\"} 6",
      "torrenty_peers{state=\"active\"} 123",
      "torrenty_shard_peers{shard=\"1\",state=\"active\"} 41",
      "# TYPE torrenty_disk_latency_seconds histogram",
      "torrenty_disk_latency_seconds_bucket{le=\"1e-05\"} 2",
      "torrenty_disk_latency_seconds_bucket{le=\"+Inf\"} 15",
      "torrenty_disk_latency_seconds_count 15",
      "torrenty_shard_disk_latency_seconds_bucket{shard=\"0\",le=\"1e-05\"} 1",
      "torrenty_shard_disk_latency_seconds_bucket{shard=\"0\",le=\"+Inf\"} 5",
      "torrenty_shard_disk_latency_seconds_sum{shard=\"0\"} 3.012829",
      "# TYPE torrenty_announces_total counter",
      "torrenty_announces_total{result=\"success\"} 9950",
      "torrenty_announces_total{result=\"tracker_failure\"} 12",
      "torrenty_announces_total{result=\"timeout\"} 30",
      "torrenty_announces_total{result=\"network_error\"} 7",
      "torrenty_announces_total{result=\"invalid_response\"} 1",
      "# TYPE torrenty_torrents gauge",
      "torrenty_torrents{state=\"seeding\"} 9800",
      "torrenty_torrents{state=\"check_wait\"} 0",
  };
  for (const char* line : expected_lines) {
    EXPECT_TRUE(absl::StrContains(absl::StrCat("\n", *text), absl::StrCat("\n", line, "\n")))
        << "missing line: " << line;
  }
  EXPECT_EQ(text->back(), '\n');
}

// The acceptance check of the issue: promtool parses and lints the exposition (HELP and TYPE on
// every family, _total on counters, base units) and finds nothing.
TEST(MetricsSessionTest, PromtoolAcceptsARealisticScrape) {
  absl::StatusOr<std::string> text = RenderSessionMetrics(BusySession());
  ASSERT_TRUE(text.ok()) << text.status();
  const PromtoolResult r = CheckWithPromtool(*text);
  ASSERT_NE(r.exit_code, 127) << "promtool is not installed: run tools/setup (Debian package "
                                 "prometheus)\n"
                              << r.output;
  EXPECT_EQ(r.exit_code, 0) << r.output << "\n--- exposition ---\n" << *text;
  EXPECT_EQ(r.output, "") << r.output;
}

TEST(MetricsSessionTest, PromtoolAcceptsAnIdleSessionWithOneShard) {
  SessionSnapshot session;
  session.shards.emplace_back();
  absl::StatusOr<std::string> text = RenderSessionMetrics(session);
  ASSERT_TRUE(text.ok()) << text.status();
  const PromtoolResult r = CheckWithPromtool(*text);
  EXPECT_EQ(r.exit_code, 0) << r.output << "\n--- exposition ---\n" << *text;
}

// Guards the guard: the same promtool call must reject what Prometheus' lint rejects, or the tests
// above would pass on a promtool that checks nothing.
TEST(MetricsSessionTest, PromtoolRejectsACounterWithoutTotalAndAMissingHelp) {
  const PromtoolResult no_total =
      CheckWithPromtool("# HELP t_bytes Bytes.\n# TYPE t_bytes counter\nt_bytes 1\n");
  EXPECT_NE(no_total.exit_code, 0) << no_total.output;
  EXPECT_THAT(no_total.output, HasSubstr("_total"));
  const PromtoolResult no_help =
      CheckWithPromtool("# TYPE t_bytes_total counter\nt_bytes_total 1\n");
  EXPECT_NE(no_help.exit_code, 0) << no_help.output;
  EXPECT_THAT(no_help.output, HasSubstr("no help text"));
}

TEST(MetricsSessionTest, SumShardsAddsEverything) {
  const SessionSnapshot session = BusySession();
  absl::StatusOr<ShardSnapshot> total = SumShards(session.shards);
  ASSERT_TRUE(total.ok()) << total.status();
  EXPECT_EQ(total->pieces_verified, 4096u * 6);
  EXPECT_EQ(total->peers[static_cast<int>(PeerState::kIdle)], 30);
  EXPECT_EQ(total->disk_latency.Count(), 15u);
  EXPECT_EQ(total->disk_latency.counts.back(), 3u);  // 3 s, 6 s and 9 s are past 1.31 s

  std::vector<ShardSnapshot> mismatched(2);
  mismatched[1].disk_latency = HistogramSnapshot{{1.0}, {0, 0}, 0};
  EXPECT_FALSE(SumShards(mismatched).ok());
  EXPECT_FALSE(RenderSessionMetrics(SessionSnapshot{mismatched, {}, {}}).ok());
}

TEST(MetricsSessionTest, NoShardsStillRendersSessionTotals) {
  absl::StatusOr<std::string> text = RenderSessionMetrics(SessionSnapshot{});
  ASSERT_TRUE(text.ok()) << text.status();
  EXPECT_THAT(*text, HasSubstr("\ntorrenty_payload_received_bytes_total 0\n"));
  EXPECT_THAT(*text, Not(HasSubstr("shard=")));
}

}  // namespace
}  // namespace torrenty::io::metrics
