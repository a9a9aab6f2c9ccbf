"""The disk side against real files: sparse files of zeros seed, memory at start-up and while
seeding does not grow with the piece length, a planted .torrenty symlink is not followed, and an
existing file longer than the torrent's loses its stale tail.
"""
import os
import signal
import socket
import struct
import subprocess
import sys
import time
import unittest

from harness import LOOPBACK, MiB, TorrentyTestCase, free_port, info_hash, make_torrent, \
    torrenty_bin, tracker_url, wait_port_listening, write_random_file
from evil_peer import handshake, msg, recv_exact
from swarm_helpers import resume_path

# Runs argv as the only child of a fresh interpreter and prints that child's peak RSS in KiB, so no
# other process of the test run can contribute to the number.
# The wrapper's own timeout kills the child (subprocess.run does), so nothing outlives the test.
PEAK_RSS_WRAPPER = (
    "import resource, subprocess, sys\n"
    "try:\n"
    "    rc = subprocess.run(sys.argv[1:], stdout=subprocess.DEVNULL, timeout=150).returncode\n"
    "except subprocess.TimeoutExpired:\n"
    "    rc = 'timeout'\n"
    "print(rc, resource.getrusage(resource.RUSAGE_CHILDREN).ru_maxrss)\n"
)


def vm_hwm_bytes(pid):
    """Peak resident set size of a live process (VmHWM in /proc/PID/status)."""
    with open(f"/proc/{pid}/status") as f:
        for line in f:
            if line.startswith("VmHWM:"):
                return int(line.split()[1]) * 1024
    raise AssertionError(f"no VmHWM for pid {pid}")


