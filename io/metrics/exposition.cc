// The Prometheus text format 0.0.4 writer and its escaping rules.
#include "io/metrics/exposition.h"

#include <charconv>
#include <cmath>
#include <utility>

#include "absl/strings/str_cat.h"
#include "engine/base/text_escape.h"

namespace torrenty::io::metrics {
namespace {

absl::string_view Sv(std::string_view s) { return absl::string_view(s.data(), s.size()); }

constexpr std::string_view kReplacementChar = "\xEF\xBF\xBD";  // U+FFFD

// Appends `text` with every byte that is not part of valid UTF-8 replaced by U+FFFD, passing each
// valid character to `escape_ascii` first (returns false to copy the byte as it is).
template <typename EscapeAscii>
void AppendEscaped(std::string_view text, std::string* out, EscapeAscii escape_ascii) {
  for (size_t pos = 0; pos < text.size();) {
    const size_t len = engine::Utf8SequenceLength(text, pos);
    if (len == 0) {
      out->append(kReplacementChar);
      ++pos;
      continue;
    }
    if (len > 1 || !escape_ascii(text[pos], out)) out->append(text.substr(pos, len));
    pos += len;
  }
}

bool IsNameStart(char c) { return (c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z') || c == '_'; }
bool IsNameChar(char c) { return IsNameStart(c) || (c >= '0' && c <= '9'); }

// Metric names may also hold ':', but that is reserved for recording rules, so it is refused.
bool IsValidName(std::string_view name) {
  if (name.empty() || !IsNameStart(name[0])) return false;
  for (char c : name) {
    if (!IsNameChar(c)) return false;
  }
  return true;
}

const char* TypeName(MetricType type) {
  switch (type) {
    case MetricType::kCounter:
      return "counter";
    case MetricType::kGauge:
      return "gauge";
    case MetricType::kHistogram:
      return "histogram";
  }
  return "untyped";
}

}  // namespace

uint64_t HistogramSnapshot::Count() const {
  uint64_t n = 0;
  for (uint64_t c : counts) n += c;
  return n;
}

absl::Status MergeHistogram(const HistogramSnapshot& from, HistogramSnapshot* into) {
  if (into->counts.empty() && into->upper_bounds.empty()) {
    *into = from;
    return absl::OkStatus();
  }
  if (from.upper_bounds != into->upper_bounds || from.counts.size() != into->counts.size()) {
    return absl::InvalidArgumentError("histograms with different buckets cannot be merged");
  }
  for (size_t i = 0; i < from.counts.size(); ++i) into->counts[i] += from.counts[i];
  into->sum += from.sum;
  return absl::OkStatus();
}

std::string EscapeLabelValue(std::string_view value) {
  std::string out;
  out.reserve(value.size());
  AppendEscaped(value, &out, [](char c, std::string* o) {
    switch (c) {
      case '\\':
        o->append("\\\\");
        return true;
      case '"':
        o->append("\\\"");
        return true;
      case '\n':
        o->append("\\n");
        return true;
      default:
        return false;
    }
  });
  return out;
}

std::string EscapeHelp(std::string_view help) {
  std::string out;
  out.reserve(help.size());
  AppendEscaped(help, &out, [](char c, std::string* o) {
    switch (c) {
      case '\\':
        o->append("\\\\");
        return true;
      case '\n':
        o->append("\\n");
        return true;
      default:
        return false;
    }
  });
  return out;
}

std::string FormatValue(double value) {
  if (std::isnan(value)) return "NaN";
  if (std::isinf(value)) return value > 0 ? "+Inf" : "-Inf";
  constexpr double kExactIntegers = 9007199254740992.0;  // 2^53
  if (value == std::trunc(value) && std::fabs(value) <= kExactIntegers) {
    return absl::StrCat(static_cast<int64_t>(value));
  }
  char buf[32];
  const std::to_chars_result r = std::to_chars(buf, buf + sizeof(buf), value);
  return std::string(buf, r.ptr);
}

void TextWriter::Fail(absl::Status status) {
  if (status_.ok()) status_ = std::move(status);
}

void TextWriter::BeginFamily(std::string_view name, MetricType type, std::string_view help) {
  if (!status_.ok()) return;
  if (!IsValidName(name)) {
    return Fail(absl::InvalidArgumentError(absl::StrCat("invalid metric name \"", Sv(name), "\"")));
  }
  const bool total = name.ends_with("_total");
  if (type == MetricType::kCounter && !total) {
    return Fail(
        absl::InvalidArgumentError(absl::StrCat("counter ", Sv(name), " must end in _total")));
  }
  if (type != MetricType::kCounter && total) {
    return Fail(absl::InvalidArgumentError(absl::StrCat(Sv(name), " is not a counter: no _total")));
  }
  if (type == MetricType::kHistogram &&
      (name.ends_with("_bucket") || name.ends_with("_sum") || name.ends_with("_count"))) {
    return Fail(absl::InvalidArgumentError(
        absl::StrCat("histogram ", Sv(name), " ends in a suffix its series use")));
  }
  if (help.empty()) {
    return Fail(absl::InvalidArgumentError(absl::StrCat(Sv(name), " has no help text")));
  }
  if (!families_.insert(std::string(name)).second) {
    return Fail(
        absl::InvalidArgumentError(absl::StrCat("metric family ", Sv(name), " written twice")));
  }
  family_ = std::string(name);
  type_ = type;
  in_family_ = true;
  series_.clear();
  absl::StrAppend(&out_, "# HELP ", Sv(name), " ", EscapeHelp(help), "\n");
  absl::StrAppend(&out_, "# TYPE ", Sv(name), " ", TypeName(type), "\n");
}

bool TextWriter::StartSample(MetricType type, absl::Span<const Label> labels) {
  if (!status_.ok()) return false;
  if (!in_family_) {
    Fail(absl::FailedPreconditionError("a sample before any BeginFamily"));
    return false;
  }
  if (type != type_) {
    Fail(absl::InvalidArgumentError(
        absl::StrCat(family_, " is a ", TypeName(type_), ", not a ", TypeName(type))));
    return false;
  }
  labels_.clear();
  for (size_t i = 0; i < labels.size(); ++i) {
    const std::string_view name = labels[i].name;
    if (!IsValidName(name) || name.starts_with("__")) {
      Fail(absl::InvalidArgumentError(
          absl::StrCat(family_, ": invalid label name \"", Sv(name), "\"")));
      return false;
    }
    if (type == MetricType::kHistogram && name == "le") {
      Fail(absl::InvalidArgumentError(absl::StrCat(family_, ": a histogram's own label le")));
      return false;
    }
    for (size_t j = 0; j < i; ++j) {
      if (labels[j].name == name) {
        Fail(absl::InvalidArgumentError(absl::StrCat(family_, ": label ", Sv(name), " twice")));
        return false;
      }
    }
    absl::StrAppend(&labels_, i == 0 ? "" : ",", Sv(name), "=\"", EscapeLabelValue(labels[i].value),
                    "\"");
  }
  if (!series_.insert(labels_).second) {
    Fail(absl::InvalidArgumentError(absl::StrCat(family_, ": series {", labels_, "} twice")));
    return false;
  }
  return true;
}

void TextWriter::AppendSeries(std::string_view suffix, std::string_view labels,
                              std::string_view le) {
  out_.append(family_);
  out_.append(suffix);
  if (labels.empty() && le.empty()) {
    out_.push_back(' ');
    return;
  }
  out_.push_back('{');
  out_.append(labels);
  if (!le.empty()) {
    if (!labels.empty()) out_.push_back(',');
    out_.append("le=\"");
    out_.append(le);
    out_.push_back('"');
  }
  out_.append("} ");
}

void TextWriter::Counter(absl::Span<const Label> labels, uint64_t value) {
  if (!StartSample(MetricType::kCounter, labels)) return;
  AppendSeries("", labels_, "");
  absl::StrAppend(&out_, value, "\n");
}

void TextWriter::Gauge(absl::Span<const Label> labels, double value) {
  if (!StartSample(MetricType::kGauge, labels)) return;
  AppendSeries("", labels_, "");
  absl::StrAppend(&out_, FormatValue(value), "\n");
}

void TextWriter::Histogram(absl::Span<const Label> labels, const HistogramSnapshot& histogram) {
  if (!StartSample(MetricType::kHistogram, labels)) return;
  const std::vector<double>& bounds = histogram.upper_bounds;
  if (histogram.counts.size() != bounds.size() + 1) {
    return Fail(absl::InvalidArgumentError(absl::StrCat(family_, ": ", bounds.size(),
                                                        " bounds need ", bounds.size() + 1,
                                                        " counts, not ", histogram.counts.size())));
  }
  for (size_t i = 0; i < bounds.size(); ++i) {
    if (!std::isfinite(bounds[i]) || (i > 0 && !(bounds[i] > bounds[i - 1]))) {
      return Fail(absl::InvalidArgumentError(
          absl::StrCat(family_, ": bucket bounds must be finite and strictly ascending")));
    }
  }
  uint64_t cumulative = 0;
  for (size_t i = 0; i < bounds.size(); ++i) {
    cumulative += histogram.counts[i];
    AppendSeries("_bucket", labels_, FormatValue(bounds[i]));
    absl::StrAppend(&out_, cumulative, "\n");
  }
  cumulative += histogram.counts.back();
  AppendSeries("_bucket", labels_, "+Inf");
  absl::StrAppend(&out_, cumulative, "\n");
  AppendSeries("_sum", labels_, "");
  absl::StrAppend(&out_, FormatValue(histogram.sum), "\n");
  AppendSeries("_count", labels_, "");
  absl::StrAppend(&out_, cumulative, "\n");
}

absl::StatusOr<std::string> TextWriter::Finish() && {
  if (!status_.ok()) return std::move(status_);
  return std::move(out_);
}

}  // namespace torrenty::io::metrics
