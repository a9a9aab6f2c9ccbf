// The hot piece path without sockets: `piece` messages in through Torrent::HandleBytes, one copy
// into the piece buffer, SHA-1 of each block as it arrives (or of the whole piece on the hash
// pool when the engine could not), write through io_uring into a real file. Reports verified
// pieces per second next to raw SHA-1 at the same piece sizes (BM_RawSha1Hot, BM_RawSha1Cold): the
// ratio is how close the pipeline runs to the machine's hashing limit.
#include <benchmark/benchmark.h>
#include <poll.h>
#include <stdlib.h>
#include <unistd.h>

#include <algorithm>
#include <cstring>
#include <filesystem>
#include <string>
#include <vector>

#include "engine/base/sha1.h"
#include "engine/codec/wire.h"
#include "engine/torrent/piece_memory.h"
#include "engine/torrent/torrent.h"
#include "io/disk/disk_io.h"
#include "io/disk/file_store.h"
#include "io/disk/hash_pool.h"
#include "io/ring/ring.h"
#include "io/session/shared_piece_memory.h"

namespace torrenty {
namespace {

using engine::Action;

struct Fixture {
  engine::Metainfo meta;
  std::vector<uint8_t> payload;
  std::string dir;

  Fixture(int64_t piece_length, int64_t total) {
    meta.name = "payload.bin";
    meta.piece_length = piece_length;
    meta.total_length = total;
    meta.files.push_back(engine::FileEntry{{}, total, 0});
    payload.resize(static_cast<size_t>(total));
    uint64_t x = 88172645463325252ull;
    for (size_t i = 0; i < payload.size(); i += 8) {
      x ^= x << 13, x ^= x >> 7, x ^= x << 17;
      std::memcpy(&payload[i], &x, std::min<size_t>(8, payload.size() - i));
    }
    for (int64_t off = 0; off < total; off += piece_length) {
      meta.piece_hashes.push_back(engine::Sha1(absl::MakeConstSpan(payload).subspan(
          static_cast<size_t>(off), static_cast<size_t>(std::min(piece_length, total - off)))));
    }
    char templ[] = "/tmp/torrenty-piecepath-XXXXXX";
    dir = mkdtemp(templ);
  }
  ~Fixture() { std::filesystem::remove_all(dir); }
};

// Answers every `request` in `out` with the matching `piece` message, appended to `stream`.
void Answer(const Fixture& f, absl::Span<const uint8_t> out, std::vector<uint8_t>* stream) {
  size_t pos = 0;
  while (pos < out.size()) {
    engine::wire::Message m;
    absl::StatusOr<size_t> n = engine::wire::ParseMessage(out.subspan(pos), 1 << 20, &m);
    if (!n.ok() || *n == 0) break;
    pos += *n;
    if (m.type != engine::wire::MsgType::kRequest) continue;
    const size_t at = stream->size();
    stream->resize(at + engine::wire::kPieceHeaderSize + m.length);
    engine::wire::EncodePieceHeader(m.index, m.begin, m.length, stream->data() + at);
    std::memcpy(stream->data() + at + engine::wire::kPieceHeaderSize,
                f.payload.data() + int64_t{m.index} * f.meta.piece_length + m.begin, m.length);
  }
}

constexpr int64_t kPieceMemory = int64_t{32} << 20;  // io::SessionConfig's default

void BM_PiecePath(benchmark::State& state) {
  const int64_t piece = state.range(0);
  Fixture f(piece, int64_t{128} << 20);
  auto ring = io::Ring::Create(1024);
  auto pool = io::HashPool::Create(1);
  if (!ring.ok() || !pool.ok()) {
    state.SkipWithError("io_uring or hash pool unavailable");
    return;
  }
  // Kept across iterations so its pages, which stand for the kernel's socket buffer, are
  // resident: only the engine's own memory should cost page faults in the measurement.
  std::vector<uint8_t> stream;
  for (auto _ : state) {
    state.PauseTiming();
    std::filesystem::remove_all(f.dir + "/payload.bin");
    auto store = io::FileStore::Open(f.dir, f.meta, io::OpenMode::kCreate);
    engine::TorrentConfig cfg;
    cfg.self_id[0] = 1;
    cfg.hash_on_arrival = state.range(1) == 1;
    cfg.hash_chunk_bytes = state.range(1) == 2 ? uint32_t{1} << 20 : 0;
    // The session's default piece memory on one shard: without it big pieces would be fetched
    // dozens at a time into fresh memory, which no download does. The session's own kind, so
    // buffers come from the same (pre-faulted) mappings as in a download.
    io::SharedPieceMemory memory(kPieceMemory);
    cfg.piece_memory = &memory;
    // At most the engine's default 48 at once: unlike a shard, this loop keeps no write backlog
    // beyond DiskIo's slots, so more pieces than those would be dropped on ResourceExhausted.
    cfg.pieces_in_flight_max = std::min<uint32_t>(
        cfg.pieces_in_flight_max, engine::PiecesInFlightMax(kPieceMemory, piece, 1));
    engine::Torrent torrent(f.meta, cfg);
    bool complete = false;
    std::vector<Action> actions;
    std::vector<io::HashResult> results;
    engine::Instant now{1};
    io::DiskIo disk((*ring).get(), store->get(),
                    [&](uint64_t tag, absl::Status st, engine::PieceBuffer buffer) {
                      torrent.HandlePieceWritten(static_cast<uint32_t>(tag), st, std::move(buffer),
                                                 now);
                    });
    // A seeder that has everything and unchokes at once.
    stream.assign(engine::wire::kHandshakeSize, 0);
    engine::PeerId other{};
    other[0] = 2;
    engine::wire::EncodeHandshake(f.meta.info_hash, other, stream.data());
    engine::Bitfield all(f.meta.num_pieces());
    all.SetAll();
    stream.resize(stream.size() + 5 + all.bytes().size() + 5);
    uint8_t* p = stream.data() + engine::wire::kHandshakeSize;
    p += engine::wire::EncodeBitfield(all.bytes(), p);
    engine::wire::EncodeSimple(engine::wire::MsgType::kUnchoke, p);
    torrent.HandlePeerConnected(1, engine::PeerAddress{0x7F000001, 1}, true, now);
    state.ResumeTiming();

    bool handshake_skipped = false;
    while (!complete) {
      if (!stream.empty()) {
        const size_t used = torrent.HandleBytes(1, stream, now);
        stream.erase(stream.begin(), stream.begin() + static_cast<ptrdiff_t>(used));
      }
      torrent.TakeActions(&actions);
      for (Action& a : actions) {
        if (a.type == Action::Type::kHashPiece &&
            a.verdict != Action::Verdict::kUnknown) {  // hashed as its blocks came in
          torrent.HandleHashResult(a.piece, a.verdict == Action::Verdict::kMatched,
                                   std::move(a.buffer), now);
        } else if (a.type == Action::Type::kHashPiece) {
          (*pool)->Submit(0, a.piece, std::move(a.buffer), f.meta.piece_hashes[a.piece],
                          std::move(a.hasher), a.begin);
        } else if (a.type == Action::Type::kHashChunk) {
          (*pool)->SubmitChunk(0, a.piece, std::move(a.hasher), a.chunk);
        } else if (a.type == Action::Type::kWritePiece) {
          if (!disk.WritePiece(a.piece, &a.buffer, a.piece).ok()) state.SkipWithError("write");
        } else if (a.type == Action::Type::kComplete) {
          complete = true;
        }
      }
      for (;;) {
        absl::Span<const uint8_t> out = torrent.NextSend(1);
        if (out.empty()) break;
        // The first bytes the engine sends are its handshake, which is not a framed message.
        // Answered straight into the stream the engine reads next: this copy stands for the
        // kernel's socket copy; the engine's own copy into the piece buffer is the one measured.
        Answer(f, handshake_skipped ? out : out.subspan(engine::wire::kHandshakeSize), &stream);
        handshake_skipped = true;
        torrent.HandleSent(1, out.size(), now);
      }
      results.clear();
      (*pool)->TakeResults(&results);
      for (io::HashResult& r : results) {
        if (r.chunk) {
          torrent.HandleHashChunk(static_cast<uint32_t>(r.tag), std::move(r.state), now);
        } else {
          torrent.HandleHashResult(static_cast<uint32_t>(r.tag), r.ok, std::move(r.buffer), now);
        }
      }
      (void)(*ring)->RunOnce(stream.empty() && results.empty() ? 1 : 0);
    }
    while (disk.in_flight() > 0) (void)(*ring)->RunOnce(10);
  }
  state.SetItemsProcessed(state.iterations() * f.meta.num_pieces());  // pieces/s
  state.SetBytesProcessed(state.iterations() * f.meta.total_length);
}
// 16 KiB to 16 MiB: the sizes the issue asks for, one block to the largest common piece.
constexpr int64_t kPieceSizes[] = {16 << 10, 256 << 10, 1 << 20, 4 << 20, 8 << 20, 16 << 20};
void PieceSizes(benchmark::internal::Benchmark* b) {
  for (int64_t size : kPieceSizes) b->Arg(size);
}
// Second argument: 1 hashes blocks as they arrive on the engine's thread
// (TorrentConfig::hash_on_arrival), 0 hashes whole pieces on the pool, 2 hashes pieces above
// 1 MiB on the pool in 1 MiB chunks while they arrive (TorrentConfig::hash_chunk_bytes).
void PathArgs(benchmark::internal::Benchmark* b) {
  for (int64_t size : kPieceSizes) {
    b->Args({size, 1});
    b->Args({size, 0});
    if (size > (1 << 20)) b->Args({size, 2});
  }
}
// Process CPU time: the hash pool thread counts too, so the CPU column compares with raw SHA-1
// even when the machine is shared.
BENCHMARK(BM_PiecePath)
    ->Apply(PathArgs)
    ->UseRealTime()
    ->MeasureProcessCPUTime()
    ->Unit(benchmark::kMillisecond);

// The references, at the same piece sizes. Hot: one buffer hashed again and again, the machine's
// ceiling. Cold: distinct pieces of a 128 MiB region, each from memory, as a piece hashed long
// after its blocks were copied sees it.
void BM_RawSha1Hot(benchmark::State& state) {
  const Fixture f(state.range(0), state.range(0));
  for (auto _ : state) benchmark::DoNotOptimize(engine::Sha1(f.payload));
  state.SetItemsProcessed(state.iterations());  // pieces/s
  state.SetBytesProcessed(state.iterations() * state.range(0));
}
BENCHMARK(BM_RawSha1Hot)->Apply(PieceSizes);

void BM_RawSha1Cold(benchmark::State& state) {
  const size_t piece = static_cast<size_t>(state.range(0));
  const Fixture f(state.range(0), int64_t{128} << 20);
  size_t offset = 0;
  for (auto _ : state) {
    benchmark::DoNotOptimize(engine::Sha1(absl::MakeConstSpan(f.payload).subspan(offset, piece)));
    offset = (offset + piece) % f.payload.size();
  }
  state.SetItemsProcessed(state.iterations());
  state.SetBytesProcessed(state.iterations() * state.range(0));
}
BENCHMARK(BM_RawSha1Cold)->Apply(PieceSizes);

}  // namespace
}  // namespace torrenty
