// SHA-1 over bytes via OpenSSL's EVP interface (uses SHA-NI where the CPU has it).
// Pure functions: the io/ hash pool calls them on its own threads.
#pragma once

#include <cstdint>

#include "absl/types/span.h"
#include "engine/base/types.h"

namespace torrenty::engine {

Sha1Digest Sha1(absl::Span<const uint8_t> data);

// Incremental hashing for data that arrives in pieces (torrent creation, rechecks, and a piece's
// blocks hashed as they arrive). A value that moves: a piece's running state travels from the
// engine to a hash-pool thread and back (Action::kHashChunk) without being copied. The context is
// allocated on first use, so a default-constructed hasher (e.g. in every Action) costs nothing.
class Sha1Hasher {
 public:
  Sha1Hasher() = default;
  ~Sha1Hasher();
  Sha1Hasher(Sha1Hasher&& other) noexcept : ctx_(other.ctx_) { other.ctx_ = nullptr; }
  Sha1Hasher& operator=(Sha1Hasher&& other) noexcept;
  Sha1Hasher(const Sha1Hasher&) = delete;
  Sha1Hasher& operator=(const Sha1Hasher&) = delete;

  void Update(absl::Span<const uint8_t> data);
  // Returns the digest and resets the hasher for reuse.
  Sha1Digest Finish();
  // Drops whatever was hashed so far.
  void Reset();

 private:
  void* Ctx();
  void* ctx_ = nullptr;  // EVP_MD_CTX*, kept opaque so callers need no OpenSSL headers.
};

}  // namespace torrenty::engine
