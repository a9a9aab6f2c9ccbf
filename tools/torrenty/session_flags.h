// The flags of every command that runs a session (download, seed, serve): one parser, so a flag
// added here means the same and fails the same way in each of them.
#pragma once

#include <cstdint>
#include <string>
#include <vector>

#include "absl/strings/string_view.h"
#include "io/session/session_config.h"

namespace torrenty::tools {

struct SessionFlags {
  uint16_t port = 0;
  bool port_given = false;
  engine::PeerAddress bind_address{};  // --bind ADDR (port unused)
  bool bind_given = false;
  int threads = 0;
  int hash_threads = 2;
  int max_open_files = 512;
  // --max-download-rate/--max-upload-rate, bytes/s; 0 = unlimited.
  int64_t max_download_rate = 0, max_upload_rate = 0;
  bool rates_given = false;
  int64_t piece_memory = int64_t{32} << 20;
  io::Verbosity verbosity = io::Verbosity::kNormal;
  // --no-dht, --dht-bootstrap HOST:PORT (repeatable; without it, the public routers).
  bool dht = true;
  std::vector<std::string> dht_bootstrap;
  bool local_discovery = true;    // --no-lsd clears it
  bool pex = true;                // --no-pex clears it
  bool web_seeds = true;          // --no-web-seeds clears it
  int64_t web_seed_max_rate = 0;  // --web-seed-max-rate, bytes/s per torrent; 0 = unlimited
  bool super_seed = false;        // --super-seed (seed, serve): BEP 16

  bool quiet() const { return verbosity == io::Verbosity::kQuiet; }

  // Copies the flags into io::SessionConfig or io::SessionOptions (the same field names).
  template <typename Config>
  void ApplyTo(Config* config) const {
    config->port = port;
    config->port_explicit = port_given;
    config->bind_address = bind_address;
    config->bind_given = bind_given;
    config->threads = threads;
    config->hash_threads = hash_threads;
    config->max_open_files = max_open_files;
    config->max_download_rate = max_download_rate;
    config->max_upload_rate = max_upload_rate;
    config->piece_memory_bytes = piece_memory;
    config->verbosity = verbosity;
    config->local_discovery = local_discovery;
    config->pex = pex;
    config->super_seed = super_seed;
    config->web_seeds = web_seeds;
    config->web_seed_max_rate = web_seed_max_rate;
  }
  // The DHT settings, with the state file that keeps its nodes between runs.
  io::SessionConfig::Dht Dht(std::string state_file) const;
};

// download and seed keep DHT nodes in $XDG_STATE_HOME/torrenty (~/.local/state/torrenty).
std::string DefaultDhtStateFile();

// Flags a command may leave out of the shared set; it then reports them as unknown options.
struct SessionFlagSet {
  bool piece_memory = true;
  bool super_seed = false;
};

enum class FlagParse {
  kNotMine,  // argv[*i] is not a session flag
  kTaken,    // parsed into *out; *i is past its value
  kBad,      // a usage error was printed; the command exits 2
};

FlagParse TakeSessionFlag(absl::string_view cmd, int argc, char** argv, int* i, SessionFlags* out,
                          SessionFlagSet set = {});

}  // namespace torrenty::tools
