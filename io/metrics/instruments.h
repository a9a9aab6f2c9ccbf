// Counters, gauges and histograms cheap enough for a shard's hot path. Each instrument has ONE
// writer thread (the shard that owns it, or the coordinator for its own) and any number of
// readers (the scraper). Readers take snapshots; aggregation over shards happens at scrape time,
// so the hot path never touches memory another shard writes.
//
// Why relaxed loads and stores and no read-modify-write: with a single writer, `store(load() + n)`
// cannot lose an update, because no other thread ever stores between that load and that store.
// An atomic RMW (`fetch_add`, a `lock xadd` on x86) would only guard against a second writer that
// does not exist, and costs a locked instruction and a full barrier per event. The atomics still
// matter: they make the scraper's concurrent read a defined, untorn 64-bit load instead of a
// data race. Relaxed order is enough because a reader needs each value to be one the writer
// stored, not an order between different values: every counter and bucket is monotonic on its
// own, and a scrape that sees one counter a few events ahead of another is still a valid sample.
#pragma once

#include <algorithm>
#include <array>
#include <atomic>
#include <cstdint>

#include "absl/status/statusor.h"
#include "absl/types/span.h"
#include "io/metrics/exposition.h"

namespace torrenty::io::metrics {

// A monotonic count. Add() only from the owning thread; Read() from any.
class ShardCounter {
 public:
  void Add(uint64_t n = 1) {
    value_.store(value_.load(std::memory_order_relaxed) + n, std::memory_order_relaxed);
  }
  uint64_t Read() const { return value_.load(std::memory_order_relaxed); }

 private:
  std::atomic<uint64_t> value_{0};
};

// A level that goes up and down (queue depth, peers in a state). Set() and Add() only from the
// owning thread; Read() from any.
class ShardGauge {
 public:
  void Set(int64_t v) { value_.store(v, std::memory_order_relaxed); }
  void Add(int64_t delta) {
    value_.store(value_.load(std::memory_order_relaxed) + delta, std::memory_order_relaxed);
  }
  int64_t Read() const { return value_.load(std::memory_order_relaxed); }

 private:
  std::atomic<int64_t> value_{0};
};

inline constexpr int kMaxHistogramBounds = 32;

// Fixed upper bounds (inclusive) in integer units of what is measured (nanoseconds, bytes), so
// the hot path compares and adds integers. `units_per_base` is how many of those units make one
// exposed base unit (1e9 for nanoseconds exposed as seconds); dividing by it, rather than
// multiplying by 1e-9, gives the bounds' shortest decimal form (1e-05, not 1.0000000000000001e-05).
class HistogramBuckets {
 public:
  // `count` bounds: start, start*factor, start*factor^2, ... (start >= 1, factor >= 2, 1 <= count
  // <= kMaxHistogramBounds, no bound past 2^64).
  [[nodiscard]] static absl::StatusOr<HistogramBuckets> Exponential(uint64_t start, uint64_t factor,
                                                                    int count,
                                                                    double units_per_base);

  absl::Span<const uint64_t> bounds() const { return {bounds_.data(), size_}; }
  double units_per_base() const { return units_per_base_; }
  // The bucket `value` falls in: the first bound >= value, or size() for the +Inf bucket.
  size_t BucketOf(uint64_t value) const {
    return static_cast<size_t>(std::lower_bound(bounds_.begin(), bounds_.begin() + size_, value) -
                               bounds_.begin());
  }
  size_t size() const { return size_; }

 private:
  std::array<uint64_t, kMaxHistogramBounds> bounds_{};
  size_t size_ = 0;
  double units_per_base_ = 1;
};

// A distribution with fixed buckets. Observe() only from the owning thread; Snapshot() from any.
// A snapshot taken during Observe() may have the new bucket count without the new sum (or the
// reverse); each series is still monotonic, which is all Prometheus needs.
class ShardHistogram {
 public:
  explicit ShardHistogram(const HistogramBuckets& buckets) : buckets_(buckets) {}

  void Observe(uint64_t value) {
    std::atomic<uint64_t>& bucket = counts_[buckets_.BucketOf(value)];
    bucket.store(bucket.load(std::memory_order_relaxed) + 1, std::memory_order_relaxed);
    sum_.store(sum_.load(std::memory_order_relaxed) + value, std::memory_order_relaxed);
  }

  // Fills `out` in the base unit, reusing its vectors' memory.
  void Snapshot(HistogramSnapshot* out) const;
  const HistogramBuckets& buckets() const { return buckets_; }

 private:
  const HistogramBuckets buckets_;
  std::array<std::atomic<uint64_t>, kMaxHistogramBounds + 1> counts_{};
  std::atomic<uint64_t> sum_{0};
};

// An empty snapshot with `buckets`' bounds (all counts zero).
HistogramSnapshot EmptySnapshot(const HistogramBuckets& buckets);

}  // namespace torrenty::io::metrics
