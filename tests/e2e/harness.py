"""Reusable helpers for Torrenty's end-to-end tests with real peers on loopback.

Stdlib only, plus libtorrent (python3-libtorrent) for reading info-hashes; run with /usr/bin/python3.
Everything listens on / dials 127.0.0.1 only. Every process started here is killed by PID when the
test ends (TorrentyTestCase registers cleanups), and every wait has a timeout.
See shared guide "real-peers.md" for the facts behind the settings used here.
"""
import atexit
import filecmp
import hashlib
import itertools
import json
import os
import random
import shutil
import signal
import socket
import subprocess
import sys
import tempfile
import time
import unittest
import urllib.parse
import urllib.request
from pathlib import Path

HERE = Path(__file__).resolve().parent
REPO_ROOT = HERE.parent.parent
PYTHON = "/usr/bin/python3"  # has the libtorrent module; the first python3 on PATH may not
LT_PEER = HERE / "lt_peer.py"
LOOPBACK = "127.0.0.1"

KiB = 1024
MiB = 1024 * 1024


def torrenty_bin():
    b = os.environ.get("TORRENTY_BIN", "build/torrenty")
    p = Path(b)
    if not p.is_absolute():
        p = REPO_ROOT / p
    return str(p)


_sanitized = None


def sanitized_build():
    """True when TORRENTY_BIN is an ASan build: its quarantine keeps freed memory resident, so
    RSS bounds meant for the release build say nothing about it (LeakSanitizer checks leaks)."""
    global _sanitized
    if _sanitized is None:
        try:
            with open(torrenty_bin(), "rb") as f:
                data = f.read()
                _sanitized = b"libasan.so" in data or b"__asan_init" in data
        except OSError:
            _sanitized = False
    return _sanitized


# --------------------------------------------------------------------------- ports

_handed_out = set()


def free_port():
    """A TCP+UDP port on 127.0.0.1 that is free now and not handed out before in this process."""
    for _ in range(200):
        with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as s:
            s.bind((LOOPBACK, 0))
            port = s.getsockname()[1]
        if port in _handed_out or port < 10000:
            continue
        try:
            with socket.socket(socket.AF_INET, socket.SOCK_DGRAM) as u:
                u.bind((LOOPBACK, port))
        except OSError:
            continue
        _handed_out.add(port)
        return port
    raise RuntimeError("could not find a free port on 127.0.0.1")


def tcp_listening(port):
    """True if some socket is in LISTEN state on TCP port `port` (read from /proc/net/tcp{,6};
    no connection is made, so the listener sees nothing)."""
    for table in ("/proc/net/tcp", "/proc/net/tcp6"):
        try:
            with open(table) as f:
                next(f)
                for line in f:
                    fields = line.split()
                    if fields[3] == "0A" and int(fields[1].rsplit(":", 1)[1], 16) == port:
                        return True
        except OSError:
            continue
    return False


def wait_until(pred, timeout, what, procs=(), interval=0.05):
    """Polls pred() until it returns something truthy, which is returned. Fails after timeout
    seconds, or as soon as one of procs has exited (its log tail is in the message)."""
    deadline = time.monotonic() + timeout
    while True:
        v = pred()
        if v:
            return v
        for p in procs:
            if p.poll() is not None:
                raise AssertionError(f"{p.name} exited with {p.returncode} while waiting for {what}\n"
                                     + p.tail())
        if time.monotonic() > deadline:
            raise AssertionError(f"{what}: not within {timeout}s"
                                 + "".join("\n" + p.tail() for p in procs))
        time.sleep(interval)


def udp_tracker_answers(port, timeout=0.2):
    """True if a BEP 15 connect request to 127.0.0.1:port gets its connect answer."""
    txid = random.getrandbits(32)
    with socket.socket(socket.AF_INET, socket.SOCK_DGRAM) as s:
        s.settimeout(timeout)
        try:
            s.sendto((0x41727101980).to_bytes(8, "big") + (0).to_bytes(4, "big") + txid.to_bytes(4, "big"),
                     (LOOPBACK, port))
            data, _ = s.recvfrom(64)
        except OSError:  # timeout, or ICMP port unreachable
            return False
    return len(data) >= 16 and data[:4] == b"\0\0\0\0" and int.from_bytes(data[4:8], "big") == txid


