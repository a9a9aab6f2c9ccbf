// SHA-1 verification of finished pieces (and of big pieces chunk by chunk while they arrive) on
// worker threads, off the ring thread. Results come back through an eventfd the ring thread
// watches, so the event loop never waits on a lock or a hash.
#pragma once

#include <condition_variable>
#include <cstdint>
#include <deque>
#include <memory>
#include <mutex>
#include <thread>
#include <vector>

#include "absl/status/statusor.h"
#include "absl/types/span.h"
#include "engine/base/piece_buffer.h"
#include "engine/base/sha1.h"
#include "engine/base/types.h"

namespace torrenty::io {

struct HashResult {
  uint64_t tag = 0;
  bool ok = false;             // SHA-1(buffer.bytes()) == expected
  engine::PieceBuffer buffer;  // the submitted buffer, handed back
  // SubmitChunk: the submitted state continued over the chunk (`ok` and `buffer` unused).
  bool chunk = false;
  engine::Sha1Hasher state;
};

class HashPool {
 public:
  // `threads` >= 1 worker threads.
  [[nodiscard]] static absl::StatusOr<std::unique_ptr<HashPool>> Create(int threads);
  // Stops and joins the workers. Jobs not yet started are dropped without a result.
  ~HashPool();
  HashPool(const HashPool&) = delete;
  HashPool& operator=(const HashPool&) = delete;

  // Thread-safe. Compares SHA-1(buffer.bytes()) with `expected`. The job owns the buffer until
  // its result hands it back (a pool destroyed first frees it), so no thread reads memory its
  // submitter may free.
  void Submit(uint64_t tag, engine::PieceBuffer buffer, const engine::Sha1Digest& expected) {
    Submit(0, tag, std::move(buffer), expected);
  }

  // eventfd (EFD_NONBLOCK | EFD_CLOEXEC), readable when results are ready. The ring thread reads
  // it via io_uring and then calls TakeResults. Wake-ups may be spurious (results already taken by
  // an earlier TakeResults), so an empty TakeResults is normal. Only the first result since the
  // last TakeResults signals, so the reader must take after every wake-up it reads.
  int notify_fd() const { return notify_fd(0); }

  // Thread-safe. Appends every finished result to `out`.
  void TakeResults(std::vector<HashResult>* out) { TakeResults(0, out); }

  // Several shards share one pool; each is a client with its own results and eventfd, so a
  // shard's ring only ever wakes for its own pieces. Client 0 exists from the start; AddClient
  // must be called before any Submit.
  [[nodiscard]] absl::StatusOr<int> AddClient();
  // `resume`, when `from` > 0, holds SHA-1 of the buffer's first `from` bytes: only the rest is
  // hashed (Action::kHashPiece after chunks).
  void Submit(int client, uint64_t tag, engine::PieceBuffer buffer,
              const engine::Sha1Digest& expected, engine::Sha1Hasher resume = {}, size_t from = 0);
  // Thread-safe. Continues `state` over `bytes` and hands it back in a result with `chunk` set.
  // The bytes belong to the submitter (a prefix of a piece buffer still being filled further
  // on, Action::kHashChunk): they must stay valid and unchanged until that result is taken or
  // the pool is destroyed.
  void SubmitChunk(int client, uint64_t tag, engine::Sha1Hasher state,
                   absl::Span<const uint8_t> bytes);
  int notify_fd(int client) const { return clients_[client]->event_fd; }
  void TakeResults(int client, std::vector<HashResult>* out);

 private:
  struct Job {
    int client = 0;
    uint64_t tag = 0;
    engine::PieceBuffer buffer;
    engine::Sha1Digest expected{};
    engine::Sha1Hasher state;         // resumed for a piece, continued for a chunk
    size_t from = 0;                  // piece: bytes already in `state`
    absl::Span<const uint8_t> chunk;  // chunk jobs: the bytes to add (buffer empty)
    bool is_chunk = false;
  };
  void Enqueue(Job job);
  // A worker takes at most this many jobs per lock round trip; fewer when the queue is short so
  // the other workers get a share.
  static constexpr size_t kMaxBatch = 8;

  struct Client {
    int event_fd = -1;
    std::vector<HashResult> results;  // guarded by mu_
  };

  explicit HashPool(int threads) : num_threads_(threads) {}
  void Worker();
  // Requires mu_.
  bool HasWorkOrStop() const { return stop_ || !jobs_.empty(); }

  const size_t num_threads_;
  std::vector<std::unique_ptr<Client>> clients_;
  std::vector<std::thread> threads_;
  // std::mutex rather than absl::Mutex: ThreadSanitizer sees through pthread, not through an
  // uninstrumented abseil (CI's TSan stage).
  std::mutex mu_;
  std::condition_variable work_cv_;  // jobs_ became non-empty or stop_ was set
  std::deque<Job> jobs_;             // guarded by mu_
  bool stop_ = false;                // guarded by mu_
};

}  // namespace torrenty::io
