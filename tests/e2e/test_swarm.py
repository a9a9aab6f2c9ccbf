"""Torrenty in a swarm: one `torrenty seed` serving three different clients at once (choker),
a download that routes around a peer that stalls, and peers arriving by a later re-announce.
"""
import signal
import time
import unittest

from fake_tracker import FakeTracker
from harness import LOOPBACK, MiB, TorrentyTestCase, free_port, info_hash, make_torrent, \
    tracker_url, wait_port_listening, write_random_file
from swarm_helpers import StallPeer, start_throttled_seeder


class Swarm(TorrentyTestCase):

    def test_three_leechers_from_one_torrenty_seed(self):
        size = 24 * MiB + 54321
        data = self.path("data")
        write_random_file(data / "swarm.bin", size)
        tport = free_port()
        torrent = make_torrent(data / "swarm.bin", tracker_url(tport), self.path("swarm.torrent"))
        ih = info_hash(torrent)
        tracker = self.tracker([ih], port=tport)
        deadline = time.monotonic() + 100

        # transmission never dials loopback peers: it announces first, the seed dials it.
        tr_out = self.path("tr-out")
        tr = self.start_transmission(torrent, tr_out)
        tracker.wait_for_swarm(ih, 30, leechers=1, procs=[tr])
        sport = free_port()
        seed = self.start_torrenty(["seed", torrent, "--data", data, "--port", sport],
                                   name="torrenty-seed")
        wait_port_listening(sport, 30, proc=seed)
        tracker.wait_for_swarm(ih, 30, seeders=1, procs=[seed])
        aria_out, lt_out = self.path("aria-out"), self.path("lt-out")
        aria = self.start_aria2c(torrent, aria_out)
        lt_leech = self.start_lt_peer(torrent, lt_out, "leech", timeout=110)

        pending = {"aria2c", "transmission", "libtorrent"}
        finished = {}
        while pending:
            if seed.poll() is not None:
                self.fail("torrenty seed exited during the swarm\n" + seed.tail())
            if "aria2c" in pending and aria.poll() is not None:
                self.assertEqual(aria.returncode, 0, "aria2c failed\n" + aria.tail())
                pending.discard("aria2c")
                finished["aria2c"] = time.monotonic()
            if "transmission" in pending and tr.done_marker.exists():
                pending.discard("transmission")
                finished["transmission"] = time.monotonic()
            if "libtorrent" in pending and "DONE" in lt_leech.output():
                pending.discard("libtorrent")
                finished["libtorrent"] = time.monotonic()
            if "libtorrent" in pending and lt_leech.poll() is not None:
                self.fail("the libtorrent leecher exited early\n" + lt_leech.tail())
            if time.monotonic() > deadline:
                self.fail(f"still downloading after 100 s: {sorted(pending)}\n" + seed.tail()
                          + "".join("\n" + p.tail() for p in (aria, tr, lt_leech)))
            time.sleep(0.2)
        print("\n  finished at (s after seed start): "
              + ", ".join(f"{k} {v - seed.started:.1f}" for k, v in sorted(finished.items())))
        self.assertSameData(data / "swarm.bin", aria_out / "swarm.bin")
        self.assertSameData(data / "swarm.bin", tr_out / "swarm.bin")
        self.assertSameData(data / "swarm.bin", lt_out / "swarm.bin")
        seed.send_signal(signal.SIGINT)
        self.assertEqual(self.wait_exit(seed, 10), 0, seed.tail())
        choker = [l for l in seed.log_text().splitlines() if l.startswith("choker:")]
        print(f"  {len(choker)} choker lines, e.g. {choker[:3]}")
        self.assertTrue(choker, "torrenty seed logged no 'choker:' decisions\n" + seed.tail())

    def test_stalled_seeder_does_not_hold_up_the_download(self):
        size = 32 * MiB + 777
        src = self.path("src")
        write_random_file(src / "stall.bin", size)
        torrent = make_torrent(src / "stall.bin", tracker_url(free_port()), self.path("stall.torrent"))
        stall = StallPeer(torrent).start()
        self.addCleanup(stall.stop)
        # Throttled so the download lasts a couple of seconds: the stalled peer surely gets requests.
        honest = start_throttled_seeder(self, torrent, src, rate=16 * MiB)
        out = self.path("out")
        res = self.run_torrenty(["download", torrent, "-o", out, "--port", free_port(),
                                 "--peer", f"{LOOPBACK}:{stall.port}",
                                 "--peer", f"{LOOPBACK}:{honest.port}"], timeout=60)
        print(f"\n  completed in {res.elapsed:.1f}s; stalled peer got {stall.requests} requests on "
              f"{stall.connections} connection(s)")
        self.assertTorrentyOk(res, "torrenty download")
        self.assertSameData(src / "stall.bin", out / "stall.bin")
        self.assertGreater(stall.requests, 0, "torrenty never requested from the stalled peer")
        self.assertLess(res.elapsed, 45, "the stalled peer held the download up")

    def test_peers_from_a_later_announce_join_the_download(self):
        size = 8 * MiB + 3
        src = self.path("src")
        write_random_file(src / "late.bin", size)
        seeder_port = free_port()
        # First answer: no peers; every later one: the seeder. A long interval, so only a
        # "no peers, ask again after min interval" re-announce can find the seeder in time.
        fake = FakeTracker("peers", interval=1800, min_interval=30,
                           peers=lambda n: [] if n == 0 else [(LOOPBACK, seeder_port)]).start()
        self.addCleanup(fake.stop)
        torrent = make_torrent(src / "late.bin", fake.announce_url, self.path("late.torrent"))
        self.start_lt_seeder(torrent, src, port=seeder_port)
        tport = free_port()
        out = self.path("out")
        p = self.start_torrenty(["download", torrent, "-o", out, "--port", tport])
        deadline = time.monotonic() + 70
        while p.poll() is None and time.monotonic() < deadline:
            time.sleep(0.2)
        elapsed = time.monotonic() - p.started
        ann = fake.announces(port=tport)
        gaps = [round(b.time - a.time, 1) for a, b in zip(ann, ann[1:])]
        print(f"\n  rc {p.poll()} after {elapsed:.1f}s; announces {ann}; gaps {gaps}")
        self.assertIsNotNone(p.poll(), f"torrenty download did not finish within 70 s; announces "
                             f"from it: {ann}\n" + p.tail())
        self.assertEqual(p.returncode, 0, "torrenty download failed\n" + p.tail())
        self.assertSameData(src / "late.bin", out / "late.bin")
        self.assertGreaterEqual(len(ann), 2, f"torrenty never re-announced: {ann}")
        self.assertEqual(ann[0].event, "started", ann)
        self.assertGreaterEqual(gaps[0], 25, f"re-announced before the tracker's min interval: {gaps}")


if __name__ == "__main__":
    unittest.main()