def wait_port_listening(port, timeout, host=LOOPBACK, proc=None):
    """Wait until something listens on TCP port (on 127.0.0.1 or any address)."""
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if proc is not None and proc.poll() is not None:
            raise AssertionError(f"{proc.name} exited with {proc.returncode} before listening on {port}\n"
                                 + proc.tail())
        if tcp_listening(port):
            return
        time.sleep(0.05)
    raise AssertionError(f"nothing listening on {host}:{port} after {timeout}s"
                         + ("\n" + proc.tail() if proc is not None else ""))


# --------------------------------------------------------------------------- bencode

def bdecode(data):
    """Decode bencoded bytes. Returns Python objects (dict keys stay bytes)."""
    def dec(i):
        c = data[i:i + 1]
        if c == b"i":
            j = data.index(b"e", i)
            return int(data[i + 1:j]), j + 1
        if c == b"l":
            i += 1
            lst = []
            while data[i:i + 1] != b"e":
                v, i = dec(i)
                lst.append(v)
            return lst, i + 1
        if c == b"d":
            i += 1
            d = {}
            while data[i:i + 1] != b"e":
                k, i = dec(i)
                v, i = dec(i)
                d[k] = v
            return d, i + 1
        if c.isdigit():
            j = data.index(b":", i)
            n = int(data[i:j])
            return data[j + 1:j + 1 + n], j + 1 + n
        raise ValueError(f"bad bencode at offset {i}")
    v, end = dec(0)
    if end != len(data):
        raise ValueError("trailing data after bencoded value")
    return v


def bencode(v):
    if isinstance(v, int):
        return b"i%de" % v
    if isinstance(v, str):
        v = v.encode()
    if isinstance(v, bytes):
        return b"%d:%s" % (len(v), v)
    if isinstance(v, list):
        return b"l" + b"".join(bencode(x) for x in v) + b"e"
    if isinstance(v, dict):
        items = sorted((k.encode() if isinstance(k, str) else k, x) for k, x in v.items())
        return b"d" + b"".join(bencode(k) + bencode(x) for k, x in items) + b"e"
    raise TypeError(type(v))


# --------------------------------------------------------------------------- processes

_live = set()       # Procs started and not yet stopped: killed by PID at exit or on SIGTERM
_seq = itertools.count(1)


def _kill_live():
    for p in list(_live):
        try:
            p.stop(grace=2.0)
        except Exception:
            pass


def _on_sigterm(signum, frame):
    _kill_live()
    os._exit(128 + signum)


atexit.register(_kill_live)
if signal.getsignal(signal.SIGTERM) == signal.SIG_DFL:
    try:
        signal.signal(signal.SIGTERM, _on_sigterm)
    except ValueError:  # not the main thread
        pass


def off_the_network(argv):
    """Tests never reach the internet or the LAN: a torrenty session command runs with --no-dht
    unless it names its own --dht-bootstrap (the default is the public routers), and with --no-lsd
    (BEP 14 multicast would leave through the host's real interfaces). test_lsd runs torrenty
    inside network namespaces of its own, where argv[0] is `ip`, so it keeps local discovery."""
    if len(argv) < 2 or os.path.basename(argv[0]) != "torrenty" or argv[1] not in (
            "download", "seed", "serve"):
        return argv
    extra = []
    if not any(a == "--no-dht" or a.startswith("--dht-bootstrap") for a in argv):
        extra.append("--no-dht")
    if "--no-lsd" not in argv:
        extra.append("--no-lsd")
    return argv[:2] + extra + argv[2:]


