"""Self-test of the e2e harness with real peers only (no torrenty): must always pass."""
import unittest

from harness import (MiB, TorrentyTestCase, bdecode, bencode, compare_paths, free_port, info_hash,
                     info_hash_stdlib, make_torrent, make_tree, torrent_name, tracker_url,
                     write_random_file)


class HarnessSelfTest(TorrentyTestCase):

    def test_helpers(self):
        ports = {free_port() for _ in range(20)}
        self.assertEqual(len(ports), 20)
        v = {b"a": [1, b"xy", {b"k": -3}], b"b": b""}
        self.assertEqual(bdecode(bencode(v)), v)
        tree = make_tree(self.path("tree"), seed=1)
        self.assertIsNone(compare_paths(tree, tree))
        other = make_tree(self.path("other"), seed=2)
        self.assertIsNotNone(compare_paths(tree, other))
        self.assertEqual((tree / "empty.txt").stat().st_size, 0)
        t = make_torrent(tree, tracker_url(free_port()), self.path("tree.torrent"), piece_log2=18)
        self.assertEqual(info_hash(t), info_hash_stdlib(t))
        self.assertEqual(torrent_name(t), "tree")

    def test_opentracker_escaping(self):
        """Info-hashes holding 0x20 (space) and 0x2b ('+') bytes must announce and scrape correctly."""
        ih = "20" * 5 + "2b" * 5 + "00" * 5 + "ff" * 5
        tracker = self.tracker([ih])
        self.assertEqual(tracker.scrape(ih), (0, 0))
        resp = tracker.announce(ih, event="started", port=40000, left=0, peer_id=b"-TE0001-escapetest00")
        self.assertNotIn(b"failure reason", resp)
        self.assertEqual(tracker.wait_for_swarm(ih, 10, seeders=1), (1, 0))
        tracker.announce(ih, event="stopped", port=40000, peer_id=b"-TE0001-escapetest00")

    def test_lt_seeder_to_aria2c_via_opentracker(self):
        src = self.path("src")
        write_random_file(src / "payload.bin", 16 * MiB + 4321)
        port = free_port()
        torrent = make_torrent(src / "payload.bin", tracker_url(port), self.path("p.torrent"), piece_log2=18)
        self.tracker([info_hash(torrent)], port=port)
        self.start_lt_seeder(torrent, src)
        out = self.path("aria2-out")
        aria = self.start_aria2c(torrent, out)
        self.assertEqual(self.wait_exit(aria, 90), 0, aria.tail())
        self.assertSameData(src / "payload.bin", out / "payload.bin")

    def test_lt_seeder_to_lt_leecher_via_opentracker(self):
        src = make_tree(self.path("src", "tree"))
        port = free_port()
        torrent = make_torrent(src, tracker_url(port), self.path("t.torrent"), piece_log2=18)
        self.tracker([info_hash(torrent)], port=port)
        self.start_lt_seeder(torrent, self.path("src"))
        out = self.path("lt-out")
        leech = self.start_lt_peer(torrent, out, "leech")
        leech.wait_for_output("DONE", 90)
        self.assertEqual(self.wait_exit(leech, 30), 0)
        self.assertSameData(src, out / "tree")

    def test_lt_seeder_to_transmission_via_opentracker(self):
        """transmission never dials loopback peers: the libtorrent seeder dials it (tracker peers)."""
        src = self.path("src")
        write_random_file(src / "tr.bin", 6 * MiB + 99)
        port = free_port()
        torrent = make_torrent(src / "tr.bin", tracker_url(port), self.path("tr.torrent"), piece_log2=18)
        ih = info_hash(torrent)
        tracker = self.tracker([ih], port=port)
        out = self.path("tr-out")
        tr = self.start_transmission(torrent, out)
        tracker.wait_for_swarm(ih, 60, leechers=1, procs=[tr])  # it must announce before the seeder
        seeder = self.start_lt_seeder(torrent, src)
        self.wait_for_file(tr.done_marker, 120, proc=tr, others=[seeder])
        self.assertSameData(src / "tr.bin", out / "tr.bin")

    def test_lt_seeder_to_lt_leecher_direct(self):
        """No tracker: the leecher dials the seeder (--connect), as torrenty --peer would."""
        src = self.path("src")
        write_random_file(src / "direct.bin", 8 * MiB + 1)
        torrent = make_torrent(src / "direct.bin", tracker_url(free_port()), self.path("d.torrent"),
                               piece_log2=20)
        seeder = self.start_lt_seeder(torrent, src)
        out = self.path("lt-out")
        leech = self.start_lt_peer(torrent, out, "leech", connect=[("127.0.0.1", seeder.port)])
        leech.wait_for_output("DONE", 60)
        self.assertSameData(src / "direct.bin", out / "direct.bin")

    def test_lt_seeder_stop_after_bytes(self):
        src = self.path("src")
        write_random_file(src / "big.bin", 32 * MiB)
        torrent = make_torrent(src / "big.bin", tracker_url(free_port()), self.path("b.torrent"),
                               piece_log2=20)
        seeder = self.start_lt_seeder(torrent, src, stop_after_bytes=2 * MiB)
        leech = self.start_lt_peer(torrent, self.path("out"), "leech",
                                   connect=[("127.0.0.1", seeder.port)])
        self.assertEqual(self.wait_exit(seeder, 60), 0)
        self.assertIn("STOPPING", seeder.output())
        self.assertNotIn("DONE", leech.output())
        leech.stop()


if __name__ == "__main__":
    unittest.main()
