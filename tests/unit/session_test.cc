// End-to-end tests of io::TorrentSession in one process: a sharded seeder and a sharded
// downloader on 127.0.0.1, each Run() on its own thread, so every thread of the session (shards,
// hash pool, resume writer) runs. CI also runs this under ThreadSanitizer.
#include <stdlib.h>

#include <chrono>
#include <filesystem>
#include <fstream>
#include <future>
#include <iterator>
#include <mutex>
#include <random>
#include <string>
#include <thread>
#include <vector>

#include "engine/metainfo/file_map.h"
#include "engine/metainfo/metainfo.h"
#include "gtest/gtest.h"
#include "io/disk/torrent_creator.h"
#include "io/session/receive_buffer_budget.h"
#include "io/session/shard_internal.h"
#include "io/session/torrent_session.h"

namespace torrenty::io {
namespace {

namespace fs = std::filesystem;

// A Release run takes under 2 s; ThreadSanitizer on two busy cores takes about 10x that.
constexpr auto kTimeout = std::chrono::seconds(60);

std::string ReadFile(const fs::path& path) {
  std::ifstream in(path, std::ios::binary);
  return std::string(std::istreambuf_iterator<char>(in), std::istreambuf_iterator<char>());
}

void WriteRandomFile(const fs::path& path, size_t size, uint32_t seed) {
  std::mt19937 gen(seed);
  std::string data(size, '\0');
  for (char& c : data) c = static_cast<char>(gen());
  std::ofstream out(path, std::ios::binary);
  out.write(data.data(), static_cast<std::streamsize>(data.size()));
}

class SessionTest : public ::testing::Test {
 protected:
  void SetUp() override {
    std::string templ = (fs::temp_directory_path() / "torrenty-session-test.XXXXXX").string();
    ASSERT_NE(mkdtemp(templ.data()), nullptr);
    root_ = templ;
    seed_dir_ = root_ / "seed";
    leech_dir_ = root_ / "leech";
    fs::create_directories(seed_dir_ / "payload" / "sub");
    fs::create_directories(leech_dir_);
    // A few MiB over three files whose boundaries fall inside pieces.
    WriteRandomFile(seed_dir_ / "payload" / "a.bin", (3 << 20) + 12345, 1);
    WriteRandomFile(seed_dir_ / "payload" / "sub" / "b.bin", (1 << 20) + 777, 2);
    WriteRandomFile(seed_dir_ / "payload" / "c.bin", 100, 3);
    CreateOptions copts;
    copts.piece_length = 64 << 10;
    absl::StatusOr<std::string> torrent = CreateTorrent((seed_dir_ / "payload").string(), copts);
    ASSERT_TRUE(torrent.ok()) << torrent.status();
    absl::StatusOr<engine::Metainfo> meta = engine::ParseMetainfo(*torrent);
    ASSERT_TRUE(meta.ok()) << meta.status();
    meta_ = *std::move(meta);
  }

  void TearDown() override {
    std::error_code ec;
    fs::remove_all(root_, ec);
  }

  SessionOptions Options(const fs::path& dir) {
    SessionOptions o;
    o.data_dir = dir.string();
    o.port = 0;  // explicit 0: an ephemeral port, never 6881-6889
    o.port_explicit = true;
    o.threads = 2;
    o.hash_threads = 2;
    return o;
  }

  // Runs a download until it ends by itself, or stops it (and fails the test) after kTimeout.
  static absl::Status RunToEnd(TorrentSession& leech) {
    std::future<absl::Status> result =
        std::async(std::launch::async, [&leech] { return leech.Run(); });
    if (result.wait_for(kTimeout) != std::future_status::ready) {
      ADD_FAILURE() << "download did not finish in time";
      leech.RequestStop();
    }
    return result.get();
  }

