// The BEP 10 extensions Torrenty knows, and the ids it asks peers to use for them. A peer's
// extended message arrives under OUR id (the one in the `m` of our handshake), so dispatch looks
// the id up here; what we send goes under the id the PEER gave in its `m` (PeerSession::ext_ids).
// A new extension adds one row and one case in Torrent::HandleExtended.
#pragma once

#include <array>
#include <cstddef>
#include <cstdint>
#include <optional>

namespace torrenty::engine {

enum class Extension : uint8_t { kUtMetadata = 0, kUtPex = 1 };
inline constexpr size_t kNumExtensions = 2;

struct ExtensionInfo {
  const char* name;
  uint8_t local_id;  // never 0: 0 is the extension handshake
};

inline constexpr std::array<ExtensionInfo, kNumExtensions> kExtensions = {{
    {"ut_metadata", 1},
    {"ut_pex", 2},
}};

inline const ExtensionInfo& InfoOf(Extension e) { return kExtensions[static_cast<size_t>(e)]; }

inline std::optional<Extension> ExtensionByLocalId(uint8_t id) {
  for (size_t i = 0; i < kNumExtensions; ++i) {
    if (kExtensions[i].local_id == id) return static_cast<Extension>(i);
  }
  return std::nullopt;
}

}  // namespace torrenty::engine
