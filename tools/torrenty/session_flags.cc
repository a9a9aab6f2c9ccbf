#include "tools/torrenty/session_flags.h"

#include <arpa/inet.h>

#include <cstdlib>
#include <string>

#include "absl/status/statusor.h"
#include "absl/strings/match.h"
#include "absl/strings/numbers.h"
#include "absl/strings/str_cat.h"
#include "tools/torrenty/cli_util.h"

namespace torrenty::tools {
namespace {

// The routers most clients start from (what libtorrent and Transmission ship).
const char* const kDefaultDhtRouters[] = {
    "router.bittorrent.com:6881", "dht.transmissionbt.com:6881", "router.utorrent.com:6881"};

// HOST:PORT, an IPv6 address in brackets ([::1]:6881): a bare "::1:6881" is ambiguous.
bool ValidHostPort(absl::string_view text) {
  const size_t colon = text.rfind(':');
  if (colon == absl::string_view::npos || colon == 0) return false;
  const absl::string_view host = text.substr(0, colon);
  if (host.front() == '[' || host.find(':') != absl::string_view::npos) {
    if (host.size() < 4 || host.front() != '[' || host.back() != ']') return false;
    in6_addr ip{};
    if (inet_pton(AF_INET6, std::string(host.substr(1, host.size() - 2)).c_str(), &ip) != 1) {
      return false;
    }
  }
  uint32_t port = 0;
  return absl::SimpleAtoi(text.substr(colon + 1), &port) && port >= 1 && port <= 65535;
}

}  // namespace

io::SessionConfig::Dht SessionFlags::Dht(std::string state_file) const {
  io::SessionConfig::Dht d;
  d.enabled = dht;
  if (!dht) return d;
  d.bootstrap = dht_bootstrap;
  if (d.bootstrap.empty())
    d.bootstrap.assign(std::begin(kDefaultDhtRouters), std::end(kDefaultDhtRouters));
  d.state_file = std::move(state_file);
  return d;
}

std::string DefaultDhtStateFile() {
  if (const char* xdg = std::getenv("XDG_STATE_HOME"); xdg != nullptr && xdg[0] == '/') {
    return absl::StrCat(xdg, "/torrenty/dht.dat");
  }
  if (const char* home = std::getenv("HOME"); home != nullptr && home[0] == '/') {
    return absl::StrCat(home, "/.local/state/torrenty/dht.dat");
  }
  return "";
}

FlagParse TakeSessionFlag(absl::string_view cmd, int argc, char** argv, int* i, SessionFlags* out,
                          SessionFlagSet set) {
  const absl::string_view arg = argv[*i];
  std::string value;
  bool missing = false;
  const auto bad = [&](absl::string_view message) {
    UsageError(cmd, message);
    return FlagParse::kBad;
  };
  if (TakeValue(argc, argv, i, "--port", &value, &missing)) {
    absl::StatusOr<uint16_t> port = ParsePort(value);
    if (missing) return bad("--port needs a number");
    if (!port.ok()) return bad(port.status().message());
    out->port = *port;
    out->port_given = true;
  } else if (TakeValue(argc, argv, i, "--bind", &value, &missing)) {
    absl::StatusOr<engine::PeerAddress> address = ParseIpAddress(value);
    if (missing) return bad("--bind needs an IPv4 or IPv6 address");
    if (!address.ok()) return bad(address.status().message());
    out->bind_address = *address;
    out->bind_given = true;
  } else if (TakeValue(argc, argv, i, "--threads", &value, &missing)) {
    if (missing || !absl::SimpleAtoi(value, &out->threads) || out->threads < 1 ||
        out->threads > 64) {
      return bad("--threads needs a number from 1 to 64");
    }
  } else if (TakeValue(argc, argv, i, "--max-open-files", &value, &missing)) {
    if (missing || !absl::SimpleAtoi(value, &out->max_open_files) || out->max_open_files < 1 ||
        out->max_open_files > 1000000) {
      return bad("--max-open-files needs a number from 1 to 1000000");
    }
  } else if (TakeValue(argc, argv, i, "--max-download-rate", &value, &missing) ||
             TakeValue(argc, argv, i, "--max-upload-rate", &value, &missing)) {
    const bool down = arg == "--max-download-rate" || absl::StartsWith(arg, "--max-download-rate=");
    const absl::string_view flag = down ? "--max-download-rate" : "--max-upload-rate";
    absl::StatusOr<int64_t> rate = value == "0" ? absl::StatusOr<int64_t>(0) : ParseSize(value);
    if (missing || !rate.ok()) {
      return bad(absl::StrCat(
          flag, " needs bytes per second (e.g. 500K, 10M; 0 = unlimited), got '", value, "'"));
    }
    (down ? out->max_download_rate : out->max_upload_rate) = *rate;
    out->rates_given = true;
  } else if (TakeValue(argc, argv, i, "--web-seed-max-rate", &value, &missing)) {
    absl::StatusOr<int64_t> rate = value == "0" ? absl::StatusOr<int64_t>(0) : ParseSize(value);
    if (missing || !rate.ok()) {
      return bad(absl::StrCat(
          "--web-seed-max-rate needs bytes per second (e.g. 500K, 10M; 0 = unlimited), got '",
          value, "'"));
    }
    out->web_seed_max_rate = *rate;
  } else if (TakeValue(argc, argv, i, "--hash-threads", &value, &missing)) {
    if (missing || !absl::SimpleAtoi(value, &out->hash_threads) || out->hash_threads < 1 ||
        out->hash_threads > 64) {
      return bad("--hash-threads needs a number from 1 to 64");
    }
  } else if (set.piece_memory && TakeValue(argc, argv, i, "--piece-memory", &value, &missing)) {
    absl::StatusOr<int64_t> bytes = ParseSize(value);
    if (missing || !bytes.ok() || *bytes < (1 << 20)) {
      return bad(absl::StrCat("--piece-memory needs a size of at least 1M, got '", value, "'"));
    }
    out->piece_memory = *bytes;
  } else if (TakeValue(argc, argv, i, "--dht-bootstrap", &value, &missing)) {
    if (missing || !ValidHostPort(value)) {
      return bad(absl::StrCat("--dht-bootstrap needs HOST:PORT, got '", value, "'"));
    }
    out->dht_bootstrap.push_back(value);
  } else if (arg == "--no-dht") {
    out->dht = false;
  } else if (arg == "--no-lsd") {
    out->local_discovery = false;
  } else if (set.super_seed && arg == "--super-seed") {
    out->super_seed = true;
  } else if (arg == "--no-pex") {
    out->pex = false;
  } else if (arg == "--no-web-seeds") {
    out->web_seeds = false;
  } else if (arg == "-v" || arg == "--verbose" || arg == "-q" || arg == "--quiet") {
    const auto level =
        (arg == "-v" || arg == "--verbose") ? io::Verbosity::kVerbose : io::Verbosity::kQuiet;
    if (out->verbosity != io::Verbosity::kNormal && out->verbosity != level) {
      return bad("-v and -q exclude each other");
    }
    out->verbosity = level;
  } else {
    return FlagParse::kNotMine;
  }
  return FlagParse::kTaken;
}

}  // namespace torrenty::tools