class Proc:
    """A child process whose stdout+stderr go to a log file (or stderr to its own file)."""

    def __init__(self, name, argv, log_dir, cwd=None, env=None, separate_stdout=False):
        self.name = name
        self.argv = off_the_network([str(a) for a in argv])
        log_dir = Path(log_dir)
        log_dir.mkdir(parents=True, exist_ok=True)
        base = log_dir / f"{name}.{next(_seq)}"
        self.log_path = Path(str(base) + ".log")
        self.stdout_path = Path(str(base) + ".out") if separate_stdout else self.log_path
        self._log = open(self.log_path, "wb")
        self._out = open(self.stdout_path, "wb") if separate_stdout else self._log
        self.started = time.monotonic()
        try:
            self.popen = subprocess.Popen(self.argv, stdin=subprocess.DEVNULL, stdout=self._out,
                                          stderr=self._log, cwd=cwd, env=env, start_new_session=True)
        except OSError:
            self._close_logs()
            raise
        self.pid = self.popen.pid
        _live.add(self)

    @property
    def returncode(self):
        return self.popen.returncode

    def poll(self):
        return self.popen.poll()

    def wait(self, timeout):
        try:
            return self.popen.wait(timeout=timeout)
        except subprocess.TimeoutExpired:
            raise AssertionError(f"{self.name} (pid {self.pid}) still running after {timeout}s\n"
                                 + self.tail()) from None

    def send_signal(self, sig):
        if self.popen.poll() is None:
            try:
                os.kill(self.pid, sig)
            except ProcessLookupError:
                pass

    def stop(self, sig=signal.SIGTERM, grace=5.0):
        """Send sig to our child by PID, then SIGKILL its process group (led by that PID) if needed."""
        if self.popen.poll() is None:
            self.send_signal(sig)
            try:
                self.popen.wait(timeout=grace)
            except subprocess.TimeoutExpired:
                pass
        if self.popen.poll() is None:
            try:
                os.killpg(self.pid, signal.SIGKILL)  # the group we created with start_new_session
            except (ProcessLookupError, PermissionError):
                pass
            try:
                self.popen.wait(timeout=5)
            except subprocess.TimeoutExpired:
                pass
        self._close_logs()
        if self.popen.poll() is not None:
            _live.discard(self)
        return self.popen.returncode

    def _close_logs(self):
        for f in {self._log, self._out}:
            try:
                f.close()
            except OSError:
                pass

    def output(self):
        try:
            return self.stdout_path.read_bytes().decode(errors="replace")
        except OSError:
            return ""

    def log_text(self):
        try:
            return self.log_path.read_bytes().decode(errors="replace")
        except OSError:
            return ""

    def tail(self, lines=40):
        parts = []
        paths = [self.log_path] if self.stdout_path == self.log_path else [self.stdout_path, self.log_path]
        for p in paths:
            try:
                text = p.read_bytes().decode(errors="replace").replace("\r", "\n")
            except OSError:
                text = ""
            t = "\n".join(text.splitlines()[-lines:])
            parts.append(f"----- {self.name} (pid {self.pid}, rc {self.popen.returncode}) "
                         f"{p.name} tail -----\n{t}")
        return "\n".join(parts)

    def wait_for_output(self, needle, timeout, stdout_only=True):
        """Wait until needle appears in the process's output; fail early if it exits first."""
        deadline = time.monotonic() + timeout
        while True:
            text = self.output() if stdout_only else self.log_text()
            if needle in text:
                return text
            if self.popen.poll() is not None:
                text = self.output() if stdout_only else self.log_text()
                if needle in text:
                    return text
                raise AssertionError(f"{self.name} exited with {self.popen.returncode} before printing "
                                     f"{needle!r}\n" + self.tail())
            if time.monotonic() > deadline:
                raise AssertionError(f"{self.name} did not print {needle!r} within {timeout}s\n" + self.tail())
            time.sleep(0.05)


class Result:
    def __init__(self, returncode, stdout, stderr, elapsed, proc):
        self.returncode = returncode
        self.stdout = stdout
        self.stderr = stderr
        self.elapsed = elapsed
        self.proc = proc

    def stderr_lines(self):
        return [l for l in self.stderr.splitlines() if l.strip()]