  fs::path root_, seed_dir_, leech_dir_;
  engine::Metainfo meta_;
};

TEST_F(SessionTest, ShardedDownloadFromShardedSeeder) {
  engine::Bitfield all(meta_.num_pieces());
  all.SetAll();
  SessionOptions seed_opts = Options(seed_dir_);
  seed_opts.seed_after_complete = true;
  absl::StatusOr<std::unique_ptr<TorrentSession>> seeder =
      TorrentSession::Create(meta_, all, seed_opts);
  ASSERT_TRUE(seeder.ok()) << seeder.status();
  ASSERT_EQ((*seeder)->threads(), 2);
  const uint16_t seed_port = (*seeder)->port();
  ASSERT_NE(seed_port, 0);
  std::future<absl::Status> seed_result =
      std::async(std::launch::async, [s = seeder->get()] { return s->Run(); });

  SessionOptions leech_opts = Options(leech_dir_);
  leech_opts.peers.push_back(engine::PeerAddress{0x7F000001, seed_port});
  std::vector<std::string> leech_log;  // only touched by the downloader's coordinator thread
  leech_opts.on_log = [&leech_log](const std::string& line) { leech_log.push_back(line); };
  absl::StatusOr<std::unique_ptr<TorrentSession>> leech =
      TorrentSession::Create(meta_, engine::Bitfield(meta_.num_pieces()), leech_opts);
  ASSERT_TRUE(leech.ok()) << leech.status();
  const absl::Status leech_status = RunToEnd(**leech);
  (*seeder)->RequestStop();
  ASSERT_EQ(seed_result.wait_for(kTimeout), std::future_status::ready) << "seeder did not stop";
  EXPECT_TRUE(seed_result.get().ok());
  ASSERT_TRUE(leech_status.ok()) << leech_status;
  leech->reset();
  seeder->reset();

  for (const char* rel : {"a.bin", "sub/b.bin", "c.bin"}) {
    const std::string want = ReadFile(seed_dir_ / "payload" / rel);
    const std::string got = ReadFile(leech_dir_ / "payload" / rel);
    EXPECT_EQ(got.size(), want.size()) << rel;
    EXPECT_TRUE(got == want) << rel << " differs";
  }
  for (const std::string& line : leech_log) {
    EXPECT_EQ(line.find("failed its hash check"), std::string::npos) << line;
  }
}

// File selection through the whole session: only the pieces of the wanted file (and the pieces it
// shares) are fetched, and the download ends once they are on disk.
TEST_F(SessionTest, DownloadOfOneFileStopsWhenItIsDone) {
  engine::Bitfield all(meta_.num_pieces());
  all.SetAll();
  SessionOptions seed_opts = Options(seed_dir_);
  seed_opts.seed_after_complete = true;
  absl::StatusOr<std::unique_ptr<TorrentSession>> seeder =
      TorrentSession::Create(meta_, all, seed_opts);
  ASSERT_TRUE(seeder.ok()) << seeder.status();
  const uint16_t seed_port = (*seeder)->port();
  std::future<absl::Status> seed_result =
      std::async(std::launch::async, [s = seeder->get()] { return s->Run(); });

  size_t a = meta_.files.size();
  for (size_t i = 0; i < meta_.files.size(); ++i) {
    if (meta_.files[i].path == std::vector<std::string>{"a.bin"}) a = i;
  }
  ASSERT_LT(a, meta_.files.size());
  SessionOptions leech_opts = Options(leech_dir_);
  leech_opts.peers.push_back(engine::PeerAddress{0x7F000001, seed_port});
  leech_opts.files_wanted.assign(meta_.files.size(), false);
  leech_opts.files_wanted[a] = true;
  std::mutex mu;
  SessionProgress last;
  leech_opts.on_progress = [&](const SessionProgress& p) {
    std::lock_guard<std::mutex> lock(mu);
    last = p;
  };
  absl::StatusOr<std::unique_ptr<TorrentSession>> leech =
      TorrentSession::Create(meta_, engine::Bitfield(meta_.num_pieces()), leech_opts);
  ASSERT_TRUE(leech.ok()) << leech.status();
  const absl::Status leech_status = RunToEnd(**leech);
  (*seeder)->RequestStop();
  ASSERT_EQ(seed_result.wait_for(kTimeout), std::future_status::ready) << "seeder did not stop";
  ASSERT_TRUE(leech_status.ok()) << leech_status;
  leech->reset();
  seeder->reset();

  EXPECT_TRUE(ReadFile(leech_dir_ / "payload" / "a.bin") ==
              ReadFile(seed_dir_ / "payload" / "a.bin"));
  const int64_t wanted_bytes =
      engine::PieceBytes(meta_, engine::WantedPieces(meta_, leech_opts.files_wanted));
  std::lock_guard<std::mutex> lock(mu);
  EXPECT_TRUE(last.complete);
  EXPECT_EQ(last.verified_bytes, wanted_bytes);
  EXPECT_LT(last.pieces_have, meta_.num_pieces());
}

// Piece buffers and the receive buffers of busy peers share --piece-memory: with three seeders
// all sending at once the downloader's buffers together stay within the budget. (Unbounded, the
// three receive buffers alone grow to 3 x 256 KiB, three times the budget's share for them.)
TEST_F(SessionTest, ManySeedersStayWithinThePieceMemory) {
  engine::Bitfield all(meta_.num_pieces());
  all.SetAll();
  std::vector<std::unique_ptr<TorrentSession>> seeders;
  std::vector<std::future<absl::Status>> seed_results;
  SessionOptions leech_opts = Options(leech_dir_);
  for (int i = 0; i < 3; ++i) {
    SessionOptions seed_opts = Options(seed_dir_);
    seed_opts.threads = 1;
    seed_opts.hash_threads = 1;
    seed_opts.seed_after_complete = true;
    absl::StatusOr<std::unique_ptr<TorrentSession>> seeder =
        TorrentSession::Create(meta_, all, seed_opts);
    ASSERT_TRUE(seeder.ok()) << seeder.status();
    leech_opts.peers.push_back(engine::PeerAddress{0x7F000001, (*seeder)->port()});
    seeders.push_back(*std::move(seeder));
    seed_results.push_back(
        std::async(std::launch::async, [s = seeders.back().get()] { return s->Run(); }));
  }
  constexpr int64_t kBudget = 1 << 20;
  leech_opts.piece_memory_bytes = kBudget;
  absl::StatusOr<std::unique_ptr<TorrentSession>> leech =
      TorrentSession::Create(meta_, engine::Bitfield(meta_.num_pieces()), leech_opts);
  ASSERT_TRUE(leech.ok()) << leech.status();
  const absl::Status leech_status = RunToEnd(**leech);
  for (size_t i = 0; i < seeders.size(); ++i) {
    seeders[i]->RequestStop();
    ASSERT_EQ(seed_results[i].wait_for(kTimeout), std::future_status::ready);
    EXPECT_TRUE(seed_results[i].get().ok());
  }
  ASSERT_TRUE(leech_status.ok()) << leech_status;
  const Session::MemoryPeaks peaks = (*leech)->memory_peaks();
  EXPECT_EQ(peaks.budget, kBudget);
  EXPECT_GT(peaks.pieces, 0);
  EXPECT_GT(peaks.receive_buffers, 0);
  // Growth stays within the share; a connection's first buffer is granted even beyond it (a
  // peer cannot be served without one), so a connection that opens after the others grew may
  // take the receive buffers over the share by one first buffer each: that is the bound (seen
  // under ThreadSanitizer, where the third seeder's connection can come late).
  const int64_t share = ReceiveBufferBudget::ShareOf(kBudget);
  const int64_t first_buffers = 3 * static_cast<int64_t>(kRecvBufferInitial);
  EXPECT_LE(peaks.pieces, kBudget - share);
  EXPECT_LE(peaks.receive_buffers, share + first_buffers);
  EXPECT_LE(peaks.pieces + peaks.receive_buffers, kBudget + first_buffers)
      << "pieces " << peaks.pieces << " + receive buffers " << peaks.receive_buffers;
  leech->reset();
  EXPECT_TRUE(ReadFile(leech_dir_ / "payload" / "a.bin") ==
              ReadFile(seed_dir_ / "payload" / "a.bin"));
}

TEST_F(SessionTest, RequestStopCancelsAnUnfinishedDownload) {
  // No peers and no trackers: the download cannot progress until it is asked to stop.
  SessionOptions opts = Options(leech_dir_);
  // The first progress report comes from the running event loop: stop a session that runs.
  std::promise<void> running;
  std::once_flag once;
  opts.on_progress = [&](const SessionProgress&) {
    std::call_once(once, [&] { running.set_value(); });
  };
  absl::StatusOr<std::unique_ptr<TorrentSession>> leech =
      TorrentSession::Create(meta_, engine::Bitfield(meta_.num_pieces()), opts);
  ASSERT_TRUE(leech.ok()) << leech.status();
  std::future<absl::Status> result =
      std::async(std::launch::async, [s = leech->get()] { return s->Run(); });
  ASSERT_EQ(running.get_future().wait_for(kTimeout), std::future_status::ready)
      << "the session never reported progress";
  (*leech)->RequestStop();
  (*leech)->RequestStop();  // idempotent
  ASSERT_EQ(result.wait_for(kTimeout), std::future_status::ready);
  const absl::Status st = result.get();
  EXPECT_TRUE(absl::IsCancelled(st)) << st;
}

TEST_F(SessionTest, RequestStopBeforeRunIsHonoured) {
  engine::Bitfield all(meta_.num_pieces());
  all.SetAll();
  SessionOptions opts = Options(seed_dir_);
  opts.seed_after_complete = true;
  absl::StatusOr<std::unique_ptr<TorrentSession>> seeder = TorrentSession::Create(meta_, all, opts);
  ASSERT_TRUE(seeder.ok()) << seeder.status();
  (*seeder)->RequestStop();
  std::future<absl::Status> result =
      std::async(std::launch::async, [s = seeder->get()] { return s->Run(); });
  ASSERT_EQ(result.wait_for(kTimeout), std::future_status::ready);
  EXPECT_TRUE(result.get().ok());
}

}  // namespace
}  // namespace torrenty::io
