// Wire codec throughput: parsing streams of piece messages and of mixed small messages.
#include <benchmark/benchmark.h>

#include <cstring>
#include <vector>

#include "engine/codec/wire.h"

namespace torrenty::engine::wire {
namespace {

std::vector<uint8_t> PieceStream(size_t count) {
  std::vector<uint8_t> out(count * (kPieceHeaderSize + kBlockSize));
  uint8_t* p = out.data();
  for (size_t i = 0; i < count; ++i) {
    p += EncodePieceHeader(static_cast<uint32_t>(i / 16), (i % 16) * kBlockSize, kBlockSize, p);
    std::memset(p, static_cast<int>(i), kBlockSize);
    p += kBlockSize;
  }
  return out;
}

std::vector<uint8_t> MixedStream(size_t count) {
  std::vector<uint8_t> out(count * kRequestSize);
  uint8_t* p = out.data();
  for (size_t i = 0; i < count; ++i) {
    const auto n = static_cast<uint32_t>(i);
    switch (i % 8) {
      case 0:
        p += EncodeHave(n, p);
        break;
      case 1:
      case 2:
        p += EncodeRequest(n, 0, kBlockSize, p);
        break;
      case 3:
        p += EncodeCancel(n, kBlockSize, kBlockSize, p);
        break;
      case 4:
        p += EncodeSimple(MsgType::kUnchoke, p);
        break;
      case 5:
        p += EncodeSimple(MsgType::kInterested, p);
        break;
      case 6:
        p += EncodeKeepAlive(p);
        break;
      case 7:
        p += EncodePort(6881, p);
        break;
    }
  }
  out.resize(static_cast<size_t>(p - out.data()));
  return out;
}

// Parses the whole stream and returns how many messages it held.
size_t ParseAll(const std::vector<uint8_t>& stream, benchmark::State& state) {
  absl::Span<const uint8_t> in(stream);
  const uint32_t max_len = MaxMessageLen(10000);
  size_t messages = 0;
  Message m;
  while (!in.empty()) {
    absl::StatusOr<size_t> n = ParseMessage(in, max_len, &m);
    if (!n.ok() || *n == 0) {
      state.SkipWithError("parse failed");
      break;
    }
    benchmark::DoNotOptimize(m);
    in.remove_prefix(*n);
    ++messages;
  }
  return messages;
}

void BM_ParsePieceStream(benchmark::State& state) {
  const std::vector<uint8_t> stream = PieceStream(64);  // ~1 MiB
  size_t messages = 0;
  for (auto _ : state) messages += ParseAll(stream, state);
  state.SetBytesProcessed(static_cast<int64_t>(state.iterations() * stream.size()));
  state.SetItemsProcessed(static_cast<int64_t>(messages));
}
BENCHMARK(BM_ParsePieceStream);

void BM_ParseMixedSmall(benchmark::State& state) {
  const std::vector<uint8_t> stream = MixedStream(4096);
  size_t messages = 0;
  for (auto _ : state) messages += ParseAll(stream, state);
  state.SetItemsProcessed(static_cast<int64_t>(messages));
  state.SetBytesProcessed(static_cast<int64_t>(state.iterations() * stream.size()));
}
BENCHMARK(BM_ParseMixedSmall);

void BM_EncodeRequest(benchmark::State& state) {
  std::vector<uint8_t> buf(4096 * kRequestSize);
  for (auto _ : state) {
    uint8_t* p = buf.data();
    for (uint32_t i = 0; i < 4096; ++i) p += EncodeRequest(i, i * kBlockSize, kBlockSize, p);
    benchmark::DoNotOptimize(buf.data());
    benchmark::ClobberMemory();
  }
  state.SetItemsProcessed(static_cast<int64_t>(state.iterations() * 4096));
}
BENCHMARK(BM_EncodeRequest);

}  // namespace
}  // namespace torrenty::engine::wire
