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
#include <cstdio>
#include <cstdlib>
#include <cstring>
#include <filesystem>
#include <string>
#include <thread>
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
    "usage: torrenty bench [--size BYTES] [--seeders N] [--piece-length BYTES]\n"
    "  Loopback benchmark: N `torrenty seed` processes serve a random payload of BYTES (default\n"
    "  1G; K/M/G suffixes) to one downloader in this process. Prints wall time, MB/s, pieces/s\n"
    "  and CPU seconds per GiB for the downloader and the seeders. Needs no tracker or network\n"
    "  beyond 127.0.0.1; temp files go under $TMPDIR (default /tmp) and are removed.\n";

double CpuSeconds(const rusage& ru) {
  return static_cast<double>(ru.ru_utime.tv_sec + ru.ru_stime.tv_sec) +
         static_cast<double>(ru.ru_utime.tv_usec + ru.ru_stime.tv_usec) / 1e6;
}

absl::Status WritePayload(const std::string& path, int64_t size) {
  const int fd = open(path.c_str(), O_WRONLY | O_CREAT | O_TRUNC | O_CLOEXEC, 0644);
  if (fd < 0) return absl::ErrnoToStatus(errno, absl::StrCat("cannot create ", path));
  // splitmix64: fast and incompressible enough for a transfer benchmark.
  uint64_t state = 0x9E3779B97F4A7C15ull;
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

struct Seeders {
  std::vector<pid_t> pids;
  double cpu_s = 0;
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

int RunBenchIn(const std::string& dir, int64_t size, int seeders, int64_t piece_length) {
  const std::string seed_dir = dir + "/seed";
  const std::string leech_dir = dir + "/leech";
  std::filesystem::create_directories(seed_dir);
  std::filesystem::create_directories(leech_dir);
  const std::string payload = seed_dir + "/payload.bin";
  std::fprintf(stderr, "bench: writing %s payload...\n",
               HumanBytes(static_cast<double>(size)).c_str());
  if (absl::Status st = WritePayload(payload, size); !st.ok()) return Fail("bench", st.message());
  io::CreateOptions copts;
  copts.piece_length = piece_length;
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
      execl(self, self, "seed", torrent_path.c_str(), "--data", seed_dir.c_str(), "--port",
            port_s.c_str(), static_cast<char*>(nullptr));
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
  engine::Bitfield none(meta->num_pieces());
  absl::StatusOr<std::unique_ptr<io::TorrentSession>> session =
      io::TorrentSession::Create(*meta, none, opts);
  if (!session.ok()) return Fail("bench", session.status().message());
  rusage before{}, after{};
  getrusage(RUSAGE_SELF, &before);
  const auto t0 = std::chrono::steady_clock::now();
  absl::Status st = (*session)->Run();
  const auto t1 = std::chrono::steady_clock::now();
  getrusage(RUSAGE_SELF, &after);
  session->reset();
  children.Stop();
  if (!st.ok()) return Fail("bench", st.message());
  if (!FilesEqual(payload, leech_dir + "/payload.bin")) {
    return Fail("bench", "downloaded data differs from the payload");
  }

  const double wall = std::chrono::duration<double>(t1 - t0).count();
  const double gib = static_cast<double>(size) / static_cast<double>(1 << 30);
  const double cpu = CpuSeconds(after) - CpuSeconds(before);
  std::printf("torrenty bench: %s payload, %u pieces of %s, %d seeder(s) on 127.0.0.1\n",
              HumanBytes(static_cast<double>(size)).c_str(), meta->num_pieces(),
              HumanBytes(static_cast<double>(meta->piece_length)).c_str(), seeders);
  std::printf("  %-22s %10s\n", "metric", "value");
  std::printf("  %-22s %10.2f\n", "wall seconds", wall);
  std::printf("  %-22s %10.0f\n", "MB/s", static_cast<double>(size) / wall / 1e6);
  std::printf("  %-22s %10.0f\n", "pieces/s", meta->num_pieces() / wall);
  std::printf("  %-22s %10.2f\n", "leecher CPU s", cpu);
  std::printf("  %-22s %10.2f\n", "leecher CPU s/GiB", cpu / gib);
  std::printf("  %-22s %10.2f\n", "seeders CPU s/GiB", children.cpu_s / gib);
  std::printf("  %-22s %10.1f\n", "peak RSS MiB", static_cast<double>(after.ru_maxrss) / 1024.0);
  std::printf("  verified: every piece SHA-1 checked and the file equal byte for byte\n");
  return 0;
}

}  // namespace

int RunBench(int argc, char** argv) {
  int64_t size = int64_t{1} << 30;
  int64_t piece_length = 1 << 20;
  int seeders = 1;
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
      size = *s;
    } else if (TakeValue(argc, argv, &i, "--piece-length", &value, &missing)) {
      if (missing) return UsageError("bench", "--piece-length needs a size, like 1M");
      absl::StatusOr<int64_t> s = ParsePieceLength(value);
      if (!s.ok()) return UsageError("bench", s.status().message());
      piece_length = *s;
    } else if (TakeValue(argc, argv, &i, "--seeders", &value, &missing)) {
      if (missing || !absl::SimpleAtoi(value, &seeders) || seeders < 1 || seeders > 16) {
        return UsageError("bench", "--seeders needs a number from 1 to 16");
      }
    } else {
      return UsageError("bench", absl::StrCat("unexpected argument '", arg, "'"));
    }
  }
  const char* tmp = std::getenv("TMPDIR");
  std::string templ = std::string(tmp != nullptr && *tmp ? tmp : "/tmp") + "/torrenty-bench-XXXXXX";
  if (mkdtemp(templ.data()) == nullptr) return Fail("bench", "cannot create a temp folder");
  const int rc = RunBenchIn(templ, size, seeders, piece_length);
  std::error_code ec;
  std::filesystem::remove_all(templ, ec);
  return rc;
}

}  // namespace torrenty::tools
