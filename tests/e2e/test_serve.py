"""`torrenty serve` end to end with real parts: the real transmission-remote drives it (add, list,
info, files, stop, start, remove, remove with data, session info and stats) while it downloads
several torrents at once from libtorrent and aria2c seeders found through a real opentracker; the
torrent list and verified pieces survive kill -9; the --watch folder adds dropped .torrent files;
the RPC refuses what it must (auth, foreign Host, open bind without auth, bad input) and keeps
answering; SIGTERM/SIGINT stop it cleanly and keep the state.
"""
import base64
import http.client
import json
import os
import re
import shutil
import signal
import subprocess
import time
import unittest
from pathlib import Path

from harness import LOOPBACK, MiB, TorrentyTestCase, free_port, info_hash, make_torrent, make_tree, \
    tcp_listening, torrent_name, tracker_url, wait_until, write_random_file
from swarm_helpers import exit_signal, seeder_uploaded, start_throttled_seeder, torrent_facts, \
    valid_pieces, wait_for_stderr

REMOTE = "/usr/bin/transmission-remote"

# transmission-remote -l: "%6d%c  %4s  %9s  %-8s  %6.1f  %6.1f  %5s  %-11s  %s". Have and ETA may
# hold spaces ("1.00 MB", "5 min"), so the row is anchored on the status words it can print.
STATUSES = ("Stopped", "Seeding", "Downloading", "Up & Down", "Idle", "Queued", "Verifying",
            "Will Verify")
LIST_ROW = re.compile(r"^\s*(\d+)\*?\s+(\d+%|n/a)\s+(.*?)\s+(-?[\d.]+|None)\s+(-?[\d.]+|None)\s+"
                      r"(\S+)\s+(" + "|".join(re.escape(s) for s in STATUSES) + r")\s+(.*)$")


def parse_list(text):
    """The rows of `transmission-remote -l` as dicts (id, done, status, name); the Sum line and
    the header are left out. Fails on a row it cannot read, so a format change is noticed."""
    rows = []
    for line in text.splitlines():
        if not line.strip() or line.lstrip().startswith(("ID ", "Sum:")):
            continue
        m = LIST_ROW.match(line)
        if m is None:
            raise AssertionError(f"unreadable transmission-remote -l row: {line!r}\n{text}")
        rows.append({"id": int(m.group(1)), "done": m.group(2), "status": m.group(7),
                     "name": m.group(8).strip()})
    return rows


def parse_info(text):
    """`transmission-remote -t N -i`: the 'Key: value' lines, stripped."""
    out = {}
    for line in text.splitlines():
        key, sep, value = line.strip().partition(": ")
        if sep and key not in out:
            out[key] = value.strip()
    return out


SIZE_UNITS = {"B": 1, "bytes": 1, "kB": 1000, "KB": 1000, "MB": 1000 ** 2, "GB": 1000 ** 3,
              "KiB": 1024, "MiB": 1024 ** 2, "GiB": 1024 ** 3}


def parse_size(text):
    """A transmission-remote size ("3.16 MB", "7 B", "None") in bytes (approximate)."""
    text = text.strip()
    if text == "None":
        return 0
    num, unit = text.split()
    return float(num) * SIZE_UNITS[unit]


# transmission-remote prints "-nan%" as the progress of an empty file (it divides by its length).
FILE_ROW = re.compile(r"^\s*(\d+):\s+(\S+)%\s+(\S+)\s+(Yes|No)\s+(None|[\d.]+ \S+)\s+(.*)$")


def parse_files(text):
    """`transmission-remote -t N -f`: {name: (percent, size text)} and the '(N files)' count."""
    m = re.search(r"\((\d+) files\)", text)
    count = int(m.group(1)) if m else None
    files = {}
    for line in text.splitlines():
        fm = FILE_ROW.match(line)
        if fm:
            files[fm.group(6).strip()] = (fm.group(2), fm.group(5))
    return count, files


def proc_sockets(pid):
    """Inodes of the sockets process pid holds."""
    out = set()
    fd_dir = f"/proc/{pid}/fd"
    try:
        names = os.listdir(fd_dir)
    except OSError:
        return out
    for n in names:
        try:
            link = os.readlink(f"{fd_dir}/{n}")
        except OSError:
            continue
        if link.startswith("socket:["):
            out.add(int(link[8:-1]))
    return out


def established_tcp():
    """[(local_port, remote_port, inode)] of every ESTABLISHED TCP socket (IPv4 and IPv6)."""
    rows = []
    for table in ("/proc/net/tcp", "/proc/net/tcp6"):
        try:
            with open(table) as f:
                next(f)
                for line in f:
                    fields = line.split()
                    if fields[3] != "01":
                        continue
                    rows.append((int(fields[1].rsplit(":", 1)[1], 16),
                                 int(fields[2].rsplit(":", 1)[1], 16), int(fields[9])))
        except OSError:
            continue
    return rows