class Disk(TorrentyTestCase):

    def create(self, path, out, piece_length):
        res = self.run_torrenty(["create", path, "--tracker", tracker_url(free_port()), "-o", out,
                                 "--piece-length", piece_length], timeout=120, name="torrenty-create")
        self.assertTorrentyOk(res, "torrenty create")
        return out

    def sparse_zeros(self, path, size):
        path.parent.mkdir(parents=True, exist_ok=True)
        subprocess.run(["truncate", "-s", str(size), str(path)], check=True, timeout=10)
        st = os.stat(path)
        self.assertLess(st.st_blocks * 512, size, "truncate did not make a sparse file")

    def test_sparse_file_of_zeros_seeds_and_downloads(self):
        size = 4 * MiB
        src = self.path("src")
        self.sparse_zeros(src / "zeros.img", size)
        torrent = self.create(src / "zeros.img", self.path("zeros.torrent"), MiB)

        # `download` into the folder that already holds it: every piece is there, nothing fetched.
        res = self.run_torrenty(["download", torrent, "-o", src, "--port", free_port(),
                                 "--peer", f"{LOOPBACK}:1"], timeout=30, name="torrenty-dl-present")
        self.assertTorrentyOk(res, "torrenty download into the folder with the sparse file")
        self.assertIn("4/4 pieces present", res.stderr, res.stderr)

        sport = free_port()
        seed = self.start_torrenty(["seed", torrent, "--data", src, "--port", sport], name="torrenty-seed")
        wait_port_listening(sport, 20, proc=seed)
        lt_out = self.path("lt-out")
        leecher = self.start_lt_peer(torrent, lt_out, "leech", connect=[(LOOPBACK, sport)], timeout=60)
        leecher.wait_for_output("DONE", 60)
        self.assertSameData(src / "zeros.img", lt_out / "zeros.img")

        # And Torrenty downloads it from Torrenty.
        out = self.path("out")
        res = self.run_torrenty(["download", torrent, "-o", out, "--port", free_port(),
                                 "--peer", f"{LOOPBACK}:{sport}"], timeout=60, name="torrenty-dl")
        self.assertTorrentyOk(res, "torrenty download from the sparse seed")
        self.assertSameData(src / "zeros.img", out / "zeros.img")
        seed.send_signal(signal.SIGINT)
        self.assertEqual(self.wait_exit(seed, 10), 0, seed.tail())

    def test_start_up_memory_does_not_grow_with_piece_length(self):
        # Four 64 MiB pieces of a sparse file: the start-up check used to zero-fill a whole piece
        # per worker (over 256 MiB); now each worker hashes in 1 MiB chunks.
        size = 256 * MiB
        src = self.path("src")
        self.sparse_zeros(src / "big.img", size)
        with open(src / "big.img", "r+b") as f:  # some real data in every piece
            for i in range(4):
                f.seek(i * 64 * MiB)
                f.write(os.urandom(4096))
        torrent = self.create(src / "big.img", self.path("big.torrent"), 64 * MiB)
        sport = free_port()
        seed = self.start_torrenty(["seed", torrent, "--data", src, "--port", sport], name="torrenty-seed")
        wait_port_listening(sport, 60, proc=seed)
        peak = vm_hwm_bytes(seed.popen.pid)
        print(f"\n  seed of 4 x 64 MiB pieces: peak RSS {peak / MiB:.1f} MiB")
        seed.send_signal(signal.SIGINT)
        self.assertEqual(self.wait_exit(seed, 10), 0, seed.tail())
        self.assertLess(peak, 64 * MiB, f"peak RSS {peak / MiB:.1f} MiB while checking 64 MiB pieces")

    def request_blocks(self, port, torrent, blocks, timeout=30):
        """Asks a seeder for (piece, begin, length) blocks over one raw connection; returns each
        block's bytes in order."""
        ih = bytes.fromhex(info_hash(torrent))
        deadline = time.monotonic() + timeout
        with socket.create_connection((LOOPBACK, port), timeout=timeout) as s:
            s.sendall(handshake(ih, b"-XX0001-readextents0"))
            self.assertEqual(recv_exact(s, 68)[28:48], ih)
            s.sendall(msg(2))  # interested
            got = {}
            unchoked = False
            while len(got) < len(blocks):
                self.assertLess(time.monotonic(), deadline, f"seeder sent {len(got)} of {len(blocks)} blocks")
                (n,) = struct.unpack(">I", recv_exact(s, 4))
                body = recv_exact(s, n) if n else b""
                if body[:1] == b"\x01" and not unchoked:
                    unchoked = True
                    for piece, begin, length in blocks:
                        s.sendall(msg(6, struct.pack(">III", piece, begin, length)))
                elif body[:1] == b"\x07":
                    piece, begin = struct.unpack(">II", body[1:9])
                    got[(piece, begin)] = body[9:]
        return [got[(p, b)] for p, b, _ in blocks]

    def test_seeding_memory_does_not_grow_with_piece_length(self):
        # Two 128 MiB pieces of a sparse file, with data around the seeder's 4 MiB read extents.
        # The read cache used to hold at least four whole pieces per shard; now a large piece is
        # cached in extents, so the seeder stays far below one piece while a libtorrent leecher
        # takes all of it and a raw peer asks for blocks that cross extent boundaries.
        piece = 128 * MiB
        src = self.path("src")
        self.sparse_zeros(src / "big.img", 2 * piece)
        marks = [p * piece + off for p in range(2) for off in (0, 4 * MiB - 8192, 60 * MiB + 1,
                                                              piece - 4096)]
        with open(src / "big.img", "r+b") as f:
            for at in marks:
                f.seek(at)
                f.write(os.urandom(12288 if at % piece else 4096))
        torrent = self.create(src / "big.img", self.path("big.torrent"), piece)
        sport = free_port()
        seed = self.start_torrenty(["seed", torrent, "--data", src, "--port", sport, "--threads", 2],
                                   name="torrenty-seed")
        wait_port_listening(sport, 60, proc=seed)

        lt_out = self.path("lt-out")
        leecher = self.start_lt_peer(torrent, lt_out, "leech", connect=[(LOOPBACK, sport)], timeout=150)
        leecher.wait_for_output("DONE", 150)
        self.assertSameData(src / "big.img", lt_out / "big.img")

        blocks = [(0, 4 * MiB - 5000, 16384), (1, 4 * MiB - 16384, 16384), (1, 4 * MiB - 1, 16384),
                  (0, 8 * MiB - 100, 300), (1, piece - 16384, 16384), (1, 60 * MiB - 7, 9000)]
        got = self.request_blocks(sport, torrent, blocks)
        with open(src / "big.img", "rb") as f:
            for (p, begin, length), data in zip(blocks, got):
                f.seek(p * piece + begin)
                self.assertEqual(data, f.read(length), f"block {p}:{begin}+{length}")

        peak = vm_hwm_bytes(seed.popen.pid)
        print(f"\n  seed of 2 x 128 MiB pieces to libtorrent: peak RSS {peak / MiB:.1f} MiB")
        seed.send_signal(signal.SIGINT)
        self.assertEqual(self.wait_exit(seed, 10), 0, seed.tail())
        self.assertLess(peak, 64 * MiB, f"peak RSS {peak / MiB:.1f} MiB while seeding 128 MiB pieces")

    def test_many_files_in_one_piece_keep_disk_slots_small(self):
        # 9,000 one-byte files in one 16 KiB piece: each disk slot used to carry an operation per
        # file of the widest piece (110 MB RSS); now a slot has a fixed number of operations.
        src = self.path("src", "many")
        src.mkdir(parents=True)
        for i in range(9000):
            (src / f"f{i:05d}").write_bytes(bytes([i % 251]))
        torrent = self.create(src, self.path("many.torrent"), 16384)
        sport = free_port()
        seed = self.start_torrenty(["seed", torrent, "--data", self.path("src"), "--port", sport],
                                   name="torrenty-seed")
        wait_port_listening(sport, 60, proc=seed)
        out = self.path("out")
        argv = [sys.executable, "-c", PEAK_RSS_WRAPPER, str(torrenty_bin()), "download", str(torrent),
                "-o", str(out), "--port", str(free_port()), "--no-dht", "--no-lsd", "--peer", f"{LOOPBACK}:{sport}"]
        r = subprocess.run(argv, stdout=subprocess.PIPE, stderr=subprocess.PIPE, timeout=170)
        rc, peak_kib = r.stdout.decode().split()
        peak_kib = int(peak_kib)
        print(f"\n  download of 9000 files in one piece: rc {rc}, peak RSS {peak_kib / 1024:.1f} MiB")
        self.assertEqual(rc, "0", r.stderr.decode(errors="replace"))
        self.assertSameData(src, out / "many")
        self.assertLess(peak_kib * 1024, 64 * MiB, f"peak RSS {peak_kib / 1024:.1f} MiB")
        seed.send_signal(signal.SIGINT)
        self.assertEqual(self.wait_exit(seed, 60), 0, seed.tail())

    def download_from_lt(self, torrent, src, out):
        seeder = self.start_lt_seeder(torrent, src)
        return self.run_torrenty(["download", torrent, "-o", out, "--port", free_port(),
                                  "--peer", f"{LOOPBACK}:{seeder.port}"], timeout=60)

    def test_planted_resume_symlinks_are_not_followed(self):
        src = self.path("src")
        write_random_file(src / "r.bin", 4 * MiB + 77)
        torrent = make_torrent(src / "r.bin", tracker_url(free_port()), self.path("r.torrent"))
        ih = info_hash(torrent)

        # DIR/.torrenty -> elsewhere: the resume folder itself is a planted link.
        elsewhere = self.path("elsewhere")
        elsewhere.mkdir()
        out = self.path("out")
        out.mkdir()
        os.symlink(elsewhere, out / ".torrenty")
        res = self.download_from_lt(torrent, src, out)
        self.assertSameData(src / "r.bin", out / "r.bin")
        self.assertEqual(os.listdir(elsewhere), [], "resume data was written through the planted link")
        print(f"\n  planted .torrenty: rc {res.returncode}; "
              f"{[l for l in res.stderr_lines() if 'resume' in l]}")

        # DIR/.torrenty/<hash>.resume -> victim: the link is replaced, the victim untouched.
        victim = self.path("victim")
        victim.write_bytes(b"precious")
        out2 = self.path("out2")
        (out2 / ".torrenty").mkdir(parents=True)
        rp = resume_path(out2, ih)
        os.symlink(victim, rp)
        os.symlink(victim, str(rp) + ".tmp")
        res = self.download_from_lt(torrent, src, out2)
        self.assertTorrentyOk(res, "torrenty download with a planted resume file link")
        self.assertSameData(src / "r.bin", out2 / "r.bin")
        self.assertEqual(victim.read_bytes(), b"precious")
        self.assertTrue(rp.is_file() and not rp.is_symlink(), "the resume file is not a regular file")

    def test_existing_longer_file_is_cut_to_the_torrents_length(self):
        size = 2 * MiB + 4321
        src = self.path("src")
        write_random_file(src / "l.bin", size)
        torrent = make_torrent(src / "l.bin", tracker_url(free_port()), self.path("l.torrent"))
        out = self.path("out")
        write_random_file(out / "l.bin", size + 100 * 1024)  # old, longer, different content
        res = self.download_from_lt(torrent, src, out)
        self.assertTorrentyOk(res, "torrenty download over a longer file")
        self.assertEqual(os.path.getsize(out / "l.bin"), size, "the old tail survived the download")
        self.assertSameData(src / "l.bin", out / "l.bin")


if __name__ == "__main__":
    unittest.main()
