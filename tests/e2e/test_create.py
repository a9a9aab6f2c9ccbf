"""torrenty create: its torrents work with libtorrent, aria2c and torrenty itself."""
import re
import unittest

from harness import (KiB, MiB, TorrentyTestCase, bdecode, free_port, info_hash, info_hash_stdlib,
                     make_tree, tracker_url, wait_port_listening, write_random_file)


class CreateTorrents(TorrentyTestCase):

    def create(self, path, announce, out, *extra):
        res = self.run_torrenty(["create", path, "--tracker", announce, "-o", out, *extra], timeout=60,
                                name="torrenty-create")
        self.assertTorrentyOk(res, "torrenty create")
        self.assertTrue(out.exists(), f"torrenty create wrote no {out}")
        return out

    def test_created_tree_torrent_libtorrent_seeds_torrenty_downloads(self):
        src = self.path("src")
        tree = make_tree(src / "tree")
        port = free_port()
        torrent = self.create(tree, tracker_url(port), self.path("tree.torrent"),
                              "--piece-length", 256 * KiB)
        meta = bdecode(torrent.read_bytes())
        self.assertEqual(meta[b"announce"].decode(), tracker_url(port))
        self.assertEqual(meta[b"info"][b"piece length"], 256 * KiB)
        ih = info_hash(torrent)
        self.tracker([ih], port=port)
        self.start_lt_seeder(torrent, src)  # libtorrent checks the original data against it
        out = self.path("out")
        res = self.run_torrenty(["download", torrent, "-o", out, "--port", free_port()], timeout=120)
        self.assertTorrentyOk(res, "torrenty download")
        self.assertSameData(tree, out / "tree")

    def test_created_file_torrent_torrenty_seeds_libtorrent_downloads(self):
        data = self.path("data")
        write_random_file(data / "single.bin", 20 * MiB + 4097)
        port = free_port()
        torrent = self.create(data / "single.bin", tracker_url(port), self.path("single.torrent"))
        ih = info_hash(torrent)
        tracker = self.tracker([ih], port=port)
        sport = free_port()
        seed = self.start_torrenty(["seed", torrent, "--data", data, "--port", sport], name="torrenty-seed")
        wait_port_listening(sport, 60, proc=seed)
        tracker.wait_for_swarm(ih, 30, seeders=1, procs=[seed])
        leech = self.start_lt_peer(torrent, self.path("out"), "leech")  # finds torrenty via the tracker
        leech.wait_for_output("DONE", 120)
        self.assertSameData(data / "single.bin", self.path("out", "single.bin"))

    def test_aria2c_accepts_created_torrent_and_info_hash_matches(self):
        tree = make_tree(self.path("src", "meta-tree"))
        torrent = self.create(tree, tracker_url(free_port()), self.path("meta.torrent"))
        rc, text = self.aria2_show(torrent)
        self.assertEqual(rc, 0, f"aria2c -S rejected the torrent:\n{text}")
        m = re.search(r"Info Hash:\s*([0-9a-fA-F]{40})", text)
        self.assertIsNotNone(m, f"no Info Hash in aria2c -S output:\n{text}")
        aria_ih = m.group(1).lower()
        self.assertEqual(aria_ih, info_hash(torrent))
        self.assertEqual(aria_ih, info_hash_stdlib(torrent))
        self.assertEqual(aria_ih, self.torrenty_info_hash(torrent))
        for rel in ("a/b/c/deep.bin", "empty.txt", "z/last.bin"):
            self.assertIn(rel, text)

    def test_private_flag_and_piece_length(self):
        data = self.path("data")
        write_random_file(data / "p.bin", 3 * MiB + 1)
        torrent = self.create(data / "p.bin", tracker_url(free_port()), self.path("p.torrent"),
                              "--private", "--piece-length", 1 * MiB)
        info = bdecode(torrent.read_bytes())[b"info"]
        self.assertEqual(info.get(b"private"), 1)
        self.assertEqual(info[b"piece length"], 1 * MiB)
        self.assertEqual(info[b"length"], 3 * MiB + 1)
        self.assertEqual(len(info[b"pieces"]), 4 * 20)
        self.assertEqual(info[b"name"], b"p.bin")


if __name__ == "__main__":
    unittest.main()
