"""Helpers for bench/swarm: measured child processes, tracker housekeeping, a libtorrent recheck probe.

Stdlib only (plus libtorrent in the `lt-recheck` probe); run with /usr/bin/python3. Reuses
tests/e2e/harness.py (imported, never edited). Everything binds / dials 127.0.0.1 only; every child
is killed by its PID (its own process group as a last resort), and every wait is bounded.

Measurement of a child process:
  * CPU seconds: ru_utime + ru_stime from os.wait4() of the child (a dedicated reaper thread blocks
    in wait4, so the exit time and rusage are exact); while a child still runs, utime+stime from
    /proc/PID/stat (10 ms ticks) - used for "CPU during the transfer" deltas of seeders.
  * peak RSS: max(VmHWM sampled every 100 ms, ru_maxrss from wait4); RssAnon peak sampled every
    100 ms (libtorrent 2.0 memory-maps files, so its VmHWM includes file-backed pages).

  /usr/bin/python3 bench/swarm_lib.py lt-recheck --torrent T --save-path DIR [--timeout S]
prints "RECHECK wall=<s> cpu=<s> pieces=<n>" after libtorrent has checked existing data (added the
torrent without resume data, polled every 5 ms until state seeding), then exits at once.
"""
import os
import signal
import subprocess
import sys
import threading
import time
import urllib.parse
import urllib.request
from pathlib import Path

HERE = Path(__file__).resolve().parent
REPO_ROOT = HERE.parent
sys.path.insert(0, str(REPO_ROOT / "tests" / "e2e"))

import harness  # noqa: E402  (tests/e2e/harness.py)

CLK_TCK = os.sysconf("SC_CLK_TCK")
PAGE = os.sysconf("SC_PAGE_SIZE")


class Failed(Exception):
    """A run that did not complete: reported as FAILED in the table with this reason."""


# --------------------------------------------------------------------------- measured children

_live = set()
_live_lock = threading.Lock()


class Child:
    """A child process with its stdout and stderr in files, reaped by a thread blocked in os.wait4."""

    def __init__(self, name, argv, log_dir, env=None):
        self.name = name
        self.argv = [str(a) for a in argv]
        log_dir = Path(log_dir)
        log_dir.mkdir(parents=True, exist_ok=True)
        stamp = f"{int(time.monotonic() * 1000) % 100_000_000}"
        self.out_path = log_dir / f"{name}.{stamp}.out"
        self.err_path = log_dir / f"{name}.{stamp}.err"
        self.hwm = 0
        self.anon_peak = 0
        self.rc = None
        self.rusage = None
        self.end = None
        self._done = threading.Event()
        with open(self.out_path, "wb") as out, open(self.err_path, "wb") as err:
            self.start = time.monotonic()
            self.popen = subprocess.Popen(self.argv, stdin=subprocess.DEVNULL, stdout=out, stderr=err,
                                          env=env, start_new_session=True)
        self.pid = self.popen.pid
        with _live_lock:
            _live.add(self)
        threading.Thread(target=self._reap, daemon=True, name=f"reap-{self.pid}").start()

    def _reap(self):
        try:
            _, status, ru = os.wait4(self.pid, 0)
            self.end = time.monotonic()
            self.rusage = ru
            self.rc = os.waitstatus_to_exitcode(status)
        except ChildProcessError:
            self.end = time.monotonic()
            self.rc = -999
        self.popen.returncode = self.rc  # so Popen never waits for it itself
        with _live_lock:
            _live.discard(self)
        self._done.set()

    # -- state

    def exited(self):
        return self._done.is_set()

    def wait(self, timeout):
        """True if the child exited within timeout."""
        return self._done.wait(timeout)

    def sample(self):
        """Update the VmHWM / RssAnon peaks from /proc/PID/status (no-op once the child is gone)."""
        if self.exited():
            return
        try:
            with open(f"/proc/{self.pid}/status") as f:
                for line in f:
                    if line.startswith("VmHWM:"):
                        self.hwm = max(self.hwm, int(line.split()[1]) * 1024)
                    elif line.startswith("RssAnon:"):
                        self.anon_peak = max(self.anon_peak, int(line.split()[1]) * 1024)
        except (OSError, ValueError, IndexError):
            pass

    def cpu_now(self):
        """CPU seconds (user+sys, all threads) so far: exact rusage if reaped, else /proc/PID/stat."""
        if self.exited():
            return self.cpu()
        try:
            with open(f"/proc/{self.pid}/stat") as f:
                fields = f.read().rsplit(")", 1)[1].split()
            return (int(fields[11]) + int(fields[12])) / CLK_TCK  # utime, stime (fields 14, 15)
        except (OSError, ValueError, IndexError):
            return self.cpu() if self.exited() else float("nan")

    def cpu(self):
        if self.rusage is None:
            return float("nan")
        return self.rusage.ru_utime + self.rusage.ru_stime

    def peak_rss(self):
        ru = self.rusage.ru_maxrss * 1024 if self.rusage is not None else 0
        return max(self.hwm, ru)

    # -- output

    def out_text(self):
        try:
            return self.out_path.read_bytes().decode(errors="replace")
        except OSError:
            return ""

    def err_text(self):
        try:
            return self.err_path.read_bytes().decode(errors="replace")
        except OSError:
            return ""

    def tail(self, lines=6):
        text = (self.out_text() + "\n" + self.err_text()).replace("\r", "\n")
        keep = [l.strip() for l in text.splitlines() if l.strip()][-lines:]
        return " | ".join(keep)

    def describe_exit(self):
        return f"{self.name} exited rc={self.rc}: {self.tail(3)}"

    # -- stopping

    def stop(self, sig=signal.SIGTERM, grace=5.0):
        """Signal our child by PID; SIGKILL its process group (which it leads) if it lingers."""
        if not self.exited():
            try:
                os.kill(self.pid, sig)
            except ProcessLookupError:
                pass
            self.wait(grace)
        if not self.exited():
            try:
                os.killpg(self.pid, signal.SIGKILL)
            except (ProcessLookupError, PermissionError):
                pass
            self.wait(10)
        return self.rc


