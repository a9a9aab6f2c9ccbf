#!/usr/bin/python3
"""Extra helpers for the swarm-behaviour e2e tests (trackers, resume, choking), on top of harness.py.

- make_torrent_tiers: mktorrent with an announce-list of several tiers (each `-a` is one tier,
  commas separate the trackers of a tier).
- valid_pieces: which pieces of a single-file download already match the torrent's SHA-1s.
- throttled seeder: run as a script (`swarm_helpers.py throttled-seed ...`), a libtorrent seeder whose
  upload is rate-limited on loopback too (every IP is put in the global peer class), printing
  "SEEDING" once ready and "UP <total_payload_upload>" every 50 ms.
- StallPeer: a raw peer that handshakes, sends a full bitfield and unchoke, reads every request and
  never sends a block (threads in the test process).
- Torrenty stderr helpers.
"""
import argparse
import hashlib
import os
import socket
import subprocess
import sys
import threading
import time
from pathlib import Path

HERE = Path(__file__).resolve().parent
sys.path.insert(0, str(HERE))
from harness import LOOPBACK, PYTHON, bdecode, bencode  # noqa: E402

SELF = Path(__file__).resolve()


# --------------------------------------------------------------------------- torrents

def make_torrent_tiers(path, tiers, out, piece_log2=18):
    """A .torrent whose announce-list has the given tiers (list of lists of URLs)."""
    out = Path(out)
    if out.exists():
        out.unlink()
    argv = ["mktorrent", "-l", str(piece_log2), "-o", str(out)]
    for tier in tiers:
        argv += ["-a", ",".join(tier)]
    argv.append(str(path))
    r = subprocess.run(argv, stdout=subprocess.PIPE, stderr=subprocess.STDOUT, timeout=120)
    if r.returncode != 0:
        raise AssertionError(f"mktorrent failed ({r.returncode}): {r.stdout.decode(errors='replace')}")
    meta = bdecode(out.read_bytes())
    got = [[u.decode() for u in t] for t in meta.get(b"announce-list", [])]
    if got != [list(t) for t in tiers]:
        raise AssertionError(f"mktorrent wrote announce-list {got}, wanted {tiers}")
    return out


def torrent_facts(torrent):
    """(piece_length, total_length, [20-byte hashes]) of a single-file torrent."""
    info = bdecode(Path(torrent).read_bytes())[b"info"]
    pieces = info[b"pieces"]
    return info[b"piece length"], info[b"length"], [pieces[i:i + 20] for i in range(0, len(pieces), 20)]


def valid_pieces(torrent, data_file):
    """Indices of pieces whose bytes in data_file (single-file torrent) match their SHA-1."""
    plen, total, hashes = torrent_facts(torrent)
    good = []
    if not Path(data_file).exists():
        return good
    with open(data_file, "rb") as f:
        for i, h in enumerate(hashes):
            f.seek(i * plen)
            want = min(plen, total - i * plen)
            b = f.read(want)
            if len(b) == want and hashlib.sha1(b).digest() == h:
                good.append(i)
    return good


def popcount_bitfield(bits, num_pieces):
    """Set bits among the first num_pieces of a BEP 3 bitfield (MSB first)."""
    n = 0
    for i in range(num_pieces):
        if i // 8 < len(bits) and bits[i // 8] & (0x80 >> (i % 8)):
            n += 1
    return n


def resume_path(data_dir, ih_hex):
    return Path(data_dir) / ".torrenty" / f"{ih_hex}.resume"


# --------------------------------------------------------------------------- torrenty output

def lines_with(text, needle):
    return [l for l in text.replace("\r", "\n").splitlines() if needle in l]


def wait_for_stderr(proc, needle, timeout):
    """Wait until needle is in a Torrenty process's stderr (harness logs stderr to log_path)."""
    return proc.wait_for_output(needle, timeout, stdout_only=False)


def exit_signal(rc):
    """The signal number if rc says the process died of a signal (Popen negative or shell 128+n)."""
    if rc is None:
        return None
    if rc < 0:
        return -rc
    if 128 < rc <= 128 + 64:
        return rc - 128
    return None


# --------------------------------------------------------------------------- throttled seeder

def start_throttled_seeder(case, torrent, save_path, rate, port=None, ready_timeout=60, name=None):
    """Starts the throttled libtorrent seeder (this file as a script) through the test case's
    process list, so it is killed by PID at the end of the test. Returns the Proc (with .port)."""
    from harness import free_port
    port = port or free_port()
    argv = [PYTHON, SELF, "throttled-seed", "--torrent", torrent, "--save-path", save_path,
            "--port", port, "--rate", rate]
    p = case.start(name or f"lt-throttled-{port}", argv, separate_stdout=True)
    p.port = port
    p.wait_for_output("SEEDING", ready_timeout)
    return p


def seeder_uploaded(proc):
    """The last 'UP n' the throttled seeder printed (its libtorrent total_payload_upload)."""
    last = 0
    for line in proc.output().splitlines():
        if line.startswith("UP "):
            try:
                last = int(line.split()[1])
            except (IndexError, ValueError):
                pass
    return last


