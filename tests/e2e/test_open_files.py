"""Open files of `torrenty serve` under --max-open-files: seeded torrents without peers hold no
descriptor of their data (however many there are), and a real libtorrent leecher fetching a
torrent with more files than the cap gets correct data while the process never holds more data
files open than the cap. Descriptors are counted in /proc/PID/fd.
"""
import os
import re
import time
import unittest
import urllib.request
from pathlib import Path

from harness import LOOPBACK, KiB, compare_paths, make_torrent, wait_until, write_random_file
from test_serve import Rpc, ServeCase

CAP = 4
SEEDING = 6  # Transmission's TR_STATUS_SEED


def fds(pid):
    """Targets of the descriptors process pid holds."""
    out = []
    for n in os.listdir(f"/proc/{pid}/fd"):
        try:
            out.append(os.readlink(f"/proc/{pid}/fd/{n}"))
        except OSError:
            pass  # closed while we looked
    return out


def data_fds(pid, folder):
    prefix = os.path.realpath(folder) + "/"
    return [t for t in fds(pid) if t.startswith(prefix)]


class OpenFilesUnderCap(ServeCase):

    def add_all(self, serve, torrents, downloads):
        """Adds torrents whose data is in place: paused (a running one would start as an empty
        download), verified, then started."""
        ids = []
        for t in torrents:
            reply = serve.rpc.call("torrent-add", filename=str(t), paused=True,
                                   **{"download-dir": str(downloads)})
            self.assertEqual(reply.get("result"), "success", reply)
            ids.append(reply["arguments"]["torrent-added"]["id"])
        self.assertEqual(serve.rpc.call("torrent-verify", ids=ids).get("result"), "success")

        def checked():
            ts = {t["id"]: t for t in serve.rpc.torrents(("id", "percentDone"))}
            return all(ts[i]["percentDone"] == 1 for i in ids)
        wait_until(checked, 60, "added torrents verified", procs=[serve], interval=0.1)
        self.assertEqual(serve.rpc.call("torrent-start", ids=ids).get("result"), "success")

    def wait_seeding(self, serve, count):
        def seeding():
            ts = serve.rpc.torrents(("id", "name", "status", "percentDone", "errorString"))
            for t in ts:  # the tracker is unreachable on purpose; any other error is real
                if t["errorString"]:
                    self.assertTrue(t["errorString"].startswith("tracker "), t)
            return len(ts) == count and all(t["status"] == SEEDING for t in ts)
        wait_until(seeding, 60, f"{count} torrents seeding", procs=[serve], interval=0.1)

    def test_idle_torrents_hold_no_file_and_a_leecher_never_sees_more_than_the_cap(self):
        src = self.path("src")
        downloads = self.path("downloads")
        announce = f"http://{LOOPBACK}:9/announce"  # nothing listens: no tracker is needed
        torrents = []
        for i in range(8):
            write_random_file(downloads / f"s{i}.bin", 64 * KiB + i * 1000, seed=100 + i)
            torrents.append(make_torrent(downloads / f"s{i}.bin", announce,
                                         self.path(f"s{i}.torrent"), piece_log2=15))
        # 12 files, more than the cap; 32 KiB pieces straddle file boundaries.
        multi = downloads / "multi"
        for i in range(12):
            write_random_file(multi / f"d{i % 3}" / f"f{i}.bin", 50 * KiB + i * 4321, seed=200 + i)
        multi_torrent = make_torrent(multi, announce, self.path("multi.torrent"), piece_log2=15)

        serve = self.start_serve(self.path("state"), download_dir=downloads,
                                 extra=["--max-open-files", CAP])
        self.add_all(serve, torrents[:1], downloads)
        self.wait_seeding(serve, 1)
        wait_until(lambda: not data_fds(serve.pid, downloads), 10, "no data file open (1 torrent)",
                   procs=[serve])
        one = len(fds(serve.pid))

        self.add_all(serve, torrents[1:] + [multi_torrent], downloads)
        self.wait_seeding(serve, 9)
        wait_until(lambda: not data_fds(serve.pid, downloads), 10, "no data file open (9 torrents)",
                   procs=[serve])
        nine = len(fds(serve.pid))
        # Idle torrents cost no descriptor: 9 torrents (20 files) hold what one did (give or take
        # a tracker connection that is failing at the moment).
        self.assertLessEqual(nine, one + 2, f"1 torrent: {one} fds, 9 torrents: {nine}\n"
                             + "\n".join(sorted(fds(serve.pid))))

        leech_dir = self.path("leech")
        leech_dir.mkdir()
        leecher = self.start_lt_peer(multi_torrent, leech_dir, "leech",
                                     connect=[(LOOPBACK, serve.peer_port)])
        most, samples = 0, 0
        deadline = time.monotonic() + 120
        while "DONE" not in leecher.output():
            self.assertLess(time.monotonic(), deadline, "leecher did not finish\n" + leecher.tail())
            self.assertIsNone(serve.poll(), serve.tail())
            open_now = data_fds(serve.pid, downloads)
            samples += 1
            if len(open_now) > most:
                most = len(open_now)
                worst = open_now
            self.assertLessEqual(len(open_now), CAP, "\n".join(open_now))
            time.sleep(0.002)  # sampling interval, not a wait for a condition
        self.assertIsNone(compare_paths(multi, leech_dir / "multi"))
        self.assertGreater(most, 0, f"never saw a data file open in {samples} samples")
        print(f"most data files open at once: {most} of cap {CAP} ({samples} samples): {worst}")

        metrics = urllib.request.urlopen(
            f"http://{LOOPBACK}:{serve.rpc_port}/metrics", timeout=10).read().decode()
        evictions = re.search(r"^torrenty_file_evictions_total (\d+)$", metrics, re.M)
        self.assertIsNotNone(evictions, metrics)
        self.assertGreater(int(evictions.group(1)), 0, "12 files under a cap of 4 need evictions")
        self.assertRegex(metrics, r"(?m)^torrenty_open_files \d+$")

        # The leecher leaves: with no peer and no disk work the torrent closes its files again.
        leecher.stop()
        wait_until(lambda: not data_fds(serve.pid, downloads), 20,
                   "no data file open once the leecher left", procs=[serve])


if __name__ == "__main__":
    unittest.main()
