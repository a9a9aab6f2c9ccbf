// The Prometheus text exposition format, version 0.0.4: what `/metrics` answers. The writer checks
// the rules that Prometheus and `promtool check metrics` enforce (names, one HELP and TYPE per
// family, contiguous families, `_total` on counters and only on counters, no duplicate series),
// so a mistake in a metric definition shows up as an error in a unit test, not as a failed scrape.
#pragma once

#include <cstdint>
#include <string>
#include <string_view>
#include <vector>

#include "absl/container/flat_hash_set.h"
#include "absl/status/status.h"
#include "absl/status/statusor.h"
#include "absl/types/span.h"

namespace torrenty::io::metrics {

// The Content-Type of an answer to a scrape.
inline constexpr std::string_view kContentType = "text/plain; version=0.0.4; charset=utf-8";

enum class MetricType { kCounter, kGauge, kHistogram };

struct Label {
  std::string_view name;
  std::string_view value;
};

// A histogram as plain numbers, in the exposed base unit (seconds, bytes).
struct HistogramSnapshot {
  // Finite and strictly ascending; the +Inf bucket is implicit.
  std::vector<double> upper_bounds;
  // upper_bounds.size() + 1 entries, not cumulative: counts[i] observations fell in
  // (upper_bounds[i-1], upper_bounds[i]], the last one above every bound.
  std::vector<uint64_t> counts;
  double sum = 0;

  uint64_t Count() const;
};

// Adds `from` to `into` bucket by bucket. An `into` without buckets takes `from`'s layout.
// InvalidArgument if the bounds differ.
[[nodiscard]] absl::Status MergeHistogram(const HistogramSnapshot& from, HistogramSnapshot* into);

// `\` as `\\`, `"` as `\"` and a newline as `\n`; invalid UTF-8 bytes become U+FFFD, which
// Prometheus' parser requires of label values.
std::string EscapeLabelValue(std::string_view value);
// HELP text: `\` as `\\` and a newline as `\n` (quotes stay); invalid UTF-8 becomes U+FFFD.
std::string EscapeHelp(std::string_view help);
// A sample value as Prometheus parses it: `NaN`, `+Inf`, `-Inf`, integers without exponent or
// point (up to 2^53), anything else in the shortest form that reads back to the same double.
std::string FormatValue(double value);

// Builds one exposition. A misuse (bad name, counter without `_total`, a family twice, a sample
// outside its family, a duplicate series, a malformed histogram) is recorded and returned by
// Finish; later calls after the first error are ignored.
class TextWriter {
 public:
  // Writes `# HELP` and `# TYPE`. Every sample until the next BeginFamily belongs to it.
  void BeginFamily(std::string_view name, MetricType type, std::string_view help);
  void Counter(absl::Span<const Label> labels, uint64_t value);
  void Gauge(absl::Span<const Label> labels, double value);
  // Cumulative `_bucket{le=...}` lines ending with `le="+Inf"`, then `_sum` and `_count`.
  void Histogram(absl::Span<const Label> labels, const HistogramSnapshot& histogram);

  // The text, or the first misuse.
  [[nodiscard]] absl::StatusOr<std::string> Finish() &&;

 private:
  bool StartSample(MetricType type, absl::Span<const Label> labels);
  void AppendSeries(std::string_view suffix, std::string_view labels, std::string_view le);
  void Fail(absl::Status status);

  std::string out_;
  absl::Status status_;
  std::string family_;
  MetricType type_ = MetricType::kGauge;
  bool in_family_ = false;
  absl::flat_hash_set<std::string> families_;
  // Label sets already written in the current family (promtool rejects a repeated series).
  absl::flat_hash_set<std::string> series_;
  std::string labels_;  // the current sample's rendered labels, without braces
};

}  // namespace torrenty::io::metrics