# --------------------------------------------------------------------------- payloads

def write_random_file(path, size, seed=None, chunk=4 * MiB):
    """A file of `size` random bytes (os.urandom, or a seeded PRNG for reproducibility)."""
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    rng = random.Random(seed) if seed is not None else None
    with open(path, "wb") as f:
        left = size
        while left > 0:
            n = min(chunk, left)
            f.write(rng.randbytes(n) if rng else os.urandom(n))
            left -= n
    return path


# Sizes chosen so no file is a multiple of 256 KiB / 1 MiB / 16 KiB, files straddle piece
# boundaries, and one is empty. Total ~10 MiB.
DEFAULT_TREE = {
    "top.bin": 3 * MiB + 12345,
    "empty.txt": 0,
    "small.txt": 7,
    "a/one.bin": 1 * MiB - 1,
    "a/b/two.bin": 2 * MiB + 777,
    "a/b/c/deep.bin": 3 * MiB + 262145,
    "a/b/c/tiny.dat": 1,
    "z/last.bin": 333333,
}


def make_tree(root, files=None, seed=None):
    """A multi-file tree under root (nested folders, a zero-length file, odd sizes). Returns root."""
    root = Path(root)
    root.mkdir(parents=True, exist_ok=True)
    for i, (rel, size) in enumerate(sorted((files or DEFAULT_TREE).items())):
        write_random_file(root / rel, size, seed=None if seed is None else seed + i)
    return root


def tree_files(root):
    """Relative paths of all regular files under root, sorted."""
    root = Path(root)
    return sorted(str(p.relative_to(root)) for p in root.rglob("*") if p.is_file())


def sha1_file(path):
    h = hashlib.sha1()
    with open(path, "rb") as f:
        while True:
            b = f.read(4 * MiB)
            if not b:
                break
            h.update(b)
    return h.hexdigest()


def compare_paths(expected, actual):
    """None if `actual` (file or tree) equals `expected` byte for byte, else a description."""
    expected, actual = Path(expected), Path(actual)
    if not actual.exists():
        return f"{actual} does not exist"
    if expected.is_file():
        if not actual.is_file():
            return f"{actual} is not a file"
        if expected.stat().st_size != actual.stat().st_size:
            return f"{actual}: size {actual.stat().st_size} != expected {expected.stat().st_size}"
        if not filecmp.cmp(expected, actual, shallow=False):
            return f"{actual}: content differs from {expected}"
        return None
    ef, af = tree_files(expected), tree_files(actual)
    if ef != af:
        return (f"file sets differ: missing {sorted(set(ef) - set(af))}, "
                f"unexpected {sorted(set(af) - set(ef))}")
    for rel in ef:
        d = compare_paths(expected / rel, actual / rel)
        if d:
            return d
    return None


# --------------------------------------------------------------------------- torrents

def make_torrent(path, announce, out, piece_log2=18, private=False, name=None):
    """Create a .torrent for path with mktorrent (-l is log2 of the piece length: 18 = 256 KiB)."""
    out = Path(out)
    if out.exists():
        out.unlink()
    argv = ["mktorrent", "-a", announce, "-l", str(piece_log2), "-o", str(out)]
    if private:
        argv.append("-p")
    if name:
        argv += ["-n", name]
    argv.append(str(path))
    r = subprocess.run(argv, stdout=subprocess.PIPE, stderr=subprocess.STDOUT, timeout=120)
    if r.returncode != 0:
        raise AssertionError(f"mktorrent failed ({r.returncode}): {r.stdout.decode(errors='replace')}")
    return out


def info_hash(torrent):
    """The v1 info-hash of a .torrent as 40 lowercase hex digits, read with libtorrent."""
    try:
        import libtorrent as lt
    except ImportError:  # not under /usr/bin/python3: ask it
        r = subprocess.run([PYTHON, "-c", "import libtorrent as lt,sys;"
                            "print(lt.torrent_info(sys.argv[1]).info_hash())", str(torrent)],
                           stdout=subprocess.PIPE, stderr=subprocess.PIPE, timeout=30, check=True)
        return r.stdout.decode().strip().lower()
    return str(lt.torrent_info(str(torrent)).info_hash()).lower()


