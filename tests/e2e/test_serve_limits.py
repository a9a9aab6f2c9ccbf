"""`torrenty serve`'s seed limits and queues, driven by the real transmission-remote (and raw RPC
where transmission-remote 3.00 has no option): a seed ratio set with -sr stops a torrent once a
real libtorrent leecher has taken that much; with download-queue-size 1 the second torrent waits
as "Queued" until the first completes or is stopped, queue-move-* reorders the waiting ones and
torrent-start-now jumps the queue; session and per-torrent settings survive a restart.
"""
import signal
import time
import unittest

from harness import LOOPBACK, MiB, free_port, info_hash, make_torrent, tracker_url, wait_until, \
    write_random_file
from swarm_helpers import start_throttled_seeder, wait_for_stderr
from test_serve import ServeCase, parse_info

DOWNLOAD_WAIT = 3  # Transmission's TR_STATUS_DOWNLOAD_WAIT
STOPPED = 0


class SeedLimits(ServeCase):

    def test_seed_ratio_stops_seeding_once_a_libtorrent_leecher_took_enough(self):
        src = self.path("src")
        size = 16 * MiB
        write_random_file(src / "seeded.bin", size)
        # No tracker answers: the leecher dials serve itself.
        t = make_torrent(src / "seeded.bin", tracker_url(free_port()), self.path("seeded.torrent"))
        serve = self.start_serve(self.path("state"), src)
        self.add(serve, t)
        [row] = self.checked_list(serve).values()
        self.assertIn(row["status"], ("Seeding", "Idle"), row)
        tid = row["id"]

        self.remote(serve, "-t", tid, "-sr", "0.25")
        info = parse_info(self.remote(serve, "-t", tid, "-i").text)
        self.assertEqual(info.get("Ratio Limit"), "0.2", info)  # transmission-remote truncates
        [got] = serve.rpc.call("torrent-get", ids=[tid], fields=[
            "seedRatioMode", "seedRatioLimit"])["arguments"]["torrents"]
        self.assertEqual((got["seedRatioMode"], got["seedRatioLimit"]), (1, 0.25), got)

        # 2 MiB/s: the whole file would take 8 s; serve checks its limits every second.
        leecher = self.start_lt_peer(t, self.path("leech"), "leech",
                                     connect=[(LOOPBACK, serve.peer_port)],
                                     download_rate=2 * MiB)

        def finished():
            rows = {r["id"]: r for r in self.remote_list(serve)}
            return rows[tid]["status"] == "Finished" and rows[tid]
        wait_until(finished, 60, "the torrent Finished in transmission-remote -l",
                   procs=[serve, leecher], interval=0.2)
        wait_for_stderr(serve, "seed ratio", 5)
        [got] = serve.rpc.call("torrent-get", ids=[tid], fields=[
            "status", "isFinished", "uploadedEver"])["arguments"]["torrents"]
        self.assertEqual(got["status"], STOPPED, got)
        self.assertTrue(got["isFinished"], got)
        self.assertGreaterEqual(got["uploadedEver"], size // 4, got)

        # The leecher loses its only peer short of the whole file.
        def leecher_cut_off():
            lines = [l for l in leecher.log_text().splitlines() if "progress=" in l]
            last = lines[-1] if lines else ""
            return "peers=0" in last and float(last.split("progress=")[1].split()[0]) > 0 and last
        last = wait_until(leecher_cut_off, 30, "the leecher without peers", procs=[leecher])
        progress = float(last.split("progress=")[1].split()[0])
        self.assertLess(progress, 0.9, last)
        self.assertNotIn("DONE", leecher.output(), "the leecher got everything: no limit applied")
        print(f"\n  serve counted {got['uploadedEver']} of {size} bytes uploaded; "
              f"the leecher has {progress:.0%}")

        # Started by hand it seeds on without the ratio limit (Transmission's rule).
        self.remote(serve, "-t", tid, "-s")
        [got] = serve.rpc.call("torrent-get", ids=[tid], fields=[
            "status", "isFinished", "seedRatioMode"])["arguments"]["torrents"]
        self.assertEqual((got["status"], got["isFinished"], got["seedRatioMode"]), (6, False, 2),
                         got)
        rc, _ = self.stop_serve(serve, signal.SIGTERM)
        self.assertEqual(rc, 143, serve.tail())


    def test_idle_seeding_limit_stops_a_seed_nobody_takes_from(self):
        src = self.path("src")
        write_random_file(src / "idle.bin", 1 * MiB)
        t = make_torrent(src / "idle.bin", tracker_url(free_port()), self.path("idle.torrent"))
        serve = self.start_serve(self.path("state"), src)
        self.add(serve, t)
        [row] = self.checked_list(serve).values()
        self.assertIn(row["status"], ("Seeding", "Idle"), row)
        # One minute is the smallest limit the protocol can express.
        r = serve.rpc.call("torrent-set", ids=[row["id"]], seedIdleMode=1, seedIdleLimit=1)
        self.assertEqual(r["result"], "success", r)
        started = time.monotonic()

        def finished():
            rows = {r["id"]: r for r in self.remote_list(serve)}
            return rows[row["id"]]["status"] == "Finished" and rows[row["id"]]
        wait_until(finished, 90, "the idle seed Finished", procs=[serve], interval=0.5)
        took = time.monotonic() - started
        self.assertGreaterEqual(took, 55, "stopped before a minute of idling")
        wait_for_stderr(serve, "idle for 1 minutes while seeding: stopping", 5)
        rc, _ = self.stop_serve(serve, signal.SIGTERM)
        self.assertEqual(rc, 143, serve.tail())


class Queueing(ServeCase):

    def positions(self, serve):
        ts = serve.rpc.call("torrent-get", fields=["name", "queuePosition"])["arguments"]["torrents"]
        return [t["name"] for t in sorted(ts, key=lambda t: t["queuePosition"])]

    def statuses(self, serve):
        return {r["name"]: r["status"] for r in self.remote_list(serve)}

    def wait_statuses(self, serve, want, procs=(), timeout=30):
        def match():
            got = self.statuses(serve)
            return all(got.get(n) in (s if isinstance(s, tuple) else (s,))
                       for n, s in want.items()) and got
        return wait_until(match, timeout, f"statuses {want}", procs=[serve, *procs], interval=0.2)

    def test_download_queue_of_one_with_moves_stop_completion_and_start_now(self):
        tport = free_port()
        src = self.path("src")
        for n in ("a.bin", "b.bin", "c.bin", "d.bin", "e.bin"):
            write_random_file(src / n, 4 * MiB + 17)
        tor = {n: make_torrent(src / f"{n}.bin", tracker_url(tport), self.path(f"{n}.torrent"))
               for n in "abcde"}
        ih = {n: info_hash(t) for n, t in tor.items()}
        tracker = self.tracker(list(ih.values()), port=tport)
        # A and B have seeders (throttled, so each download takes a few seconds); C, D, E none.
        seeders = [start_throttled_seeder(self, tor[n], src, rate=1 * MiB, name=f"lt-{n}")
                   for n in "ab"]
        for n in "ab":
            tracker.wait_for_swarm(ih[n], 60, seeders=1, procs=seeders)

        serve = self.start_serve(self.path("state"), self.path("dl"))
        r = serve.rpc.call("session-set", **{"download-queue-enabled": True,
                                             "download-queue-size": 1})
        self.assertEqual(r["result"], "success", r)
        for n in "abc":
            self.add(serve, tor[n])
        self.wait_statuses(serve, {"a.bin": ("Downloading", "Idle", "Up & Down"),
                                   "b.bin": "Queued", "c.bin": "Queued"}, seeders)
        self.assertEqual(self.positions(serve), ["a.bin", "b.bin", "c.bin"])
        # A waiting torrent does not announce: the tracker hears of serve for A only.
        tracker.wait_for_swarm(ih["a"], 30, seeders=1, leechers=1, procs=[serve])
        self.assertEqual(tracker.scrape(ih["c"])[1], 0, "queued c.bin announced")
        by_name = {t["name"]: t for t in serve.rpc.torrents(fields=("name", "status"))}
        self.assertEqual(by_name["c.bin"]["status"], DOWNLOAD_WAIT, by_name)

        ids = {t["name"]: t["id"] for t in serve.rpc.torrents(fields=("name", "id"))}
        for method, name, order in (("queue-move-bottom", "b.bin", ["a.bin", "c.bin", "b.bin"]),
                                    ("queue-move-top", "b.bin", ["b.bin", "a.bin", "c.bin"]),
                                    ("queue-move-down", "b.bin", ["a.bin", "b.bin", "c.bin"]),
                                    ("queue-move-up", "c.bin", ["a.bin", "c.bin", "b.bin"]),
                                    ("queue-move-down", "c.bin", ["a.bin", "b.bin", "c.bin"])):
            r = serve.rpc.call(method, ids=[ids[name]])
            self.assertEqual(r["result"], "success", r)
            self.assertEqual(self.positions(serve), order, f"after {method} {name}")

        # A completes: B (next in the queue) starts and completes too, then C.
        self.wait_done(serve, ["a.bin"], 60, others=seeders)
        self.assertEqual(self.statuses(serve)["c.bin"], "Queued")
        self.wait_done(serve, ["b.bin"], 60, others=seeders)
        self.wait_statuses(serve, {"c.bin": ("Downloading", "Idle")})
        self.assertSameData(src / "a.bin", self.path("dl") / "a.bin")
        self.assertSameData(src / "b.bin", self.path("dl") / "b.bin")

        # C (no seeder) holds the slot; D waits until C is stopped.
        self.add(serve, tor["d"])
        self.wait_statuses(serve, {"d.bin": "Queued"})
        self.remote(serve, "-t", ids["c.bin"], "-S")
        self.wait_statuses(serve, {"c.bin": "Stopped", "d.bin": ("Downloading", "Idle")})

        # torrent-start-now runs E beside the queue; a plain start of C queues it.
        self.add(serve, tor["e"])
        self.wait_statuses(serve, {"e.bin": "Queued"})
        eid = {t["name"]: t["id"] for t in serve.rpc.torrents(fields=("name", "id"))}["e.bin"]
        self.assertEqual(serve.rpc.call("torrent-start-now", ids=[eid])["result"], "success")
        self.wait_statuses(serve, {"e.bin": ("Downloading", "Idle"),
                                   "d.bin": ("Downloading", "Idle")})
        self.remote(serve, "-t", ids["c.bin"], "-s")
        self.wait_statuses(serve, {"c.bin": "Queued"})
        rc, _ = self.stop_serve(serve, signal.SIGTERM)
        self.assertEqual(rc, 143, serve.tail())


    def test_a_stalled_download_gives_its_slot_to_the_next(self):
        src = self.path("src")
        tor = {}
        for n in "pq":
            write_random_file(src / f"{n}.bin", 1 * MiB)
            tor[n] = make_torrent(src / f"{n}.bin", tracker_url(free_port()),
                                  self.path(f"{n}.torrent"))
        serve = self.start_serve(self.path("state"), self.path("dl"))
        r = serve.rpc.call("session-set", **{"download-queue-enabled": True,
                                             "download-queue-size": 1,
                                             "queue-stalled-enabled": True,
                                             "queue-stalled-minutes": 1})
        self.assertEqual(r["result"], "success", r)
        for n in "pq":
            self.add(serve, tor[n])
        # Neither has a peer: the first checked takes the slot and stalls; the other waits for a
        # minute of that.
        def one_queued():
            st = self.statuses(serve)
            return sorted(st.values()) in (["Downloading", "Queued"], ["Idle", "Queued"]) and st
        wait_until(one_queued, 30, "one running, one Queued", procs=[serve], interval=0.2)
        started = time.monotonic()
        self.wait_statuses(serve, {"p.bin": ("Downloading", "Idle"),
                                   "q.bin": ("Downloading", "Idle")}, timeout=90)
        self.assertGreaterEqual(time.monotonic() - started, 55, "the queued one started before the other stalled")
        rc, _ = self.stop_serve(serve, signal.SIGTERM)
        self.assertEqual(rc, 143, serve.tail())


class SettingsSurvive(ServeCase):

    def session(self, serve, *keys):
        args = serve.rpc.call("session-get", fields=list(keys))["arguments"]
        return {k: args.get(k) for k in keys}

    def test_session_and_torrent_settings_survive_a_restart(self):
        src = self.path("src")
        for n in ("x.bin", "y.bin"):
            write_random_file(src / n, 1 * MiB)
        tx = make_torrent(src / "x.bin", tracker_url(free_port()), self.path("x.torrent"))
        ty = make_torrent(src / "y.bin", tracker_url(free_port()), self.path("y.torrent"))
        state, dl = self.path("state"), self.path("dl")
        serve = self.start_serve(state, dl, extra=["--seed-ratio", "3"])
        self.assertEqual(self.session(serve, "seedRatioLimit", "seedRatioLimited"),
                         {"seedRatioLimit": 3, "seedRatioLimited": True})
        self.remote(serve, "-gsr", "1.5")
        r = serve.rpc.call("session-set", **{
            "download-queue-enabled": True, "download-queue-size": 1, "seed-queue-enabled": True,
            "seed-queue-size": 4, "idle-seeding-limit": 12, "idle-seeding-limit-enabled": True})
        self.assertEqual(r["result"], "success", r)
        self.add(serve, tx)
        self.add(serve, ty)
        ids = {t["name"]: t["id"] for t in serve.rpc.torrents(fields=("name", "id"))}
        self.remote(serve, "-t", ids["x.bin"], "-sr", "2.5")
        self.remote(serve, "-t", ids["y.bin"], "-SR")
        r = serve.rpc.call("torrent-set", ids=[ids["y.bin"]], seedIdleMode=1, seedIdleLimit=7)
        self.assertEqual(r["result"], "success", r)
        self.assertEqual(serve.rpc.call("queue-move-top", ids=[ids["y.bin"]])["result"], "success")
        fields = ["name", "seedRatioMode", "seedRatioLimit", "seedIdleMode", "seedIdleLimit",
                  "queuePosition"]

        def torrents(s):
            ts = s.rpc.call("torrent-get", fields=fields)["arguments"]["torrents"]
            return {t["name"]: {k: v for k, v in t.items() if k != "name"} for t in ts}
        before = torrents(serve)
        self.assertEqual(before["x.bin"]["seedRatioMode"], 1, before)
        self.assertEqual(before["x.bin"]["seedRatioLimit"], 2.5, before)
        self.assertEqual(before["y.bin"]["seedRatioMode"], 2, before)
        self.assertEqual((before["y.bin"]["seedIdleMode"], before["y.bin"]["seedIdleLimit"]),
                         (1, 7), before)
        self.assertEqual((before["y.bin"]["queuePosition"], before["x.bin"]["queuePosition"]),
                         (0, 1), before)
        r = serve.rpc.call("session-set", **{"queue-stalled-enabled": True,
                                             "queue-stalled-minutes": 9})
        self.assertEqual(r["result"], "success", r)
        keys = ("seedRatioLimit", "seedRatioLimited", "download-queue-enabled",
                "queue-stalled-enabled", "queue-stalled-minutes",
                "download-queue-size", "seed-queue-enabled", "seed-queue-size",
                "idle-seeding-limit", "idle-seeding-limit-enabled")
        session_before = self.session(serve, *keys)
        self.assertEqual(session_before["seedRatioLimit"], 1.5, session_before)
        rc, _ = self.stop_serve(serve, signal.SIGTERM)
        self.assertEqual(rc, 143, serve.tail())

        # Without --seed-ratio: the saved settings come back as they were.
        serve = self.start_serve(state, dl, name="serve-again")
        self.assertEqual(self.session(serve, *keys), session_before)
        self.assertEqual(torrents(serve), before)
        xid = {t["name"]: t["id"] for t in serve.rpc.torrents(fields=("name", "id"))}["x.bin"]
        info = parse_info(self.remote(serve, "-t", xid, "-i").text)
        self.assertEqual(info.get("Ratio Limit"), "2.5", info)
        rc, _ = self.stop_serve(serve, signal.SIGTERM)
        self.assertEqual(rc, 143, serve.tail())


if __name__ == "__main__":
    unittest.main()
