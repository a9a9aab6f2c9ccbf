"""torrenty seed serving real leechers (aria2c, transmission-cli) found through opentracker, and\nTorrenty itself (exact bytes, upload limit)."""
import signal
import time
import unittest

from harness import (MiB, TorrentyTestCase, free_port, info_hash, make_torrent, make_tree,
                     tracker_url, wait_port_listening, write_random_file)


class SeedToRealLeechers(TorrentyTestCase):

    def _prepare(self, name, make, piece_log2=18):
        data = self.path("data")
        make(data / name)
        port = free_port()
        torrent = make_torrent(data / name, tracker_url(port), self.path(f"{name}.torrent"),
                               piece_log2=piece_log2)
        ih = info_hash(torrent)
        return data, torrent, ih, port

    def _start_seed(self, torrent, data):
        port = free_port()
        seed = self.start_torrenty(["seed", torrent, "--data", data, "--port", port], name="torrenty-seed")
        wait_port_listening(port, 60, proc=seed)  # verifies its data first, then listens
        return seed

    def _stop_seed(self, seed):
        seed.send_signal(signal.SIGTERM)
        self.wait_exit(seed, 10)

    def test_aria2c_downloads_from_torrenty_seed(self):
        data, torrent, ih, tport = self._prepare(
            "aria-payload.bin", lambda p: write_random_file(p, 24 * MiB + 12345))
        tracker = self.tracker([ih], port=tport)
        seed = self._start_seed(torrent, data)
        tracker.wait_for_swarm(ih, 30, seeders=1, procs=[seed])
        out = self.path("aria-out")
        aria = self.start_aria2c(torrent, out)
        self.assertEqual(self.wait_exit(aria, 120, others=[seed]), 0, aria.tail())
        self.assertSameData(data / "aria-payload.bin", out / "aria-payload.bin")
        self._stop_seed(seed)

    def test_aria2c_downloads_tree_from_torrenty_seed(self):
        data, torrent, ih, tport = self._prepare("tree", make_tree)
        tracker = self.tracker([ih], port=tport)
        seed = self._start_seed(torrent, data)
        tracker.wait_for_swarm(ih, 30, seeders=1, procs=[seed])
        out = self.path("aria-out")
        aria = self.start_aria2c(torrent, out)
        self.assertEqual(self.wait_exit(aria, 120, others=[seed]), 0, aria.tail())
        self.assertSameData(data / "tree", out / "tree")
        self._stop_seed(seed)

    def test_transmission_downloads_from_torrenty_seed(self):
        # transmission never dials loopback peers: it announces first, then torrenty seed must dial
        # the peer the tracker hands it. transmission idles ~8 s before requesting anything.
        data, torrent, ih, tport = self._prepare(
            "tr-payload.bin", lambda p: write_random_file(p, 16 * MiB + 777))
        tracker = self.tracker([ih], port=tport)
        out = self.path("tr-out")
        tr = self.start_transmission(torrent, out)
        tracker.wait_for_swarm(ih, 60, leechers=1, procs=[tr])
        seed = self._start_seed(torrent, data)
        self.wait_for_file(tr.done_marker, 120, proc=tr, others=[seed])
        self.assertSameData(data / "tr-payload.bin", out / "tr-payload.bin")
        self._stop_seed(seed)

    def _torrenty_pair(self, seed_args):
        """Torrenty downloads 6 MiB from a Torrenty seed: blocks go out straight from the seed's
        read cache (lent, not copied). Returns the download's wall seconds."""
        data, torrent, _, _ = self._prepare("tt-payload.bin",
                                            lambda p: write_random_file(p, 6 * MiB, seed=12))
        port = free_port()
        seed = self.start_torrenty(["seed", torrent, "--data", data, "--port", port, "--no-dht",
                                    "--no-lsd"] + seed_args, name="torrenty-seed")
        wait_port_listening(port, 60, proc=seed)
        out = self.path("tt-out")
        t0 = time.monotonic()
        res = self.run_torrenty(["download", torrent, "-o", out, "--peer", f"127.0.0.1:{port}",
                                 "--no-dht", "--no-lsd"], timeout=90, name="torrenty-download")
        wall = time.monotonic() - t0
        self.assertTorrentyOk(res, "torrenty download from torrenty seed")
        self.assertSameData(data / "tt-payload.bin", out / "tt-payload.bin")
        self._stop_seed(seed)
        return wall

    def test_torrenty_downloads_exact_bytes_from_torrenty_seed(self):
        self._torrenty_pair([])

    def test_torrenty_seed_upload_limit_holds_on_the_lent_send_path(self):
        # 6 MiB at 2 MiB/s: about 3 s even with a bucket's worth of burst; unlimited it is ~0.1 s.
        wall = self._torrenty_pair(["--max-upload-rate", "2M"])
        self.assertGreater(wall, 1.8, "the seed's upload limit was not applied")
        self.assertLess(wall, 30)

    def _assert_seed_rejects(self, torrent, data):
        res = self.run_torrenty(["seed", torrent, "--data", data, "--port", free_port()], timeout=30,
                                name="torrenty-seed-bad")
        self.assertNotEqual(res.returncode, 0, "torrenty seed accepted data that does not match\n"
                            + res.proc.tail())
        self.assertEqual(len(res.stderr_lines()), 1,
                         f"expected exactly one line on stderr, got:\n{res.stderr}")

    def test_seed_rejects_corrupted_data(self):
        data, torrent, _, _ = self._prepare("bad.bin", lambda p: write_random_file(p, 4 * MiB + 3))
        with open(data / "bad.bin", "r+b") as f:  # flip one byte in the middle
            f.seek(2 * MiB + 1)
            b = f.read(1)
            f.seek(2 * MiB + 1)
            f.write(bytes([b[0] ^ 0xFF]))
        self._assert_seed_rejects(torrent, data)

    def test_seed_rejects_truncated_data(self):
        data, torrent, _, _ = self._prepare("short.bin", lambda p: write_random_file(p, 3 * MiB + 5))
        with open(data / "short.bin", "r+b") as f:
            f.truncate(1 * MiB)
        self._assert_seed_rejects(torrent, data)

    def test_seed_rejects_missing_data(self):
        data, torrent, _, _ = self._prepare("gone.bin", lambda p: write_random_file(p, 1 * MiB + 5))
        (data / "gone.bin").unlink()
        self._assert_seed_rejects(torrent, data)


if __name__ == "__main__":
    unittest.main()
