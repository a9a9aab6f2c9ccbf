// Bencode decoding throughput on a realistic .torrent: a multi-file info dict with many hashes.
#include <benchmark/benchmark.h>

#include <string>

#include "engine/codec/bencode.h"
#include "engine/metainfo/metainfo.h"

namespace torrenty::engine {
namespace {

std::string SampleTorrent(int files, int pieces) {
  bencode::Encoder e;
  e.BeginDict();
  e.String("announce");
  e.String("http://127.0.0.1:6969/announce");
  e.String("info");
  e.BeginDict();
  e.String("files");
  e.BeginList();
  for (int i = 0; i < files; ++i) {
    e.BeginDict();
    e.String("length");
    e.Int(1 << 20);
    e.String("path");
    e.BeginList();
    e.String("dir" + std::to_string(i % 10));
    e.String("file" + std::to_string(i) + ".bin");
    e.End();
    e.End();
  }
  e.End();
  e.String("name");
  e.String("sample");
  e.String("piece length");
  e.Int((int64_t{files} << 20) / pieces);
  e.String("pieces");
  e.String(std::string(static_cast<size_t>(pieces) * 20, 'h'));
  e.End();
  e.End();
  return e.Take();
}

void BM_BencodeDecode(benchmark::State& state) {
  const std::string t = SampleTorrent(static_cast<int>(state.range(0)), 4096);
  for (auto _ : state) benchmark::DoNotOptimize(bencode::Decode(t));
  state.SetBytesProcessed(state.iterations() * static_cast<int64_t>(t.size()));
}
BENCHMARK(BM_BencodeDecode)->Arg(16)->Arg(4096);

void BM_ParseMetainfo(benchmark::State& state) {
  const std::string t = SampleTorrent(static_cast<int>(state.range(0)), 4096);
  for (auto _ : state) benchmark::DoNotOptimize(ParseMetainfo(t));
  state.SetBytesProcessed(state.iterations() * static_cast<int64_t>(t.size()));
}
BENCHMARK(BM_ParseMetainfo)->Arg(16)->Arg(4096);

}  // namespace
}  // namespace torrenty::engine
