// Parallel piece recheck: workers pull piece indices from a shared counter, read each piece with
// one pread per file slice and compare its SHA-1.
#include "io/recheck.h"

#include <errno.h>
#include <unistd.h>

#include <algorithm>
#include <thread>
#include <vector>

#include "absl/synchronization/mutex.h"
#include "engine/sha1.h"

namespace torrenty::io {
namespace {

// True if some slice of the piece lies entirely in a hole of a sparse file: a piece we created
// with ftruncate and never wrote. Skipping those avoids reading and hashing gigabytes of zeros
// when resuming a fresh download. Filesystems without SEEK_DATA report everything as data, which
// just means the piece gets read and hashed as usual.
bool HasUnwrittenSlice(const FileStore& store, const std::vector<engine::FileSlice>& slices) {
  for (const engine::FileSlice& s : slices) {
    const int fd = store.fd(s.file_index);
    if (fd < 0 || s.length <= 0) continue;
    const off_t data = lseek(fd, s.file_offset, SEEK_DATA);
    if (data < 0 && errno == ENXIO) return true;  // no data at or after this offset
    if (data >= s.file_offset + s.length) return true;
  }
  return false;
}

}  // namespace

absl::StatusOr<engine::Bitfield> CheckExistingData(const FileStore& store, int threads,
                                                   std::atomic<uint32_t>* progress) {
  const engine::Metainfo& meta = store.meta();
  const uint32_t num_pieces = meta.num_pieces();
  threads = std::clamp<int>(threads, 1, std::max<uint32_t>(num_pieces, 1));

  // One byte per piece: workers write distinct elements, so no lock is needed for the results.
  std::vector<uint8_t> have(num_pieces, 0);
  std::atomic<uint32_t> next{0};
  std::atomic<bool> failed{false};
  absl::Mutex mu;
  absl::Status first_error;

  auto worker = [&] {
    std::vector<uint8_t> buf(static_cast<size_t>(meta.piece_length));
    std::vector<engine::FileSlice> slices;
    for (;;) {
      if (failed.load(std::memory_order_relaxed)) return;
      const uint32_t piece = next.fetch_add(1, std::memory_order_relaxed);
      if (piece >= num_pieces) return;
      slices.clear();
      store.map().MapPiece(piece, &slices);
      if (!HasUnwrittenSlice(store, slices)) {
        absl::Span<uint8_t> span(buf.data(), meta.PieceSize(piece));
        absl::Status s = store.ReadPieceBlocking(piece, span);
        if (s.ok()) {
          have[piece] = engine::Sha1(span) == meta.piece_hashes[piece];
        } else if (!absl::IsOutOfRange(s)) {
          // OutOfRange is a short file: data not there yet. Anything else is a real failure.
          absl::MutexLock lock(&mu);
          if (first_error.ok()) first_error = s;
          failed.store(true, std::memory_order_relaxed);
          return;
        }
      }
      if (progress != nullptr) progress->fetch_add(1, std::memory_order_relaxed);
    }
  };

  std::vector<std::thread> pool;
  pool.reserve(threads - 1);
  for (int i = 1; i < threads; ++i) pool.emplace_back(worker);
  worker();  // the calling thread works too instead of idling in join()
  for (std::thread& t : pool) t.join();

  if (failed.load()) return first_error;
  engine::Bitfield result(num_pieces);
  for (uint32_t i = 0; i < num_pieces; ++i) {
    if (have[i]) result.Set(i);
  }
  return result;
}

}  // namespace torrenty::io
