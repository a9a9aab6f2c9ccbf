"""torrenty download from a libtorrent seeder found through opentracker."""
import unittest

from harness import (MiB, TorrentyTestCase, free_port, info_hash, make_torrent, make_tree,
                     tracker_url, write_random_file)


class DownloadFromLibtorrent(TorrentyTestCase):

    def _download_via_tracker(self, src_parent, name, piece_log2, timeout=120):
        port = free_port()
        torrent = make_torrent(src_parent / name, tracker_url(port), self.path(f"{name}.torrent"),
                               piece_log2=piece_log2)
        self.tracker([info_hash(torrent)], port=port)
        seeder = self.start_lt_seeder(torrent, src_parent)
        out = self.path("out")
        res = self.run_torrenty(["download", torrent, "-o", out, "--port", free_port()], timeout=timeout)
        self.assertTorrentyOk(res, "torrenty download")
        self.assertIsNone(seeder.poll(), "the libtorrent seeder died during the download")
        self.assertSameData(src_parent / name, out / name)
        return res

    def test_single_file_64mib(self):
        src = self.path("src")
        write_random_file(src / "payload-64m.bin", 64 * MiB)
        self._download_via_tracker(src, "payload-64m.bin", piece_log2=20)

    def test_multi_file_tree(self):
        src = self.path("src")
        make_tree(src / "tree")  # nested folders, a zero-length file, odd sizes, ~10 MiB
        self._download_via_tracker(src, "tree", piece_log2=18)


if __name__ == "__main__":
    unittest.main()
