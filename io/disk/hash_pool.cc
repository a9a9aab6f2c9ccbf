// Worker threads that hash queued pieces in small batches; a client's eventfd is written when its
// result list goes from empty to non-empty.
#include "io/disk/hash_pool.h"

#include <errno.h>
#include <sys/eventfd.h>
#include <unistd.h>

#include <algorithm>

#include "absl/strings/str_cat.h"
#include "engine/base/sha1.h"

namespace torrenty::io {

absl::StatusOr<std::unique_ptr<HashPool>> HashPool::Create(int threads) {
  if (threads < 1) {
    return absl::InvalidArgumentError(absl::StrCat("hash pool needs >= 1 thread, got ", threads));
  }
  std::unique_ptr<HashPool> pool(new HashPool(threads));
  if (absl::StatusOr<int> first = pool->AddClient(); !first.ok()) return first.status();
  pool->threads_.reserve(threads);
  for (int i = 0; i < threads; ++i) pool->threads_.emplace_back([p = pool.get()] { p->Worker(); });
  return pool;
}

HashPool::~HashPool() {
  {
    std::lock_guard<std::mutex> lock(mu_);
    stop_ = true;
  }
  work_cv_.notify_all();
  for (std::thread& t : threads_) t.join();
  for (auto& c : clients_) close(c->event_fd);
}

absl::StatusOr<int> HashPool::AddClient() {
  const int efd = eventfd(0, EFD_NONBLOCK | EFD_CLOEXEC);
  if (efd < 0) return absl::ErrnoToStatus(errno, "eventfd");
  std::lock_guard<std::mutex> lock(mu_);
  clients_.push_back(std::make_unique<Client>());
  clients_.back()->event_fd = efd;
  return static_cast<int>(clients_.size()) - 1;
}

void HashPool::Submit(int client, uint64_t tag, engine::PieceBuffer buffer,
                      const engine::Sha1Digest& expected, engine::Sha1Hasher resume, size_t from) {
  Job job;
  job.client = client;
  job.tag = tag;
  job.buffer = std::move(buffer);
  job.expected = expected;
  if (from > 0 && from <= job.buffer.size()) {
    job.state = std::move(resume);
    job.from = from;
  }
  Enqueue(std::move(job));
}

void HashPool::SubmitChunk(int client, uint64_t tag, engine::Sha1Hasher state,
                           absl::Span<const uint8_t> bytes) {
  Job job;
  job.client = client;
  job.tag = tag;
  job.state = std::move(state);
  job.chunk = bytes;
  job.is_chunk = true;
  Enqueue(std::move(job));
}

void HashPool::Enqueue(Job job) {
  {
    std::lock_guard<std::mutex> lock(mu_);
    jobs_.push_back(std::move(job));
  }
  work_cv_.notify_one();
}

void HashPool::TakeResults(int client, std::vector<HashResult>* out) {
  std::lock_guard<std::mutex> lock(mu_);
  std::vector<HashResult>& results = clients_[client]->results;
  for (HashResult& r : results) out->push_back(std::move(r));
  results.clear();
}

void HashPool::Worker() {
  std::vector<Job> batch;
  std::vector<HashResult> done;
  batch.reserve(kMaxBatch);
  done.reserve(kMaxBatch);
  for (;;) {
    batch.clear();
    {
      std::unique_lock<std::mutex> lock(mu_);
      work_cv_.wait(lock, [this] { return HasWorkOrStop(); });
      if (stop_) return;
      const size_t take = std::clamp<size_t>(jobs_.size() / num_threads_, 1, kMaxBatch);
      for (size_t i = 0; i < take && !jobs_.empty(); ++i) {
        batch.push_back(std::move(jobs_.front()));
        jobs_.pop_front();
      }
    }
    done.clear();
    for (Job& job : batch) {
      HashResult r;
      r.tag = job.tag;
      if (job.is_chunk) {
        job.state.Update(job.chunk);
        r.chunk = true;
        r.state = std::move(job.state);
      } else if (job.from > 0) {
        job.state.Update(job.buffer.bytes().subspan(job.from));
        r.ok = job.state.Finish() == job.expected;
      } else {
        r.ok = engine::Sha1(job.buffer.bytes()) == job.expected;
      }
      r.buffer = std::move(job.buffer);
      done.push_back(std::move(r));
    }
    uint64_t woken = 0;  // clients to wake; a bitmask is enough for up to 64 shards
    {
      std::lock_guard<std::mutex> lock(mu_);
      for (size_t i = 0; i < batch.size(); ++i) {
        std::vector<HashResult>& results = clients_[batch[i].client]->results;
        // Results already waiting have a wake-up on the way (the client takes all of them
        // after each one), so only the first result since the last take wakes the client.
        if (results.empty()) woken |= uint64_t{1} << (batch[i].client & 63);
        results.push_back(std::move(done[i]));
      }
    }
    for (size_t c = 0; c < clients_.size() && c < 64; ++c) {
      if (!(woken & (uint64_t{1} << c))) continue;
      // Only fails (EAGAIN) if the counter would overflow, in which case it is readable anyway.
      const uint64_t one = 1;
      [[maybe_unused]] ssize_t n = write(clients_[c]->event_fd, &one, sizeof(one));
    }
  }
}

}  // namespace torrenty::io
