// /metrics of a real io::Session: a sharded seeder and a sharded downloader in one process on
// 127.0.0.1, scraped from a third thread while both run. Checks that the numbers are the
// transfer's (payload bytes, pieces, disk operations) and that the real `promtool check metrics`
// (Debian's prometheus package) accepts the text.
#include <stdlib.h>
#include <sys/wait.h>

#include <chrono>
#include <cstdlib>
#include <filesystem>
#include <fstream>
#include <future>
#include <memory>
#include <optional>
#include <random>
#include <sstream>
#include <string>
#include <thread>

#include "absl/strings/numbers.h"
#include "absl/strings/str_cat.h"
#include "absl/strings/str_split.h"
#include "absl/strings/string_view.h"
#include "engine/metainfo/metainfo.h"
#include "gtest/gtest.h"
#include "io/disk/torrent_creator.h"
#include "io/session/session.h"
#include "tests/testing/metainfo_fixtures.h"

namespace torrenty::io {
namespace {

namespace fs = std::filesystem;
using ::torrenty::testing::TempDir;

constexpr auto kTimeout = std::chrono::seconds(60);

void WriteRandomFile(const fs::path& path, size_t size, uint32_t seed) {
  std::mt19937 gen(seed);
  std::string data(size, '\0');
  for (char& c : data) c = static_cast<char>(gen());
  std::ofstream out(path, std::ios::binary);
  out.write(data.data(), static_cast<std::streamsize>(data.size()));
}

// The value of the sample whose name and labels are exactly `series` (e.g.
// `torrenty_torrents{state="seeding"}`); nullopt when there is none.
std::optional<double> Sample(const std::string& text, absl::string_view series) {
  for (absl::string_view line : absl::StrSplit(text, '\n')) {
    if (line.size() > series.size() && line.substr(0, series.size()) == series &&
        line[series.size()] == ' ') {
      double v = 0;
      if (absl::SimpleAtod(line.substr(series.size() + 1), &v)) return v;
    }
  }
  return std::nullopt;
}

double SampleOr0(const std::string& text, absl::string_view series) {
  return Sample(text, series).value_or(0);
}

struct PromtoolResult {
  int exit_code = -1;
  std::string output;
};

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

class SessionMetricsTest : public ::testing::Test {
 protected:
  void SetUp() override {
    ASSERT_FALSE(root_.path().empty());
    const fs::path root = root_.path();
    fs::create_directories(root / "seed" / "payload");
    fs::create_directories(root / "leech");
    // Two files, the boundary inside a piece; 5 MiB in 64 KiB pieces.
    WriteRandomFile(root / "seed" / "payload" / "a.bin", (4 << 20) + 4321, 1);
    WriteRandomFile(root / "seed" / "payload" / "b.bin", (1 << 20) - 4321, 2);
    CreateOptions copts;
    copts.piece_length = 64 << 10;
    // Nothing listens on port 1: every announce ends in a refused connection.
    copts.tiers = {{"http://127.0.0.1:1/announce"}};
    absl::StatusOr<std::string> torrent =
        CreateTorrent((root / "seed" / "payload").string(), copts);
    ASSERT_TRUE(torrent.ok()) << torrent.status();
    absl::StatusOr<engine::Metainfo> meta = engine::ParseMetainfo(*torrent);
    ASSERT_TRUE(meta.ok()) << meta.status();
    meta_ = std::make_shared<const engine::Metainfo>(*std::move(meta));
  }

  static SessionConfig Config() {
    SessionConfig c;
    c.port = 0;  // explicit 0: an ephemeral port, never 6881-6889
    c.port_explicit = true;
    c.threads = 2;
    c.hash_threads = 2;
    c.handle_signals = false;
    c.verbosity = Verbosity::kQuiet;
    return c;
  }

