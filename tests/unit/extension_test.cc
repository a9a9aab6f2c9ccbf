// Tests for the BEP 10 extension handshake and BEP 9 ut_metadata codecs: round trips, what a real
// libtorrent handshake carries, and the limits on hostile values.
#include "engine/codec/extension.h"

#include <string>

#include "gmock/gmock.h"
#include "gtest/gtest.h"

namespace torrenty::engine::ext {
namespace {

absl::Span<const uint8_t> B(const std::string& s) {
  return absl::MakeConstSpan(reinterpret_cast<const uint8_t*>(s.data()), s.size());
}

TEST(ExtHandshakeTest, RoundTrips) {
  Handshake h;
  h.m = {{"ut_pex", 2}, {"ut_metadata", 1}};
  h.client = "Torrenty";
  h.listen_port = 6881;
  h.reqq = 2000;
  h.yourip = std::string("\x7f\x00\x00\x01", 4);
  h.metadata_size = 12345;
  const std::string enc = EncodeHandshake(h);
  absl::StatusOr<Handshake> d = ParseHandshake(B(enc));
  ASSERT_TRUE(d.ok()) << d.status();
  EXPECT_EQ(d->IdOf("ut_metadata"), 1);
  EXPECT_EQ(d->IdOf("ut_pex"), 2);
  EXPECT_EQ(d->IdOf("lt_donthave"), 0);
  EXPECT_EQ(d->client, "Torrenty");
  EXPECT_EQ(d->listen_port, 6881);
  EXPECT_EQ(d->reqq, 2000u);
  EXPECT_EQ(d->yourip, h.yourip);
  EXPECT_EQ(d->metadata_size, 12345);
}

TEST(ExtHandshakeTest, ParsesLibtorrentStyleHandshakeAndIgnoresUnknownKeys) {
  const std::string lt =
      "d12:complete_agoi-1e1:md11:lt_donthavei7e10:share_modei8e11:upload_onlyi3e12:ut_holepunchi4e"
      "11:ut_metadatai2e6:ut_pexi1ee13:metadata_sizei31235e4:reqqi500e11:upload_onlyi0e"
      "1:v18:libtorrent/2.0.8.06:yourip4:\x7f\x01\x01\x01"
      "e";
  absl::StatusOr<Handshake> d = ParseHandshake(B(lt));
  ASSERT_TRUE(d.ok()) << d.status();
  EXPECT_EQ(d->IdOf("ut_metadata"), 2);
  EXPECT_EQ(d->metadata_size, 31235);
  EXPECT_EQ(d->client, "libtorrent/2.0.8.0");
}

TEST(ExtHandshakeTest, RejectsHostileValues) {
  EXPECT_FALSE(ParseHandshake(B("le")).ok());
  EXPECT_FALSE(ParseHandshake(B("d1:mi3ee")).ok());
  EXPECT_FALSE(ParseHandshake(B("d1:md11:ut_metadatai256eee")).ok());
  EXPECT_FALSE(ParseHandshake(B("d1:md11:ut_metadatai-1eee")).ok());
  absl::StatusOr<Handshake> big = ParseHandshake(B("d13:metadata_sizei16777217ee"));
  ASSERT_FALSE(big.ok());
  EXPECT_THAT(big.status().message(), ::testing::HasSubstr("16 MiB"));
  EXPECT_FALSE(ParseHandshake(B("d13:metadata_sizei0ee")).ok());
  EXPECT_FALSE(ParseHandshake(B(std::string(kMaxHandshakeSize + 1, 'd'))).ok());
  std::string many = "d1:md";
  for (int i = 0; i < 65; ++i) many += "2:e" + std::to_string(i % 10) + "i1e";
  // Duplicate keys are rejected by the strict decoder; either way this must not parse.
  EXPECT_FALSE(ParseHandshake(B(many + "ee")).ok());
}

TEST(ExtHeaderTest, Encodes) {
  uint8_t out[kHeaderSize];
  EncodeHeader(3, 100, out);
  EXPECT_THAT(out, ::testing::ElementsAre(0, 0, 0, 102, 20, 3));
}

TEST(UtMetadataTest, RoundTripsRequestRejectData) {
  absl::StatusOr<MetadataMessage> r = ParseMetadataMessage(B(EncodeMetadataRequest(3)));
  ASSERT_TRUE(r.ok()) << r.status();
  EXPECT_EQ(r->type, MetadataType::kRequest);
  EXPECT_EQ(r->piece, 3u);
  r = ParseMetadataMessage(B(EncodeMetadataReject(0)));
  ASSERT_TRUE(r.ok());
  EXPECT_EQ(r->type, MetadataType::kReject);

  const int64_t total = kMetadataPieceSize + 100;
  std::string data = EncodeMetadataDataHeader(1, total) + std::string(100, 'x');
  r = ParseMetadataMessage(B(data));
  ASSERT_TRUE(r.ok()) << r.status();
  EXPECT_EQ(r->type, MetadataType::kData);
  EXPECT_EQ(r->piece, 1u);
  EXPECT_EQ(r->total_size, total);
  EXPECT_EQ(r->data.size(), 100u);
}

TEST(UtMetadataTest, RejectsBadData) {
  const int64_t total = kMetadataPieceSize + 100;
  // Too short, too long, past the end, no total_size, total_size over the limit, bad type.
  EXPECT_FALSE(
      ParseMetadataMessage(B(EncodeMetadataDataHeader(1, total) + std::string(99, 'x'))).ok());
  EXPECT_FALSE(
      ParseMetadataMessage(B(EncodeMetadataDataHeader(0, total) + std::string(100, 'x'))).ok());
  EXPECT_FALSE(ParseMetadataMessage(B(EncodeMetadataDataHeader(2, total))).ok());
  EXPECT_FALSE(ParseMetadataMessage(B("d8:msg_typei1e5:piecei0ee" + std::string(10, 'x'))).ok());
  absl::StatusOr<MetadataMessage> big = ParseMetadataMessage(
      B(EncodeMetadataDataHeader(0, kMaxMetadataSize + 1) + std::string(kMetadataPieceSize, 'x')));
  ASSERT_FALSE(big.ok());
  EXPECT_THAT(big.status().message(), ::testing::HasSubstr("16 MiB"));
  EXPECT_FALSE(ParseMetadataMessage(B("d8:msg_typei3e5:piecei0ee")).ok());
  EXPECT_FALSE(ParseMetadataMessage(B("d8:msg_typei0e5:piecei-1ee")).ok());
  EXPECT_FALSE(ParseMetadataMessage(B("d8:msg_typei0e5:piecei0eex")).ok());
  EXPECT_FALSE(ParseMetadataMessage(B("")).ok());
}

TEST(UtMetadataTest, PieceGeometry) {
  EXPECT_EQ(MetadataPieceCount(1), 1u);
  EXPECT_EQ(MetadataPieceCount(kMetadataPieceSize), 1u);
  EXPECT_EQ(MetadataPieceCount(kMetadataPieceSize + 1), 2u);
  EXPECT_EQ(MetadataPieceLength(kMetadataPieceSize + 1, 1), 1u);
  EXPECT_EQ(MetadataPieceLength(kMetadataPieceSize + 1, 2), 0u);
}

}  // namespace
}  // namespace torrenty::engine::ext
