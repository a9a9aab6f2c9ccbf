// Helpers shared by the subcommands: argument parsing, loading a .torrent, one-line errors.
#pragma once

#include <cstdint>
#include <string>

#include "absl/status/statusor.h"
#include "absl/strings/string_view.h"
#include "engine/metainfo/metainfo.h"
#include "engine/base/types.h"

namespace torrenty::tools {

// Prints "torrenty <command>: <message>" on stderr and returns 1 (runtime failure).
int Fail(absl::string_view command, absl::string_view message);
// Same with exit code 2 (bad usage).
int UsageError(absl::string_view command, absl::string_view message);

// Matches "--flag VALUE" or "--flag=VALUE" at argv[*i]; advances *i past a separate value.
// Returns false if argv[*i] is not this flag; sets *error if the value is missing.
bool TakeValue(int argc, char** argv, int* i, absl::string_view flag, std::string* value,
               bool* error);

// Reads and validates a .torrent file (size-limited before reading). A magnet link or an
// http(s) URL gets an Unimplemented error saying so.
absl::StatusOr<engine::Metainfo> LoadTorrent(const std::string& path);

// An IPv4 or IPv6 address ("127.0.0.1", "::1", "[::1]"); port 0.
absl::StatusOr<engine::PeerAddress> ParseIpAddress(absl::string_view text);
// "HOST:PORT" with a dotted IPv4 host (or "localhost"), or "[IPv6]:PORT" (BEP 7).
absl::StatusOr<engine::PeerAddress> ParsePeerAddress(absl::string_view text);
absl::StatusOr<uint16_t> ParsePort(absl::string_view text);
// A positive byte count: "4194304", "4M", "4MB", "4MiB" (K, M, G, T are powers of 1024, any case).
absl::StatusOr<int64_t> ParseSize(absl::string_view text);
// A piece length: a size that is a power of two from 16 KiB to engine::kMaxPieceLength. The error
// names the --piece-length flag.
absl::StatusOr<int64_t> ParsePieceLength(absl::string_view text);

// Writes via a temp file, fsync and rename, so a crash never leaves a partial file at `path`.
absl::Status WriteAtomically(const std::string& path, absl::string_view data);

std::string HumanBytes(double bytes);
// "4.2 s" under a minute, then "12:05" (m:ss) and "1:02:05" (h:mm:ss).
std::string HumanDuration(double seconds);

}  // namespace torrenty::tools