def connections_between(pid_a, pid_b):
    """TCP connections with one end in process pid_a and the other in pid_b (both on this host)."""
    a, b = proc_sockets(pid_a), proc_sockets(pid_b)
    rows = established_tcp()
    ends_a = {(lp, rp) for lp, rp, ino in rows if ino in a}
    ends_b = {(rp, lp) for lp, rp, ino in rows if ino in b}
    return len(ends_a & ends_b)


def seeder_total_when_idle(seeder, timeout=15):
    """The throttled seeder's upload total once a status line printed after this call says it has
    no peer (its stderr has one a second, stamped with the shared monotonic clock)."""
    since = time.monotonic()

    def idle():
        for line in reversed(seeder.log_text().splitlines()):
            m = re.match(r"\[throttled ([\d.]+)\] .* peers=(\d+) ", line)
            if m and float(m.group(1)) > since:
                return m.group(2) == "0"
        return False

    wait_until(idle, timeout, "the seeder noticing the dropped connection", procs=[seeder])
    return seeder_uploaded(seeder)


class Rpc:
    """A minimal Transmission RPC client over http.client: answers the 409 session-id handshake,
    and lets a test send raw bytes and foreign headers."""

    def __init__(self, port, auth=None):
        self.port = port
        self.auth = auth
        self.session_id = ""

    def request(self, body, host=None, path="/transmission/rpc", headers=None, method="POST"):
        """One request on a fresh connection: (status, headers dict lowercased, body bytes)."""
        conn = http.client.HTTPConnection(LOOPBACK, self.port, timeout=15)
        try:
            conn.putrequest(method, path, skip_host=True, skip_accept_encoding=True)
            conn.putheader("Host", host or f"{LOOPBACK}:{self.port}")
            if self.auth:
                conn.putheader("Authorization",
                               "Basic " + base64.b64encode(self.auth.encode()).decode())
            conn.putheader("X-Transmission-Session-Id", self.session_id)
            for k, v in (headers or {}).items():
                conn.putheader(k, v)
            if body is not None and not any(k.lower() == "content-length" for k in (headers or {})):
                conn.putheader("Content-Length", str(len(body)))
            conn.endheaders()
            if body:
                conn.send(body)
            r = conn.getresponse()
            return r.status, {k.lower(): v for k, v in r.getheaders()}, r.read()
        finally:
            conn.close()

    def post(self, body):
        """POST to /transmission/rpc, answering one 409 with the token it carries."""
        status, headers, data = self.request(body)
        if status == 409:
            self.session_id = headers.get("x-transmission-session-id", "")
            status, headers, data = self.request(body)
        return status, data

    def call(self, method, **arguments):
        """The decoded JSON reply of one method call (any result)."""
        status, data = self.post(json.dumps({"method": method, "arguments": arguments}).encode())
        if status != 200:
            raise AssertionError(f"RPC {method}: HTTP {status}: {data[:300]!r}")
        return json.loads(data)

    def torrents(self, fields=("id", "name", "hashString", "status", "percentDone",
                               "peersConnected", "downloadDir", "error", "errorString")):
        reply = self.call("torrent-get", fields=list(fields))
        if reply.get("result") != "success":
            raise AssertionError(f"torrent-get failed: {reply}")
        return reply["arguments"]["torrents"]


STOPPED = 0  # Transmission's TR_STATUS_STOPPED