def info_hash_stdlib(torrent):
    """The v1 info-hash computed directly: SHA-1 of the bencoded info dictionary as stored."""
    meta = bdecode(Path(torrent).read_bytes())
    return hashlib.sha1(bencode(meta[b"info"])).hexdigest()


def torrent_name(torrent):
    meta = bdecode(Path(torrent).read_bytes())
    return meta[b"info"][b"name"].decode()


def parse_info_hash_line(text):
    """The 40-hex value of an 'info-hash: ...' line in `torrenty info` output, or None."""
    for line in text.splitlines():
        if line.strip().lower().startswith("info-hash:"):
            return line.split(":", 1)[1].strip().lower()
    return None


# --------------------------------------------------------------------------- opentracker

def tracker_url(port):
    return f"http://{LOOPBACK}:{port}/announce"


class Opentracker:
    """opentracker on 127.0.0.1 with a whitelist of the given info-hashes (hex).

    with Opentracker(workdir, [ih], port=p) as t: ... t.announce_url ...
    Allocate the port first (free_port()) when the torrent needs the announce URL before its
    info-hash is known; the announce URL is not part of the info-hash.
    """

    def __init__(self, workdir, info_hashes, port=None, ready_timeout=20.0):
        self.workdir = Path(workdir)
        self.info_hashes = [h.lower() for h in info_hashes]
        for h in self.info_hashes:
            if len(h) != 40 or any(c not in "0123456789abcdef" for c in h):
                raise ValueError(f"not a hex info-hash: {h!r}")
        self.port = port or free_port()
        self.ready_timeout = ready_timeout
        self.proc = None

    @property
    def announce_url(self):
        return tracker_url(self.port)

    def announce(self, ih_hex, event="stopped", port=6881, left=0, peer_id=b"-TE0001-readinesspol",
                 numwant=0):
        """One HTTP announce to this tracker; returns the decoded answer. event=stopped adds no peer."""
        # quote_via=quote: '%20', never '+', for a 0x20 byte (opentracker does not decode '+')
        params = {
            "info_hash": bytes.fromhex(ih_hex), "peer_id": peer_id,
            "port": port, "uploaded": 0, "downloaded": 0, "left": left,
            "compact": 1, "numwant": numwant,
        }
        if event:
            params["event"] = event
        q = urllib.parse.urlencode(params, quote_via=urllib.parse.quote)
        with urllib.request.urlopen(f"{self.announce_url}?{q}", timeout=2) as r:
            return bdecode(r.read())

    def scrape(self, ih_hex):
        """(seeders, leechers) the tracker knows for an info-hash."""
        q = "info_hash=" + urllib.parse.quote(bytes.fromhex(ih_hex), safe="")
        url = f"http://{LOOPBACK}:{self.port}/scrape?{q}"
        with urllib.request.urlopen(url, timeout=2) as r:
            resp = bdecode(r.read())
        f = resp.get(b"files", {}).get(bytes.fromhex(ih_hex), {})
        return f.get(b"complete", 0), f.get(b"incomplete", 0)

    def wait_for_swarm(self, ih_hex, timeout, seeders=0, leechers=0, procs=()):
        """Wait until the tracker counts at least that many seeders and leechers for ih_hex
        (e.g. until a leecher that never dials loopback peers has announced itself)."""
        deadline = time.monotonic() + timeout
        last = None
        while True:
            try:
                last = self.scrape(ih_hex)
                if last[0] >= seeders and last[1] >= leechers:
                    return last
            except Exception as e:
                last = e
            for p in procs:
                if p.poll() is not None:
                    raise AssertionError(f"{p.name} exited with {p.returncode} before it announced\n"
                                         + p.tail())
            if time.monotonic() > deadline:
                raise AssertionError(f"tracker never saw {seeders} seeder(s) and {leechers} leecher(s) "
                                     f"for {ih_hex} within {timeout}s (last: {last})")
            time.sleep(0.2)

    def start(self):
        root = self.workdir / f"opentracker-{self.port}"
        root.mkdir(parents=True, exist_ok=True)
        # It chroots to root and drops to nobody: root and every parent must be world-readable.
        p = root
        while True:
            mode = p.stat().st_mode
            if (mode & 0o005) != 0o005 and p != Path("/"):
                os.chmod(p, (mode & 0o7777) | 0o005)
            if p == p.parent:
                break
            p = p.parent
        wl = root / "whitelist.txt"
        wl.write_text("".join(h + "\n" for h in self.info_hashes))
        os.chmod(wl, 0o644)
        conf = root / "opentracker.conf"
        conf.write_text(f"access.whitelist /whitelist.txt\ntracker.rootdir {root}\ntracker.user nobody\n")
        os.chmod(conf, 0o644)
        self.proc = Proc("opentracker", ["opentracker", "-f", conf, "-i", LOOPBACK,
                                         "-p", self.port, "-P", self.port], self.workdir / "logs")
        deadline = time.monotonic() + self.ready_timeout
        pending = list(self.info_hashes)
        last_err = None
        while pending:
            if self.proc.poll() is not None:
                raise AssertionError(f"opentracker exited with {self.proc.returncode}\n" + self.proc.tail())
            if time.monotonic() > deadline:
                self.stop()
                raise AssertionError(f"opentracker not ready within {self.ready_timeout}s: {last_err}\n"
                                     + self.proc.tail())
            try:
                resp = self.announce(pending[0])
                if b"interval" in resp and b"failure reason" not in resp:
                    pending.pop(0)
                    continue
                last_err = resp
            except Exception as e:  # not listening yet, whitelist not loaded, ...
                last_err = e
            time.sleep(0.1)
        # The UDP side (-P) is served by its own thread: wait until it answers too.
        wait_until(lambda: udp_tracker_answers(self.port), self.ready_timeout, "opentracker UDP connect",
                   procs=[self.proc])
        return self

    def stop(self):
        if self.proc is not None:
            self.proc.stop()

    def __enter__(self):
        return self.start()

    def __exit__(self, *exc):
        self.stop()
        return False