  TempDir root_{"torrenty-session-metrics"};
  std::shared_ptr<const engine::Metainfo> meta_;
};

TEST_F(SessionMetricsTest, ScrapeAfterATransferShowsItsNumbers) {
  const int64_t size = meta_->total_length;
  const uint32_t pieces = meta_->num_pieces();

  absl::StatusOr<std::unique_ptr<Session>> seeder = Session::Create(Config());
  ASSERT_TRUE(seeder.ok()) << seeder.status();
  AddTorrentParams seed;
  seed.meta = meta_;
  seed.data_dir = (fs::path(root_.path()) / "seed").string();
  seed.have = engine::Bitfield(pieces);
  seed.have->SetAll();
  ASSERT_TRUE((*seeder)->AddTorrent(std::move(seed)).ok());
  std::future<absl::Status> seed_result =
      std::async(std::launch::async, [s = seeder->get()] { return s->Run(); });

  SessionConfig leech_config = Config();
  auto complete = std::make_shared<std::promise<void>>();
  leech_config.on_progress = [complete, done = false](TorrentId, const SessionProgress& p) mutable {
    if (p.complete && !done) {
      done = true;
      complete->set_value();
    }
  };
  absl::StatusOr<std::unique_ptr<Session>> leech = Session::Create(std::move(leech_config));
  ASSERT_TRUE(leech.ok()) << leech.status();
  AddTorrentParams add;
  add.meta = meta_;
  add.data_dir = (fs::path(root_.path()) / "leech").string();
  add.have = engine::Bitfield(pieces);
  add.peers.push_back(engine::PeerAddress{0x7F000001, (*seeder)->port()});
  ASSERT_TRUE((*leech)->AddTorrent(std::move(add)).ok());
  std::future<absl::Status> leech_result =
      std::async(std::launch::async, [s = leech->get()] { return s->Run(); });

  const bool completed = complete->get_future().wait_for(kTimeout) == std::future_status::ready;
  EXPECT_TRUE(completed) << "download did not complete in time";

  // Scraped from this thread while both sessions run. Gauges are recounted on the shards' ticks,
  // so wait (bounded) for the idle state after the transfer rather than asserting the first scrape.
  std::string leech_text, seed_text;
  const auto deadline = std::chrono::steady_clock::now() + std::chrono::seconds(20);
  for (;;) {
    absl::StatusOr<std::string> l = (*leech)->Metrics();
    absl::StatusOr<std::string> s = (*seeder)->Metrics();
    ASSERT_TRUE(l.ok()) << l.status();
    ASSERT_TRUE(s.ok()) << s.status();
    leech_text = *std::move(l);
    seed_text = *std::move(s);
    const bool settled =
        SampleOr0(leech_text, "torrenty_pieces_verified_total") == pieces &&
        SampleOr0(leech_text, "torrenty_disk_queue_depth") == 0 &&
        SampleOr0(leech_text, "torrenty_torrents{state=\"seeding\"}") == 1 &&
        SampleOr0(leech_text, "torrenty_announces_total{result=\"network_error\"}") >= 1 &&
        SampleOr0(seed_text, "torrenty_payload_sent_bytes_total") >= static_cast<double>(size);
    if (settled || !completed || std::chrono::steady_clock::now() > deadline) break;
    std::this_thread::sleep_for(std::chrono::milliseconds(50));
  }
  (*leech)->RequestStop();
  (*seeder)->RequestStop();
  ASSERT_EQ(leech_result.wait_for(kTimeout), std::future_status::ready);
  ASSERT_EQ(seed_result.wait_for(kTimeout), std::future_status::ready);
  EXPECT_TRUE(leech_result.get().ok());
  EXPECT_TRUE(seed_result.get().ok());

  SCOPED_TRACE(leech_text);
  // Payload is every piece once; one seeder and no endgame duplicates leave little slack.
  const double received = SampleOr0(leech_text, "torrenty_payload_received_bytes_total");
  EXPECT_GE(received, static_cast<double>(size));
  EXPECT_LE(received, static_cast<double>(size) * 1.05);
  EXPECT_EQ(SampleOr0(leech_text, "torrenty_shard_payload_received_bytes_total{shard=\"0\"}") +
                SampleOr0(leech_text, "torrenty_shard_payload_received_bytes_total{shard=\"1\"}"),
            received);
  // Handshake, bitfield and 13-byte piece headers at least; far less than the payload.
  const double protocol_in = SampleOr0(leech_text, "torrenty_protocol_received_bytes_total");
  EXPECT_GE(protocol_in, 68 + 13.0 * (static_cast<double>(size) / (16 << 10)));
  EXPECT_LT(protocol_in, static_cast<double>(size) / 10);
  // Requests: 17 bytes per 16 KiB block.
  EXPECT_GE(SampleOr0(leech_text, "torrenty_protocol_sent_bytes_total"),
            17.0 * (static_cast<double>(size) / (16 << 10)));
  EXPECT_EQ(SampleOr0(leech_text, "torrenty_pieces_verified_total"), pieces);
  EXPECT_EQ(SampleOr0(leech_text, "torrenty_pieces_failed_total"), 0);
  EXPECT_EQ(SampleOr0(leech_text, "torrenty_hash_queue_depth"), 0);
  EXPECT_EQ(SampleOr0(leech_text, "torrenty_disk_queue_depth"), 0);
  // Every piece was written once: one disk operation each.
  EXPECT_GE(SampleOr0(leech_text, "torrenty_disk_latency_seconds_count"), pieces);
  EXPECT_GT(SampleOr0(leech_text, "torrenty_disk_latency_seconds_sum"), 0);
  EXPECT_GT(SampleOr0(leech_text, "torrenty_ring_submissions_total"), 2.0 * pieces);
  EXPECT_GT(SampleOr0(leech_text, "torrenty_ring_completions_total"), 2.0 * pieces);
  EXPECT_EQ(SampleOr0(leech_text, "torrenty_torrents{state=\"seeding\"}"), 1);
  EXPECT_EQ(SampleOr0(leech_text, "torrenty_torrents{state=\"downloading\"}"), 0);
  EXPECT_GE(SampleOr0(leech_text, "torrenty_announces_total{result=\"network_error\"}"), 1);
  EXPECT_EQ(SampleOr0(leech_text, "torrenty_announces_total{result=\"success\"}"), 0);

  // The seeder served the same bytes, read them through its disk queue and verified nothing.
  const double sent = SampleOr0(seed_text, "torrenty_payload_sent_bytes_total");
  EXPECT_GE(sent, static_cast<double>(size)) << seed_text;
  EXPECT_LE(sent, static_cast<double>(size) * 1.05) << seed_text;
  EXPECT_EQ(SampleOr0(seed_text, "torrenty_pieces_verified_total"), 0) << seed_text;
  EXPECT_GT(SampleOr0(seed_text, "torrenty_disk_latency_seconds_count"), 0) << seed_text;
  EXPECT_EQ(SampleOr0(seed_text, "torrenty_torrents{state=\"seeding\"}"), 1) << seed_text;

  for (const std::string* text : {&leech_text, &seed_text}) {
    const PromtoolResult r = CheckWithPromtool(*text);
    ASSERT_NE(r.exit_code, 127) << "promtool is not installed: run tools/setup";
    EXPECT_EQ(r.exit_code, 0) << r.output;
    EXPECT_EQ(r.output, "") << r.output;
  }
}

// A seeder with half the pieces: once the downloader has them, neither side wants anything from
// the other, so the connection stays open and idle on both, and the downloader is downloading.
TEST_F(SessionMetricsTest, PeersAndTorrentsByState) {
  const uint32_t pieces = meta_->num_pieces();
  absl::StatusOr<std::unique_ptr<Session>> seeder = Session::Create(Config());
  ASSERT_TRUE(seeder.ok()) << seeder.status();
  AddTorrentParams seed;
  seed.meta = meta_;
  seed.data_dir = (fs::path(root_.path()) / "seed").string();
  seed.have = engine::Bitfield(pieces);
  for (uint32_t p = 0; p < pieces / 2; ++p) seed.have->Set(p);
  ASSERT_TRUE((*seeder)->AddTorrent(std::move(seed)).ok());
  std::future<absl::Status> seed_result =
      std::async(std::launch::async, [s = seeder->get()] { return s->Run(); });

  absl::StatusOr<std::unique_ptr<Session>> leech = Session::Create(Config());
  ASSERT_TRUE(leech.ok()) << leech.status();
  AddTorrentParams add;
  add.meta = meta_;
  add.data_dir = (fs::path(root_.path()) / "leech").string();
  add.have = engine::Bitfield(pieces);
  add.peers.push_back(engine::PeerAddress{0x7F000001, (*seeder)->port()});
  ASSERT_TRUE((*leech)->AddTorrent(std::move(add)).ok());
  std::future<absl::Status> leech_result =
      std::async(std::launch::async, [s = leech->get()] { return s->Run(); });

  std::string leech_text, seed_text;
  bool settled = false;
  const auto deadline = std::chrono::steady_clock::now() + kTimeout;
  while (!settled && std::chrono::steady_clock::now() < deadline) {
    std::this_thread::sleep_for(std::chrono::milliseconds(50));
    absl::StatusOr<std::string> l = (*leech)->Metrics();
    absl::StatusOr<std::string> s = (*seeder)->Metrics();
    ASSERT_TRUE(l.ok() && s.ok());
    leech_text = *std::move(l);
    seed_text = *std::move(s);
    settled = SampleOr0(leech_text, "torrenty_pieces_verified_total") == pieces / 2 &&
              SampleOr0(leech_text, "torrenty_peers{state=\"idle\"}") == 1 &&
              SampleOr0(seed_text, "torrenty_peers{state=\"idle\"}") == 1;
  }
  (*leech)->RequestStop();
  (*seeder)->RequestStop();
  ASSERT_EQ(leech_result.wait_for(kTimeout), std::future_status::ready);
  ASSERT_EQ(seed_result.wait_for(kTimeout), std::future_status::ready);
  EXPECT_TRUE(leech_result.get().ok());
  EXPECT_TRUE(seed_result.get().ok());

  EXPECT_TRUE(settled) << leech_text << "\n" << seed_text;
  for (const std::string* text : {&leech_text, &seed_text}) {
    EXPECT_EQ(SampleOr0(*text, "torrenty_peers{state=\"connecting\"}"), 0) << *text;
    EXPECT_EQ(SampleOr0(*text, "torrenty_peers{state=\"handshaking\"}"), 0) << *text;
    EXPECT_EQ(SampleOr0(*text, "torrenty_peers{state=\"active\"}"), 0) << *text;
    EXPECT_EQ(SampleOr0(*text, "torrenty_shard_peers{shard=\"0\",state=\"idle\"}") +
                  SampleOr0(*text, "torrenty_shard_peers{shard=\"1\",state=\"idle\"}"),
              1)
        << *text;
    EXPECT_EQ(SampleOr0(*text, "torrenty_torrents{state=\"downloading\"}"), 1) << *text;
    EXPECT_EQ(Sample(*text, "torrenty_torrents_hosted"), 1) << *text;
    EXPECT_EQ(Sample(*text, "torrenty_peers_connected"), 1) << *text;
    EXPECT_EQ(Sample(*text, "torrenty_shards"), 2) << *text;
  }
}

// After Run has returned the coordinator answers no calls: a scrape still works, without waiting
// for it, and keeps the last torrent counts.
TEST_F(SessionMetricsTest, ScrapeOfAStoppedSessionAnswers) {
  absl::StatusOr<std::unique_ptr<Session>> session = Session::Create(Config());
  ASSERT_TRUE(session.ok()) << session.status();
  AddTorrentParams add;
  add.meta = meta_;
  add.data_dir = (fs::path(root_.path()) / "leech").string();
  add.have = engine::Bitfield(meta_->num_pieces());
  add.paused = true;
  ASSERT_TRUE((*session)->AddTorrent(std::move(add)).ok());
  (*session)->RequestStop();
  ASSERT_TRUE((*session)->Run().ok());
  const auto start = std::chrono::steady_clock::now();
  absl::StatusOr<std::string> text = (*session)->Metrics();
  EXPECT_LT(std::chrono::steady_clock::now() - start, std::chrono::seconds(1));
  ASSERT_TRUE(text.ok()) << text.status();
  EXPECT_EQ(Sample(*text, "torrenty_payload_received_bytes_total"), 0);
  EXPECT_EQ(CheckWithPromtool(*text).exit_code, 0);
}

}  // namespace
}  // namespace torrenty::io
