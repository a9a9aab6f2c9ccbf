#include "engine/metainfo/resume.h"

#include "gtest/gtest.h"

namespace torrenty::engine {
namespace {

Metainfo TestMeta(uint32_t pieces, size_t files) {
  Metainfo m;
  m.name = "x";
  m.piece_length = 16384;
  m.total_length = int64_t{pieces} * m.piece_length;
  m.piece_hashes.resize(pieces);
  for (size_t i = 0; i < files; ++i) m.files.push_back(FileEntry{{"f" + std::to_string(i)}, 0, 0});
  for (size_t i = 0; i < m.info_hash.size(); ++i) m.info_hash[i] = static_cast<uint8_t>(i * 7);
  return m;
}

ResumeData Sample(const Metainfo& m) {
  ResumeData r;
  r.info_hash = m.info_hash;
  r.have = Bitfield(m.num_pieces());
  r.have.Set(0);
  r.have.Set(m.num_pieces() - 1);
  for (size_t i = 0; i < m.files.size(); ++i) {
    r.files.push_back(FileStamp{int64_t(100 + i), int64_t(1'700'000'000'123'456'789 + i)});
  }
  return r;
}

TEST(ResumeTest, RoundTrip) {
  Metainfo m = TestMeta(13, 3);
  ResumeData r = Sample(m);
  absl::StatusOr<ResumeData> back = DecodeResume(EncodeResume(r), m);
  ASSERT_TRUE(back.ok()) << back.status();
  EXPECT_EQ(back->have.count(), 2u);
  EXPECT_TRUE(back->have.Get(0));
  EXPECT_TRUE(back->have.Get(12));
  EXPECT_EQ(back->files, r.files);
}

TEST(ResumeTest, RejectsOtherTorrentsAndDamage) {
  Metainfo m = TestMeta(13, 3);
  const std::string good = EncodeResume(Sample(m));
  Metainfo other = m;
  other.info_hash[0] ^= 1;
  EXPECT_FALSE(DecodeResume(good, other).ok());
  EXPECT_FALSE(DecodeResume(good, TestMeta(14, 3)).ok());  // piece count
  Metainfo more_files = TestMeta(13, 4);
  more_files.info_hash = m.info_hash;
  EXPECT_FALSE(DecodeResume(good, more_files).ok());
  EXPECT_FALSE(DecodeResume(good.substr(0, good.size() - 1), m).ok());  // truncated
  EXPECT_FALSE(DecodeResume("", m).ok());
  EXPECT_FALSE(DecodeResume("le", m).ok());
}

TEST(ResumeTest, RejectsBitfieldWithSpareBitsSet) {
  Metainfo m = TestMeta(13, 1);
  ResumeData r = Sample(m);
  std::string bytes = EncodeResume(r);
  // The last bitfield byte holds pieces 8..12 and three spare bits; set the lowest spare bit.
  const size_t pos = bytes.find("6:pieces2:") + 10 + 1;
  bytes[pos] = static_cast<char>(bytes[pos] | 0x01);
  EXPECT_FALSE(DecodeResume(bytes, m).ok());
}

TEST(ResumeTest, TrustOnlyWhenEveryStampMatches) {
  Metainfo m = TestMeta(13, 3);
  ResumeData r = Sample(m);
  EXPECT_EQ(TrustedPieces(r, r.files).count(), 2u);
  std::vector<FileStamp> touched = r.files;
  touched[1].mtime_ns += 1;
  EXPECT_EQ(TrustedPieces(r, touched).count(), 0u);
  std::vector<FileStamp> resized = r.files;
  resized[2].size = 0;
  EXPECT_EQ(TrustedPieces(r, resized).count(), 0u);
}

}  // namespace
}  // namespace torrenty::engine
