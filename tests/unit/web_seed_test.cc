// engine/webseed: Range mapping (BEP 19 URLs, runs of pieces over files and pad files),
// response checks, backoff, dropping a lying server, the origin-budget choice and the rate cap;
// and engine::Torrent taking web-seed bytes through its budgeted buffers and hash check.
#include "engine/webseed/web_seed.h"

#include <gtest/gtest.h>

#include <algorithm>
#include <map>
#include <set>
#include <string>
#include <vector>

#include "absl/strings/str_cat.h"
#include "engine/torrent/torrent.h"
#include "tests/testing/metainfo_fixtures.h"

namespace torrenty::engine::webseed {
namespace {

using testing::FileSpec;
using testing::MakeMeta;
using testing::TestData;

class FakeHost : public WebSeedHost {
 public:
  FakeHost(const Metainfo& meta, size_t slots)
      : meta_(meta),
        slots_(slots),
        state_(meta.num_pieces(), 0),
        avail_(meta.num_pieces(), 0),
        got_(static_cast<size_t>(meta.total_length)) {}

  bool Fetchable(uint32_t p) const override { return state_[p] == 0; }
  uint32_t Availability(uint32_t p) const override { return avail_[p]; }
  int64_t PeerPayload() const override { return peer_payload; }
  uint32_t Peers() const override { return peers; }
  bool Start(uint32_t p) override {
    if (started_ >= slots_ || state_[p] != 0) return false;
    state_[p] = 1;
    ++started_;
    left_[p] = meta_.PieceSize(p);
    return true;
  }
  void Data(uint32_t p, uint32_t begin, absl::Span<const uint8_t> d) override {
    EXPECT_EQ(state_[p], 1) << "data for piece " << p << " that is not started";
    EXPECT_LE(begin + d.size(), meta_.PieceSize(p));
    std::copy(d.begin(), d.end(), got_.begin() + p * meta_.piece_length + begin);
    left_[p] -= static_cast<int64_t>(d.size());
    if (left_[p] == 0) {
      state_[p] = 2;  // hashing
      --started_;
      completed.push_back(p);
    }
  }
  void Cancel(uint32_t p) override {
    ASSERT_EQ(state_[p], 1);
    state_[p] = 0;
    --started_;
    cancelled.push_back(p);
  }

