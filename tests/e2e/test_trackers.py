"""Torrenty and HTTP trackers: the announce events and counters a real tracker sees, trackers that
fail, hang or refuse (BEP 12 tiers), and periodic re-announces.

Real tracker: opentracker on 127.0.0.1, behind fake_tracker.FakeTracker("proxy") which records every
announce's query. Torrenty's announces are told apart from the libtorrent seeder's by the `port`
parameter (Torrenty's --port).
"""
import re
import signal
import time
import unittest

from fake_tracker import FakeTracker
from harness import LOOPBACK, MiB, TorrentyTestCase, free_port, info_hash, make_torrent, \
    tracker_url, wait_port_listening, write_random_file
from swarm_helpers import lines_with, make_torrent_tiers


class Trackers(TorrentyTestCase):

    def fake_tracker(self, mode, **kw):
        t = FakeTracker(mode, **kw).start()
        self.addCleanup(t.stop)
        return t

    def _proxied_swarm(self, name, size, rewrite_interval=None):
        """Payload + torrent announcing to a recording proxy in front of opentracker, and a
        libtorrent seeder the tracker already knows about."""
        src = self.path("src")
        write_random_file(src / name, size)
        otport, pport = free_port(), free_port()
        torrent = make_torrent(src / name, tracker_url(pport), self.path(f"{name}.torrent"))
        ih = info_hash(torrent)
        tracker = self.tracker([ih], port=otport)
        proxy = self.fake_tracker("proxy", port=pport, upstream_port=otport,
                                  rewrite_interval=rewrite_interval)
        seeder = self.start_lt_seeder(torrent, src)
        tracker.wait_for_swarm(ih, 30, seeders=1, procs=[seeder])
        return src, torrent, proxy, seeder

    def _check_started(self, ann, tport, size):
        first = ann[0]
        self.assertEqual(first.event, "started", f"first announce is not event=started: {ann}")
        self.assertEqual(first.int("left"), size, f"started announce: left != size: {first}")
        self.assertEqual(first.int("downloaded"), 0, f"started announce: downloaded != 0: {first}")
        self.assertEqual(first.int("uploaded"), 0, f"started announce: uploaded != 0: {first}")
        self.assertEqual(first.get("compact"), "1", f"announce without compact=1: {first}")
        self.assertIsNotNone(first.int("numwant"), f"announce without numwant: {first}")
        self.assertGreater(first.int("numwant"), 0, f"numwant must ask for peers: {first}")
        for a in ann:
            self.assertEqual(a.port, tport, f"announce with a port other than --port {tport}: {a}")

    def _check_completed_once(self, ann, size):
        done = [i for i, a in enumerate(ann) if a.event == "completed"]
        self.assertEqual(len(done), 1, f"expected exactly one event=completed, got: {ann}")
        c = ann[done[0]]
        self.assertGreater(done[0], 0, f"event=completed came before event=started: {ann}")
        self.assertEqual(c.int("left"), 0, f"completed announce with left != 0: {c}")
        self.assertGreaterEqual(c.int("downloaded"), size, f"completed announce: downloaded < size: {c}")
        return done[0]

    # ------------------------------------------------------------------------------------------

    def test_download_announces_started_completed_stopped(self):
        size = 24 * MiB + 4321
        src, torrent, proxy, seeder = self._proxied_swarm("events.bin", size)
        tport = free_port()
        out = self.path("out")
        res = self.run_torrenty(["download", torrent, "-o", out, "--port", tport], timeout=60)
        self.assertTorrentyOk(res, "torrenty download")
        self.assertSameData(src / "events.bin", out / "events.bin")
        ann = proxy.announces(port=tport)
        print(f"\n  announces seen by the proxy: {ann}")
        self.assertTrue(ann, "torrenty never announced to the tracker")
        self._check_started(ann, tport, size)
        ci = self._check_completed_once(ann, size)
        # A clean exit says goodbye: the last announce is event=stopped with nothing left.
        self.assertEqual(ann[-1].event, "stopped", f"last announce is not event=stopped: {ann}")
        self.assertEqual(ann[-1].int("left"), 0, f"stopped announce with left != 0: {ann[-1]}")
        self.assertGreater(len(ann) - 1, ci, f"event=stopped came before event=completed: {ann}")
        self.assertEqual(proxy.errors, [], "the proxy could not reach opentracker")

    def test_seed_after_download_sigint_sends_stopped(self):
        size = 16 * MiB + 99
        src, torrent, proxy, seeder = self._proxied_swarm("stop.bin", size)
        tport = free_port()
        out = self.path("out")
        p = self.start_torrenty(["download", torrent, "-o", out, "--port", tport, "--seed"],
                                name="torrenty-dl-seed")
        proxy.wait_for(lambda l: any(a.event == "completed" for a in l), 60, port=tport, procs=[p])
        self.assertSameData(src / "stop.bin", out / "stop.bin")
        self.assertIsNone(p.poll(), "torrenty download --seed exited after completing\n" + p.tail())
        p.wait_for_output("seeding until SIGINT/SIGTERM", 10, stdout_only=False)
        t = time.monotonic()
        p.send_signal(signal.SIGINT)
        rc = self.wait_exit(p, 10)
        took = time.monotonic() - t
        ann = proxy.announces(port=tport)
        print(f"\n  exit {rc} {took:.2f}s after SIGINT; announces: {ann}")
        self.assertEqual(rc, 0, "torrenty exited non-zero after SIGINT\n" + p.tail())
        self.assertLess(took, 5.0, f"torrenty took {took:.1f}s to exit after SIGINT")
        self._check_started(ann, tport, size)
        self._check_completed_once(ann, size)
        stopped = [a for a in ann if a.event == "stopped"]
        self.assertEqual(len(stopped), 1, f"expected exactly one event=stopped: {ann}")
        s = stopped[0]
        self.assertIs(ann[-1], s, f"announces after event=stopped: {ann}")
        self.assertEqual(s.int("left"), 0, f"stopped announce with left != 0: {s}")
        self.assertGreaterEqual(s.int("downloaded"), size, f"stopped: downloaded < size: {s}")
        self.assertLess(s.int("downloaded"), 2 * size, f"stopped: downloaded implausibly large: {s}")
        # Nobody downloaded from it (the only other peer is a seeder).
        self.assertGreaterEqual(s.int("uploaded"), 0, f"stopped: negative uploaded: {s}")
        self.assertLess(s.int("uploaded"), size, f"stopped: uploaded implausible: {s}")

    def test_failure_reason_is_reported_and_peer_still_used(self):
        reason = "e2e tracker refuses this torrent (code 4711)"
        failing = self.fake_tracker("failure", failure_reason=reason)
        src = self.path("src")
        write_random_file(src / "fail.bin", 8 * MiB + 7)
        torrent = make_torrent(src / "fail.bin", failing.announce_url, self.path("fail.torrent"))
        seeder = self.start_lt_seeder(torrent, src)
        tport = free_port()
        out = self.path("out")
        res = self.run_torrenty(["download", torrent, "-o", out, "--port", tport,
                                 "--peer", f"{LOOPBACK}:{seeder.port}"], timeout=60)
        self.assertTorrentyOk(res, "torrenty download")
        self.assertSameData(src / "fail.bin", out / "fail.bin")
        self.assertTrue(failing.announces(port=tport), "torrenty never asked the tracker")
        hits = lines_with(res.stderr, reason)
        self.assertTrue(hits, f"stderr does not carry the tracker's failure reason:\n{res.stderr}")
        print(f"\n  failure line: {hits[0]!r}")

    def test_dead_first_tier_falls_through_to_second(self):
        src = self.path("src")
        write_random_file(src / "tiers.bin", 8 * MiB + 12345)
        otport = free_port()
        silent = self.fake_tracker("silent")
        refused = FakeTracker("refuse")  # nothing listens on refused.port
        torrent = make_torrent_tiers(src / "tiers.bin",
                                     [[silent.announce_url, refused.announce_url],
                                      [tracker_url(otport)]],
                                     self.path("tiers.torrent"))
        # The seeder uses a plain torrent of the same info dict that names only opentracker, so it
        # is registered at once (the announce list is not part of the info-hash).
        direct = make_torrent(src / "tiers.bin", tracker_url(otport), self.path("direct.torrent"))
        ih = info_hash(torrent)
        self.assertEqual(ih, info_hash(direct))
        tracker = self.tracker([ih], port=otport)
        seeder = self.start_lt_seeder(direct, src)
        tracker.wait_for_swarm(ih, 30, seeders=1, procs=[seeder])
        out = self.path("out")
        res = self.run_torrenty(["download", torrent, "-o", out, "--port", free_port()], timeout=70)
        print(f"\n  download via tier 2 took {res.elapsed:.1f}s; silent tracker held "
              f"{silent.silent_connections()} connection(s)")
        self.assertTorrentyOk(res, "torrenty download")
        self.assertSameData(src / "tiers.bin", out / "tiers.bin")
        self.assertLess(res.elapsed, 45, "falling through a dead tier took too long")
        self.assertGreaterEqual(silent.silent_connections(), 1, "torrenty never tried the silent tracker")
        silent_lines = lines_with(res.stderr, f"{LOOPBACK}:{silent.port}")
        refused_lines = lines_with(res.stderr, f"{LOOPBACK}:{refused.port}")
        print(f"  silent: {silent_lines[:1]}\n  refused: {refused_lines[:1]}")
        self.assertTrue(silent_lines, f"no stderr line names the silent tracker:\n{res.stderr}")
        self.assertTrue(refused_lines, f"no stderr line names the refused tracker:\n{res.stderr}")
        self.assertTrue(all("tracker" in l for l in silent_lines + refused_lines), res.stderr)
        self.assertTrue(any(re.search(r"time", l, re.I) for l in silent_lines),
                        f"the silent tracker's line does not say it timed out: {silent_lines}")
        self.assertTrue(any(re.search(r"refused|connect", l, re.I) for l in refused_lines),
                        f"the refused tracker's line does not say the connection failed: {refused_lines}")
        # One line per error: no error repeated on consecutive lines, no stack of lines per error.
        self.assertLessEqual(len(silent_lines), 3, f"silent tracker reported too often: {silent_lines}")
        self.assertLessEqual(len(refused_lines), 3, f"refused tracker reported too often: {refused_lines}")

    def test_seed_reannounces_every_interval(self):
        src = self.path("src")
        write_random_file(src / "periodic.bin", 2 * MiB + 5)
        fake = self.fake_tracker("peers", peers=[], interval=30, min_interval=30)
        torrent = make_torrent(src / "periodic.bin", fake.announce_url, self.path("periodic.torrent"))
        sport = free_port()
        seed = self.start_torrenty(["seed", torrent, "--data", src, "--port", sport],
                                   name="torrenty-seed")
        wait_port_listening(sport, 20, proc=seed)
        t0 = time.monotonic()
        fake.wait_for(lambda l: len(l) >= 1, 10, port=sport, procs=[seed])
        while time.monotonic() - t0 < 60:
            if seed.poll() is not None:
                self.fail("torrenty seed exited early\n" + seed.tail())
            time.sleep(0.5)
        seed.send_signal(signal.SIGINT)
        rc = self.wait_exit(seed, 10)
        ann = [a for a in fake.announces(port=sport) if a.event != "stopped"]
        gaps = [round(b.time - a.time, 1) for a, b in zip(ann, ann[1:])]
        print(f"\n  announces in 60 s: {ann}; gaps {gaps}")
        self.assertEqual(rc, 0, seed.tail())
        self.assertEqual(ann[0].event, "started", f"first announce is not started: {ann}")
        self.assertEqual(ann[0].int("left"), 0, f"a seed announces left=0: {ann[0]}")
        self.assertGreaterEqual(len(ann), 2, f"no re-announce within 60 s at interval 30 s: {ann}")
        self.assertTrue(all(g >= 28 for g in gaps), f"re-announced faster than the interval: {gaps}")
        self.assertTrue(all(a.event in ("", "empty") for a in ann[1:]),
                        f"regular re-announces must carry no event: {ann}")


if __name__ == "__main__":
    unittest.main()
