"""torrenty download from two libtorrent seeders given with --peer; one drops out midway."""
import unittest

from harness import MiB, TorrentyTestCase, free_port, make_torrent, tracker_url, write_random_file


class TwoSeeders(TorrentyTestCase):

    def test_one_seeder_disconnects_midway(self):
        src = self.path("src")
        write_random_file(src / "two.bin", 64 * MiB)
        # No tracker: the announce URL points at a port nobody listens on.
        torrent = make_torrent(src / "two.bin", tracker_url(free_port()), self.path("two.torrent"),
                               piece_log2=20)
        steady = self.start_lt_seeder(torrent, src, name="lt-seed-steady")
        quitter = self.start_lt_seeder(torrent, src, stop_after_bytes=8 * MiB, name="lt-seed-quitter")
        out = self.path("out")
        res = self.run_torrenty(["download", torrent, "-o", out, "--port", free_port(),
                                 "--peer", f"127.0.0.1:{steady.port}",
                                 "--peer", f"127.0.0.1:{quitter.port}"], timeout=120)
        self.assertTorrentyOk(res, "torrenty download")
        self.assertSameData(src / "two.bin", out / "two.bin")
        self.assertIn("STOPPING", quitter.output(),
                      "the quitting seeder never uploaded 8 MiB: torrenty did not use both seeders")
        self.assertIsNotNone(quitter.poll())


if __name__ == "__main__":
    unittest.main()