# --------------------------------------------------------------------------- test case base

class TorrentyTestCase(unittest.TestCase):
    """Base class: a temp work dir per test, helpers that start peers and kill them by PID at the
    end of the test (also on failure), and log tails printed when a test fails."""

    def setUp(self):
        self.t0 = time.monotonic()
        self.workdir = Path(tempfile.mkdtemp(prefix=f"torrenty-e2e-{self._testMethodName}-"))
        os.chmod(self.workdir, 0o755)
        self.logdir = self.workdir / "logs"
        self.logdir.mkdir()
        self.procs = []
        if not os.environ.get("TORRENTY_E2E_KEEP"):
            self.addCleanup(shutil.rmtree, self.workdir, True)
        # Registered after rmtree, so it runs before it (cleanups are LIFO).
        self.addCleanup(self._stop_all_and_report)

    def _failed(self):
        # outcome.success is reset inside cleanups, so look for this test in the result's lists
        result = getattr(getattr(self, "_outcome", None), "result", None)
        if result is None:
            return False
        for t, _ in list(getattr(result, "failures", [])) + list(getattr(result, "errors", [])):
            if t is self or getattr(t, "test_case", None) is self:
                return True
        return False

    def _stop_all_and_report(self):
        for p in reversed(self.procs):
            p.stop()
        if self._failed():
            sys.stderr.write(f"\n===== logs of failed test {self.id()} (workdir {self.workdir}) =====\n")
            for p in self.procs:
                sys.stderr.write(p.tail() + "\n")
            sys.stderr.flush()
        sys.stderr.write(f"[{self._testMethodName}: {time.monotonic() - self.t0:.1f}s] ")

    # -- generic

    def path(self, *parts):
        p = self.workdir.joinpath(*parts)
        return p

    def start(self, name, argv, **kw):
        p = Proc(name, argv, self.logdir, **kw)
        self.procs.append(p)
        return p

    def tracker(self, info_hashes, port=None):
        t = Opentracker(self.workdir, info_hashes, port=port)
        try:
            t.start()
        finally:
            if t.proc is not None:
                self.procs.append(t.proc)
        return t

    def assertSameData(self, expected, actual):
        d = compare_paths(expected, actual)
        if d:
            self.fail(f"data mismatch: {d}")

    # -- torrenty

    def start_torrenty(self, args, name="torrenty", cwd=None):
        """Start the torrenty binary (TORRENTY_BIN) in the background; stdout and stderr logged."""
        b = torrenty_bin()
        if not os.access(b, os.X_OK):
            self.fail(f"torrenty binary not found or not executable: {b} (set TORRENTY_BIN or run tools/setup)")
        return self.start(name, [b] + [str(a) for a in args], separate_stdout=True, cwd=cwd)

    def run_torrenty(self, args, timeout=60, name="torrenty", cwd=None):
        """Run torrenty to completion (bounded by timeout); returns a Result."""
        t = time.monotonic()
        p = self.start_torrenty(args, name=name, cwd=cwd)
        try:
            rc = p.popen.wait(timeout=timeout)
        except subprocess.TimeoutExpired:
            p.stop(signal.SIGKILL, grace=0)
            self.fail(f"torrenty {' '.join(map(str, args))} did not finish within {timeout}s\n" + p.tail())
        p.stop()
        return Result(rc, p.output(), p.log_text(), time.monotonic() - t, p)

    def assertTorrentyOk(self, res, what="torrenty"):
        if res.returncode != 0:
            self.fail(f"{what} exited with {res.returncode} after {res.elapsed:.1f}s\n" + res.proc.tail())

    def torrenty_info_hash(self, torrent):
        r = self.run_torrenty(["info", torrent], timeout=15, name="torrenty-info")
        self.assertTorrentyOk(r, "torrenty info")
        ih = parse_info_hash_line(r.stdout)
        if ih is None:
            self.fail(f"no 'info-hash:' line in torrenty info output:\n{r.stdout}")
        return ih

    # -- libtorrent

    def start_lt_peer(self, torrent, save_path, mode, port=None, connect=(), stop_after_bytes=None,
                      timeout=600, name=None, download_rate=None, lsd=False, wrap=(),
                      ipv6=False, magnet=None, upload_rate=None, print_peers=False):
        port = port or free_port()
        source = ["--magnet", magnet] if magnet else ["--torrent", torrent]
        argv = [PYTHON, LT_PEER] + source + ["--save-path", save_path, "--port", port,
                                             "--mode", mode, "--timeout", timeout]
        for c in connect:
            argv += ["--connect", c if isinstance(c, str) else f"{c[0]}:{c[1]}"]
        if stop_after_bytes is not None:
            argv += ["--stop-after-bytes", stop_after_bytes]
        if download_rate is not None:
            argv += ["--download-rate", download_rate]
        if lsd:
            argv += ["--lsd"]
        if upload_rate is not None:
            argv += ["--upload-rate", upload_rate]
        if print_peers:
            argv += ["--print-peers"]
        if ipv6:
            argv += ["--ipv6"]
        p = self.start(name or f"lt-{mode}-{port}", list(wrap) + argv, separate_stdout=True)
        p.port = port
        return p

    def start_lt_seeder(self, torrent, save_path, ready_timeout=60, **kw):
        """A libtorrent seeder that has checked its data and is in state seeding."""
        p = self.start_lt_peer(torrent, save_path, "seed", **kw)
        p.wait_for_output("SEEDING", ready_timeout)
        return p

    # -- aria2c

    def start_aria2c(self, torrent, out_dir, port=None, seed=False, extra=()):
        port = port or free_port()
        argv = ["aria2c", f"--dir={out_dir}", "--enable-dht=false", "--enable-dht6=false",
                "--bt-enable-lpd=false", "--enable-peer-exchange=false", "--disable-ipv6=true",
                f"--listen-port={port}", "--file-allocation=none", "--follow-torrent=mem",
                "--console-log-level=notice", "--summary-interval=1", "--interface=127.0.0.1"]
        if seed:
            argv += ["--check-integrity=true", "--bt-seed-unverified=false", "--seed-time=1000000",
                     "--seed-ratio=0.0"]
        else:
            argv += ["--seed-time=0"]
        argv += list(extra) + [str(torrent)]
        p = self.start(f"aria2c-{port}", argv)
        p.port = port
        return p

    def aria2_show(self, torrent):
        r = subprocess.run(["aria2c", "-S", str(torrent)], stdout=subprocess.PIPE, stderr=subprocess.STDOUT,
                           timeout=30)
        return r.returncode, r.stdout.decode(errors="replace")

    # -- transmission-cli

    def start_transmission(self, torrent, out_dir, port=None):
        """transmission-cli leecher; p.done_marker appears when its completion hook runs."""
        port = port or free_port()
        conf = self.workdir / f"transmission-{port}"
        conf.mkdir()
        Path(out_dir).mkdir(parents=True, exist_ok=True)
        settings = {
            "dht-enabled": False, "lpd-enabled": False, "pex-enabled": False, "utp-enabled": False,
            "bind-address-ipv4": LOOPBACK, "bind-address-ipv6": "::1",
            "peer-port": port, "peer-port-random-on-start": False, "port-forwarding-enabled": False,
            "speed-limit-up-enabled": False, "speed-limit-down-enabled": False,
            "alt-speed-enabled": False, "blocklist-enabled": False, "encryption": 1,
            "download-dir": str(out_dir), "incomplete-dir-enabled": False, "rpc-enabled": False,
            "message-level": 3,
        }
        (conf / "settings.json").write_text(json.dumps(settings, indent=1))
        marker = self.workdir / f"transmission-{port}.done"
        hook = self.workdir / f"transmission-{port}-done.sh"
        hook.write_text(f"#!/bin/sh\ntouch '{marker}'\n")
        os.chmod(hook, 0o755)
        argv = ["transmission-cli", "-g", conf, "-w", out_dir, "-p", port, "-f", hook,
                "-D", "-U", "-M", "-et", "-B", torrent]
        p = self.start(f"transmission-{port}", argv)
        p.port = port
        p.done_marker = marker
        return p

    def wait_for_file(self, path, timeout, proc=None, others=()):
        """Wait until path exists; fail early if proc exits first."""
        deadline = time.monotonic() + timeout
        while not Path(path).exists():
            if proc is not None and proc.poll() is not None and not Path(path).exists():
                self.fail(f"{proc.name} exited with {proc.returncode} before {path} appeared\n" + proc.tail())
            for o in others:
                if o.poll() is not None:
                    self.fail(f"{o.name} exited early with {o.returncode}\n" + o.tail())
            if time.monotonic() > deadline:
                self.fail(f"{path} did not appear within {timeout}s\n"
                          + "\n".join(p.tail() for p in ([proc] if proc else []) + list(others)))
            time.sleep(0.1)

    def wait_exit(self, proc, timeout, others=()):
        """Wait for proc to exit (bounded); fail early if one of `others` exits first."""
        deadline = time.monotonic() + timeout
        while proc.poll() is None:
            for o in others:
                if o.poll() is not None:
                    self.fail(f"{o.name} exited early with {o.returncode} while waiting for {proc.name}\n"
                              + o.tail() + "\n" + proc.tail())
            if time.monotonic() > deadline:
                self.fail(f"{proc.name} did not finish within {timeout}s\n" + proc.tail()
                          + "".join("\n" + o.tail() for o in others))
            time.sleep(0.1)
        return proc.returncode