class ServeCase(TorrentyTestCase):
    """Starting `torrenty serve` and running transmission-remote against it."""

    def start_serve(self, state_dir, download_dir=None, watch=None, auth=None, rpc_port=None,
                    port=None, extra=(), name="serve"):
        rpc_port = rpc_port or free_port()
        port = port or free_port()
        args = ["serve", "--state-dir", state_dir, "--rpc-port", rpc_port, "--port", port,
                "--threads", "2"]
        if download_dir is not None:
            args += ["--download-dir", download_dir]
        if watch is not None:
            args += ["--watch", watch]
        if auth is not None:
            args += ["--rpc-auth", auth]
        args += list(extra)
        p = self.start_torrenty(args, name=name)
        wait_for_stderr(p, "serving:", 20)
        p.rpc_port, p.peer_port, p.auth = rpc_port, port, auth
        p.rpc = Rpc(rpc_port, auth)
        return p

    def remote(self, serve, *args, auth="same", check=True, timeout=30):
        """Runs the real transmission-remote against serve; returns the CompletedProcess."""
        if auth == "same":
            auth = serve.auth
        argv = [REMOTE, f"{LOOPBACK}:{serve.rpc_port}"]
        if auth:
            argv += ["-n", auth]
        argv += [str(a) for a in args]
        r = subprocess.run(argv, stdout=subprocess.PIPE, stderr=subprocess.STDOUT, timeout=timeout,
                           env=dict(os.environ, TR_AUTH=""))
        r.text = r.stdout.decode(errors="replace")
        if check and r.returncode != 0:
            self.fail(f"transmission-remote {' '.join(map(str, args))} exited {r.returncode}:\n"
                      f"{r.text}\n" + serve.tail())
        return r

    def remote_list(self, serve):
        return parse_list(self.remote(serve, "-l").text)

    def add(self, serve, torrent, *extra):
        r = self.remote(serve, "-a", torrent, *extra)
        self.assertIn('responded: "success"', r.text, f"-a {torrent}: {r.text}")

    def by_name(self, serve):
        return {t["name"]: t for t in serve.rpc.torrents()}

    def wait_done(self, serve, names, timeout, others=()):
        """Waits until every named torrent is 100% (read with transmission-remote -l)."""
        def done():
            rows = {r["name"]: r for r in self.remote_list(serve)}
            return all(n in rows and rows[n]["done"] == "100%" for n in names) and rows
        return wait_until(done, timeout, f"{names} at 100% in transmission-remote -l",
                          procs=[serve, *others], interval=0.3)

    def stop_serve(self, serve, sig, timeout=10):
        t = time.monotonic()
        serve.send_signal(sig)
        rc = self.wait_exit(serve, timeout)
        return rc, time.monotonic() - t


