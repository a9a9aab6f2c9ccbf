"""`torrenty serve`'s speed limits, set with the real transmission-remote: -u (session upload
limit) holds a real libtorrent leecher to it and -U lifts it; -t N -d (a torrent's download limit)
holds serve's download from a libtorrent seeder and -t N -D lifts it; -as/-AS switch turtle mode;
-t N -HL frees a torrent from the session's limits (honorsSessionLimits) and -hl puts it back;
session and torrent limits survive a restart.

The rates are checked as bounds over a window of several seconds, generous on both sides (a slow
machine can only make the transfer slower, and the lower bound only proves it was not stalled):
speed targets belong in the benchmarks, these tests prove the limit is applied at all.
"""
import signal
import time
import unittest

from harness import LOOPBACK, MiB, free_port, info_hash, make_torrent, tracker_url, wait_until, \
    write_random_file
from test_serve import ServeCase

KiB = 1024
WINDOW_S = 6.0


class SpeedLimits(ServeCase):

    def field(self, serve, tid, name):
        [t] = serve.rpc.call("torrent-get", ids=[tid], fields=[name])["arguments"]["torrents"]
        return t[name]

    def measured_rate(self, serve, tid, name, procs):
        """Bytes/s of torrent-get `name` over WINDOW_S seconds, once it has started moving."""
        wait_until(lambda: self.field(serve, tid, name) > 0, 60, f"{name} moving", procs=procs,
                   interval=0.2)
        start_bytes, start = self.field(serve, tid, name), time.monotonic()
        while time.monotonic() - start < WINDOW_S:
            time.sleep(0.25)
            for p in procs:
                self.assertIsNone(p.poll(), f"{p.name} exited early")
        end_bytes, end = self.field(serve, tid, name), time.monotonic()
        return (end_bytes - start_bytes) / (end - start)

    def assertNear(self, rate, limit, what):
        # Upper: the limit plus its burst and one publish interval (1 s) of slack over the window.
        self.assertLessEqual(rate, limit * (1 + 1.5 / WINDOW_S) + 256 * KiB / WINDOW_S,
                             f"{what}: {rate:.0f} B/s over a limit of {limit} B/s")
        self.assertGreaterEqual(rate, 0.3 * limit, f"{what}: {rate:.0f} B/s, stalled?")
        print(f"\n  {what}: {rate / KiB:.0f} KiB/s under a limit of {limit / KiB:.0f} KiB/s")

    def test_session_upload_limit_holds_a_libtorrent_leecher_and_lifts(self):
        src = self.path("src")
        size = 24 * MiB
        write_random_file(src / "up.bin", size)
        t = make_torrent(src / "up.bin", tracker_url(free_port()), self.path("up.torrent"))
        serve = self.start_serve(self.path("state"), src)
        self.add(serve, t)
        [row] = self.checked_list(serve).values()
        tid = row["id"]
        self.remote(serve, "-u", "512")
        s = serve.rpc.call("session-get")["arguments"]
        self.assertEqual((s["speed-limit-up"], s["speed-limit-up-enabled"]), (512, True), s)

        leecher = self.start_lt_peer(t, self.path("leech"), "leech",
                                     connect=[(LOOPBACK, serve.peer_port)])
        rate = self.measured_rate(serve, tid, "uploadedEver", [serve, leecher])
        self.assertNear(rate, 512 * KiB, "upload to libtorrent")
        self.assertNotIn("DONE", leecher.output())

        self.remote(serve, "-U")
        self.assertFalse(serve.rpc.call("session-get")["arguments"]["speed-limit-up-enabled"])
        # Unlimited, the rest (most of 24 MiB) goes in far less than the 40 s it would take at
        # 512 KiB/s.
        started = time.monotonic()
        leecher.wait_for_output("DONE", 60)
        self.assertLess(time.monotonic() - started, 30, "the lifted limit still applies")
        self.assertSameData(src / "up.bin", self.path("leech") / "up.bin")
        rc, _ = self.stop_serve(serve, signal.SIGTERM)
        self.assertEqual(rc, 143, serve.tail())

    def test_a_torrent_that_does_not_honor_the_session_limit_goes_past_it(self):
        src = self.path("src")
        size = 24 * MiB
        for name in ("held.bin", "free.bin"):
            write_random_file(src / name, size)
        held = make_torrent(src / "held.bin", tracker_url(free_port()), self.path("held.torrent"))
        free = make_torrent(src / "free.bin", tracker_url(free_port()), self.path("free.torrent"))
        serve = self.start_serve(self.path("state"), src)
        self.add(serve, held)
        self.add(serve, free)
        self.checked_list(serve)
        rows = self.by_name(serve)
        held_id, free_id = int(rows["held.bin"]["id"]), int(rows["free.bin"]["id"])
        self.remote(serve, "-u", "256")
        self.remote(serve, "-t", str(free_id), "-HL")
        got = {t["id"]: t["honorsSessionLimits"] for t in serve.rpc.call(
            "torrent-get", fields=["id", "honorsSessionLimits"])["arguments"]["torrents"]}
        self.assertEqual(got, {held_id: True, free_id: False})

        held_leecher = self.start_lt_peer(held, self.path("leech-held"), "leech", name="leech-held",
                                          connect=[(LOOPBACK, serve.peer_port)])
        free_leecher = self.start_lt_peer(free, self.path("leech-free"), "leech", name="leech-free",
                                          connect=[(LOOPBACK, serve.peer_port)])
        procs = [serve, held_leecher, free_leecher]
        # The free torrent's 24 MiB would take 96 s at the session's 256 KiB/s.
        started = time.monotonic()
        free_leecher.wait_for_output("DONE", 60)
        took = time.monotonic() - started
        self.assertLess(took, 30, "the torrent that ignores the session limit was held by it")
        self.assertSameData(src / "free.bin", self.path("leech-free") / "free.bin")
        rate = self.measured_rate(serve, held_id, "uploadedEver", procs[:2])
        self.assertNear(rate, 256 * KiB, "upload of the torrent that honours the session limit")
        print(f"\n  the torrent that ignores the session limit went in {took:.1f} s")

        # Honouring it again (-hl) puts it back under the session's limit.
        self.remote(serve, "-t", str(free_id), "-hl")
        [t] = serve.rpc.call("torrent-get", ids=[free_id], fields=[
            "honorsSessionLimits"])["arguments"]["torrents"]
        self.assertTrue(t["honorsSessionLimits"], t)
        rc, _ = self.stop_serve(serve, signal.SIGTERM)
        self.assertEqual(rc, 143, serve.tail())

    def test_torrent_download_limit_holds_a_download_from_libtorrent_and_lifts(self):
        tport = free_port()
        src = self.path("src")
        write_random_file(src / "down.bin", 24 * MiB)
        t = make_torrent(src / "down.bin", tracker_url(tport), self.path("down.torrent"))
        ih = info_hash(t)
        tracker = self.tracker([ih], port=tport)
        seeder = self.start_lt_seeder(t, src)
        tracker.wait_for_swarm(ih, 60, seeders=1, procs=[seeder])
        dl = self.path("dl")
        serve = self.start_serve(self.path("state"), dl)
        self.add(serve, t, "--start-paused")
        [row] = self.by_name(serve).values()
        tid = row["id"]
        self.remote(serve, "-t", tid, "-d", "768")
        [got] = serve.rpc.call("torrent-get", ids=[int(tid)], fields=[
            "downloadLimit", "downloadLimited"])["arguments"]["torrents"]
        self.assertEqual((got["downloadLimit"], got["downloadLimited"]), (768, True), got)
        self.remote(serve, "-t", tid, "-s")
        rate = self.measured_rate(serve, int(tid), "downloadedEver", [serve, seeder])
        self.assertNear(rate, 768 * KiB, "download from libtorrent")

        # Turtle mode (alt-speed, 50 KiB/s by default) caps it further, session-wide.
        self.remote(serve, "-as")
        self.assertTrue(serve.rpc.call("session-get")["arguments"]["alt-speed-enabled"])
        time.sleep(1.5)  # the coordinator re-splits every 250 ms; let the old tokens drain
        rate = self.measured_rate(serve, int(tid), "downloadedEver", [serve, seeder])
        self.assertNear(rate, 50 * KiB, "download in turtle mode")
        self.remote(serve, "-AS")

        self.remote(serve, "-t", tid, "-D")
        self.wait_done(serve, ["down.bin"], 60, others=[seeder])
        self.assertSameData(src / "down.bin", dl / "down.bin")
        rc, _ = self.stop_serve(serve, signal.SIGTERM)
        self.assertEqual(rc, 143, serve.tail())

    def test_limits_survive_a_restart_and_flags_set_the_session_limits(self):
        src = self.path("src")
        write_random_file(src / "kept.bin", 1 * MiB)
        t = make_torrent(src / "kept.bin", tracker_url(free_port()), self.path("kept.torrent"))
        state = self.path("state")
        serve = self.start_serve(state, src)
        self.add(serve, t)
        [row] = self.checked_list(serve).values()
        self.remote(serve, "-d", "300", "-u", "200")
        self.remote(serve, "-t", row["id"], "-u", "100", "-HL")
        rc, _ = self.stop_serve(serve, signal.SIGTERM)
        self.assertEqual(rc, 143, serve.tail())

        serve = self.start_serve(state, src, name="serve-2")
        s = serve.rpc.call("session-get")["arguments"]
        self.assertEqual((s["speed-limit-down"], s["speed-limit-down-enabled"],
                          s["speed-limit-up"], s["speed-limit-up-enabled"]), (300, True, 200, True), s)
        [got] = serve.rpc.call("torrent-get", fields=[
            "uploadLimit", "uploadLimited", "downloadLimited",
            "honorsSessionLimits"])["arguments"]["torrents"]
        self.assertEqual((got["uploadLimit"], got["uploadLimited"], got["downloadLimited"],
                          got["honorsSessionLimits"]), (100, True, False, False), got)
        rc, _ = self.stop_serve(serve, signal.SIGTERM)
        self.assertEqual(rc, 143, serve.tail())

        # --max-upload-rate overrides the saved limit; 0 turns the download limit off.
        serve = self.start_serve(state, src, name="serve-3",
                                 extra=["--max-upload-rate", "1M", "--max-download-rate", "0"])
        s = serve.rpc.call("session-get")["arguments"]
        self.assertEqual((s["speed-limit-up"], s["speed-limit-up-enabled"],
                          s["speed-limit-down-enabled"]), (1024, True, False), s)
        rc, _ = self.stop_serve(serve, signal.SIGTERM)
        self.assertEqual(rc, 143, serve.tail())


if __name__ == "__main__":
    unittest.main()
