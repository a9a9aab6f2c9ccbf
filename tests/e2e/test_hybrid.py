"""Hybrid torrents made by libtorrent 2 (v1 + v2 with BEP 47 pad files), moved both ways.

libtorrent aligns every file to a piece boundary with pad files (`.pad/N`, attr `p`); two of them
here have the same size. Torrenty must load the torrent, never create the pad files, keep the
executable bit (attr `x`), and both fetch from and serve to a libtorrent peer, whose v1 piece hashes
cover the pad bytes as zeros.
"""
import os
import stat
import subprocess
import unittest

from harness import LOOPBACK, PYTHON, KiB, TorrentyTestCase, free_port, write_random_file

NAME = "pack"
# a, b and c each end inside a 64 KiB piece, so each gets a pad file; a and c get pads of the same
# size (20 KiB), which once failed as a duplicate path.
FILES = {"a.bin": 300 * KiB, "b.bin": 200 * KiB, "c.sh": 300 * KiB, "d.bin": 10 * KiB}

MAKE_HYBRID = r"""
import sys, libtorrent as lt
src, out, tracker = sys.argv[1:4]
fs = lt.file_storage()
lt.add_files(fs, src + "/pack")
ct = lt.create_torrent(fs, 65536)  # default flags: a v1 + v2 hybrid
ct.add_tracker(tracker)
lt.set_piece_hashes(ct, src)
open(out, "wb").write(lt.bencode(ct.generate()))
"""


class HybridTorrent(TorrentyTestCase):

    def setUp(self):
        super().setUp()
        self.src = self.path("src")
        for i, (name, size) in enumerate(FILES.items()):
            write_random_file(self.src / NAME / name, size, seed=40 + i)
        os.chmod(self.src / NAME / "c.sh", 0o755)
        self.torrent = self.path("hybrid.torrent")
        # Nothing listens there: peers are given by hand.
        subprocess.run([PYTHON, "-c", MAKE_HYBRID, self.src, self.torrent,
                        f"http://{LOOPBACK}:{free_port()}/announce"], check=True, timeout=60)
        raw = self.torrent.read_bytes()
        self.assertEqual(raw.count(b"4:attr1:p"), 4, "libtorrent made other pad files")
        self.assertEqual(raw.count(b"4:.pad5:20480"), 2, "no two pad files of one size")

    def assertExactTree(self, root):
        found = sorted(str(p.relative_to(root)) for p in root.rglob("*"))
        self.assertEqual(found, sorted(FILES))  # no .pad folder, nothing else
        for name in FILES:
            self.assertSameData(self.src / NAME / name, root / name)
        self.assertTrue(os.stat(root / "c.sh").st_mode & stat.S_IXUSR, "attr x not honoured")
        self.assertFalse(os.stat(root / "a.bin").st_mode & stat.S_IXUSR)

    def test_info_hides_pad_files(self):
        res = self.run_torrenty(["info", self.torrent])
        self.assertTorrentyOk(res)
        self.assertNotIn(".pad", res.stdout)
        self.assertIn(f"total size: {sum(FILES.values())} bytes", res.stdout)

    def test_download_from_libtorrent(self):
        seed_dir = self.src
        lt = self.start_lt_seeder(self.torrent, seed_dir)
        out = self.path("out")
        p = self.start_torrenty(["download", self.torrent, "-o", out, "--port", free_port(),
                                 "--peer", f"{LOOPBACK}:{lt.port}"], name="torrenty-download")
        self.assertEqual(self.wait_exit(p, 60, others=[lt]), 0, p.tail())
        self.assertExactTree(out / NAME)

    def test_seed_to_libtorrent(self):
        seed_port = free_port()
        seed = self.start_torrenty(["seed", self.torrent, "--data", self.src, "--port", seed_port],
                                   name="torrenty-seed")
        seed.wait_for_output("seeding", 30, stdout_only=False)
        out = self.path("lt-out")
        leech = self.start_lt_peer(self.torrent, out, "leech", connect=[(LOOPBACK, seed_port)],
                                   timeout=60)
        self.assertEqual(self.wait_exit(leech, 60, others=[seed]), 0, leech.tail())
        for name in FILES:
            self.assertSameData(self.src / NAME / name, out / NAME / name)


if __name__ == "__main__":
    unittest.main()