class TransmissionRemoteDrivesServe(ServeCase):

    def test_add_list_info_files_stop_start_remove_three_at_once(self):
        # Three torrents from three seeders, each throttled so that all three download at the same
        # time in the one serve process: A (single file) and B (a tree) from libtorrent, C (single
        # file) from aria2c. All are found through opentracker, never given by hand.
        tport = free_port()
        src = self.path("src")
        write_random_file(src / "alpha.bin", 16 * MiB + 4321)
        make_tree(src / "bravo")
        write_random_file(src / "charlie.bin", 8 * MiB + 99)
        ta = make_torrent(src / "alpha.bin", tracker_url(tport), self.path("alpha.torrent"))
        tb = make_torrent(src / "bravo", tracker_url(tport), self.path("bravo.torrent"))
        tc = make_torrent(src / "charlie.bin", tracker_url(tport), self.path("charlie.torrent"))
        ih = {n: info_hash(t) for n, t in (("a", ta), ("b", tb), ("c", tc))}
        tracker = self.tracker(list(ih.values()), port=tport)
        rate = 2 * MiB
        seed_a = start_throttled_seeder(self, ta, src, rate=rate, name="lt-alpha")
        seed_b = start_throttled_seeder(self, tb, src, rate=rate, name="lt-bravo")
        seed_c = self.start_aria2c(tc, src, seed=True, extra=[f"--max-upload-limit={rate}"])
        seeders = [seed_a, seed_b, seed_c]
        for k in ("a", "b", "c"):
            tracker.wait_for_swarm(ih[k], 60, seeders=1, procs=seeders)

        dl = self.path("dl")
        serve = self.start_serve(self.path("state"), dl)
        for t in (ta, tb, tc):
            self.add(serve, t)

        # All three move at once; stop A once a quarter of it is in.
        most_at_once = 0

        def a_quarter_in():
            nonlocal most_at_once
            ts = self.by_name(serve)
            moving = [t for t in ts.values() if 0 < t["percentDone"] < 1]
            most_at_once = max(most_at_once, len(moving))
            a = ts.get("alpha.bin")
            return a is not None and a["percentDone"] >= 0.25 and a
        wait_until(a_quarter_in, 60, "alpha.bin a quarter done", procs=[serve, *seeders], interval=0.1)
        print(f"\n  torrents downloading at the same time: {most_at_once}")
        self.assertEqual(most_at_once, 3, "the three torrents did not download at the same time")

        rows = {r["name"]: r for r in self.remote_list(serve)}
        self.assertEqual(set(rows), {"alpha.bin", "bravo", "charlie.bin"}, rows)
        ids = {n: r["id"] for n, r in rows.items()}
        self.assertEqual(len(set(ids.values())), 3, f"ids are not distinct: {ids}")
        ida, idb, idc = ids["alpha.bin"], ids["bravo"], ids["charlie.bin"]

        # -S: listed as Stopped, and its peer connections go away.
        self.assertGreater(connections_between(serve.pid, seed_a.pid), 0,
                           "no connection to alpha's seeder while it downloads")
        self.remote(serve, "-t", ida, "-S")
        rows = {r["name"]: r for r in self.remote_list(serve)}
        self.assertEqual(rows["alpha.bin"]["status"], "Stopped", rows)
        wait_until(lambda: connections_between(serve.pid, seed_a.pid) == 0, 10,
                   "alpha's peer connections closed after -S", procs=[serve])
        stopped_at = self.by_name(serve)["alpha.bin"]
        self.assertEqual(stopped_at["peersConnected"], 0, stopped_at)
        self.assertEqual(stopped_at["status"], STOPPED, stopped_at)
        self.assertLess(stopped_at["percentDone"], 1.0)

        # B and C finish while A stays where it stopped.
        self.wait_done(serve, ["bravo", "charlie.bin"], 60, others=seeders)
        later = self.by_name(serve)["alpha.bin"]
        self.assertEqual(later["percentDone"], stopped_at["percentDone"],
                         "alpha moved while stopped")
        self.assertEqual(later["status"], STOPPED)
        self.assertEqual(connections_between(serve.pid, seed_a.pid), 0)

        # -s: it starts again and finishes.
        self.remote(serve, "-t", ida, "-s")
        rows = {r["name"]: r for r in self.remote_list(serve)}
        self.assertNotEqual(rows["alpha.bin"]["status"], "Stopped", rows)
        self.wait_done(serve, ["alpha.bin", "bravo", "charlie.bin"], 60, others=seeders)
        self.assertSameData(src / "alpha.bin", dl / "alpha.bin")
        self.assertSameData(src / "bravo", dl / "bravo")
        self.assertSameData(src / "charlie.bin", dl / "charlie.bin")
        rows = {r["name"]: r for r in self.remote_list(serve)}
        for n, r in rows.items():
            self.assertEqual(r["done"], "100%", rows)
            self.assertIn(r["status"], ("Seeding", "Idle"), rows)
            self.assertEqual(r["id"], ids[n], "ids changed")

        # -i: hash, location, percent done.
        info = parse_info(self.remote(serve, "-t", ida, "-i").text)
        self.assertEqual(info.get("Hash", "").lower(), ih["a"], info)
        self.assertEqual(info.get("Name"), "alpha.bin", info)
        self.assertEqual(os.path.normpath(info.get("Location", "")), str(dl), info)
        self.assertEqual(info.get("Percent Done"), "100%", info)

        # -f: the multi-file torrent's files with their sizes.
        ftext = self.remote(serve, "-t", idb, "-f").text
        count, files = parse_files(ftext)
        tree = {str(p.relative_to(src)): p.stat().st_size
                for p in sorted((src / "bravo").rglob("*")) if p.is_file()}
        self.assertEqual(count, len(tree), ftext)
        self.assertEqual(set(files), set(tree), ftext)
        for name, size in tree.items():
            pct, shown = files[name]
            self.assertEqual(pct, "100" if size else "-nan", f"{name}: {ftext}")
            # Two decimals of kB: 10 bytes of resolution for small files, 1% for the rest.
            got = parse_size(shown)
            self.assertLessEqual(abs(got - size), max(size * 0.01, 10), f"{name}: {shown} vs {size}")

        # -st and -si answer.
        stats = self.remote(serve, "-st").text
        self.assertIn("Downloaded:", stats)
        self.assertIn("Uploaded:", stats)
        sinfo = self.remote(serve, "-si").text
        self.assertIn(f"Download directory: {dl}", sinfo)
        self.assertIn(f"Listenport: {serve.peer_port}", sinfo)

        # -r: gone from the list, data kept.
        self.remote(serve, "-t", idc, "-r")
        self.assertNotIn("charlie.bin", {r["name"] for r in self.remote_list(serve)})
        self.assertSameData(src / "charlie.bin", dl / "charlie.bin")

        # --remove-and-delete: gone from the list, and its data too.
        self.remote(serve, "-t", idb, "--remove-and-delete")
        self.assertEqual({r["name"] for r in self.remote_list(serve)}, {"alpha.bin"})
        wait_until(lambda: not (dl / "bravo").exists(), 10, "bravo's data deleted", procs=[serve])
        self.assertSameData(src / "alpha.bin", dl / "alpha.bin")
        self.assertSameData(src / "charlie.bin", dl / "charlie.bin")

        rc, took = self.stop_serve(serve, signal.SIGTERM)
        self.assertEqual(rc, 143, serve.tail())


if __name__ == "__main__":
    unittest.main()
