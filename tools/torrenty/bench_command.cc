// `torrenty bench`: the built-in end-to-end benchmark. Makes a payload in a temp folder, starts N
// `torrenty seed` child processes on 127.0.0.1, downloads through the real download path in this
// process, checks the result byte for byte and prints throughput and CPU cost.
#include <arpa/inet.h>
#include <fcntl.h>
#include <netinet/in.h>
#include <signal.h>
#include <sys/resource.h>
#include <sys/socket.h>
#include <sys/wait.h>
#include <unistd.h>

#include <chrono>
#include <cmath>
#include <cstdio>
#include <cstdlib>
#include <cstring>
#include <filesystem>
#include <optional>
#include <string>
#include <thread>
#include <utility>
#include <vector>

#include "absl/strings/numbers.h"
#include "absl/strings/str_cat.h"
#include "io/disk/recheck.h"
#include "io/disk/torrent_creator.h"
#include "io/session/torrent_session.h"
#include "tools/torrenty/cli_util.h"
#include "tools/torrenty/commands.h"

namespace torrenty::tools {
namespace {

constexpr char kBenchUsage[] =
    "usage: torrenty bench [--size BYTES] [--piece-length BYTES] [--files N] [--seeders N] "
    "[--json] [--hash-on-arrival] [--hash-chunk BYTES]\n"
    "  Loopback benchmark: N `torrenty seed` processes serve a random payload of BYTES (default\n"
    "  1G; K/M/G suffixes) to one downloader in this process. Prints pieces/s first, then wall\n"
    "  time, MB/s, CPU seconds per GiB for the downloader and the seeders and the peak RSS. Needs\n"
    "  no tracker or network beyond 127.0.0.1; temp files go under $TMPDIR (default /tmp) and\n"
    "  are removed.\n"
    "  --size BYTES          payload size (default 1G)\n"
    "  --piece-length BYTES  a power of two from 16K (default 1M)\n"
    "  --files N             split the payload into N files of equal size, 1 to 100000\n"
    "                        (default 1: a single-file torrent)\n"
    "  --seeders N           seeding processes, 1 to 16 (default 1)\n"
    "  --json                print the results as one JSON object instead of the table\n"
    "  --hash-on-arrival     hash each block as it arrives on the downloading shard instead of\n"
    "                        each whole piece on the hash pool (for comparison)\n"
    "  --hash-chunk BYTES    hash pieces longer than BYTES on the hash pool a chunk of BYTES at\n"
    "                        a time while they arrive; 0: each whole once complete\n";

constexpr int kFilesMax = 100'000;

struct BenchOptions {
  int64_t size = int64_t{1} << 30;
  int64_t piece_length = 1 << 20;
  int files = 1;
  int seeders = 1;
  bool json = false;
  bool hash_on_arrival = false;
  std::optional<int64_t> hash_chunk;  // unset: the session default
};

double CpuSeconds(const rusage& ru) {
  return static_cast<double>(ru.ru_utime.tv_sec + ru.ru_stime.tv_sec) +
         static_cast<double>(ru.ru_utime.tv_usec + ru.ru_stime.tv_usec) / 1e6;
}

// `state` carries on from file to file, so no two files of the payload are alike.
absl::Status WritePayload(const std::string& path, int64_t size, uint64_t& state) {
  const int fd = open(path.c_str(), O_WRONLY | O_CREAT | O_TRUNC | O_CLOEXEC, 0644);
  if (fd < 0) return absl::ErrnoToStatus(errno, absl::StrCat("cannot create ", path));
  // splitmix64: fast and incompressible enough for a transfer benchmark.
  std::vector<uint64_t> chunk((4 << 20) / sizeof(uint64_t));
  int64_t left = size;
  while (left > 0) {
    for (uint64_t& w : chunk) {
      uint64_t z = (state += 0x9E3779B97F4A7C15ull);
      z = (z ^ (z >> 30)) * 0xBF58476D1CE4E5B9ull;
      z = (z ^ (z >> 27)) * 0x94D049BB133111EBull;
      w = z ^ (z >> 31);
    }
    const size_t n = static_cast<size_t>(std::min<int64_t>(left, chunk.size() * 8));
    if (write(fd, chunk.data(), n) != static_cast<ssize_t>(n)) {
      const int err = errno;
      close(fd);
      return absl::ErrnoToStatus(err, absl::StrCat("cannot write ", path));
    }
    left -= static_cast<int64_t>(n);
  }
  close(fd);
  return absl::OkStatus();
}

absl::StatusOr<uint16_t> FreePort() {
  const int fd = socket(AF_INET, SOCK_STREAM | SOCK_CLOEXEC, 0);
  sockaddr_in sa{};
  sa.sin_family = AF_INET;
  sa.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
  socklen_t len = sizeof(sa);
  if (fd < 0 || bind(fd, reinterpret_cast<sockaddr*>(&sa), sizeof(sa)) != 0 ||
      getsockname(fd, reinterpret_cast<sockaddr*>(&sa), &len) != 0) {
    if (fd >= 0) close(fd);
    return absl::ErrnoToStatus(errno, "cannot find a free port");
  }
  close(fd);
  return ntohs(sa.sin_port);
}

bool PortOpen(uint16_t port) {
  const int fd = socket(AF_INET, SOCK_STREAM | SOCK_CLOEXEC, 0);
  sockaddr_in sa{};
  sa.sin_family = AF_INET;
  sa.sin_port = htons(port);
  sa.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
  const bool ok = connect(fd, reinterpret_cast<sockaddr*>(&sa), sizeof(sa)) == 0;
  close(fd);
  return ok;
}

bool FilesEqual(const std::string& a, const std::string& b) {
  FILE* fa = std::fopen(a.c_str(), "rb");
  FILE* fb = std::fopen(b.c_str(), "rb");
  bool equal = fa != nullptr && fb != nullptr;
  std::vector<char> ba(1 << 20), bb(1 << 20);
  while (equal) {
    const size_t na = std::fread(ba.data(), 1, ba.size(), fa);
    const size_t nb = std::fread(bb.data(), 1, bb.size(), fb);
    if (na != nb || std::memcmp(ba.data(), bb.data(), na) != 0) equal = false;
    if (na == 0) break;
  }
  if (fa) std::fclose(fa);
  if (fb) std::fclose(fb);
  return equal;
}

// CPU seconds a live process (all its threads) has used so far, from /proc; 0 if unreadable.
double ProcCpuSeconds(pid_t pid) {
  FILE* f = std::fopen(absl::StrCat("/proc/", pid, "/stat").c_str(), "r");
  if (f == nullptr) return 0;
  char buf[1024];
  const size_t n = std::fread(buf, 1, sizeof(buf) - 1, f);
  std::fclose(f);
  buf[n] = '\0';
  // The command name (field 2) may hold spaces: the fields that follow start after its ')'.
  const char* p = std::strrchr(buf, ')');
  unsigned long long utime = 0, stime = 0;
  if (p == nullptr || std::sscanf(p + 1, " %*c %*d %*d %*d %*d %*d %*u %*u %*u %*u %*u %llu %llu",
                                  &utime, &stime) != 2) {
    return 0;
  }
  return static_cast<double>(utime + stime) / static_cast<double>(sysconf(_SC_CLK_TCK));
}

struct Seeders {
  std::vector<pid_t> pids;
  double cpu_s = 0;
  // Over all seeders so far; the difference across the download is what serving it cost,
  // without the start-up check of the payload that the lifetime total includes.
  double LiveCpuSeconds() const {
    double s = 0;
    for (pid_t pid : pids) s += ProcCpuSeconds(pid);
    return s;
  }
  ~Seeders() { Stop(); }
  void Stop() {
    for (pid_t pid : pids) kill(pid, SIGTERM);
    for (pid_t pid : pids) {
      int status = 0;
      rusage ru{};
      if (wait4(pid, &status, 0, &ru) == pid) cpu_s += CpuSeconds(ru);
    }
    pids.clear();
  }
};

// The payload's files relative to the seed and leech folders: "payload.bin" alone, or
// "payload/NNNNNN.bin" with the first `size % files` files one byte longer.
std::vector<std::pair<std::string, int64_t>> PayloadFiles(int64_t size, int files) {
  std::vector<std::pair<std::string, int64_t>> out;
  if (files == 1) {
    out.emplace_back("payload.bin", size);
    return out;
  }
  for (int i = 0; i < files; ++i) {
    char name[32];
    std::snprintf(name, sizeof(name), "payload/%06d.bin", i);
    out.emplace_back(name, size / files + (i < size % files ? 1 : 0));
  }
  return out;
}

std::string JsonNumber(double v) {
  if (!std::isfinite(v)) return "null";
  char buf[64];
  std::snprintf(buf, sizeof(buf), "%.6g", v);
  return buf;
}

int RunBenchIn(const std::string& dir, const BenchOptions& o) {
  const int64_t size = o.size;
  const int seeders = o.seeders;
  const std::string seed_dir = dir + "/seed";
  const std::string leech_dir = dir + "/leech";
  std::filesystem::create_directories(seed_dir);
  std::filesystem::create_directories(leech_dir);
  const std::vector<std::pair<std::string, int64_t>> files = PayloadFiles(size, o.files);
  if (o.files > 1) std::filesystem::create_directories(seed_dir + "/payload");
  std::fprintf(stderr, "bench: writing %s payload in %d file(s)...\n",
               HumanBytes(static_cast<double>(size)).c_str(), o.files);
  uint64_t state = 0x9E3779B97F4A7C15ull;
  for (const auto& [name, length] : files) {
    if (absl::Status st = WritePayload(seed_dir + "/" + name, length, state); !st.ok()) {
      return Fail("bench", st.message());
    }
  }
  const std::string payload = seed_dir + "/" + (o.files > 1 ? "payload" : "payload.bin");
  io::CreateOptions copts;
  copts.piece_length = o.piece_length;
  absl::StatusOr<std::string> torrent_bytes = io::CreateTorrent(payload, copts);
  if (!torrent_bytes.ok()) return Fail("bench", torrent_bytes.status().message());
  const std::string torrent_path = dir + "/bench.torrent";
  if (absl::Status st = WriteAtomically(torrent_path, *torrent_bytes); !st.ok()) {
    return Fail("bench", st.message());
  }
  absl::StatusOr<engine::Metainfo> meta = LoadTorrent(torrent_path);
  if (!meta.ok()) return Fail("bench", meta.status().message());

  Seeders children;
  std::vector<engine::PeerAddress> peers;
  char self[4096];
  const ssize_t self_len = readlink("/proc/self/exe", self, sizeof(self) - 1);
  if (self_len <= 0) return Fail("bench", "cannot find own executable");
  self[self_len] = '\0';
  for (int i = 0; i < seeders; ++i) {
    absl::StatusOr<uint16_t> port = FreePort();
    if (!port.ok()) return Fail("bench", port.status().message());
    const std::string port_s = std::to_string(*port);
    const pid_t pid = fork();
    if (pid == 0) {
      const int devnull = open("/dev/null", O_WRONLY);
      dup2(devnull, 2);
      // The seeders know their one peer: no DHT bootstrap or multicast leaves the machine.
      execl(self, self, "seed", "--no-dht", "--no-lsd", torrent_path.c_str(), "--data",
            seed_dir.c_str(), "--port", port_s.c_str(), static_cast<char*>(nullptr));
      _exit(127);
    }
    if (pid < 0) return Fail("bench", "fork failed");
    children.pids.push_back(pid);
    peers.push_back(engine::PeerAddress{0x7F000001, *port});
  }
  for (const engine::PeerAddress& p : peers) {
    const auto deadline = std::chrono::steady_clock::now() + std::chrono::seconds(60);
    while (!PortOpen(p.port)) {
      if (std::chrono::steady_clock::now() > deadline)
        return Fail("bench", "a seeder did not start");
      std::this_thread::sleep_for(std::chrono::milliseconds(50));
    }
  }

  io::SessionOptions opts;
  opts.data_dir = leech_dir;
  opts.peers = peers;
  opts.hash_on_arrival = o.hash_on_arrival;
  if (o.hash_chunk.has_value()) opts.hash_chunk_bytes = static_cast<uint32_t>(*o.hash_chunk);
  engine::Bitfield none(meta->num_pieces());
  absl::StatusOr<std::unique_ptr<io::TorrentSession>> session =
      io::TorrentSession::Create(*meta, none, opts);
  if (!session.ok()) return Fail("bench", session.status().message());
  rusage before{}, after{};
  getrusage(RUSAGE_SELF, &before);
  const double seeders_before = children.LiveCpuSeconds();
  const auto t0 = std::chrono::steady_clock::now();
  absl::Status st = (*session)->Run();
  const auto t1 = std::chrono::steady_clock::now();
  getrusage(RUSAGE_SELF, &after);
  const double serving_cpu = children.LiveCpuSeconds() - seeders_before;
  session->reset();
  children.Stop();
  if (!st.ok()) return Fail("bench", st.message());
  for (const auto& [name, length] : files) {
    if (!FilesEqual(seed_dir + "/" + name, leech_dir + "/" + name)) {
      return Fail("bench", absl::StrCat("downloaded data differs from the payload (", name, ")"));
    }
  }

  const double wall = std::chrono::duration<double>(t1 - t0).count();
  const double gib = static_cast<double>(size) / static_cast<double>(1 << 30);
  const double cpu = CpuSeconds(after) - CpuSeconds(before);
  const double pieces_per_s = meta->num_pieces() / wall;
  const double rss_mib = static_cast<double>(after.ru_maxrss) / 1024.0;
  if (o.json) {
    std::printf(
        "{\"size_bytes\": %lld, \"piece_length\": %lld, \"pieces\": %u, \"files\": %d, "
        "\"seeders\": %d, \"wall_s\": %s, \"mb_per_s\": %s, \"pieces_per_s\": %s, "
        "\"leecher_cpu_s\": %s, \"leecher_cpu_s_per_gib\": %s, \"seeder_cpu_s\": %s, "
        "\"seeder_cpu_s_per_gib\": %s, \"seeder_serving_cpu_s\": %s, "
        "\"seeder_serving_cpu_s_per_gib\": %s, \"peak_rss_mib\": %s, \"verified\": true}\n",
        static_cast<long long>(size), static_cast<long long>(meta->piece_length),
        meta->num_pieces(), o.files, seeders, JsonNumber(wall).c_str(),
        JsonNumber(static_cast<double>(size) / wall / 1e6).c_str(),
        JsonNumber(pieces_per_s).c_str(), JsonNumber(cpu).c_str(), JsonNumber(cpu / gib).c_str(),
        JsonNumber(children.cpu_s).c_str(), JsonNumber(children.cpu_s / gib).c_str(),
        JsonNumber(serving_cpu).c_str(), JsonNumber(serving_cpu / gib).c_str(),
        JsonNumber(rss_mib).c_str());
    return 0;
  }
  std::printf(
      "torrenty bench: %s payload, %u pieces of %s, %d file(s), %d seeder(s) on 127.0.0.1\n",
      HumanBytes(static_cast<double>(size)).c_str(), meta->num_pieces(),
      HumanBytes(static_cast<double>(meta->piece_length)).c_str(), o.files, seeders);
  std::printf("  %-22s %10.0f\n", "pieces/s", pieces_per_s);
  std::printf("  %-22s %10.2f\n", "wall seconds", wall);
  std::printf("  %-22s %10.0f\n", "MB/s", static_cast<double>(size) / wall / 1e6);
  std::printf("  %-22s %10.2f\n", "leecher CPU s", cpu);
  std::printf("  %-22s %10.2f\n", "leecher CPU s/GiB", cpu / gib);
  std::printf("  %-22s %10.2f\n", "seeders CPU s/GiB", children.cpu_s / gib);
  std::printf("  %-22s %10.2f\n", "  of it serving", serving_cpu / gib);
  std::printf("  %-22s %10.1f\n", "peak RSS MiB", rss_mib);
  std::printf("  verified: every piece SHA-1 checked and every file equal byte for byte\n");
  return 0;
}

}  // namespace

int RunBench(int argc, char** argv) {
  BenchOptions o;
  for (int i = 1; i < argc; ++i) {
    absl::string_view arg = argv[i];
    std::string value;
    bool missing = false;
    if (arg == "-h" || arg == "--help") {
      std::fputs(kBenchUsage, stdout);
      return 0;
    }
    if (TakeValue(argc, argv, &i, "--size", &value, &missing)) {
      if (missing) return UsageError("bench", "--size needs a size, like 256M");
      absl::StatusOr<int64_t> s = ParseSize(value);
      if (!s.ok()) return UsageError("bench", absl::StrCat("--size: ", s.status().message()));
      o.size = *s;
    } else if (TakeValue(argc, argv, &i, "--piece-length", &value, &missing)) {
      if (missing) return UsageError("bench", "--piece-length needs a size, like 1M");
      absl::StatusOr<int64_t> s = ParsePieceLength(value);
      if (!s.ok()) return UsageError("bench", s.status().message());
      o.piece_length = *s;
    } else if (TakeValue(argc, argv, &i, "--seeders", &value, &missing)) {
      if (missing || !absl::SimpleAtoi(value, &o.seeders) || o.seeders < 1 || o.seeders > 16) {
        return UsageError("bench", "--seeders needs a number from 1 to 16");
      }
    } else if (TakeValue(argc, argv, &i, "--files", &value, &missing)) {
      if (missing || !absl::SimpleAtoi(value, &o.files) || o.files < 1 || o.files > kFilesMax) {
        return UsageError("bench", "--files needs a number from 1 to 100000");
      }
    } else if (TakeValue(argc, argv, &i, "--hash-chunk", &value, &missing)) {
      absl::StatusOr<int64_t> s = missing ? absl::InvalidArgumentError("") : ParseSize(value);
      if (value == "0") s = 0;
      if (!s.ok() || *s < 0 || *s > (int64_t{1} << 30)) {
        return UsageError("bench", "--hash-chunk needs a size from 0 to 1G, like 1M");
      }
      o.hash_chunk = *s;
    } else if (arg == "--json") {
      o.json = true;
    } else if (arg == "--hash-on-arrival") {
      o.hash_on_arrival = true;
    } else {
      return UsageError("bench", absl::StrCat("unexpected argument '", arg, "'"));
    }
  }
  if (o.files > o.size) {
    return UsageError("bench", "--files must not exceed --size: every file holds at least a byte");
  }
  const char* tmp = std::getenv("TMPDIR");
  std::string templ = std::string(tmp != nullptr && *tmp ? tmp : "/tmp") + "/torrenty-bench-XXXXXX";
  if (mkdtemp(templ.data()) == nullptr) return Fail("bench", "cannot create a temp folder");
  const int rc = RunBenchIn(templ, o);
  std::error_code ec;
  std::filesystem::remove_all(templ, ec);
  return rc;
}

}  // namespace torrenty::tools
