"""File selection end to end: `torrenty serve` driven by the real transmission-remote, fetching
from a real libtorrent seeder. A file marked unwanted before the start is never created; the
others arrive byte for byte; `-f` shows the selection and `-l` shows the torrent as done.

Layout (256 KiB pieces): a.bin is exactly 2 pieces and b.bin exactly 3, so b.bin shares no piece
with a wanted file and is cleanly unwanted (a file that shares a piece with a wanted one must be
created to hold that piece's bytes).
"""
import re
import subprocess
import unittest

from harness import (LOOPBACK, KiB, TorrentyTestCase, free_port, make_tree, make_torrent,
                     wait_port_listening, wait_until)

PIECE = 256 * KiB
FILES = {"a.bin": 2 * PIECE, "b.bin": 3 * PIECE, "c.bin": 300_001}


class FileSelectionTest(TorrentyTestCase):
    def remote(self, *args, timeout=20):
        r = subprocess.run(["transmission-remote", f"{LOOPBACK}:{self.rpc_port}", *map(str, args)],
                           stdout=subprocess.PIPE, stderr=subprocess.STDOUT, timeout=timeout)
        out = r.stdout.decode(errors="replace")
        self.assertEqual(r.returncode, 0, f"transmission-remote {' '.join(map(str, args))}:\n{out}")
        return out

    def files_table(self):
        """{name: (done percent, get)} from `transmission-remote -t 1 -f`."""
        rows = {}
        for line in self.remote("-t", 1, "-f").splitlines():
            m = re.match(r"\s*(\d+):\s+(\d+)%\s+\S+\s+(Yes|No)\s+.*?(\S+)$", line)
            if m:
                rows[m.group(4).rsplit("/", 1)[-1]] = (int(m.group(2)), m.group(3), int(m.group(1)))
        return rows

    def test_unwanted_file_is_not_created_and_the_rest_verifies(self):
        src = make_tree(self.path("src", "sel"), FILES, seed=91)
        tracker_port = free_port()
        torrent = self.path("sel.torrent")
        make_torrent(src, f"http://{LOOPBACK}:{tracker_port}/announce", torrent, piece_log2=18)
        ih = self.torrenty_info_hash(torrent)
        tracker = self.tracker([ih], port=tracker_port)
        seeder = self.start_lt_seeder(torrent, self.path("src"))

        self.rpc_port = free_port()
        state, downloads = self.path("state"), self.path("downloads")
        serve = self.start_torrenty(["serve", "--state-dir", state, "--download-dir", downloads,
                                     "--rpc-port", self.rpc_port, "--port", free_port(),
                                     "--threads", 2])
        wait_port_listening(self.rpc_port, 20, proc=serve)

        # transmission-remote 3.00 sends --start-paused as session-set start-added-torrents=false.
        self.remote("--start-paused", "-a", torrent)
        wait_until(lambda: "b.bin" in self.files_table(), 20, "the torrent's files listed",
                   procs=[serve])
        self.assertRegex(self.remote("-l"), r"Stopped")
        self.assertFalse((downloads / "sel").exists(), "a paused torrent created its folder")
        b_index = self.files_table()["b.bin"][2]
        self.remote("-t", 1, "-G", b_index)
        table = self.files_table()
        self.assertEqual(table["b.bin"][1], "No", table)
        self.assertEqual(table["a.bin"][1], "Yes", table)
        self.remote("-t", 1, "-s")

        def done():
            t = self.files_table()
            return t["a.bin"][0] == 100 and t["c.bin"][0] == 100
        wait_until(done, 120, "the wanted files downloaded", procs=[serve, seeder])
        # The torrent is done when its wanted files are: 100% in the list, as Transmission shows.
        wait_until(lambda: re.search(r"^\s*1\s+100%", self.remote("-l"), re.M), 20,
                   "the torrent listed at 100%", procs=[serve])

        out = downloads / "sel"
        for name in ("a.bin", "c.bin"):
            self.assertSameData(src / name, out / name)
        self.assertFalse((out / "b.bin").exists(), "the unwanted file was created")
        table = self.files_table()
        self.assertEqual(table["b.bin"][:2], (0, "No"), table)
        self.assertEqual(table["a.bin"][:2], (100, "Yes"), table)
        self.assertEqual(table["c.bin"][:2], (100, "Yes"), table)
        info = self.remote("-t", 1, "-i")
        self.assertRegex(info, r"Percent Done: 100%")

        # The selection survives a restart of serve.
        serve.stop()
        serve2 = self.start_torrenty(["serve", "--state-dir", state, "--download-dir", downloads,
                                      "--rpc-port", self.rpc_port, "--port", free_port()],
                                     name="torrenty-2")
        wait_port_listening(self.rpc_port, 20, proc=serve2)
        wait_until(lambda: "b.bin" in self.files_table(), 20, "the torrent listed again",
                   procs=[serve2])
        self.assertEqual(self.files_table()["b.bin"][1], "No")
        wait_until(lambda: re.search(r"^\s*1\s+100%", self.remote("-l"), re.M), 30,
                   "the torrent at 100% after the restart", procs=[serve2])
        self.assertFalse((out / "b.bin").exists(), "the restart created the unwanted file")

        # Wanting it again while the torrent runs restarts it, and the rest arrives.
        self.remote("-t", 1, "-g", b_index)
        wait_until(lambda: self.files_table()["b.bin"][:2] == (100, "Yes"), 120,
                   "the file wanted again downloaded", procs=[serve2, seeder])
        self.assertSameData(src, out)
        del tracker

    def test_download_only_some_files(self):
        src = make_tree(self.path("src", "sel"), FILES, seed=93)
        torrent = self.path("sel.torrent")
        make_torrent(src, f"http://{LOOPBACK}:1/announce", torrent, piece_log2=18)
        seeder = self.start_lt_seeder(torrent, self.path("src"))
        out = self.path("out")
        res = self.run_torrenty(["download", torrent, "-o", out, "--only", "0,2", "--peer",
                                 f"{LOOPBACK}:{seeder.port}"], timeout=120)
        self.assertTorrentyOk(res, "torrenty download --only 0,2")
        for name in ("a.bin", "c.bin"):
            self.assertSameData(src / name, out / "sel" / name)
        self.assertFalse((out / "sel" / "b.bin").exists(), "the file left out was created")
        bad = self.run_torrenty(["download", torrent, "-o", out, "--only", "3"], timeout=30)
        self.assertNotEqual(bad.returncode, 0)
        self.assertIn("--only: no file 3", bad.stderr)

    def test_torrent_set_rejects_a_bad_file_index(self):
        src = make_tree(self.path("src", "sel"), FILES, seed=92)
        torrent = self.path("sel.torrent")
        make_torrent(src, f"http://{LOOPBACK}:1/announce", torrent, piece_log2=18)
        self.rpc_port = free_port()
        serve = self.start_torrenty(["serve", "--state-dir", self.path("state"), "--download-dir",
                                     self.path("downloads"), "--rpc-port", self.rpc_port,
                                     "--port", free_port()])
        wait_port_listening(self.rpc_port, 20, proc=serve)
        self.remote("--start-paused", "-a", torrent)
        r = subprocess.run(["transmission-remote", f"{LOOPBACK}:{self.rpc_port}", "-t", "1",
                            "-G", "7"], stdout=subprocess.PIPE, stderr=subprocess.STDOUT, timeout=20)
        self.assertIn("out of range", r.stdout.decode(errors="replace"))
        self.assertIsNone(serve.popen.poll())


if __name__ == "__main__":
    unittest.main()
