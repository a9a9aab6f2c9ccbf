// Tests for the CLI's shared parsers: sizes with suffixes, piece lengths, and what LoadTorrent says
// about magnets and URLs.
#include "tools/torrenty/cli_util.h"

#include "gmock/gmock.h"
#include "gtest/gtest.h"

namespace torrenty::tools {
namespace {

using ::testing::HasSubstr;

TEST(ParseSize, AcceptsBytesAndBinarySuffixesInAnyCase) {
  EXPECT_EQ(*ParseSize("1"), 1);
  EXPECT_EQ(*ParseSize("4194304"), 4194304);
  EXPECT_EQ(*ParseSize("512K"), 512 << 10);
  EXPECT_EQ(*ParseSize("512k"), 512 << 10);
  EXPECT_EQ(*ParseSize("1M"), 1 << 20);
  EXPECT_EQ(*ParseSize("4MiB"), 4 << 20);
  EXPECT_EQ(*ParseSize("4mib"), 4 << 20);
  EXPECT_EQ(*ParseSize("4MB"), 4 << 20);
  EXPECT_EQ(*ParseSize("1G"), int64_t{1} << 30);
  EXPECT_EQ(*ParseSize("2GiB"), int64_t{2} << 30);
  EXPECT_EQ(*ParseSize("3T"), int64_t{3} << 40);
  EXPECT_EQ(*ParseSize("100B"), 100);
}

TEST(ParseSize, RejectsEverythingElseWithOneClearMessage) {
  for (const char* bad : {"", "M", "MiB", "B", "0", "0K", "-1", "-1M", "+5", " 5", "5 ", "1.5M",
                          "5X", "5iB", "5Mi", "5KK", "0x10", "99999999999999999999", "2000000T"}) {
    absl::StatusOr<int64_t> n = ParseSize(bad);
    EXPECT_FALSE(n.ok()) << "'" << bad << "' gave " << *n;
    if (!n.ok()) {
      EXPECT_THAT(n.status().message(), HasSubstr("invalid size '" + std::string(bad) + "'"));
      EXPECT_EQ(n.status().message().find('\n'), std::string::npos);
    }
  }
}

TEST(ParsePieceLength, PowersOfTwoFrom16KiB) {
  EXPECT_EQ(*ParsePieceLength("16K"), 16384);
  EXPECT_EQ(*ParsePieceLength("16384"), 16384);
  EXPECT_EQ(*ParsePieceLength("4MiB"), 4 << 20);
  for (const char* bad : {"8K", "20000", "3M", "abc", "0"}) {
    absl::StatusOr<int64_t> n = ParsePieceLength(bad);
    ASSERT_FALSE(n.ok()) << bad;
    EXPECT_THAT(n.status().message(), HasSubstr("--piece-length must be a power of two from 16K"));
    EXPECT_THAT(n.status().message(), HasSubstr(std::string("got '") + bad + "'"));
  }
}

TEST(LoadTorrent, MagnetsAndUrlsAreNotSupportedYet) {
  absl::StatusOr<engine::Metainfo> m =
      LoadTorrent("magnet:?xt=urn:btih:0123456789abcdef0123456789abcdef01234567");
  EXPECT_TRUE(absl::IsUnimplemented(m.status())) << m.status();
  EXPECT_THAT(m.status().message(), HasSubstr("magnet links are taken by download and serve only"));
  for (const char* url : {"http://example.com/x.torrent", "HTTPS://example.com/x.torrent"}) {
    m = LoadTorrent(url);
    EXPECT_TRUE(absl::IsUnimplemented(m.status())) << url;
    EXPECT_THAT(m.status().message(), HasSubstr("URLs are not supported yet"));
  }
  EXPECT_TRUE(absl::IsNotFound(LoadTorrent("/nonexistent/x.torrent").status()));
}

}  // namespace
}  // namespace torrenty::tools