def _throttled_seed_main(argv):
    import libtorrent as lt
    ap = argparse.ArgumentParser()
    ap.add_argument("--torrent", required=True)
    ap.add_argument("--save-path", required=True)
    ap.add_argument("--port", type=int, required=True)
    ap.add_argument("--rate", type=int, required=True, help="upload limit in bytes/s")
    ap.add_argument("--timeout", type=float, default=300)
    a = ap.parse_args(argv)
    ses = lt.session({
        "listen_interfaces": f"127.0.0.1:{a.port}", "outgoing_interfaces": "127.0.0.1",
        "enable_dht": False, "enable_lsd": False, "enable_upnp": False, "enable_natpmp": False,
        "enable_incoming_utp": False, "enable_outgoing_utp": False,
        "allow_multiple_connections_per_ip": True,
        "upload_rate_limit": a.rate, "download_rate_limit": 0, "stop_tracker_timeout": 1,
        "user_agent": "torrenty-e2e-throttled-seeder",
    })
    # Loopback peers are in the unlimited local peer class by default: put every IP in the
    # global class so upload_rate_limit applies (see real-peers.md).
    f = lt.ip_filter()
    f.add_rule("0.0.0.0", "255.255.255.255", 1 << lt.session.global_peer_class_id)
    ses.set_peer_class_filter(f)
    atp = lt.add_torrent_params()
    atp.ti = lt.torrent_info(a.torrent)
    atp.save_path = a.save_path
    atp.flags = lt.torrent_flags.default_flags & ~lt.torrent_flags.auto_managed & ~lt.torrent_flags.paused
    h = ses.add_torrent(atp)
    deadline = time.monotonic() + a.timeout
    seeding = False
    last_log = 0.0
    while time.monotonic() < deadline:
        st = h.status()
        if not seeding and st.state == lt.torrent_status.seeding:
            print("SEEDING", flush=True)
            seeding = True
        if seeding:
            print(f"UP {st.total_payload_upload}", flush=True)
        now = time.monotonic()
        if now - last_log > 1:
            sys.stderr.write(f"[throttled {now:.2f}] state={st.state} peers={st.num_peers} "
                             f"up={st.total_payload_upload} rate={st.upload_payload_rate}\n")
            sys.stderr.flush()
            last_log = now
        ses.pop_alerts()
        time.sleep(0.05)
    print("TIMEOUT", flush=True)
    return 3


# --------------------------------------------------------------------------- stalled peer

PSTR = b"BitTorrent protocol"


class StallPeer:
    """Listens on 127.0.0.1; to every peer that dials it: handshake, full bitfield, unchoke; then
    reads and counts every message (requests included) and never sends a block. Connections stay
    open until stop()."""

    def __init__(self, torrent, port=0):
        info = bdecode(Path(torrent).read_bytes())[b"info"]
        self.info_hash = hashlib.sha1(bencode(info)).digest()
        self.num_pieces = len(info[b"pieces"]) // 20
        self.peer_id = b"-ST0001-" + os.urandom(6).hex().encode()
        self.requests = 0
        self.connections = 0
        self.closed_by_remote = 0
        self._lock = threading.Lock()
        self._stop = threading.Event()
        self._socks = []
        self._threads = []
        self._ls = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
        self._ls.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
        self._ls.bind((LOOPBACK, port))
        self._ls.listen(16)
        self._ls.settimeout(0.2)
        self.port = self._ls.getsockname()[1]

    def start(self):
        self._spawn(self._accept_loop)
        return self

    def stop(self):
        self._stop.set()
        try:
            self._ls.close()
        except OSError:
            pass
        for s in list(self._socks):
            try:
                s.close()
            except OSError:
                pass
        for t in self._threads:
            t.join(timeout=5)

    def _spawn(self, fn, *args):
        t = threading.Thread(target=fn, args=args, daemon=True)
        t.start()
        self._threads.append(t)

    def _accept_loop(self):
        while not self._stop.is_set():
            try:
                s, _ = self._ls.accept()
            except (socket.timeout, OSError):
                continue
            self._socks.append(s)
            with self._lock:
                self.connections += 1
            self._spawn(self._serve, s)

    def _recv(self, s, n):
        buf = b""
        while len(buf) < n:
            if self._stop.is_set():
                raise EOFError
            try:
                chunk = s.recv(n - len(buf))
            except socket.timeout:
                continue
            if not chunk:
                raise EOFError
            buf += chunk
        return buf

    def _serve(self, s):
        s.settimeout(0.5)
        try:
            hs = self._recv(s, 68)
            if hs[28:48] != self.info_hash:
                return
            s.sendall(bytes([len(PSTR)]) + PSTR + bytes(8) + self.info_hash + self.peer_id)
            n = self.num_pieces
            bits = bytearray(b"\xff" * ((n + 7) // 8))
            if n % 8:
                bits[-1] = (0xFF << (8 - n % 8)) & 0xFF
            s.sendall((1 + len(bits)).to_bytes(4, "big") + b"\x05" + bytes(bits))
            s.sendall((1).to_bytes(4, "big") + b"\x01")  # unchoke
            while True:
                length = int.from_bytes(self._recv(s, 4), "big")
                if length == 0:
                    continue
                body = self._recv(s, length)
                if body[0] == 6:
                    with self._lock:
                        self.requests += 1
        except (EOFError, OSError):
            if not self._stop.is_set():
                with self._lock:
                    self.closed_by_remote += 1


if __name__ == "__main__":
    if len(sys.argv) > 1 and sys.argv[1] == "throttled-seed":
        sys.exit(_throttled_seed_main(sys.argv[2:]))
    sys.exit("usage: swarm_helpers.py throttled-seed --torrent T --save-path D --port P --rate BPS")
