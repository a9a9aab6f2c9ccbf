// SHA-1 throughput: the raw OpenSSL limit on one core, and the hash pool's pieces/s at the
// common piece sizes. The pool's numbers are meant to be read against the raw line.
#include <benchmark/benchmark.h>
#include <poll.h>
#include <unistd.h>

#include <cstring>
#include <vector>

#include "engine/base/sha1.h"
#include "io/disk/hash_pool.h"

namespace torrenty {
namespace {

std::vector<uint8_t> Buffer(size_t n) {
  std::vector<uint8_t> b(n);
  for (size_t i = 0; i < n; ++i) b[i] = static_cast<uint8_t>(i * 131 + 7);
  return b;
}

// The limit every verification path is measured against: EVP_Digest on one thread.
void BM_RawSha1(benchmark::State& state) {
  const std::vector<uint8_t> buf = Buffer(static_cast<size_t>(state.range(0)));
  for (auto _ : state) {
    benchmark::DoNotOptimize(engine::Sha1(buf));
  }
  state.SetBytesProcessed(state.iterations() * state.range(0));
  state.SetItemsProcessed(state.iterations());  // pieces/s
}
BENCHMARK(BM_RawSha1)->Arg(256 << 10)->Arg(1 << 20)->Arg(4 << 20);

// The same over 128 MiB of distinct pieces, as a download sees them: each piece comes from memory,
// not from a cache that the previous iteration warmed. This is the fair limit for pieces/s in
// piece_path_bench.
void BM_RawSha1Cold(benchmark::State& state) {
  const size_t piece = static_cast<size_t>(state.range(0));
  const std::vector<uint8_t> region = Buffer(size_t{128} << 20);
  size_t offset = 0;
  for (auto _ : state) {
    benchmark::DoNotOptimize(engine::Sha1(absl::MakeConstSpan(region).subspan(offset, piece)));
    offset = (offset + piece) % region.size();
  }
  state.SetBytesProcessed(state.iterations() * state.range(0));
  state.SetItemsProcessed(state.iterations());
}
BENCHMARK(BM_RawSha1Cold)->Arg(256 << 10)->Arg(1 << 20)->Arg(4 << 20);

// Pieces verified per second by the pool, batches of 32 pieces in flight.
void BM_HashPool(benchmark::State& state) {
  const size_t piece = static_cast<size_t>(state.range(0));
  const int threads = static_cast<int>(state.range(1));
  constexpr int kBatch = 32;
  // Each buffer goes into its job and comes back with the result, as on a shard.
  std::vector<engine::PieceBuffer> pieces;
  std::vector<engine::Sha1Digest> digests;
  for (int i = 0; i < kBatch; ++i) {
    std::vector<uint8_t> bytes = Buffer(piece);
    bytes[0] = static_cast<uint8_t>(i);
    pieces.push_back(engine::PieceBuffer::Allocate(piece));
    std::memcpy(pieces.back().data(), bytes.data(), piece);
    digests.push_back(engine::Sha1(bytes));
  }
  auto pool = io::HashPool::Create(threads);
  if (!pool.ok()) {
    state.SkipWithError("hash pool");
    return;
  }
  std::vector<io::HashResult> results;
  for (auto _ : state) {
    for (int i = 0; i < kBatch; ++i) (*pool)->Submit(i, std::move(pieces[i]), digests[i]);
    size_t done = 0;
    while (done < kBatch) {
      pollfd p{(*pool)->notify_fd(), POLLIN, 0};
      poll(&p, 1, 1000);
      uint64_t v;
      (void)!read((*pool)->notify_fd(), &v, sizeof(v));
      results.clear();
      (*pool)->TakeResults(&results);
      for (io::HashResult& r : results) pieces[r.tag] = std::move(r.buffer);
      done += results.size();
    }
  }
  state.SetBytesProcessed(state.iterations() * kBatch * static_cast<int64_t>(piece));
  state.SetItemsProcessed(state.iterations() * kBatch);
}
BENCHMARK(BM_HashPool)
    ->Args({256 << 10, 1})
    ->Args({256 << 10, 2})
    ->Args({1 << 20, 1})
    ->Args({1 << 20, 2})
    ->Args({4 << 20, 2})
    ->UseRealTime();

}  // namespace
}  // namespace torrenty