  const Metainfo& meta_;
  size_t slots_;
  size_t started_ = 0;
  std::vector<int> state_;  // 0 free, 1 fetching, 2 all bytes in
  std::vector<uint32_t> avail_;
  std::map<uint32_t, int64_t> left_;
  std::vector<uint8_t> got_;
  std::vector<uint32_t> completed, cancelled;
  int64_t peer_payload = 0;
  uint32_t peers = 0;
};

// Serves `req` from `data` (the torrent's payload) the way a correct server would.
RangeResponse Serve(const Metainfo& meta, const std::vector<uint8_t>& data, const RangeRequest& req,
                    std::string* cr) {
  // Find the file the URL names: the request's offsets are file offsets.
  size_t file = 0;
  for (size_t i = 0; i < meta.files.size(); ++i) {
    if (FileUrl("http://h/", meta, i) == absl::StrCat("http://h/", req.url.substr(9))) file = i;
  }
  const int64_t base = meta.files[file].offset;
  *cr = absl::StrCat("bytes ", req.first, "-", req.last, "/", meta.files[file].length);
  RangeResponse r;
  r.status = 206;
  r.content_range = *cr;
  r.body = absl::MakeConstSpan(data).subspan(static_cast<size_t>(base + req.first),
                                             static_cast<size_t>(req.last - req.first + 1));
  return r;
}

TEST(WebSeedUrlTest, Bep19Urls) {
  Metainfo single;
  single.name = "a b.iso";
  single.files.push_back(FileEntry{});
  EXPECT_EQ(FileUrl("http://h/x/file.iso", single, 0), "http://h/x/file.iso");
  EXPECT_EQ(FileUrl("http://h/x/", single, 0), "http://h/x/a%20b.iso");
  Metainfo multi;
  multi.name = "dir";
  multi.multi_file = true;
  FileEntry f;
  f.path = {"sub dir", "f#1?.txt"};
  multi.files.push_back(f);
  EXPECT_EQ(FileUrl("http://h/m", multi, 0), "http://h/m/dir/sub%20dir/f%231%3F.txt");
  EXPECT_EQ(FileUrl("http://h/m/", multi, 0), "http://h/m/dir/sub%20dir/f%231%3F.txt");
  EXPECT_EQ(PercentEncode("é/~"), "%C3%A9%2F~");
}

TEST(WebSeedParseTest, ContentRangeAndRetryAfter) {
  auto cr = ParseContentRange("bytes 10-19/100");
  ASSERT_TRUE(cr.has_value());
  EXPECT_EQ(cr->first, 10);
  EXPECT_EQ(cr->last, 19);
  EXPECT_EQ(cr->total, 100);
  EXPECT_EQ(ParseContentRange("bytes 0-0/*")->total, -1);
  EXPECT_FALSE(ParseContentRange("bytes 20-10/100").has_value());
  EXPECT_FALSE(ParseContentRange("bytes 0-100/100").has_value());
  EXPECT_FALSE(ParseContentRange("bytes -1-5/9").has_value());
  EXPECT_FALSE(ParseContentRange("items 0-1/9").has_value());
  EXPECT_FALSE(ParseContentRange("bytes 0-99999999999999999999/*").has_value());
  EXPECT_FALSE(ParseContentRange("").has_value());
  EXPECT_EQ(ParseRetryAfter(" 7 "), 7);
  EXPECT_FALSE(ParseRetryAfter("Wed, 21 Oct 2015 07:28:00 GMT").has_value());
}

TEST(WebSeedTest, SingleFileRunIsOneRangeRequest) {
  const std::vector<uint8_t> data = TestData(10 * 1000 + 123);
  const Metainfo meta = MakeMeta("f.bin", {{{}, 10'123}}, 1000, false, data);
  FakeHost host(meta, 100);
  WebSeedConfig cfg;
  cfg.connections_per_seed = 1;
  cfg.request_bytes_max = 4000;
  cfg.seed = 0;
  WebSeeds ws(meta, {"http://h/dir/"}, cfg);
  std::vector<RangeRequest> out;
  ws.Poll(Instant{0}, host, &out);
  ASSERT_EQ(out.size(), 1u);
  const uint32_t first = static_cast<uint32_t>(out[0].first / 1000);
  EXPECT_EQ(out[0].url, "http://h/dir/f.bin");
  EXPECT_EQ(out[0].first % 1000, 0);
  // Four pieces in one request (or fewer at the end of the file).
  EXPECT_EQ(out[0].last, std::min<int64_t>(out[0].first + 4000, 10'123) - 1);
  std::string cr;
  ws.HandleResponse(out[0].id, Serve(meta, data, out[0], &cr), Instant{1}, host);
  ASSERT_FALSE(host.completed.empty());
  EXPECT_EQ(host.completed[0], first);
  // Fetch everything; each byte lands where it belongs.
  for (int round = 0; round < 20; ++round) {
    out.clear();
    ws.Poll(Instant{2 + round}, host, &out);
    for (const RangeRequest& r : out) {
      ws.HandleResponse(r.id, Serve(meta, data, r, &cr), Instant{2 + round}, host);
    }
  }
  EXPECT_EQ(host.completed.size(), meta.num_pieces());
  EXPECT_EQ(host.got_, data);
}

TEST(WebSeedTest, PieceSpanningFilesIsSplitPerFileAndPadIsNotRequested) {
  // Files of 1500, 500 (pad), 700 and 300 bytes with 1000-byte pieces: piece 0 is in file 0,
  // piece 1 spans the end of file 0 and the pad file, piece 2 spans files 2 and 3.
  std::vector<uint8_t> data = TestData(3000);
  std::fill(data.begin() + 1500, data.begin() + 2000, 0);
  Metainfo meta =
      MakeMeta("root", {{{"a"}, 1500}, {{".pad", "0"}, 500}, {{"b c"}, 700}, {{"d"}, 300}}, 1000,
               true, data);
  meta.files[1].pad = true;
  FakeHost host(meta, 100);
  WebSeedConfig cfg;
  cfg.connections_per_seed = 1;
  cfg.request_bytes_max = 1000;  // one piece per run
  cfg.seed = 0;
  WebSeeds ws(meta, {"http://h/"}, cfg);
  std::map<uint32_t, std::vector<std::string>> urls_by_piece;
  std::string cr;
  for (int round = 0; round < 10; ++round) {
    std::vector<RangeRequest> out;
    ws.Poll(Instant{round}, host, &out);
    for (const RangeRequest& r : out) {
      urls_by_piece[static_cast<uint32_t>(host.completed.size())].push_back(
          absl::StrCat(r.url, " ", r.first, "-", r.last));
    }
    for (const RangeRequest& r : out) {
      ws.HandleResponse(r.id, Serve(meta, data, r, &cr), Instant{round}, host);
    }
  }
  ASSERT_EQ(host.completed.size(), 3u);
  EXPECT_EQ(host.got_, data);
  std::vector<std::string> all;
  for (auto& [k, v] : urls_by_piece) all.insert(all.end(), v.begin(), v.end());
  std::sort(all.begin(), all.end());
  EXPECT_EQ(all, (std::vector<std::string>{"http://h/root/a 0-999", "http://h/root/a 1000-1499",
                                           "http://h/root/b%20c 0-699", "http://h/root/d 0-299"}));
}

TEST(WebSeedTest, BadResponsesBackOffAndCancelTheRun) {
  const std::vector<uint8_t> data = TestData(8000);
  const Metainfo meta = MakeMeta("f", {{{}, 8000}}, 1000, false, data);
  FakeHost host(meta, 100);
  WebSeedConfig cfg;
  cfg.connections_per_seed = 1;
  cfg.request_bytes_max = 1000;
  cfg.backoff_base_ms = 1000;
  WebSeeds ws(meta, {"http://h/f"}, cfg);
  std::vector<RangeRequest> out;
  std::string cr;

  // Short body.
  ws.Poll(Instant{0}, host, &out);
  ASSERT_EQ(out.size(), 1u);
  RangeResponse r = Serve(meta, data, out[0], &cr);
  r.body = r.body.first(r.body.size() - 1);
  ws.HandleResponse(out[0].id, r, Instant{0}, host);
  EXPECT_EQ(host.completed.size(), 0u);
  EXPECT_FALSE(host.cancelled.empty());
  EXPECT_EQ(ws.retry_at(0).ms, 1000);
  out.clear();
  ws.Poll(Instant{999}, host, &out);
  EXPECT_TRUE(out.empty()) << "asked again during backoff";

  // Content-Range for other bytes: the backoff doubles.
  ws.Poll(Instant{1000}, host, &out);
  ASSERT_EQ(out.size(), 1u);
  r = Serve(meta, data, out[0], &cr);
  const std::string wrong = "bytes 1-1000/8000";
  r.content_range = wrong;
  ws.HandleResponse(out[0].id, r, Instant{1000}, host);
  EXPECT_EQ(ws.retry_at(0).ms, 3000);
  EXPECT_EQ(host.completed.size(), 0u);

  // 200 for a partial request: the server ignores Range.
  out.clear();
  ws.Poll(Instant{3000}, host, &out);
  ASSERT_EQ(out.size(), 1u);
  r = Serve(meta, data, out[0], &cr);
  r.status = 200;
  if (out[0].first != 0) {
    ws.HandleResponse(out[0].id, r, Instant{3000}, host);
    EXPECT_EQ(ws.retry_at(0).ms, 3000 + 4000);
  } else {
    ws.HandleResponse(out[0].id, r, Instant{3000}, host);  // whole-file prefix: fine
    EXPECT_EQ(host.completed.size(), 1u);
  }

  // 503 with Retry-After: 30 s, whatever the doubling says.
  out.clear();
  ws.Poll(Instant{100'000}, host, &out);
  ASSERT_EQ(out.size(), 1u);
  RangeResponse busy;
  busy.status = 503;
  busy.retry_after = "30";
  ws.HandleResponse(out[0].id, busy, Instant{100'000}, host);
  EXPECT_EQ(ws.retry_at(0).ms, 130'000);
  // Transport errors back off too; a good response resets the count.
  out.clear();
  ws.Poll(Instant{130'000}, host, &out);
  ASSERT_EQ(out.size(), 1u);
  RangeResponse down;
  down.error = "connection refused";
  ws.HandleResponse(out[0].id, down, Instant{130'000}, host);
  EXPECT_GT(ws.retry_at(0).ms, 130'000);
  out.clear();
  ws.Poll(ws.retry_at(0), host, &out);
  ASSERT_EQ(out.size(), 1u);
  const size_t before = host.completed.size();
  ws.HandleResponse(out[0].id, Serve(meta, data, out[0], &cr), ws.retry_at(0), host);
  EXPECT_GT(host.completed.size(), before);
  // Every cancelled piece is free again, none is stuck in "fetching".
  for (uint32_t p = 0; p < meta.num_pieces(); ++p) EXPECT_NE(host.state_[p], 1) << p;
  EXPECT_FALSE(ws.dropped(0));
}

TEST(WebSeedTest, ServerDroppedAfterBadPiecesOthersKeepGoing) {
  const std::vector<uint8_t> data = TestData(20'000);
  const Metainfo meta = MakeMeta("f", {{{}, 20'000}}, 1000, false, data);
  FakeHost host(meta, 100);
  WebSeedConfig cfg;
  cfg.connections_per_seed = 2;
  cfg.request_bytes_max = 1000;
  cfg.bad_pieces_max = 3;
  WebSeeds ws(meta, {"http://liar/f", "http://good/f"}, cfg);
  std::string cr;
  int liar_pieces = 0;
  for (int round = 0; round < 40 && host.completed.size() < meta.num_pieces(); ++round) {
    std::vector<RangeRequest> out;
    ws.Poll(Instant{round}, host, &out);
    for (const RangeRequest& r : out) {
      const size_t before = host.completed.size();
      ws.HandleResponse(r.id, Serve(meta, data, r, &cr), Instant{round}, host);
      if (host.completed.size() == before) continue;  // a dropped server's late answer
      const uint32_t piece = static_cast<uint32_t>(r.first / 1000);
      // The engine hashes each completed piece: the liar's fail.
      if (r.seed == 0) ++liar_pieces;
      if (r.seed == 0) host.state_[piece] = 0;  // a failed piece is free again
      ws.HandlePieceHashed(piece, r.seed != 0, Instant{round}, host);
    }
  }
  EXPECT_TRUE(ws.dropped(0));
  EXPECT_EQ(ws.bad_pieces(0), 3u);
  EXPECT_EQ(liar_pieces, 3) << "the liar's bytes were used after its third bad piece";
  EXPECT_FALSE(ws.dropped(1));
  EXPECT_TRUE(ws.active());
  std::vector<std::string> logs;
  ws.TakeLogs(&logs);
  EXPECT_TRUE(std::any_of(logs.begin(), logs.end(), [](const std::string& l) {
    return l.find("http://liar/f dropped") != std::string::npos;
  }));
}

TEST(WebSeedTest, OriginBudgetLeavesPiecesPeersHaveToPeers) {
  const std::vector<uint8_t> data = TestData(10'000);
  const Metainfo meta = MakeMeta("f", {{{}, 10'000}}, 1000, false, data);
  FakeHost host(meta, 100);
  // Peers have every piece but 3 and 7.
  for (uint32_t p = 0; p < 10; ++p) host.avail_[p] = (p == 3 || p == 7) ? 0 : 2;
  WebSeedConfig cfg;
  cfg.request_bytes_max = 1000;
  cfg.peer_stall_ms = 3000;
  WebSeeds ws(meta, {"http://h/f"}, cfg);
  host.peer_payload = 100;  // peers are delivering
  std::vector<RangeRequest> out;
  ws.Poll(Instant{0}, host, &out);
  std::vector<int64_t> firsts;
  for (const RangeRequest& r : out) firsts.push_back(r.first);
  std::sort(firsts.begin(), firsts.end());
  EXPECT_EQ(firsts, (std::vector<int64_t>{3000, 7000}));
  // Peers keep delivering: still nothing else.
  out.clear();
  host.peer_payload = 200;
  ws.Poll(Instant{2000}, host, &out);
  EXPECT_TRUE(out.empty());
  // Peers went quiet for peer_stall_ms: the origin fills in.
  ws.Poll(Instant{5000}, host, &out);
  EXPECT_FALSE(out.empty());
}

// With peers connected (a fleet host), the origin is asked for swarm_requests pieces at a time,
// one piece per request, whatever the run size and connection limits; alone, for whole runs.
TEST(WebSeedTest, InASwarmFewOnePieceRequests) {
  const std::vector<uint8_t> data = TestData(64'000);
  const Metainfo meta = MakeMeta("f", {{{}, 64'000}}, 1000, false, data);
  FakeHost host(meta, 100);
  host.peers = 3;
  WebSeedConfig cfg;  // 4 connections, 4 MiB runs
  WebSeeds ws(meta, {"http://h/f", "http://mirror/f"}, cfg);
  std::vector<RangeRequest> out;
  ws.Poll(Instant{0}, host, &out);
  ASSERT_EQ(out.size(), cfg.swarm_requests);
  for (const RangeRequest& r : out) EXPECT_EQ(r.last - r.first + 1, 1000);
  ws.Poll(Instant{1}, host, &out);  // nothing more while those are in flight
  EXPECT_EQ(out.size(), cfg.swarm_requests);
  std::string cr;
  ws.HandleResponse(out[0].id, Serve(meta, data, out[0], &cr), Instant{2}, host);
  out.clear();
  ws.Poll(Instant{3}, host, &out);
  EXPECT_EQ(out.size(), 1u);  // one came back, one more goes out
  // Alone again: whole runs on every connection.
  host.peers = 0;
  out.clear();
  ws.Poll(Instant{4}, host, &out);
  ASSERT_FALSE(out.empty());
  EXPECT_GT(out.back().last - out.back().first + 1, 1000);
}

// Just started, before any peer is known, a host with a grace period asks as in a swarm.
TEST(WebSeedTest, JustStartedCountsAsInASwarm) {
  const std::vector<uint8_t> data = TestData(64'000);
  const Metainfo meta = MakeMeta("f", {{{}, 64'000}}, 1000, false, data);
  FakeHost host(meta, 100);
  WebSeedConfig cfg;
  cfg.swarm_grace_ms = 3000;
  WebSeeds ws(meta, {"http://h/f"}, cfg);
  std::vector<RangeRequest> out;
  ws.Poll(Instant{100}, host, &out);
  ASSERT_EQ(out.size(), cfg.swarm_requests);
  for (const RangeRequest& r : out) EXPECT_EQ(r.last - r.first + 1, 1000);
  out.clear();
  ws.Poll(Instant{3200}, host, &out);  // still alone after the grace: whole runs
  ASSERT_FALSE(out.empty());
  EXPECT_GT(out.back().last - out.back().first + 1, 1000);
}

TEST(WebSeedTest, HostsStartAtDifferentPieces) {
  const std::vector<uint8_t> data = TestData(64'000);
  const Metainfo meta = MakeMeta("f", {{{}, 64'000}}, 1000, false, data);
  std::set<int64_t> firsts;
  for (uint64_t seed = 1; seed <= 8; ++seed) {
    FakeHost host(meta, 100);
    WebSeedConfig cfg;
    cfg.connections_per_seed = 1;
    cfg.seed = seed;
    WebSeeds ws(meta, {"http://h/f"}, cfg);
    std::vector<RangeRequest> out;
    ws.Poll(Instant{0}, host, &out);
    ASSERT_EQ(out.size(), 1u);
    firsts.insert(out[0].first);
  }
  EXPECT_GE(firsts.size(), 6u);
}

TEST(WebSeedTest, RateCapAndMemory) {
  const std::vector<uint8_t> data = TestData(100'000);
  const Metainfo meta = MakeMeta("f", {{{}, 100'000}}, 1000, false, data);
  // Memory for two pieces: never more than two started.
  {
    FakeHost host(meta, 2);
    WebSeeds ws(meta, {"http://h/f"}, WebSeedConfig{});
    std::vector<RangeRequest> out;
    ws.Poll(Instant{0}, host, &out);
    int64_t bytes = 0;
    for (const RangeRequest& r : out) bytes += r.last - r.first + 1;
    EXPECT_EQ(bytes, 2000);
  }
  // 5000 bytes/s: about 5000 bytes a second are asked for.
  FakeHost host(meta, 1000);
  WebSeedConfig cfg;
  cfg.max_rate = 5000;
  WebSeeds ws(meta, {"http://h/f"}, cfg);
  std::string cr;
  int64_t asked = 0;
  for (int t = 0; t <= 10'000; t += 100) {
    std::vector<RangeRequest> out;
    ws.Poll(Instant{t}, host, &out);
    for (const RangeRequest& r : out) {
      asked += r.last - r.first + 1;
      ws.HandleResponse(r.id, Serve(meta, data, r, &cr), Instant{t}, host);
    }
  }
  EXPECT_GE(asked, 45'000);
  EXPECT_LE(asked, 60'000);
}

// engine::Torrent: web-seed bytes take a budgeted buffer, are hashed like peer blocks, and a
// bad piece is reported and free again.
TEST(WebSeedTorrentTest, BytesGoThroughBudgetAndHash) {
  const std::vector<uint8_t> data = TestData(4 * 32768);
  const Metainfo meta = MakeMeta("f", {{{}, 4 * 32768}}, 32768, false, data);
  LocalPieceMemory memory(2 * 32768);
  TorrentConfig cfg;
  cfg.piece_memory = &memory;
  Torrent t(meta, cfg);
  ASSERT_TRUE(t.StartWebSeedPiece(0));
  ASSERT_TRUE(t.StartWebSeedPiece(1));
  EXPECT_FALSE(t.StartWebSeedPiece(2)) << "past the piece-memory budget";
  EXPECT_FALSE(t.WebSeedFetchable(0));
  t.HandleWebSeedData(0, 0, absl::MakeConstSpan(data).subspan(0, 32768));
  std::vector<uint8_t> bad(data.begin() + 32768, data.begin() + 65536);
  bad[5] ^= 1;
  t.HandleWebSeedData(1, 0, bad);
  std::vector<Action> actions;
  t.TakeActions(&actions);
  std::vector<PieceBuffer> buffers(2);
  int hashes = 0;
  for (Action& a : actions) {
    if (a.type == Action::Type::kHashPiece) {
      buffers[a.piece] = std::move(a.buffer);
      ++hashes;
    }
  }
  ASSERT_EQ(hashes, 2);
  EXPECT_EQ(t.stats().web_seed_payload, 65536);
  t.HandleHashResult(0, true, std::move(buffers[0]), Instant{0});
  t.HandleHashResult(1, false, std::move(buffers[1]), Instant{0});
  actions.clear();
  t.TakeActions(&actions);
  bool write0 = false, reported_ok0 = false, reported_bad1 = false;
  PieceBuffer written;
  for (Action& a : actions) {
    if (a.type == Action::Type::kWritePiece && a.piece == 0) {
      write0 = true;
      written = std::move(a.buffer);
    }
    if (a.type == Action::Type::kWebPieceHashed && a.piece == 0 && a.length == 1) {
      reported_ok0 = true;
    }
    if (a.type == Action::Type::kWebPieceHashed && a.piece == 1 && a.length == 0) {
      reported_bad1 = true;
    }
  }
  EXPECT_TRUE(write0);
  EXPECT_TRUE(reported_ok0);
  EXPECT_TRUE(reported_bad1);
  EXPECT_TRUE(t.WebSeedFetchable(1)) << "a failed web piece is free again";
  EXPECT_TRUE(t.StartWebSeedPiece(2)) << "the failed piece's buffer is free again";
  t.HandlePieceWritten(0, absl::OkStatus(), std::move(written), Instant{0});
  EXPECT_TRUE(t.have().Get(0));
  // Bytes out of bounds or for a piece not started are refused.
  t.HandleWebSeedData(3, 0, absl::MakeConstSpan(data).subspan(0, 10));
  t.HandleWebSeedData(2, 32760, absl::MakeConstSpan(data).subspan(0, 10));
  EXPECT_EQ(t.stats().web_seed_payload, 65536);
  t.CancelWebSeedPiece(2);
  EXPECT_TRUE(t.WebSeedFetchable(2));
}

}  // namespace
}  // namespace torrenty::engine::webseed
