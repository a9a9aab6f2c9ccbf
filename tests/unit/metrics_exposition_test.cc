// Tests for io::metrics::TextWriter: the Prometheus text format 0.0.4, byte for byte, and the
// misuses it refuses.
#include <cmath>
#include <limits>

#include "gmock/gmock.h"
#include "gtest/gtest.h"
#include "io/metrics/exposition.h"

namespace torrenty::io::metrics {
namespace {

using ::testing::HasSubstr;

TEST(MetricsExpositionTest, EscapesLabelValues) {
  EXPECT_EQ(EscapeLabelValue("plain"), "plain");
  EXPECT_EQ(EscapeLabelValue(R"(a\b)"), R"(a\\b)");
  EXPECT_EQ(EscapeLabelValue(R"(say "hi")"), R"(say \"hi\")");
  EXPECT_EQ(EscapeLabelValue("two\nlines"), R"(two\nlines)");
  EXPECT_EQ(EscapeLabelValue("\\\"\n"), R"(\\\"\n)");
  EXPECT_EQ(EscapeLabelValue("tab\tstays"), "tab\tstays");
  EXPECT_EQ(EscapeLabelValue("caf\xC3\xA9"), "caf\xC3\xA9");
  // Prometheus refuses a label value that is not UTF-8.
  EXPECT_EQ(EscapeLabelValue("bad\xFF"
                             "byte"),
            "bad\xEF\xBF\xBD"
            "byte");
  EXPECT_EQ(EscapeLabelValue("\xC3"), "\xEF\xBF\xBD");
}

TEST(MetricsExpositionTest, EscapesHelpButKeepsQuotes) {
  EXPECT_EQ(EscapeHelp(R"(a "quoted" \ word)"), R"(a "quoted" \\ word)");
  EXPECT_EQ(EscapeHelp("line\nbreak"), R"(line\nbreak)");
  EXPECT_EQ(EscapeHelp("\xFE"), "\xEF\xBF\xBD");
}

TEST(MetricsExpositionTest, FormatsValuesAsPrometheusParsesThem) {
  EXPECT_EQ(FormatValue(std::numeric_limits<double>::quiet_NaN()), "NaN");
  EXPECT_EQ(FormatValue(std::numeric_limits<double>::infinity()), "+Inf");
  EXPECT_EQ(FormatValue(-std::numeric_limits<double>::infinity()), "-Inf");
  EXPECT_EQ(FormatValue(0), "0");
  EXPECT_EQ(FormatValue(-0.0), "0");
  EXPECT_EQ(FormatValue(42), "42");
  EXPECT_EQ(FormatValue(-7), "-7");
  EXPECT_EQ(FormatValue(0.5), "0.5");
  EXPECT_EQ(FormatValue(1e-5), "1e-05");
  EXPECT_EQ(FormatValue(0.1 + 0.2), "0.30000000000000004");  // round-trips, not rounded to 6 digits
  EXPECT_EQ(FormatValue(9007199254740992.0), "9007199254740992");
  EXPECT_EQ(FormatValue(1e300), "1e+300");
}

TEST(MetricsExpositionTest, WritesFamiliesSamplesAndHistograms) {
  TextWriter w;
  w.BeginFamily("t_requests_total", MetricType::kCounter, "Requests \"served\".\nSecond line.");
  w.Counter({{"code", "200"}, {"path", "/a\"b\\c\nd"}}, 7);
  w.Counter({{"code", "404"}, {"path", "/"}}, 0);
  w.BeginFamily("t_temperature_celsius", MetricType::kGauge, "A gauge.");
  w.Gauge({}, std::numeric_limits<double>::quiet_NaN());
  w.BeginFamily("t_latency_seconds", MetricType::kHistogram, "A histogram.");
  w.Histogram({{"shard", "0"}}, HistogramSnapshot{{0.001, 0.5}, {2, 0, 3}, 7.25});
  w.Histogram({}, HistogramSnapshot{{0.001, 0.5}, {0, 0, 0}, 0});
  absl::StatusOr<std::string> text = std::move(w).Finish();
  ASSERT_TRUE(text.ok()) << text.status();
  EXPECT_EQ(*text,
            "# HELP t_requests_total Requests \"served\".\\nSecond line.\n"
            "# TYPE t_requests_total counter\n"
            "t_requests_total{code=\"200\",path=\"/a\\\"b\\\\c\\nd\"} 7\n"
            "t_requests_total{code=\"404\",path=\"/\"} 0\n"
            "# HELP t_temperature_celsius A gauge.\n"
            "# TYPE t_temperature_celsius gauge\n"
            "t_temperature_celsius NaN\n"
            "# HELP t_latency_seconds A histogram.\n"
            "# TYPE t_latency_seconds histogram\n"
            "t_latency_seconds_bucket{shard=\"0\",le=\"0.001\"} 2\n"
            "t_latency_seconds_bucket{shard=\"0\",le=\"0.5\"} 2\n"
            "t_latency_seconds_bucket{shard=\"0\",le=\"+Inf\"} 5\n"
            "t_latency_seconds_sum{shard=\"0\"} 7.25\n"
            "t_latency_seconds_count{shard=\"0\"} 5\n"
            "t_latency_seconds_bucket{le=\"0.001\"} 0\n"
            "t_latency_seconds_bucket{le=\"0.5\"} 0\n"
            "t_latency_seconds_bucket{le=\"+Inf\"} 0\n"
            "t_latency_seconds_sum 0\n"
            "t_latency_seconds_count 0\n");
}

// Each case misuses the writer once; Finish reports it instead of writing a broken exposition.
TEST(MetricsExpositionTest, RefusesMisuse) {
  struct Case {
    const char* what;
    void (*misuse)(TextWriter&);
    const char* message;
  };
  const Case cases[] = {
      {"counter without _total",
       [](TextWriter& w) { w.BeginFamily("t_requests", MetricType::kCounter, "h"); },
       "must end in _total"},
      {"gauge with _total",
       [](TextWriter& w) { w.BeginFamily("t_open_total", MetricType::kGauge, "h"); },
       "not a counter"},
      {"histogram named like its series",
       [](TextWriter& w) { w.BeginFamily("t_size_count", MetricType::kHistogram, "h"); }, "suffix"},
      {"bad metric name", [](TextWriter& w) { w.BeginFamily("9lives", MetricType::kGauge, "h"); },
       "invalid metric name"},
      {"colon in a name", [](TextWriter& w) { w.BeginFamily("a:b", MetricType::kGauge, "h"); },
       "invalid metric name"},
      {"no help", [](TextWriter& w) { w.BeginFamily("t_g", MetricType::kGauge, ""); }, "no help"},
      {"family twice",
       [](TextWriter& w) {
         w.BeginFamily("t_g", MetricType::kGauge, "h");
         w.BeginFamily("t_other", MetricType::kGauge, "h");
         w.BeginFamily("t_g", MetricType::kGauge, "h");
       },
       "written twice"},
      {"sample before a family", [](TextWriter& w) { w.Gauge({}, 1); }, "before any"},
      {"wrong type",
       [](TextWriter& w) {
         w.BeginFamily("t_g", MetricType::kGauge, "h");
         w.Counter({}, 1);
       },
       "is a gauge"},
      {"duplicate series",
       [](TextWriter& w) {
         w.BeginFamily("t_g", MetricType::kGauge, "h");
         w.Gauge({{"a", "1"}}, 1);
         w.Gauge({{"a", "1"}}, 2);
       },
       "twice"},
      {"bad label name",
       [](TextWriter& w) {
         w.BeginFamily("t_g", MetricType::kGauge, "h");
         w.Gauge({{"a-b", "1"}}, 1);
       },
       "invalid label name"},
      {"reserved label name",
       [](TextWriter& w) {
         w.BeginFamily("t_g", MetricType::kGauge, "h");
         w.Gauge({{"__name__", "x"}}, 1);
       },
       "invalid label name"},
      {"label twice",
       [](TextWriter& w) {
         w.BeginFamily("t_g", MetricType::kGauge, "h");
         w.Gauge({{"a", "1"}, {"a", "2"}}, 1);
       },
       "label a twice"},
      {"le on a histogram",
       [](TextWriter& w) {
         w.BeginFamily("t_h", MetricType::kHistogram, "h");
         w.Histogram({{"le", "1"}}, HistogramSnapshot{{}, {0}, 0});
       },
       "label le"},
      {"histogram counts do not fit its bounds",
       [](TextWriter& w) {
         w.BeginFamily("t_h", MetricType::kHistogram, "h");
         w.Histogram({}, HistogramSnapshot{{1, 2}, {0, 0}, 0});
       },
       "need 3 counts"},
      {"histogram bounds not ascending",
       [](TextWriter& w) {
         w.BeginFamily("t_h", MetricType::kHistogram, "h");
         w.Histogram({}, HistogramSnapshot{{2, 1}, {0, 0, 0}, 0});
       },
       "strictly ascending"},
      {"histogram with an infinite bound",
       [](TextWriter& w) {
         w.BeginFamily("t_h", MetricType::kHistogram, "h");
         w.Histogram({},
                     HistogramSnapshot{{1, std::numeric_limits<double>::infinity()}, {0, 0, 0}, 0});
       },
       "finite"},
  };
  for (const Case& c : cases) {
    TextWriter w;
    c.misuse(w);
    absl::StatusOr<std::string> text = std::move(w).Finish();
    EXPECT_FALSE(text.ok()) << c.what;
    EXPECT_THAT(text.status().message(), HasSubstr(c.message)) << c.what;
  }
}

TEST(MetricsExpositionTest, MergesHistogramsWithTheSameBuckets) {
  HistogramSnapshot total;
  ASSERT_TRUE(MergeHistogram(HistogramSnapshot{{1, 2}, {1, 2, 3}, 4.5}, &total).ok());
  ASSERT_TRUE(MergeHistogram(HistogramSnapshot{{1, 2}, {10, 0, 1}, 0.5}, &total).ok());
  EXPECT_EQ(total.upper_bounds, (std::vector<double>{1, 2}));
  EXPECT_EQ(total.counts, (std::vector<uint64_t>{11, 2, 4}));
  EXPECT_EQ(total.sum, 5.0);
  EXPECT_EQ(total.Count(), 17u);
  EXPECT_FALSE(MergeHistogram(HistogramSnapshot{{1, 3}, {0, 0, 0}, 0}, &total).ok());
}

}  // namespace
}  // namespace torrenty::io::metrics