def stop_all_children():
    with _live_lock:
        live = list(_live)
    for c in live:
        c.stop(grace=3)


class Sampler:
    """Samples /proc/PID/status of every live child every 100 ms."""

    def __init__(self, period=0.1):
        self.period = period
        self._stop = threading.Event()
        self._t = threading.Thread(target=self._run, daemon=True, name="rss-sampler")

    def _run(self):
        while not self._stop.is_set():
            with _live_lock:
                live = list(_live)
            for c in live:
                c.sample()
            self._stop.wait(self.period)

    def __enter__(self):
        self._t.start()
        return self

    def __exit__(self, *exc):
        self._stop.set()
        self._t.join(2)
        return False


# --------------------------------------------------------------------------- bounded waits

def wait_until(cond, timeout, what, watch=(), poll=0.005):
    """Poll cond() until truthy; Failed if a watched child exits first or on timeout."""
    deadline = time.monotonic() + timeout
    while True:
        v = cond()
        if v:
            return v
        for c in watch:
            if c.exited():
                v = cond()
                if v:
                    return v
                raise Failed(f"{c.describe_exit()} (while waiting for {what})")
        if time.monotonic() > deadline:
            raise Failed(f"timeout after {timeout:.0f}s waiting for {what}")
        time.sleep(poll)


# --------------------------------------------------------------------------- tracker housekeeping

def announce(tracker_port, ih_hex, peer_port, event="stopped", left=0):
    """An HTTP announce from 127.0.0.1 for peer 127.0.0.1:peer_port (opentracker keys peers by
    ip:port, so event=stopped removes a peer that was killed without saying goodbye)."""
    q = urllib.parse.urlencode({
        "info_hash": bytes.fromhex(ih_hex), "peer_id": b"-SW0001-" + os.urandom(6).hex().encode(),
        "port": peer_port, "uploaded": 0, "downloaded": 0, "left": left,
        "event": event, "compact": 1, "numwant": 0,
    })
    url = f"http://127.0.0.1:{tracker_port}/announce?{q}"
    with urllib.request.urlopen(url, timeout=2) as r:
        return harness.bdecode(r.read())


