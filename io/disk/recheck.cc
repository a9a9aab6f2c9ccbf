// Parallel piece recheck: workers pull piece indices from a shared counter and hash each piece in
// fixed-size chunks, so memory stays the same whatever the piece length.
#include "io/disk/recheck.h"

#include <errno.h>
#include <sys/stat.h>
#include <unistd.h>

#include <algorithm>
#include <memory>
#include <mutex>
#include <optional>
#include <thread>
#include <vector>

#include "absl/strings/str_cat.h"
#include "engine/base/sha1.h"

namespace torrenty::io {
namespace {

// What one worker reads and hashes at a time.
constexpr int64_t kChunk = int64_t{1} << 20;

// Where a slice's bytes come from without reading it: pad bytes and holes of a sparse file are
// zeros (a hole is data like any other: a file of zeros hashes the same with or without blocks
// behind it). kShort: the file ends before the slice does, so the piece is not there.
enum class SliceKind { kData, kZeros, kShort };

SliceKind Classify(const FileStore& store, const std::vector<int64_t>& sizes,
                   const engine::FileSlice& s) {
  if (s.pad) return SliceKind::kZeros;
  const int fd = store.fd(s.file_index);
  if (s.length <= 0) return SliceKind::kData;
  // A file that was never created (file selection) holds none of the piece.
  if (fd < 0) return SliceKind::kShort;
  if (sizes[s.file_index] < s.file_offset + s.length) return SliceKind::kShort;
  // Filesystems without SEEK_DATA report everything as data, which only costs a read.
  const off_t data = lseek(fd, s.file_offset, SEEK_DATA);
  if (data < 0 && errno == ENXIO) return SliceKind::kZeros;  // nothing but holes to EOF
  if (data >= s.file_offset + s.length) return SliceKind::kZeros;
  return SliceKind::kData;
}

// SHA-1 of `n` zero bytes, hashed in chunks from `zeros` (kChunk bytes of zeros).
engine::Sha1Digest HashZeros(int64_t n, const uint8_t* zeros, engine::Sha1Hasher* h) {
  for (int64_t done = 0; done < n;) {
    const int64_t len = std::min(kChunk, n - done);
    h->Update(absl::MakeConstSpan(zeros, static_cast<size_t>(len)));
    done += len;
  }
  return h->Finish();
}

}  // namespace

absl::StatusOr<engine::Bitfield> CheckExistingData(const FileStore& store, int threads,
                                                   std::atomic<uint32_t>* progress,
                                                   const engine::Bitfield* trusted) {
  const engine::Metainfo& meta = store.meta();
  const uint32_t num_pieces = meta.num_pieces();
  threads = std::clamp<int>(threads, 1, std::max<uint32_t>(num_pieces, 1));

  // Sizes once up front: a slice past a file's end means "not downloaded", never zeros.
  std::vector<int64_t> sizes(meta.files.size(), -1);
  for (size_t i = 0; i < meta.files.size(); ++i) {
    const int fd = store.fd(static_cast<uint32_t>(i));
    struct stat st;
    if (fd >= 0 && fstat(fd, &st) == 0) sizes[i] = st.st_size;
  }
  const std::vector<uint8_t> zeros(static_cast<size_t>(kChunk), 0);

  // The hash of an all-zero piece, for pieces that lie entirely in holes: computed at most once
  // per piece size (full and last), so a fresh sparse download is checked without reading.
  std::mutex zero_mu;  // std::mutex, not absl::Mutex: Debian's abseil is invisible to TSan
  std::optional<engine::Sha1Digest> zero_full, zero_last;
  auto zero_hash = [&](uint32_t piece, engine::Sha1Hasher* h) {
    const int64_t size = meta.PieceSize(piece);
    std::lock_guard<std::mutex> lock(zero_mu);
    std::optional<engine::Sha1Digest>& slot = size == meta.piece_length ? zero_full : zero_last;
    if (!slot) slot = HashZeros(size, zeros.data(), h);
    return *slot;
  };

  // One byte per piece: workers write distinct elements, so no lock is needed for the results.
  std::vector<uint8_t> have(num_pieces, 0);
  std::atomic<uint32_t> next{0};
  std::atomic<bool> failed{false};
  std::mutex mu;
  absl::Status first_error;

  auto worker = [&] {
    // Not zero-filled: every byte is read or set before it is hashed.
    std::unique_ptr<uint8_t[]> buf(new uint8_t[kChunk]);
    engine::Sha1Hasher hasher;
    std::vector<engine::FileSlice> slices;
    for (;;) {
      if (failed.load(std::memory_order_relaxed)) return;
      const uint32_t piece = next.fetch_add(1, std::memory_order_relaxed);
      if (piece >= num_pieces) return;
      if (trusted != nullptr && trusted->Get(piece)) {
        have[piece] = 1;
        if (progress != nullptr) progress->fetch_add(1, std::memory_order_relaxed);
        continue;
      }
      slices.clear();
      store.map().MapPiece(piece, &slices);
      std::vector<SliceKind> kinds;  // small: one per file the piece touches
      kinds.reserve(slices.size());
      bool all_zeros = true, is_short = false;
      for (const engine::FileSlice& s : slices) {
        kinds.push_back(Classify(store, sizes, s));
        all_zeros = all_zeros && kinds.back() == SliceKind::kZeros;
        is_short = is_short || kinds.back() == SliceKind::kShort;
      }
      absl::Status st;
      if (is_short) {
        // Data not there yet: not had.
      } else if (all_zeros) {
        have[piece] = zero_hash(piece, &hasher) == meta.piece_hashes[piece];
      } else {
        for (size_t i = 0; i < slices.size() && st.ok(); ++i) {
          const engine::FileSlice& s = slices[i];
          for (int64_t done = 0; done < s.length && st.ok();) {
            const int64_t len = std::min(kChunk, s.length - done);
            const uint8_t* p = zeros.data();
            if (kinds[i] == SliceKind::kData) {
              st = store.ReadBlocking(piece, s.range_offset + done,
                                      absl::MakeSpan(buf.get(), static_cast<size_t>(len)));
              p = buf.get();
            }
            hasher.Update(absl::MakeConstSpan(p, static_cast<size_t>(len)));
            done += len;
          }
        }
        const engine::Sha1Digest digest = hasher.Finish();  // also resets it after an error
        if (st.ok()) have[piece] = digest == meta.piece_hashes[piece];
      }
      if (!st.ok() && !absl::IsOutOfRange(st)) {
        // OutOfRange is a short file: data not there yet. Anything else is a real failure.
        std::lock_guard<std::mutex> lock(mu);
        if (first_error.ok()) first_error = st;
        failed.store(true, std::memory_order_relaxed);
        return;
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
