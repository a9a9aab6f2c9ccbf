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
import signal
import socket
import subprocess
import time
import unittest
from pathlib import Path

from harness import LOOPBACK, MiB, TorrentyTestCase, free_port, info_hash, make_torrent, make_tree, \
    tcp_listening, tracker_url, wait_until, write_random_file
from swarm_helpers import exit_signal, seeder_uploaded, start_throttled_seeder, torrent_facts, \
    valid_pieces, wait_for_stderr

REMOTE = "/usr/bin/transmission-remote"

# transmission-remote -l: "%6d%c  %4s  %9s  %-8s  %6.1f  %6.1f  %5s  %-11s  %s". Have and ETA may
# hold spaces ("1.00 MB", "5 min"), so the row is anchored on the status words it can print.
STATUSES = ("Stopped", "Finished", "Seeding", "Downloading", "Up & Down", "Idle", "Queued", "Verifying",
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
        r = subprocess.run(argv, stdout=subprocess.PIPE, stderr=subprocess.STDOUT, timeout=timeout)
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

    def checked_list(self, serve, timeout=60):
        """transmission-remote -l by name, once no torrent is still being checked (at start)."""
        def checked():
            rows = {r["name"]: r for r in self.remote_list(serve)}
            busy = any(r["status"] in ("Verifying", "Will Verify") for r in rows.values())
            return None if busy else [rows]  # a list, so an empty list of torrents ends the wait
        return wait_until(checked, timeout, "every torrent checked", procs=[serve], interval=0.2)[0]

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
            return most_at_once == 3 and a is not None and a["percentDone"] >= 0.25 and a
        wait_until(a_quarter_in, 60, "all three downloading at once and alpha.bin a quarter done",
                   procs=[serve, *seeders], interval=0.1)
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
        # Read once the torrent reports no peer: no piece can be verified after that.
        stopped_at = wait_until(lambda: (lambda a: a["peersConnected"] == 0 and a)(
            self.by_name(serve)["alpha.bin"]), 10, "alpha reporting no peers", procs=[serve])
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


    def tree_from_seeder(self, rate):
        """serve downloading the tree "tree" from a libtorrent seeder at `rate` bytes/s, found
        through opentracker. Returns (src, torrent, seeder, state dir, download dir, serve)."""
        tport = free_port()
        src = self.path("src")
        make_tree(src / "tree")
        tt = make_torrent(src / "tree", tracker_url(tport), self.path("tree.torrent"))
        ih = info_hash(tt)
        tracker = self.tracker([ih], port=tport)
        seeder = start_throttled_seeder(self, tt, src, rate=rate, name="lt-tree")
        tracker.wait_for_swarm(ih, 60, seeders=1, procs=[seeder])
        state, dl = self.path("state"), self.path("dl")
        serve = self.start_serve(state, dl)
        self.add(serve, tt)
        return src, tt, seeder, state, dl, serve

    def test_remove_and_delete_while_downloading_then_add_again(self):
        src, tt, seeder, state, dl, serve = self.tree_from_seeder(1 * MiB)
        wait_until(lambda: (self.by_name(serve).get("tree") or {}).get("percentDone", 0) >= 0.2, 60,
                   "a fifth of tree in", procs=[serve, seeder], interval=0.1)
        self.assertTrue((dl / "tree").is_dir())
        [row] = self.remote_list(serve)
        self.remote(serve, "-t", row["id"], "--remove-and-delete")
        self.assertEqual(self.remote_list(serve), [])
        wait_until(lambda: connections_between(serve.pid, seeder.pid) == 0, 10,
                   "connections to the seeder closed", procs=[serve])
        wait_until(lambda: not (dl / "tree").exists(), 10, "tree's data deleted", procs=[serve])
        self.assertEqual(sorted(os.listdir(state / "torrents")), [],
                         "the state dir still holds the removed torrent")

        # The same torrent again: a fresh download, complete and correct.
        self.add(serve, tt)
        self.wait_done(serve, ["tree"], 60, others=[seeder])
        self.assertSameData(src / "tree", dl / "tree")
        self.assertEqual(len(os.listdir(state / "torrents")), 2)  # .torrent and .record

    def test_remove_and_delete_right_after_completion(self):
        # The removal arrives while the completion's fsyncs may still be in flight: it waits for
        # them, then the torrent, its data and its saved state are gone, and serve goes on.
        src, tt, seeder, state, dl, serve = self.tree_from_seeder(64 * MiB)
        def complete():
            t = self.by_name(serve).get("tree")
            return t if t and t["percentDone"] >= 1 else None
        row = wait_until(complete, 60, "tree complete", procs=[serve, seeder], interval=0.01)
        self.remote(serve, "-t", row["id"], "--remove-and-delete")
        self.assertEqual(self.remote_list(serve), [])
        wait_until(lambda: not (dl / "tree").exists(), 10, "tree's data deleted", procs=[serve])
        wait_until(lambda: os.listdir(state / "torrents") == [], 10, "tree's state removed",
                   procs=[serve])
        self.add(serve, tt)
        self.wait_done(serve, ["tree"], 60, others=[seeder])
        self.assertSameData(src / "tree", dl / "tree")


class StateSurvives(ServeCase):

    def test_kill9_restart_keeps_torrents_states_and_verified_pieces(self):
        # big.bin comes from a throttled libtorrent seeder that counts what it sends, so serve is
        # killed with about half of it on disk; small.bin completes before; idle.bin has no seeder
        # and is stopped with -S right after it is added.
        tport = free_port()
        src = self.path("src")
        size = 48 * MiB
        write_random_file(src / "big.bin", size)
        write_random_file(src / "small.bin", 2 * MiB + 5)
        write_random_file(self.path("nowhere", "idle.bin"), 1 * MiB)
        tbig = make_torrent(src / "big.bin", tracker_url(tport), self.path("big.torrent"),
                            piece_log2=20)
        tsmall = make_torrent(src / "small.bin", tracker_url(tport), self.path("small.torrent"))
        tidle = make_torrent(self.path("nowhere", "idle.bin"), tracker_url(tport),
                             self.path("idle.torrent"))
        plen, total, hashes = torrent_facts(tbig)
        ihs = [info_hash(t) for t in (tbig, tsmall, tidle)]
        tracker = self.tracker(ihs, port=tport)
        seed_big = start_throttled_seeder(self, tbig, src, rate=6 * MiB, name="lt-big")
        seed_small = self.start_lt_seeder(tsmall, src)
        tracker.wait_for_swarm(ihs[0], 60, seeders=1, procs=[seed_big])
        tracker.wait_for_swarm(ihs[1], 60, seeders=1, procs=[seed_small])

        state, dl = self.path("state"), self.path("dl")
        serve = self.start_serve(state, dl, name="serve-run1")
        for t in (tbig, tsmall, tidle):
            self.add(serve, t)
        ids = {r["name"]: r["id"] for r in self.remote_list(serve)}
        self.remote(serve, "-t", ids["idle.bin"], "-S")
        self.wait_done(serve, ["small.bin"], 60, others=[seed_small])
        wait_until(lambda: seeder_uploaded(seed_big) >= size // 2, 60,
                   "half of big.bin sent", procs=[serve, seed_big], interval=0.02)
        before = {r["name"]: r for r in self.remote_list(serve)}
        serve.send_signal(signal.SIGKILL)
        self.assertEqual(exit_signal(self.wait_exit(serve, 10)), signal.SIGKILL)
        up1 = seeder_total_when_idle(seed_big)
        good = valid_pieces(tbig, dl / "big.bin")
        missing = total - sum(min(plen, total - i * plen) for i in good)
        print(f"\n  killed with {len(good)}/{len(hashes)} pieces of big.bin on disk; the seeder "
              f"had sent {up1} bytes; {missing} bytes missing")
        self.assertGreater(len(good), 0)
        self.assertLess(len(good), len(hashes), "big.bin finished before kill -9")
        self.assertEqual(before["idle.bin"]["status"], "Stopped", before)

        # Same state dir: every torrent is back, with its started or stopped state.
        serve = self.start_serve(state, dl, name="serve-run2")
        rows = self.checked_list(serve)
        self.assertEqual(set(rows), {"big.bin", "small.bin", "idle.bin"}, rows)
        self.assertEqual(rows["idle.bin"]["status"], "Stopped", rows)
        self.assertNotEqual(rows["big.bin"]["status"], "Stopped", rows)
        self.assertNotEqual(rows["small.bin"]["status"], "Stopped", rows)

        # big.bin finishes, fetching only what was missing; small.bin is complete from its data.
        rows = self.wait_done(serve, ["big.bin", "small.bin"], 90, others=[seed_big])
        up2 = seeder_total_when_idle(seed_big)
        refetched = up2 - up1
        print(f"  after the restart the seeder sent {refetched} bytes (missing {missing})")
        # Slack for the pieces in flight at the kill and endgame duplicates across shards; a
        # download that started over would send all 48 MiB.
        self.assertLessEqual(refetched, missing + 6 * MiB,
                             f"{refetched} bytes fetched again; only {missing} were missing")
        self.assertSameData(src / "big.bin", dl / "big.bin")
        self.assertSameData(src / "small.bin", dl / "small.bin")
        self.assertEqual(rows["idle.bin"]["status"], "Stopped", rows)
        idle = self.by_name(serve)["idle.bin"]
        self.assertEqual((idle["status"], idle["percentDone"]), (STOPPED, 0), idle)

    def test_sigterm_and_sigint_stop_cleanly_and_keep_state(self):
        dl = self.path("dl")
        write_random_file(dl / "here.bin", 3 * MiB + 17)
        write_random_file(self.path("nowhere", "away.bin"), 1 * MiB)
        dead_tracker = tracker_url(free_port())  # nothing listens: announces just fail
        there = make_torrent(dl / "here.bin", dead_tracker, self.path("here.torrent"))
        away = make_torrent(self.path("nowhere", "away.bin"), dead_tracker,
                            self.path("away.torrent"))
        write_random_file(self.path("nowhere", "gone.bin"), 1 * MiB)
        gone = make_torrent(self.path("nowhere", "gone.bin"), dead_tracker,
                            self.path("gone.torrent"))
        state = self.path("state")
        serve = self.start_serve(state, dl, name="serve-run1")
        self.add(serve, there)
        self.add(serve, away)
        self.add(serve, gone)
        ids = {r["name"]: r["id"] for r in self.remote_list(serve)}
        self.remote(serve, "-t", ids["away.bin"], "-S")
        self.remote(serve, "-t", ids["gone.bin"], "-r")  # removed ones stay removed
        self.wait_done(serve, ["here.bin"], 30)
        for sig, want, run in ((signal.SIGTERM, 143, 2), (signal.SIGINT, 130, 3)):
            rc, took = self.stop_serve(serve, sig)
            print(f"\n  {signal.Signals(sig).name}: exit {rc} after {took:.2f}s")
            self.assertEqual(rc, want, serve.tail())
            self.assertLess(took, 5.0, f"{took:.1f}s to stop on {sig}")
            self.assertFalse(tcp_listening(serve.rpc_port), "the RPC port still listens")
            serve = self.start_serve(state, dl, rpc_port=serve.rpc_port, name=f"serve-run{run}")
            rows = self.wait_done(serve, ["here.bin"], 30)
            self.assertEqual(set(rows), {"here.bin", "away.bin"}, rows)
            self.assertEqual(rows["away.bin"]["status"], "Stopped", rows)
            self.assertIn(rows["here.bin"]["status"], ("Seeding", "Idle"), rows)
        away_now = self.by_name(serve)["away.bin"]
        self.assertEqual((away_now["status"], away_now["percentDone"]), (STOPPED, 0), away_now)
        rc, _ = self.stop_serve(serve, signal.SIGTERM)
        self.assertEqual(rc, 143, serve.tail())



def drop_file(folder, name, data):
    """Puts a file into folder under its final name in one rename, as a finished copy would be."""
    tmp = Path(folder) / f".{name}.part"
    tmp.write_bytes(data)
    os.rename(tmp, Path(folder) / name)


class WatchFolder(ServeCase):

    def test_dropped_torrent_added_garbage_marked_invalid_sighup_scans_at_once(self):
        tport = free_port()
        src = self.path("src")
        write_random_file(src / "watched.bin", 2 * MiB + 3)
        write_random_file(src / "hupped.bin", 1 * MiB + 9)
        tw = make_torrent(src / "watched.bin", tracker_url(tport), self.path("watched.torrent"))
        th = make_torrent(src / "hupped.bin", tracker_url(tport), self.path("hupped.torrent"))
        tracker = self.tracker([info_hash(tw), info_hash(th)], port=tport)
        seeder = self.start_lt_seeder(tw, src)
        tracker.wait_for_swarm(info_hash(tw), 60, seeders=1, procs=[seeder])
        watch, dl = self.path("watch"), self.path("dl")
        watch.mkdir()
        serve = self.start_serve(self.path("state"), dl, watch=watch)

        # A .torrent dropped in is added (and downloaded), and renamed .torrent.added.
        drop_file(watch, "watched.torrent", tw.read_bytes())
        wait_until(lambda: (watch / "watched.torrent.added").is_file()
                   and not (watch / "watched.torrent").exists(), 10,
                   "watched.torrent renamed .torrent.added", procs=[serve])
        self.assertIn("watched.bin", {r["name"] for r in self.remote_list(serve)})
        self.wait_done(serve, ["watched.bin"], 60, others=[seeder])
        self.assertSameData(src / "watched.bin", dl / "watched.bin")

        # Garbage becomes .torrent.invalid; serve keeps running and answering.
        drop_file(watch, "garbage.torrent", b"d8:announce4:nope4:infoi3ee" + os.urandom(200))
        wait_until(lambda: (watch / "garbage.torrent.invalid").is_file()
                   and not (watch / "garbage.torrent").exists(), 10,
                   "garbage.torrent renamed .torrent.invalid", procs=[serve], interval=0.01)
        # The periodic scan just ran; the next is at least 2 s away.
        periodic_scan = time.monotonic()
        self.assertIsNone(serve.poll(), serve.tail())
        self.assertIn("garbage.torrent", serve.log_text())
        self.assertEqual({r["name"] for r in self.remote_list(serve)}, {"watched.bin"})

        # SIGHUP scans at once: well before the next periodic scan.
        drop_file(watch, "hupped.torrent", th.read_bytes())
        serve.send_signal(signal.SIGHUP)
        sent = time.monotonic()
        wait_until(lambda: (watch / "hupped.torrent.added").is_file(), 10,
                   "hupped.torrent added", procs=[serve], interval=0.01)
        took = time.monotonic() - sent
        print(f"\n  SIGHUP sent {sent - periodic_scan:.3f}s after a periodic scan; the drop was "
              f"added {took:.3f}s later")
        self.assertLess(time.monotonic() - periodic_scan, 1.5,
                        "the dropped file waited for the periodic scan: SIGHUP did not scan")
        self.assertEqual({r["name"] for r in self.remote_list(serve)}, {"watched.bin", "hupped.bin"})
        self.assertIsNone(serve.poll(), "serve exited on SIGHUP\n" + serve.tail())

        # What the folder added is in the state dir like anything else: back after a restart.
        rc, _ = self.stop_serve(serve, signal.SIGTERM)
        self.assertEqual(rc, 143, serve.tail())
        serve = self.start_serve(self.path("state"), dl, watch=watch, name="serve-again")
        self.assertEqual(set(self.checked_list(serve)), {"watched.bin", "hupped.bin"})
        self.assertEqual(sorted(os.listdir(watch)), ["garbage.torrent.invalid",
                                                     "hupped.torrent.added", "watched.torrent.added"])


class RpcSecurity(ServeCase):

    def test_auth_with_the_real_client_and_foreign_host(self):
        serve = self.start_serve(self.path("state"), auth="alice:s3cret")
        bare = self.remote(serve, "-l", auth=None, check=False)
        print(f"\n  without -n: exit {bare.returncode}: {bare.text.strip()[:120]!r}")
        self.assertNotEqual(bare.returncode, 0, bare.text)
        self.assertIn("401", bare.text)
        wrong = self.remote(serve, "-l", auth="alice:guess", check=False)
        self.assertNotEqual(wrong.returncode, 0, wrong.text)
        self.assertEqual(self.remote(serve, "-l", auth="alice:s3cret").returncode, 0)
        self.assertIn("Daemon version", self.remote(serve, "-si").text)

        rpc = Rpc(serve.rpc_port, auth="alice:s3cret")
        self.assertEqual(rpc.call("session-get")["result"], "success")
        body = json.dumps({"method": "session-get"}).encode()
        # DNS rebinding (CVE-2018-5702): a name the server does not know gets 421, with or without
        # credentials, before anything else.
        for host in ("evil.example.com", "evil.example.com:9091", "attacker.test."):
            status, _, data = rpc.request(body, host=host)
            self.assertEqual(status, 421, f"Host {host}: {status} {data!r}")
        status, _, _ = Rpc(serve.rpc_port).request(body, host="evil.example.com")
        self.assertEqual(status, 421)
        status, headers, _ = Rpc(serve.rpc_port).request(body)
        self.assertEqual(status, 401)
        self.assertIn("basic", headers.get("www-authenticate", "").lower())
        status, _, _ = Rpc(serve.rpc_port).request(None, path="/metrics", method="GET")
        self.assertEqual(status, 401, "/metrics answered without credentials")
        self.assertEqual(self.remote(serve, "-l").returncode, 0)

    def test_open_bind_without_auth_refused(self):
        rpc_port = free_port()
        res = self.run_torrenty(["serve", "--state-dir", self.path("state"), "--rpc-bind", "0.0.0.0",
                                 "--rpc-port", rpc_port, "--port", free_port()], timeout=20)
        lines = res.stderr_lines()
        print(f"\n  exit {res.returncode}: {lines}")
        self.assertIsNone(exit_signal(res.returncode), res.proc.tail())
        self.assertNotEqual(res.returncode, 0)
        self.assertEqual(len(lines), 1, f"expected one error line:\n{res.stderr}")
        self.assertIn("--rpc-auth", lines[0])
        self.assertIn("0.0.0.0", lines[0])
        self.assertFalse(tcp_listening(rpc_port))

    def test_bad_input_gets_errors_and_serve_keeps_answering(self):
        dl = self.path("dl")
        write_random_file(dl / "kept.bin", 1 * MiB + 1)
        tk = make_torrent(dl / "kept.bin", tracker_url(free_port()), self.path("kept.torrent"))
        serve = self.start_serve(self.path("state"), dl, extra=["--rpc-host", "Torrenty.Internal"])
        self.add(serve, tk)
        rpc = serve.rpc
        rpc.call("session-get")  # learns the session id
        # Without auth the Host check is what stands between a web page and the RPC; a name given
        # with --rpc-host (any case) and localhost are let through.
        body = json.dumps({"method": "session-get"}).encode()
        for host, want in (("evil.example.com", 421), (f"rebind.attacker.test:{serve.rpc_port}", 421),
                           (f"torrenty.internal:{serve.rpc_port}", 200), ("localhost", 200),
                           ("[::1]", 200)):
            status, _, data = rpc.request(body, host=host)
            self.assertEqual(status, want, f"Host {host}: {status} {data[:200]!r}")

        def still_answers():
            self.assertIsNone(serve.poll(), "serve died\n" + serve.tail())
            self.assertEqual(rpc.call("session-get")["result"], "success")
            self.assertEqual([r["name"] for r in self.remote_list(serve)], ["kept.bin"])

        def json_error(body, what):
            status, data = rpc.post(body)
            if 400 <= status < 500:
                return status
            self.assertEqual(status, 200, f"{what}: HTTP {status} {data[:200]!r}")
            reply = json.loads(data)
            self.assertIsInstance(reply.get("result"), str, f"{what}: {reply}")
            self.assertNotEqual(reply["result"], "success", f"{what}: {reply}")
            return reply["result"]

        bad = {
            "truncated JSON": b'{"method": "torrent-get", "arguments": {',
            "not JSON": b"\xff\xfe<xml/>",
            "a JSON string": b'"torrent-get"',
            "a JSON array": b"[]",
            "null": b"null",
            "no method": b'{"arguments": {}}',
            "method a number": b'{"method": 5}',
            "unknown method": b'{"method": "torrent-explode"}',
            "fields a string": b'{"method": "torrent-get", "arguments": {"fields": "name"}}',
            "fields of numbers": b'{"method": "torrent-get", "arguments": {"fields": [1, 2]}}',
            "ids an object": b'{"method": "torrent-stop", "arguments": {"ids": {"a": 1}}}',
            "ids a bad string": b'{"method": "torrent-start", "arguments": {"ids": "x"}}',
            "arguments a list": b'{"method": "session-get", "arguments": [1]}',
            "nested 100000 deep": b"[" * 100000,
            "nested objects": b'{"method": ' + b'{"a": ' * 20000 + b"1" + b"}" * 20000 + b"}",
            "metainfo not base64": b'{"method": "torrent-add", "arguments": {"metainfo": "%%%"}}',
            "metainfo garbage": json.dumps({"method": "torrent-add", "arguments": {
                "metainfo": base64.b64encode(b"d4:infod4:name1:xee").decode()}}).encode(),
            "no such file": json.dumps({"method": "torrent-add", "arguments": {
                "filename": str(self.path("missing.torrent"))}}).encode(),
            "download-dir a number": json.dumps({"method": "torrent-add", "arguments": {
                "metainfo": base64.b64encode(tk.read_bytes()).decode(), "download-dir": 7}}).encode(),
            "huge integer id": b'{"method": "torrent-remove", "arguments": {"ids": [1e300]}}',
        }
        for what, body in bad.items():
            got = json_error(body, what)
            print(f"\n  {what}: {got}", end="")
            still_answers()
        print()

        # Unknown ids: nothing happens to the torrents that exist.
        for method in ("torrent-get", "torrent-stop", "torrent-start", "torrent-remove",
                       "torrent-verify"):
            args = {"ids": [424242, "0" * 40]}
            if method == "torrent-get":
                args["fields"] = ["id", "name"]
            status, data = rpc.post(json.dumps({"method": method, "arguments": args}).encode())
            self.assertTrue(status == 200 or 400 <= status < 500, f"{method}: {status}")
            if status == 200:
                reply = json.loads(data)
                if method == "torrent-get" and reply["result"] == "success":
                    self.assertEqual(reply["arguments"]["torrents"], [], reply)
            still_answers()
        kept = self.by_name(serve)["kept.bin"]
        self.assertNotEqual(kept["status"], STOPPED, kept)

        # A body over the limit: refused on its Content-Length, before it is read.
        status, _, data = rpc.request(b"", headers={"Content-Length": str(64 * MiB)})
        self.assertEqual(status, 413, data)
        still_answers()
        # ...and sent for real: the connection is refused or cut, serve is unharmed.
        with socket.create_connection((LOOPBACK, serve.rpc_port), timeout=15) as s:
            s.sendall((f"POST /transmission/rpc HTTP/1.1\r\nHost: 127.0.0.1\r\n"
                       f"X-Transmission-Session-Id: {rpc.session_id}\r\n"
                       f"Content-Length: {20 * MiB}\r\n\r\n").encode())
            reply = b""
            try:
                chunk = b"x" * MiB
                for _ in range(20):
                    s.sendall(chunk)
                reply = s.recv(200)
            except (BrokenPipeError, ConnectionResetError):
                pass
            if reply:
                self.assertTrue(reply.startswith(b"HTTP/1.1 4"), reply)
        still_answers()
        # Headers that never end.
        with socket.create_connection((LOOPBACK, serve.rpc_port), timeout=15) as s:
            s.sendall(b"GET /metrics HTTP/1.1\r\nHost: 127.0.0.1\r\n")
            reply = b""
            try:
                for _ in range(64):
                    s.sendall(b"X-Filler: " + b"a" * 16000 + b"\r\n")
                reply = s.recv(200)
            except (BrokenPipeError, ConnectionResetError):
                pass
            if reply:
                self.assertTrue(reply.startswith(b"HTTP/1.1 4"), reply)
        still_answers()


if __name__ == "__main__":
    unittest.main()
