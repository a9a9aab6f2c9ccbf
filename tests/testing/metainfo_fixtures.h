// Shared helpers for tests that need a torrent on disk: deterministic payloads, an
// engine::Metainfo built by hand over a list of files (with real piece hashes), and a
// temporary directory removed with everything in it when it goes out of scope.
#pragma once

#include <stdlib.h>

#include <algorithm>
#include <cstdint>
#include <filesystem>
#include <string>
#include <string_view>
#include <system_error>
#include <vector>

#include "absl/types/span.h"
#include "engine/metainfo/metainfo.h"
#include "engine/base/sha1.h"

namespace torrenty::testing {

// One file of a torrent: its path components (empty for a single-file torrent) and length.
struct FileSpec {
  std::vector<std::string> path;
  int64_t length;
};

// `n` pseudo-random bytes; the same `seed` always gives the same bytes.
inline std::vector<uint8_t> TestData(int64_t n, uint32_t seed = 1) {
  std::vector<uint8_t> d(static_cast<size_t>(n));
  uint32_t x = seed * 2654435761u + 1;
  for (auto& b : d) {
    x = x * 1103515245u + 12345u;
    b = static_cast<uint8_t>(x >> 16);
  }
  return d;
}

// A Metainfo laying `files` out back to back, with the SHA-1 of each piece of `data` (which
// holds the whole payload, i.e. the sum of the file lengths).
inline engine::Metainfo MakeMeta(const std::string& name, const std::vector<FileSpec>& files,
                                 int64_t piece_length, bool multi,
                                 const std::vector<uint8_t>& data) {
  engine::Metainfo m;
  m.name = name;
  m.multi_file = multi;
  m.piece_length = piece_length;
  for (const FileSpec& f : files) {
    engine::FileEntry e;
    e.path = f.path;
    e.length = f.length;
    e.offset = m.total_length;
    m.total_length += f.length;
    m.files.push_back(e);
  }
  for (int64_t off = 0; off < m.total_length; off += piece_length) {
    const int64_t len = std::min(piece_length, m.total_length - off);
    m.piece_hashes.push_back(engine::Sha1(absl::MakeConstSpan(data).subspan(off, len)));
  }
  return m;
}

// A fresh directory under the system temp dir, named `<prefix>_XXXXXX`; removed (with its
// contents) by the destructor.
class TempDir {
 public:
  explicit TempDir(std::string_view prefix = "torrenty_test") {
    std::string tmpl =
        (std::filesystem::temp_directory_path() / (std::string(prefix) + "_XXXXXX")).string();
    if (const char* p = mkdtemp(tmpl.data())) path_ = p;
  }
  ~TempDir() {
    if (path_.empty()) return;
    std::error_code ec;
    std::filesystem::remove_all(path_, ec);
  }
  TempDir(const TempDir&) = delete;
  TempDir& operator=(const TempDir&) = delete;

  const std::string& path() const { return path_; }

 private:
  std::string path_;
};

}  // namespace torrenty::testing