def forget_peers(tracker_port, ih_hex, ports):
    for p in ports:
        try:
            announce(tracker_port, ih_hex, p, "stopped")
        except Exception:
            pass


# --------------------------------------------------------------------------- machine facts

def drop_caches():
    """sync; echo 3 > /proc/sys/vm/drop_caches. Returns None on success, else the reason."""
    try:
        os.sync()
        with open("/proc/sys/vm/drop_caches", "w") as f:
            f.write("3\n")
        return None
    except OSError as e:
        return str(e)


def cpu_model():
    try:
        for line in open("/proc/cpuinfo"):
            if line.startswith("model name"):
                return line.split(":", 1)[1].strip()
    except OSError:
        pass
    return "unknown"


def mem_total_gib():
    try:
        for line in open("/proc/meminfo"):
            if line.startswith("MemTotal:"):
                return int(line.split()[1]) / 1024 / 1024
    except OSError:
        pass
    return float("nan")


def version_of(argv, timeout=10):
    try:
        r = subprocess.run(argv, stdout=subprocess.PIPE, stderr=subprocess.STDOUT, timeout=timeout)
        lines = [l for l in r.stdout.decode(errors="replace").splitlines() if l.strip()]
        return lines[0].strip() if lines else "?"
    except Exception as e:  # noqa: BLE001
        return f"? ({e})"


# --------------------------------------------------------------------------- libtorrent recheck probe

def lt_recheck_main(argv):
    import argparse
    import resource

    import libtorrent as lt

    ap = argparse.ArgumentParser(prog="swarm_lib.py lt-recheck")
    ap.add_argument("--torrent", required=True)
    ap.add_argument("--save-path", required=True)
    ap.add_argument("--timeout", type=float, default=300)
    a = ap.parse_args(argv)
    port = harness.free_port()
    ses = lt.session({
        "listen_interfaces": f"127.0.0.1:{port}", "outgoing_interfaces": "127.0.0.1",
        "enable_dht": False, "enable_lsd": False, "enable_upnp": False, "enable_natpmp": False,
        "enable_incoming_utp": False, "enable_outgoing_utp": False,
        "upload_rate_limit": 0, "download_rate_limit": 0, "alert_mask": 0,
    })
    atp = lt.add_torrent_params()
    atp.ti = lt.torrent_info(a.torrent)
    atp.save_path = a.save_path
    atp.trackers = []  # no announce: this only measures the check
    atp.flags = lt.torrent_flags.default_flags & ~lt.torrent_flags.auto_managed & ~lt.torrent_flags.paused
    r0 = resource.getrusage(resource.RUSAGE_SELF)
    t0 = time.monotonic()
    h = ses.add_torrent(atp)
    seen_checking = False
    while True:
        st = h.status()
        if st.state == lt.torrent_status.seeding:
            break
        if st.errc.value():
            print(f"ERROR {st.errc.message()}", flush=True)
            os._exit(2)
        if st.state == lt.torrent_status.checking_files:
            seen_checking = True
        elif seen_checking and st.state in (lt.torrent_status.downloading, lt.torrent_status.finished):
            print(f"INCOMPLETE pieces={st.num_pieces}/{atp.ti.num_pieces()}", flush=True)
            os._exit(3)
        if time.monotonic() - t0 > a.timeout:
            print("TIMEOUT", flush=True)
            os._exit(4)
        time.sleep(0.005)
    t1 = time.monotonic()
    r1 = resource.getrusage(resource.RUSAGE_SELF)
    cpu = (r1.ru_utime + r1.ru_stime) - (r0.ru_utime + r0.ru_stime)
    print(f"RECHECK wall={t1 - t0:.4f} cpu={cpu:.4f} pieces={st.num_pieces}", flush=True)
    os._exit(0)


if __name__ == "__main__":
    if len(sys.argv) >= 2 and sys.argv[1] == "lt-recheck":
        lt_recheck_main(sys.argv[2:])
    else:
        sys.stderr.write(__doc__)
        sys.exit(2)
