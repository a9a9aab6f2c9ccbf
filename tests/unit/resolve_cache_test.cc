// Tests for engine/tracker/resolve_cache.h: TTLs, coalescing, failures and the size bound.
#include "engine/tracker/resolve_cache.h"

#include <string>

#include "gtest/gtest.h"

namespace torrenty::engine {
namespace {

using Kind = ResolveCache::Result::Kind;

TEST(ResolveCacheTest, OneLookupPerHostPerTtl) {
  ResolveCache cache(ResolveCache::Config{.ttl_ms = 1000, .negative_ttl_ms = 100});
  EXPECT_EQ(cache.Find("t.example", Instant{0}).kind, Kind::kStartLookup);
  // Under way: everyone else waits for it, whatever the case of the name.
  EXPECT_EQ(cache.Find("t.example", Instant{1}).kind, Kind::kPending);
  EXPECT_EQ(cache.Find("T.Example", Instant{1}).kind, Kind::kPending);
  cache.Resolved("t.example", 0x0a000001u, Instant{10});
  for (int64_t ms = 10; ms < 1010; ms += 50) {
    ResolveCache::Result r = cache.Find("T.EXAMPLE", Instant{ms});
    ASSERT_EQ(r.kind, Kind::kAddress) << ms;
    EXPECT_EQ(r.ipv4, 0x0a000001u);
  }
  EXPECT_EQ(cache.lookups(), 1u);
  EXPECT_EQ(cache.Find("t.example", Instant{1010}).kind, Kind::kStartLookup);
  EXPECT_EQ(cache.lookups(), 2u);
}

TEST(ResolveCacheTest, FailuresAreRememberedForTheNegativeTtl) {
  ResolveCache cache(ResolveCache::Config{.ttl_ms = 1000, .negative_ttl_ms = 100});
  ASSERT_EQ(cache.Find("bad.example", Instant{0}).kind, Kind::kStartLookup);
  cache.Resolved("bad.example", absl::UnavailableError("cannot resolve bad.example"), Instant{0});
  ResolveCache::Result r = cache.Find("bad.example", Instant{99});
  EXPECT_EQ(r.kind, Kind::kFailed);
  EXPECT_EQ(r.error.code(), absl::StatusCode::kUnavailable);
  EXPECT_EQ(cache.Find("bad.example", Instant{100}).kind, Kind::kStartLookup);
}

TEST(ResolveCacheTest, SizeIsBoundedAndLookupsUnderWayStay) {
  ResolveCache cache(
      ResolveCache::Config{.ttl_ms = 1000, .negative_ttl_ms = 100, .max_entries = 3});
  for (int i = 0; i < 3; ++i) {
    const std::string host = "h" + std::to_string(i);
    ASSERT_EQ(cache.Find(host, Instant{i}).kind, Kind::kStartLookup);
    cache.Resolved(host, static_cast<uint32_t>(i + 1), Instant{i});
  }
  // A fourth host: the entry closest to expiry (h0) makes room.
  EXPECT_EQ(cache.Find("h3", Instant{5}).kind, Kind::kStartLookup);
  EXPECT_EQ(cache.size(), 3u);
  EXPECT_EQ(cache.Find("h0", Instant{5}).kind, Kind::kStartLookup);  // Evicted; h1 goes now.
  EXPECT_EQ(cache.size(), 3u);
  EXPECT_EQ(cache.Find("h2", Instant{6}).kind, Kind::kAddress);
  // All three are lookups under way or fresh; h2 goes, never a pending one.
  EXPECT_EQ(cache.Find("h4", Instant{7}).kind, Kind::kStartLookup);
  EXPECT_EQ(cache.size(), 3u);
  EXPECT_EQ(cache.Find("h3", Instant{7}).kind, Kind::kPending);
  EXPECT_EQ(cache.Find("h0", Instant{7}).kind, Kind::kPending);
  // Only pending entries: a fifth lookup is let through but not cached.
  EXPECT_EQ(cache.Find("h5", Instant{8}).kind, Kind::kStartLookup);
  EXPECT_EQ(cache.size(), 3u);
  // Expired entries are dropped first when room is needed.
  cache.Resolved("h3", 9u, Instant{8});
  cache.Resolved("h0", 9u, Instant{8});
  cache.Resolved("h4", 9u, Instant{8});
  EXPECT_EQ(cache.Find("h6", Instant{5000}).kind, Kind::kStartLookup);
  EXPECT_EQ(cache.size(), 1u);
}

}  // namespace
}  // namespace torrenty::engine
