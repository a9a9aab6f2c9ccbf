// Bucket layouts and snapshots of the single-writer instruments.
#include "io/metrics/instruments.h"

#include <cmath>
#include <limits>

#include "absl/strings/str_cat.h"

namespace torrenty::io::metrics {

absl::StatusOr<HistogramBuckets> HistogramBuckets::Exponential(uint64_t start, uint64_t factor,
                                                               int count, double units_per_base) {
  if (start < 1 || factor < 2 || count < 1 || count > kMaxHistogramBounds ||
      !std::isfinite(units_per_base) || !(units_per_base > 0)) {
    return absl::InvalidArgumentError(absl::StrCat("bad exponential buckets: start ", start,
                                                   " factor ", factor, " count ", count));
  }
  HistogramBuckets b;
  b.units_per_base_ = units_per_base;
  uint64_t bound = start;
  for (int i = 0; i < count; ++i) {
    b.bounds_[i] = bound;
    if (i + 1 == count) break;
    if (bound > std::numeric_limits<uint64_t>::max() / factor) {
      return absl::InvalidArgumentError("exponential bucket bounds overflow 64 bits");
    }
    bound *= factor;
  }
  b.size_ = static_cast<size_t>(count);
  return b;
}

HistogramSnapshot EmptySnapshot(const HistogramBuckets& buckets) {
  HistogramSnapshot s;
  s.upper_bounds.reserve(buckets.size());
  for (uint64_t bound : buckets.bounds()) {
    s.upper_bounds.push_back(static_cast<double>(bound) / buckets.units_per_base());
  }
  s.counts.assign(buckets.size() + 1, 0);
  return s;
}

void ShardHistogram::Snapshot(HistogramSnapshot* out) const {
  const size_t n = buckets_.size();
  out->upper_bounds.resize(n);
  out->counts.resize(n + 1);
  for (size_t i = 0; i < n; ++i) {
    out->upper_bounds[i] = static_cast<double>(buckets_.bounds()[i]) / buckets_.units_per_base();
  }
  for (size_t i = 0; i <= n; ++i) out->counts[i] = counts_[i].load(std::memory_order_relaxed);
  out->sum = static_cast<double>(sum_.load(std::memory_order_relaxed)) / buckets_.units_per_base();
}

}  // namespace torrenty::io::metrics
